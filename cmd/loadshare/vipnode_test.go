package main

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/nstest"
)

// vipNode is a namespace as a node without Pacemaker sees it: a link eth0
// at 10.205.N.2/24 and the VIP 10.205.N.100 (8 buckets) owning buckets 1
// and 3 (removed at cleanup), and the CLI built to run in it.
func vipNode(t *testing.T, name string, n int) (ns *nstest.NS, v clusterip.VIP, bin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds the binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not in PATH")
	}
	ns = nstest.NewNode(t, name, netip.MustParsePrefix(fmt.Sprintf("10.205.%d.2/24", n)))
	plane, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithRunDir(t.TempDir()), clusterip.WithBackend(clusterip.BackendNFTables))
	if err != nil {
		t.Fatal(err)
	}
	v = clusterip.VIP{Addr: netip.MustParseAddr(fmt.Sprintf("10.205.%d.100", n)), Prefix: 24, Link: "eth0", Buckets: 8, Seed: 7}
	if err := plane.Own(v, 1, 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Remove(v) })
	return ns, v, filepath.Join(buildbin.Dir(t), "loadshare")
}
