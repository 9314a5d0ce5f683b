package lab

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/loadshare/loadshare/test/nstest"
)

// DialClient opens a connection from inside the client namespace (the socket
// is created there; the caller's goroutine stays where it was).
func (l *Lab) DialClient(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.Dial(ctx, "client", network, addr)
}

// Dial opens a connection from inside host's network namespace (a node name
// or "client"); the socket is made there, the caller's goroutine stays put.
func (l *Lab) Dial(ctx context.Context, host, network, addr string) (net.Conn, error) {
	ns, err := nstest.Open(l.Netns(host))
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	var c net.Conn
	err = ns.Do(func() error {
		var d net.Dialer
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
