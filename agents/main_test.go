package agents

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/agents/ocf/ocftest"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Test helpers shared by every agent's tests in this package: the real
// loadshare binary linked under each agent's name, a namespace with a veth
// pair, and a way to run one agent action inside it.

var bin struct {
	once sync.Once
	dir  string // holds loadshare and a link per registered agent; 0755 so nobody can run meta-data
	err  error
}

func TestMain(m *testing.M) {
	_, err := os.Stat(clusterip.DefaultRunDir)
	hadRunDir := err == nil
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	removeLockFiles(hadRunDir)
	os.Exit(code)
}

// removeLockFiles deletes the per-VIP lock files that the agents, run as
// separate processes, left in clusterip.DefaultRunDir for this package's
// test addresses (10.203.0.0/24, fd00:203::/64, 10.205.0.0/24,
// fd00:205::/64), and the directory itself if the tests created it.
func removeLockFiles(hadRunDir bool) {
	for _, pat := range []string{"10_203_*", "fd00_203_*", "10_205_*", "fd00_205_*"} {
		files, _ := filepath.Glob(filepath.Join(clusterip.DefaultRunDir, "loadshare-"+pat))
		for _, f := range files {
			os.Remove(f)
		}
	}
	if !hadRunDir {
		os.Remove(clusterip.DefaultRunDir) // only if empty
	}
}

// agentPath builds ./cmd/loadshare once per test binary (as make build:
// static, into <tmp>/loadshare) and returns the link <tmp>/<name> to it, the way make
// install links the agents under /usr/lib/ocf/resource.d/loadshare.
func agentPath(t testing.TB, name string) string {
	t.Helper()
	bin.once.Do(func() {
		dir, err := os.MkdirTemp("", "lsag-bin-")
		if err != nil {
			bin.err = err
			return
		}
		bin.dir = dir
		// ocf-tester runs "su nobody -c '<agent> meta-data'".
		if err := os.Chmod(dir, 0o755); err != nil {
			bin.err = err
			return
		}
		if err := buildbin.Build(filepath.Join(dir, "loadshare")); err != nil {
			bin.err = err
			return
		}
		for _, n := range ocf.Names() {
			if err := os.Symlink("loadshare", filepath.Join(dir, n)); err != nil {
				bin.err = err
				return
			}
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	p := filepath.Join(bin.dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("agent %s: %v", name, err)
	}
	return p
}

// Addresses of the agent tests (this package's range: 10.203.0.0/24,
// fd00:203::/64; namespace names start with lsag-).
var (
	nodeAddr4 = netip.MustParsePrefix("10.203.0.1/24")
	nodeAddr6 = netip.MustParsePrefix("fd00:203::1/64")
)

// newNodeNS returns namespace name with a veth pair eth0 <-> peer0 (this
// kernel has no dummy links), both up, eth0 holding addrs (default
// 10.203.0.1/24 and fd00:203::1/64): the one network interface of a
// database node.
func newNodeNS(t testing.TB, name string, addrs ...netip.Prefix) *nstest.NS {
	t.Helper()
	ns := nstest.New(t, name)
	nl := ns.Netlink(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}
	if err := nl.LinkAdd(veth); err != nil {
		t.Fatalf("%s: add veth eth0/peer0: %v", name, err)
	}
	for _, n := range []string{"eth0", "peer0"} {
		l, err := nl.LinkByName(n)
		if err == nil {
			err = nl.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("%s: %s up: %v", name, n, err)
		}
	}
	eth0, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 {
		addrs = []netip.Prefix{nodeAddr4, nodeAddr6}
	}
	for _, p := range addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := nl.AddrAdd(eth0, a); err != nil {
			t.Fatalf("%s: add %s: %v", name, p, err)
		}
	}
	return ns
}

// agentRun is one finished agent action.
type agentRun struct {
	code           int
	stdout, stderr string
}

// runIn runs "path action" inside ns with exactly env (plus PATH), forking
// from a thread inside the namespace (no ip netns exec in between); with a
// nil ns, where the test runs.
func runIn(t testing.TB, ns *nstest.NS, path, action string, env map[string]string) agentRun {
	t.Helper()
	cmd := agentCmd(path, action, env)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	var err error
	if ns == nil {
		err = cmd.Run()
	} else {
		err = ns.Do(cmd.Run)
	}
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s %s: %v", path, action, err)
	}
	return agentRun{code, o.String(), e.String()}
}

func agentCmd(path, action string, env map[string]string) *exec.Cmd {
	cmd := exec.Command(path, action)
	cmd.Env = envList(env)
	return cmd
}

func envList(env map[string]string) []string {
	l := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}

// TestAgentsMetaDataDTD validates every registered agent's meta-data
// against Debian's ra-api-1.dtd.
func TestAgentsMetaDataDTD(t *testing.T) {
	names := ocf.Names()
	if len(names) == 0 {
		t.Fatal("no agent registered")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			out, err := ocf.MetaDataOf(name)
			if err != nil {
				t.Fatal(err)
			}
			ocftest.ValidateMetaData(t, out)
			if !strings.Contains(string(out), `<resource-agent name="`+name+`"`) {
				t.Errorf("meta-data of %s names another agent:\n%s", name, out)
			}
		})
	}
}

