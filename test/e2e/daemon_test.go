package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/lab"
)

// testDaemonFaults kills one cluster daemon of victim at a time (by its
// pid: corosync, pacemaker-controld, pacemaker-attrd), then hangs its
// MariaDB (SIGSTOP of mariadbd only), counting every client connection's
// outcome across each window. A killed daemon ends with the node fenced
// (then booted again) or recovered in place; either way every bucket is
// owned exactly once afterwards, read from every running node's kernel,
// and no client connection was reset.
func testDaemonFaults(t *testing.T, l *lab.Lab, victim string, spread func(zero ...string) []int) {
	for _, d := range []string{"corosync", "pacemaker-controld", "pacemaker-attrd"} {
		t.Run(d+" killed", func(t *testing.T) {
			v := vipLab{l, t}
			old := l.Pid(victim, d)
			if old == 0 {
				t.Fatalf("%s runs no %s", victim, d)
			}
			w, t0 := watchFault(t, l, func() error { return l.Signal(victim, d, syscall.SIGKILL) })
			var outcome string
			after := waitFor(t, 90*time.Second, fmt.Sprintf("%s fenced or recovered after its %s was killed", victim, d),
				l.FencedOrRecovered(context.Background(), victim, d, old, t0, &outcome))
			if outcome == "fenced" {
				v.waitSpread(60*time.Second, spread(victim)...)
			} else {
				v.waitSpread(60*time.Second, spread()...)
			}
			settled := time.Since(t0)
			time.Sleep(time.Second) // connections after the recovery
			tally := w.stop()
			t.Logf("%s of %s killed (pid %d): %s after %s; every bucket owned once again %s after the kill",
				d, victim, old, outcome, after.Round(100*time.Millisecond), settled.Round(100*time.Millisecond))
			reportTally(t, tally, t0)
			if outcome == "fenced" {
				restart(t, v, victim, spread)
			}
		})
		if t.Failed() {
			return
		}
	}

	// A hung database: its server stops answering (a stuck disk, a
	// debugger), the node and its cluster daemons stay healthy.
	// mysql_monitor's connect times out (connect_timeout 2 s in the lab),
	// so writable_monit drops within connect_timeout + one monitor interval
	// (2 s) after the hang, and the node's buckets leave. The connections
	// the hung server accepted never end, so the node's last bucket drains
	// for all of drain_grace (15 s), in a process of clustervip's own: the
	// stop returns at once and Pacemaker starts that bucket elsewhere
	// meanwhile (when the stop waited itself, it was dark for the drain).
	t.Run("mariadbd hung", func(t *testing.T) {
		v := vipLab{l, t}
		w, t0 := watchFault(t, l, func() error { return l.Signal(victim, "mariadbd", syscall.SIGSTOP) })
		resumed := false
		defer func() {
			if !resumed {
				l.Signal(victim, "mariadbd", syscall.SIGCONT)
			}
		}()
		off := v.waitAttr(victim, "writable_monit", "0")
		v.waitSpread(60*time.Second, spread(victim)...)
		left := time.Since(t0)
		time.Sleep(time.Second)
		tally := w.stop()
		t.Logf("mariadbd of %s hung (SIGSTOP): writable_monit=0 after %s (bound: connect_timeout 2 s + monitor interval 2 s = 4 s), all its buckets elsewhere after %s",
			victim, off.Round(100*time.Millisecond), left.Round(100*time.Millisecond))
		reportTally(t, tally, t0)

		t1 := time.Now()
		if err := l.Signal(victim, "mariadbd", syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumed = true
		v.waitAttr(victim, "writable_monit", "1")
		v.waitSpread(90*time.Second, spread()...)
		t.Logf("mariadbd of %s resumed (SIGCONT) → writable again and spread back: %s", victim, time.Since(t1).Round(100*time.Millisecond))
		v.answerAll(300, l.Nodes()...)
	})
}
