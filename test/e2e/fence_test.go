package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
)

// testFencing runs the scenarios fencing exists for on a lab serving the
// VIP spread evenly, with victim a node whose loss breaks no long-lived
// session of the caller: a fence through Pacemaker's own tool, a hung node
// (every process stopped, its kernel still taking SYNs of its buckets) and
// a network partition. Each ends with the victim back and the spread even.
func testFencing(t *testing.T, l *lab.Lab, victim string, spread func(zero ...string) []int) {
	ctx := context.Background()
	if !l.Fencing() {
		t.Fatal("the lab does not fence: the build has no fence_loadshare_lab")
	}
	other := "n1"
	if victim == other {
		other = "n2"
	}

	t.Run("stonith_admin reboot", func(t *testing.T) {
		v := vipLab{l, t}
		t0 := time.Now()
		if out, err := l.Exec(ctx, other, "stonith_admin", "--reboot", victim); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		fenced := time.Since(t0)
		requireFenced(t, l, other, victim, "reboot", t0)
		if err := l.WaitOnline(ctx, l.Nodes()...); err != nil {
			t.Fatal(err)
		}
		back := time.Since(t0)
		v.waitSpread(90*time.Second, spread()...)
		t.Logf("stonith_admin --reboot %s on %s: done (off; the boot follows 2 s later) %s, back online %s, spread back %s",
			victim, other, fenced.Round(time.Millisecond), back.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	})
	if t.Failed() {
		return
	}

	t.Run("hung node", func(t *testing.T) {
		v := vipLab{l, t}
		w, t0 := watchFault(t, l, func() error { return l.Freeze(victim) })
		var fencedAt, servedAt time.Duration
		waitFor(t, 60*time.Second, victim+" fenced", func() (bool, string) {
			evs, err := l.FenceHistory(ctx, other, victim)
			if err != nil {
				return false, err.Error()
			}
			for _, e := range evs {
				if e.Action == "off" && e.Status == "success" && !e.Completed.Before(t0.Truncate(time.Second)) && !l.Running(victim) {
					fencedAt = time.Since(t0)
					return true, ""
				}
			}
			return false, fmt.Sprintf("history %v, running %v", evs, l.Running(victim))
		})
		v.waitSpread(60*time.Second, spread(victim)...)
		servedAt = time.Since(t0)
		time.Sleep(2 * time.Second) // connections after the recovery
		tally := w.stop()
		t.Logf("hung %s (SIGSTOP of all its processes): fenced %s, its buckets served by the survivors %s after the freeze",
			victim, fencedAt.Round(100*time.Millisecond), servedAt.Round(100*time.Millisecond))
		reportTally(t, tally, t0)
		restart(t, v, victim, spread)
	})
	if t.Failed() {
		return
	}

	t.Run("partition", func(t *testing.T) {
		v := vipLab{l, t}
		w, t0 := watchFault(t, l, func() error { return l.Isolate(victim) })
		// The minority side, still running until the fence: it loses
		// quorum and stops its buckets (no-quorum-policy=stop), as far as
		// it gets before the majority's fence ends it.
		minority := victim + " was fenced before it saw its quorum lost"
		for i := 0; i < 300 && l.Running(victim); i++ {
			c, err := l.Cluster(ctx, victim)
			if err == nil && !c.Quorum {
				owned, _ := l.KernelOwned(victim)
				minority = fmt.Sprintf("%s saw its quorum lost after %s (its kernel then owned %v)", victim, time.Since(t0).Round(100*time.Millisecond), owned)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		requireFenced(t, l, other, victim, "off", t0)
		fencedAt := time.Since(t0)
		v.waitSpread(60*time.Second, spread(victim)...)
		servedAt := time.Since(t0)
		time.Sleep(2 * time.Second)
		tally := w.stop()
		t.Logf("partition of %s (its link down both ways): %s; fenced %s, its buckets served by the majority %s after the cut",
			victim, minority, fencedAt.Round(100*time.Millisecond), servedAt.Round(100*time.Millisecond))
		reportTally(t, tally, t0)
		restart(t, v, victim, spread)
	})
}

// requireFenced waits until viewer's fencer history holds a successful
// action of target completed since t0, and target is off (or, after a
// reboot, running again).
func requireFenced(t testing.TB, l *lab.Lab, viewer, target, action string, t0 time.Time) {
	t.Helper()
	waitFor(t, 90*time.Second, fmt.Sprintf("%s of %s in %s's fence history", action, target, viewer), func() (bool, string) {
		evs, err := l.FenceHistory(context.Background(), viewer, target)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			// History times are in whole seconds.
			if e.Action == action && e.Status == "success" && !e.Completed.Before(t0.Truncate(time.Second)) {
				return action == "reboot" || !l.Running(target), fmt.Sprintf("%+v, running %v", e, l.Running(target))
			}
		}
		return false, fmt.Sprintf("history %+v", evs)
	})
}

// restart boots victim again and waits for the even spread.
func restart(t *testing.T, v vipLab, victim string, spread func(zero ...string) []int) {
	t.Helper()
	t0 := time.Now()
	if err := v.Start(context.Background(), victim); err != nil {
		t.Fatal(err)
	}
	v.waitSpread(90*time.Second, spread()...)
	t.Logf("%s restarted → spread back: %s", victim, time.Since(t0).Round(time.Millisecond))
}

// watcher is a client run of new connections to the VIP in the background.
type watcher struct {
	cancel context.CancelFunc
	done   chan *lab.Tally
}

// watch starts 4 loops of new connections to the VIP (bounded: at most
// 100 000 connections, 3 minutes).
func watch(l *lab.Lab) *watcher {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	w := &watcher{cancel: cancel, done: make(chan *lab.Tally, 1)}
	go func() { w.done <- l.Watch(ctx, l.VIP(), 4, 100000) }()
	return w
}

// watchFault starts watch, lets it run a second (connections before the
// fault), then runs fault, failing tb if it fails; it returns the watcher
// and the time of the fault.
func watchFault(tb testing.TB, l *lab.Lab, fault func() error) (*watcher, time.Time) {
	tb.Helper()
	w := watch(l)
	time.Sleep(time.Second)
	t0 := time.Now()
	if err := fault(); err != nil {
		w.stop()
		tb.Fatal(err)
	}
	return w, t0
}

func (w *watcher) stop() *lab.Tally {
	w.cancel()
	return <-w.done
}

// reportTally logs the client's outcomes and the error window (fault →
// last failed connection), and fails t on any reset: a reset is what a
// client sees when two nodes answer one bucket (the one that did not
// take the SYN answers the handshake's next segment with RST).
func reportTally(t testing.TB, tally *lab.Tally, fault time.Time) {
	t.Helper()
	window := "no failed connection"
	if !tally.LastFail.IsZero() {
		window = fmt.Sprintf("error window (fault → last failed connection) %s", tally.LastFail.Sub(fault).Round(100*time.Millisecond))
	}
	t.Logf("client: %s; %s", tally, window)
	var ex []string
	for k, err := range tally.Examples {
		ex = append(ex, fmt.Sprintf("%s: %v", k, err))
	}
	if len(ex) > 0 {
		t.Logf("client failures, one of each: %s", strings.Join(ex, "; "))
	}
	if tally.Reset > 0 || tally.Other > 0 {
		t.Errorf("client saw %d resets and %d other failures (want 0: only timeouts while the hung node's buckets wait for the fence)", tally.Reset, tally.Other)
	}
	if tally.Total() == 0 || len(tally.Answers) == 0 {
		t.Errorf("client: %s; want connections answered", tally)
	}
}

// BenchmarkFencingFiveNodes times the hung node and the partition on a
// five-node lab (12 buckets): freeze or cut → fenced, → its buckets served
// by the others, → last failed client connection (the error window), with
// the client's resets (must be 0). Corosync's token grows with the node
// count (token + 650 ms per node beyond two), and the windows with it.
func BenchmarkFencingFiveNodes(b *testing.B) {
	bin := buildbin.Dir(b)
	l := newLab(b, lab.Config{Agents: bin, Nodes: 5})
	ctx := context.Background()
	if err := l.ConfigureService(ctx, "n1", buckets, lab.ByPlacer); err != nil {
		b.Fatal(err)
	}
	// spreadOK: every bucket owned once, each running node but gone at least 2.
	spreadOK := func(gone string) func() (bool, string) {
		return func() (bool, string) {
			tb, err := l.Buckets(ctx, "n1", buckets)
			if err != nil {
				return false, err.Error()
			}
			if err := tb.Check(); err != nil {
				return false, err.Error()
			}
			for _, n := range l.Nodes() {
				if n != gone && len(tb.Kernel[n]) < 2 {
					return false, tb.String()
				}
			}
			return true, ""
		}
	}
	waitFor(b, 120*time.Second, "buckets spread over 5 nodes", spreadOK(""))
	victim := l.Nodes()[4]
	b.ResetTimer()
	for range b.N {
		for _, fault := range []string{"hung", "partition"} {
			w, t0 := watchFault(b, l, func() error {
				if fault == "partition" {
					return l.Isolate(victim)
				}
				return l.Freeze(victim)
			})
			requireFenced(b, l, "n1", victim, "off", t0)
			fenced := time.Since(t0)
			waitFor(b, 60*time.Second, "buckets served by the four others", spreadOK(victim))
			served := time.Since(t0)
			time.Sleep(2 * time.Second)
			tally := w.stop()
			b.Logf("5 nodes, %s %s: fenced %s, its buckets served %s after the fault", fault, victim, fenced.Round(100*time.Millisecond), served.Round(100*time.Millisecond))
			reportTally(b, tally, t0)
			b.ReportMetric(fenced.Seconds(), fault+"-fenced-s")
			b.ReportMetric(served.Seconds(), fault+"-served-s")
			if !tally.LastFail.IsZero() {
				b.ReportMetric(tally.LastFail.Sub(t0).Seconds(), fault+"-window-s")
			}
			b.ReportMetric(float64(tally.Reset), fault+"-resets")
			if err := l.Start(ctx, victim); err != nil {
				b.Fatal(err)
			}
			waitFor(b, 120*time.Second, "spread back after the "+fault, spreadOK(""))
		}
	}
}
