package crm

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readFixture(t *testing.T, name string) *Status {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus(b)
	if err != nil {
		t.Fatalf("ParseStatus(%s): %v", name, err)
	}
	return st
}

// crm_mon-lab-real.xml: a real 3-node cluster (test/lab), n3 stopped, a
// globally-unique Dummy clone of 3.
func TestParseStatusRealCluster(t *testing.T) {
	st := readFixture(t, "crm_mon-lab-real.xml")
	if st.DC != "n2" {
		t.Errorf("DC = %q, want n2", st.DC)
	}
	n2, ok := st.Node("n2")
	if !ok || !n2.Online || n2.ID != "2" || n2.Attrs["server_load"] != "42" {
		t.Errorf("node n2 = %+v, want online id 2 server_load 42", n2)
	}
	if n3, _ := st.Node("n3"); n3.Online {
		t.Errorf("n3 online, want offline")
	}
	want := []Resource{
		{ID: "d:0", Agent: "ocf:pacemaker:Dummy", Role: "Started", Nodes: []string{"n1"}, Clone: "dc"},
		{ID: "d:1", Agent: "ocf:pacemaker:Dummy", Role: "Started", Nodes: []string{"n2"}, Clone: "dc"},
		{ID: "d:2", Agent: "ocf:pacemaker:Dummy", Role: "Started", Nodes: []string{"n1"}, Clone: "dc"},
	}
	if !reflect.DeepEqual(st.Resources, want) {
		t.Errorf("Resources = %+v\nwant %+v", st.Resources, want)
	}
	// What test/lab reads of it.
	if !st.Quorum {
		t.Error("quorum false, want with_quorum=true")
	}
	if got := st.Online(); !reflect.DeepEqual(got, []string{"n1", "n2"}) {
		t.Errorf("Online = %v, want n1 n2", got)
	}
	if v, ok := st.Attr("n2", "server_load"); !ok || v != "42" {
		t.Errorf("n2 server_load = %q %v, want 42", v, ok)
	}
	if _, ok := st.Attr("n9", "server_load"); ok {
		t.Error("Attr of an unknown node is set")
	}
	if got := st.Count("d:"); got["n1"] != 2 || got["n2"] != 1 || got["n3"] != 0 {
		t.Errorf("Count(d:) = %v, want n1=2 n2=1", got)
	}
}

// crm_mon-3nodes.xml, crm_mon-node-failed.xml: crm_mon on CIBs made by
// crm_simulate (6 bucket primitives, an anonymous clone; n2 not writable;
// then n3 failed).
func TestParseStatusSimulated(t *testing.T) {
	st := readFixture(t, "crm_mon-3nodes.xml")
	if len(st.Nodes) != 3 || st.DC != "" {
		t.Fatalf("nodes %d DC %q, want 3 and none", len(st.Nodes), st.DC)
	}
	n1, _ := st.Node("n1")
	if n1.Attrs["server_load"] != "35" || n1.Attrs["writable_monit"] != "1" || n1.Attrs["own_0"] != "1" {
		t.Errorf("n1 attrs = %v", n1.Attrs)
	}
	n2, _ := st.Node("n2")
	if n2.Attrs["writable_monit"] != "0" {
		t.Errorf("n2 writable_monit = %q, want 0", n2.Attrs["writable_monit"])
	}
	var clone []string
	for _, r := range st.Resources {
		if r.Clone == "server_load-clone" {
			clone = append(clone, r.Nodes...)
		}
	}
	if !reflect.DeepEqual(clone, []string{"n1", "n2", "n3"}) {
		t.Errorf("server_load-clone runs on %v, want n1 n2 n3", clone)
	}
	r, ok := st.Resource("vip_5")
	if !ok || !reflect.DeepEqual(r.Nodes, []string{"n3"}) {
		t.Errorf("vip_5 = %+v, want on n3 (own_5 there, n3 writable)", r)
	}

	st = readFixture(t, "crm_mon-node-failed.xml")
	if n3, _ := st.Node("n3"); n3.Online {
		t.Error("n3 online after failing")
	}
	counts := map[string]int{}
	stopped := 0
	for _, r := range st.Resources {
		if r.Clone != "" {
			continue
		}
		if len(r.Nodes) == 0 {
			stopped++
		}
		for _, n := range r.Nodes {
			counts[n]++
		}
	}
	if stopped != 0 || counts["n1"] != 6 {
		t.Errorf("after n3 failed: counts %v stopped %d, want all 6 on n1 (n2 not writable)", counts, stopped)
	}
}

func TestParseStatusErrors(t *testing.T) {
	if _, err := ParseStatus([]byte("<pacemaker-result><nodes>")); err == nil {
		t.Error("ParseStatus of truncated XML: no error")
	}
}

// crm_mon-lab-buckets.xml: the real 3-node lab cluster running the
// generated configuration (24 Dummy bucket primitives), after the placer
// ran: every bucket runs where its own_vip_K says, 8/8/8, so a new placer
// round has nothing to do.
func TestParseStatusRealBuckets(t *testing.T) {
	st := readFixture(t, "crm_mon-lab-buckets.xml")
	spec := Spec{Buckets: BucketsIn(st, "vip")}
	if spec.Buckets != 24 || st.DC == "" {
		t.Fatalf("buckets %d DC %q, want 24 and a DC", spec.Buckets, st.DC)
	}
	plan := PlanFrom(st, spec, DefaultPolicy)
	if !plan.Empty() || plan.Moves() != 0 {
		t.Errorf("placer round on a settled real cluster: set %v delete %v", plan.Set, plan.Delete)
	}
	if got := plan.Running.Counts(); got["n1"] != 8 || got["n2"] != 8 || got["n3"] != 8 {
		t.Errorf("running counts %v, want 8/8/8", got)
	}
	for k, n := range plan.Running {
		if nd, _ := st.Node(n); nd.Attrs[spec.OwnAttr(k)] != "1" {
			t.Errorf("bucket %d runs on %s, which lacks %s=1", k, n, spec.OwnAttr(k))
		}
	}
}
