package crm

import (
	"context"
	"net/netip"
	"reflect"
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
	log  *[]string
}

func (r recAttrs) Set(_ context.Context, name, value string, _ time.Duration) error {
	*r.log = append(*r.log, "set "+r.node+" "+name+"="+value)
	return nil
}
func (r recAttrs) Get(context.Context, string) (string, bool, error) { return "", false, nil }
func (r recAttrs) Delete(_ context.Context, name string) error {
	*r.log = append(*r.log, "delete "+r.node+" "+name)
	return nil
}

func TestPlanApplyOrder(t *testing.T) {
	var log []string
	p := Plan{Set: []AttrChange{{"b", "own_vip_1"}}, Delete: []AttrChange{{"a", "own_vip_1"}}}
	if err := p.Apply(context.Background(), func(n string) Attrs { return recAttrs{n, &log} }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"set b own_vip_1=1", "delete a own_vip_1"}; !reflect.DeepEqual(log, want) {
		t.Errorf("Apply wrote %v, want %v", log, want)
	}
}
