package dpbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Serve answers every connection accepted on ln with one line, "NAME PEER\n"
// (PEER: the address the server saw the connection come from), after reading
// one request line. It returns when ln is closed. Each connection is bounded
// by timeout.
func Serve(ln net.Listener, name string, timeout time.Duration) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNABORTED: the next Accept may work
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(timeout))
			if _, err := readLine(c, make([]byte, 0, 64)); err != nil {
				return
			}
			c.Write([]byte(name + " " + c.RemoteAddr().String() + "\n"))
		}()
	}
}

// readLine reads from c into buf until a newline (excluded from the result).
func readLine(c net.Conn, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			return buf, errors.New("line too long")
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return buf[:i], nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Conn is the record of one client connection.
type Conn struct {
	Dst     netip.AddrPort
	Local   netip.AddrPort // the client's address and port
	Server  string         // which server answered (name in the reply, or "s"+server_id)
	Peer    string         // address the server saw the connection come from
	Connect time.Duration  // dial start .. connection established
	Request time.Duration  // dial start .. reply read
	Err     error
}

// Load is one bounded load run: N connections, Workers at a time, the i-th
// connection to Dsts[i % len(Dsts)], each bounded by Timeout, all by the
// context. Each connection is one Exchange: connect, one request, the
// reply, close.
type Load struct {
	Dsts    []netip.AddrPort
	N       int
	Workers int
	Timeout time.Duration
	// Enter runs f with the calling thread in the client's network namespace
	// (nstest.NS.Do); sockets f creates live there.
	Enter func(f func() error) error
	// Exchange makes one connection to dst on the calling thread; nil means
	// LineExchange (one line out, one line back).
	Exchange func(ctx context.Context, dst netip.AddrPort, timeout time.Duration) Conn
}

// Run makes the connections and returns them in order with the wall time
// the whole run took.
func (l Load) Run(ctx context.Context) ([]Conn, time.Duration, error) {
	if len(l.Dsts) == 0 || l.N <= 0 || l.Workers <= 0 {
		return nil, 0, fmt.Errorf("load: dsts=%d n=%d workers=%d: all must be positive", len(l.Dsts), l.N, l.Workers)
	}
	if l.Enter == nil {
		return nil, 0, fmt.Errorf("load: Enter is nil: refusing to dial from the caller's namespace")
	}
	conns := make([]Conn, l.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, l.Workers)
	start := time.Now()
	for w := range l.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exchange := l.Exchange
			if exchange == nil {
				exchange = LineExchange
			}
			errs[w] = l.Enter(func() error {
				for ctx.Err() == nil {
					i := int(next.Add(1)) - 1
					if i >= l.N {
						return nil
					}
					conns[i] = exchange(ctx, l.Dsts[i%len(l.Dsts)], l.Timeout)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return conns, elapsed, err
	}
	if err := ctx.Err(); err != nil {
		return conns, elapsed, fmt.Errorf("load to %v stopped after %v: %w", l.Dsts, elapsed, err)
	}
	return conns, elapsed, nil
}

var request = []byte("who\n")

// LineExchange makes one connection to a Serve server on the calling
// thread: connect, send one line, read the reply line, close.
func LineExchange(ctx context.Context, dst netip.AddrPort, timeout time.Duration) Conn {
	r := Conn{Dst: dst}
	d := net.Dialer{Timeout: timeout}
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", dst.String())
	r.Connect = time.Since(start)
	if err != nil {
		r.Err = err
		return r
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		r.Local = a.AddrPort()
	}
	c.SetDeadline(start.Add(timeout))
	if _, err := c.Write(request); err != nil {
		r.Err = fmt.Errorf("write to %s: %w", dst, err)
		return r
	}
	line, err := readLine(c, make([]byte, 0, 128))
	r.Request = time.Since(start)
	if err != nil {
		r.Err = fmt.Errorf("read from %s: %w", dst, err)
		return r
	}
	name, peer, _ := bytes.Cut(line, []byte(" "))
	r.Server, r.Peer = string(name), string(peer)
	return r
}
