package clustervip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// monitorAddrs are eth0's addresses in these tests (namespace prefix lsmg-).
var monitorAddrs = []netip.Prefix{netip.MustParsePrefix("10.205.0.1/24"), netip.MustParsePrefix("fd00:205::1/64")}

// TestClusterVIPMonitorDetectsDamage: an instance whose bucket is still
// owned but whose address, cluster MAC or netdev ingress table was removed
// behind its back does not serve; monitor must say not running (7) and
// name what is missing, and the next start must repair it (monitor 0).
// IPv4 and IPv6.
func TestClusterVIPMonitorDetectsDamage(t *testing.T) {
	nstest.SkipUnlessRoot(t)
	ns := agenttest.NodeNS(t, "lsmg-mon", monitorAddrs...)
	path := agenttest.Path(t, "clustervip")
	nl := ns.Netlink(t)
	eth0, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"10.205.0.100", "fd00:205::100"} {
		t.Run(ip, func(t *testing.T) {
			const n = 4
			addr := netip.MustParseAddr(ip)
			env := vipEnv(ip, 1, n, "OCF_RESKEY_nic", "eth0")
			monitor := func(step string, want ocf.ExitCode, stderr string) {
				t.Helper()
				r := agenttest.Run(t, ns, path, "monitor", env)
				if ocf.ExitCode(r.Code) != want {
					t.Fatalf("%s: monitor = %v, want %v; stderr: %s", step, ocf.ExitCode(r.Code), want, r.Stderr)
				}
				if stderr != "" {
					t.Logf("%s: monitor stderr: %s", step, r.Stderr)
				}
				if !strings.Contains(r.Stderr, stderr) {
					t.Errorf("%s: monitor stderr %q, want it to name %q", step, r.Stderr, stderr)
				}
			}
			start := func(step string) {
				t.Helper()
				if r := agenttest.Run(t, ns, path, "start", env); r.Code != 0 {
					t.Fatalf("%s: start = %d: %s", step, r.Code, r.Stderr)
				}
			}
			t.Cleanup(func() { agenttest.Run(t, ns, path, "stop", env) })
			monitor("never started (a probe)", ocf.ExitNotRunning, "")
			start("first start")
			monitor("started", ocf.ExitSuccess, "")
			if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, 2, n, "OCF_RESKEY_nic", "eth0")); r.Code != int(ocf.ExitNotRunning) || strings.Contains(r.Stderr, "not served") {
				t.Errorf("monitor of a stopped instance beside a started one = %d, stderr %q; want 7, no warning", r.Code, r.Stderr)
			}

			table := "loadshare-" + strings.NewReplacer(".", "_", ":", "_").Replace(ip)
			damages := []struct {
				name    string
				missing string // in the warning
				damage  func() error
			}{
				{"address deleted", "missing address", func() error {
					as, err := nl.AddrList(eth0, netlink.FAMILY_ALL)
					if err != nil {
						return err
					}
					for _, a := range as {
						if a.IP.Equal(addr.AsSlice()) {
							return nl.AddrDel(eth0, &a)
						}
					}
					t.Fatalf("%s not on eth0 after start", ip)
					return nil
				}},
				{"cluster MAC left", "missing cluster MAC", func() error {
					// Equivalent to: bridge fdb del MAC dev eth0 self
					return nl.NeighDel(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, Family: unix.AF_BRIDGE,
						Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT,
						HardwareAddr: clusterip.DeriveMAC(addr, clusterip.MACMulticast)})
				}},
				{"netdev table deleted", "missing rule: netdev ingress table", func() error {
					c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
					if err != nil {
						return err
					}
					c.DelTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: table})
					return c.Flush()
				}},
			}
			for _, c := range damages {
				if err := c.damage(); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				monitor(c.name, ocf.ExitNotRunning, c.missing)
				start(c.name + ", then start")
				monitor(c.name+", then start", ocf.ExitSuccess, "")
			}
			// Pacemaker's recovery is stop, then start: stop of a damaged
			// instance must succeed (and leave it stopped).
			for _, c := range damages {
				if err := c.damage(); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
			}
			if r := agenttest.Run(t, ns, path, "stop", env); r.Code != 0 {
				t.Fatalf("stop of a damaged instance = %d: %s", r.Code, r.Stderr)
			}
			monitor("all damaged, then stop", ocf.ExitNotRunning, "")
			start("all damaged, stop, then start")
			monitor("all damaged, stop, then start", ocf.ExitSuccess, "")
			if r := agenttest.Run(t, ns, path, "stop", env); r.Code != 0 {
				t.Fatalf("stop = %d: %s", r.Code, r.Stderr)
			}
			monitor("stopped", ocf.ExitNotRunning, "")
		})
	}
}

// TestClusterVIPUpgradeRebuildsOnce: tables built by a version without the
// ingress early drop (one ingress rule, as before the held set) make every
// bucket's monitor say not running; Pacemaker's recovery of one of them
// (stop, then start) rebuilds the VIP's tables for all, so the other
// bucket's next monitor passes with no recovery of its own. README's
// "Upgrading" says so.
func TestClusterVIPUpgradeRebuildsOnce(t *testing.T) {
	nstest.SkipUnlessRoot(t)
	ns := agenttest.NodeNS(t, "lsmg-upg", monitorAddrs...)
	path := agenttest.Path(t, "clustervip")
	const ip, n = "10.205.0.101", 4
	envs := []map[string]string{vipEnv(ip, 1, n, "OCF_RESKEY_nic", "eth0"), vipEnv(ip, 2, n, "OCF_RESKEY_nic", "eth0")}
	for _, env := range envs {
		t.Cleanup(func() { agenttest.Run(t, ns, path, "stop", env) })
		if r := agenttest.Run(t, ns, path, "start", env); r.Code != 0 {
			t.Fatalf("start: %d: %s", r.Code, r.Stderr)
		}
	}
	monitorAll := func(step string, want ocf.ExitCode) {
		t.Helper()
		for _, env := range envs {
			if r := agenttest.Run(t, ns, path, "monitor", env); ocf.ExitCode(r.Code) != want {
				t.Fatalf("%s: monitor of %s = %v, want %v; stderr: %s", step, env["OCF_RESOURCE_INSTANCE"], ocf.ExitCode(r.Code), want, r.Stderr)
			}
		}
	}
	monitorAll("started", ocf.ExitSuccess)

	// The older shape: the netdev ingress chain without the early drop.
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	nd := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: "loadshare-10_205_0_101"}
	rules, err := c.GetRules(nd, &nftables.Chain{Name: "ingress", Table: nd})
	if err != nil || len(rules) != 2 {
		t.Fatalf("ingress rules after start: %d, %v; want 2 (pkttype fix, early drop)", len(rules), err)
	}
	if err := c.DelRule(rules[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	monitorAll("older shape", ocf.ExitNotRunning)

	// Pacemaker recovers the first failed instance: stop, then start.
	for _, action := range []string{"stop", "start"} {
		if r := agenttest.Run(t, ns, path, action, envs[0]); r.Code != 0 {
			t.Fatalf("recovery %s: %d: %s", action, r.Code, r.Stderr)
		}
	}
	monitorAll("one instance recovered", ocf.ExitSuccess)
}
