package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
	"github.com/loadshare/loadshare/test/nstest"
)

// olderShape gives node's VIP tables the shape of an older build: the
// netdev ingress chain without its early drop (as the agent-level
// TestClusterVIPUpgradeRebuildsOnce does). The buckets stay owned.
func olderShape(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	c, nd := ingressOf(t, l, node)
	rules, err := c.GetRules(nd, &nftables.Chain{Name: "ingress", Table: nd})
	if err != nil || len(rules) != 2 {
		t.Fatalf("%s: ingress rules %d, %v; want 2 (pkttype fix, early drop)", node, len(rules), err)
	}
	if err := c.DelRule(rules[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
}

// ingressRules counts the rules of node's VIP ingress chain.
func ingressRules(t *testing.T, l *lab.Lab, node string) int {
	t.Helper()
	c, nd := ingressOf(t, l, node)
	rules, err := c.GetRules(nd, &nftables.Chain{Name: "ingress", Table: nd})
	if err != nil {
		return -1
	}
	return len(rules)
}

func ingressOf(t *testing.T, l *lab.Lab, node string) (*nftables.Conn, *nftables.Table) {
	t.Helper()
	ns, err := nstest.Open(l.Netns(node))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	return c, &nftables.Table{Family: nftables.TableFamilyNetdev, Name: vipTable(l)}
}

// TestPackageUpgrade: the lab installs loadshare from its .deb (dpkg -i
// into each node's own root) and runs the service from it; then the next
// version's package is installed node by node while four clients keep
// opening connections to the VIP. Before each node's upgrade its tables are
// given an older build's shape, so the upgrade goes through the rebuild an
// operator sees when a new version changes the nftables objects: the first
// monitor finds them built by another version and rebuilds them in place,
// the owned buckets kept. No client connection may fail, no kernel sample
// (every 200 ms) may find a bucket owned by no node, and every node ends
// on the new version with the spread even.
func TestPackageUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds two packages and runs the lab")
	}
	for _, tool := range []string{"make", "dpkg", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot build and install the packages", tool)
		}
	}
	lab.SkipUnlessCapable(t, lab.Config{})
	dir := t.TempDir()
	debs := map[string]string{}
	for _, v := range []string{"v0.9.0", "v0.9.1"} {
		bd := filepath.Join(dir, v)
		cmd := exec.Command("make", "-C", "../..", "deb", "BINDIR="+bd, "VERSION="+v)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
		m, _ := filepath.Glob(filepath.Join(bd, "loadshare_*.deb"))
		if len(m) != 1 {
			t.Fatalf("make deb VERSION=%s made %v, want one package", v, m)
		}
		debs[v] = m[0]
	}
	l := newLab(t, lab.Config{Agents: buildbin.Dir(t)})
	ctx := context.Background()
	v := vipLab{l, t}
	for _, n := range l.Nodes() {
		if err := l.InstallPackage(n, debs["v0.9.0"]); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.PackageVersion(n); got != "0.9.0" {
			t.Fatalf("%s: dpkg says loadshare %q is installed, want 0.9.0", n, got)
		}
	}
	if err := l.ConfigureService(ctx, "n1", buckets, lab.ByPlacer); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes() {
		v.waitAttr(n, "loadshare_version", "v0.9.0")
	}
	v.waitSpread(90*time.Second, 4, 4, 4)

	// Clients, and the kernels sampled every 200 ms for unowned buckets.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var tally *lab.Tally
	wg.Add(2)
	go func() { defer wg.Done(); tally = l.Watch(wctx, l.VIP(), 4, 200000) }()
	var gaps []string
	go func() {
		defer wg.Done()
		for wctx.Err() == nil {
			owned := map[int]bool{}
			for _, n := range l.Nodes() {
				bs, err := l.KernelOwned(n)
				if err != nil {
					continue
				}
				for _, b := range bs {
					owned[b] = true
				}
			}
			if len(owned) < buckets {
				var missing []string
				for k := range buckets {
					if !owned[k] {
						missing = append(missing, fmt.Sprint(k))
					}
				}
				gaps = append(gaps, time.Now().Format("15:04:05.000")+" bucket "+strings.Join(missing, ","))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	for _, n := range l.Nodes() {
		t0 := time.Now()
		olderShape(t, l, n)
		if err := l.InstallPackage(n, debs["v0.9.1"]); err != nil {
			t.Fatal(err)
		}
		v.waitAttr(n, "loadshare_version", "v0.9.1")
		waitFor(t, 60*time.Second, n+"'s tables rebuilt by the new version", func() (bool, string) {
			r := ingressRules(t, l, n)
			return r == 2, fmt.Sprintf("%d ingress rules", r)
		})
		t.Logf("%s upgraded to 0.9.1, tables rebuilt, %s after the install", n, time.Since(t0).Round(time.Millisecond))
	}
	stop()
	wg.Wait()
	t.Logf("during the upgrade: %s; kernel samples with a bucket owned by no node: %d %v", tally, len(gaps), gaps)
	if tally.Failed() > 0 {
		t.Errorf("upgrade: %d of %d connections failed (%v)", tally.Failed(), tally.Total(), tally.Examples)
	}
	if len(gaps) > 0 {
		t.Errorf("upgrade: %d kernel samples with a bucket owned by no node: %v", len(gaps), gaps)
	}
	if tally.Total() < 100 {
		t.Errorf("upgrade: only %d connections made: the client did not run", tally.Total())
	}
	for _, n := range l.Nodes() {
		if got, _ := l.PackageVersion(n); got != "0.9.1" {
			t.Errorf("%s: dpkg says %q, want 0.9.1", n, got)
		}
	}
	v.waitSpread(90*time.Second, 4, 4, 4)
	out, err := l.Exec(ctx, "n1", "/usr/lib/ocf/resource.d/loadshare/.loadshare", "crm", "check")
	if strings.Contains(string(out), "loadshare_version") || strings.Contains(string(out), "different") {
		t.Errorf("crm check after the upgrade still sees mixed versions (%v):\n%s", err, out)
	}
}
