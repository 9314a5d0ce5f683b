package crm

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testSpec(buckets int, nodes ...string) Spec {
	return Spec{IP: netip.MustParseAddr("192.0.2.10"), Buckets: buckets, Nodes: nodes, AttributeAgents: true}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		s    Spec
		want string // substring of the error, "" for none
	}{
		{"ok", testSpec(24, "n1", "n2"), ""},
		{"no ip", Spec{Buckets: 4}, "ip: missing"},
		{"zero buckets", Spec{IP: netip.MustParseAddr("192.0.2.10")}, "buckets=0: must be 1–1024"},
		{"underscore name", Spec{Name: "my_vip", IP: netip.MustParseAddr("192.0.2.10"), Buckets: 4}, `name="my_vip"`},
		{"duplicate node", testSpec(4, "n1", "n1"), `node "n1"`},
		{"netmask", Spec{IP: netip.MustParseAddr("192.0.2.10"), Buckets: 4, CIDRNetmask: 33}, "cidr_netmask=33"},
		{"params ok", withParams(testSpec(4), "mysql_monitor", "defaults_file", "/etc/mysql/mon.cnf", "clustervip", "drain_grace", "5"), ""},
		{"param of no agent", withParams(testSpec(4), "IPaddr2", "x", "1"), `parameter of "IPaddr2": not an agent`},
		{"param a field sets", withParams(testSpec(4), "clustervip", "buckets", "8"), "clustervip parameter buckets: set by its own option"},
		{"param name", withParams(testSpec(4), "server_load", "Weight-CPU", "1"), `server_load parameter "Weight-CPU": not a parameter name`},
		{"param value", withParams(testSpec(4), "mysql_monitor", "user", `a"b`), "quotes, backslashes"},
		{"params without agents", withParams(Spec{IP: netip.MustParseAddr("192.0.2.10"), Buckets: 4}, "server_load", "step", "5"), "attribute agents are left out"},
		{"load-threshold 0%", withLoadThreshold(testSpec(4), "0%"), ""},
		{"load-threshold 80%", withLoadThreshold(testSpec(4), "80%"), ""},
		{"load-threshold without %", withLoadThreshold(testSpec(4), "0"), `load-threshold="0": want a percentage`},
		{"load-threshold fraction", withLoadThreshold(testSpec(4), "0.5%"), `load-threshold="0.5%": want a percentage`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate(%+v) = %v, want %q", tt.s, err, tt.want)
			}
		})
	}
}

func withLoadThreshold(s Spec, v string) Spec {
	s.LoadThreshold = v
	return s
}

// TestLoadThreshold: the property and the comment that says why come
// first in crmsh and pcs, and in the XML's cib-bootstrap-options with the
// id crmsh, pcs and crm_attribute give it; "" leaves it out of all three,
// and two VIPs must agree on it.
func TestLoadThreshold(t *testing.T) {
	s := withLoadThreshold(testSpec(2), LoadThresholdOff)
	c, err := s.Crmsh()
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Pcs()
	if err != nil {
		t.Fatal(err)
	}
	x, err := s.XML()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ format, got, want string }{
		{"crmsh", c, "the CIB daemon's own check stays"},
		{"crmsh", c, "\nproperty load-threshold=0%\nprimitive mysql_monitor"},
		{"pcs", p, "# load-threshold=0%: with Pacemaker's default (80%)"},
		{"pcs", p, "\npcs property set load-threshold=0%\n"},
		{"xml", string(x), `<cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-load-threshold" name="load-threshold" value="0%"/>`},
	} {
		if !strings.Contains(tt.got, tt.want) {
			t.Errorf("%s output lacks %q:\n%s", tt.format, tt.want, tt.got)
		}
	}
	c, _ = testSpec(2).Crmsh()
	p, _ = testSpec(2).Pcs()
	x, _ = testSpec(2).XML()
	for _, out := range []string{c, p, string(x)} {
		if strings.Contains(out, "load-threshold") {
			t.Errorf("LoadThreshold \"\": the output names load-threshold:\n%s", out)
		}
	}
	two := Specs{s, withLoadThreshold(Spec{Name: "ro", IP: netip.MustParseAddr("192.0.2.11"), Buckets: 2, AttributeAgents: true}, "80%")}
	if err := two.Validate(); err == nil || !strings.Contains(err.Error(), "its load-threshold differ") {
		t.Errorf("two VIPs, load-threshold 0%% and 80%%: Validate = %v, want their load-threshold differ", err)
	}
}

// withParams adds agent, name, value triples to s.Params.
func withParams(s Spec, kv ...string) Spec {
	s.Params = map[string][]Param{}
	for i := 0; i+2 < len(kv)+1; i += 3 {
		s.Params[kv[i]] = append(s.Params[kv[i]], Param{kv[i+1], kv[i+2]})
	}
	return s
}

