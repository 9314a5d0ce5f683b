package ocf

import "runtime/debug"

// version is the build's version, set by the Makefile:
//
//	go build -ldflags "-X github.com/loadshare/loadshare/agents/ocf.version=$(git describe --always --dirty)"
//
// It is the one version of loadshare: the CLI's --version, every agent's
// meta-data and the node attribute server_load publishes all read it
// through Version.
var version string

// Version returns the build's version: the Makefile's (git describe), else
// the module version the go command stamped (a `go install …@v1.2.3`, or a
// pseudo-version from the checkout's commit), else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
