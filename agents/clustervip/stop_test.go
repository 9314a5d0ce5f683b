package clustervip

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/footprint"
	"github.com/loadshare/loadshare/test/nstest"
	"golang.org/x/sys/unix"
)

// nodeFootprint reads the node namespace with the independent tools:
// ruleset, addresses, multicast memberships, fdb self entries,
// arp_announce and the agents' run directory (the files of VIP ip).
func nodeFootprint(t *testing.T, ns *nstest.NS, ip string) footprint.Footprint {
	t.Helper()
	f := footprint.Namespace(t, ns, clusterip.DefaultRunDir)
	// The run directory is the host's, shared with other tests' agents:
	// keep the files of this test's VIP and namespace.
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Handle), &st); err != nil {
		t.Fatal(err)
	}
	mine := []string{"loadshare-" + strings.NewReplacer(".", "_", ":", "_").Replace(ip) + ".", fmt.Sprintf("sysctl.ns%d.", st.Ino)}
	f.Files = slices.DeleteFunc(f.Files, func(n string) bool {
		return !strings.HasPrefix(n, mine[0]) && !strings.HasPrefix(n, mine[1])
	})
	return f
}

// TestClusterVIPStopLeavesNothing: through the OCF interface, 32 buckets
// of a VIP started at once on a node, one of them failed (its address
// deleted behind the agent's back: monitor 7, stop, start again, as
// Pacemaker recovers it), then all 32 stopped at once: the node's
// namespace is as before the first start, by the independent reader. The
// same for one bucket whose rules were flushed before its stop, and for
// the stop of a bucket that never started.
func TestClusterVIPStopLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 66 agent processes")
	}
	ns := agenttest.NodeNS(t, "lsag-stop")
	path := agenttest.Path(t, "clustervip")
	const ip, n = "10.203.0.106", 32
	before := nodeFootprint(t, ns, ip)
	leftover := func(step string) {
		t.Helper()
		if d := before.Diff(nodeFootprint(t, ns, ip)); d != "" {
			t.Errorf("%s: the node differs from before the first start (-before +after):\n%s", step, d)
		}
	}

	runMany(t, ns, path, "start", ip, n)
	up := nodeFootprint(t, ns, ip)
	name := "loadshare-10_203_0_106"
	if got := up.Only(name, ip+"/"); len(got.NFT) < 10 || len(got.Addrs) != 1 || len(got.Files) == 0 {
		t.Fatalf("after 32 starts the reader sees %d nftables objects, addresses %v, files %v of the VIP; want its tables, one address, run files",
			len(got.NFT), got.Addrs, got.Files)
	}
	mac := clusterip.DeriveMAC(netip.MustParseAddr(ip), clusterip.MACMulticast).String()
	if got := up.Only(mac); len(got.MAddrs) == 0 {
		t.Fatalf("after 32 starts ip maddr does not list the cluster MAC %s: %v", mac, up.MAddrs)
	}
	// Bucket 7 fails: its address goes behind the agent's back.
	if out, err := ns.Command("ip", "addr", "del", ip+"/24", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr del: %v: %s", err, out)
	}
	env := vipEnv(ip, 7, n)
	if r := agenttest.Run(t, ns, path, "monitor", env); r.Code != int(ocf.ExitNotRunning) {
		t.Fatalf("monitor of bucket 7 without its address = %d, want 7: %s", r.Code, r.Stderr)
	}
	for _, action := range []string{"stop", "start", "monitor"} {
		if r := agenttest.Run(t, ns, path, action, env); r.Code != 0 {
			t.Fatalf("recovery of bucket 7: %s = %d: %s", action, r.Code, r.Stderr)
		}
	}
	if d := up.Only(name, ip+"/").Diff(nodeFootprint(t, ns, ip).Only(name, ip+"/")); strings.Contains(d, "addr") {
		t.Errorf("after bucket 7's recovery the address is not as after the starts:\n%s", d)
	}
	runMany(t, ns, path, "stop", ip, n)
	leftover("32 buckets started, one failed and recovered, all stopped at once")
	if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, 3, n)); r.Code != int(ocf.ExitNotRunning) {
		t.Errorf("probe after the stops = %d, want 7: %s", r.Code, r.Stderr)
	}
	leftover("a probe after the stops")

	// One bucket, its rules flushed (a failed bucket), then stopped.
	env = vipEnv(ip, 2, 4)
	if r := agenttest.Run(t, ns, path, "start", env); r.Code != 0 {
		t.Fatalf("start = %d: %s", r.Code, r.Stderr)
	}
	if out, err := ns.Command("nft", "flush", "ruleset").CombinedOutput(); err != nil {
		t.Fatalf("nft flush ruleset: %v: %s", err, out)
	}
	if r := agenttest.Run(t, ns, path, "monitor", env); r.Code != int(ocf.ExitNotRunning) {
		t.Errorf("monitor after its rules were flushed = %d, want 7: %s", r.Code, r.Stderr)
	}
	if r := agenttest.Run(t, ns, path, "stop", env); r.Code != 0 {
		t.Fatalf("stop of the failed bucket = %d: %s", r.Code, r.Stderr)
	}
	leftover("a failed bucket stopped")

	// The stop of a bucket that never started here.
	if r := agenttest.Run(t, ns, path, "stop", vipEnv(ip, 1, 4)); r.Code != 0 {
		t.Fatalf("stop of a bucket never started = %d: %s", r.Code, r.Stderr)
	}
	leftover("stop of a bucket never started")
	if a := netip.MustParseAddr(ip); countAddr(t, ns, a) != 0 {
		t.Errorf("address %s left", a)
	}
}
