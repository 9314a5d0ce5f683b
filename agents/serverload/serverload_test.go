package serverload

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm/crmtest"
	"github.com/loadshare/loadshare/loadmon"
	"github.com/loadshare/loadshare/loadmon/hostprobe"
	"github.com/loadshare/loadshare/test/mariadbtest"
)

// replayHost is a host whose samples are scripted: each Sample returns the
// next one, on a 2-core host with CPU busy and load at the given level.
type replayHost struct {
	levels []float64
	i      int
	now    time.Time
	cpu    loadmon.CPUTimes
}

func (h *replayHost) Sample(context.Context) (loadmon.HostSample, error) {
	level := h.levels[min(h.i, len(h.levels)-1)]
	h.i++
	h.now = h.now.Add(10 * time.Second)
	h.cpu.Busy += level * 20
	h.cpu.Total += 20
	return loadmon.HostSample{Time: h.now, CPU: h.cpu, Cores: 2, Load1: level * 4, MemPSI: 0, MemAvailable: 0.9}, nil
}

func TestServerLoadPublishesOnChange(t *testing.T) {
	// start takes two samples; then one per monitor.
	levels := []float64{0.2, 0.2}
	levels = append(levels, 0.2, 0.2, 0.2, 1.0, 0.2, 0.2) // a one-interval spike
	for range 30 {
		levels = append(levels, 0.9) // steady high
	}
	host := &replayHost{levels: levels, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	fake := &crmtest.Attrs{}
	runDir := t.TempDir()
	var slept []time.Duration
	a := &serverLoad{env: attrs.Env{Attrs: fake, RunDir: runDir, Now: time.Now}, host: host,
		sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	name := agenttest.Register(a, "server_load")
	env := agenttest.Reskeys("probe_mysql", "false") // the host only: values below are exact
	env["OCF_RESOURCE_INSTANCE"] = "load:0"

	code, log := agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor before start", code, 7, log)
	code, log = agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start", code, 0, log)
	// CPU 20 %, load 0.4 per core of 2 = 0.2, memory 0, no database:
	// (0.35·0.2 + 0.15·0.2) / 0.70 → 14.3 → 15.
	// The build's version rides along at start, and only then.
	if got, want := fake.TakeCalls(), []string{"set loadshare_version=" + ocf.Version() + " delay=10s", "set server_load=15 delay=10s"}; !slices.Equal(got, want) || len(slept) != 1 {
		t.Errorf("start: attrd calls %q, slept %v; want %q after one settle wait", got, slept, want)
	}
	if !strings.Contains(log, "server load changed server_load=15") {
		t.Errorf("start log %q lacks the new value and its components", log)
	}

	var published []string
	for i := 0; i < 6; i++ {
		code, log = agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, "monitor", code, 0, log)
		published = append(published, fake.TakeCalls()...)
	}
	if len(published) != 0 {
		t.Errorf("steady load with a one-interval spike: attrd calls %q, want none", published)
	}
	for i := 0; i < 28; i++ {
		code, log = agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, "monitor", code, 0, log)
		published = append(published, fake.TakeCalls()...)
	}
	if v := fake.Value(attrLoad); v != "60" && v != "65" {
		// 90 % CPU and 1.8 load per core of 2: (0.35·0.9 + 0.15·0.9)/0.70 → 64.3;
		// hysteresis keeps a steady value within 2.5+2 points of it.
		t.Errorf("after 28 monitors at 90 %%: server_load=%s, want 60 or 65; calls %q", v, published)
	}
	if len(published) > 12 {
		t.Errorf("rising load: %d attrd calls %q, want at most 12 (one per 5-point step)", len(published), published)
	}
	for i := 1; i < len(published); i++ {
		if published[i] == published[i-1] {
			t.Errorf("published the same value twice in a row: %q", published)
		}
	}

	// The model lives in the state file between processes.
	b, err := os.ReadFile(filepath.Join(runDir, "loadshare-"+name+"-load:0.state"))
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil || st.Model == nil || !st.Model.Valid || strconv.Itoa(st.Model.Value) != fake.Value(attrLoad) {
		t.Errorf("state file %s: %+v, %v; want the model with value %s", b, st.Model, err, fake.Value(attrLoad))
	}

	code, log = agenttest.RunMain(t, name, "stop", env)
	agenttest.WantCode(t, "stop", code, 0, log)
	if got, want := fake.TakeCalls(), []string{"delete server_load", "delete loadshare_version"}; !slices.Equal(got, want) {
		t.Errorf("stop: attrd calls %q, want %q", got, want)
	}
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor after stop", code, 7, log)
}

func TestServerLoadWithMariaDB(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.Options{})
	srv.CreateUser(t, "mon", "pw")
	fake := &crmtest.Attrs{}
	a := &serverLoad{env: attrs.Env{Attrs: fake, RunDir: t.TempDir(), Now: time.Now}, host: &hostprobe.Host{}, sleep: sleepCtx}
	name := agenttest.Register(a, "server_load")
	env := agenttest.Reskeys("defaults_file", srv.DefaultsFile("mon", "pw"))
	code, log := agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start", code, 0, log)
	b, _ := os.ReadFile(a.env.StatePath(paramsFor(name, agenttest.Instance)))
	var st state
	json.Unmarshal(b, &st)
	if st.Model == nil || st.Model.Components.DBThreads < 0 || st.Model.Components.DBConnections < 0 || st.Model.Components.CPU < 0 {
		t.Fatalf("state after start %s: want CPU and database components known", b)
	}
	if v := fake.Value(attrLoad); v == "" {
		t.Errorf("start published nothing")
	}

	// The database going away leaves its components out; the agent runs on.
	srv.Stop()
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor with the database down", code, 0, log)
	if !strings.Contains(log, "database not probed, its load left out") {
		t.Errorf("database down: log %q does not say so", log)
	}
	b, _ = os.ReadFile(a.env.StatePath(paramsFor(name, agenttest.Instance)))
	json.Unmarshal(b, &st)
	if c := st.Model.Components; c.DBThreads != -1 || c.DBConnections != -1 {
		t.Errorf("database down: components %+v, want the database ones unknown (-1)", c)
	}
	code, log = agenttest.RunMain(t, name, "monitor", env)
	if code != 0 || log != "" {
		t.Errorf("database still down: exit %d, log %q; want 0 and silence (said once)", code, log)
	}
}

func paramsFor(agent, instance string) ocf.Params {
	return ocf.Params{Agent: agent, Instance: instance}
}
