package serverload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/crm/crmtest"
)

// TestServerLoadRunsPlacer: a recurring monitor runs one placement round per
// configured VIP after publishing; a probe does not; a failed round is
// logged and the monitor still succeeds (server_load itself is healthy).
func TestServerLoadRunsPlacer(t *testing.T) {
	host := &replayHost{levels: []float64{0.2}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var placed []string
	fail := false
	a := &serverLoad{env: attrs.Env{Attrs: &crmtest.Attrs{}, RunDir: t.TempDir(), Now: time.Now}, host: host,
		sleep: func(context.Context, time.Duration) error { return nil }, cluster: fakeCluster,
		place: func(_ context.Context, _ *crm.Status, _ string, v crm.PlacerVIP, _ func([]crm.Assignment) bool) (crm.Plan, string, error) {
			placed = append(placed, v.String())
			if fail {
				return crm.Plan{}, "", errors.New("crm_mon: connection refused")
			}
			return crm.Plan{}, "", nil
		}}
	name := agenttest.Register(a, "server_load")
	env := agenttest.Reskeys("probe_mysql", "false", "placer", "vip db-ro:require=readable_monit,writer-weight=50")
	env["OCF_RESOURCE_INSTANCE"] = "load:0"

	code, log := agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start", code, 0, log)
	code, log = agenttest.RunMain(t, name, "monitor", env) // interval 0: a probe
	agenttest.WantCode(t, "probe", code, 0, log)
	if len(placed) != 0 {
		t.Fatalf("start and probe ran the placer for %q, want no rounds", placed)
	}
	env["OCF_RESKEY_CRM_meta_interval"] = "10000"
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor", code, 0, log)
	if got, want := strings.Join(placed, " "), "vip db-ro:require=readable_monit,writer-weight=50"; got != want {
		t.Fatalf("monitor placed %q, want %q", got, want)
	}
	fail = true
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor with a failing placer", code, 0, log)
	if !strings.Contains(log, "placement round failed") || !strings.Contains(log, "connection refused") {
		t.Errorf("failing placer: log %q does not say the round failed and why", log)
	}

	env["OCF_RESKEY_placer"] = "vip 9bad"
	code, log = agenttest.RunMain(t, name, "validate-all", env)
	agenttest.WantCode(t, "validate-all placer=\"vip 9bad\"", code, 6, log)
	if !strings.Contains(log, "placer") || !strings.Contains(log, `"9bad"`) {
		t.Errorf("validate-all log %q does not name the parameter and the bad prefix", log)
	}
	for _, bad := range []struct{ value, says string }{
		{"ro:require=lag_monit", `require="lag_monit"`},
		{"ro:writer-weight=150", "writer weight=150"},
		{"ro:max-buckets=x", `max-buckets="x": not an integer`},
		{"ro:colour=red", `unknown key "colour"`},
		{"ro ro", "named twice"},
	} {
		env["OCF_RESKEY_placer"] = bad.value
		code, log = agenttest.RunMain(t, name, "validate-all", env)
		agenttest.WantCode(t, "validate-all placer="+bad.value, code, 6, log)
		if !strings.Contains(log, "placer") || !strings.Contains(log, bad.says) {
			t.Errorf("validate-all placer=%q: log %q does not name the parameter and say %q", bad.value, log, bad.says)
		}
	}
}

// TestServerLoadSettles: the placer is told to settle once the same ideal
// targets have held for placer_settle seconds across monitors (the time
// kept in the state file), not before, not after they change, and not on
// the strength of what this node saw before a round it skipped (not the
// DC).
func TestServerLoadSettles(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	host := &replayHost{levels: []float64{0.2}, now: now}
	ideal := []crm.Assignment{{Node: "n1", Buckets: 4}, {Node: "n2", Buckets: 4}}
	skip := ""
	var settled []bool
	a := &serverLoad{env: attrs.Env{Attrs: &crmtest.Attrs{}, RunDir: t.TempDir(), Now: func() time.Time { return now }}, host: host,
		sleep: func(context.Context, time.Duration) error { return nil }, cluster: fakeCluster,
		place: func(_ context.Context, _ *crm.Status, _ string, _ crm.PlacerVIP, settle func([]crm.Assignment) bool) (crm.Plan, string, error) {
			if skip != "" {
				return crm.Plan{}, skip, nil
			}
			settled = append(settled, settle(ideal))
			return crm.Plan{}, "", nil
		}}
	name := agenttest.Register(a, "server_load")
	env := agenttest.Reskeys("probe_mysql", "false", "placer", "vip", "placer_settle", "30", "CRM_meta_interval", "10000")
	code, log := agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start", code, 0, log)
	monitor := func(after time.Duration) {
		t.Helper()
		now = now.Add(after)
		code, log := agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, "monitor", code, 0, log)
	}
	monitor(0)                // first seen: not settled
	monitor(20 * time.Second) // held 20 s
	monitor(10 * time.Second) // held 30 s: settled
	ideal = []crm.Assignment{{Node: "n1", Buckets: 5}, {Node: "n2", Buckets: 3}}
	monitor(10 * time.Second) // changed: not settled
	monitor(40 * time.Second) // held 40 s: settled
	skip = "this node (n1) is not the DC"
	monitor(10 * time.Second)
	skip = ""
	monitor(10 * time.Second) // DC again: first seen anew
	if want := []bool{false, false, true, false, true, false}; !slices.Equal(settled, want) {
		t.Errorf("settle answers %v, want %v", settled, want)
	}
}

