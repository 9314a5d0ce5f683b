package crm

import (
	"fmt"
	"sort"
)

// Node is what placement knows about one cluster node: membership and the
// transient attributes the probes write (writable_monit, server_load).
type Node struct {
	Name     string
	Online   bool // a cluster member that can run resources (not standby)
	Eligible bool // the VIP's required attribute is 1 (writable_monit, or readable_monit for a reader VIP), and its flood check does not say unreached (FloodAttr 0)
	Writer   bool // writable_monit=1: weighed by Policy.WriterWeight
	Load     int  // server_load, 0–100; negative when the attribute is missing
	Prev     int  // buckets this node was targeted (owns) before; hysteresis input
}

// Policy tunes Target. The zero value means DefaultPolicy.
type Policy struct {
	// IdleLoad: server_load at or below which a node counts as idle (all
	// idle nodes weigh the same). 0–99.
	IdleLoad int
	// FullLoad: server_load at or above which a node has no spare capacity
	// left. IdleLoad < FullLoad ≤ 100; 0 means 100.
	FullLoad int
	// MinShare: spare capacity, in server_load points, every live writable
	// node counts with even when it is at or above FullLoad, so a saturated
	// node keeps a small share and nodes all overloaded alike share evenly.
	// 0 lets a saturated node drop to zero buckets.
	MinShare int
	// MinBuckets, MaxBuckets: floor and ceiling of one node's target
	// (0: none). They give way when the live writable nodes could not hold
	// every bucket otherwise: no bucket is ever left dark for a bound.
	MinBuckets, MaxBuckets int
	// Hysteresis, in buckets: the previous targets (Node.Prev) stand while
	// every node's new ideal is within this many buckets of its previous
	// target, so a small load change moves nothing. 0 disables.
	Hysteresis int
	// WriterWeight, percent: a writable node (Node.Writer) counts with this
	// share of its spare capacity, so that a reader VIP spread over the
	// replicas and the primary gives the primary less. 1–100; 0 means 100.
	WriterWeight int
}

// DefaultPolicy is what `loadshare crm` configures and Target uses for the
// zero Policy: loads 0–100 mean spare 100–0, a saturated node keeps 5 points
// of weight, and targets move only when some node is 2 or more buckets off.
var DefaultPolicy = Policy{IdleLoad: 0, FullLoad: 100, MinShare: 5, Hysteresis: 1}

// Validate reports a policy Target cannot use.
func (p Policy) Validate() error {
	p = p.norm()
	switch {
	case p.FullLoad < 1 || p.FullLoad > 100:
		return fmt.Errorf("full load=%d: must be 1–100", p.FullLoad)
	case p.IdleLoad < 0 || p.IdleLoad >= p.FullLoad:
		return fmt.Errorf("idle load=%d: must be 0 to full load-1 (%d)", p.IdleLoad, p.FullLoad-1)
	case p.MinShare < 0:
		return fmt.Errorf("min share=%d: must not be negative", p.MinShare)
	case p.MinBuckets < 0 || p.MaxBuckets < 0:
		return fmt.Errorf("min buckets=%d, max buckets=%d: must not be negative", p.MinBuckets, p.MaxBuckets)
	case p.MaxBuckets > 0 && p.MinBuckets > p.MaxBuckets:
		return fmt.Errorf("min buckets=%d: above max buckets=%d", p.MinBuckets, p.MaxBuckets)
	case p.Hysteresis < 0:
		return fmt.Errorf("hysteresis=%d: must not be negative", p.Hysteresis)
	case p.WriterWeight < 0 || p.WriterWeight > 100:
		return fmt.Errorf("writer weight=%d: must be 1–100 (percent; 0: 100)", p.WriterWeight)
	}
	return nil
}

func (p Policy) norm() Policy {
	if p == (Policy{}) {
		p = DefaultPolicy
	}
	if p.FullLoad == 0 {
		p.FullLoad = 100
	}
	if p.WriterWeight == 0 {
		p.WriterWeight = 100
	}
	return p
}