// TestCrmshParams: extra parameters land on their agent, a generated one
// (server_load's placer) is replaced in place, values that crmsh would
// split are quoted, and AttrMonitor sets both attribute agents' monitors.
func TestCrmshParams(t *testing.T) {
	s := withParams(testSpec(2), "mysql_monitor", "defaults_file", "/etc/mysql/mon.cnf",
		"server_load", "weight_cpu", "0", "server_load", "placer", "", "clustervip", "drain_grace", "5",
		"mysql_monitor", "user", "mon itor")
	s.AttrMonitor = 2
	got, err := s.Crmsh()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\tparams ip=192.0.2.10 buckets=2 drain_grace=5 \\\n",
		"primitive mysql_monitor ocf:loadshare:mysql_monitor \\\n\tparams defaults_file=/etc/mysql/mon.cnf user=\"mon itor\" \\\n\top monitor interval=2s timeout=20s\n",
		"primitive server_load ocf:loadshare:server_load \\\n\tparams placer=\"\" weight_cpu=0 \\\n\top monitor interval=2s timeout=20s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Crmsh() lacks %q; got:\n%s", want, got)
		}
	}
	if d, _ := testSpec(2).Crmsh(); !strings.Contains(d, "\tparams placer=vip \\\n\top monitor interval=10s") ||
		!strings.Contains(d, "mysql_monitor \\\n\top monitor interval=5s") {
		t.Errorf("defaults: want server_load placer=vip every 10 s, mysql_monitor every 5 s; got:\n%s", d)
	}
}

func TestCrmsh(t *testing.T) {
	s := testSpec(3, "n1", "n2", "n3")
	s.Seed = 77
	got, err := s.Crmsh()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rsc_template vip-bucket ocf:loadshare:clustervip \\\n\tparams ip=192.0.2.10 buckets=3 hash_seed=77 \\\n\tmeta resource-stickiness=1",
		"primitive vip_0 @vip-bucket params bucket=0\n",
		"primitive vip_2 @vip-bucket params bucket=2\n",
		"location vip-own /^vip_([0-9]+)$/ \\\n\trule 100: own_vip_%1 eq 1 and writable_monit eq 1\n",
		"location vip-writable /^vip_[0-9]+$/ \\\n\trule 10: writable_monit eq 1\n",
		"clone server_load-clone server_load",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Crmsh() lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "vip_3") {
		t.Errorf("Crmsh() for 3 buckets names vip_3:\n%s", got)
	}
}

// TestXMLVerifies runs the generated CIB through crm_verify, Pacemaker's own
// checker (schema and semantics).
func TestXMLVerifies(t *testing.T) {
	if _, err := exec.LookPath("crm_verify"); err != nil {
		t.Skip("crm_verify not installed (Debian package pacemaker-cli-utils)")
	}
	for _, s := range []Specs{
		{withParams(testSpec(24, "n1", "n2", "n3"), "mysql_monitor", "socket", "/run/mysqld/mysqld.sock", "server_load", "weight_cpu", "0")},
		{withFlood(testSpec(4, "n1", "n2", "n3"))},
		{{Name: "db2", IP: netip.MustParseAddr("2001:db8::5"), Buckets: 256, NIC: "eth1", CIDRNetmask: 64}},
		writerReader("n1", "n2", "n3"),
	} {
		b, err := s.XML()
		if err != nil {
			t.Fatal(err)
		}
		// Fencing is the operator's (the generated CIB leaves stonith-enabled
		// alone); without a fencing device crm_verify refuses to start
		// anything, so this check switches it off.
		b = []byte(strings.Replace(string(b), `<cluster_property_set id="cib-bootstrap-options"/>`,
			`<cluster_property_set id="cib-bootstrap-options"><nvpair id="o-st" name="stonith-enabled" value="false"/></cluster_property_set>`, 1))
		f := filepath.Join(t.TempDir(), "cib.xml")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("crm_verify", "-V", "-x", f).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) != 0 {
			t.Errorf("crm_verify -V -x on VIP %q…: %v\n%s", s[0].Name, err, out)
		}
	}
}

// writerReader is the replication topology: a writer VIP on the writable
// node, a reader VIP over the caught-up replicas that gives the primary
// half its share.
func writerReader(nodes ...string) Specs { return writerReaderOf(24, 12, nodes...) }

// writerReaderOf is writerReader with w and r buckets.
func writerReaderOf(w, r int, nodes ...string) Specs {
	ws := testSpec(w, nodes...)
	ws.Strict = true // the writer VIP of a replication cluster
	rs := testSpec(r, nodes...)
	rs.Name, rs.IP, rs.Require = "ro", netip.MustParseAddr("192.0.2.11"), AttrReadable
	rs.Policy = DefaultPolicy
	rs.Policy.WriterWeight = 50
	return Specs{ws, rs}
}

