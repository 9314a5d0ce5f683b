package hostprobe

import (
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadshare/loadshare/loadmon"
)

// TestRecordHostTrace records testdata/host-trace.json from this machine:
// 40 host samples 0.5 s apart, the middle 20 with every core kept busy
// (bounded: 10 s). It runs only when LOADMON_RECORD=1; the trace it wrote
// is replayed by TestModelRecordedTrace.
func TestRecordHostTrace(t *testing.T) {
	if os.Getenv("LOADMON_RECORD") != "1" {
		t.Skip("records testdata only with LOADMON_RECORD=1")
	}
	var stop atomic.Bool
	var trace []loadmon.HostSample
	h := &Host{}
	for i := 0; i < 40; i++ {
		if i == 10 {
			for c := 0; c < 4; c++ {
				go func() {
					deadline := time.Now().Add(11 * time.Second)
					x := 0
					for !stop.Load() && time.Now().Before(deadline) {
						x += x ^ 1
					}
				}()
			}
		}
		if i == 30 {
			stop.Store(true)
		}
		s, err := h.Sample(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		trace = append(trace, s)
		time.Sleep(500 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(trace, "", " ")
	if err := os.WriteFile("../testdata/host-trace.json", b, 0o644); err != nil {
		t.Fatal(err)
	}
}
