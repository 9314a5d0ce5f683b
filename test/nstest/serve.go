package nstest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ServeName listens on [::]:port inside ns until t ends; every connection
// gets the line "NAME\n" at once, then one more per line it sends, until
// EOF: a client sees which node answered it, and a long-lived one whether
// it still talks to the same node.
func ServeName(t testing.TB, ns *NS, port int, name string) {
	t.Helper()
	Serve(t, ns, port, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(60 * time.Second))
		r := bufio.NewReader(c)
		for {
			if _, err := io.WriteString(c, name+"\n"); err != nil {
				return
			}
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	})
}

// Serve listens on [::]:port inside ns until t ends and runs handle on
// each connection in a goroutine of its own; the connection is closed when
// handle returns, and every one still open is closed when t ends.
func Serve(t testing.TB, ns *NS, port int, handle func(net.Conn)) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	}); err != nil {
		t.Fatalf("%s: listen: %v", ns.Name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c)
			}()
		}
	}()
}

// Dial connects from src (an address of ns; SO_REUSEADDR, so a test may
// reuse a port) to dst.
func Dial(ns *NS, src, dst netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout, LocalAddr: net.TCPAddrFromAddrPort(src),
			Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
				return serr
			}}
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	return c, err
}

// Ask connects from src to dst (a ServeName listener), reads the greeting
// and closes: which node answered ("" and an error when none did).
func Ask(ns *NS, src, dst netip.AddrPort) (string, error) {
	c, err := Dial(ns, src, dst, 1500*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return ReadName(c)
}

// ReadName reads one answer line of a ServeName connection.
func ReadName(c net.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
