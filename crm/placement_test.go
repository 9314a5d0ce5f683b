package crm

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
)

func targetMap(as []Assignment) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		m[a.Node] = a.Buckets
	}
	return m
}

func TestTargetExamples(t *testing.T) {
	live := func(name string, load int) Node { return Node{Name: name, Online: true, Eligible: true, Load: load} }
	tests := []struct {
		name    string
		nodes   []Node
		buckets int
		p       Policy
		want    map[string]int
	}{
		{"even", []Node{live("n1", 30), live("n2", 30), live("n3", 30)}, 24, DefaultPolicy,
			map[string]int{"n1": 8, "n2": 8, "n3": 8}},
		{"skewed 10/50/90", []Node{live("n1", 10), live("n2", 50), live("n3", 90)}, 24, DefaultPolicy,
			map[string]int{"n1": 14, "n2": 8, "n3": 2}},
		{"all overloaded", []Node{live("n1", 100), live("n2", 100), live("n3", 100)}, 24, DefaultPolicy,
			map[string]int{"n1": 8, "n2": 8, "n3": 8}},
		{"all overloaded, no min share", []Node{live("n1", 100), live("n2", 100), live("n3", 100)}, 24,
			Policy{FullLoad: 100}, map[string]int{"n1": 8, "n2": 8, "n3": 8}},
		{"remainder tie goes to first name", []Node{live("b", 0), live("a", 0), live("c", 0)}, 4, DefaultPolicy,
			map[string]int{"a": 2, "b": 1, "c": 1}},
		{"not writable gets none", []Node{live("n1", 10), {Name: "n2", Online: true, Load: 10}, live("n3", 10)}, 24, DefaultPolicy,
			map[string]int{"n1": 12, "n2": 0, "n3": 12}},
		{"offline gets none", []Node{live("n1", 10), {Name: "n2", Eligible: true, Load: 10}, live("n3", 10)}, 24, DefaultPolicy,
			map[string]int{"n1": 12, "n2": 0, "n3": 12}},
		{"nobody writable", []Node{{Name: "n1", Online: true}, {Name: "n2", Online: true}}, 24, DefaultPolicy,
			map[string]int{"n1": 0, "n2": 0}},
		{"missing load counts as saturated", []Node{live("n1", 0), live("n2", -1)}, 21, DefaultPolicy,
			map[string]int{"n1": 20, "n2": 1}},
		{"max buckets", []Node{live("n1", 0), live("n2", 90), live("n3", 90)}, 24, Policy{FullLoad: 100, MaxBuckets: 12},
			map[string]int{"n1": 12, "n2": 6, "n3": 6}},
		{"min buckets", []Node{live("n1", 0), live("n2", 100), live("n3", 100)}, 24, Policy{FullLoad: 100, MinBuckets: 3},
			map[string]int{"n1": 18, "n2": 3, "n3": 3}},
		{"max gives way rather than leave buckets dark", []Node{live("n1", 0), live("n2", 0)}, 24, Policy{FullLoad: 100, MaxBuckets: 5},
			map[string]int{"n1": 12, "n2": 12}},
		{"idle load", []Node{live("n1", 0), live("n2", 20)}, 20, Policy{IdleLoad: 20, FullLoad: 100},
			map[string]int{"n1": 10, "n2": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := targetMap(Target(tt.nodes, tt.buckets, tt.p))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Target(%v, %d) = %v, want %v", tt.nodes, tt.buckets, got, tt.want)
			}
		})
	}
}

func TestTargetHysteresis(t *testing.T) {
	nodes := []Node{
		{Name: "n1", Online: true, Eligible: true, Load: 40, Prev: 8},
		{Name: "n2", Online: true, Eligible: true, Load: 40, Prev: 8},
		{Name: "n3", Online: true, Eligible: true, Load: 40, Prev: 8},
	}
	// One step up on n1: the ideal is 7/9/8 (within 1 of 8/8/8): nothing moves.
	nodes[0].Load = 45
	if got := targetMap(Target(nodes, 24, DefaultPolicy)); got["n1"] != 8 || got["n2"] != 8 || got["n3"] != 8 {
		t.Errorf("Target after one small step = %v, want 8/8/8 kept", got)
	}
	// A big step moves to the ideal at once.
	nodes[0].Load = 80
	got := targetMap(Target(nodes, 24, DefaultPolicy))
	ideal := targetMap(Target(nodes, 24, Policy{FullLoad: 100, MinShare: 5}))
	if !reflect.DeepEqual(got, ideal) || got["n1"] >= 8 {
		t.Errorf("Target after big step = %v, want the ideal %v with n1 < 8", got, ideal)
	}
	// A previous target that no longer sums to the buckets (a node left) never stands.
	nodes[0].Load, nodes[2].Online = 40, false
	got = targetMap(Target(nodes, 24, DefaultPolicy))
	if got["n1"]+got["n2"] != 24 || got["n3"] != 0 {
		t.Errorf("Target with n3 gone = %v, want n1+n2=24, n3=0", got)
	}
}

