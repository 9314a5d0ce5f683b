package dpbench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Acc accumulates one variant's connections over several rounds.
type Acc struct {
	Name      string
	connect   []time.Duration
	request   []time.Duration
	roundP50  []time.Duration // request p50 of each round, to see the noise
	roundRate []float64       // answered connections per second of each round
	elapsed   time.Duration
	n, errors int
	byServer  map[string]int
	firstErr  error
}

// Add records one round: its connections and the wall time they took.
func (a *Acc) Add(conns []Conn, elapsed time.Duration) {
	if a.byServer == nil {
		a.byServer = map[string]int{}
	}
	var req []time.Duration
	for _, c := range conns {
		a.n++
		if c.Err != nil {
			a.errors++
			if a.firstErr == nil {
				a.firstErr = c.Err
			}
			continue
		}
		a.connect = append(a.connect, c.Connect)
		a.request = append(a.request, c.Request)
		req = append(req, c.Request)
		a.byServer[c.Server]++
	}
	a.elapsed += elapsed
	if len(req) > 0 && elapsed > 0 {
		a.roundP50 = append(a.roundP50, Percentile(req, 50))
		a.roundRate = append(a.roundRate, float64(len(req))/elapsed.Seconds())
	}
}

// Summary is one variant's figures over all its rounds.
type Summary struct {
	Name                   string
	N, Errors              int
	FirstErr               error
	ConnectP50, ConnectP99 time.Duration
	RequestP50, RequestP99 time.Duration
	Rate                   float64        // answered connections per second of wall time
	ByServer               map[string]int // answers per server name
	// Noise is half the relative range of the per-round request p50s:
	// how much the median moves between rounds on this machine.
	Noise     float64
	RoundP50  []time.Duration // request p50 of each round, in round order
	RoundRate []float64       // rate of each round, in round order
}

// Summary computes the figures accumulated so far.
func (a *Acc) Summary() Summary {
	s := Summary{
		Name: a.Name, N: a.n, Errors: a.errors, FirstErr: a.firstErr,
		ConnectP50: Percentile(a.connect, 50), ConnectP99: Percentile(a.connect, 99),
		RequestP50: Percentile(a.request, 50), RequestP99: Percentile(a.request, 99),
		ByServer: a.byServer, RoundP50: a.roundP50, RoundRate: a.roundRate,
	}
	if a.elapsed > 0 {
		s.Rate = float64(len(a.request)) / a.elapsed.Seconds()
	}
	if len(a.roundP50) > 1 {
		lo, hi := slices.Min(a.roundP50), slices.Max(a.roundP50)
		s.Noise = float64(hi-lo) / 2 / float64(Percentile(a.roundP50, 50))
	}
	return s
}

// Percentile returns the p-th percentile (nearest rank) of d, 0 for none.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Check is one target of the issue, evaluated on one run.
type Check struct {
	Metric string  // unit for b.ReportMetric
	Value  float64 // the median over rounds of the ratio measured in each round
	Q25    float64 // quartiles of the per-round ratios: the noise
	Q75    float64
	Pooled float64 // the ratio of the figures pooled over all rounds
	Target string  // the target, in words
	Met    bool
}

// Checks evaluates the targets: VIP latency ≤ 1.05 × client-side
// spreading; VIP overhead over direct ≤ 1/4 of haproxy's; VIP rate ≥ 1.3 ×
// haproxy's; 1024 buckets within noise of 16. vip is the 16-bucket variant.
//
// Each ratio is taken in every round, whose variants run close together in
// time, and the median over rounds is judged: on a shared machine the load
// changes between rounds, and a burst that hits one variant's slot moves
// pooled figures but not the median.
func Checks(direct, spread, vip, vip1024, haproxy Summary) []Check {
	p50 := func(s Summary) float64 { return float64(s.RequestP50) }
	overhead := func(v, d, h float64) float64 {
		if h <= d {
			return math.NaN() // haproxy cost nothing measurable: no overhead to compare with
		}
		return (v - d) / (h - d)
	}
	lat := newCheck("vip/spread-p50", p50(vip)/p50(spread), perRound(vip.RoundP50, spread.RoundP50,
		func(v, s float64) float64 { return v / s }))
	lat.Target, lat.Met = "≤ 1.05", lat.Value <= 1.05
	over := newCheck("vip-overhead/haproxy-overhead", overhead(p50(vip), p50(direct), p50(haproxy)),
		perRound3(vip.RoundP50, direct.RoundP50, haproxy.RoundP50, overhead))
	over.Target, over.Met = "≤ 0.25", over.Value <= 0.25
	rate := newCheck("vip/haproxy-rate", vip.Rate/haproxy.Rate, perRoundF(vip.RoundRate, haproxy.RoundRate))
	rate.Target, rate.Met = "≥ 1.3", rate.Value >= 1.3
	buckets := newCheck("b1024/b16-p50", p50(vip1024)/p50(vip), perRound(vip1024.RoundP50, vip.RoundP50,
		func(a, b float64) float64 { return a / b }))
	buckets.Target = "1 within quartiles (or ±0.02)"
	buckets.Met = math.Abs(buckets.Value-1) <= 0.02 || (buckets.Q25 <= 1 && 1 <= buckets.Q75)
	return []Check{lat, over, rate, buckets}
}

