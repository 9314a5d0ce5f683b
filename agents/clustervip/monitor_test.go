package clustervip

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
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
// owned but whose address or cluster MAC was removed behind its back does
// not serve; monitor must say not running (7) and name what is missing,
// and the next start must repair it (monitor 0). A removed netdev ingress
// table (rules only) the monitor rebuilds itself, saying so: 0, and the
// next monitor finds nothing to say. IPv4 and IPv6.
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
				rebuilt bool // the monitor rebuilds it in place
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
				}, false},
				{"cluster MAC left", "missing cluster MAC", func() error {
					// Equivalent to: bridge fdb del MAC dev eth0 self
					return nl.NeighDel(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, Family: unix.AF_BRIDGE,
						Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT,
						HardwareAddr: clusterip.DeriveMAC(addr, clusterip.MACMulticast)})
				}, false},
				{"netdev table deleted", "missing rule: netdev ingress table", func() error {
					c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
					if err != nil {
						return err
					}
					c.DelTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: table})
					return c.Flush()
				}, true},
			}
			for _, c := range damages {
				if err := c.damage(); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if c.rebuilt {
					monitor(c.name, ocf.ExitSuccess, "rebuilt the VIP's rules in place, the owned buckets kept")
					monitor(c.name+", rebuilt", ocf.ExitSuccess, "")
					if r := agenttest.Run(t, ns, path, "monitor", env); strings.Contains(r.Stderr, "rebuilt") {
						t.Errorf("%s: the monitor after the rebuild rebuilt again: %s", c.name, r.Stderr)
					}
					continue
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

// TestClusterVIPUpgradeRebuildsInPlace: tables built by a version without
// the ingress early drop (one ingress rule, as before the held set): the
// first bucket's monitor rebuilds the VIP's tables in place and passes,
// both buckets owned all along (no stop, no start: no moment where a bucket
// is answered by no node), and the other bucket's monitor finds the new
// tables and passes without rebuilding. A bucket not owned is not
// rebuilt: it is not running. README's "Upgrading" says so.
func TestClusterVIPUpgradeRebuildsInPlace(t *testing.T) {
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
	owned := func() []string {
		t.Helper()
		el, err := c.GetSetElements(&nftables.Set{Table: &nftables.Table{Family: nftables.TableFamilyIPv4, Name: nd.Name}, Name: "owned"})
		if err != nil {
			t.Fatalf("read the owned set: %v", err)
		}
		var out []string
		for _, e := range el {
			out = append(out, fmt.Sprint(e.Key))
		}
		sort.Strings(out)
		return out
	}
	before := owned()
	if len(before) != 2 {
		t.Fatalf("owned set %v after two starts, want 2 buckets", before)
	}
	r := agenttest.Run(t, ns, path, "monitor", envs[0])
	if r.Code != 0 || !strings.Contains(r.Stderr, "rebuilt the VIP's rules in place") {
		t.Fatalf("monitor of the older shape = %v, stderr %q; want 0 and the rebuild said", ocf.ExitCode(r.Code), r.Stderr)
	}
	if got := owned(); !slices.Equal(got, before) {
		t.Errorf("owned set %v after the rebuild, want %v (carried over)", got, before)
	}
	rules, err = c.GetRules(nd, &nftables.Chain{Name: "ingress", Table: nd})
	if err != nil || len(rules) != 2 {
		t.Fatalf("ingress rules after the rebuild: %d, %v; want 2", len(rules), err)
	}
	r = agenttest.Run(t, ns, path, "monitor", envs[1])
	if r.Code != 0 || strings.Contains(r.Stderr, "rebuilt") {
		t.Errorf("the other bucket's monitor = %v, stderr %q; want 0, no second rebuild", ocf.ExitCode(r.Code), r.Stderr)
	}

	// The older shape again, with bucket 2 released first: its monitor
	// reports not running and rebuilds nothing.
	if r := agenttest.Run(t, ns, path, "stop", envs[1]); r.Code != 0 {
		t.Fatalf("stop: %d: %s", r.Code, r.Stderr)
	}
	rules, _ = c.GetRules(nd, &nftables.Chain{Name: "ingress", Table: nd})
	if len(rules) != 2 {
		t.Fatalf("ingress rules: %d, want 2", len(rules))
	}
	if err := c.DelRule(rules[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if r := agenttest.Run(t, ns, path, "monitor", envs[1]); r.Code != int(ocf.ExitNotRunning) || strings.Contains(r.Stderr, "rebuilt") {
		t.Errorf("monitor of a released bucket on the older shape = %v, stderr %q; want not running, no rebuild", ocf.ExitCode(r.Code), r.Stderr)
	}
}
