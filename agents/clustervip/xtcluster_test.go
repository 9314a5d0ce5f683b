package clustervip

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/footprint"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestClusterVIPXTCluster drives the agent with backend=xtcluster through
// its OCF interface on three servers and a client on one switch, all in
// namespaces: 6 buckets as primitives started s1 {0,1,2}, s2 {3,4}, s3
// {5}; each of 150 client addresses is answered by its bucket's owner; a
// long-lived connection stays with s1 while its bucket moves to s2 (stop,
// start), and new connections of the bucket go to s2; the stop of every
// bucket leaves each node as before, by the independent reader.
func TestClusterVIPXTCluster(t *testing.T) {
	nstest.SkipShort(t, "namespace lab")
	for _, tool := range []string{"iptables-restore", "arptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages iptables, arptables)", tool)
		}
	}
	const ip, port, n = "10.206.0.100", 9000, 6
	v := clusterip.VIP{Addr: netip.MustParseAddr(ip), Buckets: n, Seed: 4242, Hash: clusterip.HashSourceIP}
	path := agenttest.Path(t, "clustervip")
	sw := nstest.NewSwitch(t, "lsax-sw")
	owners := [][]int{{0, 1, 2}, {3, 4}, {5}}
	var servers []*nstest.NS
	for i := range owners {
		name := fmt.Sprintf("s%d", i+1)
		ns := nstest.New(t, "lsax-"+name)
		sw.Plug(t, ns, "eth0", net.HardwareAddr{2, 0, 0, 0, 6, byte(i + 1)}, netip.MustParsePrefix(fmt.Sprintf("10.206.0.%d/16", 11+i)))
		// iptables-nft and arptables-nft make their tables on first use
		// and keep them: iptables', not the VIP's.
		for _, c := range [][]string{{"iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "lo", "-j", "ACCEPT"},
			{"iptables", "-t", "mangle", "-D", "PREROUTING", "-i", "lo", "-j", "ACCEPT"},
			{"arptables", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"}, {"arptables", "-D", "OUTPUT", "-o", "lo", "-j", "ACCEPT"}} {
			if out, err := ns.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %v\n%s", name, c, err, out)
			}
		}
		nstest.ServeName(t, ns, port, name)
		servers = append(servers, ns)
	}
	footprintOf := func(ns *nstest.NS) footprint.Footprint {
		f := footprint.Namespace(t, ns, clusterip.DefaultRunDir)
		var st unix.Stat_t
		if err := unix.Fstat(int(ns.Handle), &st); err != nil {
			t.Fatal(err)
		}
		mine := []string{"loadshare-10_206_0_100.", fmt.Sprintf("sysctl.ns%d.", st.Ino)}
		f.Files = slices.DeleteFunc(f.Files, func(s string) bool {
			return !strings.HasPrefix(s, mine[0]) && !strings.HasPrefix(s, mine[1])
		})
		return f
	}
	var before []footprint.Footprint
	for _, ns := range servers {
		before = append(before, footprintOf(ns))
	}
	env := func(b int) map[string]string {
		return primEnv(ip, "OCF_RESOURCE_INSTANCE", "vip_"+strconv.Itoa(b), "OCF_RESKEY_bucket", strconv.Itoa(b),
			"OCF_RESKEY_buckets", strconv.Itoa(n), "OCF_RESKEY_backend", "xtcluster", "OCF_RESKEY_hash", "sourceip",
			"OCF_RESKEY_hash_seed", "4242", "OCF_RESKEY_nic", "eth0")
	}
	action := func(s int, action string, b int, want ocf.ExitCode) {
		t.Helper()
		r := agenttest.Run(t, servers[s], path, action, env(b))
		if r.Code != int(want) {
			t.Fatalf("s%d: %s of bucket %d: exit %d, want %d\n%s", s+1, action, b, r.Code, want, r.Stderr)
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			for s, bs := range owners {
				for _, b := range bs {
					agenttest.Run(t, servers[s], path, "stop", env(b))
				}
			}
		}
	})
	for s, bs := range owners {
		for _, b := range bs {
			action(s, "start", b, ocf.ExitSuccess)
		}
	}
	for s, bs := range owners {
		for b := range n {
			want := ocf.ExitNotRunning
			if slices.Contains(bs, b) {
				want = ocf.ExitSuccess
			}
			action(s, "monitor", b, want)
		}
	}
	// No nftables object of the VIP on any node.
	for s, ns := range servers {
		if out, err := ns.Command("nft", "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), "loadshare-") {
			t.Errorf("s%d: nft list tables: %v\n%s", s+1, err, out)
		}
	}

	client := nstest.New(t, "lsax-c")
	sw.Plug(t, client, "eth0", net.HardwareAddr{2, 0, 0, 0, 6, 0x50}, netip.MustParsePrefix("10.206.0.50/16"))
	nl := client.Netlink(t)
	link, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	owner := func(b clusterip.Bucket) string {
		for s, bs := range owners {
			if slices.Contains(bs, int(b)) {
				return fmt.Sprintf("s%d", s+1)
			}
		}
		return ""
	}
	dst := netip.AddrPortFrom(v.Addr, port)
	byBucket := map[clusterip.Bucket][]netip.Addr{}
	got := map[string]int{}
	const clients = 150
	for i := range clients {
		a := netip.AddrFrom4([4]byte{10, 206, 4, byte(i + 1)})
		if err := nl.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
		b := v.BucketOf(netip.AddrPortFrom(a, 0))
		byBucket[b] = append(byBucket[b], a)
		who, err := nstest.Ask(client, netip.AddrPortFrom(a, 30000), dst)
		if err != nil || who != owner(b) {
			t.Fatalf("connection from %s (bucket %d): answered by %q (%v), want %s", a, b, who, err, owner(b))
		}
		got[who]++
	}
	for s, bs := range owners {
		name := fmt.Sprintf("s%d", s+1)
		if got[name] == 0 {
			t.Errorf("%s (buckets %v) answered none of %d clients", name, bs, clients)
		}
	}
	t.Logf("%d client addresses, each answered by its bucket's owner: %v", clients, got)

	// Bucket 0 moves s1 → s2 under a long-lived connection.
	in0 := byBucket[0]
	if len(in0) < 2 {
		t.Fatalf("only %d client addresses in bucket 0", len(in0))
	}
	ll, err := nstest.Dial(client, netip.AddrPortFrom(in0[0], 40000), dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	if who, err := nstest.ReadName(ll); err != nil || who != "s1" {
		t.Fatalf("long-lived connection in bucket 0: answered by %q (%v), want s1", who, err)
	}
	action(0, "stop", 0, ocf.ExitSuccess)
	action(1, "start", 0, ocf.ExitSuccess)
	owners = [][]int{{1, 2}, {0, 3, 4}, {5}}
	action(0, "monitor", 0, ocf.ExitNotRunning)
	action(1, "monitor", 0, ocf.ExitSuccess)
	if who, err := nstest.Ask(client, netip.AddrPortFrom(in0[1], 40000), dst); err != nil || who != "s2" {
		t.Errorf("new connection in bucket 0 after the move: answered by %q (%v), want s2", who, err)
	}
	for i := range 3 {
		if _, err := io.WriteString(ll, "ping\n"); err != nil {
			t.Fatalf("long-lived connection after the move: %v", err)
		}
		if who, err := nstest.ReadName(ll); err != nil || who != "s1" {
			t.Fatalf("long-lived connection after the move, message %d: answered by %q (%v), want s1", i, who, err)
		}
	}
	ll.Close()

	for s, bs := range owners {
		for _, b := range bs {
			action(s, "stop", b, ocf.ExitSuccess)
		}
	}
	stopped = true
	for s, ns := range servers {
		if d := before[s].Diff(footprintOf(ns)); d != "" {
			t.Errorf("s%d after every stop: the node differs from before the first start (-before +after):\n%s", s+1, d)
		}
	}
}
