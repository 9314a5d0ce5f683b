// Package buildbin builds the loadshare binary for tests as `make build`
// does (CGO_ENABLED=0, a static executable), so that tests and benchmarks
// run and time what operators install.
package buildbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Package is the import path of the one binary (CLI and every agent).
const Package = "github.com/loadshare/loadshare/cmd/loadshare"

// Build compiles Package to path. Equivalent to:
// CGO_ENABLED=0 go build -o PATH ./cmd/loadshare
func Build(path string) error {
	goTool, err := goTool()
	if err != nil {
		return err
	}
	cmd := exec.Command(goTool, "build", "-o", path, Package)
	// Static like `make build`: every agent action is a new process, and a
	// dynamically linked one spends about a millisecond in the loader.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build -o %s %s: %w\n%s", path, Package, err, out)
	}
	return nil
}

// goTool finds the go command: on PATH (make, CI), else under $GOROOT.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("go toolchain not found on PATH or under $GOROOT: needed to build loadshare for this test")
}
