// Package placement is the crm_simulate scenario suite of bucket placement:
// Pacemaker's own scheduler (crm_simulate -R) decides where each bucket
// primitive runs, on the configuration `loadshare crm` generates, while the
// placer (crm.PlanFrom) writes the own_* attributes from the nodes'
// writable_monit and server_load. No root, no cluster.
package placement

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/loadshare/loadshare/crm"
)

type cluster struct {
	t      testing.TB
	ctx    context.Context
	sim    *crm.Sim
	spec   crm.Spec   // specs[0]: the VIP of the one-VIP scenarios
	specs  crm.Specs  // every VIP, placed in this order each round
	policy crm.Policy // spec's policy; the others use their Spec.Policy
	moves  int        // bucket moves since the last take()
}

func nodeNames(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("n%d", i+1)
	}
	return out
}

// newCluster starts k nodes, all writable at load 30, runs the first
// transition and the first placer round.
func newCluster(t testing.TB, k, buckets int) *cluster {
	t.Helper()
	spec := crm.Spec{IP: netip.MustParseAddr("192.0.2.10"), Buckets: buckets, Nodes: nodeNames(k)}
	c := newSim(t, crm.Specs{spec})
	for _, n := range spec.Nodes {
		c.sim.Join(n)
		c.attrs(n, 1, 30)
	}
	c.transition()
	c.place()
	c.take()
	return c
}

