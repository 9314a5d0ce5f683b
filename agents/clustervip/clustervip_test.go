package clustervip

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
)

// vipEnv is the environment Pacemaker gives instance k of a globally-unique
// clone of n clustervip instances, plus extra OCF_RESKEY_ parameters.
func vipEnv(ip string, k, n int, extra ...string) map[string]string {
	env := map[string]string{
		"OCF_ROOT":                            "/usr/lib/ocf",
		"OCF_RESOURCE_INSTANCE":               fmt.Sprintf("vip:%d", k),
		"OCF_RESKEY_ip":                       ip,
		"OCF_RESKEY_CRM_meta_clone":           strconv.Itoa(k),
		"OCF_RESKEY_CRM_meta_clone_max":       strconv.Itoa(n),
		"OCF_RESKEY_CRM_meta_clone_node_max":  strconv.Itoa(n),
		"OCF_RESKEY_CRM_meta_globally_unique": "true",
		"OCF_RESKEY_CRM_meta_timeout":         "20000",
		"OCF_RESKEY_drain_grace":              "0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(env, extra[i])
		} else {
			env[extra[i]] = extra[i+1]
		}
	}
	return env
}

// primEnv is the environment of a plain primitive (no clone meta).
func primEnv(ip string, extra ...string) map[string]string {
	return vipEnv(ip, 0, 1, append([]string{"OCF_RESKEY_CRM_meta_clone", "", "OCF_RESKEY_CRM_meta_clone_max", "",
		"OCF_RESKEY_CRM_meta_clone_node_max", "", "OCF_RESKEY_CRM_meta_globally_unique", ""}, extra...)...)
}

// vipState reads what the kernel of ns holds for ip: owned buckets (nil when
// the VIP has no objects) and whether the address is on eth0.
func vipState(t testing.TB, ns *nstest.NS, ip string, n int) (owned []clusterip.Bucket, addr bool) {
	t.Helper()
	pl, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendNFTables))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr(ip)
	v := clusterip.VIP{Addr: a, Link: "eth0", Buckets: uint16(n), Seed: 1}
	owned, err = pl.Owned(v)
	if err != nil && !errors.Is(err, clusterip.ErrNotEnsured) {
		t.Fatalf("owned buckets of %s in %s: %v", ip, ns.Name, err)
	}
	return owned, countAddr(t, ns, a) > 0
}

// countAddr counts how often a is configured on eth0 of ns.
func countAddr(t testing.TB, ns *nstest.NS, a netip.Addr) int {
	t.Helper()
	nl := ns.Netlink(t)
	l, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a {
			c++
		}
	}
	return c
}

