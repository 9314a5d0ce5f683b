package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
)

const buckets = 12

// vipLab is a lab running the loadshare service: agents installed from a
// fresh build, the VIP clone and the attribute agents configured.
type vipLab struct {
	*lab.Lab
	t *testing.T
}

// waitSpread waits until the kernels of the nodes own want[i] buckets each
// (node order n1, n2, …), every bucket exactly once and as Pacemaker says.
func (v vipLab) waitSpread(d time.Duration, want ...int) time.Duration {
	v.t.Helper()
	return waitFor(v.t, d, fmt.Sprintf("buckets spread %v", want), func() (bool, string) {
		tb, err := v.Buckets(context.Background(), v.viewer(), buckets)
		if err != nil {
			return false, err.Error()
		}
		got := tb.Counts(v.Nodes())
		if !slices.Equal(got, want) {
			return false, fmt.Sprintf("spread %v\n%s", got, tb)
		}
		if err := tb.Check(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// viewer is a running node to ask crm_mon on.
func (v vipLab) viewer() string {
	for _, n := range v.Nodes() {
		if v.Running(n) {
			return n
		}
	}
	return "n1"
}

// answerAll makes n connections to the VIP from the client and requires
// every one answered, by exactly the nodes in owners.
func (v vipLab) answerAll(n int, owners ...string) lab.Spread {
	v.t.Helper()
	s := v.Load(context.Background(), v.VIP(), n, 8, 60*time.Second)
	if s.Errors != 0 || s.Total() != n {
		v.t.Fatalf("%d connections to the VIP: %s (last error %v), want all answered", n, s, s.LastErr)
	}
	var got []string
	for h := range s.Answers {
		got = append(got, h)
	}
	slices.Sort(got)
	slices.Sort(owners)
	if !slices.Equal(got, owners) {
		v.t.Fatalf("%d connections to the VIP answered by %s, want exactly %v", n, s, owners)
	}
	v.t.Logf("%d connections to the VIP: %s", n, s)
	return s
}

func (v vipLab) waitAttr(node, name, want string) time.Duration {
	v.t.Helper()
	return v.waitAttrWithin(30*time.Second, node, name, want)
}

// waitAttrWithin is waitAttr bounded by d.
func (v vipLab) waitAttrWithin(d time.Duration, node, name, want string) time.Duration {
	v.t.Helper()
	return waitFor(v.t, d, fmt.Sprintf("%s %s=%s", node, name, want), func() (bool, string) {
		c, err := v.Cluster(context.Background(), v.viewer())
		if err != nil {
			return false, err.Error()
		}
		got, _ := c.Attr(node, name)
		return got == want, fmt.Sprintf("%s=%q", name, got)
	})
}

// session is a long-lived MariaDB session over the VIP running a query
// every 100 ms and one when closed, recording failures and which node
// answered.
type session struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	node   string
	hosts  map[string]int
	errs   []error
	cancel context.CancelFunc
}

func startSession(t *testing.T, l *lab.Lab) *session {
	t.Helper()
	db := l.DB(l.VIP())
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := db.Conn(ctx)
	if err != nil {
		cancel()
		t.Fatalf("long-lived session to the VIP: %v", err)
	}
	s := &session{stop: make(chan struct{}), done: make(chan struct{}), hosts: map[string]int{}, cancel: cancel}
	if err := conn.QueryRowContext(ctx, "SELECT @@hostname").Scan(&s.node); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		defer db.Close()
		defer conn.Close()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		// bounded: at most ~33 minutes. close asks for one last query, so
		// that a session closed at once (a run of one subtest) is checked.
		for i, last := 0, false; i < 20000 && !last; i++ {
			select {
			case <-s.stop:
				last = true
			case <-tk.C:
			}
			// A query that times out ends the session (the driver closes
			// the connection), so the bound is for a broken path, not a
			// slow one: on the shared 2-core machine, under load, one
			// query has stalled over 3 s (two runs of TestVIP/clone).
			qctx, qc := context.WithTimeout(ctx, 10*time.Second)
			var h string
			err := conn.QueryRowContext(qctx, "SELECT @@hostname").Scan(&h)
			qc()
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.hosts[h]++
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// closeAndCheck ends the session and fails t unless its node answered
// every query; through says what the session went through, for the log.
func (s *session) closeAndCheck(t *testing.T, through string) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.cancel()
	if len(s.errs) > 0 || len(s.hosts) != 1 || s.hosts[s.node] == 0 {
		var first error
		if len(s.errs) > 0 {
			first = s.errs[0]
		}
		t.Errorf("long-lived session on %s: answers %v, %d errors (first: %v); want every query answered by %s",
			s.node, s.hosts, len(s.errs), first, s.node)
	} else {
		t.Logf("long-lived session on %s: %d queries every 100 ms, all answered, through %s", s.node, s.hosts[s.node], through)
	}
}

// TestVIP runs the shared VIP on the real cluster: the initial spread, 1000
// connections each answered once, a node's MariaDB killed (its buckets
// leave) and restarted (they return), a node crash (fenced, failover) and
// rejoin, while a long-lived session to a node that is never removed keeps
// working; with the placer, the fencing scenarios (testFencing) and the
// killed cluster daemons and the hung database (testDaemonFaults); and the
// seed article's scenario (two of three nodes fail: the survivor without
// quorum stops; they recover and the instances spread back).
func TestVIP(t *testing.T) {
	bin := buildbin.Dir(t)
	for _, how := range []lab.Placement{lab.ByPlacer, lab.ByClone} {
		t.Run(how.String(), func(t *testing.T) { testVIP(t, bin, how) })
	}
}

func testVIP(t *testing.T, bin string, how lab.Placement) {
	// The placer's lab is dual stack: the service has a second VIP, over
	// IPv6 (the clone configuration has one VIP only). Both run Galera.
	cfg := lab.Config{Agents: bin, IPv6: how == lab.ByPlacer}
	l := newLab(t, cfg)
	ctx := context.Background()

	t0 := time.Now()
	if err := l.ConfigureService(ctx, "n1", buckets, how); err != nil {
		t.Fatal(err)
	}
	// The first answered connection: the VIP works on some node.
	first := waitFor(t, 60*time.Second, "first answered VIP connection", func() (bool, string) {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		db := l.DB(l.VIP())
		defer db.Close()
		h, err := l.Ask(actx, db)
		return err == nil && h != "", fmt.Sprint(err)
	})
	t.Logf("service configured → first answered VIP connection: %s (lab start → quorum %s before)",
		first.Round(time.Millisecond), l.QuorumAfter.Round(time.Millisecond))

	t.Run("initial spread", func(t *testing.T) {
		v := vipLab{l, t}
		for _, n := range l.Nodes() {
			v.waitAttr(n, "writable_monit", "1")
		}
		v.waitSpread(60*time.Second, 4, 4, 4)
		t.Logf("service configured → spread 4/4/4 in all kernels: %s", time.Since(t0).Round(time.Millisecond))
		v.answerAll(1000, l.Nodes()...)
	})
	if t.Failed() {
		return
	}

	t.Run("galera: rows written through the VIP are on every node", func(t *testing.T) {
		if l.Config().DB != lab.DBGalera {
			t.Skipf("db=%s: the servers do not replicate", l.Config().DB)
		}
		if _, err := l.SQL(ctx, "n1", "CREATE DATABASE e2e; CREATE TABLE e2e.t (id INT AUTO_INCREMENT PRIMARY KEY, via VARCHAR(8))"); err != nil {
			t.Fatal(err)
		}
		db := l.DB(l.VIP())
		defer db.Close()
		for range 30 {
			if _, err := db.ExecContext(ctx, "INSERT INTO e2e.t (via) VALUES (@@hostname)"); err != nil {
				t.Fatal(err)
			}
		}
		var want string
		for _, n := range l.Nodes() {
			got, err := l.SQL(ctx, n, "SELECT via, COUNT(*) FROM e2e.t GROUP BY via ORDER BY via")
			if err != nil {
				t.Fatal(err)
			}
			got = strings.Join(strings.Fields(got), " ")
			t.Logf("%s holds, by the node that took the write: %s", n, got)
			if want == "" {
				want = got
			}
			if got != want || len(strings.Fields(got)) != 6 {
				t.Errorf("%s holds %q, want the same rows on every node, written on all three (%q)", n, got, want)
			}
		}
	})

	if how == lab.ByPlacer {
		t.Run("ipv6 VIP", func(t *testing.T) {
			waitFor(t, 60*time.Second, "IPv6 VIP buckets 4/4/4 in the kernels", func() (bool, string) {
				var got []int
				for _, n := range l.Nodes() {
					owned, err := l.KernelOwnedOf(n, l.VIP6())
					if err != nil {
						return false, err.Error()
					}
					got = append(got, len(owned))
				}
				return slices.Equal(got, []int{4, 4, 4}), fmt.Sprint(got)
			})
			s := l.Load(ctx, l.VIP6(), 600, 8, 60*time.Second)
			t.Logf("600 connections to [%s]:%d: %s", l.VIP6(), lab.DBPort, s)
			if s.Errors != 0 || s.Total() != 600 || len(s.Answers) != 3 {
				t.Fatalf("600 connections to the IPv6 VIP: %s (last error %v), want all answered, by n1, n2 and n3", s, s.LastErr)
			}
			for n, c := range s.Answers {
				// 4 of 12 buckets each: a share far from a third is a broken spread.
				if c < 100 || c > 300 {
					t.Errorf("%s answered %d of 600 IPv6 connections, want about 200", n, c)
				}
			}
		})
	}

	long := startSession(t, l)
	t.Logf("long-lived session over the VIP is served by %s", long.node)
	// Victims: nodes other than the long-lived session's server.
	var others []string
	for _, n := range l.Nodes() {
		if n != long.node {
			others = append(others, n)
		}
	}
	spread := func(zero ...string) []int {
		live := len(l.Nodes()) - len(zero)
		var w []int
		for _, n := range l.Nodes() {
			if slices.Contains(zero, n) {
				w = append(w, 0)
			} else {
				w = append(w, buckets/live)
			}
		}
		return w
	}
	without := func(gone ...string) []string {
		var r []string
		for _, n := range l.Nodes() {
			if !slices.Contains(gone, n) {
				r = append(r, n)
			}
		}
		return r
	}

	t.Run("mariadb killed and restarted", func(t *testing.T) {
		v := vipLab{l, t}
		victim := others[0]
		t0 := time.Now()
		if err := l.KillDB(victim); err != nil {
			t.Fatal(err)
		}
		d := v.waitAttr(victim, "writable_monit", "0")
		t.Logf("MariaDB killed on %s → writable_monit=0: %s", victim, d.Round(time.Millisecond))
		v.waitSpread(60*time.Second, spread(victim)...)
		t.Logf("MariaDB killed on %s → all its buckets moved away: %s", victim, time.Since(t0).Round(time.Millisecond))
		v.answerAll(1000, without(victim)...)
		t0 = time.Now()
		if err := l.StartDB(ctx, victim); err != nil {
			t.Fatal(err)
		}
		v.waitAttr(victim, "writable_monit", "1")
		v.waitSpread(60*time.Second, spread()...)
		t.Logf("MariaDB restarted on %s → spread back: %s", victim, time.Since(t0).Round(time.Millisecond))
		v.answerAll(1000, l.Nodes()...)
	})

	t.Run("read_only set and cleared", func(t *testing.T) {
		v := vipLab{l, t}
		victim := others[0]
		t0 := time.Now()
		if _, err := l.SQL(ctx, victim, "SET GLOBAL read_only=1"); err != nil {
			t.Fatal(err)
		}
		v.waitAttr(victim, "writable_monit", "0")
		v.waitSpread(60*time.Second, spread(victim)...)
		t.Logf("read_only=1 on %s → all its buckets moved away: %s", victim, time.Since(t0).Round(time.Millisecond))
		v.answerAll(1000, without(victim)...)
		if _, err := l.SQL(ctx, victim, "SET GLOBAL read_only=0"); err != nil {
			t.Fatal(err)
		}
		v.waitAttr(victim, "writable_monit", "1")
		v.waitSpread(60*time.Second, spread()...)
		v.answerAll(1000, l.Nodes()...)
	})

	t.Run("node crash failover and rejoin", func(t *testing.T) {
		v := vipLab{l, t}
		victim := others[1]
		t0 := time.Now()
		if err := l.Crash(victim); err != nil {
			t.Fatal(err)
		}
		v.waitSpread(60*time.Second, spread(victim)...)
		t.Logf("failover: %s killed → its buckets owned by the survivors: %s", victim, time.Since(t0).Round(time.Millisecond))
		if l.Fencing() {
			// Pacemaker starts the buckets elsewhere only once the node is
			// fenced: "off" of a node already off succeeds at once.
			requireFenced(t, l, l.Nodes()[0], victim, "off", t0)
		}
		v.answerAll(1000, without(victim)...)
		t0 = time.Now()
		if err := l.Start(ctx, victim); err != nil {
			t.Fatal(err)
		}
		v.waitSpread(90*time.Second, spread()...)
		t.Logf("%s restarted → spread back: %s", victim, time.Since(t0).Round(time.Millisecond))
		v.answerAll(1000, l.Nodes()...)
	})

	long.closeAndCheck(t, "every rebalance that kept its server")

	if how == lab.ByPlacer {
		t.Run("fencing", func(t *testing.T) { testFencing(t, l, others[1], spread) })
		t.Run("daemon faults", func(t *testing.T) { testDaemonFaults(t, l, others[1], spread) })
		t.Run("soak", func(t *testing.T) { testSoak(t, l) })
	}

	// With no-quorum-policy=stop (Pacemaker's default, the lab's), the
	// last node standing has no quorum: it cannot tell a crash of the
	// others from its own isolation, so it stops its buckets and the VIP
	// goes unanswered until a second node returns.
	t.Run("two of three nodes fail: the survivor stops, then recovery", func(t *testing.T) {
		v := vipLab{l, t}
		survivor := l.Nodes()[0]
		failed := l.Nodes()[1:]
		for _, n := range failed {
			if err := l.Crash(n); err != nil {
				t.Fatal(err)
			}
		}
		d := waitFor(t, 60*time.Second, survivor+" without quorum, its buckets stopped", func() (bool, string) {
			c, err := l.Cluster(ctx, survivor)
			if err != nil {
				return false, err.Error()
			}
			owned, err := l.KernelOwned(survivor)
			if err != nil {
				return false, err.Error()
			}
			running := c.Count(lab.VIPResource)[survivor]
			return !c.Quorum && running == 0 && len(owned) == 0,
				fmt.Sprintf("quorum %v, pacemaker runs %d buckets, kernel owns %v", c.Quorum, running, owned)
		})
		t.Logf("two of three crashed → %s without quorum stopped all its buckets: %s", survivor, d.Round(time.Millisecond))
		if s := l.Load(ctx, l.VIP(), 8, 8, 30*time.Second); s.Total() != 0 {
			t.Errorf("8 connections to the VIP with no quorate node: %s, want none answered", s)
		}
		t0 := time.Now()
		for _, n := range failed {
			if err := l.Start(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		v.waitSpread(90*time.Second, spread()...)
		t.Logf("two failed nodes restarted → spread back to %v, not piled on %s: %s", spread(), survivor, time.Since(t0).Round(time.Millisecond))
		v.answerAll(1000, l.Nodes()...)
	})

	if how == lab.ByPlacer { // last: it restarts server_load
		t.Run("metrics", func(t *testing.T) { testMetrics(t, l, bin) })
	}
}
