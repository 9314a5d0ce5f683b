package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPackageVersion(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"v1.2.3", "1.2.3", ""},
		{"1.2.3", "1.2.3", ""},
		{"v1.2.3-rc1", "1.2.3~rc1", ""},
		{"01a9228-dirty", "0.0.0~git.01a9228.dirty", ""},
		{"v0.1.0-5-g01a9228", "0.0.0~git.v0.1.0.5.g01a9228", ""},
		{"devel", "0.0.0~git.devel", ""},
		{"a b", "", "want a version"},
		{"", "", "want a version"},
	} {
		got, err := packageVersion(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("packageVersion(%q) = %q, %v; want %q, error %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestPackages stages the tree with the Makefile's own install target,
// builds both packages, and checks them with the distributions' tools:
// lintian finds no error or warning in the .deb, dpkg-deb and rpm list
// the files where Pacemaker and man look for them, and the packaged CLI
// says the version it was built with.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and both packages")
	}
	for _, tool := range []string{"make", "dpkg-deb", "lintian", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (test/install-deps.sh installs it)", tool)
		}
	}
	tmp := t.TempDir()
	root, out := filepath.Join(tmp, "root"), filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	const version = "v1.2.3-rc1"
	mk := exec.Command("make", "-C", "../..", "install", "DESTDIR="+root, "EXTRA_LDFLAGS=-s -w", "VERSION="+version)
	if b, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", mk.Args, err, b)
	}
	common := []string{
		"/usr/sbin/loadshare",
		"/usr/lib/ocf/resource.d/loadshare/clustervip",
		"/usr/lib/ocf/resource.d/loadshare/mysql_monitor",
		"/usr/lib/ocf/resource.d/loadshare/server_load",
		"/usr/share/man/man8/loadshare.8.gz",
		"/usr/share/man/man7/ocf_loadshare_clustervip.7.gz",
		"/usr/share/man/man7/ocf_loadshare_mysql_monitor.7.gz",
		"/usr/share/man/man7/ocf_loadshare_server_load.7.gz",
		"/usr/share/doc/loadshare/copyright",
		"/usr/lib/systemd/system/loadshare-metrics.service",
	}
	for _, format := range []string{"deb", "rpm"} {
		if err := run([]string{"-format", format, "-root", root, "-version", version, "-out", out}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
	}

	deb := one(t, filepath.Join(out, "loadshare_1.2.3~rc1_*.deb"))
	lint := exec.Command("lintian", "--fail-on", "error,warning", deb)
	if b, err := lint.CombinedOutput(); err != nil {
		t.Errorf("lintian %s: %v\n%s", deb, err, b)
	}
	b, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v", err)
	}
	var debFiles []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if p := strings.TrimPrefix(f[len(f)-1], "."); !strings.HasSuffix(p, "/") {
			debFiles = append(debFiles, p)
		}
	}
	wantDeb := append(slices.Clone(common), "/usr/share/doc/loadshare/changelog.gz", "/usr/share/lintian/overrides/loadshare")
	slices.Sort(debFiles)
	slices.Sort(wantDeb)
	if !slices.Equal(debFiles, wantDeb) {
		t.Errorf("deb files:\n%s\nwant:\n%s", strings.Join(debFiles, "\n"), strings.Join(wantDeb, "\n"))
	}
	x := filepath.Join(tmp, "x")
	if b, err := exec.Command("dpkg-deb", "-x", deb, x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	if b, err := exec.Command(filepath.Join(x, "usr/sbin/loadshare"), "--version").Output(); err != nil || string(b) != "loadshare "+version+"\n" {
		t.Errorf("packaged loadshare --version = %q, %v; want %q", b, err, "loadshare "+version)
	}
	if b, err := exec.Command("dpkg-deb", "-f", deb, "Depends").Output(); err != nil || !strings.Contains(string(b), "pacemaker-cli-utils") {
		t.Errorf("deb Depends = %q, %v; want pacemaker-cli-utils (attrd_updater, crm_mon)", b, err)
	}

	rpm := one(t, filepath.Join(out, "loadshare-1.2.3~rc1-1.*.rpm"))
	b, err = exec.Command("rpm", "-qlp", rpm).Output()
	if err != nil {
		t.Fatalf("rpm -qlp: %v", err)
	}
	rpmFiles := strings.Fields(string(b))
	slices.Sort(rpmFiles)
	wantRPM := slices.Sorted(slices.Values(common))
	if !slices.Equal(rpmFiles, wantRPM) {
		t.Errorf("rpm files:\n%s\nwant:\n%s", strings.Join(rpmFiles, "\n"), strings.Join(wantRPM, "\n"))
	}
	if b, err := exec.Command("rpm", "-qp", "--requires", rpm).Output(); err != nil || !strings.Contains(string(b), "pacemaker-cli") {
		t.Errorf("rpm requires = %q, %v; want pacemaker-cli", b, err)
	}
}

// one is the one file matching pattern.
func one(t *testing.T, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		t.Fatalf("%s: %d files, want 1 (%v)", pattern, len(m), m)
	}
	return m[0]
}
