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
	for _, s := range []Spec{withParams(testSpec(24, "n1", "n2", "n3"), "mysql_monitor", "socket", "/run/mysqld/mysqld.sock", "server_load", "weight_cpu", "0"), {Name: "db2", IP: netip.MustParseAddr("2001:db8::5"), Buckets: 256, NIC: "eth1", CIDRNetmask: 64}} {
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
			t.Errorf("crm_verify -V -x on Spec %q: %v\n%s", s.Name, err, out)
		}
	}
}
