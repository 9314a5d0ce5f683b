package metrics

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// node is what Kernel collects on a node with fixed readings.
type node struct {
	up float64
	rs readingCollector
}

func (n node) Describe(ch chan<- *prometheus.Desc) { (&Kernel{}).Describe(ch) }
func (n node) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, n.up)
	n.rs.Collect(ch)
}

// exposition is what a node with these readings serves.
func exposition(t *testing.T, up float64, rs ...reading) string {
	t.Helper()
	return string(promtest.Exposition(t, node{up, rs}))
}

// TestParseKernel: what Kernel writes reads back, per VIP, and a node that
// could not read its kernel, or text that is not an exposition, is an error.
func TestParseKernel(t *testing.T) {
	v := clusterip.VIP{Addr: netip.MustParseAddr("10.201.0.100"), Link: "eth0", Buckets: 4, Seed: 1}
	mac, _ := net.ParseMAC("01:00:5e:49:00:64")
	v2 := v
	v2.Addr = netip.MustParseAddr("10.201.0.101")
	text := exposition(t, 1,
		reading{status: clusterip.Status{VIP: v, Backend: clusterip.BackendNFTables, MAC: mac, Owned: []clusterip.Bucket{3, 1}, Address: true, Tracked: 5},
			counters: map[clusterip.Bucket]clusterip.Counter{1: {Packets: 30, Bytes: 1800, NewConns: 10}, 3: {Packets: 3, Bytes: 180, NewConns: 1}}},
		reading{status: clusterip.Status{VIP: v2, Backend: clusterip.BackendNFTables, MAC: mac}})
	got, err := ParseKernel(strings.NewReader(text + "# TYPE node_load1 gauge\nnode_load1 0.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Remote{
		{Address: "10.201.0.100", Buckets: 4, Owned: []int{1, 3}, NewConns: 11, Packets: 33, Bytes: 1980, Tracked: 5},
		{Address: "10.201.0.101", Buckets: 4, Owned: []int{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseKernel = %+v\nwant %+v\nfrom:\n%s", got, want, text)
	}
	for name, in := range map[string]string{
		"kernel not read": exposition(t, 0),
		"other exporter":  "# TYPE node_load1 gauge\nnode_load1 0.5\n",
		"not text format": "<html>404</html>\n",
	} {
		if _, err := ParseKernel(strings.NewReader(in)); err == nil {
			t.Errorf("%s: ParseKernel accepted %q", name, in)
		}
	}
}