// Assignment is one node's bucket target.
type Assignment struct {
	Node    string
	Buckets int
}

// Target computes every node's bucket target: buckets split over the online
// eligible nodes in proportion to their spare capacity (FullLoad minus
// server_load, at least MinShare; times WriterWeight for a writer), by
// largest remainder with ties going to the node whose name sorts first,
// within MinBuckets/MaxBuckets; the previous targets stand while within
// Hysteresis. Offline and ineligible nodes get 0. The sum is buckets
// whenever some node is online and eligible.
//
// Target is pure and deterministic: every node computing it from the same
// attributes gets the same answer, whatever the order of nodes. The result
// has one entry per input node, sorted by name.
func Target(nodes []Node, buckets int, p Policy) []Assignment {
	p = p.norm()
	sorted := append([]Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	out := make([]Assignment, len(sorted))
	var live []int // indexes into sorted
	for i, n := range sorted {
		out[i].Node = n.Name
		if n.Online && n.Eligible {
			live = append(live, i)
		}
	}
	if len(live) == 0 || buckets <= 0 {
		return out
	}
	weights := make([]int64, len(live))
	for j, i := range live {
		w := int64(p.weight(sorted[i].Load))
		if sorted[i].Writer {
			w = w * int64(p.WriterWeight) / 100
		}
		weights[j] = w
	}
	ideal := boundedApportion(buckets, weights, p.MinBuckets, p.MaxBuckets)
	if p.Hysteresis > 0 && prevStands(sorted, live, ideal, buckets, p) {
		for _, i := range live {
			out[i].Buckets = sorted[i].Prev
		}
		return out
	}
	for j, i := range live {
		out[i].Buckets = ideal[j]
	}
	return out
}

// weight is a node's spare capacity in load points.
func (p Policy) weight(load int) int {
	if load < 0 { // not reported yet: count as saturated until it is
		load = p.FullLoad
	}
	if load < p.IdleLoad {
		load = p.IdleLoad
	}
	w := p.FullLoad - load
	if w < p.MinShare {
		w = p.MinShare
	}
	if w < 0 {
		w = 0
	}
	return w
}

// prevStands reports whether the previous targets are a valid placement of
// buckets over the live nodes and every ideal is within Hysteresis of them.
func prevStands(sorted []Node, live []int, ideal []int, buckets int, p Policy) bool {
	sum := 0
	for j, i := range live {
		prev := sorted[i].Prev
		if prev < 0 {
			return false
		}
		if d := prev - ideal[j]; d > p.Hysteresis || -d > p.Hysteresis {
			return false
		}
		// The bounds hold for prev too, where they are feasible.
		if p.MaxBuckets > 0 && prev > p.MaxBuckets && ideal[j] <= p.MaxBuckets {
			return false
		}
		if prev < p.MinBuckets && ideal[j] >= p.MinBuckets {
			return false
		}
		sum += prev
	}
	return sum == buckets
}

// boundedApportion splits n by weights (largest remainder), then fixes
// nodes that break MaxBuckets/MinBuckets at the bound and splits the rest
// among the others again, until no bound is broken. Bounds that cannot hold
// (k·max < n, k·min > n) are widened so the sum stays n.
func boundedApportion(n int, weights []int64, minB, maxB int) []int {
	k := len(weights)
	if maxB > 0 && maxB*k < n {
		maxB = (n + k - 1) / k
	}
	if minB*k > n {
		minB = n / k
	}
	out := make([]int, k)
	fixed := make([]bool, k)
	for round := 0; round <= 2*k; round++ {
		rest := n
		var free []int
		for i := range weights {
			if fixed[i] {
				rest -= out[i]
			} else {
				free = append(free, i)
			}
		}
		if len(free) == 0 {
			break
		}
		fw := make([]int64, len(free))
		for j, i := range free {
			fw[j] = weights[i]
		}
		got := apportion(rest, fw)
		for j, i := range free {
			out[i] = got[j]
		}
		// Fix the side that breaks its bound by more: those nodes are at
		// their bound in the final answer too (as in capped proportional
		// allocation); the others share the rest again.
		var over, under int
		for _, i := range free {
			if maxB > 0 && out[i] > maxB {
				over += out[i] - maxB
			}
			if out[i] < minB {
				under += minB - out[i]
			}
		}
		if over == 0 && under == 0 {
			break
		}
		for _, i := range free {
			switch {
			case over >= under && maxB > 0 && out[i] > maxB:
				out[i], fixed[i] = maxB, true
			case over < under && out[i] < minB:
				out[i], fixed[i] = minB, true
			}
		}
	}
	return out
}

// apportion splits n in proportion to weights by largest remainder (Hamilton),
// in exact integer arithmetic; equal remainders go to the lower index (the
// caller's order is by node name). All-zero weights count as equal.
func apportion(n int, weights []int64) []int {
	out := make([]int, len(weights))
	if len(weights) == 0 || n <= 0 {
		return out
	}
	var total int64
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		weights = make([]int64, len(weights))
		for i := range weights {
			weights[i] = 1
		}
		total = int64(len(weights))
	}
	rem := make([]int64, len(weights))
	left := n
	for i, w := range weights {
		q := int64(n) * w
		out[i] = int(q / total)
		rem[i] = q % total
		left -= out[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rem[order[a]] > rem[order[b]] })
	for i := 0; i < left; i++ {
		out[order[i%len(order)]]++
	}
	return out
}

