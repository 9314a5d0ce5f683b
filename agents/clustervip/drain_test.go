package clustervip

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const drainPort = 9107

// drainNode is a node namespace whose peer0 end moved into a client
// namespace (10.203.0.50), and a server in the node answering every line
// with "pong" (no greeting, unlike nstest.ServeName: the pings go in
// lockstep): connections to the VIP cross eth0 as a client's would.
func drainNode(t *testing.T) (node, client *nstest.NS) {
	t.Helper()
	node = agenttest.NodeNS(t, "lsag-drain", agenttest.NodeAddr4)
	client = nstest.New(t, "lsag-drainc")
	nl := node.Netlink(t)
	peer, err := nl.LinkByName("peer0")
	if err == nil {
		err = nl.LinkSetNsFd(peer, int(client.Handle))
	}
	if err != nil {
		t.Fatalf("move peer0 into %s: %v", client.Name, err)
	}
	cl := client.Netlink(t)
	peer, err = cl.LinkByName("peer0")
	if err == nil {
		err = cl.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 203, 0, 50), Mask: net.CIDRMask(24, 32)}})
	}
	if err == nil {
		err = cl.LinkSetUp(peer)
	}
	if err != nil {
		t.Fatalf("%s: peer0 up with 10.203.0.50/24: %v", client.Name, err)
	}

	nstest.Serve(t, node, drainPort, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			if _, err := io.WriteString(c, "pong\n"); err != nil {
				return
			}
		}
	})
	return node, client
}

// pinger is a client connection to the VIP that asks and reads one line
// per ping.
type pinger struct {
	c net.Conn
	r *bufio.Reader
}

// dialVIP connects from the client to the VIP ip (n buckets, the agent's
// default seed and hash) from a source port in bucket b.
func dialVIP(t *testing.T, client *nstest.NS, ip string, n int, b clusterip.Bucket) *pinger {
	t.Helper()
	a := netip.MustParseAddr(ip)
	v := clusterip.VIP{Addr: a, Buckets: uint16(n), Seed: seedOf(a)}
	src := netip.AddrPortFrom(netip.MustParseAddr("10.203.0.50"), 0)
	for port := uint16(40000 + 97*b); ; port++ {
		if src = netip.AddrPortFrom(src.Addr(), port); v.BucketOf(src) == b {
			break
		}
	}
	c, err := nstest.Dial(client, src, netip.AddrPortFrom(a, drainPort), 3*time.Second)
	if err != nil {
		t.Fatalf("connect to the VIP %s from %s (bucket %d): %v", ip, src, b, err)
	}
	t.Cleanup(func() { c.Close() })
	p := &pinger{c, bufio.NewReader(c)}
	if err := p.ping(); err != nil {
		t.Fatalf("first ping on the VIP %s: %v", ip, err)
	}
	return p
}

func (p *pinger) ping() error {
	p.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(p.c, "ping\n"); err != nil {
		return err
	}
	line, err := p.r.ReadString('\n')
	if err == nil && line != "pong\n" {
		err = fmt.Errorf("answer %q, want pong", line)
	}
	return err
}

var drainPid = regexp.MustCompile(`\bpid=(\d+)`)

// drainProcess is the pid of the drain process the stop's log names; it
// checks the process is detached as the agent's doc says (a session of
// its own, stdio on /dev/null, the drain marker as fd 3), and kills it
// at the end of the test if it still runs.
func drainProcess(t *testing.T, stopLog, ip string) int {
	t.Helper()
	m := drainPid.FindStringSubmatch(stopLog)
	if m == nil {
		t.Fatalf("the stop of the last bucket under a live connection names no drain process:\n%s", stopLog)
	}
	pid, _ := strconv.Atoi(m[1])
	t.Cleanup(func() {
		if drainRunning(pid) {
			t.Errorf("drain process %d still running at the end of the test: killed", pid)
			unix.Kill(pid, syscall.SIGKILL)
		}
	})
	if !drainRunning(pid) {
		return pid // ended already (its checks are for the live process)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("drain process %d: session %d (%v), want a session of its own", pid, sid, err)
	}
	for fd, want := range map[int]string{0: "/dev/null", 1: "/dev/null", 2: "/dev/null",
		3: filepath.Join("/run/loadshare", "loadshare-"+strings.ReplaceAll(ip, ".", "_")+".drain")} {
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); err != nil || got != want {
			t.Errorf("drain process %d: fd %d is %q (%v), want %s", pid, fd, got, err, want)
		}
	}
	return pid
}

