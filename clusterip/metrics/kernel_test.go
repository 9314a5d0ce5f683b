package metrics

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/loadshare/loadshare/test/promtest"
)

// readingCollector collects fixed readings, for the pure tests.
type readingCollector []reading

func (r readingCollector) Describe(ch chan<- *prometheus.Desc) { (&Kernel{}).Describe(ch) }
func (r readingCollector) Collect(ch chan<- prometheus.Metric) {
	for _, x := range r {
		x.collect(ch)
	}
}

func TestReading(t *testing.T) {
	v := clusterip.VIP{Addr: netip.MustParseAddr("10.201.0.100"), Link: "eth0", Buckets: 3, Seed: 1}
	mac, _ := net.ParseMAC("01:00:5e:49:00:64")
	draining := reading{status: clusterip.Status{VIP: v, Backend: clusterip.BackendNFTables, MAC: mac, Address: true, MACJoined: true, Tracked: 2}}
	v2 := v
	v2.Addr = netip.MustParseAddr("10.201.0.101")
	serving := reading{
		status: clusterip.Status{VIP: v2, Backend: clusterip.BackendNFTables, MAC: mac, Owned: []clusterip.Bucket{0, 2}, Address: true, MACJoined: true},
		counters: map[clusterip.Bucket]clusterip.Counter{
			0: {Packets: 30, Bytes: 1800, NewConns: 10},
			1: {Packets: 5, Bytes: 300}, // established connections of a bucket released since
			2: {Packets: 3, Bytes: 180, NewConns: 1},
		},
		drops: clusterip.Drops{Ingress: 70, IngressCounted: true, Bucket: 4, BucketCounted: true},
	}
	c := readingCollector{draining, serving}
	want := `
# HELP loadshare_bucket_new_connections_total New connections (SYNs) of the bucket this node accepted because it owned the bucket.
# TYPE loadshare_bucket_new_connections_total counter
loadshare_bucket_new_connections_total{address="10.201.0.101",bucket="0"} 10
loadshare_bucket_new_connections_total{address="10.201.0.101",bucket="1"} 0
loadshare_bucket_new_connections_total{address="10.201.0.101",bucket="2"} 1
# HELP loadshare_bucket_owned 1 when this node's kernel owns the bucket, else 0.
# TYPE loadshare_bucket_owned gauge
loadshare_bucket_owned{address="10.201.0.100",bucket="0"} 0
loadshare_bucket_owned{address="10.201.0.100",bucket="1"} 0
loadshare_bucket_owned{address="10.201.0.100",bucket="2"} 0
loadshare_bucket_owned{address="10.201.0.101",bucket="0"} 1
loadshare_bucket_owned{address="10.201.0.101",bucket="1"} 0
loadshare_bucket_owned{address="10.201.0.101",bucket="2"} 1
# HELP loadshare_kernel_buckets_owned Buckets of the VIP this node's kernel owns: accepts their new connections.
# TYPE loadshare_kernel_buckets_owned gauge
loadshare_kernel_buckets_owned{address="10.201.0.100"} 0
loadshare_kernel_buckets_owned{address="10.201.0.101"} 2
# HELP loadshare_vip_draining 1 while this node owns no bucket of the VIP but still has its address: the release of its last bucket waits for open connections.
# TYPE loadshare_vip_draining gauge
loadshare_vip_draining{address="10.201.0.100"} 1
loadshare_vip_draining{address="10.201.0.101"} 0
# HELP loadshare_vip_dropped_packets_total Packets to the VIP this node dropped because another node answers them: stage ingress (netdev, the bucket is not held here), stage bucket (after conntrack: a new connection of a bucket not owned, or not TCP). Absent for a stage without a counter.
# TYPE loadshare_vip_dropped_packets_total counter
loadshare_vip_dropped_packets_total{address="10.201.0.101",stage="bucket"} 4
loadshare_vip_dropped_packets_total{address="10.201.0.101",stage="ingress"} 70
# HELP loadshare_vip_tracked_connections Connections to the VIP conntrack still tracks open on this node (not TIME_WAIT or CLOSE).
# TYPE loadshare_vip_tracked_connections gauge
loadshare_vip_tracked_connections{address="10.201.0.100"} 2
loadshare_vip_tracked_connections{address="10.201.0.101"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "loadshare_bucket_new_connections_total", "loadshare_bucket_owned",
		"loadshare_kernel_buckets_owned", "loadshare_vip_draining", "loadshare_vip_dropped_packets_total", "loadshare_vip_tracked_connections"); err != nil {
		t.Error(err)
	}
	// Without counters (unreadable) the per-bucket
	// counters are absent, not zero.
	if n := testutil.CollectAndCount(readingCollector{draining}, "loadshare_bucket_packets_total", "loadshare_vip_dropped_packets_total"); n != 0 {
		t.Errorf("%d counter series without counters, want 0", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

type floodCollector map[string]map[string]uint64

func (f floodCollector) Describe(ch chan<- *prometheus.Desc) { (&Kernel{}).Describe(ch) }
func (f floodCollector) Collect(ch chan<- prometheus.Metric) {
	for a, heard := range f {
		collectFlood(ch, a, heard)
	}
}

// TestFloodMetrics: a flood check's counters by sender, on a node that
// serves no bucket of the VIP: running 1, one counter per peer; they pass
// promlint and promtool check metrics.
func TestFloodMetrics(t *testing.T) {
	c := floodCollector{"10.201.0.100": {"02:00:00:00:02:01": 42, "02:00:00:00:02:03": 39}, "fd00:201::100": {}}
	want := `
# HELP loadshare_flood_check_running 1 while the VIP's flood check runs on this node (its table exists), whether or not the node serves buckets of the VIP.
# TYPE loadshare_flood_check_running gauge
loadshare_flood_check_running{address="10.201.0.100"} 1
loadshare_flood_check_running{address="fd00:201::100"} 1
# HELP loadshare_flood_probes_received_total Flood check probes of the VIP this node received from another node (by the sender's link MAC) since the check started here; a node whose counters stop growing while its peers' grow is not reached by the VIP's frames.
# TYPE loadshare_flood_probes_received_total counter
loadshare_flood_probes_received_total{address="10.201.0.100",peer="02:00:00:00:02:01"} 42
loadshare_flood_probes_received_total{address="10.201.0.100",peer="02:00:00:00:02:03"} 39
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	promtest.CheckMetrics(t, text.Bytes())
}
