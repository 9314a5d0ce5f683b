package e2e

import (
	"context"
	"encoding/xml"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
)

// TestDemo runs `loadshare lab demo` (lab.Demo, what make demo runs) with a
// shorter busy phase, and checks that every phase passed and each measured
// time was taken.
func TestDemo(t *testing.T) {
	lab.SkipUnlessCapable(t, lab.Config{})
	bin := buildbin.Dir(t)
	cfg := lab.Config{Prefix: "lsl-e", StateDir: "/var/tmp/loadshare-lab-e2e", Agents: bin}
	var out strings.Builder
	svg := filepath.Join(t.TempDir(), "demo.svg")
	m, err := lab.Demo(context.Background(), cfg, lab.DemoOptions{
		Out: &out, Log: lab.TestLogger(t, slog.LevelInfo), Busy: 10 * time.Second, SVG: svg,
	})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if m.Quorum == 0 || m.FirstAnswer == 0 || m.WritableOff == 0 || m.Failover == 0 || !m.Rebalanced || m.Detected == 0 || m.Rerouted == 0 {
		t.Errorf("demo metrics %+v: want every time measured", m)
	}
	// The Galera phase: replicated rows, a desynced node's buckets gone and back.
	for _, want := range []string{"fencing is on", "final state", "every bucket owned by exactly one node", "lab torn down",
		"desynced (wsrep_local_state_comment=Donor/Desynced)", "Synced again: spread back",
		"flood_vip=0 on n2 after", "switch fixed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if _, err := os.Stat(cfg.StateDir); !os.IsNotExist(err) {
		t.Errorf("demo left its state dir %s: %v", cfg.StateDir, err)
	}
	// The timeline: well-formed, a band per node, every phase after lab up
	// marked, the crash among them.
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatalf("demo timeline: %v", err)
	}
	if !strings.Contains(out.String(), "timeline (") || !strings.Contains(out.String(), svg) {
		t.Errorf("demo output does not say where the timeline is")
	}
	var doc struct {
		Polygons []struct {
			ID string `xml:"id,attr"`
		} `xml:"polygon"`
		Texts []struct {
			Class string `xml:"class,attr"`
			Text  string `xml:",chardata"`
		} `xml:"text"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("demo timeline is not XML: %v", err)
	}
	if len(doc.Polygons) != 3 {
		t.Errorf("timeline has %d bucket bands, want one per node", len(doc.Polygons))
	}
	var events []string
	for _, tx := range doc.Texts {
		if tx.Class == "event" {
			events = append(events, tx.Text)
		}
	}
	if len(events) < 7 || !strings.Contains(strings.Join(events, "|"), "crash ") || !strings.Contains(strings.Join(events, "|"), "galera") {
		t.Errorf("timeline events %q: want every phase after lab up, the crash and galera among them", events)
	}
}