// randomNodes makes k nodes with random names, loads, membership and
// previous targets summing to buckets over the live writable ones.
func randomNodes(r *rand.Rand, k, buckets int) []Node {
	nodes := make([]Node, k)
	for i := range nodes {
		nodes[i] = Node{
			Name:     fmt.Sprintf("node%02d", r.Intn(100)*100+i),
			Online:   r.Intn(8) != 0,
			Eligible: r.Intn(6) != 0,
			Load:     r.Intn(112) - 6,
		}
	}
	prev := Target(nodes, buckets, Policy{FullLoad: 100, MinShare: r.Intn(10)})
	for i := range nodes {
		for _, a := range prev {
			if a.Node == nodes[i].Name {
				nodes[i].Prev = a.Buckets
			}
		}
	}
	return nodes
}

// randomCases calls f iters times, from seed, with a random cluster of
// minK to maxK nodes (randomNodes) and 1 to 256 buckets.
func randomCases(seed int64, iters, minK, maxK int, f func(r *rand.Rand, nodes []Node, buckets int)) {
	r := rand.New(rand.NewSource(seed))
	for iter := 0; iter < iters; iter++ {
		k := minK + r.Intn(maxK-minK+1)
		buckets := 1 + r.Intn(256)
		f(r, randomNodes(r, k, buckets), buckets)
	}
}

func randomPolicy(r *rand.Rand) Policy {
	p := Policy{IdleLoad: r.Intn(20), FullLoad: 80 + r.Intn(21), MinShare: r.Intn(10), Hysteresis: r.Intn(3)}
	if r.Intn(3) == 0 {
		p.MinBuckets = r.Intn(4)
	}
	if r.Intn(3) == 0 {
		p.MaxBuckets = p.MinBuckets + 1 + r.Intn(60)
	}
	return p
}

func TestTargetProperties(t *testing.T) {
	randomCases(5, 3000, 1, 9, func(r *rand.Rand, nodes []Node, buckets int) {
		p := randomPolicy(r)
		if err := p.Validate(); err != nil {
			t.Fatalf("randomPolicy made an invalid policy %+v: %v", p, err)
		}
		got := Target(nodes, buckets, p)
		sum, anyLive := 0, false
		for i, a := range got {
			sum += a.Buckets
			if i > 0 && got[i-1].Node > a.Node {
				t.Fatalf("Target(%v) not sorted by name: %v", nodes, got)
			}
		}
		for _, n := range nodes {
			live := n.Online && n.Eligible
			anyLive = anyLive || live
			if tg := targetMap(got)[n.Name]; !live && tg != 0 {
				t.Fatalf("Target(%v, %d, %+v): %s (online=%v writable=%v) got %d, want 0", nodes, buckets, p, n.Name, n.Online, n.Eligible, tg)
			} else if live && p.MaxBuckets > 0 && liveCount(nodes)*p.MaxBuckets >= buckets && tg > p.MaxBuckets && tg != n.Prev {
				t.Fatalf("Target(%v, %d, %+v): %s got %d above max", nodes, buckets, p, n.Name, tg)
			}
		}
		if anyLive && sum != buckets {
			t.Fatalf("Target(%v, %d, %+v) sums to %d, want %d", nodes, buckets, p, sum, buckets)
		}
		if !anyLive && sum != 0 {
			t.Fatalf("Target(%v, %d, %+v) sums to %d with no live writable node, want 0", nodes, buckets, p, sum)
		}
		// Permutation: same answer.
		perm := append([]Node(nil), nodes...)
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if again := Target(perm, buckets, p); !reflect.DeepEqual(again, got) {
			t.Fatalf("Target not stable under permutation:\n%v -> %v\n%v -> %v", nodes, got, perm, again)
		}
		// Hysteresis: either the previous targets or the ideal, and within H of the ideal.
		noH := p
		noH.Hysteresis = 0
		ideal := targetMap(Target(nodes, buckets, noH))
		for _, a := range got {
			if d := a.Buckets - ideal[a.Node]; d > p.Hysteresis || -d > p.Hysteresis {
				t.Fatalf("Target(%v, %d, %+v): %s got %d, ideal %d: beyond hysteresis", nodes, buckets, p, a.Node, a.Buckets, ideal[a.Node])
			}
		}
	})
}