// drainRunning reports whether pid is a live drain process of the agent
// (not a zombie, nor a reused pid).
func drainRunning(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.HasSuffix(string(cmdline), "\x00"+drainAction+"\x00") {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// waitUntil polls cond every 100 ms, at most n times; what names the
// awaited state in the failure.
func waitUntil(t *testing.T, n int, what string, cond func() bool) {
	t.Helper()
	for range n {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting (%d polls) for %s", n, what)
}

// TestClusterVIPStopDetachesDrain: the stop of a node's last bucket under
// a long-lived client connection returns while the connection is up
// (Pacemaker can start the bucket elsewhere at once); the connection keeps
// working during the drain, which a process of the agent's own waits out:
// the VIP's objects go once the connection ends, or once drain_grace
// passes with it open (a warning in the log), and a start of a bucket
// during the drain keeps everything. Read with the independent reader.
func TestClusterVIPStopDetachesDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("namespace test with agent processes")
	}
	node, client := drainNode(t)
	path := agenttest.Path(t, "clustervip")
	const ip = "10.203.0.107"
	name := "loadshare-10_203_0_107"
	before := nodeFootprint(t, node, ip)
	logFile := filepath.Join(t.TempDir(), "ha-log")
	env := func(k int, grace string) map[string]string {
		return vipEnv(ip, k, 2, "OCF_RESKEY_drain_grace", grace, "HA_LOGFILE", logFile)
	}
	run := func(action string, env map[string]string) agenttest.Result {
		t.Helper()
		r := agenttest.Run(t, node, path, action, env)
		if r.Code != 0 {
			t.Fatalf("%s %s = %d (%s): %s", env["OCF_RESOURCE_INSTANCE"], action, r.Code, ocf.ExitCode(r.Code), r.Stderr)
		}
		return r
	}
	vipUp := func(step string) {
		t.Helper()
		f := nodeFootprint(t, node, ip).Only(name, ip+"/")
		if len(f.NFT) < 10 || len(f.Addrs) != 1 {
			t.Fatalf("%s: the reader sees %d nftables objects and addresses %v of the VIP; want its tables and its address",
				step, len(f.NFT), f.Addrs)
		}
	}
	gone := func(what string) {
		t.Helper()
		waitUntil(t, 300, what+": the node as before the first start", func() bool {
			return before.Diff(nodeFootprint(t, node, ip)) == ""
		})
	}

	t.Run("drained by the connection's end", func(t *testing.T) {
		run("start", env(0, "60"))
		c := dialVIP(t, client, ip, 2, 0)
		r := run("stop", env(0, "60"))
		t.Logf("the stop's log: %s", r.Stderr)
		pid := drainProcess(t, r.Stderr, ip)
		for i := range 5 {
			if err := c.ping(); err != nil {
				t.Fatalf("ping %d after the stop returned: %v", i, err)
			}
		}
		vipUp("after the stop, the connection open")
		if !drainRunning(pid) {
			t.Fatalf("drain process %d ended with the connection still open and 60 s of grace", pid)
		}
		if r := agenttest.Run(t, node, path, "monitor", env(0, "60")); r.Code != int(ocf.ExitNotRunning) {
			t.Errorf("monitor of the stopped bucket during the drain = %d, want 7: %s", r.Code, r.Stderr)
		}
		c.c.Close()
		gone("the connection closed")
		waitUntil(t, 100, fmt.Sprintf("drain process %d to end", pid), func() bool { return !drainRunning(pid) })
	})

	t.Run("grace passes", func(t *testing.T) {
		run("start", env(1, "2"))
		c := dialVIP(t, client, ip, 2, 1)
		r := run("stop", env(1, "2"))
		drainProcess(t, r.Stderr, ip)
		if err := c.ping(); err != nil {
			t.Fatalf("ping after the stop returned: %v", err)
		}
		gone("drain_grace=2 passed with the connection open")
		log, _ := os.ReadFile(logFile)
		if !strings.Contains(string(log), "released the last bucket with connections still open") ||
			!strings.Contains(string(log), "action="+drainAction) {
			t.Errorf("HA_LOGFILE has no warning of the drain process about the connection it cut:\n%s", log)
		}
	})

	t.Run("started again during the drain", func(t *testing.T) {
		run("start", env(0, "60"))
		c := dialVIP(t, client, ip, 2, 0)
		pid := drainProcess(t, run("stop", env(0, "60")).Stderr, ip)
		run("start", env(1, "60"))
		if err := c.ping(); err != nil {
			t.Fatalf("ping after the stop of bucket 0 and the start of bucket 1: %v", err)
		}
		c.c.Close()
		waitUntil(t, 300, fmt.Sprintf("drain process %d to end after its connection closed", pid), func() bool { return !drainRunning(pid) })
		vipUp("after a drain that saw bucket 1 started")
		if r := agenttest.Run(t, node, path, "monitor", env(1, "60")); r.Code != 0 {
			t.Errorf("monitor of bucket 1 after the drain = %d, want 0: %s", r.Code, r.Stderr)
		}
		run("start", env(0, "60"))
		c = dialVIP(t, client, ip, 2, 0)
		c.c.Close()
		waitUntil(t, 100, "the closed connection in TIME_WAIT", func() bool { return openConns(t, node, ip) == 0 })
		// No connection open: the last stop removes everything itself.
		run("stop", env(0, "60"))
		r := run("stop", env(1, "60"))
		if drainPid.MatchString(r.Stderr) {
			t.Errorf("the last stop with no connection open started a drain process:\n%s", r.Stderr)
		}
		if d := before.Diff(nodeFootprint(t, node, ip)); d != "" {
			t.Errorf("after the last stop with no connection open, the node differs from before (-before +after):\n%s", d)
		}
	})

	// The agent's binary deleted under it (an upgrade): no drain process
	// can start, and the stop drains itself, as before there was one.
	t.Run("no drain process: the stop waits", func(t *testing.T) {
		run("start", env(0, "1"))
		c := dialVIP(t, client, ip, 2, 0)
		r := runDeleted(t, node, path, "stop", env(0, "1"))
		if r.Code != 0 || !strings.Contains(r.Stderr, "cannot start the drain process") ||
			!strings.Contains(r.Stderr, "released the last bucket with connections still open") || drainPid.MatchString(r.Stderr) {
			t.Fatalf("stop by a deleted binary under a live connection = %d, log:\n%s\nwant 0, the drain process's failure, then the connection cut at the end of the stop's own wait", r.Code, r.Stderr)
		}
		t.Logf("the stop's log: %s", r.Stderr)
		if d := before.Diff(nodeFootprint(t, node, ip)); d != "" {
			t.Errorf("after the stop that drained itself, the node differs from before (-before +after):\n%s", d)
		}
		if err := c.ping(); err == nil {
			t.Errorf("the connection still answered after the stop cut it")
		}
	})
}

// runDeleted runs one action of the agent from a copy of its binary
// that is deleted before the action starts (exec'd through the open
// file, as a process whose binary a package upgrade replaced): the agent
// cannot start its own binary again.
func runDeleted(t *testing.T, ns *nstest.NS, path, action string, env map[string]string) agenttest.Result {
	t.Helper()
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "clustervip")
	if err := os.WriteFile(cp, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(cp); err != nil {
		t.Fatal(err)
	}
	cmd := agenttest.Cmd("/proc/self/fd/3", action, env)
	cmd.ExtraFiles = []*os.File{f}
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = ns.Do(cmd.Run)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run the deleted agent's %s: %v", action, err)
	}
	return agenttest.Result{Code: code, Stdout: o.String(), Stderr: e.String()}
}

// openConns counts the node's conntrack entries to ip that are not in
// TIME_WAIT or CLOSE: the connections a drain waits for.
// Equivalent to: conntrack -L -d IP
func openConns(t *testing.T, ns *nstest.NS, ip string) int {
	t.Helper()
	h, err := ns.OpenNetlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatalf("conntrack -L in %s: %v", ns.Name, err)
	}
	n := 0
	for _, f := range flows {
		if a, ok := netip.AddrFromSlice(f.Forward.DstIP); !ok || a.Unmap().String() != ip {
			continue
		}
		if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok && (tcp.State == 7 || tcp.State == 8) {
			continue // TIME_WAIT, CLOSE
		}
		n++
	}
	return n
}
