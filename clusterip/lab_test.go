package clusterip

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/nstest"
	"golang.org/x/sys/unix"
)

// lab is three servers and a client on one switch, all in namespaces.
type lab struct {
	sw      *nstest.Switch
	servers []*nstest.NS
	client  *nstest.NS
	planes  []*Plane
	names   []string
}

const (
	labPort   = 9000
	labClient = "10.201.0.50"
)

var (
	vip4 = netip.MustParseAddr("10.201.0.100")
	vip6 = netip.MustParseAddr("fd00:201::100")
	cli6 = netip.MustParseAddr("fd00:201::50")
)

// newLab builds the namespaces (prefix lsdp-, tag keeps tests apart) and
// starts a server in each server namespace answering its name.
func newLab(t *testing.T, tag string, be Backend) *lab {
	t.Helper()
	if testing.Short() {
		t.Skip("namespace lab test (-short)")
	}
	nstest.SkipUnlessRoot(t)
	l := &lab{sw: nstest.NewSwitch(t, "lsdp-"+tag+"sw")}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("lsdp-%ss%d", tag, i)
		ns := nstest.New(t, name)
		l.sw.Plug(t, ns, "eth0", net.HardwareAddr{2, 0, 0, 0, 1, byte(i)},
			netip.MustParsePrefix(fmt.Sprintf("10.201.0.%d/16", 10+i)),
			netip.MustParsePrefix(fmt.Sprintf("fd00:201::%d/64", 10+i)))
		l.servers = append(l.servers, ns)
		l.names = append(l.names, fmt.Sprintf("s%d", i))
		p, err := New(WithNetNS(int(ns.Handle)), WithBackend(be), WithRunDir(t.TempDir()), WithDrainGrace(2*time.Second))
		if err != nil {
			t.Fatalf("New in %s: %v", name, err)
		}
		l.planes = append(l.planes, p)
		serve(t, ns, fmt.Sprintf("s%d", i))
	}
	l.client = nstest.New(t, "lsdp-"+tag+"c")
	l.sw.Plug(t, l.client, "eth0", net.HardwareAddr{2, 0, 0, 0, 1, 0x50},
		netip.MustParsePrefix(labClient+"/16"), netip.MustParsePrefix(cli6.String()+"/64"))
	return l
}

// serve listens on [::]:labPort inside ns; each connection gets lines
// "NAME\n" — one right away, then one per line received — until EOF.
func serve(t *testing.T, ns *nstest.NS, name string) {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", labPort))
		return err
	})
	if err != nil {
		t.Fatalf("%s: listen: %v", ns.Name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close() // connections cut off by a test (address gone) would wait for their deadline
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
				c.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := io.WriteString(c, name+"\n"); err != nil {
					return
				}
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := io.WriteString(c, name+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// dialFrom connects from src (in the client namespace) to dst and returns
// the connection.
func (l *lab) dialFrom(src, dst netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := l.client.Do(func() (err error) {
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

// ask connects from src to dst, reads the greeting and closes: which server
// answered ("" and an error when none did).
func (l *lab) ask(src, dst netip.AddrPort) (string, error) {
	c, err := l.dialFrom(src, dst, 1500*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// nftJSON lists the ruleset of ns with the independent reader (nft -j;
// plain `nft list` crashes on typeof-jhash sets in nft 1.0.6).
func nftJSON(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed: cannot check the ruleset independently")
	}
	out, err := ns.Command("nft", "-j", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: nft -j list ruleset: %v\n%s", ns.Name, err, out)
	}
	return string(out)
}
