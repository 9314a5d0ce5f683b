package loadmon

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestModelRecordedTrace replays host samples recorded on a 2-core machine
// (testdata/host-trace.json, recorded by hostprobe.TestRecordHostTrace): idle with one
// half-second burst at sample 4, every core busy in samples 10–29, then
// background noise. Recorded 0.5 s apart, replayed as if a monitor ran every
// 10 s (only sample times change; CPU shares come from the counters).
func TestModelRecordedTrace(t *testing.T) {
	b, err := os.ReadFile("testdata/host-trace.json")
	if err != nil {
		t.Fatal(err)
	}
	var trace []HostSample
	if err := json.Unmarshal(b, &trace); err != nil {
		t.Fatal(err)
	}
	m := DefaultModel()
	var st State
	var vs []int
	var raws []float64
	for i, h := range trace {
		h.Time = t0.Add(time.Duration(i) * 10 * time.Second)
		st = m.Step(st, Sample{HostSample: h})
		vs = append(vs, st.Value)
		raws = append(raws, st.Raw)
		if st.Value%DefaultStep != 0 || st.Value < 0 || st.Value > 100 {
			t.Fatalf("sample %d: value %d, want a multiple of %d in 0..100", i, st.Value, DefaultStep)
		}
	}
	t.Logf("values %v", vs)
	idle := vs[2:10]
	for i, v := range idle {
		if v != idle[0] {
			t.Errorf("idle part (burst at sample 4): value %d at sample %d differs from %d; values %v", v, i+2, idle[0], vs)
		}
	}
	if vs[29]-vs[9] < 25 {
		t.Errorf("busy part: value %d at its end vs %d before; want at least 25 points higher; values %v", vs[29], vs[9], vs)
	}
	// No flapping: the value goes up with the load and down after it, with
	// few reversals of direction, while the raw value reverses all the time.
	if r, rawR := reversals(vs), reversals(quantizeAll(raws)); r > 3 || r*3 > rawR {
		t.Errorf("value reversed direction %d times (the unsmoothed, quantized raw value %d times); want at most 3 and a third; values %v", r, rawR, vs)
	}
}

func quantizeAll(raws []float64) []int {
	q := make([]int, len(raws))
	for i, r := range raws {
		q[i] = quantize(r, DefaultStep)
	}
	return q
}

// reversals counts changes of direction (up then down, or down then up).
func reversals(vs []int) int {
	n, dir := 0, 0
	for i := 1; i < len(vs); i++ {
		d := vs[i] - vs[i-1]
		if d == 0 {
			continue
		}
		if dir != 0 && (d > 0) != (dir > 0) {
			n++
		}
		dir = d
	}
	return n
}
