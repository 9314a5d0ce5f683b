package loadmon

import (
	"math"
	"slices"
	"time"
)

// CPUTimes are cumulative CPU seconds since boot, summed over all CPUs.
type CPUTimes struct {
	Busy   float64 // user+nice+system+irq+softirq+steal (guest is inside user)
	IOWait float64 // idle while a task waited for I/O
	Total  float64 // Busy + IOWait + idle
}

// HostSample is one reading of the host. Fields the model cannot use without a
// previous sample (CPU) are counters; the others are instantaneous.
type HostSample struct {
	Time         time.Time
	CPU          CPUTimes
	Cores        int     // logical CPUs
	Load1        float64 // 1-minute load average (runnable + uninterruptible tasks)
	MemPSI       float64 // memory PSI "some avg10": % of the last 10 s some task stalled on memory; -1 unknown
	MemAvailable float64 // MemAvailable/MemTotal, 0..1
}

// The load model turns samples into server_load, one number 0–100 that
// placement compares across nodes: higher means busier, so the node should
// serve fewer buckets. Pipeline per Step:
//
//	components (each 0..1) → weighted mean ×100 (raw)
//	→ median of the last 3 raw values (a one-interval spike never passes)
//	→ EWMA with a half-life (time-based, so irregular intervals are fine)
//	→ quantized to StepSize points, moved only when the smoothed value leaves
//	  the current step by more than Hysteresis points.
//
// The price of hysteresis is a dead band: a steady load is published within
// StepSize/2 + Hysteresis points (4.5 by default) of its smoothed value,
// depending on where it came from.
//
// The published value is coarse on purpose: every change is a CIB write and
// a placement run in Pacemaker, and ha_cluster_exporter exports each distinct
// attribute value as a separate Prometheus series
// (ha_cluster_pacemaker_node_attributes{name="server_load",value="40"}), so a
// value that moved on noise would churn both.

// Weights says how much each component counts. Only the ratios matter; a
// component that is unknown in a sample (no previous CPU counters yet, no
// database probe) is left out and the others are renormalised.
type Weights struct {
	CPU           float64 // CPU busy time over the interval
	Load          float64 // 1-minute load average per core
	IOWait        float64 // CPU time idle waiting for I/O over the interval
	Memory        float64 // memory pressure (PSI), else low available memory
	DBThreads     float64 // database Threads_running per core
	DBConnections float64 // database Threads_connected / max_connections
}

// DefaultWeights: CPU dominates, because the database is CPU-bound on the
// hot path; the database's own view of concurrency comes next, since a
// node can be CPU-idle yet stuck on locks with many running threads; the
// rest catch storage and memory trouble that CPU time does not show.
var DefaultWeights = Weights{CPU: 0.35, Load: 0.15, IOWait: 0.10, Memory: 0.10, DBThreads: 0.20, DBConnections: 0.10}

// Model holds the tunables of the load model. Zero Weights, HalfLife or
// StepSize mean their defaults; Hysteresis 0 means none, so start from
// DefaultModel.
type Model struct {
	Weights    Weights
	HalfLife   time.Duration // EWMA half-life; 0 means 30 s
	StepSize   int           // quantization step in points; 0 means 5
	Hysteresis float64       // points beyond half a step before the value moves
}

// Defaults of the model.
const (
	DefaultHalfLife   = 30 * time.Second
	DefaultStep       = 5
	DefaultHysteresis = 2.0
)

// DefaultModel returns the model with its documented defaults.
func DefaultModel() Model {
	return Model{Weights: DefaultWeights, HalfLife: DefaultHalfLife, StepSize: DefaultStep, Hysteresis: DefaultHysteresis}
}

// Saturation points: where each component reaches 1 (fully loaded).
const (
	loadPerCoreFull = 2.0  // run queue twice the cores: every task waits as long as it runs
	iowaitFull      = 0.30 // 30 % of CPU time waiting for storage: storage-bound
	memPSIFull      = 20.0 // some task stalled on memory 20 % of the time
	memAvailLow     = 0.20 // without PSI: pressure rises as available memory falls below 20 %
	dbThreadsFull   = 2.0  // Threads_running twice the cores: queries queue for CPU
)

// DBLoad is the database's own view of its load, from a MySQL Status.
type DBLoad struct {
	ThreadsRunning   int
	ThreadsConnected int
	MaxConnections   int
}

// DBLoadOf extracts the load figures from a probe's Status.
func DBLoadOf(st Status) *DBLoad {
	return &DBLoad{ThreadsRunning: st.ThreadsRunning, ThreadsConnected: st.ThreadsConnected, MaxConnections: st.MaxConnections}
}

// Sample is one input of the model.
type Sample struct {
	HostSample
	DB *DBLoad // nil when the database was not probed (or did not answer)
}

// Components are the normalised inputs of one Step, each 0..1, or -1 when
// unknown in this sample.
type Components struct {
	CPU, Load, IOWait, Memory, DBThreads, DBConnections float64
}

// State is the model's memory between Steps. It is plain data (JSON-safe):
// the server_load agent keeps it in a state file, because every monitor
// call is a new process.
type State struct {
	Valid      bool      // false before the first Step
	Time       time.Time // of the last sample
	CPU        CPUTimes  // counters of the last sample: the next interval starts here
	Recent     []float64 // last raw values, newest last (at most 3), for the spike filter
	Smoothed   float64   // EWMA of the filtered raw values, 0..100
	Value      int       // published server_load: multiple of StepSize, 0..100
	Raw        float64   // last raw value, 0..100 (for logs)
	Components Components
}

