// Package hostprobe reads this machine's load for the load model: CPU
// counters, load average, memory available and memory pressure, through
// gopsutil and /proc. It is a package of its own so that binaries which
// do not sample the host (mysql_monitor) do not link gopsutil, whose cpu
// package reads /proc/stat twice at every process start.
package hostprobe

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loadshare/loadshare/loadmon"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/shirou/gopsutil/v3/mem"
)

// Host probes this machine through /proc (gopsutil), in one pass with no
// waiting: CPU counters are cumulative, so utilisation over an interval comes
// from two samples (the load model keeps the previous one in its State).
type Host struct {
	// PressureFile is the kernel's memory PSI file; "" means
	// /proc/pressure/memory. A missing file (no CONFIG_PSI, or psi=0) is not
	// an error: MemPSI is then -1.
	PressureFile string
}

// Sample reads the host once.
func (h *Host) Sample(ctx context.Context) (loadmon.HostSample, error) {
	s := loadmon.HostSample{Time: time.Now(), MemPSI: -1}
	times, err := cpu.TimesWithContext(ctx, false)
	if err != nil || len(times) == 0 {
		return s, fmt.Errorf("read cpu times: %w", orEmpty(err, "no cpu line"))
	}
	t := times[0]
	s.CPU.Busy = t.User + t.Nice + t.System + t.Irq + t.Softirq + t.Steal
	s.CPU.IOWait = t.Iowait
	s.CPU.Total = s.CPU.Busy + t.Iowait + t.Idle
	if s.Cores, err = cpu.CountsWithContext(ctx, true); err != nil || s.Cores < 1 {
		return s, fmt.Errorf("count cpus: %w", orEmpty(err, "none"))
	}
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return s, fmt.Errorf("read load average: %w", err)
	}
	s.Load1 = avg.Load1
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return s, fmt.Errorf("read memory: %w", err)
	}
	if vm.Total > 0 {
		s.MemAvailable = float64(vm.Available) / float64(vm.Total)
	}
	path := h.PressureFile
	if path == "" {
		path = "/proc/pressure/memory"
	}
	if b, err := os.ReadFile(path); err == nil {
		if v, ok := parsePSISomeAvg10(string(b)); ok {
			s.MemPSI = v
		}
	}
	return s, nil
}

// parsePSISomeAvg10 reads avg10 of the "some" line of a PSI file:
// "some avg10=1.23 avg60=0.50 avg300=0.10 total=12345".
func parsePSISomeAvg10(text string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "some" {
			continue
		}
		v, ok := strings.CutPrefix(f[1], "avg10=")
		if !ok {
			return 0, false
		}
		x, err := strconv.ParseFloat(v, 64)
		return x, err == nil
	}
	return 0, false
}

func orEmpty(err error, what string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s", what)
}
