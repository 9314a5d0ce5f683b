// Package agenttest runs loadshare's OCF agents in tests the way Pacemaker
// runs them: the static binaries `make build` ships, one process per
// action, inside a network namespace with a veth pair when the agent needs
// a node's network; and it checks their meta-data (the OCF DTD, crmsh).
// Shared by the tests of every agent package and of agents/ocf.
package agenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/nstest"
	"golang.org/x/sys/unix"
)

var bin struct {
	once sync.Once
	dir  string // holds loadshare and the agent binaries; 0755 so that nobody can run meta-data
	err  error
}

// Main is TestMain for an agent package: it runs the tests, then removes
// the binaries Path built and the per-VIP run files the agents (separate
// processes) left in clusterip.DefaultRunDir, for a test that failed
// before its last stop, for the agent tests' addresses (10.203.0.0/24, fd00:203::/64, 10.205.0.0/24, fd00:205::/64).
func Main(m *testing.M) {
	_, err := os.Stat(clusterip.DefaultRunDir)
	hadRunDir := err == nil
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	for _, pat := range []string{"10_203_*", "fd00_203_*", "10_205_*", "fd00_205_*"} {
		files, _ := filepath.Glob(filepath.Join(clusterip.DefaultRunDir, "loadshare-"+pat))
		for _, f := range files {
			os.Remove(f)
		}
	}
	if !hadRunDir {
		os.Remove(clusterip.DefaultRunDir) // only if empty
	}
	os.Exit(code)
}

// Path builds every binary once per test process (as make build: static,
// into a temporary directory) and returns agent name's, the file make
// install puts in /usr/lib/ocf/resource.d/loadshare.
func Path(t testing.TB, name string) string {
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
		bin.err = buildbin.BuildAll(dir)
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

// The default addresses of a test node (the agent tests' range:
// 10.203.0.0/24, fd00:203::/64; namespace names start with lsag-).
var (
	NodeAddr4 = netip.MustParsePrefix("10.203.0.1/24")
	NodeAddr6 = netip.MustParsePrefix("fd00:203::1/64")
)

// NodeNS returns namespace name with a veth pair eth0 <-> peer0, both up,
// eth0 holding addrs (default NodeAddr4 and NodeAddr6): nstest.NewNode,
// and the agents' saved sysctls of the namespace removed when t ends.
func NodeNS(t testing.TB, name string, addrs ...netip.Prefix) *nstest.NS {
	t.Helper()
	if len(addrs) == 0 {
		addrs = []netip.Prefix{NodeAddr4, NodeAddr6}
	}
	ns := nstest.NewNode(t, name, addrs...)
	// The agents record the sysctls they change per namespace inode
	// (clusterip: sysctl.ns<inode>.saved); one left by a test that failed
	// before its last stop must not meet a later namespace with that inode.
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Handle), &st); err == nil {
		t.Cleanup(func() {
			os.Remove(filepath.Join(clusterip.DefaultRunDir, fmt.Sprintf("sysctl.ns%d.saved", st.Ino)))
		})
	}
	return ns
}

// Result is one finished agent action.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs "path action" inside ns with exactly env (plus PATH), forking
// from a thread inside the namespace (no ip netns exec in between); with a
// nil ns, where the test runs.
func Run(t testing.TB, ns *nstest.NS, path, action string, env map[string]string) Result {
	t.Helper()
	cmd := Cmd(path, action, env)
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
	return Result{code, o.String(), e.String()}
}

// Cmd is the command Run runs, for callers that time or trace it.
func Cmd(path, action string, env map[string]string) *exec.Cmd {
	cmd := exec.Command(path, action)
	cmd.Env = Env(env)
	return cmd
}

// Env is env as a sorted KEY=VALUE list with a fixed PATH: the agents see
// only what Pacemaker's executor would give them.
func Env(env map[string]string) []string {
	l := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}

// CheckMetaData validates the meta-data of the agents called names
// against Debian's ra-api-1.dtd, and checks it names the agent.
func CheckMetaData(t *testing.T, names ...string) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			out, err := ocf.MetaDataOf(name)
			if err != nil {
				t.Fatal(err)
			}
			ValidateMetaData(t, out)
			if !strings.Contains(string(out), `<resource-agent name="`+name+`"`) {
				t.Errorf("meta-data of %s names another agent:\n%s", name, out)
			}
		})
	}
}

// DTD is the OCF resource-agent API DTD that Debian's resource-agents ships.
const DTD = "/usr/share/resource-agents/ra-api-1.dtd"

