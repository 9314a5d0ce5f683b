package lab

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
)

// DialClient opens a connection from inside the client namespace (the socket
// is created there; the caller's goroutine stays where it was).
func (l *Lab) DialClient(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.Dial(ctx, "client", network, addr)
}

// clientSources are the client's extra addresses with a source-hashed
// backend (ClientSources of them, .150 on in the lab's subnet).
func (l *Lab) clientSources() []netip.Addr {
	if !l.cfg.sourceHashed() {
		return nil
	}
	b := l.cfg.Subnet.Addr().As4()
	out := make([]netip.Addr, ClientSources)
	for i := range out {
		b[3] = byte(150 + i)
		out[i] = netip.AddrFrom4(b)
	}
	return out
}

// addClientSources puts clientSources on the client's eth0 (as /32: the
// /24 route stays the primary address's).
func (l *Lab) addClientSources(ns *nstest.NS) error {
	h, err := ns.OpenNetlink()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	for _, a := range l.clientSources() {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			return fmt.Errorf("client: add %s: %w", a, err)
		}
	}
	return nil
}

// nextSource counts the client's connections, to pick their source.
var nextSource atomic.Uint64

// Dial opens a connection from inside host's network namespace (a node name
// or "client"); the socket is made there, the caller's goroutine stays put.
// With a source-hashed backend the client's IPv4 connections come from its
// extra addresses in turn, so that they spread over the buckets.
func (l *Lab) Dial(ctx context.Context, host, network, addr string) (net.Conn, error) {
	ns, err := nstest.Open(l.Netns(host))
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	var c net.Conn
	err = ns.Do(func() error {
		var d net.Dialer
		if srcs := l.clientSources(); host == "client" && len(srcs) > 0 {
			if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is4() {
				d.LocalAddr = &net.TCPAddr{IP: srcs[nextSource.Add(1)%uint64(len(srcs))].AsSlice()}
			}
		}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// DB returns a database handle for the lab user on addr (a node's address or
// the VIP), dialing from the client namespace. Every query that is not
// inside a transaction may use a new connection: MaxIdleConns is 0.
func (l *Lab) DB(addr netip.Addr) *sql.DB {
	return l.db("client", addr, 5*time.Second)
}

// db dials from host; readTimeout bounds each read (0: none, for long queries).
func (l *Lab) db(from string, addr netip.Addr, readTimeout time.Duration) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = DBUser, DBPassword
	cfg.Net = "tcp"
	cfg.Addr = netip.AddrPortFrom(addr, DBPort).String()
	cfg.Timeout = 2 * time.Second
	cfg.ReadTimeout = readTimeout
	cfg.WriteTimeout = 5 * time.Second
	cfg.DialFunc = func(ctx context.Context, network, a string) (net.Conn, error) {
		return l.Dial(ctx, from, network, a)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		panic(err) // only for a config built right here
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(0)
	return db
}

// Spread is how many of a client run's connections each node answered.
type Spread struct {
	Answers map[string]int // hostname of the answering MariaDB → connections
	Errors  int            // connections that failed (refused, timed out, …)
	LastErr error
}

// Total returns the number of answered connections.
func (s Spread) Total() int {
	t := 0
	for _, n := range s.Answers {
		t += n
	}
	return t
}

// String prints "n1=10 n2=12 n3=11 errors=0".
func (s Spread) String() string {
	ks := make([]string, 0, len(s.Answers))
	for k := range s.Answers {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s=%d ", k, s.Answers[k])
	}
	fmt.Fprintf(&b, "errors=%d", s.Errors)
	return b.String()
}

// Ask opens one new connection from the client namespace to addr:3306 and
// returns the hostname of the MariaDB that answered (SELECT @@hostname; a
// node's hostname is its name, from its UTS namespace).
func (l *Lab) Ask(ctx context.Context, db *sql.DB) (string, error) {
	var host string
	err := db.QueryRowContext(ctx, "SELECT @@hostname").Scan(&host)
	return host, err
}

// Load makes n connections (bounded by n and by timeout), concurrency at a
// time, from the client namespace to addr, each asking which node answered.
func (l *Lab) Load(ctx context.Context, addr netip.Addr, n, concurrency int, timeout time.Duration) Spread {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	db := l.DB(addr)
	defer db.Close()
	db.SetMaxOpenConns(concurrency)
	type answer struct {
		host string
		err  error
	}
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	res := make(chan answer, n)
	for range concurrency {
		go func() {
			for range jobs {
				if ctx.Err() != nil {
					res <- answer{err: ctx.Err()}
					continue
				}
				h, err := l.Ask(ctx, db)
				res <- answer{h, err}
			}
		}()
	}
	s := Spread{Answers: map[string]int{}}
	for range n {
		a := <-res
		if a.err != nil {
			s.Errors++
			s.LastErr = a.err
			continue
		}
		s.Answers[a.host]++
	}
	return s
}

// Busy keeps n sessions of SELECT SLEEP on node's MariaDB (from the client,
// to the node's own address) for at most dur: Threads_running rises on that
// node only, with no CPU burnt (the nodes share the machine's CPUs). The
// returned func ends them and waits for them.
func (l *Lab) Busy(ctx context.Context, node string, n int, dur time.Duration) (stop func()) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	db := l.db("client", l.Addr(node), 0) // SLEEP outlasts the usual read timeout
	db.SetMaxIdleConns(n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r sql.NullInt64
			_ = db.QueryRowContext(ctx, fmt.Sprintf("SELECT SLEEP(%d)", int(dur/time.Second))).Scan(&r)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		db.Close()
	}
}

// Tally counts the outcome of every connection of a Watch run.
type Tally struct {
	Answers  map[string]int // hostname of the answering MariaDB → connections
	Reset    int            // connection reset by peer (ECONNRESET): what two nodes answering one bucket look like
	Refused  int            // connection refused (ECONNREFUSED)
	Timeout  int            // connect or read timed out (a node that took the SYN and went silent, or nobody)
	Other    int            // any other failure
	Examples map[string]error
	// FirstFail and LastFail are the start times of the first and the last
	// failed connection; zero when none failed.
	FirstFail, LastFail time.Time
}

// Total returns the number of connections counted.
func (t *Tally) Total() int {
	n := t.Failed()
	for _, a := range t.Answers {
		n += a
	}
	return n
}

// Failed returns the number of failed connections.
func (t *Tally) Failed() int { return t.Reset + t.Refused + t.Timeout + t.Other }

// String prints "n1=10 n2=12 ok, reset=0 refused=0 timeout=3 other=0".
func (t *Tally) String() string {
	s := Spread{Answers: t.Answers}.String()
	s = strings.TrimSuffix(s, "errors=0")
	return fmt.Sprintf("%d connections: %sreset=%d refused=%d timeout=%d other=%d", t.Total(), s, t.Reset, t.Refused, t.Timeout, t.Other)
}

func (t *Tally) add(t0 time.Time, host string, err error) {
	if err == nil {
		t.Answers[host]++
		return
	}
	if t.FirstFail.IsZero() || t0.Before(t.FirstFail) {
		t.FirstFail = t0
	}
	if t0.After(t.LastFail) {
		t.LastFail = t0
	}
	var ne net.Error
	kind := "other"
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		kind, t.Reset = "reset", t.Reset+1
	case errors.Is(err, syscall.ECONNREFUSED):
		kind, t.Refused = "refused", t.Refused+1
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		kind, t.Timeout = "timeout", t.Timeout+1
	default:
		t.Other++
	}
	if _, ok := t.Examples[kind]; !ok {
		t.Examples[kind] = err
	}
}

// Watch makes new connections from the client to addr, concurrency
// sequential loops at a time, each asking which node answered, until ctx
// ends or max connections were made; it counts how each one ended. Every
// connection is new (a TCP handshake, MariaDB's greeting and one query,
// connect and read timeouts 2 s), and a failure is classified by the
// socket's own error, not the driver's ("invalid connection" hides it).
func (l *Lab) Watch(ctx context.Context, addr netip.Addr, concurrency, max int) *Tally {
	t := &Tally{Answers: map[string]int{}, Examples: map[string]error{}}
	var mu sync.Mutex
	var left atomic.Int64
	left.Store(int64(max))
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sockErr error // the failure the current connection's socket saw
			cfg := mysql.NewConfig()
			cfg.User, cfg.Passwd = DBUser, DBPassword
			cfg.Net = "tcp"
			cfg.Addr = netip.AddrPortFrom(addr, DBPort).String()
			cfg.Timeout = 2 * time.Second
			cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 2*time.Second
			cfg.Logger = &mysql.NopLogger{} // the driver would log each failure; the Tally counts them
			cfg.DialFunc = func(ctx context.Context, network, a string) (net.Conn, error) {
				c, err := l.Dial(ctx, "client", network, a)
				if err != nil {
					sockErr = err
					return nil, err
				}
				return &errConn{Conn: c, err: &sockErr}, nil
			}
			conn, err := mysql.NewConnector(cfg)
			if err != nil {
				panic(err) // only for a config built right here
			}
			db := sql.OpenDB(conn)
			defer db.Close()
			db.SetMaxIdleConns(0)
			db.SetMaxOpenConns(1)
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				sockErr = nil
				t0 := time.Now()
				qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				h, err := l.Ask(qctx, db)
				cancel()
				if ctx.Err() != nil {
					return // the run's end, not the connection's outcome
				}
				if err != nil && sockErr != nil {
					err = fmt.Errorf("%w (socket: %w)", err, sockErr)
				}
				mu.Lock()
				t.add(t0, h, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return t
}

// errConn remembers the first error its socket returned.
type errConn struct {
	net.Conn
	err *error
}

func (c *errConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.note(err)
	return n, err
}

func (c *errConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.note(err)
	return n, err
}

func (c *errConn) note(err error) {
	if err != nil && *c.err == nil && !errors.Is(err, net.ErrClosed) {
		*c.err = err
	}
}