func liveCount(nodes []Node) int {
	c := 0
	for _, n := range nodes {
		if n.Online && n.Eligible {
			c++
		}
	}
	return c
}

// TestTargetMonotone: more load on one node never gives it more buckets.
// (It can take one from a third node: largest remainder's population
// paradox; see docs/placement.md.)
func TestTargetMonotone(t *testing.T) {
	randomCases(7, 3000, 2, 8, func(r *rand.Rand, nodes []Node, buckets int) {
		for i := range nodes {
			nodes[i].Online, nodes[i].Eligible = true, true
			if nodes[i].Load < 0 { // missing is no load: tested in TestTargetExamples
				nodes[i].Load = 0
			}
		}
		p := Policy{IdleLoad: r.Intn(20), FullLoad: 80 + r.Intn(21), MinShare: r.Intn(10)}
		i := r.Intn(len(nodes))
		before := targetMap(Target(nodes, buckets, p))
		more := append([]Node(nil), nodes...)
		more[i].Load += 1 + r.Intn(30)
		after := targetMap(Target(more, buckets, p))
		name := nodes[i].Name
		if after[name] > before[name] {
			t.Fatalf("load of %s %d -> %d: target %d -> %d (nodes %v, buckets %d, %+v)", name, nodes[i].Load, more[i].Load, before[name], after[name], nodes, buckets, p)
		}
	})
}

func TestAssign(t *testing.T) {
	pl := func(s ...string) Placement { return Placement(s) }
	tests := []struct {
		name          string
		targets       []Assignment
		prev, running Placement
		want          Placement
	}{
		{"first placement fills by name",
			[]Assignment{{"a", 2}, {"b", 1}}, nil, nil, pl("a", "a", "b")},
		{"steady stays",
			[]Assignment{{"a", 1}, {"b", 2}}, pl("b", "a", "b"), pl("b", "a", "b"), pl("b", "a", "b")},
		{"over target gives up its highest bucket",
			[]Assignment{{"a", 1}, {"b", 2}}, pl("a", "a", "b"), pl("a", "a", "b"), pl("a", "b", "b")},
		{"failed node's buckets stay where they run",
			[]Assignment{{"a", 2}, {"b", 2}}, pl("", "", "a", "b"), pl("b", "a", "a", "b"), pl("b", "a", "a", "b")},
		{"claim wins over running while in transit",
			[]Assignment{{"a", 1}, {"b", 1}}, pl("b", "a"), pl("a", "a"), pl("b", "a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Assign(tt.targets, len(tt.want), tt.prev, tt.running)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Assign(%v, prev %v, running %v) = %v, want %v", tt.targets, tt.prev, tt.running, got, tt.want)
			}
		})
	}
}

// TestAssignMinimalMoves: from a steady placement, Assign reaches the
// targets exactly, owns every bucket, and moves exactly the buckets the
// counts force: sum over nodes of max(0, had - target).
func TestAssignMinimalMoves(t *testing.T) {
	randomCases(11, 2000, 1, 8, func(r *rand.Rand, nodes []Node, buckets int) {
		nodes[0].Online, nodes[0].Eligible = true, true
		before := Target(nodes, buckets, Policy{FullLoad: 100})
		cur := Assign(before, buckets, nil, nil)
		for i := range nodes {
			nodes[i].Load = r.Intn(100)
			nodes[i].Eligible = r.Intn(5) != 0 || i == 0
		}
		after := Target(nodes, buckets, Policy{FullLoad: 100})
		next := Assign(after, buckets, cur, cur)
		if u := next.Unowned(); len(u) != 0 {
			t.Fatalf("Assign(%v) left buckets %v unowned", after, u)
		}
		counts := next.Counts()
		want := 0
		had := cur.Counts()
		for _, a := range after {
			if counts[a.Node] != a.Buckets {
				t.Fatalf("Assign(%v): %s holds %d", after, a.Node, counts[a.Node])
			}
			if d := had[a.Node] - a.Buckets; d > 0 {
				want += d
			}
		}
		if got := cur.Moves(next); got != want {
			t.Fatalf("Assign %v -> %v: %d moves, want %d", before, after, got, want)
		}
	})
}

func BenchmarkTarget(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	nodes := randomNodes(r, 8, 256)
	for i := range nodes {
		nodes[i].Online, nodes[i].Eligible = true, true
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Assign(Target(nodes, 256, DefaultPolicy), 256, nil, nil)
	}
}