// TestServerLoadMetricsTextfile: with metrics_textfile, every recurring
// monitor writes DIR/loadshare.prom, whose placer series count the rounds
// the monitors ran (the record kept in the state file); the directory
// must exist (start and validate-all check it) and be absolute.
func TestServerLoadMetricsTextfile(t *testing.T) {
	host := &replayHost{levels: []float64{0.2}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	rounds := []struct {
		plan    crm.Plan
		skipped string
	}{
		{crm.Plan{Set: []crm.AttrChange{{Node: "n1", Name: "own_vip_3"}}, Delete: []crm.AttrChange{{Node: "n2", Name: "own_vip_3"}},
			Owners: crm.Placement{"n1"}, Running: crm.Placement{"n2"}}, ""},
		{crm.Plan{}, ""},
		{crm.Plan{}, "this node (n1) is not the DC (\"n2\")"},
	}
	i := 0
	runDir, dir := t.TempDir(), t.TempDir()
	a := &serverLoad{env: attrs.Env{Attrs: &crmtest.Attrs{}, RunDir: runDir, Now: time.Now}, host: host,
		sleep: func(context.Context, time.Duration) error { return nil }, cluster: fakeCluster,
		place: func(context.Context, *crm.Status, string, crm.PlacerVIP, func([]crm.Assignment) bool) (crm.Plan, string, error) {
			r := rounds[i%len(rounds)]
			i++
			return r.plan, r.skipped, nil
		},
		textfile: WriteTextfile}
	name := agenttest.Register(a, "server_load")
	env := agenttest.Reskeys("probe_mysql", "false", "placer", "vip", "CRM_meta_interval", "10000", "metrics_textfile", dir)
	code, log := agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start", code, 0, log)
	for range rounds {
		code, log = agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, "monitor", code, 0, log)
	}
	b, err := os.ReadFile(filepath.Join(dir, TextfileName))
	if err != nil {
		t.Fatalf("monitor with metrics_textfile=%s: %v", dir, err)
	}
	for _, want := range []string{
		`loadshare_placer_rounds_total{result="applied",vip="vip"} 1`,
		`loadshare_placer_rounds_total{result="balanced",vip="vip"} 1`,
		`loadshare_placer_rounds_total{result="not_dc",vip="vip"} 1`,
		`loadshare_placer_moves_total{vip="vip"} 1`,
		`loadshare_placer_attribute_writes_total{vip="vip"} 2`,
		`loadshare_placer_last_round_result{result="not_dc",vip="vip"} 1`,
		`loadshare_placer_record_up 1`,
		// The Pacemaker series come from the status the rounds read
		// (fakeCluster), not from another crm_mon.
		`loadshare_pacemaker_up 1`,
		`loadshare_node_dc{node="n1"} 1`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("%s lacks %s:\n%s", TextfileName, want, b)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*")); len(tmp) != 1 {
		t.Errorf("%s holds %q, want only %s (no temporary file left)", dir, tmp, TextfileName)
	}

	// A directory gone while running: said once, not every monitor, and
	// once more when the file is written again.
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	env["OCF_RESKEY_metrics_textfile"] = gone
	os.Remove(gone)
	var logs []string
	for range 2 {
		code, log = agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, "monitor with metrics_textfile gone", code, 0, log)
		logs = append(logs, log)
	}
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor with metrics_textfile back", code, 0, log)
	logs = append(logs, log)
	if !strings.Contains(logs[0], "metrics textfile not written") || strings.Contains(logs[1], "textfile") ||
		!strings.Contains(logs[2], "metrics textfile written again") {
		t.Errorf("monitors with the directory gone, gone, back logged %q; want the failure once, then nothing, then written again", logs)
	}
	if _, err := os.Stat(filepath.Join(gone, TextfileName)); err != nil {
		t.Errorf("directory back: %v", err)
	}

	env["OCF_RESKEY_metrics_textfile"] = filepath.Join(dir, "missing")
	code, log = agenttest.RunMain(t, name, "validate-all", env)
	agenttest.WantCode(t, "validate-all metrics_textfile=missing", code, 2, log)
	env["OCF_RESKEY_metrics_textfile"] = "textfiles"
	code, log = agenttest.RunMain(t, name, "validate-all", env)
	agenttest.WantCode(t, "validate-all metrics_textfile=textfiles", code, 6, log)
	if !strings.Contains(log, "metrics_textfile") || !strings.Contains(log, "absolute") {
		t.Errorf("validate-all log %q does not name the parameter and say why", log)
	}
}

// fakeCluster stands in for crm_mon and crm_node: the placer stand-ins
// ignore the status.
func fakeCluster(context.Context) (*crm.Status, string, error) {
	return &crm.Status{DC: "n1"}, "n1", nil
}
