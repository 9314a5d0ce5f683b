package serverload

import (
	"context"
	"errors"
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
		sleep: func(context.Context, time.Duration) error { return nil },
		place: func(_ context.Context, name string) (crm.Plan, string, error) {
			placed = append(placed, name)
			if fail {
				return crm.Plan{}, "", errors.New("crm_mon: connection refused")
			}
			return crm.Plan{}, "", nil
		}}
	name := agenttest.Register(a, "server_load")
	env := agenttest.Reskeys("probe_mysql", "false", "placer", "vip db-ro")
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
	if got, want := strings.Join(placed, " "), "vip db-ro"; got != want {
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
}
