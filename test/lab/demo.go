package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/loadshare/loadshare/crm"
)

// DemoOptions tune Demo.
type DemoOptions struct {
	Keep      bool      // leave the lab up at the end
	Out       io.Writer // progress lines and tables
	Log       *slog.Logger
	Buckets   int           // VIP buckets; 12
	Busy      time.Duration // how long one node's MariaDB is kept busy; 30 s
	Placement Placement     // ByPlacer (default) or ByClone
	// SVG, when set, is where the run's timeline is drawn (buckets per
	// node, server_load and writable_monit, the phases marked).
	SVG string
}

// demo is one run of Demo: the lab and where it prints.
type demo struct {
	*Lab
	ctx     context.Context
	o       DemoOptions
	t0      time.Time
	phase   int
	phases  int
	buckets int
	rec     *Recorder // the timeline, from lab up to teardown
	Metrics DemoMetrics
}

// DemoMetrics are the times the demo measures.
type DemoMetrics struct {
	Quorum      time.Duration // Up: start → every node online with quorum
	FirstAnswer time.Duration // demo start → first VIP connection answered
	WritableOff time.Duration // MariaDB killed → all the node's buckets elsewhere
	Failover    time.Duration // node crashed → its buckets owned by the survivors
	Rebalance   time.Duration // load attribute change → buckets moved, to within one 250 ms sample
	Rebalanced  bool          // buckets moved on load (Rebalance is measured)
	// Unflooded: the switch stopped flooding the cluster MAC to a node →
	// its flood check's flood_vip=0 (Detected), its buckets elsewhere
	// (Rerouted), and the last client connection that failed (ErrorWindow).
	Detected, Rerouted, ErrorWindow time.Duration
}

func (d *demo) step(title string) {
	d.phase++
	fmt.Fprintf(d.o.Out, "\n== [%d/%d] %s  (t=%s)\n", d.phase, d.phases, title, time.Since(d.t0).Round(100*time.Millisecond))
	if d.rec != nil {
		short, _, _ := strings.Cut(title, ":")
		d.rec.Mark(short)
	}
}

func (d *demo) say(format string, a ...any) {
	fmt.Fprintf(d.o.Out, "   "+format+"\n", a...)
}

// Demo is `loadshare lab demo`: the lab up, the loadshare service on it,
// client load on the VIP, one node's database loaded and then killed (its
// buckets leave) and recovered (they return), a node crash (failover),
// then teardown unless Keep. Every loop in it is bounded in count and time.
func Demo(ctx context.Context, cfg Config, o DemoOptions) (DemoMetrics, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Buckets == 0 {
		o.Buckets = 12
	}
	if o.Busy == 0 {
		o.Busy = 30 * time.Second
	}
	d := &demo{ctx: ctx, o: o, t0: time.Now(), phases: 11, buckets: o.Buckets}
	if o.Placement == ByClone {
		d.phases = 8 // no load-driven phase, no flood check
	}
	cfg = cfg.withDefaults()
	if cfg.DB == DBReplication {
		// Its one VIP's even spread is not a replication cluster's shape
		// (test/e2e TestReplication drives that one).
		return d.Metrics, errors.New("demo runs --db galera or standalone, not replication")
	}
	if cfg.DB == DBGalera && !cfg.NoDB {
		d.phases++
	}
	if cfg.Agents == "" {
		return d.Metrics, errors.New("demo needs the agent binaries to install on the nodes (Config.Agents)")
	}
	d.step("lab up: 3 nodes (corosync + pacemaker + MariaDB each) and a client, in namespaces")
	l, err := Up(ctx, cfg, o.Log)
	if err != nil {
		return d.Metrics, err
	}
	d.Lab = l
	d.Metrics.Quorum = l.QuorumAfter
	d.say("all nodes online with quorum after %s", l.QuorumAfter.Round(time.Millisecond))
	if o.SVG != "" {
		d.rec = l.Record(ctx, o.Buckets, time.Second)
	}
	err = d.run()
	if d.rec != nil {
		if werr := d.writeSVG(d.rec.Stop()); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if o.Keep {
		fmt.Fprintf(o.Out, "\nlab kept up (--keep): loadshare lab status; loadshare lab exec n1 crm_mon -1A; loadshare lab down\n")
	} else {
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, derr)
		}
		fmt.Fprintf(o.Out, "\nlab torn down\n")
	}
	if err == nil {
		d.summary()
	}
	return d.Metrics, err
}

