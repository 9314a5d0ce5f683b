package metrics

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestKernelXTCluster: a VIP on the xtcluster backend, read by the
// collector through a plane bound to nftables (as loadshare metrics and
// the server_load agent bind it): its per-bucket series come from the
// chain's rule counters, the new connections of its owned buckets counted.
func TestKernelXTCluster(t *testing.T) {
	nstest.SkipShort(t, "namespace lab")
	if _, err := exec.LookPath("arptables"); err != nil {
		t.Skip("arptables not installed (Debian package arptables)")
	}
	v := clusterip.VIP{Addr: netip.MustParseAddr("10.204.1.100"), Link: "eth0", Buckets: 4, Seed: 0x5eed, Hash: clusterip.HashSourceIP}
	sw := nstest.NewSwitch(t, "lsmxx-sw")
	ns := nstest.New(t, "lsmxx-s1")
	sw.Plug(t, ns, "eth0", net.HardwareAddr{2, 0, 0, 0, 5, 1}, netip.MustParsePrefix("10.204.1.11/16"))
	p, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendXTCluster),
		clusterip.WithRunDir(t.TempDir()), clusterip.WithDrainGrace(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Own(v, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Remove(v) })
	serve(t, ns, "s1")
	client := nstest.New(t, "lsmxx-c")
	sw.Plug(t, client, "eth0", net.HardwareAddr{2, 0, 0, 0, 5, 0x50}, netip.MustParsePrefix("10.204.1.50/16"))
	const conns = 20
	for i := range conns {
		src := netip.AddrPortFrom(netip.MustParseAddr("10.204.1.50"), uint16(30000+i))
		if got, err := ask(client, src, netip.AddrPortFrom(v.Addr, labPort)); err != nil || got != "s1" {
			t.Fatalf("connection from %s: answered by %q (%v), want s1", src, got, err)
		}
	}
	reader, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendNFTables))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&Kernel{Plane: reader})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "bucket" || l.GetName() == "backend" {
					key += fmt.Sprintf(" %s=%s", l.GetName(), l.GetValue())
				}
			}
			series[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if series["loadshare_vip_info backend=xtcluster"] != 1 {
		t.Errorf("no loadshare_vip_info of backend xtcluster; series: %v", series)
	}
	var total float64
	for b := range v.Buckets {
		n, ok := series[fmt.Sprintf("%s bucket=%d", nameNew, b)]
		if !ok {
			t.Errorf("no %s for bucket %d", nameNew, b)
		}
		total += n
	}
	if total != conns {
		t.Errorf("%s summed over buckets = %v, want %d", nameNew, total, conns)
	}
}
