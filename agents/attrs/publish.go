package attrs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/loadshare/loadshare/agents/ocf"
)

// republishAfter: a value unchanged this long is written again, so an
// attribute lost by attrd (or deleted by hand) comes back without a restart.
const republishAfter = 10 * time.Minute

// Published is what an instance last wrote to attrd: each agent's state
// type embeds it (its fields stay at the top level of the state file).
type Published struct {
	Published   map[string]string `json:"published"`    // attribute → value we last wrote
	PublishedAt time.Time         `json:"published_at"` // last write of any attribute
	// The attrd that holds what we published and the controller beside
	// it (Env.Daemons) at the last write
	Attrd    string `json:"attrd,omitempty"`
	Controld string `json:"controld,omitempty"`
}

// Publish writes each attribute whose value differs from what st says
// we published (or all, with force, when the last write is older
// than republishAfter, or when attrd is another process than at the last
// write); "" deletes the attribute. It records what it wrote in st and
// returns the names it changed.
//
// Two restarts lose the node's attributes without any value changing
// (pacemakerd respawns a crashed daemon in place):
//   - a new pacemaker-attrd holds none of them: its peers drop them when
//     it leaves. Everything is written again.
//   - when pacemaker-controld is lost, the DC erases the node's transient
//     attributes from the CIB, while attrd still holds them and, since
//     none changed, never writes them back. attrd is asked to resend
//     every value (attrd_updater --refresh).
//
// Without either the node would keep writable_monit unset in the CIB, and
// so no bucket, indefinitely.
func (e Env) Publish(ctx context.Context, p ocf.Params, st *Published, values map[string]string, delay time.Duration, force bool) ([]string, error) {
	if st.Published == nil {
		st.Published = map[string]string{}
	}
	stale := e.Now().Sub(st.PublishedAt) > republishAfter
	var attrd, controld string
	if e.Daemons != nil {
		attrd, controld = e.Daemons()
	}
	if attrd != "" && st.Attrd != "" && attrd != st.Attrd && !force {
		p.Log.Info("pacemaker-attrd restarted: publishing every attribute again", "was", st.Attrd, "now", attrd)
		force = true
	}
	refresh := controld != "" && st.Controld != "" && controld != st.Controld && !force
	var changed []string
	for _, name := range sortedKeys(values) {
		v := values[name]
		old, had := st.Published[name]
		if !force && !stale && old == v && (had || v == "") {
			continue
		}
		if e.Attrs == nil {
			p.Log.Debug("not publishing ("+EnvAttrd+"=none)", "attribute", name, "value", v)
		} else if v == "" {
			if err := e.Attrs.Delete(ctx, name); err != nil {
				return changed, fmt.Errorf("delete attribute %s: %w", name, err)
			}
		} else if err := e.Attrs.Set(ctx, name, v, delay); err != nil {
			return changed, fmt.Errorf("publish %s=%s: %w", name, v, err)
		}
		st.Published[name] = v
		if old != v {
			changed = append(changed, name)
		}
	}
	if refresh && e.Attrs != nil {
		// The DC erases the attributes as soon as it sees the old
		// controller gone (in the lab 50 ms after the kill, before the
		// respawn): a monitor that sees the new one comes after that.
		p.Log.Info("pacemaker-controld restarted: asking attrd to write every attribute again", "was", st.Controld, "now", controld)
		if err := e.Attrs.Refresh(ctx); err != nil {
			return changed, fmt.Errorf("attrd refresh: %w", err)
		}
	}
	if force || stale || len(changed) > 0 {
		st.PublishedAt = e.Now()
	}
	if attrd != "" {
		st.Attrd = attrd
	}
	if controld != "" {
		st.Controld = controld
	}
	return changed, nil
}

// Unpublish deletes the attributes on stop. A failure is logged, not
// returned: a failed stop gets the node fenced, and attrd being away (the
// only likely cause) means Pacemaker is going down on this node anyway.
func (e Env) Unpublish(ctx context.Context, p ocf.Params, names ...string) {
	if e.Attrs == nil {
		return
	}
	for _, n := range names {
		if err := e.Attrs.Delete(ctx, n); err != nil {
			p.Log.Warn("could not delete attribute on stop", "attribute", n, "err", err)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
