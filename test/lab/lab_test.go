package lab

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/nstest"
)

func testLogger(t *testing.T) *slog.Logger { return TestLogger(t, slog.LevelDebug) }

func TestCorosyncConfOneKeyPerLine(t *testing.T) {
	conf := corosyncConf("c", 1000, []string{"n1", "n2"}, []string{"10.0.0.11", "10.0.0.12"})
	for _, line := range strings.Split(conf, "\n") {
		if strings.Count(line, ":") > 1 {
			t.Errorf("corosync.conf line %q holds more than one key", line)
		}
	}
	for _, want := range []string{"token: 1000", "ring0_addr: 10.0.0.12", "name: n2", "nodeid: 2", "transport: knet"} {
		if !strings.Contains(conf, want) {
			t.Errorf("corosync.conf lacks %q:\n%s", want, conf)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"ipv6", Config{Subnet: mustPrefix("fd00::/64")}, "subnet=fd00::/64: must be an IPv4 /24"},
		{"nodes", Config{Nodes: 12}, "nodes=12: must be 1 to 9"},
		{"state", Config{StateDir: "rel"}, `state dir "rel": must be an absolute path below /`},
		{"db", Config{DB: "ndb"}, `db="ndb": must be galera, replication or standalone`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.withDefaults().validate()
			if err == nil || err.Error() != tc.want {
				t.Errorf("validate() = %v, want %s", err, tc.want)
			}
		})
	}
}

