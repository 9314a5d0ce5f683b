package crm

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/test/buildbin"
)

const ocfProviderDir = "/usr/lib/ocf/resource.d/loadshare"

// TestPcsAppliesGenerated runs every printed pcs command with Debian's real
// pcs against a CIB file (pcs -f FILE ...), with this build's agents bound
// over /usr/lib/ocf/resource.d/loadshare in a private mount namespace (pcs
// reads their meta-data and refuses unknown parameters), then checks the
// result with crm_verify and compares its resources and constraints with
// the XML output: the same ids, agents, parameters, meta attributes, ops
// and rules (pcs has no templates, so the XML's are resolved first).
func TestPcsAppliesGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the agents and runs pcs")
	}
	for _, tool := range []string{"pcs", "cibadmin", "crm_verify", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages pcs, pacemaker-cli-utils, util-linux)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	// The mount point of the agents; on a fresh machine nothing has made
	// it yet (make install, the lab), so the test makes it and removes it.
	if _, err := os.Stat(ocfProviderDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(ocfProviderDir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(ocfProviderDir) }) // only if still empty
	}
	dir := t.TempDir()
	agents := buildbin.Dir(t)
	specs := map[string]Specs{
		"default":                  {withLoadThreshold(withFlood(withParams(testSpec(4, "n1", "n2", "n3"), "mysql_monitor", "user", "mon it'or", "clustervip", "drain_grace", "5")), LoadThresholdOff)},
		"ipv6 no attribute agents": {{Name: "db", IP: netip.MustParseAddr("2001:db8::10"), Buckets: 3, CIDRNetmask: 64, NIC: "eth1", Seed: 7, Monitor: 5}},
		"writer and reader":        writerReaderOf(4, 3, "n1", "n2", "n3"),
	}
	for name, s := range specs {
		t.Run(name, func(t *testing.T) {
			cmds, err := s.Pcs()
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.XML()
			if err != nil {
				t.Fatal(err)
			}
			cib := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".xml")
			// One script: every printed command, each as pcs -f CIB; then
			// the test cluster's own property, which is not part of the
			// configuration (crm_verify refuses a CIB without fencing).
			var script strings.Builder
			fmt.Fprintf(&script, "set -e\nmount --make-rprivate / && mount --bind %s %s\ncibadmin --empty > %s\n", agents, ocfProviderDir, cib)
			n := 0
			for _, line := range strings.Split(cmds, "\n") {
				if rest, ok := strings.CutPrefix(line, "pcs "); ok {
					fmt.Fprintf(&script, "pcs -f %s %s\n", cib, rest)
					n++
				} else if line != "" && !strings.HasPrefix(line, "#") {
					t.Fatalf("output line is neither a pcs command nor a comment: %q", line)
				}
			}
			fmt.Fprintf(&script, "pcs -f %s property set stonith-enabled=false\n", cib)
			out, err := exec.Command("unshare", "-m", "sh", "-c", script.String()).CombinedOutput()
			if err != nil {
				t.Fatalf("applying %d pcs commands: %v\n%s\nscript:\n%s", n, err, out, script.String())
			}
			if strings.Contains(string(out), "Warning") || strings.Contains(string(out), "Error") {
				t.Errorf("pcs said:\n%s", out)
			}
			if out, err := exec.Command("crm_verify", "-V", "-x", cib).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("crm_verify -V -x (pcs-made CIB): %v\n%s", err, out)
			}
			got, err := os.ReadFile(cib)
			if err != nil {
				t.Fatal(err)
			}
			if wantProp := s[0].LoadThreshold != ""; wantProp != strings.Contains(string(got), `name="load-threshold" value="`+s[0].LoadThreshold+`"`) {
				t.Errorf("pcs-made CIB: load-threshold=%s set %v, want %v", s[0].LoadThreshold, !wantProp, wantProp)
			}
			g, w := describeCIB(t, got), describeCIB(t, want)
			if !slices.Equal(g, w) {
				t.Errorf("pcs-made CIB differs from the XML output (-want +got):\n%s", lineDiff(w, g))
			}
			// loadshare's own checks see the same configuration in both
			// (apart from the test's fencing property).
			var gp, wp []string
			if ps, err := Check(got); err == nil {
				for _, p := range ps {
					if p.Object != "stonith-enabled" {
						gp = append(gp, p.String())
					}
				}
			}
			if ps, err := Check(want); err == nil {
				for _, p := range ps {
					wp = append(wp, p.String())
				}
			}
			if !slices.Equal(gp, wp) {
				t.Errorf("crm check: pcs-made CIB %q, XML output %q", gp, wp)
			}
			t.Logf("%d pcs commands; pcs-made CIB as compared:\n%s", n, strings.Join(g, "\n"))
			buckets := 0
			for _, v := range s {
				buckets += v.Buckets
			}
			if len(w) < buckets+2 {
				t.Errorf("described only %d objects:\n%s", len(w), strings.Join(w, "\n"))
			}
		})
	}
}

