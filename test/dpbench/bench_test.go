package dpbench

import (
	"context"
	"os"
	"testing"
)

// BenchmarkDataPlane measures short connections from the client namespace:
// (a) straight to one server, (b) the client cycling over the three servers
// itself, (c) via the shared VIP with 16 and with 1024 buckets, (d) via
// haproxy in TCP mode round robin, and two controls: (e) the VIP's rules on
// one server with no flooding, (f) a VIP on one server at its cluster MAC
// with the switch flooding to that server alone. Sub-benchmark line: connect, one request
// line, the reply line, close. Sub-benchmark mariadb: connect, log in,
// SELECT 1, quit, against a private MariaDB per server.
//
// The variants interleave over rounds (see Run, which `loadshare bench`
// calls too), each round in a rotated order, 4 connections at a time. It
// prints a table and reports the ratios; targets are printed as met
// or not, never failed on (the machine is shared and noisy). One run does
// all rounds: use -benchtime 1x.
func BenchmarkDataPlane(b *testing.B) {
	l := newTestLab(b)
	for _, name := range []string{"line", "mariadb"} {
		b.Run(name, func(b *testing.B) {
			if name == "mariadb" {
				startTestDB(b, l)
			}
			// To stdout: the testing package cuts benchmark logs to 10 lines.
			pr, err := l.measureProto(context.Background(), name, Options{}, os.Stdout, b.Name())
			if err != nil {
				b.Error(err) // a broken harness (>1% failed) still printed its table
			}
			for _, c := range pr.Checks {
				b.ReportMetric(c.Value, c.Metric)
			}
			b.ReportMetric(0, "ns/op") // one op is the whole run: meaningless
		})
	}
}