// TestLab runs the real three-node lab: quorum, hostnames and private
// mounts, MariaDB per node, a node crash noticed and its restart.
func TestLab(t *testing.T) {
	SkipUnlessCapable(t, Config{})
	ctx := context.Background()
	cfg := Config{Prefix: "lsl-l", StateDir: "/var/tmp/loadshare-lab-test"}
	l, err := Up(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
		assertGone(t, l)
	})
	t.Logf("start to all online with quorum: %s", l.QuorumAfter.Round(time.Millisecond))

	c, err := l.Cluster(ctx, "n2")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Online(), " "); got != "n1 n2 n3" || !c.Quorum {
		t.Fatalf("n2 sees online %q quorum %v, want n1 n2 n3 with quorum", got, c.Quorum)
	}

	var st strings.Builder
	if err := WriteStatus(ctx, l, &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.String(), "quorum=true online=[n1 n2 n3]") {
		t.Errorf("WriteStatus:\n%s\nwant quorum=true online=[n1 n2 n3]", st.String())
	}

	for _, n := range l.Nodes() {
		out, err := l.Exec(ctx, n, "hostname")
		if err != nil || strings.TrimSpace(string(out)) != n {
			t.Errorf("hostname in %s = %q, %v", n, out, err)
		}
		// /run is private: the root namespace's /run/netns is not there.
		if _, err := l.Exec(ctx, n, "test", "-e", "/run/netns/"+l.Netns(n)); err == nil {
			t.Errorf("%s: /run is not private (sees /run/netns)", n)
		}
		out, err = l.Exec(ctx, n, "grep", "-c", "ring0_addr", "/etc/corosync/corosync.conf")
		if err != nil || strings.TrimSpace(string(out)) != "3" {
			t.Errorf("%s: /etc/corosync/corosync.conf is not the lab's: %q %v", n, out, err)
		}
		m, err := l.Memory(n)
		if err != nil {
			t.Error(err)
		}
		t.Logf("%s: memory (PSS, corosync+pacemaker+mariadb) %d MiB", n, m>>20)

		// MariaDB answers from the client namespace on the node's address.
		s := l.Load(ctx, l.Addr(n), 5, 2, 20*time.Second)
		if s.Answers[n] != 5 {
			t.Errorf("5 connections to %s (%s): %s (last error %v), want all answered by %s", n, l.Addr(n), s, s.LastErr, n)
		}
	}

	// Galera: a row written on one node is read back on every node.
	if _, err := l.SQL(ctx, "n1", "CREATE DATABASE lab; CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO lab.t VALUES (1, 'from n1')"); err != nil {
		t.Fatal(err)
	}
	assertRows(t, l, l.Nodes(), "1\tfrom n1")

	// A crashed node is noticed, and rejoins when started again.
	old := l.Pid("n3", "corosync")
	t0 := time.Now()
	if err := l.Crash("n3"); err != nil {
		t.Fatal(err)
	}
	if l.Running("n3") || alive(old) {
		t.Fatalf("n3 still running after crash (corosync pid %d)", old)
	}
	if err := l.WaitOnline(ctx, "n1", "n2"); err != nil {
		t.Fatal(err)
	}
	t.Logf("crash of n3 noticed by n1 and n2 after %s", time.Since(t0).Round(time.Millisecond))
	if _, err := l.Exec(ctx, "n3", "true"); !errors.Is(err, ErrNodeDown) {
		t.Errorf("Exec on crashed n3: %v, want ErrNodeDown", err)
	}
	t0 = time.Now()
	if err := l.Start(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitOnline(ctx, l.Nodes()...); err != nil {
		t.Fatal(err)
	}
	t.Logf("n3 rejoined after %s", time.Since(t0).Round(time.Millisecond))

	// Its MariaDB killed, written past and restarted, a node catches up by
	// incremental state transfer (IST) from the others' gcache.
	if err := l.KillDB("n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SQL(ctx, "n3", "INSERT INTO lab.t VALUES (2, 'n2 was down')"); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	if err := l.StartDB(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	t.Logf("n2's MariaDB rejoined the Galera cluster (Synced) after %s", time.Since(t0).Round(time.Millisecond))
	if log, err := os.ReadFile(filepath.Join(l.dir("n2"), "var_lib_mysql", "mariadbd.err")); err != nil || !strings.Contains(string(log), "IST received") {
		t.Errorf("n2's error log shows no IST (err %v)", err)
	}
	assertRows(t, l, l.Nodes(), "1\tfrom n1\n2\tn2 was down")
}

// assertRows checks that every one of nodes holds exactly the rows want
// (tab-separated, one a line, by id) in lab.t.
func assertRows(t *testing.T, l *Lab, nodes []string, want string) {
	t.Helper()
	for _, n := range nodes {
		got, err := l.SQL(context.Background(), n, "SELECT id, v FROM lab.t ORDER BY id")
		if err != nil || strings.TrimSpace(got) != want {
			t.Errorf("%s: lab.t holds %q (%v), want %q", n, got, err, want)
		}
	}
}

// TestStaleLabCleaned leaves a one-node lab behind, as a crashed run would,
// and checks that the next Up removes it and that Down leaves nothing.
func TestStaleLabCleaned(t *testing.T) {
	SkipUnlessCapable(t, Config{NoDB: true})
	ctx := context.Background()
	cfg := Config{Prefix: "lsl-s", StateDir: "/var/tmp/loadshare-lab-test-stale", Nodes: 1, NoDB: true}
	first, err := Up(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Down() })
	oldPids := pidsIn(first.Netns("n1"))
	if len(oldPids) < 3 {
		t.Fatalf("n1 runs pids %v, want at least holder, corosync, pacemakerd", oldPids)
	}
	// The first lab is abandoned, not torn down.
	second, err := Up(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range oldPids {
		if alive(p) {
			t.Errorf("pid %d of the stale lab still alive", p)
		}
	}
	if err := second.Down(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, second)
}

func assertGone(t *testing.T, l *Lab) {
	t.Helper()
	for _, h := range append(l.Nodes(), "client", "switch") {
		if nstest.Exists(l.Netns(h)) {
			t.Errorf("netns %s left after Down", l.Netns(h))
		}
	}
	if _, err := os.Stat(l.Config().StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir %s left after Down: %v", l.Config().StateDir, err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		for _, h := range append(l.Nodes(), "client", "switch") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == l.Netns(h) {
				t.Errorf("ip netns list still shows %s", line)
			}
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Clean(l.Config().StateDir)) {
		t.Errorf("mounts below %s left", l.Config().StateDir)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
