package crm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Attributes the probes write and placement reads.
const (
	AttrWritable = "writable_monit" // 1: MySQL accepts writes on the node
	AttrReadable = "readable_monit" // 1: MySQL answers reads (a caught-up replica, or writable)
	AttrLoad     = "server_load"    // 0–100, coarse steps
	// AttrVersion is the loadshare build a node's agents run (ocf.Version),
	// published by server_load; crm check warns when nodes differ.
	AttrVersion = "loadshare_version"
)

// AttrChange names one node's own_* attribute to set to 1 or delete.
type AttrChange struct {
	Node, Name string
}

// Plan is one placer round: the targets, the owner of every bucket, and
// the own_* attribute writes that get Pacemaker there. Sets go first,
// deletes after: while both the old and the new owner hold own_K the
// bucket stays where it runs (the running node wins a tie of scores), so
// the only move is the one the delete causes (measured with crm_simulate,
// docs/placement.md).
type Plan struct {
	Nodes   []Node // the placement input read from the status
	Targets []Assignment
	Ideal   []Assignment // the targets without hysteresis (Policy.Hysteresis 0)
	Owners  Placement
	Running Placement
	Set     []AttrChange
	Delete  []AttrChange
	// Held counts the claims the round leaves for later while a failover
	// transition starts buckets that run nowhere and that no node claims
	// (Pacemaker's writable rule starts them): theirs, and the claims of
	// buckets where they already run. A later round writes them, moving
	// nothing.
	Held int
}

// Empty reports a plan that writes nothing.
func (p Plan) Empty() bool { return len(p.Set) == 0 && len(p.Delete) == 0 }

// Moves is how many running buckets the plan sends to another node.
func (p Plan) Moves() int { return p.Running.Moves(p.Owners) }

// PlanFrom computes a placer round from the cluster status (crm_mon): each
// node's membership, the attribute the VIP requires (spec.Require:
// writable_monit by default; a node whose flood_NAME is 0 is not eligible
// either), writable_monit and server_load, the own_* claims
// (a node's claim count is its previous target, for hysteresis) and where
// the buckets run. Pure: every node computes the same plan from the same
// status.
func PlanFrom(st *Status, spec Spec, p Policy) Plan {
	spec = spec.norm()
	n := spec.Buckets
	prefix := "own_" + spec.Name + "_"
	claims := make([][]string, n) // bucket → claiming nodes, sorted
	var nodes []Node
	var stale []AttrChange
	for _, ns := range st.Nodes {
		node := Node{
			Name:     ns.Name,
			Online:   ns.Online && !ns.Standby && !ns.Maintenance && !ns.Unclean,
			Eligible: ns.Attrs[spec.Require] == "1" && ns.Attrs[FloodAttr(spec.Name)] != "0",
			Writer:   ns.Attrs[AttrWritable] == "1",
			Load:     -1,
		}
		if v, err := strconv.Atoi(ns.Attrs[AttrLoad]); err == nil {
			node.Load = v
		}
		for name, v := range ns.Attrs {
			if !strings.HasPrefix(name, prefix) || v != "1" {
				continue
			}
			k, err := strconv.Atoi(name[len(prefix):])
			switch {
			case err == nil && k >= 0 && k < n:
				claims[k] = append(claims[k], ns.Name)
			case err == nil && k >= n: // left from a larger bucket count
				stale = append(stale, AttrChange{Node: ns.Name, Name: name})
			}
		}
		nodes = append(nodes, node)
	}
	// A bucket shown on a node that is not online (a failed node before
	// its fence: crm_mon still lists its resources there) runs nowhere as
	// far as placement goes: Pacemaker moves it in the failover
	// transition, not the placer.
	online := map[string]bool{}
	for _, nd := range nodes {
		online[nd.Name] = nd.Online
	}
	running := make(Placement, n)
	for k := range running {
		if r, ok := st.Resource(spec.Resource(k)); ok && len(r.Nodes) == 1 && online[r.Nodes[0]] {
			running[k] = r.Nodes[0]
		}
	}
	// A bucket claimed twice (a round cut between its sets and deletes)
	// counts for the node it runs on, else the first by name.
	prev := make(Placement, n)
	for k, cs := range claims {
		sort.Strings(cs)
		for _, c := range cs {
			if c == running[k] {
				prev[k] = c
			}
		}
		if prev[k] == "" && len(cs) > 0 {
			prev[k] = cs[0]
		}
	}
	counts := prev.Counts()
	for i := range nodes {
		nodes[i].Prev = counts[nodes[i].Name]
	}
	targets := Target(nodes, n, p)
	noH := p.norm()
	noH.Hysteresis = 0
	owners := Assign(targets, n, prev, running)
	plan := Plan{Nodes: nodes, Targets: targets, Ideal: Target(nodes, n, noH), Owners: owners, Running: running}
	// A bucket running nowhere and claimed by no node is a failed node's
	// (its attributes went with it) that the failover transition is
	// starting by the writable rule. Any write now aborts that transition
	// (each is a CIB update and a new scheduler run: 5 runs, 23 aborts for
	// 23 starts at 64 buckets, docs/placement.md), so while one is held,
	// the round also leaves the claims that move nothing (a bucket claimed
	// where it runs) for later; claims that move a bucket and deletes go.
	starting := false
	for k, cs := range claims {
		starting = starting || (owners[k] != "" && running[k] == "" && len(cs) == 0)
	}
	for k, cs := range claims {
		has := false
		for _, c := range cs {
			if c == owners[k] {
				has = true
			} else {
				plan.Delete = append(plan.Delete, AttrChange{Node: c, Name: spec.OwnAttr(k)})
			}
		}
		switch {
		case owners[k] == "" || has:
		case starting && len(cs) == 0 && (running[k] == "" || running[k] == owners[k]):
			plan.Held++
		default:
			plan.Set = append(plan.Set, AttrChange{Node: owners[k], Name: spec.OwnAttr(k)})
		}
	}
	sort.Slice(stale, func(i, j int) bool {
		if stale[i].Node != stale[j].Node {
			return stale[i].Node < stale[j].Node
		}
		return stale[i].Name < stale[j].Name
	})
	plan.Delete = append(plan.Delete, stale...)
	return plan
}