func (d *demo) writeSVG(tl *Timeline) error {
	f, err := os.Create(d.o.SVG)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	if err := tl.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("timeline %s: %w", d.o.SVG, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("timeline %s: %w", d.o.SVG, err)
	}
	fmt.Fprintf(d.o.Out, "\ntimeline (%d samples): %s\n", len(tl.Samples), d.o.SVG)
	return nil
}

func (d *demo) summary() {
	m := d.Metrics
	fmt.Fprintf(d.o.Out, "\nmeasured: start→quorum %s, start→first VIP answer %s, MariaDB killed→buckets moved %s, node crash→failover %s",
		m.Quorum.Round(time.Millisecond), m.FirstAnswer.Round(time.Millisecond), m.WritableOff.Round(time.Millisecond), m.Failover.Round(time.Millisecond))
	if m.Rebalanced {
		fmt.Fprintf(d.o.Out, ", load change→rebalance %s (±0.25 s)", m.Rebalance.Round(time.Millisecond))
	}
	if m.Rerouted > 0 {
		fmt.Fprintf(d.o.Out, ", switch fault→flood_vip=0 %s→buckets elsewhere %s (last failed connection %s after the fault)",
			m.Detected.Round(100*time.Millisecond), m.Rerouted.Round(100*time.Millisecond), m.ErrorWindow.Round(100*time.Millisecond))
	}
	fmt.Fprintln(d.o.Out)
}

