package dpbench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/mariadbtest"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
)

// The lab's names and addresses (this package's share: netns prefix lsdb-,
// 10.202.0.0/24).
const (
	seed        = 0x5eed
	connTimeout = 3 * time.Second // one connection, connect to reply
)

var (
	serverNames = []string{"s1", "s2", "s3"}
	serverAddrs = []netip.Addr{
		netip.MustParseAddr("10.202.0.11"),
		netip.MustParseAddr("10.202.0.12"),
		netip.MustParseAddr("10.202.0.13"),
	}
	clientAddr = netip.MustParseAddr("10.202.0.50")
	// Two VIPs side by side, so that 16 and 1024 buckets interleave without
	// reprogramming between rounds.
	vip16   = clusterip.VIP{Addr: netip.MustParseAddr("10.202.0.100"), Link: "eth0", Buckets: 16, Seed: seed}
	vip1024 = clusterip.VIP{Addr: netip.MustParseAddr("10.202.0.101"), Link: "eth0", Buckets: 1024, Seed: seed}
	// A control, not the product's setup: a VIP on the first server only,
	// owning all its buckets, which the client reaches at that server's own
	// MAC (a permanent neighbour entry), so its frames are not flooded. It
	// costs the bucket rules alone; c-vip16 minus it is the flooding.
	vipSolo = clusterip.VIP{Addr: netip.MustParseAddr("10.202.0.102"), Link: "eth0", Buckets: 16, Seed: seed}
)

// proto is what the client speaks to the servers.
type proto struct {
	name        string
	port        int // the servers' port
	haproxyPort int // haproxy's port in front of them
	exchange    func(ctx context.Context, dst netip.AddrPort, timeout time.Duration) Conn
	peerPort    bool // Conn.Peer holds the port too (MariaDB's USER() has the host only)
}

// lineProto is the small line server each server namespace runs.
var lineProto = proto{name: "line", port: 8080, haproxyPort: 8081, exchange: LineExchange, peerPort: true}

// mariadbPorts are MariaDB's and haproxy's ports in front of it.
var mariadbPorts = proto{name: "mariadb", port: 3306, haproxyPort: 3307}

// mariadbProto logs in to MariaDB and runs SELECT 1 (startDB first).
func (l *lab) mariadbProto() proto {
	p := mariadbPorts
	p.exchange = MySQLExchange(dbUser, dbPassword, l.client.Do)
	return p
}

const dbUser, dbPassword = "bench", "bench"

// ownerOf is the lab's even spread: bucket b belongs to server b mod 3.
func ownerOf(b int) int { return b % len(serverNames) }

// variant is one way of reaching the servers.
type variant struct {
	name string
	dsts []netip.AddrPort
	vip  *clusterip.VIP // the VIP variants' VIP, to predict each connection's server
}

type lab struct {
	planes  []*clusterip.Plane // one per server
	servers []*nstest.NS
	client  *nstest.NS
	dp      string // what programs the VIPs, for the report
}

