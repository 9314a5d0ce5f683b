// Package buildbin builds loadshare's binaries for tests as `make build`
// does (CGO_ENABLED=0, static executables), so that tests and benchmarks
// run and time what operators install.
package buildbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Packages are the binaries: the CLI and one per OCF agent (see Agents).
const Packages = "github.com/loadshare/loadshare/cmd/..."

// BuildAll compiles every binary into dir: dir/loadshare and one file per
// agent. Equivalent to: CGO_ENABLED=0 go build -o DIR/ ./cmd/...
func BuildAll(dir string) error {
	goTool, err := goTool()
	if err != nil {
		return err
	}
	cmd := exec.Command(goTool, "build", "-o", dir+"/", Packages)
	// Static like `make build`: every agent action is a new process, and a
	// dynamically linked one spends about a millisecond in the loader.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build -o %s/ %s: %w\n%s", dir, Packages, err, out)
	}
	return nil
}

// Dir builds every binary (BuildAll) into a directory of t's that is
// removed when t ends, mode 0755 like the OCF provider directory it is
// bind-mounted over or installed as, and returns it; a build error fails t.
func Dir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := BuildAll(dir); err != nil {
		t.Fatal(err)
	}
	return dir
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