// TestAgentsWithPacemakerTools checks that the tools operators use read
// every agent as installed under /usr/lib/ocf/resource.d/loadshare:
// crmsh's "crm ra info" parses its meta-data (crmsh rejects, for example,
// an XML declaration with an encoding) and crm_resource --validate runs
// clustervip's validate-all through Pacemaker's own executor code. The
// provider directory is bind-mounted in a private mount namespace inside a
// test network namespace, so nothing outside the test changes.
func TestAgentsWithPacemakerTools(t *testing.T) {
	for _, tool := range []string{"crm", "crm_resource", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages crmsh, pacemaker-cli-utils, util-linux)", tool)
		}
	}
	ns := newNodeNS(t, "lsag-pcmk")
	rd := t.TempDir()
	if err := os.Chmod(rd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(rd, "loadshare"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range ocf.Names() {
		target := filepath.Join(filepath.Dir(agentPath(t, name)), "loadshare")
		if err := os.Symlink(target, filepath.Join(rd, "loadshare", name)); err != nil {
			t.Fatal(err)
		}
	}
	inMountNS := func(script string) (string, error) {
		cmd := ns.Command("unshare", "-m", "sh", "-c",
			`mount --make-rprivate / && mount --bind "$0" /usr/lib/ocf/resource.d && `+script, rd)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, name := range ocf.Names() {
		t.Run(name, func(t *testing.T) {
			out, err := inMountNS("crm ra info ocf:loadshare:" + name)
			if err != nil || strings.Contains(out, "ERROR") {
				t.Fatalf("crm ra info ocf:loadshare:%s: %v\n%s", name, err, out)
			}
			for _, p := range ocf.New(name).Meta().Params {
				if !strings.Contains(out, "\n"+p.Name) {
					t.Errorf("crm ra info ocf:loadshare:%s does not list parameter %s:\n%s", name, p.Name, out)
				}
			}
		})
	}
	out, err := inMountNS("crm_resource --validate --class ocf --provider loadshare --agent clustervip " +
		"--option ip=10.203.0.120 --option CRM_meta_clone=1 --option CRM_meta_clone_max=4 --option CRM_meta_globally_unique=true")
	if err != nil || !strings.Contains(out, "returned 0 (ok)") {
		t.Errorf("crm_resource --validate clustervip: %v\n%s", err, out)
	}
	out, err = inMountNS("crm_resource --validate --class ocf --provider loadshare --agent clustervip " +
		"--option ip=10.203.0.120 --option CRM_meta_clone=1 --option CRM_meta_clone_max=4 --option CRM_meta_globally_unique=false")
	if err == nil || !strings.Contains(out, "set meta globally-unique=true") {
		t.Errorf("crm_resource --validate of a clone that is not globally unique: want failure naming the fix, got %v\n%s", err, out)
	}
}
