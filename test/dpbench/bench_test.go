package dpbench

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDataPlane measures short connections from the client namespace:
// (a) straight to one server, (b) the client cycling over the three servers
// itself, (c) via the shared VIP with 16 and with 1024 buckets, (d) via
// haproxy in TCP mode round robin, and (e) a control: the VIP's rules on
// one server with no flooding. Sub-benchmark line: connect, one request
// line, the reply line, close. Sub-benchmark mariadb: connect, log in,
// SELECT 1, quit, against a private MariaDB per server.
//
// The variants interleave over rounds, each round in a rotated order, 4
// connections at a time. It prints a table and reports the ratios;
// targets are printed as met or not, never failed on (the machine is shared
// and noisy). One run does all rounds: use -benchtime 1x.
func BenchmarkDataPlane(b *testing.B) {
	l := newLab(b)
	b.Run("line", func(b *testing.B) {
		// 12 rounds: a multiple of the 6 variants, so each takes every
		// position in a round equally often.
		l.bench(b, lineProto, 12, 1250, 200)
	})
	b.Run("mariadb", func(b *testing.B) {
		l.startDB(b)
		l.bench(b, l.mariadbProto(), 12, 250, 50)
	})
}

// bench runs rounds × perRound connections of every variant of p, after
// warmup connections each that are not counted.
func (l *lab) bench(b *testing.B, p proto, rounds, perRound, warmup int) {
	vs := l.variants(p)
	accs := make([]Acc, len(vs))
	for i, v := range vs {
		accs[i].Name = v.name
		l.run(b, p, v, warmup) // ARP, conntrack, haproxy and thread caches warm; discarded
	}
	for r := range rounds {
		for k := range vs {
			i := (r + k) % len(vs)
			conns, elapsed := l.run(b, p, vs[i], perRound)
			accs[i].Add(conns, elapsed)
		}
	}
	sums := make([]Summary, len(vs))
	for i := range accs {
		sums[i] = accs[i].Summary()
		// A broken harness must not pass for a fast one: more than 1% failed
		// connections is an error, not a figure.
		if s := sums[i]; s.Errors*100 > s.N {
			b.Errorf("%s: %d of %d connections failed, first: %v", s.Name, s.Errors, s.N, s.FirstErr)
		}
	}
	checks := Checks(sums[0], sums[1], sums[2], sums[3], sums[4])
	var out strings.Builder
	fmt.Fprintf(&out, "%s: %d rounds × %d connections per variant, 4 client workers; VIPs programmed by %s\n",
		b.Name(), rounds, perRound, l.dp)
	WriteTable(&out, serverNames, sums, checks)
	// Where the VIP's time goes: its rules alone (the no-flood control) and
	// the flooding to every server (dropped by the non-owners).
	us := func(s Summary) int64 { return s.RequestP50.Microseconds() }
	cus := func(s Summary) int64 { return s.ConnectP50.Microseconds() }
	fmt.Fprintf(&out, "VIP (16) over direct, p50 request %+d µs = rules %+d µs (e − a) + flooding %+d µs (c16 − e); connect %+d = %+d + %+d µs\n\n",
		us(sums[2])-us(sums[0]), us(sums[5])-us(sums[0]), us(sums[2])-us(sums[5]),
		cus(sums[2])-cus(sums[0]), cus(sums[5])-cus(sums[0]), cus(sums[2])-cus(sums[5]))
	// To stdout: the testing package cuts benchmark logs to 10 lines.
	fmt.Print(out.String())
	for _, c := range checks {
		b.ReportMetric(c.Value, c.Metric)
	}
	b.ReportMetric(0, "ns/op") // one op is the whole run: meaningless
}
