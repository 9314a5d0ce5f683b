package loadmon

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// tracer builds samples as a monitor every interval would read them, on a
// 2-core host, with CPU, load and memory at the same level and no iowait.
// With testModel (iowait weight 0) raw = 100·level; a busy host cannot
// also spend the same share of its time in iowait.
type tracer struct {
	interval time.Duration
	now      time.Time
	cpu      CPUTimes
}

func newTracer() *tracer { return &tracer{interval: 10 * time.Second, now: t0} }

func (tr *tracer) next(level float64, db *DBLoad) Sample {
	const cores = 2
	tr.now = tr.now.Add(tr.interval)
	total := cores * tr.interval.Seconds()
	tr.cpu = CPUTimes{
		Busy:   tr.cpu.Busy + level*total,
		IOWait: tr.cpu.IOWait,
		Total:  tr.cpu.Total + total,
	}
	return Sample{
		HostSample: HostSample{
			Time: tr.now, CPU: tr.cpu, Cores: cores,
			Load1:  level * loadPerCoreFull * cores,
			MemPSI: level * memPSIFull, MemAvailable: 0.5,
		},
		DB: db,
	}
}

// testModel is DefaultModel without the iowait component (see tracer).
func testModel() Model {
	m := DefaultModel()
	m.Weights.IOWait = 0
	return m
}

// run feeds levels through m and returns the published values.
func run(m Model, levels []float64) []int {
	tr := newTracer()
	var st State
	out := make([]int, len(levels))
	for i, l := range levels {
		st = m.Step(st, tr.next(l, nil))
		out[i] = st.Value
	}
	return out
}

func repeat(v float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func changes(vs []int) int {
	n := 0
	for i := 1; i < len(vs); i++ {
		if vs[i] != vs[i-1] {
			n++
		}
	}
	return n
}

func TestModelSpike(t *testing.T) {
	// Steady 20 %, one monitor interval at 100 %, steady 20 % again.
	levels := append(append(repeat(0.2, 20), 1.0), repeat(0.2, 20)...)
	vs := run(testModel(), levels)
	for i, v := range vs[2:] { // the first interval has no CPU counters yet
		if v != 20 {
			t.Fatalf("spike: value %d at sample %d, want 20 throughout; values %v", v, i+2, vs)
		}
	}
	// Two intervals in a row are no longer noise: they pass the median
	// filter, and the EWMA (half-life 30 s) lets a 20 s burst from 20 to
	// 100 move the value by about half the way; it is back within minutes.
	levels = append(append(repeat(0.2, 20), 1.0, 1.0), repeat(0.2, 20)...)
	vs = run(testModel(), levels)
	peak := 0
	for _, v := range vs[2:] {
		peak = max(peak, v)
	}
	if peak < 25 || peak > 50 || vs[len(vs)-1] != 20 {
		t.Errorf("two-interval burst: peak %d, last %d; want a peak of 25..50 and back to 20; values %v", peak, vs[len(vs)-1], vs)
	}
}

func TestModelSteadyHigh(t *testing.T) {
	levels := append(repeat(0.2, 10), repeat(0.9, 40)...)
	vs := run(testModel(), levels)
	for i := 1; i < len(vs); i++ {
		if vs[i] < vs[i-1] {
			t.Fatalf("rising load: value fell from %d to %d at sample %d; values %v", vs[i-1], vs[i], i, vs)
		}
	}
	// Half-life 30 s and 10 s intervals: after 3 minutes (18 samples) the
	// smoothed value is within a few points of 90.
	if v := vs[10+18]; v < 85 {
		t.Errorf("3 minutes of 90 %% load: value %d, want ≥ 85; values %v", v, vs)
	}
	if v := vs[len(vs)-1]; v != 90 {
		t.Errorf("steady 90 %% load: final value %d, want 90; values %v", v, vs)
	}
	if n := changes(vs); n > 16 {
		t.Errorf("rising load: %d changes of value, want at most 16 (one per 5-point step); values %v", n, vs)
	}
	// And back down.
	vs = run(testModel(), append(repeat(0.9, 30), repeat(0.1, 40)...))
	if v := vs[len(vs)-1]; v != 10 {
		t.Errorf("load falling to 10 %%: final value %d, want 10; values %v", v, vs)
	}
}

func TestModelHysteresis(t *testing.T) {
	for _, tc := range []struct {
		name   string
		levels []float64
	}{
		// 47.5 is the rounding boundary between 45 and 50.
		{"noise across a step boundary", alternate(0.465, 0.485, 60)},
		{"±10 points around 50", alternate(0.40, 0.60, 60)},
		{"random-ish ±4 around 62", []float64{.62, .60, .65, .58, .63, .66, .61, .59, .64, .62, .58, .66, .60, .63, .61, .65, .59, .62, .64, .60, .66, .58, .63, .62, .61, .65, .60, .64, .59, .62}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Settle at the mean first, then look at the noisy part only.
			mean := 0.0
			for _, l := range tc.levels {
				mean += l
			}
			mean /= float64(len(tc.levels))
			vs := run(testModel(), append(repeat(mean, 40), tc.levels...))
			noisy := vs[40:]
			if n := changes(noisy); n != 0 {
				t.Errorf("value changed %d times on noise around %.1f: %v", n, 100*mean, noisy)
			}
			// Without hysteresis the same input flips: the test can fail.
			m := testModel()
			m.Hysteresis = 0
			m.HalfLife = time.Second // no smoothing either
			if n := changes(run(m, append(repeat(mean, 40), tc.levels...))[40:]); n == 0 && tc.name != "random-ish ±4 around 62" {
				t.Errorf("control: without smoothing and hysteresis the value never changed; the input is too tame to test anything")
			}
		})
	}
}

