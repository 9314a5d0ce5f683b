package crm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func statusOf(nodes []NodeStatus, running ...string) *Status {
	st := &Status{Nodes: nodes}
	for k, n := range running {
		r := Resource{ID: Spec{}.Resource(k), Role: "Started"}
		if n != "" {
			r.Nodes = []string{n}
		}
		st.Resources = append(st.Resources, r)
	}
	return st
}

// TestPlanSettling: three idle nodes holding 5/3/4 of 12 buckets (what a
// load passing through n2 leaves: every count within hysteresis of 4/4/4)
// stay so until settle says the ideal has held long enough; then the
// round goes to 4/4/4, moving one bucket. settle sees the ideal.
func TestPlanSettling(t *testing.T) {
	spec := Spec{IP: netip.MustParseAddr("192.0.2.1"), Buckets: 12}
	owners := []string{"n1", "n1", "n1", "n1", "n1", "n2", "n2", "n2", "n3", "n3", "n3", "n3"}
	var nodes []NodeStatus
	for _, n := range []string{"n1", "n2", "n3"} {
		a := map[string]string{"writable_monit": "1", "server_load": "0"}
		for k, o := range owners {
			if o == n {
				a[spec.OwnAttr(k)] = "1"
			}
		}
		nodes = append(nodes, NodeStatus{Name: n, Online: true, Attrs: a})
	}
	st := statusOf(nodes, owners...)
	want := []Assignment{{"n1", 4}, {"n2", 4}, {"n3", 4}}
	var seen []Assignment
	for _, settled := range []bool{false, true} {
		p := planSettling(st, spec, DefaultPolicy, func(ideal []Assignment) bool { seen = ideal; return settled })
		if !reflect.DeepEqual(p.Ideal, want) || !reflect.DeepEqual(seen, want) {
			t.Fatalf("ideal %v, settle saw %v; want %v", p.Ideal, seen, want)
		}
		switch got := targetMap(p.Targets); {
		case !settled && (got["n1"] != 5 || got["n2"] != 3 || p.Moves() != 0):
			t.Errorf("not settled: targets %v, %d moves; want 5/3/4 kept by hysteresis, no move", got, p.Moves())
		case settled && (!reflect.DeepEqual(p.Targets, want) || p.Moves() != 1):
			t.Errorf("settled: targets %v, %d moves; want %v, one move", p.Targets, p.Moves(), want)
		}
	}
}

// TestPlanFromReader: a reader VIP's buckets go to the nodes whose
// readable_monit is 1 (the caught-up replicas and the primary), not to a
// lagging replica, and writer-weight 50 gives the primary half a
// replica's share at equal load; the writer VIP of the same cluster goes
// to the primary alone.
func TestPlanFromReader(t *testing.T) {
	nodes := []NodeStatus{
		{Name: "p1", Online: true, Attrs: map[string]string{"writable_monit": "1", "readable_monit": "1", "server_load": "20"}},
		{Name: "r1", Online: true, Attrs: map[string]string{"writable_monit": "0", "readable_monit": "1", "server_load": "20"}},
		{Name: "r2", Online: true, Attrs: map[string]string{"writable_monit": "0", "readable_monit": "1", "server_load": "20"}},
		{Name: "r3", Online: true, Attrs: map[string]string{"writable_monit": "0", "readable_monit": "0", "server_load": "20"}}, // lagging
	}
	vips, err := ParsePlacer("rw ro:require=readable_monit,writer-weight=50")
	if err != nil {
		t.Fatal(err)
	}
	counts := func(v PlacerVIP, buckets int) map[string]int {
		spec := v.Spec()
		spec.Buckets = buckets
		st := &Status{Nodes: nodes}
		for k := 0; k < buckets; k++ {
			st.Resources = append(st.Resources, Resource{ID: spec.Resource(k), Role: "Stopped"})
		}
		m := map[string]int{}
		for _, a := range PlanFrom(st, spec, v.Policy).Targets {
			m[a.Node] = a.Buckets
		}
		return m
	}
	if got, want := counts(vips[1], 10), map[string]int{"p1": 2, "r1": 4, "r2": 4, "r3": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("reader targets %v, want %v", got, want)
	}
	if got, want := counts(vips[0], 10), map[string]int{"p1": 10, "r1": 0, "r2": 0, "r3": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("writer targets %v, want %v", got, want)
	}
}

