package dpbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The lab's names and addresses (this package's share: netns prefix lsdb-,
// 10.202.0.0/24).
const (
	// DefaultPrefix is the lab's default network namespace name prefix.
	DefaultPrefix = "lsdb-"
	seed          = 0x5eed
	connTimeout   = 3 * time.Second // one connection, connect to reply
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
	// A second control: a VIP on the first server only, owning all its
	// buckets, reached at its cluster MAC as in the product, but with the
	// switch flooding to that server's port alone while it is measured (as
	// if the other nodes' copies cost the owner nothing, as on hardware
	// switches and separate hosts). c-vip16 minus it is what the lab's
	// software copies cost the owner's path.
	vipOwnerOnly = clusterip.VIP{Addr: netip.MustParseAddr("10.202.0.103"), Link: "eth0", Buckets: 16, Seed: seed}
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
	// ownerOnly: while it runs, the switch floods multicast only to the
	// first server's port (and the client's).
	ownerOnly bool
}

// ErrPrerequisite marks a missing prerequisite of the lab (not root, no
// namespaces, haproxy or mariadbd not installed): tests skip on it.
var ErrPrerequisite = errors.New("prerequisite missing")

type lab struct {
	prefix  string
	dir     string             // private temporary directory: run dirs, haproxy.cfg, MariaDB datadirs
	planes  []*clusterip.Plane // one per server
	servers []*nstest.NS
	client  *nstest.NS
	sw      *nstest.Switch
	dp      string // what programs the VIPs, for the report
	log     io.Writer
	undo    []func() error // run in reverse by Close
	dbUp    bool
}

// labNames are the namespaces a lab with prefix makes.
func labNames(prefix string) []string {
	names := []string{prefix + "sw", prefix + "c"}
	for _, s := range serverNames {
		names = append(names, prefix+s)
	}
	return names
}

// checkLab returns an ErrPrerequisite error naming what the lab lacks, with
// haproxy's path otherwise.
func checkLab() (haproxy string, err error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: needs root to create network namespaces", ErrPrerequisite)
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return "", fmt.Errorf("%w: kernel without network namespaces: %v", ErrPrerequisite, err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "", fmt.Errorf("%w: ip not installed (Debian package iproute2): %v", ErrPrerequisite, err)
	}
	haproxy, err = exec.LookPath("haproxy")
	if err != nil {
		return "", fmt.Errorf("%w: haproxy not installed (Debian package haproxy): %v", ErrPrerequisite, err)
	}
	return haproxy, nil
}

// newLab builds the namespace lab: three servers and a client on one switch,
// a line server in each server namespace, the 16- and 1024-bucket VIPs
// (clusterip also sets the servers' arp_announce=2), the no-flood control
// VIP, and haproxy in the first server namespace. It first removes stale
// namespaces of the same names. On error everything made so far is removed;
// otherwise Close removes it.
func newLab(ctx context.Context, prefix string, log io.Writer) (_ *lab, err error) {
	haproxy, err := checkLab()
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if log == nil {
		log = io.Discard
	}
	release, err := lockLab(ctx, prefix, log)
	if err != nil {
		return nil, err
	}
	l := &lab{prefix: prefix, log: log}
	l.defer_(release) // released last, after everything is removed
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if err := cleanStale(labNames(prefix), log); err != nil {
		return nil, err
	}
	if l.dir, err = os.MkdirTemp("", "lsdb"); err != nil {
		return nil, err
	}
	l.defer_(func() error { return os.RemoveAll(l.dir) })
	sw, err := nstest.CreateSwitch(prefix + "sw")
	if err != nil {
		return nil, err
	}
	l.sw = sw
	l.defer_(sw.NS.Close)
	if l.client, err = l.newNS(prefix + "c"); err != nil {
		return nil, err
	}
	for i, name := range serverNames {
		ns, err := l.newNS(prefix + name)
		if err != nil {
			return nil, err
		}
		// The switch port is named after the server (setFlood).
		if err := sw.AttachPort(name, ns, "eth0", nil, netip.PrefixFrom(serverAddrs[i], 24)); err != nil {
			return nil, err
		}
		var ln net.Listener
		if err := ns.Do(func() (err error) {
			ln, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", lineProto.port))
			return err
		}); err != nil {
			return nil, fmt.Errorf("%s: listen: %w", ns.Name, err)
		}
		l.defer_(func() error { ln.Close(); return nil })
		go Serve(ln, name, connTimeout)
		l.servers = append(l.servers, ns)
	}
	if err := sw.Attach(l.client, "eth0", nil, netip.PrefixFrom(clientAddr, 24)); err != nil {
		return nil, err
	}
	// Tens of thousands of short connections to one address:port: let the
	// client reuse TIME_WAIT ports and use the whole port range.
	for k, v := range map[string]string{
		"net.ipv4.tcp_tw_reuse":        "1",
		"net.ipv4.ip_local_port_range": "1024 65535",
	} {
		if err := l.client.Sysctl(k, v); err != nil {
			return nil, err
		}
	}
	if err := l.programVIPs(vip16, vip1024); err != nil {
		return nil, err
	}
	if err := l.programSolo(vipSolo, true); err != nil {
		return nil, err
	}
	if err := l.programSolo(vipOwnerOnly, false); err != nil {
		return nil, err
	}
	if err := l.startHAProxy(ctx, haproxy); err != nil {
		return nil, err
	}
	return l, nil
}