func TestClusterVIPValidate(t *testing.T) {
	ns := agenttest.NodeNS(t, "lsag-val")
	path := agenttest.Path(t, "clustervip")
	const ip = "10.203.0.100"
	for _, c := range []struct {
		name   string
		action string
		env    map[string]string
		want   ocf.ExitCode
		stderr string
	}{
		{"ok", "validate-all", vipEnv(ip, 0, 4), ocf.ExitSuccess, ""},
		{"ok ipv6", "validate-all", vipEnv("fd00:203::100", 3, 4), ocf.ExitSuccess, ""},
		{"neither clone nor bucket primitive", "validate-all", primEnv(ip), ocf.ExitErrConfigured, "run it as a globally-unique clone (meta globally-unique=true clone-max=<buckets>), or as one primitive per bucket with parameters bucket=K and buckets=N"},
		{"bucket primitive", "validate-all", primEnv(ip, "OCF_RESKEY_bucket", "3", "OCF_RESKEY_buckets", "4"), ocf.ExitSuccess, ""},
		{"bucket primitive without buckets", "validate-all", primEnv(ip, "OCF_RESKEY_bucket", "3"), ocf.ExitErrConfigured, "bucket=K and buckets=N"},
		{"bucket beyond buckets", "validate-all", primEnv(ip, "OCF_RESKEY_bucket", "4", "OCF_RESKEY_buckets", "4"), ocf.ExitErrConfigured, `parameter bucket="4": must be 0..3 (buckets=4)`},
		{"negative bucket", "validate-all", primEnv(ip, "OCF_RESKEY_bucket", "-1", "OCF_RESKEY_buckets", "4"), ocf.ExitErrConfigured, `parameter bucket="-1": must be 0 or more`},
		{"bucket parameter in a clone", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_bucket", "1"), ocf.ExitErrConfigured, `parameter bucket="1": in a clone the instance number is the bucket`},
		{"buckets differs from clone-max", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_buckets", "8"), ocf.ExitErrConfigured, `parameter buckets="8": differs from clone-max=4`},
		{"buckets equal to clone-max", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_buckets", "4"), ocf.ExitSuccess, ""},
		{"not globally unique", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_CRM_meta_globally_unique", "false"), ocf.ExitErrConfigured, "set meta globally-unique=true"},
		{"instance beyond clone-max", "validate-all", vipEnv(ip, 4, 4), ocf.ExitErrConfigured, "outside clone-max=4"},
		{"xtcluster clone-max too big", "validate-all", vipEnv(ip, 0, 64, "OCF_RESKEY_backend", "xtcluster", "OCF_RESKEY_hash", "sourceip"), ocf.ExitErrConfigured, "clone-max (or buckets)=64: backend xtcluster allows at most 32; lower clone-max or use backend=nftables"},
		{"nftables clone-max too big", "validate-all", vipEnv(ip, 0, 5000, "OCF_RESKEY_backend", "nftables"), ocf.ExitErrConfigured, "clone-max (or buckets)=5000: must be at most 4096; lower clone-max: "},
		{"xtcluster port hash", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_backend", "xtcluster"), ocf.ExitErrConfigured, `parameter hash="sourceip-sourceport"`},
		{"bad ip", "validate-all", vipEnv("10.203.0.300", 0, 4), ocf.ExitErrConfigured, `parameter ip="10.203.0.300": not an IP address`},
		{"missing ip", "validate-all", vipEnv("", 0, 4), ocf.ExitErrConfigured, `parameter ip="": required`},
		{"nic missing here", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_nic", "nosuch0"), ocf.ExitErrArgs, `parameter nic="nosuch0": no such interface on this node`},
		{"no route to ip", "validate-all", vipEnv("198.51.100.7", 0, 4), ocf.ExitErrArgs, `parameter nic="": not given, and no route to ip`},
		{"bad hash", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_hash", "dstport"), ocf.ExitErrConfigured, `parameter hash="dstport": unknown hash mode`},
		{"zero seed", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_hash_seed", "0"), ocf.ExitErrConfigured, `parameter hash_seed="0": must be 1..4294967295`},
		{"bad netmask", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_cidr_netmask", "40"), ocf.ExitErrConfigured, `parameter cidr_netmask="40"`},
		{"bad mac", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_mac", "zz"), ocf.ExitErrConfigured, `parameter mac="zz"`},
		{"unicast mode with multicast mac", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_mac_mode", "unicast", "OCF_RESKEY_mac", "01:00:5e:01:02:03"), ocf.ExitErrConfigured, `parameter mac="01:00:5e:01:02:03": unicast mode needs a unicast MAC`},
		{"bad backend", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_backend", "ipvs"), ocf.ExitErrConfigured, `parameter backend="ipvs"`},
		{"not a clone: start refused", "start", primEnv(ip), ocf.ExitErrConfigured, "ocf-exit-reason:clustervip owns one bucket of the VIP"},
		{"not a clone: monitor says not running", "monitor", vipEnv(ip, 0, 4, "OCF_RESKEY_CRM_meta_globally_unique", "false"), ocf.ExitNotRunning, "not running here"},
		{"nic missing: stop succeeds", "stop", vipEnv(ip, 0, 4, "OCF_RESKEY_nic", "nosuch0"), ocf.ExitSuccess, "stop succeeds"},
		{"flood check", "validate-all", primEnv(ip, "OCF_RESKEY_flood_check", "vip"), ocf.ExitSuccess, ""},
		{"flood check of a bad name", "validate-all", primEnv(ip, "OCF_RESKEY_flood_check", "vip_0"), ocf.ExitErrConfigured, `parameter flood_check="vip_0": must be the VIP's name`},
		{"flood window too short", "validate-all", primEnv(ip, "OCF_RESKEY_flood_check", "vip", "OCF_RESKEY_flood_window", "1"), ocf.ExitErrConfigured, `parameter flood_window="1": must be at least 2`},
		{"node-max below max warns", "validate-all", vipEnv(ip, 0, 4, "OCF_RESKEY_CRM_meta_clone_node_max", "1"), ocf.ExitSuccess, "set clone-node-max=clone-max"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := agenttest.Run(t, ns, path, c.action, c.env)
			if ocf.ExitCode(r.Code) != c.want {
				t.Fatalf("clustervip %s = %v, want %v; stderr: %s", c.action, ocf.ExitCode(r.Code), c.want, r.Stderr)
			}
			if c.stderr == "" && r.Stderr != "" {
				t.Errorf("clustervip %s printed %q, want nothing", c.action, r.Stderr)
			}
			if !strings.Contains(r.Stderr, c.stderr) {
				t.Errorf("clustervip %s stderr %q, want it to contain %q", c.action, r.Stderr, c.stderr)
			}
		})
	}
	if owned, addr := vipState(t, ns, ip, 4); owned != nil || addr {
		t.Errorf("validation changed the kernel: owned %v, address %v", owned, addr)
	}
}

// TestClusterVIPOCFTester runs Debian's ocf-tester against the built agent
// with real parameters inside a namespace, IPv4 and IPv6, and with
// backend=xtcluster.
func TestClusterVIPOCFTester(t *testing.T) {
	tester, err := exec.LookPath("ocf-tester")
	if err != nil {
		t.Skip("ocf-tester not installed (Debian package resource-agents)")
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils); ocf-tester needs it")
	}
	ns := agenttest.NodeNS(t, "lsag-ocft")
	path := agenttest.Path(t, "clustervip")
	clone := []string{"-n", "vip:2", "-o", "CRM_meta_clone=2", "-o", "CRM_meta_clone_max=4",
		"-o", "CRM_meta_clone_node_max=4", "-o", "CRM_meta_globally_unique=true"}
	primitive := []string{"-n", "vip_2", "-o", "bucket=2", "-o", "buckets=4"}
	// The flood check: an anonymous clone instance owning no bucket.
	flood := []string{"-n", "vip-flood:0", "-o", "flood_check=vip", "-o", "CRM_meta_clone=0", "-o", "CRM_meta_clone_max=3",
		"-o", "CRM_meta_clone_node_max=1"}
	xtcluster := []string{"-o", "backend=xtcluster", "-o", "hash=sourceip"}
	for _, c := range []struct {
		name, ip string
		shape    []string
	}{
		{"clone/ipv4", "10.203.0.101", clone},
		{"clone/ipv6", "fd00:203::101", clone},
		{"primitive/ipv4", "10.203.0.105", primitive},
		{"flood check/ipv4", "10.203.0.106", flood},
		{"flood check/ipv6", "fd00:203::106", flood},
		{"primitive/ipv4/xtcluster", "10.203.0.109", append(slices.Clone(primitive), xtcluster...)},
	} {
		ip := c.ip
		t.Run(c.name, func(t *testing.T) {
			if slices.Contains(c.shape, "backend=xtcluster") {
				for _, tool := range []string{"iptables-restore", "arptables"} {
					if _, err := exec.LookPath(tool); err != nil {
						t.Skipf("%s not installed (Debian packages iptables, arptables)", tool)
					}
				}
			}
			args := append(slices.Clone(c.shape), "-o", "ip="+ip, "-o", "nic=eth0", "-o", "hash_seed=4242", "-o", "drain_grace=1", path)
			cmd := ns.Command(tester, args...)
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("passed all tests")) {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
			if owned, addr := vipState(t, ns, ip, 4); len(owned) != 0 || addr {
				t.Errorf("after ocf-tester (ends stopped): owned %v, address present %v; want none", owned, addr)
			}
		})
	}
}

// runMany runs one action of instances 0..n-1 at once, each its own process.
func runMany(t *testing.T, ns *nstest.NS, path, action, ip string, n int) {
	t.Helper()
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	for k := range cmds {
		cmds[k] = agenttest.Cmd(path, action, vipEnv(ip, k, n))
		cmds[k].Stdout, cmds[k].Stderr = &outs[k], &outs[k]
		if err := ns.Do(cmds[k].Start); err != nil {
			t.Fatalf("%s instance %d: %v", action, k, err)
		}
	}
	var failed []string
	for k, c := range cmds {
		if err := c.Wait(); err != nil {
			failed = append(failed, fmt.Sprintf("instance %d: %v: %s", k, err, outs[k].String()))
		}
	}
	if len(failed) > 0 {
		t.Fatalf("concurrent %s of %d instances: %d failed:\n%s", action, n, len(failed), strings.Join(failed, "\n"))
	}
}

// TestClusterVIPConcurrent64 starts the 64 instances of one VIP at once on
// one node, as Pacemaker does, then stops them at once.
func TestClusterVIPConcurrent64(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 128 agent processes")
	}
	ns := agenttest.NodeNS(t, "lsag-c64")
	path := agenttest.Path(t, "clustervip")
	const ip, n = "10.203.0.102", 64
	runMany(t, ns, path, "start", ip, n)
	owned, _ := vipState(t, ns, ip, n)
	want := make([]clusterip.Bucket, n)
	for i := range want {
		want[i] = clusterip.Bucket(i)
	}
	if !slices.Equal(owned, want) {
		t.Errorf("after 64 concurrent starts: owned %v, want 0..63", owned)
	}
	if c := countAddr(t, ns, netip.MustParseAddr(ip)); c != 1 {
		t.Errorf("after 64 concurrent starts: %s configured %d times, want once", ip, c)
	}
	for _, k := range []int{0, 31, 63} {
		if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, k, n)); r.Code != 0 {
			t.Errorf("monitor of instance %d = %d, want 0: %s", k, r.Code, r.Stderr)
		}
	}
	runMany(t, ns, path, "stop", ip, n)
	if owned, addr := vipState(t, ns, ip, n); len(owned) != 0 || addr {
		t.Errorf("after 64 concurrent stops: owned %v, address present %v; want none", owned, addr)
	}
	if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, 5, n)); r.Code != int(ocf.ExitNotRunning) {
		t.Errorf("monitor after stops = %d, want 7: %s", r.Code, r.Stderr)
	}
}

// TestClusterVIPKill9 kills a start at several points and checks that the
// next start, or the next stop, leaves a clean, consistent state.
func TestClusterVIPKill9(t *testing.T) {
	ns := agenttest.NodeNS(t, "lsag-kill")
	path := agenttest.Path(t, "clustervip")
	const ip, n = "10.203.0.103", 4
	delays := []time.Duration{0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond,
		5 * time.Millisecond, 8 * time.Millisecond, 12 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	killedMidway := 0
	for i, d := range delays {
		k := i % n
		env := vipEnv(ip, k, n)
		cmd := agenttest.Cmd(path, "start", env)
		if err := ns.Do(cmd.Start); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d)
		cmd.Process.Kill() // SIGKILL
		if err := cmd.Wait(); err != nil {
			killedMidway++
		}
		repair := "start"
		if i%2 == 1 {
			repair = "stop"
		}
		if r := agenttest.Run(t, ns, path, repair, env); r.Code != 0 {
			t.Fatalf("kill after %v, then %s = %d: %s", d, repair, r.Code, r.Stderr)
		}
		owned, addr := vipState(t, ns, ip, n)
		mon := agenttest.Run(t, ns, path, "monitor", env)
		if repair == "start" {
			if !slices.Equal(owned, []clusterip.Bucket{clusterip.Bucket(k)}) || !addr || mon.Code != 0 {
				t.Fatalf("kill after %v, then start: owned %v, address %v, monitor %d; want [%d], true, 0", d, owned, addr, mon.Code, k)
			}
			if r := agenttest.Run(t, ns, path, "stop", env); r.Code != 0 {
				t.Fatalf("stop = %d: %s", r.Code, r.Stderr)
			}
			owned, addr = vipState(t, ns, ip, n)
			mon = agenttest.Run(t, ns, path, "monitor", env)
		}
		if len(owned) != 0 || addr || mon.Code != int(ocf.ExitNotRunning) {
			t.Fatalf("kill after %v, then stop: owned %v, address %v, monitor %d; want none, false, 7", d, owned, addr, mon.Code)
		}
	}
	t.Logf("%d of %d starts were killed before they finished", killedMidway, len(delays))
}

// TestClusterVIPRulesLost: after the rules vanish (reboot, nft flush
// ruleset), monitor reports not running and stop succeeds and cleans up.
func TestClusterVIPRulesLost(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (Debian package nftables)")
	}
	ns := agenttest.NodeNS(t, "lsag-lost")
	path := agenttest.Path(t, "clustervip")
	const ip, n = "10.203.0.104", 4
	if r := agenttest.Run(t, ns, path, "start", vipEnv(ip, 1, n)); r.Code != 0 {
		t.Fatalf("start = %d: %s", r.Code, r.Stderr)
	}
	if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, 1, n)); r.Code != 0 {
		t.Fatalf("monitor of the started instance = %d: %s", r.Code, r.Stderr)
	}
	if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, 2, n)); r.Code != int(ocf.ExitNotRunning) {
		t.Errorf("monitor of another instance = %d, want 7: %s", r.Code, r.Stderr)
	}
	if out, err := ns.Command("nft", "flush", "ruleset").CombinedOutput(); err != nil {
		t.Fatalf("nft flush ruleset: %v: %s", err, out)
	}
	if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, 1, n)); r.Code != int(ocf.ExitNotRunning) {
		t.Errorf("monitor after rules lost = %d, want 7: %s", r.Code, r.Stderr)
	}
	if r := agenttest.Run(t, ns, path, "stop", vipEnv(ip, 1, n)); r.Code != 0 {
		t.Errorf("stop after rules lost = %d, want 0: %s", r.Code, r.Stderr)
	}
	if owned, addr := vipState(t, ns, ip, n); len(owned) != 0 || addr {
		t.Errorf("after stop: owned %v, address %v; want none", owned, addr)
	}
	if r := agenttest.Run(t, ns, path, "start", vipEnv(ip, 1, n)); r.Code != 0 {
		t.Fatalf("start again = %d: %s", r.Code, r.Stderr)
	}
	if r := agenttest.Run(t, ns, path, "monitor", vipEnv(ip, 1, n)); r.Code != 0 {
		t.Errorf("monitor after start again = %d: %s", r.Code, r.Stderr)
	}
}

// TestBinaryDispatch: the binary is the agent when called by the agent's
// name and the CLI otherwise.
func TestBinaryDispatch(t *testing.T) {
	path := agenttest.Path(t, "clustervip")
	out, err := exec.Command(path, "meta-data").Output()
	if err != nil {
		t.Fatalf("clustervip meta-data: %v", err)
	}
	want, _ := ocf.MetaDataOf("clustervip")
	if !bytes.Equal(out, want) {
		t.Errorf("clustervip meta-data from the binary differs from ocf.MetaDataOf:\n%s", out)
	}
	cli := strings.TrimSuffix(path, "clustervip") + "loadshare"
	out, _ = exec.Command(cli, "meta-data").CombinedOutput()
	if bytes.Contains(out, []byte("<resource-agent")) {
		t.Errorf("loadshare meta-data printed agent meta-data; the CLI must not act as an agent")
	}
}