// ValidateMetaData validates meta-data XML against DTD with xmllint, as
// ocf-tester does; it skips t when xmllint or the DTD is not installed.
func ValidateMetaData(t testing.TB, metaData []byte) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils)")
	}
	if _, err := os.Stat(DTD); err != nil {
		t.Skipf("%s missing (Debian package resource-agents): %v", DTD, err)
	}
	cmd := exec.Command(xmllint, "--noout", "--dtdvalid", DTD, "-")
	cmd.Stdin = bytes.NewReader(metaData)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xmllint --dtdvalid %s: %v\n%s\nmeta-data:\n%s", DTD, err, msg, metaData)
	}
}

// CheckWithPacemakerTools checks that the tools operators use read the
// agents called names as installed under
// /usr/lib/ocf/resource.d/loadshare: crmsh's "crm ra info" parses its
// meta-data (crmsh rejects, for example, an XML declaration with an
// encoding) and lists every parameter. The provider directory is
// bind-mounted in a private mount namespace inside a test network
// namespace, so nothing outside the test changes. It returns a runner of
// further commands in that mount namespace (crm_resource --validate ...).
func CheckWithPacemakerTools(t *testing.T, nsName string, names ...string) (inMountNS func(script string) (string, error)) {
	for _, tool := range []string{"crm", "crm_resource", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages crmsh, pacemaker-cli-utils, util-linux)", tool)
		}
	}
	ns := NodeNS(t, nsName)
	rd := t.TempDir()
	if err := os.Chmod(rd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(rd, "loadshare"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := os.Symlink(Path(t, name), filepath.Join(rd, "loadshare", name)); err != nil {
			t.Fatal(err)
		}
	}
	inMountNS = func(script string) (string, error) {
		cmd := ns.Command("unshare", "-m", "sh", "-c",
			`mount --make-rprivate / && mount --bind "$0" /usr/lib/ocf/resource.d && `+script, rd)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, name := range names {
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
	return inMountNS
}

// Interleave times ours and theirs rounds times each, alternating which
// goes first so that neither always runs on a warmer or colder machine,
// and returns each one's median.
func Interleave(rounds int, ours, theirs func() time.Duration) (oursMedian, theirsMedian time.Duration) {
	var o, t []time.Duration
	for i := 0; i < rounds; i++ {
		if i%2 == 0 {
			o = append(o, ours())
			t = append(t, theirs())
		} else {
			t = append(t, theirs())
			o = append(o, ours())
		}
	}
	return Median(o), Median(t)
}

// Median of ds, for benchmarks that compare single agent calls on a shared
// machine: a stall lands in one call, and a mean would charge it to
// whichever variant ran then.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// named is an agent registered under a fresh name (Register).
type named struct {
	ocf.Agent
	name string
}

func (n named) Meta() ocf.Meta { m := n.Agent.Meta(); m.Name = n.name; return m }

func (n named) Validate(ctx context.Context, p ocf.Params) error {
	if v, ok := n.Agent.(ocf.Validator); ok {
		return v.Validate(ctx, p)
	}
	return nil
}

var registered atomic.Int64

// Register registers agent a (with fakes injected) under a fresh name made
// from base, so that a test can run it through the real framework (RunMain:
// environment parsing, validation, exit codes, logging), and returns the
// name.
func Register(a ocf.Agent, base string) string {
	name := fmt.Sprintf("%s_test%d", base, registered.Add(1))
	ocf.Register(name, func() ocf.Agent { return named{a, name} })
	return name
}

// RunMain runs one action of agent name in this process, with exactly env
// (plus PATH), and returns its exit code and what it logged (stderr, as
// pacemaker-execd would capture it).
func RunMain(t testing.TB, name, action string, env map[string]string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := ocf.Run(name, []string{action}, Env(env), &stdout, &stderr)
	return code, stderr.String()
}

// WantCode fails the test unless an action of what exited want.
func WantCode(t testing.TB, what string, got, want int, log string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: exit %d (%s), want %d (%s); log:\n%s", what, got, ocf.ExitCode(got), want, ocf.ExitCode(want), log)
	}
}

// Instance is the resource instance Reskeys names.
const Instance = "testrsc"

// Reskeys is the environment of one action of resource Instance: key,
// value pairs become OCF_RESKEY_key=value, with a 20 s operation timeout.
func Reskeys(kv ...string) map[string]string {
	env := map[string]string{"OCF_RESOURCE_INSTANCE": Instance, "OCF_RESKEY_CRM_meta_timeout": "20000"}
	for i := 0; i+1 < len(kv); i += 2 {
		env["OCF_RESKEY_"+kv[i]] = kv[i+1]
	}
	return env
}