// defer_ registers f to run when the lab closes (last registered, first run).
func (l *lab) defer_(f func() error) { l.undo = append(l.undo, f) }

func (l *lab) newNS(name string) (*nstest.NS, error) {
	ns, err := nstest.Create(name)
	if err != nil {
		return nil, err
	}
	l.defer_(ns.Close)
	return ns, nil
}

// Close stops what the lab started (by pid) and removes what it made:
// VIPs, namespaces, its temporary directory. It is safe to call twice.
func (l *lab) Close() error {
	var errs []error
	for i := len(l.undo) - 1; i >= 0; i-- {
		if err := l.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	l.undo = nil
	return errors.Join(errs...)
}

func (l *lab) variants(p proto) []variant {
	svcPort, haproxyPort := p.port, p.haproxyPort
	ap := func(a netip.Addr, port int) netip.AddrPort { return netip.AddrPortFrom(a, uint16(port)) }
	var spread []netip.AddrPort
	for _, a := range serverAddrs {
		spread = append(spread, ap(a, svcPort))
	}
	return []variant{
		{"a-direct", []netip.AddrPort{ap(serverAddrs[0], svcPort)}, nil, false},
		{"b-spread", spread, nil, false},
		{"c-vip16", []netip.AddrPort{ap(vip16.Addr, svcPort)}, &vip16, false},
		{"c-vip1024", []netip.AddrPort{ap(vip1024.Addr, svcPort)}, &vip1024, false},
		{"d-haproxy", []netip.AddrPort{ap(serverAddrs[0], haproxyPort)}, nil, false},
		{"e-vip-noflood", []netip.AddrPort{ap(vipSolo.Addr, svcPort)}, nil, false},
		{"f-vip-owneronly", []netip.AddrPort{ap(vipOwnerOnly.Addr, svcPort)}, &vipOwnerOnly, true},
	}
}

// run makes n connections of v from the client namespace, workers at a
// time, bounded by a minute and by ctx.
func (l *lab) run(ctx context.Context, p proto, v variant, n, workers int) ([]Conn, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if v.ownerOnly {
		if err := l.setFlood(false); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", v.name, err)
		}
		defer l.setFlood(true)
	}
	conns, elapsed, err := Load{Dsts: v.dsts, N: n, Workers: workers, Timeout: connTimeout, Enter: l.client.Do, Exchange: p.exchange}.Run(ctx)
	if err != nil {
		return conns, elapsed, fmt.Errorf("%s: %w", v.name, err)
	}
	return conns, elapsed, nil
}

