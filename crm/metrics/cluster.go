package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/loadshare/loadshare/crm"
	"github.com/prometheus/client_golang/prometheus"
)

// Cluster exports this node's view from crm_mon: one node (this one), so
// that every node's exporter exports only its own series and the label
// sets stay bounded by the bucket count, not nodes × buckets.
type Cluster struct {
	// Status reads the cluster; crm.ReadStatus when nil.
	Status func(ctx context.Context) (*crm.Status, error)
	// Node names this node; crm.LocalNode when nil.
	Node func(ctx context.Context) (string, error)
	// Timeout bounds one scrape's reads; 10 s when 0.
	Timeout time.Duration
}

var (
	descUp = prometheus.NewDesc("loadshare_pacemaker_up",
		"1 when crm_mon answered on this node in this scrape, else 0 (and no other Pacemaker series).", nil, nil)
	descOnline = prometheus.NewDesc("loadshare_node_online",
		"1 when this node is an online member that may run resources (not standby, maintenance or unclean).", []string{"node"}, nil)
	descDC = prometheus.NewDesc("loadshare_node_dc",
		"1 when this node is the designated controller, whose server_load monitor runs the placer.", []string{"node"}, nil)
	descWritable = prometheus.NewDesc("loadshare_node_writable",
		"The node attribute writable_monit: 1 when the database accepts writes (absent when not published).", []string{"node"}, nil)
	descReadable = prometheus.NewDesc("loadshare_node_readable",
		"The node attribute readable_monit: 1 when the database serves reads (absent when not published).", []string{"node"}, nil)
	descLoad = prometheus.NewDesc("loadshare_node_server_load",
		"The node attribute server_load, 0-100 in coarse steps (absent when not published).", []string{"node"}, nil)
	descLag = prometheus.NewDesc("loadshare_node_replication_lag_seconds",
		"The node attribute replication_lag: seconds behind the source, in steps (absent unless mysql_monitor publish_lag is set).", []string{"node"}, nil)
	descBuckets = prometheus.NewDesc("loadshare_vip_buckets",
		"Bucket primitives NAME_0 ... NAME_{N-1} of the VIP in the cluster.", []string{"vip"}, nil)
	descTarget = prometheus.NewDesc("loadshare_vip_buckets_target",
		"Buckets of the VIP the placer gave this node (own_NAME_K attributes set to 1 here).", []string{"vip", "node"}, nil)
	descRunning = prometheus.NewDesc("loadshare_vip_buckets_running",
		"Buckets of the VIP Pacemaker runs on this node.", []string{"vip", "node"}, nil)
	descFlood = prometheus.NewDesc("loadshare_vip_flood_reached",
		"The node attribute flood_NAME of the VIP's flood check: 1 when the node receives the VIP's frames (other nodes' probes arrive), "+
			"0 when it does not while other nodes do (its buckets are kept off it); absent while not judged (just started, alone, "+
			"or no node hears any other: then all keep serving).", []string{"vip", "node"}, nil)
	descDark = prometheus.NewDesc("loadshare_vip_buckets_unowned",
		"Buckets of the VIP running on no node: their clients get no answer.", []string{"vip"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Cluster) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descOnline, descDC, descWritable, descReadable, descLoad, descLag,
		descBuckets, descTarget, descRunning, descDark, descFlood} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one crm_mon and one crm_node.
func (c *Cluster) Collect(ch chan<- prometheus.Metric) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	status, node := c.Status, c.Node
	if status == nil {
		status = crm.ReadStatus
	}
	if node == nil {
		node = crm.LocalNode
	}
	st, err := status(ctx)
	var me string
	if err == nil {
		me, err = node(ctx)
	}
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	collectCluster(ch, st, me)
}

// collectCluster is the pure part: a status and this node's name → metrics.
func collectCluster(ch chan<- prometheus.Metric, st *crm.Status, me string) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ns, ok := st.Node(me)
	gauge(descDC, b2f(st.DC != "" && st.DC == me), me)
	gauge(descOnline, b2f(ok && ns.Online && !ns.Standby && !ns.Maintenance && !ns.Unclean), me)
	for _, a := range []struct {
		d    *prometheus.Desc
		name string
	}{{descWritable, crm.AttrWritable}, {descReadable, crm.AttrReadable}, {descLoad, crm.AttrLoad}, {descLag, "replication_lag"}} {
		if v, err := strconv.ParseFloat(ns.Attrs[a.name], 64); err == nil {
			gauge(a.d, v, me)
		}
	}
	for _, name := range crm.VIPsIn(st) {
		spec := crm.Spec{Name: name, Buckets: crm.BucketsIn(st, name)}
		target, running, dark := 0, 0, 0
		for k := 0; k < spec.Buckets; k++ {
			if ns.Attrs[spec.OwnAttr(k)] == "1" {
				target++
			}
			r, ok := st.Resource(spec.Resource(k))
			switch {
			case !ok || len(r.Nodes) == 0:
				dark++
			case len(r.Nodes) == 1 && r.Nodes[0] == me:
				running++
			}
		}
		gauge(descBuckets, float64(spec.Buckets), name)
		gauge(descTarget, float64(target), name, me)
		gauge(descRunning, float64(running), name, me)
		gauge(descDark, float64(dark), name)
		if v := ns.Attrs[crm.FloodAttr(name)]; v == "0" || v == "1" {
			gauge(descFlood, b2f(v == "1"), name, me)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