// Placement says which node owns each bucket: Placement[k] is the node of
// bucket k, "" when no node holds it.
type Placement []string

// Counts returns how many buckets each node holds.
func (pl Placement) Counts() map[string]int {
	c := map[string]int{}
	for _, n := range pl {
		if n != "" {
			c[n]++
		}
	}
	return c
}

// Unowned returns the buckets no node holds, ascending.
func (pl Placement) Unowned() []int {
	var out []int
	for k, n := range pl {
		if n == "" {
			out = append(out, k)
		}
	}
	return out
}

// Moves counts the buckets whose node differs between pl and next, not
// counting buckets that pl leaves unowned (a start is no move).
func (pl Placement) Moves(next Placement) int {
	m := 0
	for k := range pl {
		if k < len(next) && pl[k] != "" && pl[k] != next[k] {
			m++
		}
	}
	return m
}

// Assign turns targets into an owner for every bucket, moving as few as it
// can: a bucket stays with its previous owner (prev, from the own_*
// attributes) while that owner is under target, preferring buckets that are
// also running there; then with the node it runs on (running, from crm_mon:
// after a failure the survivors hold the failed node's buckets already);
// the rest fill the nodes still under target in name order. Within each
// pass buckets go in ascending order, so an over-target node gives up its
// highest buckets. When targets sum to buckets, every bucket is owned.
func Assign(targets []Assignment, buckets int, prev, running Placement) Placement {
	room := map[string]int{}
	var names []string
	for _, a := range targets {
		if a.Buckets > 0 {
			room[a.Node] = a.Buckets
			names = append(names, a.Node)
		}
	}
	sort.Strings(names)
	at := func(pl Placement, k int) string {
		if k < len(pl) {
			return pl[k]
		}
		return ""
	}
	out := make(Placement, buckets)
	take := func(k int, n string) bool {
		if out[k] != "" || n == "" || room[n] <= 0 {
			return false
		}
		out[k] = n
		room[n]--
		return true
	}
	for k := 0; k < buckets; k++ { // claimed and running there
		if p := at(prev, k); p != "" && p == at(running, k) {
			take(k, p)
		}
	}
	for k := 0; k < buckets; k++ { // claimed, on its way there
		take(k, at(prev, k))
	}
	for k := 0; k < buckets; k++ { // running, unclaimed (after failover)
		take(k, at(running, k))
	}
	i := 0
	for k := 0; k < buckets; k++ {
		for out[k] == "" && i < len(names) {
			if !take(k, names[i]) {
				i++
			}
		}
	}
	return out
}
