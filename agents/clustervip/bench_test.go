package clustervip

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/test/nstest"
)

const ipaddr2 = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"

// BenchmarkMonitorVsIPaddr2 compares the wall time of one recurring-monitor
// call of clustervip (one bucket owned) with one of ocf:heartbeat:IPaddr2
// (address configured), both started the way pacemaker-execd starts them
// (fork+exec of the agent with its OCF environment) in the same namespace,
// interleaved over rounds. Both get the same parameters, twice: with nic
// and cidr_netmask (ratio: IPaddr2 at its fastest), and with cidr_netmask
// only (ratio-findnic: what `loadshare crm` generates; each agent then
// derives the interface at every call, IPaddr2 with findif).
// ratio = median(clustervip) / median(IPaddr2); target ≤ 0.1. ratio-flood
// is the flood check's monitor (flood_check=NAME, one per node and VIP)
// against the same IPaddr2 monitor (its probe goes out through a UDP
// socket: an AF_PACKET one costs 15-20 ms at close, an RCU grace
// period). clustervip
// is the static binary make build ships. It also counts the processes each
// monitor starts (fork, clone without CLONE_THREAD, vfork; counted with
// strace -f when present).
func BenchmarkMonitorVsIPaddr2(b *testing.B) {
	if _, err := os.Stat(ipaddr2); err != nil {
		b.Skipf("IPaddr2 missing (Debian package resource-agents): %v", err)
	}
	ns := agenttest.NodeNS(b, "lsag-bench")
	path := agenttest.Path(b, "clustervip")

	vip := vipEnv("10.203.0.110", 0, 1, "OCF_RESKEY_cidr_netmask", "24", "OCF_RESKEY_CRM_meta_interval", "10000")
	ipa := map[string]string{
		"OCF_ROOT":                     "/usr/lib/ocf",
		"OCF_RESOURCE_INSTANCE":        "ipa",
		"OCF_RESKEY_ip":                "10.203.0.111",
		"OCF_RESKEY_cidr_netmask":      "24",
		"OCF_RESKEY_CRM_meta_timeout":  "20000",
		"OCF_RESKEY_CRM_meta_interval": "10000",
	}
	withNIC := func(env map[string]string) map[string]string {
		e := maps.Clone(env)
		e["OCF_RESKEY_nic"] = "eth0"
		return e
	}
	for _, s := range []struct {
		path string
		env  map[string]string
	}{{path, vip}, {ipaddr2, ipa}} {
		if r := agenttest.Run(b, ns, s.path, "start", s.env); r.Code != 0 {
			b.Fatalf("%s start = %d: %s", s.path, r.Code, r.Stderr)
		}
		b.Cleanup(func() { agenttest.Run(b, ns, s.path, "stop", s.env) })
		for _, env := range []map[string]string{s.env, withNIC(s.env)} {
			if r := agenttest.Run(b, ns, s.path, "monitor", env); r.Code != 0 {
				b.Fatalf("%s monitor = %d: %s", s.path, r.Code, r.Stderr)
			}
		}
	}

	timeOne := func(p string, env map[string]string) time.Duration {
		cmd := agenttest.Cmd(p, "monitor", env)
		start := time.Now()
		if err := ns.Do(cmd.Run); err != nil {
			b.Fatalf("%s monitor: %v", p, err)
		}
		return time.Since(start)
	}
	vipNIC, ipaNIC := withNIC(vip), withNIC(ipa)
	b.ResetTimer()
	// At least 60 rounds (≈ 2 s): medians of fewer swing by ±5 % here.
	mo, mt := agenttest.Interleave(max(60, 20*b.N), func() time.Duration { return timeOne(path, vipNIC) },
		func() time.Duration { return timeOne(ipaddr2, ipaNIC) })
	fo, ft := agenttest.Interleave(max(60, 10*b.N), func() time.Duration { return timeOne(path, vip) },
		func() time.Duration { return timeOne(ipaddr2, ipa) })
	// The flood check's monitor (one instance per node and VIP, not per
	// bucket): a probe sent, the peers' counters read, the state saved.
	flood := map[string]string{
		"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "vip-flood:0", "OCF_RESKEY_ip": "10.203.0.110",
		"OCF_RESKEY_nic": "eth0", "OCF_RESKEY_flood_check": "vip", "OCF_RESKEY_CRM_meta_timeout": "20000",
		"HA_RSCTMP": b.TempDir(), "LOADSHARE_ATTRD_UPDATER": "none",
	}
	if r := agenttest.Run(b, ns, path, "start", flood); r.Code != 0 {
		b.Fatalf("flood check start = %d: %s", r.Code, r.Stderr)
	}
	b.Cleanup(func() { agenttest.Run(b, ns, path, "stop", flood) })
	flood["OCF_RESKEY_CRM_meta_interval"] = "5000"
	fl, flt := agenttest.Interleave(max(30, 10*b.N), func() time.Duration { return timeOne(path, flood) },
		func() time.Duration { return timeOne(ipaddr2, ipaNIC) })
	b.StopTimer()
	b.ReportMetric(float64(fl)/float64(flt), "ratio-flood")
	b.ReportMetric(float64(fl)/1e6, "flood-ms")
	b.ReportMetric(float64(mo)/float64(mt), "ratio")
	b.ReportMetric(float64(mo)/1e6, "clustervip-ms")
	b.ReportMetric(float64(mt)/1e6, "ipaddr2-ms")
	b.ReportMetric(float64(fo)/float64(ft), "ratio-findnic")
	if n, ok := countProcs(b, ns, path, vip); ok {
		b.ReportMetric(float64(n), "clustervip-procs")
	}
	if n, ok := countProcs(b, ns, ipaddr2, ipa); ok {
		b.ReportMetric(float64(n), "ipaddr2-procs")
	}
}

// countProcs runs one monitor under strace -f and counts the processes it
// starts: fork, vfork and clone/clone3 calls without CLONE_THREAD (Go's
// runtime threads are not processes).
func countProcs(b *testing.B, ns *nstest.NS, path string, env map[string]string) (int, bool) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		b.Logf("strace not installed: process counts not reported")
		return 0, false
	}
	out := filepath.Join(b.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", "-e", "signal=none", "-o", out, path, "monitor")
	cmd.Env = agenttest.Env(env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := ns.Do(cmd.Run); err != nil {
		b.Fatalf("strace %s monitor: %v: %s", path, err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "CLONE_THREAD") || strings.Contains(l, "= -1 ") {
			continue
		}
		if strings.Contains(l, "fork(") || strings.Contains(l, "clone(") || strings.Contains(l, "clone3(") {
			n++
		}
	}
	return n, true
}
