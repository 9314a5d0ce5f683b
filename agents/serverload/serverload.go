// Package serverload is the OCF resource agent ocf:loadshare:server_load:
// it publishes server_load (0–100, smoothed, in coarse steps) and
// loadshare_version through attrd and, with placer set, runs the bucket placer on the DC. It registers
// itself with package ocf in init(); cmd/server_load is its binary.
//
// serverload.go is the agent (parameters, actions), load.go the load
// probe and model step, placer.go the bucket placer's rounds it hosts,
// state.go the state file both keep, metrics.go the node's metrics.
package serverload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/agents/mysqlconn"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/loadmon"
	"github.com/loadshare/loadshare/loadmon/hostprobe"
)

// attrLoad is the attribute server_load publishes: 0..100 in coarse steps.
const attrLoad = "server_load"

func init() {
	ocf.Register("server_load", func() ocf.Agent {
		return &serverLoad{env: attrs.NewEnv(), host: &hostprobe.Host{}, sleep: sleepCtx, place: placeOnDC, textfile: WriteTextfile}
	})
}

// serverLoad is ocf:loadshare:server_load: it publishes the node's load
// from package loadmon's model. The model's state lives in the state file
// between monitors, since every monitor is a new process.
type serverLoad struct {
	env   attrs.Env
	host  hostSampler
	sleep func(context.Context, time.Duration) error
	place placer
	// textfile writes the metrics into a directory (WriteTextfile).
	textfile func(dir, runDir string, known *Known) error
	// cluster reads the status and this node's name; nil: crm.ReadLive.
	cluster func(ctx context.Context) (*crm.Status, string, error)
}

func (a *serverLoad) Meta() ocf.Meta {
	params := []ocf.Param{
		{Name: "dampen", Type: ocf.Integer, Default: "10", ShortDesc: "attrd dampening, seconds",
			LongDesc: "attrd_updater --delay: seconds attrd waits for further changes before writing " + attrLoad + " to the CIB; 0 writes at once.",
			Check:    attrs.NonNegative},
		{Name: "step", Type: ocf.Integer, Default: strconv.Itoa(loadmon.DefaultStep), ShortDesc: "published value's step, points",
			LongDesc: attrLoad + " is a multiple of this many points (0..100). Coarse on purpose: each distinct value is a CIB write, a placement run and a new Prometheus series in ha_cluster_exporter.",
			Check: func(v string) error {
				if n := attrs.Atoi(v); n < 1 || n > 50 {
					return errors.New("must be 1..50")
				}
				return nil
			}},
		{Name: "hysteresis", Type: ocf.Integer, Default: strconv.Itoa(int(loadmon.DefaultHysteresis)), ShortDesc: "points beyond half a step before the value moves",
			LongDesc: "The published value moves only when the smoothed load is more than step/2 plus this many points away from it, so noise around a step boundary never flips it.",
			Check:    attrs.NonNegative},
		{Name: "half_life", Type: ocf.Integer, Default: strconv.Itoa(int(loadmon.DefaultHalfLife / time.Second)), ShortDesc: "smoothing half-life, seconds",
			LongDesc: "Half-life of the exponential moving average of the load: a step change of the load is half reflected after this many seconds.",
			Check:    attrs.Positive},
	}
	for _, w := range weightParams {
		params = append(params, ocf.Param{Name: w.name, Type: ocf.Integer, Default: strconv.Itoa(int(w.def*100 + 0.5)),
			ShortDesc: "weight of " + w.desc,
			LongDesc:  "Relative weight (percent) of " + w.desc + " in " + attrLoad + ". Only ratios matter; 0 leaves the component out. Components unknown in a sample (database not configured or not answering, CPU before the second sample) are left out and the rest renormalised.",
			Check:     attrs.NonNegative})
	}
	params = append(params, ocf.Param{Name: "probe_mysql", Type: ocf.Boolean, Default: "true", ShortDesc: "count the database's own load",
		LongDesc: "Also probe the local MySQL/MariaDB (one connection, one query per monitor) for Threads_running and Threads_connected / max_connections. The connection comes from defaults_file, user, socket, host and port (default: root over " + loadmon.DefaultSocket + "). While the database does not answer, its components are left out, and that is logged once."})
	params = append(params, mysqlconn.MySQLParams(true)...)
	params = append(params, ocf.Param{Name: "placer",
		ShortDesc: "VIPs whose buckets this node places while it is the DC",
		LongDesc: "Space-separated VIPs configured by `loadshare crm` (bucket primitives NAME_0 … NAME_{N-1}), each NAME or NAME:key=value,…: " +
			"require=writable_monit (default: a writer VIP) or require=readable_monit (a reader VIP), and the placement policy, " +
			"idle-load, full-load, min-share, min-buckets, max-buckets, hysteresis, writer-weight (percent of its spare capacity a writable node counts with: " +
			"a reader VIP that gives the primary a smaller share), as the flags of `loadshare crm place`. Example: \"vip ro:require=readable_monit,writer-weight=50\". " +
			"After publishing server_load, each monitor runs one placement round for each (as `loadshare crm place --only-dc`): " +
			"on the DC it sets own_NAME_K so that each eligible node's bucket count follows its spare capacity; elsewhere it does nothing. " +
			"Empty: no placement from this agent.",
		Check: func(v string) error { _, err := crm.ParsePlacer(v); return err }})
	params = append(params, ocf.Param{Name: "placer_settle", Type: ocf.Integer, Default: "30",
		ShortDesc: "seconds before the placer evens out a still spread",
		LongDesc: "The placer keeps each node's previous bucket count while it is within one bucket of the new target (hysteresis), so a load that wobbles moves nothing. " +
			"Once the targets have not changed for this many seconds, it goes to them exactly: a load that passed leaves no uneven spread behind. 0: always exact (no hysteresis).",
		Check: attrs.NonNegative})
	params = append(params, ocf.Param{Name: "metrics_textfile",
		ShortDesc: "directory of node_exporter's textfile collector",
		LongDesc: "When set, every monitor writes this node's loadshare metrics (what `loadshare metrics` prints: the kernel's buckets and counters, " +
			"this node's attributes and bucket targets, the placer's rounds) to DIR/" + TextfileName + ", atomically (a temporary file, then a rename), " +
			"for prometheus-node-exporter --collector.textfile.directory=DIR. An absolute path of an existing directory. Empty: no file.",
		Check: func(v string) error {
			if !filepath.IsAbs(v) {
				return errors.New("not an absolute path")
			}
			return nil
		}})
	return ocf.Meta{
		Name:      "server_load",
		ShortDesc: "publishes the node's load (" + attrLoad + ", 0..100 in coarse steps)",
		LongDesc: "Run as a clone, one instance per node. Every monitor samples the host (CPU, load per core, iowait, memory pressure) and the local database (Threads_running, Threads_connected; see probe_mysql), " +
			"combines them with weights into one load 0..100, smooths it (median of 3, then an exponential moving average), quantizes it to steps with hysteresis, and publishes the node attribute " + attrLoad + " through attrd_updater only when it changed. " +
			"The model's state is kept between monitors in a state file under HA_RSCTMP (default " + attrs.DefaultRunDir + "). " +
			"It also publishes " + crm.AttrVersion + ", the loadshare build the node runs, so that \"loadshare crm check\" can warn when nodes run different versions. Stop deletes both attributes.",
		Params:  params,
		Actions: attrs.Actions(),
	}
}

