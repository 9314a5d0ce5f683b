package lab

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// The campaign is a function of its seed alone: the same seed gives the
// same faults on the same nodes, another seed other ones; over a long
// campaign every kind and every node is drawn, and a move never goes to
// the node it leaves.
func TestSoakPlanBySeed(t *testing.T) {
	a, b := SoakPlan(7, 3, 200), SoakPlan(7, 3, 200)
	if !slices.Equal(a, b) {
		t.Fatalf("seed 7 twice: plans differ:\n%v\n%v", a[:10], b[:10])
	}
	if c := SoakPlan(8, 3, 200); slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 give the same plan")
	}
	if got := SoakPlan(7, 3, 20); !slices.Equal(got, a[:20]) {
		t.Errorf("a shorter campaign of seed 7 is not the start of the longer one: %v vs %v", got, a[:20])
	}
	kinds, nodes := map[FaultKind]int{}, map[string]int{}
	for _, f := range a {
		kinds[f.Kind]++
		nodes[f.Node]++
		if f.Kind == FaultMove && (f.To == "" || f.To == f.Node) {
			t.Errorf("%s: a move must go to another node", f)
		}
		if f.Kind != FaultMove && f.To != "" {
			t.Errorf("%s: only a move names a destination", f)
		}
	}
	for _, k := range FaultKinds {
		if kinds[k] == 0 {
			t.Errorf("200 faults of seed 7 never draw %s (drawn: %v)", k, kinds)
		}
	}
	if len(nodes) != 3 {
		t.Errorf("200 faults of seed 7 hit nodes %v, want all of n1 n2 n3", nodes)
	}
	// Fixed: a plan printed in a report can be replayed from its seed by
	// any later build with the same FaultKinds.
	want := SoakPlan(1, 3, 4)
	t.Logf("seed 1, 3 nodes: %v", want)
	t.Logf("seed 2, 3 nodes (make test's): %v", SoakPlan(2, 3, 4))
	if got := SoakPlan(1, 5, 4); slices.Equal(got, want) {
		t.Errorf("seed 1 on 5 nodes gives the 3-node plan")
	}
}

func TestSoakTable(t *testing.T) {
	rep := &SoakReport{Nodes: 3, Buckets: 12, Seed: 7, Elapsed: time.Minute, Faults: []FaultResult{
		{Fault: Fault{Kind: FaultCrash, Node: "n2"}, Settle: 5 * time.Second, Recover: 20 * time.Second,
			Client: &Tally{Answers: map[string]int{"n1": 100}, Timeout: 3}},
		{Fault: Fault{Kind: FaultCrash, Node: "n3"}, Settle: 7 * time.Second, Recover: 10 * time.Second,
			Client: &Tally{Answers: map[string]int{"n1": 50}, Timeout: 1}},
		{Fault: Fault{Kind: FaultMove, Node: "n1", To: "n2"}, Settle: time.Second, Recover: 2 * time.Second,
			Client: &Tally{Answers: map[string]int{"n1": 10}}, Violations: []string{"bucket 3 owned by [n1 n2]"}},
	}}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{
		"3 nodes, 12 buckets, seed 7, 3 faults",
		"crash  2        5.0s  7.0s        10.0s  20.0s          154       4           3        4        0      0      0           0",
		"invariant violations: 1",
		"fault 3 (move n1→n2): bucket 3 owned by [n1 n2]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}
