package hostprobe

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/loadshare/loadshare/loadmon"
)

func TestHostSample(t *testing.T) {
	h := &Host{}
	s1, err := h.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s1.Cores != runtime.NumCPU() {
		t.Errorf("Cores = %d, want runtime.NumCPU() = %d", s1.Cores, runtime.NumCPU())
	}
	if !(s1.CPU.Total > 0 && s1.CPU.Busy >= 0 && s1.CPU.IOWait >= 0 && s1.CPU.Busy+s1.CPU.IOWait <= s1.CPU.Total) {
		t.Errorf("CPU = %+v: want 0 ≤ Busy+IOWait ≤ Total, Total > 0", s1.CPU)
	}
	if s1.MemAvailable <= 0 || s1.MemAvailable > 1 || s1.Load1 < 0 {
		t.Errorf("MemAvailable, Load1 = %v, %v; want (0,1], ≥ 0", s1.MemAvailable, s1.Load1)
	}
	if _, err := os.Stat("/proc/pressure/memory"); err == nil && s1.MemPSI < 0 {
		t.Errorf("MemPSI = %v although /proc/pressure/memory exists", s1.MemPSI)
	}
	// Burn some CPU (bounded), then the model's CPU share over the interval
	// must be a real fraction.
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i ^ x
	}
	_ = x
	s2, err := h.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s2.CPU.Total < s1.CPU.Total || s2.CPU.Busy < s1.CPU.Busy {
		t.Errorf("CPU counters went backwards: %+v then %+v", s1.CPU, s2.CPU)
	}
	st := loadmon.DefaultModel().Step(loadmon.DefaultModel().Step(loadmon.State{}, loadmon.Sample{HostSample: s1}), loadmon.Sample{HostSample: s2})
	if c := st.Components.CPU; s2.CPU.Total > s1.CPU.Total && (c < 0 || c > 1) {
		t.Errorf("CPU component over the interval = %v, want 0..1", c)
	}

	// No PSI file: unknown, not an error.
	h = &Host{PressureFile: filepath.Join(t.TempDir(), "none")}
	if s, err := h.Sample(context.Background()); err != nil || s.MemPSI != -1 {
		t.Errorf("Sample without a PSI file = MemPSI %v, err %v; want -1, nil", s.MemPSI, err)
	}
}

func TestParsePSI(t *testing.T) {
	for _, tc := range []struct {
		text string
		want float64
		ok   bool
	}{
		{"some avg10=1.23 avg60=0.50 avg300=0.10 total=12345\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=0\n", 1.23, true},
		{"full avg10=0.50 avg60=0.00 avg300=0.00 total=0\n", 0, false},
		{"some avg60=1", 0, false},
		{"", 0, false},
	} {
		got, ok := parsePSISomeAvg10(tc.text)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parsePSISomeAvg10(%q) = %v, %v; want %v, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}