func TestPlanFrom(t *testing.T) {
	spec := Spec{IP: netip.MustParseAddr("192.0.2.1"), Buckets: 4}
	live := func(name, load string, own ...int) NodeStatus {
		a := map[string]string{"writable_monit": "1", "server_load": load}
		for _, k := range own {
			a[spec.OwnAttr(k)] = "1"
		}
		return NodeStatus{Name: name, Online: true, Attrs: a}
	}
	t.Run("steady", func(t *testing.T) {
		st := statusOf([]NodeStatus{live("a", "30", 0, 1), live("b", "30", 2, 3)}, "a", "a", "b", "b")
		if p := PlanFrom(st, spec, DefaultPolicy); !p.Empty() || p.Moves() != 0 {
			t.Errorf("steady plan = set %v delete %v", p.Set, p.Delete)
		}
	})
	t.Run("first round", func(t *testing.T) {
		st := statusOf([]NodeStatus{live("a", "30"), live("b", "30")}, "b", "a", "b", "a")
		p := PlanFrom(st, spec, DefaultPolicy)
		want := []AttrChange{{"b", "own_vip_0"}, {"a", "own_vip_1"}, {"b", "own_vip_2"}, {"a", "own_vip_3"}}
		if !reflect.DeepEqual(p.Set, want) || len(p.Delete) != 0 || p.Moves() != 0 {
			t.Errorf("plan = set %v delete %v moves %d, want set %v, no move", p.Set, p.Delete, p.Moves(), want)
		}
	})
	t.Run("not writable loses its claims", func(t *testing.T) {
		b := live("b", "30", 2, 3)
		b.Attrs["writable_monit"] = "0"
		st := statusOf([]NodeStatus{live("a", "30", 0, 1), b}, "a", "a", "a", "a")
		p := PlanFrom(st, spec, DefaultPolicy)
		if !reflect.DeepEqual(p.Owners, Placement{"a", "a", "a", "a"}) ||
			!reflect.DeepEqual(p.Delete, []AttrChange{{"b", "own_vip_2"}, {"b", "own_vip_3"}}) {
			t.Errorf("plan = owners %v set %v delete %v", p.Owners, p.Set, p.Delete)
		}
	})
	t.Run("claims beyond the bucket count are deleted", func(t *testing.T) {
		a := live("a", "30", 0, 1)
		a.Attrs["own_vip_9"] = "1"
		st := statusOf([]NodeStatus{a, live("b", "30", 2, 3)}, "a", "a", "b", "b")
		p := PlanFrom(st, spec, DefaultPolicy)
		if len(p.Set) != 0 || !reflect.DeepEqual(p.Delete, []AttrChange{{"a", "own_vip_9"}}) {
			t.Errorf("plan = set %v delete %v, want only own_vip_9 deleted", p.Set, p.Delete)
		}
	})
	t.Run("a failed node's buckets are left to the failover transition", func(t *testing.T) {
		// c failed: its claims went with it and buckets 2, 3 are still
		// being started; a claim now would abort that transition.
		st := statusOf([]NodeStatus{live("a", "30", 0), live("b", "30", 1)}, "a", "b", "", "")
		p := PlanFrom(st, spec, DefaultPolicy)
		if len(p.Set) != 0 || len(p.Delete) != 0 || p.Held != 2 {
			t.Errorf("plan = set %v delete %v held %d, want nothing written, 2 held", p.Set, p.Delete, p.Held)
		}
		// Bucket 2 has started on b, 3 not yet: b's claim of 2 moves
		// nothing and waits too.
		st = statusOf([]NodeStatus{live("a", "30", 0), live("b", "30", 1)}, "a", "b", "b", "")
		p = PlanFrom(st, spec, DefaultPolicy)
		if len(p.Set) != 0 || len(p.Delete) != 0 || p.Held != 2 {
			t.Errorf("plan = set %v delete %v held %d, want nothing written, 2 held", p.Set, p.Delete, p.Held)
		}
		// Before c is fenced crm_mon still shows its buckets on it.
		c := NodeStatus{Name: "c", Online: false, Unclean: true, Attrs: map[string]string{}}
		st = statusOf([]NodeStatus{live("a", "30", 0), live("b", "30", 1), c}, "a", "b", "c", "c")
		p = PlanFrom(st, spec, DefaultPolicy)
		if len(p.Set) != 0 || len(p.Delete) != 0 || p.Held != 2 || p.Moves() != 0 {
			t.Errorf("unclean c: plan = set %v delete %v held %d moves %d, want nothing written, 2 held", p.Set, p.Delete, p.Held, p.Moves())
		}
		// Once they run, the next round claims them there: no move.
		st = statusOf([]NodeStatus{live("a", "30", 0), live("b", "30", 1)}, "a", "b", "b", "a")
		p = PlanFrom(st, spec, DefaultPolicy)
		want := []AttrChange{{"b", "own_vip_2"}, {"a", "own_vip_3"}}
		if !reflect.DeepEqual(p.Set, want) || len(p.Delete) != 0 || p.Held != 0 || p.Moves() != 0 {
			t.Errorf("plan = set %v delete %v held %d moves %d, want set %v", p.Set, p.Delete, p.Held, p.Moves(), want)
		}
	})
	t.Run("double claim counts where it runs", func(t *testing.T) {
		st := statusOf([]NodeStatus{live("a", "30", 0, 1, 2), live("b", "30", 2, 3)}, "a", "a", "a", "b")
		p := PlanFrom(st, spec, DefaultPolicy)
		if !reflect.DeepEqual(p.Owners, Placement{"a", "a", "b", "b"}) && !reflect.DeepEqual(p.Owners, Placement{"a", "a", "a", "b"}) {
			t.Errorf("owners %v", p.Owners)
		}
		for _, d := range p.Delete {
			if p.Owners[2] == d.Node && d.Name == "own_vip_2" {
				t.Errorf("plan deletes the owner's own claim: %v", p.Delete)
			}
		}
	})
}