// newSim is a cluster of specs' VIPs with every node offline.
func newSim(t testing.TB, specs crm.Specs) *cluster {
	t.Helper()
	if _, err := exec.LookPath("crm_simulate"); err != nil {
		t.Skip("crm_simulate not installed (Debian package pacemaker)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	sim, err := crm.NewSim(ctx, specs, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	policy := specs[0].Policy
	if policy == (crm.Policy{}) {
		policy = crm.DefaultPolicy
	}
	return &cluster{t: t, ctx: ctx, sim: sim, spec: specs[0], specs: specs, policy: policy}
}

func (c *cluster) attrs(node string, writable, load int) {
	c.sim.SetAttr(node, crm.AttrWritable, strconv.Itoa(writable))
	c.sim.SetAttr(node, crm.AttrLoad, strconv.Itoa(load))
}

// required is the attribute a VIP's buckets need on a node.
func required(s crm.Spec) string {
	if s.Require == "" {
		return crm.AttrWritable
	}
	return s.Require
}

// servable reports whether an online node may run the VIP's buckets.
func (c *cluster) servable(s crm.Spec) bool {
	for _, n := range c.sim.Nodes() {
		if n.Online && n.Attrs[required(s)] == "1" {
			return true
		}
	}
	return false
}

// dark is a VIP's buckets running nowhere.
func (c *cluster) dark(s crm.Spec) []int {
	var out []int
	for k, at := range c.sim.Placement(s, s.Buckets) {
		if at == "" {
			out = append(out, k)
		}
	}
	return out
}

// transition runs the scheduler until it has nothing left to do (at most
// 3 runs: a second run with actions would be flapping), counting moves
// and checking that no bucket of a VIP is dark while a node may serve it,
// and that none runs on a node without the VIP's required attribute while
// some node has it (or ever, for a strict VIP).
func (c *cluster) transition() {
	c.t.Helper()
	for i := 0; ; i++ {
		tr, err := c.sim.Transition(c.ctx)
		if err != nil {
			c.t.Fatal(err)
		}
		c.moves += tr.Moves
		for _, s := range c.specs {
			if d := c.dark(s); len(d) > 0 && c.servable(s) {
				c.t.Fatalf("%s: buckets %v stopped while a node with %s=1 is up", s.Name, d, required(s))
			}
			if !s.Strict && !c.servable(s) {
				continue // no node eligible: the buckets stay where they run
			}
			for k, at := range c.sim.Placement(s, s.Buckets) {
				if at != "" && c.sim.Node(at).Attrs[required(s)] != "1" {
					c.t.Fatalf("%s: bucket %d runs on %s, whose %s is %q", s.Name, k, at, required(s), c.sim.Node(at).Attrs[required(s)])
				}
			}
		}
		if len(tr.Actions) == 0 {
			return
		}
		if i == 2 {
			c.t.Fatalf("scheduler still acting on its 3rd run (flapping): %v", tr.Actions)
		}
	}
}

// place runs one placer round as the cluster would, for every VIP in
// turn: plan from crm_mon, the sets (and a transition: old and new owner
// both claim the bucket, stickiness keeps it where it runs), the deletes
// (and a transition). It checks the moves Pacemaker made equal the plan's,
// that the counts reach the targets exactly, and that a second round has
// nothing to do. It returns the first VIP's plan.
func (c *cluster) place() crm.Plan {
	c.t.Helper()
	var first crm.Plan
	for i, s := range c.specs {
		policy := s.Policy
		if i == 0 {
			policy = c.policy
		}
		plan := c.placeVIP(s, policy)
		if i == 0 {
			first = plan
		}
	}
	return first
}

func (c *cluster) placeVIP(spec crm.Spec, policy crm.Policy) crm.Plan {
	c.t.Helper()
	st, err := c.sim.Status(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	plan := crm.PlanFrom(st, spec, policy)
	before := c.moves
	for _, s := range plan.Set {
		c.sim.SetAttr(s.Node, s.Name, "1")
	}
	c.transition() // moves only buckets no live node claimed (orphans)
	for _, d := range plan.Delete {
		c.sim.SetAttr(d.Node, d.Name, "")
	}
	c.transition()
	if m := c.moves - before; m != plan.Moves() {
		c.t.Fatalf("%s: the placer round moved %d buckets, the plan said %d", spec.Name, m, plan.Moves())
	}
	want := map[string]int{}
	for _, a := range plan.Targets {
		if a.Buckets > 0 {
			want[a.Node] = a.Buckets
		}
	}
	c.expectVIP(spec, want)
	st, err = c.sim.Status(c.ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	if again := crm.PlanFrom(st, spec, policy); !again.Empty() {
		c.t.Fatalf("%s: second placer round not empty: set %v delete %v", spec.Name, again.Set, again.Delete)
	}
	return plan
}

// take returns the moves since the last take.
func (c *cluster) take() int {
	m := c.moves
	c.moves = 0
	return m
}

func (c *cluster) counts() map[string]int { return c.countsOf(c.spec) }

func (c *cluster) countsOf(s crm.Spec) map[string]int {
	return c.sim.Placement(s, s.Buckets).Counts()
}

func (c *cluster) expect(want map[string]int) { c.t.Helper(); c.expectVIP(c.spec, want) }

func (c *cluster) expectVIP(s crm.Spec, want map[string]int) {
	c.t.Helper()
	got := c.countsOf(s)
	for n, w := range want {
		if got[n] != w {
			c.t.Fatalf("%s: bucket counts %s, want %s", s.Name, fmtCounts(got), fmtCounts(want))
		}
	}
	for n, g := range got {
		if want[n] != g {
			c.t.Fatalf("%s: bucket counts %s, want %s", s.Name, fmtCounts(got), fmtCounts(want))
		}
	}
}

func fmtCounts(m map[string]int) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for _, n := range names {
		s += fmt.Sprintf("%s=%d ", n, m[n])
	}
	return s
}

// minimalMoves is what any placement must move to go from the counts
// before to the targets: the sum of the decreases.
func minimalMoves(before map[string]int, targets []crm.Assignment) int {
	m := 0
	for _, a := range targets {
		if d := before[a.Node] - a.Buckets; d > 0 {
			m += d
		}
	}
	return m
}

func TestEvenLoad(t *testing.T) {
	for _, tc := range []struct{ nodes, buckets int }{{3, 24}, {5, 64}, {8, 256}} {
		t.Run(fmt.Sprintf("%dx%d", tc.nodes, tc.buckets), func(t *testing.T) {
			if testing.Short() && tc.buckets > 64 {
				t.Skip("-short: 256 buckets take a few seconds")
			}
			c := newCluster(t, tc.nodes, tc.buckets)
			want := map[string]int{}
			for i, n := range c.spec.Nodes {
				want[n] = tc.buckets / tc.nodes
				if i < tc.buckets%tc.nodes {
					want[n]++
				}
			}
			c.expect(want)
		})
	}
}

func TestSkewedLoad(t *testing.T) {
	c := newCluster(t, 3, 24)
	c.attrs("n1", 1, 10)
	c.attrs("n2", 1, 50)
	c.attrs("n3", 1, 90)
	c.transition()
	if m := c.take(); m != 0 {
		t.Fatalf("load attributes alone moved %d buckets, want 0 (only own_* place)", m)
	}
	before := c.counts()
	plan := c.place()
	c.expect(map[string]int{"n1": 14, "n2": 8, "n3": 2})
	if m, want := c.take(), minimalMoves(before, plan.Targets); m != want {
		t.Errorf("8/8/8 -> 14/8/2 moved %d buckets, want %d", m, want)
	}
}

// TestSkewedLoad8: 8 nodes, 128 buckets, loads 10…80: the counts are the
// targets exactly, reached with the minimal number of moves.
func TestSkewedLoad8(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 128 buckets on 8 nodes take a few seconds")
	}
	c := newCluster(t, 8, 128)
	for i, n := range c.spec.Nodes {
		c.attrs(n, 1, 10*(i+1))
	}
	c.transition()
	before := c.counts()
	plan := c.place()
	if m, want := c.take(), minimalMoves(before, plan.Targets); m != want || m == 0 {
		t.Errorf("even -> skewed moved %d buckets, want %d (> 0)", m, want)
	}
	got := c.counts()
	for i := 1; i < len(c.spec.Nodes); i++ {
		if a, b := got[c.spec.Nodes[i-1]], got[c.spec.Nodes[i]]; a < b {
			t.Errorf("%s (load %d) holds %d < %s (load %d) holds %d", c.spec.Nodes[i-1], 10*i, a, c.spec.Nodes[i], 10*(i+1), b)
		}
	}
	t.Logf("loads 10..80: %s", fmtCounts(got))
}

// TestLoadSteps: one node's load goes up and down in steps of 10; every
// step moves exactly the buckets the new targets force, and the way down
// ends where it started.
func TestLoadSteps(t *testing.T) {
	c := newCluster(t, 5, 64)
	start := c.counts()
	steps := []int{40, 50, 60, 70, 80, 90, 80, 70, 60, 50, 40, 30}
	total := 0
	for _, load := range steps {
		c.attrs("n1", 1, load)
		c.transition()
		before := c.counts()
		plan := c.place()
		m := c.take()
		if want := minimalMoves(before, plan.Targets); m != want {
			t.Fatalf("n1 load %d: %d moves, minimal is %d", load, m, want)
		}
		total += m
		t.Logf("n1 load %d: counts %s(%d moves)", load, fmtCounts(c.counts()), m)
	}
	// Back at load 30 the targets are within the hysteresis of the start.
	for n, w := range start {
		if d := c.counts()[n] - w; d > c.policy.Hysteresis || -d > c.policy.Hysteresis {
			t.Errorf("back at load 30: %s, started at %s", fmtCounts(c.counts()), fmtCounts(start))
		}
	}
	if total == 0 {
		t.Fatal("load steps from 30 to 90 moved nothing")
	}
}

func TestWritableDrops(t *testing.T) {
	c := newCluster(t, 5, 64)
	// n1 stops being writable: Pacemaker moves its buckets away at once
	// (the own rule needs writable_monit=1), before the placer runs.
	c.attrs("n1", 0, 30)
	c.transition()
	if got := c.counts()["n1"]; got != 0 {
		t.Fatalf("n1 writable_monit=0: still holds %d buckets before the placer runs", got)
	}
	moved := c.take()
	c.place()
	c.expect(map[string]int{"n2": 16, "n3": 16, "n4": 16, "n5": 16})
	if m := moved + c.take(); m > 13+3 {
		t.Errorf("n1 writable_monit=0 moved %d buckets in all, want n1's 13 and at most 3 more", m)
	}
	c.attrs("n2", 0, 30)
	c.transition()
	c.place()
	c.expect(map[string]int{"n3": 22, "n4": 21, "n5": 21})
	c.take()
	// Both writable again: back to the even spread.
	c.attrs("n1", 1, 30)
	c.attrs("n2", 1, 30)
	c.transition()
	if m := c.take(); m != 0 {
		t.Fatalf("writable_monit=1 alone moved %d buckets, want 0 before the placer gives them buckets", m)
	}
	c.place()
	c.expect(map[string]int{"n1": 13, "n2": 13, "n3": 13, "n4": 13, "n5": 12})
}

// failRecover: nodes fail (fenced) and the survivors own their buckets
// in the same transition; the placer then only evens out; the nodes
// rejoin with their resource history deleted and get their share back.
func failRecover(t *testing.T, c *cluster, fail []string) {
	start := c.counts()
	for _, n := range fail {
		c.sim.Fail(n)
	}
	c.transition() // the no-Stopped check is inside
	lost := 0
	for _, n := range fail {
		lost += start[n]
		if got := c.counts()[n]; got != 0 {
			t.Fatalf("failed %s still holds %d", n, got)
		}
	}
	if m := c.take(); m != 0 {
		t.Errorf("failover moved %d running buckets, want 0 (only the failed nodes' %d restart)", m, lost)
	}
	c.place()
	t.Logf("after %v failed: %s(%d moves to even out)", fail, fmtCounts(c.counts()), c.take())
	for _, n := range fail {
		c.sim.Join(n)
		c.attrs(n, 1, 30)
	}
	c.transition()
	if m := c.take(); m != 0 {
		t.Errorf("rejoin alone moved %d buckets, want 0 before the placer gives them buckets", m)
	}
	c.place()
	c.expect(start)
	t.Logf("after rejoin: %s(%d moves)", fmtCounts(c.counts()), c.take())
}

func TestNodeFailRecover(t *testing.T) {
	t.Run("3x24 one", func(t *testing.T) { failRecover(t, newCluster(t, 3, 24), []string{"n1"}) })
	t.Run("3x24 two (seed scenario, quorum kept)", func(t *testing.T) {
		c := newCluster(t, 3, 24)
		c.sim.ForceQuorum = true
		failRecover(t, c, []string{"n1", "n2"})
	})
	t.Run("5x64 two", func(t *testing.T) { failRecover(t, newCluster(t, 5, 64), []string{"n2", "n4"}) })
	t.Run("8x256 one", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: 256 buckets take a few seconds")
		}
		failRecover(t, newCluster(t, 8, 256), []string{"n3"})
	})
}