// AttrsFor returns the Attrs of one node (an AttrdUpdater with Node set).
type AttrsFor func(node string) Attrs

// applyWorkers bounds the attrd_updater processes of one phase: one call
// takes ~35 ms on the lab cluster, so 256 sets one by one take 9 s.
const applyWorkers = 8

// Apply writes a plan: every set, then, once all sets are written, every
// delete. Within a phase the writes run concurrently (order within a phase
// does not matter). Equivalent to: attrd_updater -N NODE -n own_vip_K -U 1
// ...; attrd_updater -N NODE -n own_vip_K -D ...
func (p Plan) Apply(ctx context.Context, attrs AttrsFor) error {
	err := forEach(p.Set, func(c AttrChange) error {
		if err := attrs(c.Node).Set(ctx, c.Name, "1", 0); err != nil {
			return fmt.Errorf("give bucket attribute %s to %s: %w", c.Name, c.Node, err)
		}
		return nil
	})
	if err != nil {
		return err // no delete without every set: a bucket might lose its only claim
	}
	return forEach(p.Delete, func(c AttrChange) error {
		if err := attrs(c.Node).Delete(ctx, c.Name); err != nil {
			return fmt.Errorf("take bucket attribute %s from %s: %w", c.Name, c.Node, err)
		}
		return nil
	})
}

