package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/agents/ocf"
)

func TestUnknownCommandIsUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli([]string{"no-such-command"}, &out, &errOut); code != 2 {
		t.Fatalf("cli(no-such-command) = %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "no-such-command"`) {
		t.Fatalf("stderr %q does not name the unknown command", errOut.String())
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli([]string{"--version"}, &out, &errOut); code != 0 {
		t.Fatalf("cli(--version) = %d, stderr %q", code, errOut.String())
	}
	if got, want := out.String(), "loadshare "+ocf.Version()+"\n"; got != want {
		t.Errorf("cli(--version) printed %q, want %q", got, want)
	}
}

// TestVersionLinked builds the CLI and an agent the way the Makefile does,
// with the version set by the linker, and asks both for it.
func TestVersionLinked(t *testing.T) {
	const flag = "-X github.com/loadshare/loadshare/agents/ocf.version="
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), flag+"$(VERSION)") {
		t.Fatalf("the Makefile does not set the version with %q", flag+"$(VERSION)")
	}
	dir := t.TempDir()
	const v = "v9.9.9-test-dirty"
	build := exec.Command("go", "build", "-ldflags", flag+v, "-o", dir, "./cmd/loadshare", "./cmd/clustervip")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", build.Args, err, b)
	}
	out, err := exec.Command(filepath.Join(dir, "loadshare"), "--version").Output()
	if err != nil || string(out) != "loadshare "+v+"\n" {
		t.Errorf("loadshare --version = %q, %v; want %q", out, err, "loadshare "+v+"\n")
	}
	md, err := exec.Command(filepath.Join(dir, "clustervip"), "meta-data").Output()
	if want := `<resource-agent name="clustervip" version="` + v + `">`; err != nil || !strings.Contains(string(md), want) {
		t.Errorf("clustervip meta-data: %v; want it to contain %s:\n%s", err, want, md)
	}
}