type recAttrs struct {
	node string
	mu   *sync.Mutex
	log  *[]string
	fail string // attribute whose Set fails
}

func (r recAttrs) Set(_ context.Context, name, value string, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == r.fail {
		return errors.New("attrd down")
	}
	*r.log = append(*r.log, "set "+r.node+" "+name+"="+value)
	return nil
}
func (r recAttrs) Get(context.Context, string) (string, bool, error) { return "", false, nil }
func (r recAttrs) Refresh(context.Context) error                     { return nil }
func (r recAttrs) Delete(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "delete "+r.node+" "+name)
	return nil
}

// TestPlanApplyOrder: every set is written before any delete, and a failed
// set stops the round before the deletes.
func TestPlanApplyOrder(t *testing.T) {
	var p Plan
	for k := 0; k < 40; k++ {
		p.Set = append(p.Set, AttrChange{"b", fmt.Sprintf("own_vip_%d", k)})
		p.Delete = append(p.Delete, AttrChange{"a", fmt.Sprintf("own_vip_%d", k)})
	}
	var mu sync.Mutex
	var log []string
	if err := p.Apply(context.Background(), func(n string) Attrs { return recAttrs{node: n, mu: &mu, log: &log} }); err != nil {
		t.Fatal(err)
	}
	if len(log) != 80 {
		t.Fatalf("Apply wrote %d changes, want 80", len(log))
	}
	for i, l := range log {
		if (i < 40) != strings.HasPrefix(l, "set ") {
			t.Fatalf("write %d is %q: sets and deletes interleaved: %v", i, l, log)
		}
	}
	log = nil
	err := p.Apply(context.Background(), func(n string) Attrs { return recAttrs{node: n, mu: &mu, log: &log, fail: "own_vip_7"} })
	if err == nil || !strings.Contains(err.Error(), "give bucket attribute own_vip_7 to b: attrd down") {
		t.Errorf("Apply with a failing set = %v", err)
	}
	for _, l := range log {
		if strings.HasPrefix(l, "delete") {
			t.Fatalf("Apply deleted after a failed set: %v", log)
		}
	}
}

// TestParseVIP: every --vip key reads into its Spec field, and a bad
// value or key is named.
func TestParseVIP(t *testing.T) {
	s, err := ParseVIP("name=rw,ip=192.0.2.10,buckets=24,nic=eth1,cidr-netmask=24,seed=7,strict=true,hysteresis=0,writer-weight=50")
	want := Spec{Name: "rw", IP: netip.MustParseAddr("192.0.2.10"), Buckets: 24, NIC: "eth1", CIDRNetmask: 24, Seed: 7, Strict: true,
		Require: AttrWritable, Policy: DefaultPolicy}
	want.Policy.Hysteresis, want.Policy.WriterWeight = 0, 50
	if err != nil || !reflect.DeepEqual(s, want) {
		t.Errorf("ParseVIP = %+v, %v; want %+v", s, err, want)
	}
	for in, msg := range map[string]string{
		"name=rw,strict=maybe":     `strict="maybe": not true or false`,
		"name=rw,buckets=many":     `buckets="many": not an integer`,
		"name=rw,ip=here":          `ip="here": not an IP address`,
		"name=rw,colour=red":       `unknown key "colour" (want name, ip, buckets, nic, cidr-netmask, seed, strict, require`,
		"name=rw,require=writable": `require`,
		"name=rw,buckets":          `"buckets": want key=value`,
	} {
		if _, err := ParseVIP(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseVIP(%q) = %v; want an error containing %q", in, err, msg)
		}
	}
}

// TestPlanFromFlood: a node whose flood check says unreached (flood_vip=0)
// gets no target, like a node that is not writable; unset and 1 count as
// reached; another VIP's flood attribute does not matter.
func TestPlanFromFlood(t *testing.T) {
	node := func(name, flood string) NodeStatus {
		a := map[string]string{"writable_monit": "1", "server_load": "20"}
		if flood != "" {
			a["flood_vip"] = flood
		}
		a["flood_other"] = "0"
		return NodeStatus{Name: name, Online: true, Attrs: a}
	}
	st := statusOf([]NodeStatus{node("n1", "1"), node("n2", "0"), node("n3", "")}, "n1", "n2", "n3", "n1", "n2", "n3")
	spec := Spec{Buckets: 6}
	m := map[string]int{}
	for _, a := range PlanFrom(st, spec, DefaultPolicy).Targets {
		m[a.Node] = a.Buckets
	}
	if want := map[string]int{"n1": 3, "n2": 0, "n3": 3}; !reflect.DeepEqual(m, want) {
		t.Errorf("targets with n2 flood_vip=0: %v, want %v", m, want)
	}
}
