package serverload

import (
	"context"
	"fmt"
	"time"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm"
)

// placer runs one placement round for the bucket primitives NAME_K of v
// on the cluster status st, read by this node (me) (see crm.PlaceIn);
// skipped says why it did nothing.
type placer func(ctx context.Context, st *crm.Status, me string, v crm.PlacerVIP, settle func(ideal []crm.Assignment) bool) (plan crm.Plan, skipped string, err error)

// placeOnDC is the live placer: it writes only where this node is the DC, so
// that running it from every node's monitor gives exactly one writer.
func placeOnDC(ctx context.Context, st *crm.Status, me string, v crm.PlacerVIP, settle func(ideal []crm.Assignment) bool) (crm.Plan, string, error) {
	return crm.PlaceIn(ctx, st, me, v.Spec(), v.Policy, true, settle)
}

// readCluster reads what a monitor's placer rounds and metrics share:
// the status and this node's name (crm.ReadLive: one crm_mon, one
// crm_node), or the test's stand-in.
func (a *serverLoad) readCluster(ctx context.Context) (*crm.Status, string, error) {
	if a.cluster != nil {
		return a.cluster(ctx)
	}
	return crm.ReadLive(ctx, true)
}

// placeBuckets runs the placer for each configured VIP. A failed round is
// logged, not returned: server_load itself is healthy, and the next
// monitor tries again. The state is st.Ideals: when each VIP's ideal
// targets were first seen on this node while it was the DC; once they
// have held for placer_settle seconds, hysteresis no longer keeps an
// uneven spread (see crm.PlaceSettling); and st.Placer, what the rounds
// did, for the metrics (crm/metrics.Placer).
//
// It reads the cluster once for all the VIPs and returns what it read
// (nil when there is no VIP to place or the read failed), for the metrics.
func (a *serverLoad) placeBuckets(ctx context.Context, p ocf.Params, st *state) *Known {
	now := a.env.Now()
	settleAfter := time.Duration(p.Int("placer_settle")) * time.Second
	vips, _ := crm.ParsePlacer(p.String("placer")) // checked by validation
	if len(vips) == 0 {
		return nil
	}
	var known *Known
	readStart := a.env.Now()
	cst, me, readErr := a.readCluster(ctx)
	readTook := a.env.Now().Sub(readStart) // part of every round's duration
	if readErr == nil {
		known = &Known{Status: cst, Node: me}
	}
	for _, v := range vips {
		name := v.Name
		settle := func(ideal []crm.Assignment) bool {
			key := fmt.Sprint(ideal)
			if rec, ok := st.Ideals[name]; !ok || rec.Targets != key {
				if st.Ideals == nil {
					st.Ideals = map[string]Ideal{}
				}
				st.Ideals[name] = Ideal{Targets: key, Since: now}
			}
			return now.Sub(st.Ideals[name].Since) >= settleAfter
		}
		start := a.env.Now()
		plan, skipped, err := crm.Plan{}, "", readErr
		if readErr == nil {
			plan, skipped, err = a.place(ctx, cst, me, v, settle)
		}
		if st.Placer == nil {
			st.Placer = map[string]*crm.PlacerStats{}
		}
		if st.Placer[name] == nil {
			st.Placer[name] = &crm.PlacerStats{}
		}
		st.Placer[name].Add(crm.NewPlacerRound(start, readTook+a.env.Now().Sub(start), plan, skipped, err))
		switch {
		case err != nil:
			p.Log.Warn("placement round failed", "vip", name, "err", err)
		case skipped != "":
			// Not the DC: what this node saw before is no measure of how
			// long the ideal has held by the time it is the DC again.
			delete(st.Ideals, name)
		case !plan.Empty():
			p.Log.Info("placed buckets", "vip", name, "set", len(plan.Set), "deleted", len(plan.Delete), "moves", plan.Moves())
		}
	}
	return known
}
