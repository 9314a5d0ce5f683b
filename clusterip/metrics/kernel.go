package metrics

import (
	"strconv"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/prometheus/client_golang/prometheus"
)

// Kernel exports every VIP programmed in a Plane's namespace. A VIP is
// labelled by its address (the kernel does not know Pacemaker's names).
type Kernel struct {
	Plane *clusterip.Plane
}

// The names ParseKernel reads back.
const (
	nameUp      = "loadshare_kernel_up"
	nameBuckets = "loadshare_kernel_buckets"
	nameOwned   = "loadshare_bucket_owned"
	nameNew     = "loadshare_bucket_new_connections_total"
	namePackets = "loadshare_bucket_packets_total"
	nameBytes   = "loadshare_bucket_bytes_total"
	nameTracked = "loadshare_vip_tracked_connections"
)

var (
	descUp = prometheus.NewDesc(nameUp,
		"1 when this node's VIPs were read from the kernel in this scrape, else 0 (and no other kernel series).", nil, nil)
	descInfo = prometheus.NewDesc("loadshare_vip_info",
		"The settings of a VIP programmed in this node's kernel; always 1.",
		[]string{"address", "link", "backend", "hash", "mac_mode", "mac"}, nil)
	descBuckets = prometheus.NewDesc(nameBuckets,
		"The VIP's bucket count (hash modulus) in this node's kernel.", []string{"address"}, nil)
	descOwnedCount = prometheus.NewDesc("loadshare_kernel_buckets_owned",
		"Buckets of the VIP this node's kernel owns: accepts their new connections.", []string{"address"}, nil)
	descOwned = prometheus.NewDesc(nameOwned,
		"1 when this node's kernel owns the bucket, else 0.", []string{"address", "bucket"}, nil)
	descNew = prometheus.NewDesc(nameNew,
		"New connections (SYNs) of the bucket this node accepted because it owned the bucket.", []string{"address", "bucket"}, nil)
	descPackets = prometheus.NewDesc(namePackets,
		"Packets to the VIP of the bucket this node accepted: new connections' SYNs and established or related packets.", []string{"address", "bucket"}, nil)
	descBytes = prometheus.NewDesc(nameBytes,
		"Bytes (IP header included) of the packets loadshare_bucket_packets_total counts.", []string{"address", "bucket"}, nil)
	descDropped = prometheus.NewDesc("loadshare_vip_dropped_packets_total",
		"Packets to the VIP this node dropped because another node answers them: stage ingress (netdev, the bucket is not held here), "+
			"stage bucket (after conntrack: a new connection of a bucket not owned, or not TCP). Absent for a stage without a counter.",
		[]string{"address", "stage"}, nil)
	descTracked = prometheus.NewDesc(nameTracked,
		"Connections to the VIP conntrack still tracks open on this node (not TIME_WAIT or CLOSE).", []string{"address"}, nil)
	descAddress = prometheus.NewDesc("loadshare_vip_address_present",
		"1 when the VIP's address is on its link on this node.", []string{"address"}, nil)
	descMAC = prometheus.NewDesc("loadshare_vip_cluster_mac_joined",
		"1 when the VIP's link listens to the cluster MAC.", []string{"address"}, nil)
	descFlood = prometheus.NewDesc("loadshare_flood_check_running",
		"1 while the VIP's flood check runs on this node (its table exists), whether or not the node serves buckets of the VIP.",
		[]string{"address"}, nil)
	descFloodProbes = prometheus.NewDesc("loadshare_flood_probes_received_total",
		"Flood check probes of the VIP this node received from another node (by the sender's link MAC) since the check started here; "+
			"a node whose counters stop growing while its peers' grow is not reached by the VIP's frames.",
		[]string{"address", "peer"}, nil)
	descDraining = prometheus.NewDesc("loadshare_vip_draining",
		"1 while this node owns no bucket of the VIP but still has its address: the release of its last bucket waits for open connections.",
		[]string{"address"}, nil)
)

// Describe implements prometheus.Collector.
func (k *Kernel) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descInfo, descBuckets, descOwnedCount, descOwned, descNew, descPackets, descBytes,
		descDropped, descTracked, descAddress, descMAC, descDraining, descFlood, descFloodProbes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A VIP whose counters cannot
// be read still has its other series.
func (k *Kernel) Collect(ch chan<- prometheus.Metric) {
	sts, err := k.Plane.Status()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for _, s := range sts {
		var r reading
		r.status = s
		r.counters, _ = k.Plane.Counters(s.VIP)
		r.drops, _ = k.Plane.Dropped(s.VIP)
		r.collect(ch)
	}
	addrs, _ := k.Plane.FloodChecks()
	for _, a := range addrs {
		heard, err := k.Plane.FloodHeard(clusterip.VIP{Addr: a})
		if err != nil {
			continue // gone meanwhile
		}
		collectFlood(ch, a.String(), heard)
	}
}

// collectFlood is the pure part of a flood check: its probe counters by
// sender MAC → metrics.
func collectFlood(ch chan<- prometheus.Metric, addr string, heard map[string]uint64) {
	ch <- prometheus.MustNewConstMetric(descFlood, prometheus.GaugeValue, 1, addr)
	for mac, n := range heard {
		ch <- prometheus.MustNewConstMetric(descFloodProbes, prometheus.CounterValue, float64(n), addr, mac)
	}
}

// reading is what the kernel holds of one VIP.
type reading struct {
	status   clusterip.Status
	counters map[clusterip.Bucket]clusterip.Counter // nil: not read
	drops    clusterip.Drops
}

// collect is the pure part: one VIP's reading → metrics.
func (r reading) collect(ch chan<- prometheus.Metric) {
	s := r.status
	a := s.VIP.Addr.String()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descInfo, 1, a, s.VIP.Link, s.Backend.String(), s.VIP.Hash.String(), s.VIP.MACMode.String(), s.MAC.String())
	gauge(descBuckets, float64(s.VIP.Buckets), a)
	gauge(descOwnedCount, float64(len(s.Owned)), a)
	owned := make(map[clusterip.Bucket]bool, len(s.Owned))
	for _, b := range s.Owned {
		owned[b] = true
	}
	for b := range clusterip.Bucket(s.VIP.Buckets) {
		bl := strconv.Itoa(int(b))
		gauge(descOwned, b2f(owned[b]), a, bl)
		if r.counters != nil {
			c := r.counters[b]
			counter(descNew, c.NewConns, a, bl)
			counter(descPackets, c.Packets, a, bl)
			counter(descBytes, c.Bytes, a, bl)
		}
	}
	if r.drops.IngressCounted {
		counter(descDropped, r.drops.Ingress, a, "ingress")
	}
	if r.drops.BucketCounted {
		counter(descDropped, r.drops.Bucket, a, "bucket")
	}
	gauge(descTracked, float64(s.Tracked), a)
	gauge(descAddress, b2f(s.Address), a)
	gauge(descMAC, b2f(s.MACJoined), a)
	gauge(descDraining, b2f(s.Address && len(s.Owned) == 0), a)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