// Step feeds one sample into the model and returns the new state; prev is
// the zero State for the first sample. Pure: no clock, no I/O.
func (m Model) Step(prev State, s Sample) State {
	m = m.withDefaults()
	c := m.components(prev, s)
	raw := m.Weights.combine(c)

	if prev.Valid && prev.Components.CPU < 0 && c.CPU >= 0 {
		// The first sample lacked the CPU share (it needs two): start the
		// filter and the average afresh rather than from a partial value.
		prev = State{}
	}
	recent := append(slices.Clone(prev.Recent), raw)
	if len(recent) > 3 {
		recent = recent[len(recent)-3:]
	}
	filtered := median(recent)

	smoothed := filtered
	if dt := s.Time.Sub(prev.Time); prev.Valid && dt > 0 {
		// alpha for a time constant, not per sample: a late monitor
		// (Pacemaker busy) weighs its sample by the time it covers.
		alpha := 1 - math.Exp2(-float64(dt)/float64(m.HalfLife))
		smoothed = prev.Smoothed + alpha*(filtered-prev.Smoothed)
	}

	value := quantize(smoothed, m.StepSize)
	if prev.Valid {
		// Hysteresis: keep the published value while the smoothed one is
		// within half a step plus Hysteresis of it. Noise around a step
		// boundary (e.g. 47.4 ↔ 47.6 between 45 and 50) then never flips it.
		if math.Abs(smoothed-float64(prev.Value)) < float64(m.StepSize)/2+m.Hysteresis {
			value = prev.Value
		}
	}
	return State{
		Valid: true, Time: s.Time, CPU: s.CPU, Recent: recent,
		Smoothed: smoothed, Value: value, Raw: raw, Components: c,
	}
}

func (m Model) withDefaults() Model {
	if m.Weights == (Weights{}) {
		m.Weights = DefaultWeights
	}
	if m.HalfLife <= 0 {
		m.HalfLife = DefaultHalfLife
	}
	if m.StepSize <= 0 {
		m.StepSize = DefaultStep
	}
	if m.Hysteresis < 0 {
		m.Hysteresis = 0
	}
	return m
}

// components normalises a sample. Each is explained where it is computed.
func (m Model) components(prev State, s Sample) Components {
	c := Components{CPU: -1, Load: -1, IOWait: -1, Memory: -1, DBThreads: -1, DBConnections: -1}
	cores := float64(max(s.Cores, 1))

	// CPU: share of CPU time that was busy since the previous sample. Needs
	// two samples; counters that went backwards (reboot) make it unknown.
	if d := s.CPU.Total - prev.CPU.Total; prev.Valid && d > 0 {
		c.CPU = clamp01((s.CPU.Busy - prev.CPU.Busy) / d)
		// IOWait: share of CPU time idle while tasks waited for I/O. Busy
		// CPU does not show a storage-bound database; this does.
		c.IOWait = clamp01((s.CPU.IOWait - prev.CPU.IOWait) / d / iowaitFull)
	}

	// Load: 1-minute load average per core. It counts runnable and
	// uninterruptible tasks, so it sees queueing that CPU busy (capped at
	// 100 %) cannot; it lags by design (a 1-minute average).
	c.Load = clamp01(s.Load1 / cores / loadPerCoreFull)

	// Memory: the kernel's pressure stall information when present (how
	// often tasks stall waiting for memory: reclaim, swap-in, refaults),
	// since "used" memory includes reclaimable cache and says little;
	// otherwise how far available memory has fallen below 20 %.
	switch {
	case s.MemPSI >= 0:
		c.Memory = clamp01(s.MemPSI / memPSIFull)
	case s.MemAvailable > 0:
		c.Memory = clamp01((memAvailLow - s.MemAvailable) / memAvailLow)
	}

	if s.DB != nil {
		// DBThreads: statements executing now per core, the probe's own
		// excluded. More running statements than cores means they queue.
		c.DBThreads = clamp01(float64(s.DB.ThreadsRunning-1) / cores / dbThreadsFull)
		// DBConnections: how close the server is to refusing new clients
		// (max_connections), the probe's own connection excluded.
		if s.DB.MaxConnections > 0 {
			c.DBConnections = clamp01(float64(s.DB.ThreadsConnected-1) / float64(s.DB.MaxConnections))
		}
	}
	return c
}

// combine is the weighted mean of the known components, scaled to 0..100.
func (w Weights) combine(c Components) float64 {
	pairs := [...][2]float64{
		{w.CPU, c.CPU}, {w.Load, c.Load}, {w.IOWait, c.IOWait},
		{w.Memory, c.Memory}, {w.DBThreads, c.DBThreads}, {w.DBConnections, c.DBConnections},
	}
	var sum, weight float64
	for _, p := range pairs {
		if p[1] < 0 || p[0] <= 0 {
			continue
		}
		sum += p[0] * p[1]
		weight += p[0]
	}
	if weight == 0 {
		return 0
	}
	return 100 * sum / weight
}

// quantize rounds v to the nearest multiple of step within 0..100.
func quantize(v float64, step int) int {
	q := int(math.Round(v/float64(step))) * step
	return min(max(q, 0), 100)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Min(1, math.Max(0, x))
}