// TestQuorumLost: two of three nodes fail with no quorum policy: Pacemaker
// stops everything (no-quorum-policy=stop, its default). Documented here
// so a change of that default shows.
func TestQuorumLost(t *testing.T) {
	c := newCluster(t, 3, 24)
	c.sim.Fail("n1")
	c.sim.Fail("n2")
	if _, err := c.sim.Transition(c.ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.sim.Stopped(); len(st) != 24 {
		t.Errorf("without quorum %d buckets stopped, want all 24 (no-quorum-policy=stop)", len(st))
	}
}

func TestAllOverloaded(t *testing.T) {
	c := newCluster(t, 3, 24)
	for _, n := range c.spec.Nodes {
		c.attrs(n, 1, 100)
	}
	c.transition()
	c.place()
	c.expect(map[string]int{"n1": 8, "n2": 8, "n3": 8})
	if m := c.take(); m != 0 {
		t.Errorf("all overloaded alike moved %d buckets, want 0", m)
	}
	c.attrs("n1", 1, 95) // one a little less overloaded: the min share keeps all even-ish
	c.transition()
	c.place()
	if got := c.counts(); got["n1"] < 8 || got["n2"]+got["n3"]+got["n1"] != 24 {
		t.Errorf("counts %s", fmtCounts(got))
	}
}

// TestFlappingLoad: a load flapping by one step around a point where the
// ideal target changes moves nothing (hysteresis); without hysteresis the
// same flapping would move a bucket every time.
func TestFlappingLoad(t *testing.T) {
	c := newCluster(t, 3, 24)
	low, high := 30, 45
	noH := crm.Policy{FullLoad: 100, MinShare: 5}
	ideal := func(load int) int {
		nodes := []crm.Node{{Name: "n1", Online: true, Eligible: true, Load: load},
			{Name: "n2", Online: true, Eligible: true, Load: 30}, {Name: "n3", Online: true, Eligible: true, Load: 30}}
		return crm.Target(nodes, 24, noH)[0].Buckets
	}
	if ideal(low) == ideal(high) {
		t.Fatalf("test setup: loads %d and %d give the same ideal target %d; pick a threshold", low, high, ideal(low))
	}
	for i := 0; i < 6; i++ {
		load := high
		if i%2 == 1 {
			load = low
		}
		c.attrs("n1", 1, load)
		c.transition()
		c.place()
	}
	if m := c.take(); m != 0 {
		t.Errorf("flapping load moved %d buckets, want 0", m)
	}
	c.expect(map[string]int{"n1": 8, "n2": 8, "n3": 8})
}

// BenchmarkSchedule256x8: one scheduler run (crm_simulate -R) for 256
// buckets on 8 nodes after a node failure, against the target computation.
func BenchmarkSchedule256x8(b *testing.B) {
	c := newCluster(b, 8, 256)
	cib := c.sim.CIB()
	_ = cib
	var sched time.Duration
	for i := 0; i < b.N; i++ {
		c.sim.Fail("n8")
		t0 := time.Now()
		if _, err := c.sim.Transition(c.ctx); err != nil {
			b.Fatal(err)
		}
		sched += time.Since(t0)
		c.sim.Join("n8")
		c.attrs("n8", 1, 30)
		c.transition()
	}
	st, err := c.sim.Status(c.ctx)
	if err != nil {
		b.Fatal(err)
	}
	const rounds = 1000
	t0 := time.Now()
	for i := 0; i < rounds; i++ {
		crm.PlanFrom(st, c.spec, c.policy)
	}
	plan := time.Since(t0) / rounds
	perSched := sched / time.Duration(b.N)
	b.ReportMetric(float64(perSched.Microseconds())/1000, "ms/schedule")
	b.ReportMetric(float64(plan.Microseconds())/1000, "ms/plan")
	b.ReportMetric(float64(perSched)/float64(plan), "schedule/plan")
	b.Logf("crm_simulate -R, 256 buckets x 8 nodes, one node failed: %v; placer round (Target+Assign from crm_mon status): %v", perSched, plan)
}

// TestFloodUnreached: with the flood check's term in the rules, a node
// whose flood_vip is 0 (the network does not deliver the VIP's frames to
// it) loses every bucket to the others, in the placer's targets and in
// Pacemaker's scores alike; unset (not judged) and 1 keep a node eligible;
// back at 1 it gets its share back.
func TestFloodUnreached(t *testing.T) {
	spec := crm.Spec{IP: netip.MustParseAddr("192.0.2.10"), Buckets: 12, Nodes: nodeNames(3), FloodCheck: true}
	c := newSim(t, crm.Specs{spec})
	for _, n := range spec.Nodes {
		c.sim.Join(n)
		c.attrs(n, 1, 30)
	}
	attr := crm.FloodAttr("vip")
	c.sim.SetAttr("n1", attr, "1") // n2 not judged yet, n3 reached
	c.sim.SetAttr("n3", attr, "1")
	c.transition()
	c.place()
	c.expect(map[string]int{"n1": 4, "n2": 4, "n3": 4})
	c.take()

	c.sim.SetAttr("n2", attr, "0")
	c.transition() // the rules alone: n2's buckets leave at once
	if got := c.counts()["n2"]; got != 0 {
		t.Fatalf("flood_vip=0 on n2: it still runs %d buckets before the placer's round: %s", got, fmtCounts(c.counts()))
	}
	c.place()
	c.expect(map[string]int{"n1": 6, "n3": 6})
	if m := c.take(); m != 4 {
		t.Errorf("n2 unreached: %d moves, want its 4", m)
	}

	c.sim.SetAttr("n2", attr, "1")
	c.transition()
	c.place()
	c.expect(map[string]int{"n1": 4, "n2": 4, "n3": 4})
}
