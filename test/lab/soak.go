package lab

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/test/footprint"
)

// The seeded fault campaign (`loadshare lab soak`): random faults from the
// matrix the lab survives, one at a time, on a lab serving the VIP, while
// a client opens new connections continuously and holds one long-lived
// session on every node. After each fault settles, and again after the
// recovery settles, an invariant checker reads every node's kernel.

// FaultKind is one fault of the campaign's matrix.
type FaultKind string

// The matrix. Each fault hits one node (the victim); "move" also names the
// node a bucket moves to.
const (
	FaultCrash     FaultKind = "crash"         // power cut (Crash); fenced, then booted
	FaultHung      FaultKind = "hung"          // every process SIGSTOPped (Freeze); fenced, then booted
	FaultPartition FaultKind = "partition"     // link down both ways (Isolate); fenced, then booted
	FaultCorosync  FaultKind = "kill-corosync" // SIGKILL of corosync; fenced (or recovered), then booted
	FaultControld  FaultKind = "kill-controld" // SIGKILL of pacemaker-controld; fenced (or recovered)
	FaultAttrd     FaultKind = "kill-attrd"    // SIGKILL of pacemaker-attrd; respawned (or fenced)
	FaultDBKill    FaultKind = "db-kill"       // SIGKILL of mariadbd: its buckets leave; restarted
	FaultDBHung    FaultKind = "db-hung"       // SIGSTOP of mariadbd: its buckets leave; SIGCONT
	FaultReadOnly  FaultKind = "read-only"     // SET GLOBAL read_only=1: its buckets leave; =0
	FaultLoad      FaultKind = "load"          // a load spike on its MariaDB: buckets move away; it ends
	FaultMove      FaultKind = "move"          // the bucket of its long-lived session moved (crm_resource --move), then back
	FaultFlood     FaultKind = "unflood"       // the switch stops flooding the cluster MAC to it (Unflood): its buckets leave; Reflood
)

// FaultKinds is the matrix in the campaign's order of kinds.
var FaultKinds = []FaultKind{FaultCrash, FaultHung, FaultPartition, FaultCorosync, FaultControld, FaultAttrd,
	FaultDBKill, FaultDBHung, FaultReadOnly, FaultLoad, FaultMove, FaultFlood}

// Fault is one step of a campaign.
type Fault struct {
	Kind FaultKind
	Node string // the victim
	To   string // FaultMove: where the bucket goes
}

func (f Fault) String() string {
	if f.Kind == FaultMove {
		return fmt.Sprintf("%s %s→%s", f.Kind, f.Node, f.To)
	}
	return fmt.Sprintf("%s %s", f.Kind, f.Node)
}

// SoakPlan returns the campaign of faults faults on nodes nodes (n1…) for
// seed: kinds drawn evenly from FaultKinds, victims evenly from the nodes.
// It depends on nothing but its arguments (a PCG seeded with seed), so
// the same seed gives the same sequence, on any machine.
func SoakPlan(seed uint64, nodes, faults int) []Fault {
	r := rand.New(rand.NewPCG(seed, 0x6c6f616473686172)) // "loadshar"
	plan := make([]Fault, faults)
	for i := range plan {
		k := FaultKinds[r.IntN(len(FaultKinds))]
		v := r.IntN(nodes)
		f := Fault{Kind: k, Node: fmt.Sprintf("n%d", v+1)}
		if k == FaultMove {
			to := r.IntN(nodes - 1)
			if to >= v {
				to++
			}
			f.To = fmt.Sprintf("n%d", to+1)
		}
		plan[i] = f
	}
	return plan
}

// SoakOptions tune Soak.
type SoakOptions struct {
	Faults int    // faults in the campaign; 10
	Seed   uint64 // the plan's seed (SoakPlan)
	Out    io.Writer
	// Settle bounds every wait for a settled state; 120 s.
	Settle time.Duration
}