// TestSpecsValidate: a whole configuration refuses two VIPs with one name
// or address, a required attribute no agent publishes, and attribute agent
// settings that differ (one set of agents serves every VIP), each naming
// what is wrong.
func TestSpecsValidate(t *testing.T) {
	ok := writerReader("n1", "n2")
	if err := ok.Validate(); err != nil {
		t.Fatalf("writer + reader: %v", err)
	}
	mod := func(f func(ss Specs)) Specs {
		ss := writerReader("n1", "n2")
		f(ss)
		return ss
	}
	for _, tc := range []struct {
		name string
		ss   Specs
		want string
	}{
		{"none", Specs{}, "no VIP"},
		{"one name", mod(func(ss Specs) { ss[1].Name = "vip" }), "name=vip: two VIPs with one name"},
		{"one address", mod(func(ss Specs) { ss[1].IP = ss[0].IP }), "vip ro: ip=192.0.2.10 is vip vip's too"},
		{"unknown attribute", mod(func(ss Specs) { ss[1].Require = "lag_monit" }), `vip ro: require="lag_monit": must be writable_monit`},
		{"bad policy", mod(func(ss Specs) { ss[1].Policy.WriterWeight = 101 }), "vip ro: policy: writer weight=101"},
		{"other nodes", mod(func(ss Specs) { ss[1].Nodes = []string{"n1"} }), "vip ro: its nodes differ from vip vip's"},
		{"other agent params", mod(func(ss Specs) { ss[1] = withParams(ss[1], "mysql_monitor", "user", "x") }), "vip ro: its mysql_monitor parameters differ"},
	} {
		if err := tc.ss.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestSpecsCrmsh: several VIPs share one pair of attribute agents, whose
// server_load places them all (the reader's require and policy in its
// word), and each VIP has its own template, buckets and rules on its
// required attribute.
func TestSpecsCrmsh(t *testing.T) {
	got, err := writerReader().Crmsh()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(got, "primitive server_load "); n != 1 {
		t.Errorf("%d server_load primitives, want 1:\n%s", n, got)
	}
	for _, want := range []string{
		"# loadshare: VIP 192.0.2.10 in 24 buckets",
		"# loadshare: VIP 192.0.2.11 in 12 buckets",
		"\tparams placer=\"vip ro:require=readable_monit,writer-weight=50\" \\\n",
		"rsc_template vip-bucket ocf:loadshare:clustervip \\\n\tparams ip=192.0.2.10 buckets=24",
		"rsc_template ro-bucket ocf:loadshare:clustervip \\\n\tparams ip=192.0.2.11 buckets=12",
		"primitive vip_23 @vip-bucket params bucket=23\n",
		"primitive ro_11 @ro-bucket params bucket=11\n",
		"location vip-own /^vip_([0-9]+)$/ \\\n\trule 100: own_vip_%1 eq 1 and writable_monit eq 1\n",
		"location vip-writable /^vip_[0-9]+$/ \\\n\trule 10: writable_monit eq 1\n",
		"location ro-own /^ro_([0-9]+)$/ \\\n\trule 100: own_ro_%1 eq 1 and readable_monit eq 1\n",
		"location ro-readable /^ro_[0-9]+$/ \\\n\trule 10: readable_monit eq 1\n",
		"location vip-strict /^vip_[0-9]+$/ \\\n\trule -INFINITY: not_defined writable_monit or writable_monit ne 1\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Crmsh() lacks %q; got:\n%s", want, got)
		}
	}
	vips, err := ParsePlacer("vip ro:require=readable_monit,writer-weight=50")
	if err != nil || len(vips) != 2 || vips[1].Require != AttrReadable || vips[1].Policy.WriterWeight != 50 || vips[0].Spec().norm().Require != AttrWritable {
		t.Errorf("the placer word does not read back: %+v %v", vips, err)
	}
}

func withFlood(s Spec) Spec { s.FloodCheck = true; return s }

// TestFloodCheckConfig: with FloodCheck, both bucket rules refuse a node
// whose flood_NAME is 0 (and only 0: unset keeps its buckets), and the
// check runs as an interleaved clone of clustervip flood_check=NAME with
// the VIP's address, at the attribute agents' interval.
func TestFloodCheckConfig(t *testing.T) {
	s := withFlood(testSpec(4, "n1", "n2", "n3"))
	s.AttrMonitor = 2
	out, err := s.Crmsh()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rule 100: own_vip_%1 eq 1 and writable_monit eq 1 and flood_vip ne 0\n",
		"rule 10: writable_monit eq 1 and flood_vip ne 0\n",
		"primitive vip-flood ocf:loadshare:clustervip \\\n\tparams ip=" + s.IP.String(),
		" flood_check=vip \\\n\top monitor interval=2s",
		"clone vip-flood-clone vip-flood meta interleave=true\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Crmsh() lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "vip-flood ocf:loadshare:clustervip \\\n\tparams ip="+s.IP.String()+" buckets=") {
		t.Errorf("the flood check has a buckets parameter:\n%s", out)
	}
	s.FloodCheck = false
	if out, _ := s.Crmsh(); strings.Contains(out, "flood") {
		t.Errorf("without FloodCheck, Crmsh() mentions flood:\n%s", out)
	}
}
