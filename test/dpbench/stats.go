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
	if len(req) > 0 {
		a.roundP50 = append(a.roundP50, Percentile(req, 50))
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
	Noise    float64
	RoundP50 []time.Duration // request p50 of each round, in round order
}

// Summary computes the figures accumulated so far.
func (a *Acc) Summary() Summary {
	s := Summary{
		Name: a.Name, N: a.n, Errors: a.errors, FirstErr: a.firstErr,
		ConnectP50: Percentile(a.connect, 50), ConnectP99: Percentile(a.connect, 99),
		RequestP50: Percentile(a.request, 50), RequestP99: Percentile(a.request, 99),
		ByServer: a.byServer, RoundP50: a.roundP50,
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
	Value  float64 // the measured ratio
	Target string  // the target, in words
	Met    bool
}

// Checks evaluates the targets: VIP latency ≤ 1.05 × client-side
// spreading; VIP overhead over direct ≤ 1/4 of haproxy's; VIP rate ≥ 1.3 ×
// haproxy's; 1024 buckets within noise of 16. vip is the 16-bucket variant.
func Checks(direct, spread, vip, vip1024, haproxy Summary) []Check {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	lat := us(vip.RequestP50) / us(spread.RequestP50)
	over := (us(vip.RequestP50) - us(direct.RequestP50)) / (us(haproxy.RequestP50) - us(direct.RequestP50))
	if us(haproxy.RequestP50) <= us(direct.RequestP50) {
		over = math.NaN() // haproxy costs nothing measurable: no overhead to compare with
	}
	rate := vip.Rate / haproxy.Rate
	buckets := us(vip1024.RequestP50) / us(vip.RequestP50)
	// "Within noise": 1 lies between the quartiles of the per-round ratios
	// (each round measures both close together in time), or the pooled
	// ratio is within 2%.
	var perRound []float64
	for r := range min(len(vip.RoundP50), len(vip1024.RoundP50)) {
		perRound = append(perRound, float64(vip1024.RoundP50[r])/float64(vip.RoundP50[r]))
	}
	q25, q75 := quantile(perRound, 0.25), quantile(perRound, 0.75)
	bucketsMet := math.Abs(buckets-1) <= 0.02 || (len(perRound) > 1 && q25 <= 1 && 1 <= q75)
	return []Check{
		{"vip/spread-p50", lat, "≤ 1.05", lat <= 1.05},
		{"vip-overhead/haproxy-overhead", over, "≤ 0.25", over <= 0.25},
		{"vip/haproxy-rate", rate, "≥ 1.3", rate >= 1.3},
		{"b1024/b16-p50", buckets, fmt.Sprintf("1 within rounds' IQR [%.3f, %.3f]", q25, q75), bucketsMet},
	}
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
	for _, c := range checks {
		verdict := "not met"
		if c.Met {
			verdict = "met"
		}
		fmt.Fprintf(w, "%-30s %8.3f  target %-36s %s\n", c.Metric, c.Value, c.Target, verdict)
	}
}