// OwnerPathCheck is the latency ratio of Checks for the owner-only control
// f against client-side spreading: the VIP's own path (cluster MAC, rules)
// without the copies the lab's bridge delivers to the non-owners. A
// diagnostic judged against the same 1.05, not one of the targets.
func OwnerPathCheck(ownerOnly, spread Summary) Check {
	c := newCheck("owneronly/spread-p50", float64(ownerOnly.RequestP50)/float64(spread.RequestP50),
		perRound(ownerOnly.RoundP50, spread.RoundP50, func(v, s float64) float64 { return v / s }))
	c.Target, c.Met = "≤ 1.05", c.Value <= 1.05
	return c
}

func newCheck(metric string, pooled float64, rounds []float64) Check {
	return Check{Metric: metric, Pooled: pooled, Value: quantile(rounds, 0.5),
		Q25: quantile(rounds, 0.25), Q75: quantile(rounds, 0.75)}
}

// perRound applies f to round r of a and b, for the rounds both have.
func perRound(a, b []time.Duration, f func(a, b float64) float64) []float64 {
	var out []float64
	for r := range min(len(a), len(b)) {
		out = append(out, f(float64(a[r]), float64(b[r])))
	}
	return out
}

// perRound3 is perRound over three series, leaving out NaN results.
func perRound3(a, b, c []time.Duration, f func(a, b, c float64) float64) []float64 {
	var out []float64
	for r := range min(len(a), len(b), len(c)) {
		if x := f(float64(a[r]), float64(b[r]), float64(c[r])); !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}

// perRoundF is a[r]/b[r] for the rounds both have.
func perRoundF(a, b []float64) []float64 {
	var out []float64
	for r := range min(len(a), len(b)) {
		out = append(out, a[r]/b[r])
	}
	return out
}

// quantile returns the q-quantile (0..1, linear interpolation) of x, NaN for none.
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Clone(x)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// WriteTable prints one line per variant and, when given, the checks.
func WriteTable(w io.Writer, servers []string, sums []Summary, checks []Check) {
	fmt.Fprintf(w, "%-16s %7s %5s %19s %19s %9s %6s  %s\n", "variant", "conns", "err",
		"connect p50/p99 µs", "request p50/p99 µs", "conn/s", "noise", "answers "+strings.Join(servers, "/"))
	us := func(d time.Duration) int64 { return d.Microseconds() }
	for _, s := range sums {
		var spread []string
		for _, name := range servers {
			spread = append(spread, fmt.Sprint(s.ByServer[name]))
		}
		fmt.Fprintf(w, "%-16s %7d %5d %9d/%-9d %9d/%-9d %9.0f %5.1f%%  %s\n", s.Name, s.N, s.Errors,
			us(s.ConnectP50), us(s.ConnectP99), us(s.RequestP50), us(s.RequestP99), s.Rate, 100*s.Noise,
			strings.Join(spread, "/"))
		if s.FirstErr != nil {
			fmt.Fprintf(w, "%-16s first error: %v\n", "", s.FirstErr)
		}
	}
	if len(checks) > 0 {
		fmt.Fprintf(w, "%-30s %6s %s\n", "ratio", "median", "[quartiles] of per-round ratios")
	}
	for _, c := range checks {
		verdict := "not met"
		if c.Met {
			verdict = "met"
		}
		fmt.Fprintf(w, "%-30s %6.3f [%.3f %.3f] pooled %6.3f  target %-26s %s\n",
			c.Metric, c.Value, c.Q25, c.Q75, c.Pooled, c.Target, verdict)
	}
}
