package dpbench

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	x := []float64{4, 1, 3, 2}
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.25, 1.75}, {0.5, 2.5}, {1, 4}} {
		if got := quantile(x, tc.q); got != tc.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", x, tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("quantile(nil, 0.5) = %v, want NaN", got)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(101-i)*time.Microsecond) // unsorted on purpose
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"p50 of 1..100", d, 50, 50 * time.Microsecond},
		{"p99 of 1..100", d, 99, 99 * time.Microsecond},
		{"p100 of 1..100", d, 100, 100 * time.Microsecond},
		{"p0 of 1..100", d, 0, 1 * time.Microsecond},
		{"one sample", []time.Duration{7}, 99, 7},
		{"none", nil, 50, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("Percentile(%s, %v) = %v, want %v", tc.name, tc.p, got, tc.want)
			}
		})
	}
	if d[0] != 100*time.Microsecond {
		t.Errorf("Percentile sorted its input in place: d[0] = %v", d[0])
	}
}

func TestAccSummary(t *testing.T) {
	var a Acc
	ms := time.Millisecond
	a.Add([]Conn{
		{Server: "s1", Connect: 1 * ms, Request: 2 * ms},
		{Server: "s2", Connect: 1 * ms, Request: 2 * ms},
		{Err: errors.New("boom")},
	}, time.Second)
	a.Add([]Conn{{Server: "s1", Connect: 1 * ms, Request: 4 * ms}}, time.Second)
	s := a.Summary()
	if s.N != 4 || s.Errors != 1 || s.FirstErr == nil {
		t.Errorf("N, Errors, FirstErr = %d, %d, %v; want 4, 1, boom", s.N, s.Errors, s.FirstErr)
	}
	if s.Rate != 1.5 {
		t.Errorf("Rate = %v, want 1.5 (3 answered in 2 s)", s.Rate)
	}
	if s.ByServer["s1"] != 2 || s.ByServer["s2"] != 1 {
		t.Errorf("ByServer = %v, want s1:2 s2:1", s.ByServer)
	}
	if len(s.RoundRate) != 2 || s.RoundRate[0] != 2 || s.RoundRate[1] != 1 {
		t.Errorf("RoundRate = %v, want [2 1]", s.RoundRate)
	}
	// Round p50s 2 ms and 4 ms: half the range (1 ms) over their median (2 ms).
	if s.Noise != 0.5 {
		t.Errorf("Noise = %v, want 0.5", s.Noise)
	}
}

func TestChecks(t *testing.T) {
	sum := func(p50 time.Duration, rate float64) Summary {
		// Three rounds around the pooled p50: -5%, 0, +5%.
		rounds := []time.Duration{p50 * 95 / 100, p50, p50 * 105 / 100}
		return Summary{RequestP50: p50, Rate: rate, RoundP50: rounds, RoundRate: []float64{rate, rate, rate}}
	}
	us := time.Microsecond
	direct, spread := sum(100*us, 1000), sum(100*us, 1000)
	haproxy := sum(200*us, 600)
	good := Checks(direct, spread, sum(104*us, 900), sum(105*us, 900), haproxy)
	for _, c := range good {
		if !c.Met {
			t.Errorf("good run: %s = %v, target %s: not met", c.Metric, c.Value, c.Target)
		}
	}
	bad := Checks(direct, spread, sum(150*us, 700), sum(200*us, 700), haproxy)
	for _, c := range bad {
		if c.Met {
			t.Errorf("bad run: %s = %v, target %s: met", c.Metric, c.Value, c.Target)
		}
	}
	// haproxy no slower than direct: the overhead ratio is undefined, not met.
	free := Checks(direct, spread, sum(101*us, 900), sum(101*us, 900), sum(90*us, 600))
	if c := free[1]; !math.IsNaN(c.Value) || c.Met {
		t.Errorf("haproxy faster than direct: %s = %v met=%v, want NaN, not met", c.Metric, c.Value, c.Met)
	}
	// 1024 buckets 3% slower in pooled p50, but rounds scattered around 1.
	v16 := Summary{RequestP50: 100, RoundP50: []time.Duration{100, 100, 100, 100}}
	v1024 := Summary{RequestP50: 103, RoundP50: []time.Duration{90, 98, 104, 112}}
	if c := Checks(direct, spread, v16, v1024, haproxy)[3]; !c.Met {
		t.Errorf("per-round ratios 0.90..1.12: %s = %v, target %s: not met", c.Metric, c.Value, c.Target)
	}
	v1024.RoundP50 = []time.Duration{102, 103, 104, 103}
	if c := Checks(direct, spread, v16, v1024, haproxy)[3]; c.Met {
		t.Errorf("every round 2-4%% slower: %s = %v, target %s: met", c.Metric, c.Value, c.Target)
	}
	// A burst in one round moves the pooled rate, not the median.
	vip, hap := sum(100*us, 900), sum(200*us, 600)
	vip.RoundRate, vip.Rate = []float64{900, 900, 90}, 630
	if c := Checks(direct, spread, vip, vip, hap)[2]; c.Value != 1.5 || c.Pooled != 1.05 || !c.Met {
		t.Errorf("rate with one slow round: median %v pooled %v met %v, want 1.5, 1.05, met", c.Value, c.Pooled, c.Met)
	}
	var b strings.Builder
	WriteTable(&b, []string{"s1", "s2"}, []Summary{{Name: "x", ByServer: map[string]int{"s1": 3}}}, bad)
	if !strings.Contains(b.String(), "3/0") || !strings.Contains(b.String(), "not met") {
		t.Errorf("WriteTable output lacks the spread 3/0 or a verdict:\n%s", b.String())
	}
}
