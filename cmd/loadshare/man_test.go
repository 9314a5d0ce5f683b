package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm"
)

// TestManPages writes every page, has groff check it (no warning at -ww)
// and render it, and checks the rendered text names every parameter of
// each agent and every flag each command prints for -h.
func TestManPages(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed (Debian groff-base): cannot check the pages render")
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := cli([]string{"man", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("man --dir: exit %d: %s", code, errOut.String())
	}
	render := func(file string) string {
		t.Helper()
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-c", "-rLL=200n", filepath.Join(dir, file))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("groff %s: %v: %s", file, err, stderr.String())
		}
		// groff marks bold and underline with backspaces even with -c off
		// in some versions: keep the letters.
		return regexp.MustCompile(".\b").ReplaceAllString(string(b), "")
	}
	for _, a := range crm.Agents {
		text := render("ocf_loadshare_" + a + ".7")
		m, err := ocf.MetaOf(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params {
			if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(p.Name) + ` \(`).MatchString(text) {
				t.Errorf("ocf_loadshare_%s(7) does not document parameter %s", a, p.Name)
			}
		}
		actions, _ := ocf.ActionsOf(a)
		for _, act := range actions {
			if !strings.Contains(text, act.Name) {
				t.Errorf("ocf_loadshare_%s(7) does not list action %s", a, act.Name)
			}
		}
	}

	text := render("loadshare.8")
	// Every flag -h prints, for every command and subcommand.
	flagLine := regexp.MustCompile(`(?m)^  -(\S+)`)
	for name, c := range commands {
		for _, args := range append([][]string{nil}, subArgs(c)...) {
			var stderr bytes.Buffer
			_ = c.run(append(args, "-h"), &bytes.Buffer{}, &stderr)
			for _, m := range flagLine.FindAllStringSubmatch(stderr.String(), -1) {
				f := "--" + m[1]
				if len(m[1]) == 1 {
					f = "-" + m[1]
				}
				if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(f) + `\b`).MatchString(text) {
					t.Errorf("loadshare(8) does not document %s of loadshare %s %s", f, name, strings.Join(args, " "))
				}
			}
		}
		if !strings.Contains(text, "loadshare "+name) {
			t.Errorf("loadshare(8) has no section for loadshare %s", name)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1+len(crm.Agents) {
		t.Errorf("man --dir wrote %d files, want %d", len(entries), 1+len(crm.Agents))
	}
}

func TestManUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"man", "nosuch"}, 2, `no man page "nosuch"`},
		{[]string{"man", "a", "b"}, 2, "one page at a time"},
		{[]string{"man", "--dir", "x", "clustervip"}, 2, "--dir writes every page"},
	} {
		var out, errOut bytes.Buffer
		if code := cli(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut.String(), tc.code, tc.msg)
		}
	}
	var out bytes.Buffer
	if code := cli([]string{"man", "clustervip"}, &out, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(out.String(), `.TH "OCF_LOADSHARE_CLUSTERVIP" "7"`) {
		t.Errorf("man clustervip: exit %d, output starts %.60q", code, out.String())
	}
}