// newLab builds the namespace lab: three servers and a client on one switch,
// a line server in each server namespace, the 16- and 1024-bucket VIPs
// (clusterip also sets the servers' arp_announce=2), the no-flood control
// VIP, and haproxy in the first server namespace. It skips when not root or
// haproxy is missing.
func newLab(tb testing.TB) *lab {
	tb.Helper()
	nstest.SkipUnlessRoot(tb)
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		tb.Skipf("haproxy not installed (Debian package haproxy): %v", err)
	}
	sw := nstest.NewSwitch(tb, "lsdb-sw")
	l := &lab{client: nstest.New(tb, "lsdb-c")}
	for i, name := range serverNames {
		ns := nstest.New(tb, "lsdb-"+name)
		sw.Plug(tb, ns, "eth0", nil, netip.PrefixFrom(serverAddrs[i], 24))
		var ln net.Listener
		if err := ns.Do(func() (err error) {
			ln, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", lineProto.port))
			return err
		}); err != nil {
			tb.Fatalf("%s: listen: %v", ns.Name, err)
		}
		tb.Cleanup(func() { ln.Close() })
		go Serve(ln, name, connTimeout)
		l.servers = append(l.servers, ns)
	}
	sw.Plug(tb, l.client, "eth0", nil, netip.PrefixFrom(clientAddr, 24))
	// Tens of thousands of short connections to one address:port: let the
	// client reuse TIME_WAIT ports and use the whole port range.
	for k, v := range map[string]string{
		"net.ipv4.tcp_tw_reuse":        "1",
		"net.ipv4.ip_local_port_range": "1024 65535",
	} {
		if err := l.client.Sysctl(k, v); err != nil {
			tb.Fatalf("%s: sysctl %s=%s: %v", l.client.Name, k, v, err)
		}
	}
	l.programVIPs(tb, vip16, vip1024)
	l.programSolo(tb, vipSolo)
	l.startHAProxy(tb, haproxy)
	return l
}

func (l *lab) variants(p proto) []variant {
	svcPort, haproxyPort := p.port, p.haproxyPort
	ap := func(a netip.Addr, port int) netip.AddrPort { return netip.AddrPortFrom(a, uint16(port)) }
	var spread []netip.AddrPort
	for _, a := range serverAddrs {
		spread = append(spread, ap(a, svcPort))
	}
	return []variant{
		{"a-direct", []netip.AddrPort{ap(serverAddrs[0], svcPort)}, nil},
		{"b-spread", spread, nil},
		{"c-vip16", []netip.AddrPort{ap(vip16.Addr, svcPort)}, &vip16},
		{"c-vip1024", []netip.AddrPort{ap(vip1024.Addr, svcPort)}, &vip1024},
		{"d-haproxy", []netip.AddrPort{ap(serverAddrs[0], haproxyPort)}, nil},
		{"e-vip-noflood", []netip.AddrPort{ap(vipSolo.Addr, svcPort)}, nil},
	}
}

// run makes n connections of v from the client namespace, 4 at a time,
// bounded by a minute.
func (l *lab) run(tb testing.TB, p proto, v variant, n int) ([]Conn, time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conns, elapsed, err := Load{Dsts: v.dsts, N: n, Workers: 4, Timeout: connTimeout, Enter: l.client.Do, Exchange: p.exchange}.Run(ctx)
	if err != nil {
		tb.Fatalf("%s: %v", v.name, err)
	}
	return conns, elapsed
}

