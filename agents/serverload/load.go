package serverload

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/loadshare/loadshare/agents/mysqlconn"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/loadmon"
)

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

// step feeds one sample into the model held in st.
func (a *serverLoad) step(ctx context.Context, p ocf.Params, st *state) error {
	hs, err := a.host.Sample(ctx)
	if err != nil {
		return fmt.Errorf("sample host: %w", err)
	}
	s := loadmon.Sample{HostSample: hs}
	if probe, ok, err := mysqlconn.MySQLProbe(p, true); err != nil || ok {
		var status loadmon.Status
		if err == nil {
			probe.Timeout = mysqlconn.ProbeTimeout(ctx, probe.Timeout)
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
func (a *serverLoad) update(ctx context.Context, p ocf.Params, st *state, force bool) error {
	if err := a.step(ctx, p, st); err != nil {
		return err
	}
	m := st.Model
	// The build's version rides along: written at start and when it
	// changes (an upgrade restarts the agent), read by crm check.
	values := map[string]string{attrLoad: strconv.Itoa(m.Value), crm.AttrVersion: ocf.Version()}
	changed, err := a.env.Publish(ctx, p, &st.Published, values, time.Duration(p.Int("dampen"))*time.Second, force)
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
