package crm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// versionStatus is a CIB status section in which node nK publishes
// loadshare_version=versions[K-1] ("": not at all), as server_load does.
func versionStatus(versions ...string) string {
	var b strings.Builder
	b.WriteString("<status>")
	for i, v := range versions {
		n := strconv.Itoa(i + 1)
		b.WriteString(`<node_state id="` + n + `" uname="n` + n + `"><transient_attributes id="` + n + `"><instance_attributes id="status-` + n + `">`)
		if v != "" {
			b.WriteString(`<nvpair id="status-` + n + `-v" name="loadshare_version" value="` + v + `"/>`)
		}
		b.WriteString(`<nvpair id="status-` + n + `-w" name="writable_monit" value="1"/></instance_attributes></transient_attributes></node_state>`)
	}
	b.WriteString("</status>")
	return b.String()
}

// checkEdit is one case of a Check test: an edit of a good CIB and the
// problems Check reports for it.
type checkEdit struct {
	name string
	edit func(string) string
	want []string // substrings of problem strings, in order; none for a clean CIB
}

// checkEdits runs Check on each edit of good and compares its problems.
func checkEdits(t *testing.T, good []byte, tests []checkEdit) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Check([]byte(tt.edit(string(good))))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Check: %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	good, err := testSpec(4, "n1", "n2", "n3").XML()
	if err != nil {
		t.Fatal(err)
	}
	tests := []checkEdit{
		{"generated", func(s string) string { return s }, nil},
		{"stickiness 0", func(s string) string {
			return strings.Replace(s, `name="resource-stickiness" value="1"`, `name="resource-stickiness" value="0"`, 1)
		}, []string{"warning: vip_0: resource-stickiness=0", "warning: vip_1", "warning: vip_2", "warning: vip_3"}},
		{"stickiness high", func(s string) string {
			return strings.Replace(s, `name="resource-stickiness" value="1"`, `name="resource-stickiness" value="INFINITY"`, 1)
		}, []string{"error: vip_0: resource-stickiness=INFINITY is not below the owner score", "error: vip_1", "error: vip_2", "error: vip_3"}},
		{"no own rule", func(s string) string { return strings.Replace(s, `own_vip_%1`, `own_%1`, 1) },
			[]string{"error: vip: no location rule gives bucket K"}},
		{"buckets param", func(s string) string {
			return strings.Replace(s, `name="buckets" value="4"`, `name="buckets" value="5"`, 1)
		}, []string{`error: vip_0: parameter buckets="5"`, "vip_1", "vip_2", "vip_3"}},
		{"missing bucket", func(s string) string {
			i := strings.Index(s, `<primitive id="vip_2"`)
			j := strings.Index(s[i:], "</primitive>") + i + len("</primitive>")
			return s[:i] + s[j:]
		}, []string{"vip_0: parameter buckets=\"4\", but vip has 3", "vip_1", "vip_3", "error: vip: bucket primitives are not numbered 0…2: missing 2"}},
		{"fencing off", func(s string) string {
			return strings.Replace(s, `<cluster_property_set id="cib-bootstrap-options"/>`,
				`<cluster_property_set id="cib-bootstrap-options"><nvpair id="x" name="stonith-enabled" value="false"/></cluster_property_set>`, 1)
		}, []string{"warning: stonith-enabled: fencing is off"}},
		{"clone shape", func(s string) string {
			return strings.Replace(s, `</resources>`, `<clone id="vipc"><meta_attributes id="vm"><nvpair id="vm1" name="clone-max" value="8"/></meta_attributes>`+
				`<primitive id="vipx" class="ocf" provider="loadshare" type="clustervip"><instance_attributes id="vxi"><nvpair id="vxb" name="buckets" value="8"/></instance_attributes></primitive></clone></resources>`, 1)
		}, []string{"error: vipc: clone of clustervip without globally-unique=true", "error: vipc: clone-node-max=\"\" is not clone-max=8", "error: vipc: clone without resource-stickiness=0", "warning: vipc: buckets as a clone cannot follow load"}},
		{"one version", func(s string) string {
			return strings.Replace(s, `<status/>`, versionStatus("v1.2", "v1.2", ""), 1)
		}, nil},
		{"two versions", func(s string) string {
			return strings.Replace(s, `<status/>`, versionStatus("v1.3", "v1.2", "v1.2"), 1)
		}, []string{"warning: loadshare_version: nodes run different loadshare agent versions: v1.2 on n2,n3; v1.3 on n1."}},
		{"a node the VIP's frames do not reach", func(s string) string {
			st := strings.Replace(versionStatus("", "", ""), `<nvpair id="status-2-w"`, `<nvpair id="status-2-f" name="flood_vip" value="0"/><nvpair id="status-2-w"`, 1)
			st = strings.Replace(st, `<nvpair id="status-1-w"`, `<nvpair id="status-1-f" name="flood_vip" value="1"/><nvpair id="status-1-w"`, 1)
			return strings.Replace(s, `<status/>`, st, 1)
		}, []string{"warning: vip: n2 do(es) not receive VIP vip's frames (flood_vip=0"}},
		{"one backend for all buckets", func(s string) string {
			return strings.Replace(s, `<nvpair id="vip-bucket-params-buckets" name="buckets" value="4"/>`,
				`<nvpair id="vip-bucket-params-buckets" name="buckets" value="4"/><nvpair id="vip-bucket-params-backend" name="backend" value="xtcluster"/>`, 1)
		}, nil},
		{"one bucket on another backend", func(s string) string {
			return strings.Replace(s, `<nvpair id="vip_2-params-bucket" name="bucket" value="2"/>`,
				`<nvpair id="vip_2-params-bucket" name="bucket" value="2"/><nvpair id="vip_2-params-backend" name="backend" value="xtcluster"/>`, 1)
		}, []string{"error: vip: the bucket primitives use different backends: auto (vip_0), xtcluster (vip_2)"}},
		{"one node on another backend", func(s string) string {
			return strings.Replace(s, `<nvpair id="vip-bucket-params-buckets" name="buckets" value="4"/>`,
				`<nvpair id="vip-bucket-params-buckets" name="buckets" value="4"/><nvpair id="vip-bucket-params-backend" name="backend" value="nft"/>`+
					`</instance_attributes><instance_attributes id="vip-bucket-n3"><rule id="vip-bucket-n3-rule" score="0">`+
					`<expression id="vip-bucket-n3-expr" attribute="#uname" operation="eq" value="n3"/></rule>`+
					`<nvpair id="vip-bucket-n3-backend" name="backend" value="xtcluster"/>`, 1)
		}, []string{"error: vip: the bucket primitives use different backends: nftables (vip_0), xtcluster (vip_0)"}},
		{"load-threshold unset at 24 buckets", func(string) string { return string(must(withLoadThreshold(testSpec(24), "").XML())) },
			[]string{"warning: load-threshold: load-threshold is not set (80%) with 24 buckets: Pacemaker runs one action at a time on a node whose load average is above 1.6 × its cores"}},
		{"load-threshold 50% at 24 buckets", func(string) string { return string(must(withLoadThreshold(testSpec(24), "50%").XML())) },
			[]string{"warning: load-threshold: load-threshold is 50% with 24 buckets: Pacemaker runs one action at a time on a node whose load average is above 1 × its cores"}},
		{"load-threshold 0% at 24 buckets", func(string) string { return string(must(withLoadThreshold(testSpec(24), "0%").XML())) }, nil},
		{"load-threshold unreadable at 24 buckets", func(string) string {
			return strings.Replace(string(must(withLoadThreshold(testSpec(24), "0%").XML())), `value="0%"`, `value="0"`, 1)
		}, []string{`warning: load-threshold: load-threshold is "0" (not a percentage, so 80%) with 24 buckets`}},
		{"flood check clone", func(s string) string {
			return strings.Replace(s, `</resources>`, `<clone id="vip-flood-clone"><primitive id="vip-flood" class="ocf" provider="loadshare" type="clustervip"><instance_attributes id="vfi"><nvpair id="vfc" name="flood_check" value="vip"/></instance_attributes></primitive></clone></resources>`, 1)
		}, nil},
	}
	checkEdits(t, good, tests)
}