// startHAProxy runs haproxy in TCP mode, round robin over the three servers,
// in the first server namespace, killed by pid when tb ends.
func (l *lab) startHAProxy(tb testing.TB, bin string) {
	tb.Helper()
	dir := tb.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
	maxconn 4000
defaults
	mode tcp
	timeout connect 3s
	timeout client 5s
	timeout server 5s
`)
	// No health checks: they would add connections of their own.
	for _, p := range []proto{lineProto, mariadbPorts} {
		fmt.Fprintf(&cfg, "listen %s\n\tbind %s:%d\n\tbalance roundrobin\n", p.name, serverAddrs[0], p.haproxyPort)
		for i, a := range serverAddrs {
			fmt.Fprintf(&cfg, "\tserver %s %s:%d\n", serverNames[i], a, p.port)
		}
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		tb.Fatal(err)
	}
	// ip netns exec execs haproxy in place: the pid is haproxy's. -db: foreground.
	cmd := l.servers[0].Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	dst := netip.AddrPortFrom(serverAddrs[0], uint16(lineProto.haproxyPort))
	for range 100 {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logf.Name())
			tb.Fatalf("haproxy exited: %v: %s", err, out)
		default:
		}
		var c Conn
		if err := l.client.Do(func() error { // from the client namespace, never the root one
			c = LineExchange(context.Background(), dst, time.Second)
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		if c.Err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("haproxy not answering on %s after 5 s", dst)
}

// programVIPs puts the VIPs on every server through package clusterip (the
// product's nftables backend), each server owning the buckets ownerOf gives
// it, and removes them when tb ends.
func (l *lab) programVIPs(tb testing.TB, vips ...clusterip.VIP) {
	tb.Helper()
	for i, ns := range l.servers {
		p, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendNFTables),
			clusterip.WithRunDir(tb.TempDir()), clusterip.WithDrainGrace(0))
		if err != nil {
			tb.Fatalf("%s: clusterip.New: %v", ns.Name, err)
		}
		l.dp = "clusterip " + p.Backend().String()
		l.planes = append(l.planes, p)
		for _, v := range vips {
			var owned []clusterip.Bucket
			for b := range int(v.Buckets) {
				if ownerOf(b) == i {
					owned = append(owned, clusterip.Bucket(b))
				}
			}
			tb.Cleanup(func() {
				if err := p.Remove(v); err != nil {
					tb.Errorf("%s: Remove %s: %v", ns.Name, v, err)
				}
			})
			if err := p.Own(v, owned...); err != nil {
				tb.Fatalf("%s: Own %s %d of %d buckets: %v", ns.Name, v, len(owned), v.Buckets, err)
			}
		}
	}
}

// programSolo puts v on the first server only, owning every bucket, and
// pins the client's neighbour entry for it to that server's own MAC.
func (l *lab) programSolo(tb testing.TB, v clusterip.VIP) {
	tb.Helper()
	all := make([]clusterip.Bucket, v.Buckets)
	for b := range all {
		all[b] = clusterip.Bucket(b)
	}
	p, ns := l.planes[0], l.servers[0]
	tb.Cleanup(func() {
		if err := p.Remove(v); err != nil {
			tb.Errorf("%s: Remove %s: %v", ns.Name, v, err)
		}
	})
	if err := p.Own(v, all...); err != nil {
		tb.Fatalf("%s: Own %s all %d buckets: %v", ns.Name, v, v.Buckets, err)
	}
	eth, err := ns.Netlink(tb).LinkByName("eth0")
	if err != nil {
		tb.Fatal(err)
	}
	cnl := l.client.Netlink(tb)
	ceth, err := cnl.LinkByName("eth0")
	if err != nil {
		tb.Fatal(err)
	}
	// Equivalent to: ip neigh replace VIP lladdr MAC dev eth0 nud permanent
	if err := cnl.NeighSet(&netlink.Neigh{LinkIndex: ceth.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: v.Addr.AsSlice(), HardwareAddr: eth.Attrs().HardwareAddr}); err != nil {
		tb.Fatalf("%s: pin neighbour %s to %s: %v", l.client.Name, v.Addr, eth.Attrs().HardwareAddr, err)
	}
}

// startDB starts a private MariaDB in every server namespace (server_id
// i+1, port 3306 on every address, the VIPs included) with a user for the
// client; they stop when tb ends. It skips without mariadbd.
func (l *lab) startDB(tb testing.TB) {
	tb.Helper()
	// A private TMPDIR for mariadb-install-db and mariadbd (both default
	// their tmpdir to it): temporary tables in the shared /tmp were seen to
	// vanish while other suites ran MariaDB ("Error on delete of
	// '/tmp/#sql-temptable-…'"), and mariadbtest has no tmpdir option.
	tmp, err := os.MkdirTemp("", "lsdb")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(tmp) })
	tb.Setenv("TMPDIR", tmp)
	for i, ns := range l.servers {
		db := mariadbtest.Start(tb, mariadbtest.Options{TCP: true, Bind: "0.0.0.0", Port: mariadbPorts.port,
			ServerID: i + 1, Command: ns.Command,
			// 4 client workers; keep the threads for reuse, as a busy server would.
			Args: []string{"--thread-cache-size=16"}})
		db.CreateUser(tb, dbUser, dbPassword)
	}
}
