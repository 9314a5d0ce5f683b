package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
)

// TestVIPXTCluster runs the service with backend=xtcluster (the iptables
// cluster match, hash=sourceip; the client dials from 64 addresses) on the
// real cluster: the initial spread 4/4/4 in every kernel and 1000
// connections answered by all three nodes; a node crash (fenced when the
// lab fences) whose buckets the survivors take over, answering all
// connections; its restart, after which the buckets spread back. No node
// holds an nftables table of the VIP's buckets; the flood check's own
// table runs beside them, and every node hears the others (flood_vip=1).
func TestVIPXTCluster(t *testing.T) {
	bin := buildbin.Dir(t)
	l := newLab(t, lab.Config{Agents: bin, Backend: "xtcluster", DB: lab.DBStandalone})
	ctx := context.Background()
	if err := l.ConfigureService(ctx, "n1", buckets, lab.ByPlacer); err != nil {
		t.Fatal(err)
	}
	v := vipLab{l, t}
	for _, n := range l.Nodes() {
		v.waitAttr(n, "writable_monit", "1")
		v.waitAttr(n, crm.FloodAttr(lab.VIPResource), "1")
	}
	all := l.Nodes()
	third := buckets / len(all)
	v.waitSpread(90*time.Second, third, third, third)
	v.answerAll(1000, all...)
	noVIPTables := func() {
		t.Helper()
		for _, n := range l.Nodes() {
			st, ok, err := l.KernelVIP(n, l.VIP())
			if err != nil || (ok && st.Backend.String() != "xtcluster") {
				t.Errorf("%s: the VIP in the kernel: %+v, %v; want backend xtcluster", n, st, err)
			}
			out, err := l.Exec(ctx, n, "nft", "list", "tables")
			flood := "table netdev " + clusterip.FloodTableName(clusterip.VIP{Addr: l.VIP()})
			if err != nil || strings.Contains(strings.ReplaceAll(string(out), flood, ""), "loadshare-") {
				t.Errorf("%s: nft list tables: %v\n%s", n, err, out)
			}
		}
	}
	noVIPTables()

	victim := all[2]
	t0 := time.Now()
	if err := l.Crash(victim); err != nil {
		t.Fatal(err)
	}
	half := buckets / (len(all) - 1)
	v.waitSpread(90*time.Second, half, half, 0)
	t.Logf("failover (xtcluster): %s killed → its buckets owned by the survivors: %s", victim, time.Since(t0).Round(time.Millisecond))
	if l.Fencing() {
		requireFenced(t, l, all[0], victim, "off", t0)
	}
	v.answerAll(1000, slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == victim })...)
	t0 = time.Now()
	if err := l.Start(ctx, victim); err != nil {
		t.Fatal(err)
	}
	v.waitSpread(120*time.Second, third, third, third)
	t.Logf("%s restarted → spread back (xtcluster): %s", victim, time.Since(t0).Round(time.Millisecond))
	v.answerAll(1000, all...)
	noVIPTables()
}
