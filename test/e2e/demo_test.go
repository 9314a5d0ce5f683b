package e2e

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/lab"
)

// TestDemo runs `loadshare lab demo` (lab.Demo, what make demo runs) with a
// shorter busy phase, and checks that every phase passed and each measured
// time was taken.
func TestDemo(t *testing.T) {
	lab.SkipUnlessCapable(t, lab.Config{})
	bin := buildBinaries(t)
	cfg := lab.Config{Prefix: "lsl-e", StateDir: "/var/tmp/loadshare-lab-e2e", Agents: bin}
	var out strings.Builder
	m, err := lab.Demo(context.Background(), cfg, lab.DemoOptions{
		Out: &out, Log: lab.TestLogger(t, slog.LevelInfo), Busy: 10 * time.Second,
	})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if m.Quorum == 0 || m.FirstAnswer == 0 || m.WritableOff == 0 || m.Failover == 0 || !m.Rebalanced {
		t.Errorf("demo metrics %+v: want every time measured", m)
	}
	for _, want := range []string{"fencing is on", "final state", "every bucket owned by exactly one node", "lab torn down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if _, err := os.Stat(cfg.StateDir); !os.IsNotExist(err) {
		t.Errorf("demo left its state dir %s: %v", cfg.StateDir, err)
	}
}