func (a *serverLoad) Validate(_ context.Context, p ocf.Params) error {
	if attrs.ValidatesFiles(p) {
		if _, _, err := mysqlconn.MySQLProbe(p, true); err != nil {
			return err
		}
		if dir := p.String("metrics_textfile"); dir != "" {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return &ocf.ParamError{Param: "metrics_textfile", Value: dir, Reason: "not a directory on this node", Local: true}
			}
		}
	}
	if a.model(p).Weights == (loadmon.Weights{}) {
		return &ocf.ParamError{Param: "weight_cpu", Value: p.String("weight_cpu"), Reason: "all weights are 0: nothing to measure"}
	}
	return nil
}

func (a *serverLoad) Start(ctx context.Context, p ocf.Params) error {
	st, err := attrs.Load[state](a.env, p)
	if errors.Is(err, ocf.ErrNotRunning) {
		st, err = &state{}, nil
	}
	if err != nil {
		return err
	}
	if err := a.env.Save(p, st); err != nil { // running from here on
		return err
	}
	// Two samples a moment apart, so the first value knows the CPU share.
	if st.Model == nil {
		if err := a.step(ctx, p, st); err != nil {
			return err
		}
		if err := a.sleep(ctx, startSettle); err != nil {
			return fmt.Errorf("wait between start samples: %w", err)
		}
	}
	if err := a.update(ctx, p, st, true); err != nil {
		return err
	}
	return a.env.Save(p, st)
}

func (a *serverLoad) Monitor(ctx context.Context, p ocf.Params) error {
	st, err := attrs.Load[state](a.env, p)
	if err != nil {
		return err
	}
	if err := a.update(ctx, p, st, false); err != nil {
		return err
	}
	var known *Known
	if !p.IsProbe() {
		known = a.placeBuckets(ctx, p, st)
	}
	if err := a.env.Save(p, st); err != nil {
		return err
	}
	if dir := p.String("metrics_textfile"); dir != "" && !p.IsProbe() {
		// Not a failure of server_load (node_exporter shows the file's
		// age); said once per change, not every monitor.
		msg := ""
		err := a.textfile(dir, a.env.RunDir, known)
		if err != nil {
			msg = err.Error()
		}
		if msg != st.Textfile {
			if err != nil {
				p.Log.Warn("metrics textfile not written", "dir", dir, "err", err)
			} else {
				p.Log.Info("metrics textfile written again", "dir", dir)
			}
			st.Textfile = msg
			return a.env.Save(p, st)
		}
	}
	return nil
}

func (a *serverLoad) Stop(ctx context.Context, p ocf.Params) error {
	a.env.Unpublish(ctx, p, attrLoad, crm.AttrVersion)
	return a.env.Remove(p)
}