// forEach runs f on every change with applyWorkers at a time and returns
// the first error (in input order).
func forEach(cs []AttrChange, f func(AttrChange) error) error {
	errs := make([]error, len(cs))
	sem := make(chan struct{}, applyWorkers)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(c)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Attrd is the AttrsFor of the live cluster: attrd_updater -N NODE.
func Attrd(node string) Attrs { return &AttrdUpdater{Node: node} }

// LocalNode returns this node's cluster name. Equivalent to: crm_node -n
func LocalNode(ctx context.Context) (string, error) {
	out, err := runTool(ctx, nil, "crm_node", "-n")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Place runs one placer round on the live cluster. With onlyDC it does
// nothing (and says so in skipped) unless this node is the DC, so that one
// node writes at a time: run it from every node's server_load monitor.
// spec needs only Name; Buckets 0 means count the primitives.
func Place(ctx context.Context, spec Spec, p Policy, onlyDC bool) (plan Plan, skipped string, err error) {
	return PlaceSettling(ctx, spec, p, onlyDC, nil)
}

// PlaceSettling is Place where settle, given the round's ideal targets
// (without hysteresis), says whether they have held long enough to go to
// them at once (see planSettling); nil never settles. server_load's
// monitor keeps the time an ideal was first seen.
func PlaceSettling(ctx context.Context, spec Spec, p Policy, onlyDC bool, settle func(ideal []Assignment) bool) (plan Plan, skipped string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, me, err := ReadLive(ctx, onlyDC)
	if err != nil {
		return Plan{}, "", err
	}
	return PlaceIn(ctx, st, me, spec, p, onlyDC, settle)
}

// PlaceIn is PlaceSettling on a status this node (me) has read already:
// server_load's monitor reads the cluster once (one crm_mon, one
// crm_node) for the rounds of all its VIPs and for its metrics.
func PlaceIn(ctx context.Context, st *Status, me string, spec Spec, p Policy, onlyDC bool, settle func(ideal []Assignment) bool) (plan Plan, skipped string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	plan, skipped, err = planIn(st, me, spec, p, onlyDC, settle)
	if errors.Is(err, ErrNoBuckets) { // not configured (yet): nothing to place, not a failure
		return Plan{}, err.Error(), nil
	}
	if err != nil || skipped != "" {
		return plan, skipped, err
	}
	return plan, "", plan.Apply(ctx, Attrd)
}

// ErrNoBuckets: the cluster has no bucket primitives of the VIP asked for.
var ErrNoBuckets = errors.New("no bucket primitives")

// PlanLive is PlaceSettling without the writes: the round it would apply
// on the live cluster (or the CIB that CIB_file names), or why this node
// would do nothing (skipped: not the DC). ErrNoBuckets when the cluster
// has no bucket primitives of spec.Name.
func PlanLive(ctx context.Context, spec Spec, p Policy, onlyDC bool, settle func(ideal []Assignment) bool) (plan Plan, skipped string, err error) {
	st, me, err := ReadLive(ctx, onlyDC)
	if err != nil {
		return Plan{}, "", err
	}
	return planIn(st, me, spec, p, onlyDC, settle)
}

// ReadLive reads the cluster status and, with named, this node's name:
// what a placer round needs. Equivalent to: crm_mon -1 -A --output-as=xml; crm_node -n
func ReadLive(ctx context.Context, named bool) (*Status, string, error) {
	st, err := ReadStatus(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("read cluster status: %w", err)
	}
	if !named {
		return st, "", nil
	}
	me, err := LocalNode(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("name this node: %w", err)
	}
	return st, me, nil
}

// planIn is PlanLive on a status read already.
func planIn(st *Status, me string, spec Spec, p Policy, onlyDC bool, settle func(ideal []Assignment) bool) (Plan, string, error) {
	if onlyDC && st.DC != me {
		return Plan{}, fmt.Sprintf("this node (%s) is not the DC (%q)", me, st.DC), nil
	}
	if spec.Buckets == 0 {
		spec.Buckets = BucketsIn(st, spec.Name)
	}
	if spec.Buckets == 0 {
		return Plan{}, "", fmt.Errorf("%w %s_0 … in the cluster status", ErrNoBuckets, spec.norm().Name)
	}
	return planSettling(st, spec, p, settle), "", nil
}

// planSettling is PlanFrom, except that when settle says the round's ideal
// (the targets without hysteresis) has held long enough, the round goes to
// it: hysteresis keeps a spread from moving on a load that wobbles, but
// once the loads are still, what it keeps is only an uneven spread (a
// passing load leaves 5/3/4 behind where idle nodes want 4/4/4). Which
// round is "long enough" needs time, which Target, being pure, has not.
func planSettling(st *Status, spec Spec, p Policy, settle func(ideal []Assignment) bool) Plan {
	plan := PlanFrom(st, spec, p)
	if settle == nil || !settle(plan.Ideal) || slices.Equal(plan.Targets, plan.Ideal) {
		return plan
	}
	p = p.norm()
	p.Hysteresis = 0
	return PlanFrom(st, spec, p)
}

// BucketsIn counts the bucket primitives NAME_K (not clone instances) in a
// status: the bucket count of that VIP.
func BucketsIn(st *Status, name string) int {
	if name == "" {
		name = "vip"
	}
	n := 0
	for _, r := range st.Resources {
		if m := bucketRE().FindStringSubmatch(r.ID); m != nil && m[1] == name && r.Clone == "" {
			n++
		}
	}
	return n
}

// VIPsIn names the VIPs whose bucket primitives a status holds (NAME_K,
// not clone instances, with NAME_0 among them: what BucketsIn counts),
// sorted.
func VIPsIn(st *Status) []string {
	seen := map[string]bool{}
	for _, r := range st.Resources {
		if m := bucketRE().FindStringSubmatch(r.ID); m != nil && r.Clone == "" && m[2] == "0" {
			seen[m[1]] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FloodAttr is the node attribute VIP name's flood check publishes
// (clustervip flood_check=NAME): 1 when the node receives the VIP's
// flooded frames, 0 when it does not while other nodes do (then neither
// the location rules nor the placer give it buckets), unset when it
// cannot tell.
func FloodAttr(name string) string { return "flood_" + name }

// FloodClone is the clone id of VIP name's flood check.
func FloodClone(name string) string { return name + "-flood-clone" }
