package clustervip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/crm"
)

// The flood check (parameter flood_check=NAME): one instance per node, in
// an anonymous clone, owning no bucket. Its kernel side is clusterip's
// (EnsureFlood, SendFloodProbe, FloodHeard, JudgeFlood); this file keeps
// what the check remembers between monitors, asks attrd what the other
// nodes concluded, and publishes this node's verdict as flood_NAME (only
// on change, dampened by attrd).

// envOnNode names this node (Pacemaker's meta attribute on_node).
const envOnNode = "OCF_RESKEY_CRM_meta_on_node"

func validVIPName(s string) bool { return crm.ValidName(s) }

// floodState is the instance's state file (attrs.Load, Save): the
// check's memory between monitors and its last verdict; it exists from
// start to stop.
type floodState struct {
	clusterip.FloodMemory
	Verdict string `json:"verdict"` // clusterip.FloodVerdict's text
	Reason  string `json:"reason,omitempty"`
}

// floodAttr is the node attribute of VIP name's flood check.
func floodAttr(name string) string { return crm.FloodAttr(name) }

// peerAttrs reads one attribute of every node (crm.AttrdUpdater.GetAll).
type peerAttrs interface {
	GetAll(ctx context.Context, name string) (map[string]string, error)
}

// floodPlane is a plane that never probes the kernel's backends (that
// commits a scratch table, which would invalidate every bucket monitor's
// cache): the flood check needs no backend.
func (a *clusterVIP) floodPlane() (*clusterip.Plane, error) {
	pl, err := clusterip.New(clusterip.WithRecordedBackend(a.vip), clusterip.WithResolver(a.res))
	if err != nil {
		return nil, kernelErr(err)
	}
	return pl, nil
}

// floodOpen returns the flood plane and whether the check's table is
// there.
func (a *clusterVIP) floodOpen() (*clusterip.Plane, bool, error) {
	pl, err := a.floodPlane()
	if err != nil {
		return nil, false, err
	}
	present, err := pl.FloodPresent(a.vip)
	if err != nil {
		return nil, false, kernelErr(err)
	}
	return pl, present, nil
}

func (a *clusterVIP) floodStart(ctx context.Context, p ocf.Params) error {
	pl, present, err := a.floodOpen()
	if err != nil {
		return err
	}
	if err := pl.EnsureFlood(a.vip); err != nil {
		if errors.Is(err, clusterip.ErrFloodUnsupported) {
			// OCF_ERR_INSTALLED: not on this node; the buckets run without it.
			return fmt.Errorf("parameter flood_check=%q: %w; on such nodes leave the check out (loadshare crm --no-flood-check): %w",
				p.String("flood_check"), err, ocf.ErrInstalled)
		}
		return kernelErr(err)
	}
	env := attrs.NewEnv()
	if _, err := attrs.Load[floodState](env, p); err == nil && present {
		return nil // running already: a repeated start changes nothing
	}
	now := env.Now()
	return env.Save(p, &floodState{FloodMemory: clusterip.NewFloodMemory(now), Verdict: clusterip.FloodUnknown.String()})
}

func (a *clusterVIP) floodStop(ctx context.Context, p ocf.Params) error {
	name := p.String("flood_check")
	pl, err := a.floodPlane()
	if err != nil {
		return err
	}
	if err := pl.RemoveFlood(a.vip); err != nil {
		return kernelErr(err)
	}
	// A stopped check keeps no node out: its verdict goes with it.
	env := attrs.NewEnv()
	if st, err := attrs.Load[floodState](env, p); err == nil && st.Published != "" && env.Attrs != nil {
		if err := env.Attrs.Delete(ctx, floodAttr(name)); err != nil {
			p.Log.Warn("flood check stopped, but its attribute could not be deleted", "attribute", floodAttr(name), "err", err)
		}
	}
	return env.Remove(p)
}

// floodMonitor: a burst of probes sent, the counters read, the verdict
// judged and published when it changed. One UDP socket and one nftables
// read; attrd is asked about the other nodes only once a window has passed
// without a probe here and this node's own claim has been withdrawn for
// the confirmation time, and written only on a change.
func (a *clusterVIP) floodMonitor(ctx context.Context, p ocf.Params) error {
	name := p.String("flood_check")
	pl, present, err := a.floodOpen()
	if err != nil {
		return err
	}
	env := attrs.NewEnv()
	st, err := attrs.Load[floodState](env, p)
	if err != nil {
		return err
	}
	if !present {
		return fmt.Errorf("flood check of %s: its table is gone: %w", a.vip, ocf.ErrNotRunning)
	}
	if p.Interval == 0 {
		return nil // a probe (one-shot monitor): running, nothing to judge
	}
	if err := pl.SendFloodProbe(a.vip); err != nil {
		return kernelErr(err)
	}
	heard, err := pl.FloodHeard(a.vip)
	if err != nil {
		return kernelErr(err)
	}
	now := env.Now()
	var sum uint64
	for _, n := range heard {
		sum += n
	}
	window := time.Duration(p.Int("flood_window")) * p.Interval
	in, ask := st.Observe(now, sum, window, max(window, 3*p.Interval))
	at := env.Attrs
	if ask && at != nil {
		all, ok := at.(peerAttrs)
		if !ok {
			return fmt.Errorf("flood check of %s: %T cannot read the other nodes' attributes", a.vip, at)
		}
		vals, err := all.GetAll(ctx, floodAttr(name))
		if err != nil {
			return fmt.Errorf("flood check of %s: read the other nodes' %s: %w", a.vip, floodAttr(name), err)
		}
		self := os.Getenv(envOnNode)
		for node, v := range vals {
			if node != self && v == "1" {
				in.PeersReached = append(in.PeersReached, node)
			}
		}
		sort.Strings(in.PeersReached)
	}
	verdict, why := clusterip.JudgeFlood(in)
	if verdict.String() != st.Verdict {
		lvl := p.Log.Info
		if verdict == clusterip.FloodUnreached || verdict == clusterip.FloodNoneReached {
			lvl = p.Log.Warn
		}
		lvl("flood check: "+verdict.String(), "vip", a.vip.String(), "was", st.Verdict, "reason", why, "peers_heard", len(heard))
		st.Verdict = verdict.String()
	}
	st.Reason = why
	want := clusterip.FloodValue(verdict)
	if want != st.Published && at != nil {
		if want == "" {
			err = at.Delete(ctx, floodAttr(name))
		} else {
			err = at.Set(ctx, floodAttr(name), want, time.Duration(p.Int("flood_dampen"))*time.Second)
		}
		if err != nil {
			return fmt.Errorf("flood check of %s: publish %s=%q: %w", a.vip, floodAttr(name), want, err)
		}
	}
	st.Publish(now, want)
	return env.Save(p, st)
}