// startHAProxy runs haproxy in TCP mode, round robin over the three servers,
// in the first server namespace, killed by pid when the lab closes.
func (l *lab) startHAProxy(ctx context.Context, bin string) error {
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
	path := filepath.Join(l.dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(l.dir, "haproxy.log"))
	if err != nil {
		return err
	}
	// ip netns exec execs haproxy in place: the pid is haproxy's. -db: foreground.
	cmd := l.servers[0].Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start haproxy: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	l.defer_(func() error {
		cmd.Process.Kill()
		<-exited
		return logf.Close()
	})
	dst := netip.AddrPortFrom(serverAddrs[0], uint16(lineProto.haproxyPort))
	for range 100 {
		select {
		case err := <-exited:
			exited <- err // for the undo above
			out, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("haproxy exited: %v: %s", err, out)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		var c Conn
		if err := l.client.Do(func() error { // from the client namespace, never the root one
			c = LineExchange(ctx, dst, time.Second)
			return nil
		}); err != nil {
			return err
		}
		if c.Err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("haproxy not answering on %s after 5 s", dst)
}

// programVIPs puts the VIPs on every server through package clusterip (the
// product's nftables backend), each server owning the buckets ownerOf gives
// it, and removes them when the lab closes.
func (l *lab) programVIPs(vips ...clusterip.VIP) error {
	for i, ns := range l.servers {
		run := filepath.Join(l.dir, "run-"+serverNames[i])
		if err := os.Mkdir(run, 0o755); err != nil {
			return err
		}
		p, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendNFTables),
			clusterip.WithRunDir(run), clusterip.WithDrainGrace(0))
		if err != nil {
			return fmt.Errorf("%s: clusterip.New: %w", ns.Name, err)
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
			l.defer_(func() error {
				if err := p.Remove(v); err != nil {
					return fmt.Errorf("%s: Remove %s: %w", ns.Name, v, err)
				}
				return nil
			})
			if err := p.Own(v, owned...); err != nil {
				return fmt.Errorf("%s: Own %s %d of %d buckets: %w", ns.Name, v, len(owned), v.Buckets, err)
			}
		}
	}
	return nil
}

// programSolo puts v on the first server only, owning every bucket, and
// with pin, pins the client's neighbour entry for it to that server's own
// MAC (without, the client resolves it to the cluster MAC).
func (l *lab) programSolo(v clusterip.VIP, pin bool) error {
	all := make([]clusterip.Bucket, v.Buckets)
	for b := range all {
		all[b] = clusterip.Bucket(b)
	}
	p, ns := l.planes[0], l.servers[0]
	l.defer_(func() error {
		if err := p.Remove(v); err != nil {
			return fmt.Errorf("%s: Remove %s: %w", ns.Name, v, err)
		}
		return nil
	})
	if err := p.Own(v, all...); err != nil {
		return fmt.Errorf("%s: Own %s all %d buckets: %w", ns.Name, v, v.Buckets, err)
	}
	if !pin {
		return nil
	}
	nl, err := ns.OpenNetlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	eth, err := nl.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("%s: eth0: %w", ns.Name, err)
	}
	cnl, err := l.client.OpenNetlink()
	if err != nil {
		return err
	}
	defer cnl.Close()
	ceth, err := cnl.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("%s: eth0: %w", l.client.Name, err)
	}
	// Equivalent to: ip neigh replace VIP lladdr MAC dev eth0 nud permanent
	if err := cnl.NeighSet(&netlink.Neigh{LinkIndex: ceth.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: v.Addr.AsSlice(), HardwareAddr: eth.Attrs().HardwareAddr}); err != nil {
		return fmt.Errorf("%s: pin neighbour %s to %s: %w", l.client.Name, v.Addr, eth.Attrs().HardwareAddr, err)
	}
	return nil
}

// setFlood turns the switch's flooding of multicast frames to the second
// and third servers' ports on or off (the first server and the client
// always get them). Equivalent to:
// ip -n SW link set dev s2 type bridge_slave mcast_flood on|off (and s3)
func (l *lab) setFlood(on bool) error {
	val := byte(0)
	if on {
		val = 1
	}
	return l.sw.NS.Do(func() error {
		for _, port := range serverNames[1:] {
			lk, err := netlink.LinkByName(port)
			if err != nil {
				return fmt.Errorf("%s: port %s: %w", l.sw.NS.Name, port, err)
			}
			// vishvananda/netlink has no setter for this bridge port flag.
			req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
			msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
			msg.Index = int32(lk.Attrs().Index)
			req.AddData(msg)
			pi := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
			pi.AddRtAttr(unix.IFLA_BRPORT_MCAST_FLOOD, []byte{val})
			req.AddData(pi)
			if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
				return fmt.Errorf("%s: port %s mcast_flood %v: %w", l.sw.NS.Name, port, on, err)
			}
		}
		return nil
	})
}