// TestCheckRoles: a writer and a reader VIP generated together check
// clean; loading one VIP's configuration over the other's (server_load's
// placer naming only one), a placer word whose require differs from the
// rules, a reader VIP when mysql_monitor does not publish readable_monit,
// two VIPs on one address, a writer VIP that is not strict beside a reader
// VIP, and a placer naming a VIP that has no buckets are each reported.
func TestCheckRoles(t *testing.T) {
	good, err := writerReaderOf(2, 2, "n1", "n2").XML()
	if err != nil {
		t.Fatal(err)
	}
	placer := `name="placer" value="vip ro:require=readable_monit,writer-weight=50"`
	if !strings.Contains(string(good), placer) {
		t.Fatalf("generated CIB lacks %s:\n%s", placer, good)
	}
	tests := []checkEdit{
		{"generated", func(s string) string { return s }, nil},
		{"second VIP loaded over the first", func(s string) string {
			return strings.Replace(s, placer, `name="placer" value="ro:require=readable_monit"`, 1)
		}, []string{"error: vip: VIP vip is not in server_load's placer"}},
		{"require differs", func(s string) string { return strings.Replace(s, placer, `name="placer" value="vip ro"`, 1) },
			[]string{"error: ro: VIP ro's rules require readable_monit, but the placer places it on nodes with writable_monit=1"}},
		{"readable not published", func(s string) string {
			return strings.Replace(s, `<primitive id="mysql_monitor" class="ocf" provider="loadshare" type="mysql_monitor">`,
				`<primitive id="mysql_monitor" class="ocf" provider="loadshare" type="mysql_monitor"><instance_attributes id="mm-p"><nvpair id="mm-p-r" name="publish_readable" value="false"/></instance_attributes>`, 1)
		}, []string{"error: ro: VIP ro's buckets require readable_monit, but mysql_monitor has publish_readable=false"}},
		{"one address", func(s string) string {
			return strings.Replace(s, `name="ip" value="192.0.2.11"`, `name="ip" value="192.0.2.10"`, 1)
		}, []string{"error: vip: VIP vip has ip=192.0.2.10, as VIP ro does"}},
		{"writer VIP not strict", func(s string) string {
			return regexp.MustCompile(`(?s)<rsc_location id="vip-strict".*?</rsc_location>`).ReplaceAllString(s, "")
		}, []string{"warning: vip: writer VIP vip is not strict, beside a reader VIP"}},
		{"placer names a VIP without buckets", func(s string) string {
			return strings.Replace(s, placer, `name="placer" value="vip ro:require=readable_monit,writer-weight=50 old"`, 1)
		}, []string{"warning: server_load: placer names VIP old, which has no bucket primitives"}},
	}
	checkEdits(t, good, tests)
}

