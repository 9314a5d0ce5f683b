package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
)

// bucketOwners returns bucket → node from the kernels.
func bucketOwners(tb lab.BucketTable) map[int]string {
	m := map[int]string{}
	for n, bs := range tb.Kernel {
		for _, b := range bs {
			m[b] = n
		}
	}
	return m
}

// TestLoadSpike runs loadshare's placement on the real cluster: the initial
// spread equals the placer's target; a load spike on one node's MariaDB
// moves buckets away from it to the target the placer computes, and its end
// brings them back; a load switched on and off every 2 s moves few buckets
// (counted); a long-lived session on another node survives all of it.
func TestLoadSpike(t *testing.T) {
	bin := buildbin.Dir(t)
	l := newLab(t, lab.Config{Agents: bin})
	v := vipLab{l, t}
	ctx := context.Background()
	if err := l.ConfigureService(ctx, "n1", buckets, lab.ByPlacer); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes() {
		v.waitAttr(n, "writable_monit", "1")
	}
	v.waitSpread(60*time.Second, 4, 4, 4)

	// matchesTarget reports whether every kernel owns the placer's target.
	matchesTarget := func() (bool, string, lab.BucketTable) {
		tb, err := l.Buckets(ctx, v.viewer(), buckets)
		if err != nil {
			return false, err.Error(), tb
		}
		tg, err := l.Targets(ctx, v.viewer())
		if err != nil {
			return false, err.Error(), tb
		}
		for _, n := range l.Nodes() {
			if len(tb.Kernel[n]) != tg[n] {
				return false, fmt.Sprintf("target %v, kernels %v", tg, tb.Counts(l.Nodes())), tb
			}
		}
		if err := tb.Check(); err != nil {
			return false, err.Error(), tb
		}
		return true, fmt.Sprintf("target %v", tg), tb
	}
	if ok, state, _ := matchesTarget(); !ok {
		t.Fatalf("initial spread does not match the placement target: %s", state)
	}

	long := startSession(t, l)
	busy := "n1"
	if long.node == busy {
		busy = "n2"
	}
	t.Logf("long-lived session on %s; loading %s", long.node, busy)

	stop := l.Busy(ctx, busy, 12, 40*time.Second)
	t0 := time.Now()
	var moved lab.BucketTable
	waitFor(t, 35*time.Second, "buckets moved away from "+busy+" to the placer's target", func() (bool, string) {
		ok, state, tb := matchesTarget()
		moved = tb
		return ok && len(tb.Kernel[busy]) < 4, state
	})
	load, _ := l.Cluster(ctx, v.viewer())
	sl, _ := load.Attr(busy, "server_load")
	t.Logf("load spike on %s (server_load=%s) → buckets %v after %s", busy, sl, moved.Counts(l.Nodes()), time.Since(t0).Round(time.Millisecond))
	for _, n := range l.Nodes() {
		if n != busy && len(moved.Kernel[n]) <= len(moved.Kernel[busy]) {
			t.Errorf("busy %s keeps %d buckets, idle %s only %d: want fewer on the busy node", busy, len(moved.Kernel[busy]), n, len(moved.Kernel[n]))
		}
	}
	v.answerAll(1000, l.Nodes()...)
	checkExporter(t, l, busy)
	stop()
	t0 = time.Now()
	v.waitSpread(90*time.Second, 4, 4, 4)
	t.Logf("load spike over → spread back to 4/4/4 after %s", time.Since(t0).Round(time.Millisecond))

	// Oscillating load: 6 sessions for 2 s, 2 s idle, 6 times. Count the
	// buckets whose owner changes (sampled every 500 ms) and the reversals
	// of the busy node's bucket count: flapping is down, up, down, up; a
	// damped system goes down (maybe in steps) and, once the load is gone,
	// up again: at most one reversal.
	prev, err := l.Buckets(ctx, v.viewer(), buckets)
	if err != nil {
		t.Fatal(err)
	}
	moves := 0
	owners := bucketOwners(prev)
	seq := []int{len(prev.Kernel[busy])}
	oscEnd := time.Now().Add(24 * time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 6; i++ {
			s := l.Busy(ctx, busy, 6, 2*time.Second)
			time.Sleep(2 * time.Second)
			s()
			time.Sleep(2 * time.Second)
		}
	}()
	for time.Now().Before(oscEnd.Add(10 * time.Second)) { // and 10 s to settle
		time.Sleep(500 * time.Millisecond)
		tb, err := l.Buckets(ctx, v.viewer(), buckets)
		if err != nil {
			continue
		}
		now := bucketOwners(tb)
		for b, n := range now {
			if owners[b] != "" && owners[b] != n {
				moves++
			}
		}
		if len(now) == buckets {
			owners = now
		}
		if c := len(tb.Kernel[busy]); tb.Check() == nil && c != seq[len(seq)-1] {
			seq = append(seq, c)
		}
	}
	<-done
	final, _ := l.Buckets(ctx, v.viewer(), buckets)
	reversals := 0
	for i := 2; i < len(seq); i++ {
		if (seq[i]-seq[i-1])*(seq[i-1]-seq[i-2]) < 0 {
			reversals++
		}
	}
	t.Logf("oscillating load on %s (2 s on, 2 s off, 24 s, then 10 s): %d bucket moves, its bucket count went %v (%d reversals); final spread %v",
		busy, moves, seq, reversals, final.Counts(l.Nodes()))
	if reversals > 1 {
		t.Errorf("oscillating load: %s's bucket count went %v: %d reversals, want at most 1 (no flapping)", busy, seq, reversals)
	}

	long.closeAndCheck(t, "every rebalance")
}