func alternate(a, b float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = a
		if i%2 == 1 {
			s[i] = b
		}
	}
	return s
}

func TestModelComponents(t *testing.T) {
	m := DefaultModel()
	first := Sample{HostSample: HostSample{
		Time: t0, Cores: 2, CPU: CPUTimes{Busy: 100, IOWait: 10, Total: 1000},
		Load1: 1, MemPSI: -1, MemAvailable: 0.1,
	}, DB: &DBLoad{ThreadsRunning: 5, ThreadsConnected: 51, MaxConnections: 100}}
	st := m.Step(State{}, first)
	want := Components{CPU: -1, Load: 0.25, IOWait: -1, Memory: 0.5, DBThreads: 1, DBConnections: 0.5}
	if st.Components != want {
		t.Errorf("first sample components = %+v, want %+v", st.Components, want)
	}
	// Known components only: (0.15·0.25 + 0.10·0.5 + 0.20·1 + 0.10·0.5) / 0.55.
	if raw := 100 * (0.15*0.25 + 0.10*0.5 + 0.20*1 + 0.10*0.5) / 0.55; math.Abs(st.Raw-raw) > 1e-9 || st.Value != quantize(raw, 5) {
		t.Errorf("first sample raw, value = %v, %d; want %v, %d", st.Raw, st.Value, raw, quantize(raw, 5))
	}

	second := first
	second.Time = t0.Add(10 * time.Second)
	second.CPU = CPUTimes{Busy: 110, IOWait: 13, Total: 1020} // 10 busy, 3 iowait of 20 s
	second.MemPSI = 5
	second.DB = nil
	st2 := m.Step(st, second)
	want = Components{CPU: 0.5, Load: 0.25, IOWait: 0.5, Memory: 0.25, DBThreads: -1, DBConnections: -1}
	if !approx(st2.Components, want) {
		t.Errorf("second sample components = %+v, want %+v", st2.Components, want)
	}

	// Counters that went backwards (reboot between monitors): CPU unknown.
	third := second
	third.Time = second.Time.Add(10 * time.Second)
	third.CPU = CPUTimes{Busy: 1, Total: 10}
	if c := m.Step(st2, third).Components; c.CPU != -1 || c.IOWait != -1 {
		t.Errorf("after a counter reset CPU, IOWait = %v, %v; want -1, -1", c.CPU, c.IOWait)
	}
}

func approx(a, b Components) bool {
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < av.NumField(); i++ {
		if math.Abs(av.Field(i).Float()-bv.Field(i).Float()) > 1e-9 {
			return false
		}
	}
	return true
}

func TestModelStateRoundTrip(t *testing.T) {
	tr := newTracer()
	var st State
	for _, l := range []float64{0.3, 0.5, 0.7} {
		st = DefaultModel().Step(st, tr.next(l, &DBLoad{ThreadsRunning: 2, ThreadsConnected: 3, MaxConnections: 100}))
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("State through JSON:\n got %+v\nwant %+v", back, st)
	}
}

func TestQuantize(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		step int
		want int
	}{
		{0, 5, 0}, {2.4, 5, 0}, {2.6, 5, 5}, {47.4, 5, 45}, {47.6, 5, 50}, {99, 5, 100}, {120, 5, 100}, {-3, 5, 0}, {33, 10, 30},
	} {
		if got := quantize(tc.v, tc.step); got != tc.want {
			t.Errorf("quantize(%v, %d) = %d, want %d", tc.v, tc.step, got, tc.want)
		}
	}
}