func TestVerify(t *testing.T) {
	if _, err := exec.LookPath("crm_verify"); err != nil {
		t.Skip("crm_verify not installed (Debian package pacemaker-cli-utils)")
	}
	good, err := testSpec(4, "n1").XML()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, s string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	ps, err := Verify(context.Background(), write("nofence.xml", string(good)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "no fencing device is configured") {
		t.Errorf("Verify(no fencing) = %v, want one problem about fencing", ps)
	}
	bad := strings.Replace(string(good), `rsc-pattern="^vip_[0-9]+$"`, `rsc="nosuch"`, 1)
	ps, err = Verify(context.Background(), write("bad.xml", bad))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		found = found || strings.Contains(p.String(), `a constraint names a resource that does not exist: IDREF attribute rsc references an unknown ID "nosuch"`)
	}
	if !found {
		t.Errorf("Verify(bad constraint) = %v, want the unknown resource explained", ps)
	}
}

// cib-lab-buckets.xml: the CIB of the real lab cluster running the
// generated configuration with Dummy agents, recorded when the lab ran with
// stonith off (it fences now; the fixture keeps the warning case).
func TestCheckRealCIB(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "cib-lab-buckets.xml"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Check(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Object != "stonith-enabled" {
		t.Errorf("Check(real lab CIB) = %v, want only the fencing warning", ps)
	}
	if _, err := exec.LookPath("crm_verify"); err != nil {
		t.Skip("crm_verify not installed")
	}
	if ps, err := Verify(context.Background(), filepath.Join("testdata", "cib-lab-buckets.xml")); err != nil || len(ps) != 0 {
		t.Errorf("Verify(real lab CIB) = %v, %v; want nothing", ps, err)
	}
}

func TestScheduleRealCIB(t *testing.T) {
	if _, err := exec.LookPath("crm_simulate"); err != nil {
		t.Skip("crm_simulate not installed")
	}
	f := filepath.Join("testdata", "cib-lab-buckets.xml")
	before, after, tr, err := Schedule(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Actions) != 0 || len(before.Resources) != 24 || len(after) != 24 {
		t.Fatalf("Schedule(settled real CIB): %d actions, %d/%d resources; want 0 and 24", len(tr.Actions), len(before.Resources), len(after))
	}
	// Take n3's own_* claims away (as the placer would move them to n1):
	// the scheduler moves exactly those buckets to n1.
	b, _ := os.ReadFile(f)
	s := string(b)
	moved := 0
	for k := 0; k < 24; k++ {
		name := Spec{}.OwnAttr(k)
		if r, _ := before.Resource(Spec{}.Resource(k)); len(r.Nodes) == 1 && r.Nodes[0] == "n3" {
			// the nvpair of n3's claim: id status-3-own_vip_K
			old := `id="status-3-` + name + `" name="` + name + `" value="1"`
			if !strings.Contains(s, old) {
				t.Fatalf("fixture lacks %s", old)
			}
			s = strings.Replace(s, old, `id="status-3-`+name+`" name="`+name+`" value="0"`, 1)
			s = strings.Replace(s, `<nvpair id="status-1-writable_monit"`, `<nvpair id="status-1-`+name+`" name="`+name+`" value="1"/><nvpair id="status-1-writable_monit"`, 1)
			moved++
		}
	}
	f2 := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(f2, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	_, after, tr, err = Schedule(context.Background(), f2)
	if err != nil {
		t.Fatal(err)
	}
	on := map[string]int{}
	for _, r := range after {
		for _, n := range r.Nodes {
			on[n]++
		}
	}
	if tr.Moves != moved || on["n3"] != 0 || on["n1"] != 8+moved {
		t.Errorf("after moving n3's claims to n1: %d moves (want %d), placement %v", tr.Moves, moved, on)
	}
}

// must is b, failing the test run at once on err (for table literals).
func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
