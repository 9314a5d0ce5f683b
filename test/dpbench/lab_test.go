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

	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
)

// The lab's names and addresses (this package's share: netns prefix lsdb-,
// 10.202.0.0/24).
const (
	svcPort     = 8080 // the small server, in every server namespace
	haproxyPort = 8081 // haproxy, in the first server namespace
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
	vip16   = vipConf{Addr: netip.MustParseAddr("10.202.0.100"), Buckets: 16}
	vip1024 = vipConf{Addr: netip.MustParseAddr("10.202.0.101"), Buckets: 1024}
)

type vipConf struct {
	Addr    netip.Addr
	Buckets uint16
}

// ownerOf is the lab's even spread: bucket b belongs to server b mod 3.
func ownerOf(b int) int { return b % len(serverNames) }

// variant is one way of reaching the servers.
type variant struct {
	name string
	dsts []netip.AddrPort
}

type lab struct {
	servers []*nstest.NS
	client  *nstest.NS
	dp      string // what programs the VIPs, for the report
}

// newLab builds the namespace lab: three servers and a client on one switch,
// a small server in each server namespace, the two VIPs, and haproxy in the
// first server namespace. It skips when not root or haproxy is missing.
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
		// Without arp_announce=2 a server's own ARP requests would carry the
		// VIP as sender and re-point the client at that server's MAC.
		for _, k := range []string{"net.ipv4.conf.all.arp_announce", "net.ipv4.conf.eth0.arp_announce"} {
			if err := ns.Sysctl(k, "2"); err != nil {
				tb.Fatalf("%s: sysctl %s=2: %v", ns.Name, k, err)
			}
		}
		var ln net.Listener
		if err := ns.Do(func() (err error) {
			ln, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", svcPort))
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
	l.startHAProxy(tb, haproxy)
	return l
}

func (l *lab) variants() []variant {
	ap := func(a netip.Addr, port int) netip.AddrPort { return netip.AddrPortFrom(a, uint16(port)) }
	var spread []netip.AddrPort
	for _, a := range serverAddrs {
		spread = append(spread, ap(a, svcPort))
	}
	return []variant{
		{"a-direct", []netip.AddrPort{ap(serverAddrs[0], svcPort)}},
		{"b-spread", spread},
		{"c-vip16", []netip.AddrPort{ap(vip16.Addr, svcPort)}},
		{"c-vip1024", []netip.AddrPort{ap(vip1024.Addr, svcPort)}},
		{"d-haproxy", []netip.AddrPort{ap(serverAddrs[0], haproxyPort)}},
	}
}

// run makes n connections of v from the client namespace, 4 at a time,
// bounded by a minute.
func (l *lab) run(tb testing.TB, v variant, n int) ([]Conn, time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conns, elapsed, err := Load{Dsts: v.dsts, N: n, Workers: 4, Timeout: connTimeout, Enter: l.client.Do}.Run(ctx)
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
listen lb
	bind %s:%d
	balance roundrobin
`, serverAddrs[0], haproxyPort)
	for i, a := range serverAddrs {
		fmt.Fprintf(&cfg, "\tserver %s %s:%d\n", serverNames[i], a, svcPort)
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
	dst := netip.AddrPortFrom(serverAddrs[0], haproxyPort)
	for range 100 {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logf.Name())
			tb.Fatalf("haproxy exited: %v: %s", err, out)
		default:
		}
		var c Conn
		if err := l.client.Do(func() error { // from the client namespace, never the root one
			c = once(context.Background(), dst, time.Second, make([]byte, 0, 128))
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

// programVIPs puts the VIPs on every server, each server owning the buckets
// ownerOf gives it.
//
// TEMPORARY: the reference ruleset (vip-stateful.nft + arp-mcast.nft) loaded
// with nft -f, until package clusterip's API lands.
func (l *lab) programVIPs(tb testing.TB, vips ...vipConf) {
	tb.Helper()
	l.dp = "reference nft ruleset (nft -f), not clusterip"
	for i, ns := range l.servers {
		nl := ns.Netlink(tb)
		eth, err := nl.LinkByName("eth0")
		if err != nil {
			tb.Fatal(err)
		}
		var daddrs, arp []string
		var tables strings.Builder
		for _, v := range vips {
			if err := nl.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: v.Addr.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
				tb.Fatalf("%s: add %s: %v", ns.Name, v.Addr, err)
			}
			daddrs = append(daddrs, v.Addr.String())
			a := v.Addr.As4()
			arp = append(arp, fmt.Sprintf("arp saddr ip %s arp saddr ether set 01:00:5e:%02x:%02x:%02x", v.Addr, a[1]&0x7f, a[2], a[3]))
			var owned []string
			for b := range int(v.Buckets) {
				if ownerOf(b) == i {
					owned = append(owned, fmt.Sprint(b))
				}
			}
			hash := fmt.Sprintf("jhash ip saddr . tcp sport mod %d seed %#x", v.Buckets, seed)
			fmt.Fprintf(&tables, `table ip lsdb_vip_%[1]d {
	set owned { typeof %[2]s; elements = { %[3]s } }
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		ip daddr %[4]s jump svc
	}
	chain svc {
		ct state established,related accept
		tcp flags & (fin|syn|rst|ack) == syn %[2]s @owned accept
		drop
	}
}
`, a[3], hash, strings.Join(owned, ", "), v.Addr)
		}
		rules := fmt.Sprintf(`table netdev lsdb_vip {
	chain in {
		type filter hook ingress device "eth0" priority -500; policy accept;
		ip daddr { %s } meta pkttype set host
	}
}
table arp lsdb_vipmac {
	chain out {
		type filter hook output priority 0;
		%s
	}
}
%s`, strings.Join(daddrs, ", "), strings.Join(arp, "\n\t\t"), tables.String())
		cmd := ns.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("%s: nft -f: %v: %s\n%s", ns.Name, err, out, rules)
		}
	}
}
