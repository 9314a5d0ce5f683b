// Package serverload is the OCF resource agent ocf:loadshare:server_load:
// it publishes server_load (0–100, smoothed, in coarse steps) and
// loadshare_version through attrd and, with placer set, runs the bucket placer on the DC. It registers
// itself with package ocf in init(); cmd/server_load is its binary.
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

// hostSampler is hostprobe.Host; tests replay recorded samples instead.
type hostSampler interface {
	Sample(ctx context.Context) (loadmon.HostSample, error)
}

// startSettle is how long start waits between its two host samples, so the
// first published value already includes CPU time over an interval.
const startSettle = time.Second

// weightParams map parameter names to the model's weights (percent).
var weightParams = []struct {
	name, desc string
	def        float64
	set        func(*loadmon.Weights, float64)
}{
	{"weight_cpu", "CPU busy time over the monitor interval", loadmon.DefaultWeights.CPU, func(w *loadmon.Weights, v float64) { w.CPU = v }},
	{"weight_load", "1-minute load average per core (full at 2 per core)", loadmon.DefaultWeights.Load, func(w *loadmon.Weights, v float64) { w.Load = v }},
	{"weight_iowait", "CPU time waiting for I/O (full at 30 %)", loadmon.DefaultWeights.IOWait, func(w *loadmon.Weights, v float64) { w.IOWait = v }},
	{"weight_memory", "memory pressure: PSI some avg10 (full at 20 %), else available memory under 20 %", loadmon.DefaultWeights.Memory, func(w *loadmon.Weights, v float64) { w.Memory = v }},
	{"weight_db_threads", "database Threads_running per core (full at 2 per core)", loadmon.DefaultWeights.DBThreads, func(w *loadmon.Weights, v float64) { w.DBThreads = v }},
	{"weight_db_connections", "database Threads_connected / max_connections", loadmon.DefaultWeights.DBConnections, func(w *loadmon.Weights, v float64) { w.DBConnections = v }},
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
	params = append(params, attrs.MySQLParams(true)...)
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
		if _, _, err := attrs.MySQLProbe(p, true); err != nil {
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

// model builds the load model from the parameters.
func (a *serverLoad) model(p ocf.Params) loadmon.Model {
	m := loadmon.Model{
		HalfLife:   time.Duration(p.Int("half_life")) * time.Second,
		StepSize:   int(p.Int("step")),
		Hysteresis: float64(p.Int("hysteresis")),
	}
	for _, w := range weightParams {
		w.set(&m.Weights, float64(p.Int(w.name))/100)
	}
	return m
}

func (a *serverLoad) Start(ctx context.Context, p ocf.Params) error {
	st, err := a.env.Load(p)
	if errors.Is(err, ocf.ErrNotRunning) {
		st, err = &attrs.State{}, nil
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
	st, err := a.env.Load(p)
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
func (a *serverLoad) placeBuckets(ctx context.Context, p ocf.Params, st *attrs.State) *Known {
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
					st.Ideals = map[string]attrs.Ideal{}
				}
				st.Ideals[name] = attrs.Ideal{Targets: key, Since: now}
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

func (a *serverLoad) Stop(ctx context.Context, p ocf.Params) error {
	a.env.Unpublish(ctx, p, attrLoad, crm.AttrVersion)
	return a.env.Remove(p)
}

// step feeds one sample into the model held in st.
func (a *serverLoad) step(ctx context.Context, p ocf.Params, st *attrs.State) error {
	hs, err := a.host.Sample(ctx)
	if err != nil {
		return fmt.Errorf("sample host: %w", err)
	}
	s := loadmon.Sample{HostSample: hs}
	if probe, ok, err := attrs.MySQLProbe(p, true); err != nil || ok {
		var status loadmon.Status
		if err == nil {
			probe.Timeout = attrs.ProbeTimeout(ctx, probe.Timeout)
			status, err = probe.Sample(ctx)
		}
		probeErr := ""
		if err != nil {
			// The database's health is mysql_monitor's business; here it
			// only drops the database components. Said once per change.
			probeErr = err.Error()
			if probeErr != st.Probe {
				p.Log.Info("database not probed, its load left out", "err", err)
			}
		} else {
			s.DB = loadmon.DBLoadOf(status)
		}
		st.Probe = probeErr
	}
	var prev loadmon.State
	if st.Model != nil {
		prev = *st.Model
	}
	next := a.model(p).Step(prev, s)
	st.Model = &next
	return nil
}

// update samples, steps the model and publishes server_load if it changed;
// the caller saves st.
func (a *serverLoad) update(ctx context.Context, p ocf.Params, st *attrs.State, force bool) error {
	if err := a.step(ctx, p, st); err != nil {
		return err
	}
	m := st.Model
	// The build's version rides along: written at start and when it
	// changes (an upgrade restarts the agent), read by crm check.
	values := map[string]string{attrLoad: strconv.Itoa(m.Value), crm.AttrVersion: ocf.Version()}
	changed, err := a.env.Publish(ctx, p, st, values, time.Duration(p.Int("dampen"))*time.Second, force)
	if err != nil {
		return err
	}
	if len(changed) > 0 {
		c := m.Components
		p.Log.Info("server load changed", attrLoad, m.Value, "smoothed", round1(m.Smoothed), "raw", round1(m.Raw),
			"cpu", round1(c.CPU), "load", round1(c.Load), "iowait", round1(c.IOWait), "memory", round1(c.Memory),
			"db_threads", round1(c.DBThreads), "db_connections", round1(c.DBConnections))
	}
	return nil
}

func round1(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