// checkExporter runs the stock ha_cluster_exporter inside node (default
// flags but the listen address, 127.0.0.1:9664 in the node's namespace),
// scrapes /metrics there and checks that it exposes the agents' attributes
// as crm_mon shows them: server_load and writable_monit of every node.
func checkExporter(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	if _, err := exec.LookPath("ha_cluster_exporter"); err != nil {
		t.Logf("skip the exporter check: needs ha_cluster_exporter (Debian package prometheus-hacluster-exporter): %v", err)
		return
	}
	ctx := context.Background()
	want := exporterShows(t, l, node, "agents' attributes", func() ([]string, error) {
		c, err := l.Cluster(ctx, node)
		if err != nil {
			return nil, err
		}
		var want []string
		for _, n := range l.Nodes() {
			for _, a := range []string{"server_load", "writable_monit"} {
				val, ok := c.Attr(n, a)
				if !ok {
					return nil, fmt.Errorf("%s has no %s", n, a)
				}
				want = append(want, fmt.Sprintf(`ha_cluster_pacemaker_node_attributes{name=%q,node=%q,value=%q} 1`, a, n, val))
			}
		}
		return want, nil
	})
	t.Logf("ha_cluster_exporter on %s exposes %s", node, strings.Join(want, ", "))
}

// exporterShows runs the stock ha_cluster_exporter inside node (default
// flags but the listen address, 127.0.0.1:9664 in the node's namespace)
// until it returns, and waits, up to 20 s, for its /metrics to hold every
// line want returns (asked again at each try); it returns those lines.
func exporterShows(t *testing.T, l *lab.Lab, node, what string, want func() ([]string, error)) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := l.Command(ctx, node, "ha_cluster_exporter", "--web.listen-address=127.0.0.1:9664")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel() // kills the exporter by its pid (nsenter execs it)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.Dial(ctx, node, network, addr)
		},
	}}
	var lines []string
	waitFor(t, 20*time.Second, what+" in ha_cluster_exporter /metrics on "+node, func() (bool, string) {
		var err error
		if lines, err = want(); err != nil {
			return false, err.Error()
		}
		got, err := scrape(hc, "http://127.0.0.1:9664/metrics")
		if err != nil {
			return false, err.Error() + "; exporter output: " + out.String()
		}
		for _, w := range lines {
			if !got[w] {
				return false, "missing " + w
			}
		}
		return true, ""
	})
	return lines
}