func (d *demo) run() error {
	ctx := d.ctx
	nodes := d.Nodes()

	how := "one ocf:loadshare:clustervip primitive per bucket from `loadshare crm`, placed by the placer in the server_load agent"
	if d.o.Placement == ByClone {
		how = "a globally-unique clone of ocf:loadshare:clustervip spread by Pacemaker"
	}
	d.step(fmt.Sprintf("service: the agent binaries installed in every node; VIP %s in %d buckets, %s; mysql_monitor and server_load clones", d.VIP(), d.buckets, how))
	if err := d.ConfigureService(ctx, "n1", d.buckets, d.o.Placement); err != nil {
		return err
	}
	if err := d.until(60*time.Second, "first answered VIP connection", func() (bool, error) {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		db := d.DB(d.VIP())
		defer db.Close()
		_, err := d.Ask(actx, db)
		return err == nil, nil
	}); err != nil {
		return err
	}
	d.Metrics.FirstAnswer = time.Since(d.t0)
	d.say("first VIP connection answered %s after the demo started", d.Metrics.FirstAnswer.Round(time.Millisecond))
	// Attributes first, then the spread: before every node's attributes
	// are there, Pacemaker's own first spread can look even for a moment
	// while the placer is still moving buckets to the nodes it knows.
	if err := d.attrsUntil(30*time.Second, func(c *crm.Status) bool {
		for _, n := range nodes {
			if v, _ := c.Attr(n, "writable_monit"); v != "1" {
				return false
			}
			if _, ok := c.Attr(n, "server_load"); !ok {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	even := d.spread()
	if _, err := d.waitSpread(60*time.Second, even); err != nil {
		return err
	}
	if err := d.showTables(); err != nil {
		return err
	}

	d.step("client load: 1000 new connections to the VIP from the client namespace, each asking SELECT @@hostname")
	d.load(1000)

	busy := nodes[0]
	d.step(fmt.Sprintf("load %s: 12 sessions of SELECT SLEEP(%d) on its MariaDB (Threads_running up), watch server_load", busy, int(d.o.Busy/time.Second)))
	stopBusy := d.Busy(ctx, busy, 12, d.o.Busy)
	before, _ := d.attr(busy, "server_load")
	t0 := time.Now()
	last, lastCounts := before, slices.Clone(even)
	var attrAt, movedAt time.Time // last server_load change before the first move; the move
	d.say("t+0s    %s server_load=%-3s buckets per node %v", busy, before, even)
	for time.Since(t0) < d.o.Busy-time.Second {
		time.Sleep(250 * time.Millisecond)
		c, err := d.Cluster(ctx, d.viewer())
		if err != nil {
			continue
		}
		v, _ := c.Attr(busy, "server_load")
		tb, err := d.Buckets(ctx, d.viewer(), d.buckets)
		if err != nil {
			continue
		}
		counts := tb.Counts(nodes)
		if v != last || !slices.Equal(counts, lastCounts) {
			d.say("t+%-5s %s server_load=%-3s buckets per node %v", time.Since(t0).Round(time.Second), busy, v, counts)
			if v != last && movedAt.IsZero() {
				attrAt = time.Now()
			}
			if !slices.Equal(counts, even) && movedAt.IsZero() {
				movedAt = time.Now()
			}
			last, lastCounts = v, counts
		}
	}
	if !movedAt.IsZero() && !attrAt.IsZero() {
		d.Metrics.Rebalance, d.Metrics.Rebalanced = movedAt.Sub(attrAt), true
		d.say("rebalance: server_load change → first bucket moved away from %s: %s (sampled every 0.25 s)", busy, d.Metrics.Rebalance.Round(time.Millisecond))
	} else if d.o.Placement == ByClone {
		d.say("buckets stay %v: the clone placement follows writable_monit only (use --placement placer for load)", even)
	}
	d.load(300)
	stopBusy()
	if d.o.Placement == ByPlacer {
		d.step(fmt.Sprintf("load on %s ends: server_load falls, its buckets come back", busy))
		t0 = time.Now()
		if _, err := d.waitSpread(90*time.Second, even); err != nil {
			return err
		}
		v, _ := d.attr(busy, "server_load")
		d.say("spread back to %v after %s (%s server_load=%s)", even, time.Since(t0).Round(time.Millisecond), busy, v)
		d.load(1000)
	}

	d.step(fmt.Sprintf("kill %s's MariaDB (SIGKILL): mysql_monitor sets writable_monit=0, all its buckets leave", busy))
	t0 = time.Now()
	if err := d.KillDB(busy); err != nil {
		return err
	}
	if err := d.attrsUntil(30*time.Second, func(c *crm.Status) bool { v, _ := c.Attr(busy, "writable_monit"); return v == "0" }); err != nil {
		return err
	}
	d.say("writable_monit=0 on %s after %s", busy, time.Since(t0).Round(time.Millisecond))
	without := d.spread(busy)
	if _, err := d.waitSpread(60*time.Second, without); err != nil {
		return err
	}
	d.Metrics.WritableOff = time.Since(t0)
	d.say("all of %s's buckets owned elsewhere after %s", busy, d.Metrics.WritableOff.Round(time.Millisecond))
	d.showBuckets()
	d.load(1000)

	d.step(fmt.Sprintf("recover: start %s's MariaDB again; writable_monit=1, the spread returns", busy))
	t0 = time.Now()
	if err := d.StartDB(ctx, busy); err != nil {
		return err
	}
	if _, err := d.waitSpread(60*time.Second, even); err != nil {
		return err
	}
	d.say("spread back to %v after %s", even, time.Since(t0).Round(time.Millisecond))
	d.load(1000)

	if d.cfg.DB == DBGalera && !d.cfg.NoDB {
		if err := d.galera(); err != nil {
			return err
		}
	}
	if d.o.Placement == ByPlacer {
		if err := d.flood(nodes[1], even); err != nil {
			return err
		}
	}

	victim := nodes[len(nodes)-1]
	d.step(fmt.Sprintf("crash %s (its network cut, kill -9 of all its processes): fenced, failover, then restart", victim))
	if d.Fencing() {
		d.say("fencing is on (stonith-enabled=true, device %s): the survivors fence %s before they start its buckets;", FenceResource, victim)
	} else {
		d.say("fencing is off: no %s beside the agents (stonith-enabled=false, a lab-only choice);", FenceAgentName)
	}
	d.say("no-quorum-policy=stop: had two of three crashed, the survivor without quorum would stop its buckets too")
	t0 = time.Now()
	if err := d.Crash(victim); err != nil {
		return err
	}
	if _, err := d.waitSpread(60*time.Second, d.spread(victim)); err != nil {
		return err
	}
	d.Metrics.Failover = time.Since(t0)
	d.say("failover: %s fenced, its buckets owned by the survivors %s after the crash", victim, d.Metrics.Failover.Round(time.Millisecond))
	d.load(1000)
	t0 = time.Now()
	if err := d.Start(ctx, victim); err != nil {
		return err
	}
	if _, err := d.waitSpread(90*time.Second, even); err != nil {
		return err
	}
	d.say("%s back, spread %v after %s", victim, even, time.Since(t0).Round(time.Millisecond))

	d.step("final state")
	if err := d.showTables(); err != nil {
		return err
	}
	d.load(1000)
	return nil
}

// spread is the even bucket spread over the nodes not in down.
func (d *demo) spread(down ...string) []int {
	var up []int
	live := len(d.Nodes()) - len(down)
	w := make([]int, len(d.Nodes()))
	for i, n := range d.Nodes() {
		if !slices.Contains(down, n) {
			up = append(up, i)
		}
	}
	for k, i := range up {
		w[i] = d.buckets / live
		if k < d.buckets%live {
			w[i]++
		}
	}
	return w
}

func (d *demo) viewer() string {
	for _, n := range d.Nodes() {
		if d.Running(n) {
			return n
		}
	}
	return "n1"
}

// waitSpread waits until the kernels own want (any order of the counts
// over the nodes is not enough: per node) with every bucket owned once.
func (d *demo) waitSpread(limit time.Duration, want []int) (BucketTable, error) {
	var tb BucketTable
	err := d.until(limit, fmt.Sprintf("buckets spread %v", want), func() (bool, error) {
		var err error
		tb, err = d.Buckets(d.ctx, d.viewer(), d.buckets)
		if err != nil {
			return false, nil
		}
		return slices.Equal(tb.Counts(d.Nodes()), want) && tb.Check() == nil, nil
	})
	return tb, err
}

func (d *demo) until(limit time.Duration, what string, cond func() (bool, error)) error {
	if err := poll(d.ctx, limit, cond); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (d *demo) attr(node, name string) (string, error) {
	c, err := d.Cluster(d.ctx, d.viewer())
	if err != nil {
		return "", err
	}
	v, _ := c.Attr(node, name)
	return v, nil
}

func (d *demo) attrsUntil(limit time.Duration, cond func(*crm.Status) bool) error {
	return d.until(limit, "node attributes", func() (bool, error) {
		c, err := d.Cluster(d.ctx, d.viewer())
		return err == nil && cond(c), nil
	})
}

func (d *demo) showTables() error {
	c, err := d.Cluster(d.ctx, d.viewer())
	if err != nil {
		return err
	}
	d.say("node attributes (as crm_mon -A shows them):")
	var b strings.Builder
	if err := WriteAttrs(&b, c); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		d.say("  %s", line)
	}
	d.showBuckets()
	return nil
}

func (d *demo) showBuckets() {
	tb, err := d.Buckets(d.ctx, d.viewer(), d.buckets)
	if err != nil {
		d.say("bucket table: %v", err)
		return
	}
	check := "every bucket owned by exactly one node"
	if err := tb.Check(); err != nil {
		check = err.Error()
	}
	d.say("bucket table (kernel owned sets; %s):", check)
	for _, line := range strings.Split(strings.TrimRight(tb.String(), "\n"), "\n") {
		d.say("%s", line)
	}
}

func (d *demo) load(n int) {
	t0 := time.Now()
	s := d.Load(d.ctx, d.VIP(), n, 8, 60*time.Second)
	d.say("%d connections to %s:%d in %s → %s", n, d.VIP(), DBPort, time.Since(t0).Round(time.Millisecond), s)
}

// galera is the demo's Galera phase: rows written through the VIP are on
// every node; a node desynced (wsrep_desync=ON: wsrep_local_state 2, not
// Synced) gets writable_monit=0 and loses its buckets, and gets them back
// once Synced again.
func (d *demo) galera() error {
	ctx := d.ctx
	nodes := d.Nodes()
	d.step("galera: rows written through the VIP are on every node; a desynced node loses its buckets until Synced")
	if _, err := d.SQL(ctx, "n1", "CREATE DATABASE IF NOT EXISTS demo; CREATE TABLE IF NOT EXISTS demo.t (id INT AUTO_INCREMENT PRIMARY KEY, via VARCHAR(8))"); err != nil {
		return err
	}
	db := d.DB(d.VIP())
	defer db.Close()
	for range 30 {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := db.ExecContext(actx, "INSERT INTO demo.t (via) VALUES (@@hostname)")
		cancel()
		if err != nil {
			return fmt.Errorf("write through the VIP: %w", err)
		}
	}
	var first string
	for _, n := range nodes {
		out, err := d.SQL(ctx, n, "SELECT via, COUNT(*) FROM demo.t GROUP BY via ORDER BY via")
		if err != nil {
			return err
		}
		rows := strings.Join(strings.Fields(out), " ")
		d.say("%s holds the rows, counted by the node that took the write: %s", n, rows)
		if n != nodes[0] && rows != first {
			return fmt.Errorf("galera: %s holds %q, %s %q: not replicated", n, rows, nodes[0], first)
		}
		first = rows
	}
	desync := nodes[1%len(nodes)]
	t0 := time.Now()
	if _, err := d.SQL(ctx, desync, "SET GLOBAL wsrep_desync=ON"); err != nil {
		return err
	}
	if err := d.attrsUntil(30*time.Second, func(c *crm.Status) bool { v, _ := c.Attr(desync, "writable_monit"); return v == "0" }); err != nil {
		return err
	}
	state, _ := d.SQL(ctx, desync, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='wsrep_local_state_comment'")
	d.say("%s desynced (wsrep_local_state_comment=%s): writable_monit=0 after %s", desync, strings.TrimSpace(state), time.Since(t0).Round(time.Millisecond))
	if _, err := d.waitSpread(60*time.Second, d.spread(desync)); err != nil {
		return err
	}
	d.say("all of %s's buckets owned elsewhere after %s", desync, time.Since(t0).Round(time.Millisecond))
	d.load(300)
	t0 = time.Now()
	if _, err := d.SQL(ctx, desync, "SET GLOBAL wsrep_desync=OFF"); err != nil {
		return err
	}
	if _, err := d.waitSpread(60*time.Second, d.spread()); err != nil {
		return err
	}
	d.say("%s Synced again: spread back to %v after %s", desync, d.spread(), time.Since(t0).Round(time.Millisecond))
	return nil
}

// flood is the demo's switch fault (issue 16): the bridge stops delivering
// the cluster MAC's frames to victim (Unflood), which stays in the cluster
// with its buckets Started; its flood check hears no other node's probe
// while they hear each other, publishes flood_vip=0, and its buckets move;
// the fault removed, they come back. Client loops run throughout.
func (d *demo) flood(victim string, even []int) error {
	attr := crm.FloodAttr(VIPResource)
	d.step(fmt.Sprintf("switch fault: the bridge stops flooding the VIP's cluster MAC to %s (loadshare lab unflood %s); its flood check notices, its buckets leave", victim, victim))
	wctx, stop := context.WithCancel(d.ctx)
	tallies := make(chan *Tally, 1)
	go func() { tallies <- d.Watch(wctx, d.VIP(), 4, 100000) }()
	defer func() { stop(); <-tallies }()
	t0 := time.Now()
	if err := d.Unflood(victim); err != nil {
		return err
	}
	if err := d.attrsUntil(60*time.Second, func(c *crm.Status) bool { v, _ := c.Attr(victim, attr); return v == "0" }); err != nil {
		d.Reflood(victim)
		return err
	}
	d.Metrics.Detected = time.Since(t0)
	d.say("%s=0 on %s after %s: no other node's probe arrives there while they hear each other", attr, victim, d.Metrics.Detected.Round(100*time.Millisecond))
	if _, err := d.waitSpread(60*time.Second, d.spread(victim)); err != nil {
		d.Reflood(victim)
		return err
	}
	d.Metrics.Rerouted = time.Since(t0)
	time.Sleep(3 * time.Second) // the connections begun before the move have ended
	stop()
	tl := <-tallies
	tallies <- tl // for the deferred receive
	if !tl.LastFail.IsZero() {
		d.Metrics.ErrorWindow = tl.LastFail.Sub(t0)
	}
	d.say("%s's buckets owned by the others %s after the fault; clients meanwhile: %s; fault → last failed connection %s",
		victim, d.Metrics.Rerouted.Round(100*time.Millisecond), tl, d.Metrics.ErrorWindow.Round(100*time.Millisecond))
	d.showBuckets()
	d.load(1000)

	d.step(fmt.Sprintf("switch fixed (loadshare lab reflood %s): probes reach it again, %s=1, its share returns", victim, attr))
	t0 = time.Now()
	if err := d.Reflood(victim); err != nil {
		return err
	}
	if _, err := d.waitSpread(90*time.Second, even); err != nil {
		return err
	}
	d.say("spread back to %v after %s", even, time.Since(t0).Round(time.Millisecond))
	d.load(1000)
	return nil
}