// FaultResult is what one fault did.
type FaultResult struct {
	Fault
	Outcome string        // what became of the victim: "fenced", "recovered in place", "buckets left", …
	Settle  time.Duration // fault → the degraded state settled (invariants hold)
	Recover time.Duration // recovery started → every node serving again, invariants hold
	Client  *Tally        // every new connection of the window (fault → recovered)
	// Violations are the invariants broken after this fault (each a sentence).
	Violations []string
}

// SoakReport is a campaign's outcome.
type SoakReport struct {
	Nodes, Buckets int
	Seed           uint64
	Faults         []FaultResult
	Elapsed        time.Duration
}

// Violations returns every invariant violation of the campaign.
func (r *SoakReport) Violations() []string {
	var v []string
	for i, f := range r.Faults {
		for _, s := range f.Violations {
			v = append(v, fmt.Sprintf("fault %d (%s): %s", i+1, f.Fault, s))
		}
	}
	return v
}

// soak is one campaign on a lab.
type soak struct {
	*Lab
	ctx      context.Context
	o        SoakOptions
	buckets  int
	sessions []*holdConn
	rng      *rand.Rand // the load spike's and the move's details, seeded too
}

// Soak runs a seeded campaign on l, which serves the VIP (ConfigureService
// with the placer, every node up and writable). Each fault: the client
// loops and long-lived sessions run, the fault is injected, the degraded
// state is waited for and checked, the victim is recovered (booted,
// restarted, resumed, cleared), the whole lab is waited for and checked
// again. It returns an error only when the lab cannot be brought back;
// broken invariants are in the report.
func (l *Lab) Soak(ctx context.Context, o SoakOptions) (*SoakReport, error) {
	if o.Faults == 0 {
		o.Faults = 10
	}
	if o.Settle == 0 {
		o.Settle = 120 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if l.cfg.Nodes < 3 {
		return nil, fmt.Errorf("soak: %d nodes: needs at least 3 (one node down must leave a quorum)", l.cfg.Nodes)
	}
	if !l.Fencing() {
		return nil, errors.New("soak: the lab does not fence (no fence_loadshare_lab beside the agents)")
	}
	n := l.ServiceBuckets()
	if n == 0 {
		return nil, errors.New("soak: the loadshare service is not configured (lab up --buckets N)")
	}
	s := &soak{Lab: l, ctx: ctx, o: o, buckets: n, rng: rand.New(rand.NewPCG(o.Seed, 1))}
	defer s.closeSessions()
	rep := &SoakReport{Nodes: l.cfg.Nodes, Buckets: n, Seed: o.Seed}
	t0 := time.Now()
	if _, err := s.settled("the lab serving evenly before the campaign", s.even(nil)); err != nil {
		return rep, err
	}
	plan := SoakPlan(o.Seed, l.cfg.Nodes, o.Faults)
	for i, f := range plan {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		fmt.Fprintf(o.Out, "[%d/%d] %s\n", i+1, len(plan), f)
		r, err := s.run(f)
		rep.Faults = append(rep.Faults, r)
		fmt.Fprintf(o.Out, "       %s; settled %s, recovered %s; client %s\n", r.Outcome,
			r.Settle.Round(100*time.Millisecond), r.Recover.Round(100*time.Millisecond), r.Client)
		if r.Client != nil {
			for _, k := range []string{"reset", "refused", "timeout", "other"} {
				if e, ok := r.Client.Examples[k]; ok {
					fmt.Fprintf(o.Out, "       a %s: %v\n", k, e)
				}
			}
		}
		for _, v := range r.Violations {
			fmt.Fprintf(o.Out, "       VIOLATION: %s\n", v)
		}
		if err != nil {
			rep.Elapsed = time.Since(t0)
			return rep, fmt.Errorf("soak: fault %d (%s): %w", i+1, f, err)
		}
	}
	rep.Elapsed = time.Since(t0)
	return rep, nil
}

// run injects f, waits, checks, recovers, waits, checks.
func (s *soak) run(f Fault) (r FaultResult, err error) {
	r = FaultResult{Fault: f, Client: &Tally{Answers: map[string]int{}, Examples: map[string]error{}}}
	if err := s.holdSessions(); err != nil {
		return r, err
	}
	wctx, stopWatch := context.WithTimeout(s.ctx, 10*time.Minute)
	watched := make(chan *Tally, 1)
	go func() { watched <- s.Watch(wctx, s.VIP(), 2, 1000000) }()
	defer func() {
		stopWatch()
		r.Client = <-watched
	}()
	time.Sleep(500 * time.Millisecond) // connections before the fault
	// Healthy nodes keep their long-lived sessions: all but the victim,
	// and the victim too when only a bucket of it moves.
	healthy := func(n string) bool { return n != f.Node || f.Kind == FaultMove }

	t0 := time.Now()
	inject, degraded, recover, err := s.fault(f, t0, &r.Outcome)
	if err != nil {
		return r, err
	}
	if err := inject(); err != nil {
		return r, fmt.Errorf("inject: %w", err)
	}
	// The degraded state, phase after phase (a phase may depend on how
	// the one before ended: fenced, or recovered in place).
	for _, cond := range degraded {
		d, err := s.settled(f.String()+": degraded state", cond())
		r.Settle += d
		if err != nil {
			r.Violations = append(r.Violations, err.Error())
			break
		}
	}
	r.Violations = append(r.Violations, s.check(f, healthy, t0)...)

	if err := recover(); err != nil {
		return r, fmt.Errorf("recover: %w", err)
	}
	t1 := time.Now()
	if err := s.WaitOnline(s.ctx, s.Nodes()...); err != nil {
		return r, fmt.Errorf("recover: %w", err)
	}
	_, err = s.settled(f.String()+": recovered, every node serving evenly", s.even(nil))
	r.Recover = time.Since(t1)
	if err != nil {
		return r, fmt.Errorf("recover: %w", err)
	}
	time.Sleep(500 * time.Millisecond) // connections after the recovery
	r.Violations = append(r.Violations, s.check(f, healthy, t0)...)
	return r, nil
}

// fault returns how to inject f, the phases of its degraded state (each
// made when the one before has settled) and how to recover from it.
func (s *soak) fault(f Fault, t0 time.Time, outcome *string) (inject func() error, degraded []func() func() (bool, string), recover func() error, err error) {
	victimOut := func() func() (bool, string) { return s.even([]string{f.Node}) }
	switch f.Kind {
	case FaultCrash, FaultHung, FaultPartition, FaultCorosync, FaultControld, FaultAttrd:
		d, old := "", 0
		switch f.Kind {
		case FaultCrash:
			inject = func() error { return s.Crash(f.Node) }
		case FaultHung:
			inject = func() error { return s.Freeze(f.Node) }
		case FaultPartition:
			inject = func() error { return s.Isolate(f.Node) }
		default:
			d = map[FaultKind]string{FaultCorosync: "corosync", FaultControld: "pacemaker-controld", FaultAttrd: "pacemaker-attrd"}[f.Kind]
			if old = s.Pid(f.Node, d); old == 0 {
				return nil, nil, nil, fmt.Errorf("%s runs no %s", f.Node, d)
			}
			inject = func() error { return s.Signal(f.Node, d, syscall.SIGKILL) }
		}
		degraded = []func() func() (bool, string){
			func() func() (bool, string) { return s.FencedOrRecovered(s.ctx, f.Node, d, old, t0, outcome) },
			func() func() (bool, string) {
				if *outcome == "fenced" {
					return victimOut()
				}
				return s.even(nil)
			},
		}
		recover = func() error {
			if strings.HasPrefix(*outcome, "recovered") {
				return nil
			}
			if s.Running(f.Node) {
				// Neither fenced nor recovered (a violation already):
				// power-cycle it, as an operator would.
				if err := s.Crash(f.Node); err != nil {
					return err
				}
			}
			return s.Start(s.ctx, f.Node)
		}
	case FaultDBKill:
		*outcome = "writable_monit=0, its buckets left"
		inject = func() error { return s.KillDB(f.Node) }
		degraded = []func() func() (bool, string){victimOut}
		recover = func() error { return s.StartDB(s.ctx, f.Node) }
	case FaultDBHung:
		*outcome = "writable_monit=0, its buckets left"
		inject = func() error { return s.Signal(f.Node, string(mariadbd), syscall.SIGSTOP) }
		degraded = []func() func() (bool, string){victimOut}
		recover = func() error { return s.resumeDB(f.Node) }
	case FaultReadOnly:
		*outcome = "writable_monit=0, its buckets left"
		inject = func() error { _, err := s.SQL(s.ctx, f.Node, "SET GLOBAL read_only=1"); return err }
		degraded = []func() func() (bool, string){victimOut}
		recover = func() error { _, err := s.SQL(s.ctx, f.Node, "SET GLOBAL read_only=0"); return err }
	case FaultFlood:
		// The flood check sees it (flood_vip=0) and its buckets leave;
		// back once the switch floods to it again.
		*outcome = crm.FloodAttr(VIPResource) + "=0, its buckets left"
		inject = func() error { return s.Unflood(f.Node) }
		degraded = []func() func() (bool, string){victimOut}
		recover = func() error { return s.Reflood(f.Node) }
	case FaultLoad:
		*outcome = "server_load up, buckets moved away"
		var stop func()
		// MariaDB does not end a SLEEP whose client went away: the spike
		// lasts its full 40 s whenever it is stopped.
		inject = func() error { stop = s.Busy(s.ctx, f.Node, 12, 40*time.Second); return nil }
		share := s.buckets / len(s.Nodes())
		degraded = []func() func() (bool, string){func() func() (bool, string) {
			return func() (bool, string) {
				tb, err := s.Buckets(s.ctx, s.viewer(""), s.buckets)
				if err != nil {
					return false, err.Error()
				}
				return len(tb.Kernel[f.Node]) < share && tb.Check() == nil, tb.String()
			}
		}}
		recover = func() error { stop(); return nil }
	case FaultMove:
		hc := s.sessionOn(f.Node)
		if hc == nil {
			return nil, nil, nil, fmt.Errorf("no long-lived session on %s", f.Node)
		}
		st, ok, err := s.KernelVIP(f.Node, s.VIP())
		if err != nil || !ok {
			return nil, nil, nil, fmt.Errorf("read %s's VIP settings: held %v, %v", f.Node, ok, err)
		}
		bucket := int(st.VIP.BucketOf(hc.local))
		res := fmt.Sprintf("%s_%d", VIPResource, bucket)
		// The session stays on the node that took its SYN, but its
		// bucket may have moved since (rebalancing): a move to where it
		// runs already is refused, so it then goes to another node.
		tb, err := s.Buckets(s.ctx, s.viewer(""), s.buckets)
		if err != nil {
			return nil, nil, nil, err
		}
		to := f.To
		if slices.Contains(tb.Pacemaker[to], bucket) {
			for _, n := range s.Nodes() {
				if n != to && n != f.Node {
					to = n
					break
				}
			}
		}
		*outcome = fmt.Sprintf("bucket %d (of the session from %s) moved to %s", bucket, hc.local, to)
		// Equivalent to: crm_resource --resource vip_K --move --node TO, later --clear
		inject = func() error {
			_, err := s.Exec(s.ctx, s.viewer(""), "crm_resource", "--resource", res, "--move", "--node", to)
			return err
		}
		degraded = []func() func() (bool, string){func() func() (bool, string) {
			return func() (bool, string) {
				tb, err := s.Buckets(s.ctx, s.viewer(""), s.buckets)
				if err != nil {
					return false, err.Error()
				}
				return slices.Contains(tb.Kernel[to], bucket) && tb.Check() == nil, tb.String()
			}
		}}
		recover = func() error {
			_, err := s.Exec(s.ctx, s.viewer(""), "crm_resource", "--resource", res, "--clear")
			return err
		}
	default:
		return nil, nil, nil, fmt.Errorf("fault kind %q: unknown", f.Kind)
	}
	return inject, degraded, recover, nil
}

// viewer is a running node other than avoid to read the cluster from.
func (s *soak) viewer(avoid string) string {
	for _, n := range s.Nodes() {
		if n != avoid && s.Running(n) && s.Pid(n, string(pacemakerd)) != 0 {
			return n
		}
	}
	return "n1"
}

// settled polls cond (every 250 ms, up to Settle) and returns how long it took.
func (s *soak) settled(what string, cond func() (bool, string)) (time.Duration, error) {
	t0 := time.Now()
	last := ""
	for time.Since(t0) < s.o.Settle {
		if s.ctx.Err() != nil {
			return time.Since(t0), s.ctx.Err()
		}
		ok, state := cond()
		if ok {
			return time.Since(t0), nil
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	return time.Since(t0), fmt.Errorf("%s: not settled in %s (last: %s)", what, s.o.Settle, strings.TrimSpace(last))
}

// even is the settled state with the nodes in down serving nothing: every
// other node online, every bucket owned by exactly one kernel and as
// Pacemaker says, each serving node within one bucket of an even share.
func (s *soak) even(down []string) func() (bool, string) {
	return func() (bool, string) {
		var serving []string
		for _, n := range s.Nodes() {
			if !slices.Contains(down, n) {
				serving = append(serving, n)
			}
		}
		tb, err := s.Buckets(s.ctx, s.viewer(strings.Join(down, " ")), s.buckets)
		if err != nil {
			return false, err.Error()
		}
		if err := tb.Check(); err != nil {
			return false, err.Error()
		}
		lo := s.buckets / len(serving)
		hi := (s.buckets + len(serving) - 1) / len(serving)
		for _, n := range s.Nodes() {
			c := len(tb.Kernel[n])
			if slices.Contains(down, n) && c != 0 || !slices.Contains(down, n) && (c < lo || c > hi) {
				return false, "spread\n" + tb.String()
			}
		}
		return true, ""
	}
}

// resumeDB continues a stopped mariadbd and waits until it is writable
// again; a server that cannot rejoin its Galera cluster in time (it was
// dropped from it while stopped) is restarted, as an operator would.
func (s *soak) resumeDB(node string) error {
	if err := s.Signal(node, string(mariadbd), syscall.SIGCONT); err != nil {
		return err
	}
	_, err := s.settled(node+": writable_monit=1 after SIGCONT", func() (bool, string) {
		c, err := s.Cluster(s.ctx, s.viewer(""))
		if err != nil {
			return false, err.Error()
		}
		v, _ := c.Attr(node, "writable_monit")
		return v == "1", "writable_monit=" + v
	})
	if err == nil {
		return nil
	}
	fmt.Fprintf(s.o.Out, "       %s's MariaDB not writable after SIGCONT (%v): restarting it\n", node, err)
	if err := s.KillDB(node); err != nil {
		return err
	}
	return s.StartDB(s.ctx, node)
}

// check is the invariant checker, run once a state has settled: every
// running node's kernel read, every bucket owned by exactly one node and
// as Pacemaker says; no VIP object (nftables table, address, run file) on
// a running node that owns no bucket, once its drain has ended; no
// long-lived session to a healthy node broken since t0.
func (s *soak) check(f Fault, healthy func(string) bool, t0 time.Time) []string {
	var v []string
	tb, err := s.Buckets(s.ctx, s.viewer(f.Node), s.buckets)
	if err != nil {
		return []string{"read the bucket table: " + err.Error()}
	}
	if err := tb.Check(); err != nil {
		v = append(v, err.Error())
	}
	for _, n := range s.Nodes() {
		if !s.Running(n) || len(tb.Kernel[n]) > 0 {
			continue
		}
		// A node that released its last bucket drains (up to drain_grace,
		// 15 s) before it removes the VIP's objects.
		var left string
		if _, err := s.settled(n+": no VIP objects without a bucket", func() (bool, string) {
			left = s.vipObjects(n)
			return left == "", left
		}); err != nil {
			if owned, _ := s.KernelOwned(n); len(owned) == 0 {
				v = append(v, fmt.Sprintf("%s owns no bucket but holds the VIP's %s", n, left))
			}
		}
	}
	for _, hc := range s.sessions {
		if at, err := hc.broken(); err != nil && !at.Before(t0) && healthy(hc.node) && s.Running(hc.node) {
			v = append(v, fmt.Sprintf("long-lived session to healthy %s (from %s) broken %s after the fault: %v",
				hc.node, hc.local, at.Sub(t0).Round(100*time.Millisecond), err))
		}
	}
	return v
}

// vipObjects reads node with the independent tools (nft -j, ip -j addr,
// the run directory) and returns what it holds of the VIP, "" when nothing.
func (s *soak) vipObjects(node string) string {
	f, err := footprint.Read(func(name string, args ...string) ([]byte, error) {
		return s.Exec(s.ctx, node, name, args...)
	}, footprint.Options{RunDir: "/run/loadshare"})
	if err != nil {
		return "unreadable footprint: " + err.Error()
	}
	table := "loadshare-" + strings.NewReplacer(".", "_", ":", "_").Replace(s.VIP().String())
	mine := f.Only(table, s.VIP().String()+"/") // tables and run files are named by table
	if mine.Lines() == 0 {
		return ""
	}
	var parts []string
	if len(mine.NFT) > 0 {
		parts = append(parts, fmt.Sprintf("%d nftables objects (first: %s)", len(mine.NFT), mine.NFT[0]))
	}
	parts = append(append(parts, mine.Addrs...), mine.Files...)
	return strings.Join(parts, "; ")
}

// holdConn is a long-lived session to the VIP: one MariaDB connection
// asking SELECT @@hostname every 250 ms until it fails once (then it is
// broken and stops) or is closed.
type holdConn struct {
	node  string         // the server that answers it
	local netip.AddrPort // the client's end (its bucket)
	db    *sql.DB
	conn  *sql.Conn
	stop  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	brokenAt time.Time
	err      error
}

func (h *holdConn) broken() (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.brokenAt, h.err
}

func (h *holdConn) close() {
	close(h.stop)
	<-h.done
	h.conn.Close()
	h.db.Close()
}

// openSession opens one long-lived session to the VIP.
func (s *soak) openSession() (*holdConn, error) {
	h := &holdConn{stop: make(chan struct{}), done: make(chan struct{})}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = DBUser, DBPassword
	cfg.Net = "tcp"
	cfg.Addr = netip.AddrPortFrom(s.VIP(), DBPort).String()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 3*time.Second, 3*time.Second
	cfg.Logger = &mysql.NopLogger{}
	cfg.DialFunc = func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := s.Dial(ctx, "client", network, a)
		if err == nil {
			h.local, _ = netip.ParseAddrPort(c.LocalAddr().String())
		}
		return c, err
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	h.db = sql.OpenDB(connector)
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if h.conn, err = h.db.Conn(ctx); err == nil {
		err = h.conn.QueryRowContext(ctx, "SELECT @@hostname").Scan(&h.node)
	}
	if err != nil {
		if h.conn != nil {
			h.conn.Close()
		}
		h.db.Close()
		return nil, err
	}
	go func() {
		defer close(h.done)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for i := 0; i < 1000000; i++ { // bounded: about 70 hours
			select {
			case <-h.stop:
				return
			case <-tk.C:
			}
			qctx, qc := context.WithTimeout(s.ctx, 4*time.Second)
			var got string
			err := h.conn.QueryRowContext(qctx, "SELECT @@hostname").Scan(&got)
			qc()
			if err == nil && got != h.node {
				err = fmt.Errorf("answered by %s, not %s", got, h.node)
			}
			if err != nil {
				h.mu.Lock()
				h.brokenAt, h.err = time.Now(), err
				h.mu.Unlock()
				return
			}
		}
	}()
	return h, nil
}

// holdSessions makes sure every running node serves one unbroken
// long-lived session (new connections land where their bucket is owned:
// at most 60 tries).
func (s *soak) holdSessions() error {
	kept := s.sessions[:0]
	for _, h := range s.sessions {
		if _, err := h.broken(); err != nil || !s.Running(h.node) {
			h.close()
			continue
		}
		kept = append(kept, h)
	}
	s.sessions = kept
	for try := 0; try < 60; try++ {
		missing := false
		for _, n := range s.Nodes() {
			if s.sessionOn(n) == nil {
				missing = true
			}
		}
		if !missing {
			return nil
		}
		h, err := s.openSession()
		if err != nil {
			continue
		}
		if s.sessionOn(h.node) != nil {
			h.close()
			continue
		}
		s.sessions = append(s.sessions, h)
	}
	var have []string
	for _, h := range s.sessions {
		have = append(have, h.node)
	}
	return fmt.Errorf("long-lived sessions: after 60 connections only on %v", have)
}

func (s *soak) sessionOn(node string) *holdConn {
	for _, h := range s.sessions {
		if _, err := h.broken(); h.node == node && err == nil {
			return h
		}
	}
	return nil
}

func (s *soak) closeSessions() {
	for _, h := range s.sessions {
		h.close()
	}
	s.sessions = nil
}

// WriteTable prints the campaign's table: per fault kind the count, the
// settle and recovery times (p50, max), the client's connections and
// failures per window, and the invariant violations.
func (r *SoakReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "soak: %d nodes, %d buckets, seed %d, %d faults in %s\n", r.Nodes, r.Buckets, r.Seed, len(r.Faults), r.Elapsed.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tn\tsettle p50\tmax\trecover p50\tmax\tconnections\tfailed\tmax/window\ttimeout\trefused\treset\tother\tviolations\t")
	row := func(name string, fs []FaultResult) {
		var settle, rec []time.Duration
		var conns, failed, worst, to, ref, rst, oth, viol int
		for _, f := range fs {
			settle = append(settle, f.Settle)
			rec = append(rec, f.Recover)
			if f.Client != nil {
				conns += f.Client.Total()
				failed += f.Client.Failed()
				worst = max(worst, f.Client.Failed())
				to, ref, rst, oth = to+f.Client.Timeout, ref+f.Client.Refused, rst+f.Client.Reset, oth+f.Client.Other
			}
			viol += len(f.Violations)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, len(fs),
			secs(pct(settle, 50)), secs(pct(settle, 100)), secs(pct(rec, 50)), secs(pct(rec, 100)),
			conns, failed, worst, to, ref, rst, oth, viol)
	}
	for _, k := range FaultKinds {
		var fs []FaultResult
		for _, f := range r.Faults {
			if f.Kind == k {
				fs = append(fs, f)
			}
		}
		if len(fs) > 0 {
			row(string(k), fs)
		}
	}
	row("all", r.Faults)
	if err := tw.Flush(); err != nil {
		return err
	}
	v := r.Violations()
	fmt.Fprintf(w, "invariant violations: %d\n", len(v))
	for _, s := range v {
		fmt.Fprintf(w, "  %s\n", s)
	}
	return nil
}

// pct returns the p-th percentile (nearest rank) of ds; 0 for none.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}