// describeCIB is a CIB's resources (templates applied) and location
// constraints, one line each, in an order of their own: what must be the
// same whatever tool wrote them. Inner element ids (nvpairs, ops,
// expressions) are the tool's choice and left out.
func describeCIB(t *testing.T, cib []byte) []string {
	t.Helper()
	doc, err := parseElem(cib)
	if err != nil {
		t.Fatal(err)
	}
	res := doc.path("configuration", "resources")
	templates := map[string]*elem{}
	for _, tm := range res.children("template") {
		templates[tm.attr("id")] = tm
	}
	pairs := func(m map[string]string) string {
		var kv []string
		for k, v := range m {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		return strings.Join(kv, " ")
	}
	ops := func(e *elem) []string {
		var o []string
		for _, op := range e.path("operations").children("op") {
			o = append(o, op.attr("name")+"/"+op.attr("interval")+"/"+op.attr("timeout"))
		}
		return o
	}
	var out []string
	prim := func(p *elem, clone string) {
		src := p
		params, meta := map[string]string{}, map[string]string{}
		var o []string
		if tm := templates[p.attr("template")]; tm != nil {
			src = tm
			for k, v := range tm.nvpairs("instance_attributes") {
				params[k] = v
			}
			for k, v := range tm.nvpairs("meta_attributes") {
				meta[k] = v
			}
			o = ops(tm)
		}
		for k, v := range p.nvpairs("instance_attributes") {
			params[k] = v
		}
		for k, v := range p.nvpairs("meta_attributes") {
			meta[k] = v
		}
		o = append(o, ops(p)...)
		slices.Sort(o)
		out = append(out, fmt.Sprintf("primitive %s %s:%s:%s params[%s] meta[%s] ops%v clone[%s]",
			p.attr("id"), src.attr("class"), src.attr("provider"), src.attr("type"), pairs(params), pairs(meta), o, clone))
	}
	for _, c := range res.children("clone") {
		prim(c.child("primitive"), c.attr("id")+" "+pairs(c.nvpairs("meta_attributes")))
	}
	for _, p := range res.children("primitive") {
		prim(p, "")
	}
	for _, l := range doc.path("configuration", "constraints").children("rsc_location") {
		for _, r := range l.children("rule") {
			var ex []string
			for _, e := range r.children("expression") {
				ex = append(ex, e.attr("attribute")+" "+e.attr("operation")+" "+e.attr("value")+" "+e.attr("type"))
			}
			out = append(out, fmt.Sprintf("location %s rsc=%q rsc-pattern=%q rule %s score=%s boolean-op=%q %q",
				l.attr("id"), l.attr("rsc"), l.attr("rsc-pattern"), r.attr("id"), r.attr("score"), r.attr("boolean-op"), ex))
		}
	}
	slices.Sort(out)
	return out
}

// lineDiff marks the lines only in want with - and only in got with +.
func lineDiff(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
