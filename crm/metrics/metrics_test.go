package metrics

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/crm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/loadshare/loadshare/test/promtest"
)

func fixture(t *testing.T, name string) func(context.Context) (*crm.Status, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	st, err := crm.ParseStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	return func(context.Context) (*crm.Status, error) { return st, nil }
}

func named(n string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return n, nil }
}

// crm_mon-lab-buckets.xml: a 3-node lab, 24 buckets of vip, n2 the DC; n1
// runs and claims 8 of them.
func TestClusterFromCrmMon(t *testing.T) {
	c := &Cluster{Status: fixture(t, "crm_mon-lab-buckets.xml"), Node: named("n1")}
	want := `
# HELP loadshare_node_dc 1 when this node is the designated controller, whose server_load monitor runs the placer.
# TYPE loadshare_node_dc gauge
loadshare_node_dc{node="n1"} 0
# HELP loadshare_node_server_load The node attribute server_load, 0-100 in coarse steps (absent when not published).
# TYPE loadshare_node_server_load gauge
loadshare_node_server_load{node="n1"} 30
# HELP loadshare_node_writable The node attribute writable_monit: 1 when the database accepts writes (absent when not published).
# TYPE loadshare_node_writable gauge
loadshare_node_writable{node="n1"} 1
# HELP loadshare_pacemaker_up 1 when crm_mon answered on this node in this scrape, else 0 (and no other Pacemaker series).
# TYPE loadshare_pacemaker_up gauge
loadshare_pacemaker_up 1
# HELP loadshare_vip_buckets Bucket primitives NAME_0 ... NAME_{N-1} of the VIP in the cluster.
# TYPE loadshare_vip_buckets gauge
loadshare_vip_buckets{vip="vip"} 24
# HELP loadshare_vip_buckets_running Buckets of the VIP Pacemaker runs on this node.
# TYPE loadshare_vip_buckets_running gauge
loadshare_vip_buckets_running{node="n1",vip="vip"} 8
# HELP loadshare_vip_buckets_target Buckets of the VIP the placer gave this node (own_NAME_K attributes set to 1 here).
# TYPE loadshare_vip_buckets_target gauge
loadshare_vip_buckets_target{node="n1",vip="vip"} 8
# HELP loadshare_vip_buckets_unowned Buckets of the VIP running on no node: their clients get no answer.
# TYPE loadshare_vip_buckets_unowned gauge
loadshare_vip_buckets_unowned{vip="vip"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "loadshare_pacemaker_up", "loadshare_node_dc",
		"loadshare_node_writable", "loadshare_node_server_load", "loadshare_vip_buckets", "loadshare_vip_buckets_target",
		"loadshare_vip_buckets_running", "loadshare_vip_buckets_unowned"); err != nil {
		t.Error(err)
	}
	// No readable_monit or replication_lag in the status: no series.
	if n := testutil.CollectAndCount(c, "loadshare_node_readable", "loadshare_node_replication_lag_seconds"); n != 0 {
		t.Errorf("%d series of attributes the status lacks, want 0", n)
	}
	lint(t, c)
}

// The flood check's verdict of this node, flood_vip, is exported as is:
// 0 and 1, nothing while not judged.
func TestClusterFlood(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "crm_mon-lab-buckets.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ value, want string }{{"0", "0"}, {"1", "1"}, {"", ""}} {
		x := string(b)
		if c.value != "" {
			x = strings.Replace(x, `<node name="n1">`, `<node name="n1">
      <attribute name="flood_vip" value="`+c.value+`"/>`, 1)
		}
		st, err := crm.ParseStatus([]byte(x))
		if err != nil {
			t.Fatal(err)
		}
		col := &Cluster{Status: func(context.Context) (*crm.Status, error) { return st, nil }, Node: named("n1")}
		want := ""
		if c.want != "" {
			want = `
# HELP loadshare_vip_flood_reached The node attribute flood_NAME of the VIP's flood check: 1 when the node receives the VIP's frames (other nodes' probes arrive), 0 when it does not while other nodes do (its buckets are kept off it); absent while not judged (just started, alone, or no node hears any other: then all keep serving).
# TYPE loadshare_vip_flood_reached gauge
loadshare_vip_flood_reached{node="n1",vip="vip"} ` + c.want + "\n"
		}
		if err := testutil.CollectAndCompare(col, strings.NewReader(want), "loadshare_vip_flood_reached"); err != nil {
			t.Errorf("flood_vip=%q: %v", c.value, err)
		}
		if c.value == "0" {
			lint(t, col)
		}
	}
}

func TestClusterDown(t *testing.T) {
	c := &Cluster{Status: func(context.Context) (*crm.Status, error) { return nil, errors.New("crm_mon: not connected") }}
	if got := testutil.ToFloat64(c); got != 0 { // the only series: loadshare_pacemaker_up
		t.Errorf("loadshare_pacemaker_up = %v, want 0", got)
	}
}

func TestPlacer(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	var s crm.PlacerStats
	s.Add(crm.PlacerRound{Result: crm.RoundNotDC, At: at.Add(-20 * time.Second), Duration: 30 * time.Millisecond})
	s.Add(crm.PlacerRound{Result: crm.RoundApplied, At: at.Add(-10 * time.Second), Duration: 200 * time.Millisecond, Moves: 3, Writes: 6})
	s.Add(crm.PlacerRound{Result: crm.RoundBalanced, At: at, Duration: 40 * time.Millisecond})
	p := &Placer{Stats: func() (map[string]crm.PlacerStats, error) { return map[string]crm.PlacerStats{"vip": s}, nil }}
	want := `
# HELP loadshare_placer_last_round_duration_seconds How long the last round took: reading the cluster (crm_mon, crm_node; one read for all the VIPs of a monitor) and on the DC writing the attributes.
# TYPE loadshare_placer_last_round_duration_seconds gauge
loadshare_placer_last_round_duration_seconds{vip="vip"} 0.04
# HELP loadshare_placer_last_round_result 1 for the last round's result (why it did nothing, when it did), 0 for the others.
# TYPE loadshare_placer_last_round_result gauge
loadshare_placer_last_round_result{result="applied",vip="vip"} 0
loadshare_placer_last_round_result{result="balanced",vip="vip"} 1
loadshare_placer_last_round_result{result="failed",vip="vip"} 0
loadshare_placer_last_round_result{result="no_buckets",vip="vip"} 0
loadshare_placer_last_round_result{result="not_dc",vip="vip"} 0
# HELP loadshare_placer_last_round_timestamp_seconds When the last round started, Unix time.
# TYPE loadshare_placer_last_round_timestamp_seconds gauge
loadshare_placer_last_round_timestamp_seconds{vip="vip"} 1.7e+09
# HELP loadshare_placer_moves_total Running buckets the rounds applied on this node sent to another node.
# TYPE loadshare_placer_moves_total counter
loadshare_placer_moves_total{vip="vip"} 3
# HELP loadshare_placer_rounds_total Placer rounds run on this node, by result: applied (wrote own_* changes), balanced (nothing to change), not_dc (another node places), no_buckets, failed.
# TYPE loadshare_placer_rounds_total counter
loadshare_placer_rounds_total{result="applied",vip="vip"} 1
loadshare_placer_rounds_total{result="balanced",vip="vip"} 1
loadshare_placer_rounds_total{result="failed",vip="vip"} 0
loadshare_placer_rounds_total{result="no_buckets",vip="vip"} 0
loadshare_placer_rounds_total{result="not_dc",vip="vip"} 1
`
	if err := testutil.CollectAndCompare(p, strings.NewReader(want), "loadshare_placer_last_round_duration_seconds",
		"loadshare_placer_last_round_result", "loadshare_placer_last_round_timestamp_seconds", "loadshare_placer_moves_total",
		"loadshare_placer_rounds_total"); err != nil {
		t.Error(err)
	}
	lint(t, p)
}

// TestPromtool: the whole Pacemaker side of a 3-node lab's status, and a
// placer record, pass Debian's promtool check metrics.
func TestPromtool(t *testing.T) {
	var s crm.PlacerStats
	s.Add(crm.PlacerRound{Result: crm.RoundApplied, At: time.Unix(1_700_000_000, 0), Duration: time.Second, Moves: 2, Writes: 4})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&Cluster{Status: fixture(t, "crm_mon-lab-buckets.xml"), Node: named("n2")},
		&Placer{Stats: func() (map[string]crm.PlacerStats, error) { return map[string]crm.PlacerStats{"vip": s}, nil }})
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
	if !strings.Contains(text.String(), `loadshare_node_dc{node="n2"} 1`) {
		t.Errorf("n2, the DC, not exported as the DC:\n%s", text.String())
	}
	promtest.CheckMetrics(t, text.Bytes())
}

// lint fails on what promlint (promtool check metrics' rules) reports.
func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
