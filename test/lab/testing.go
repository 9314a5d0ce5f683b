package lab

import (
	"log/slog"
	"os"
	"strings"
	"testing"
)

// SkipUnlessCapable skips t where a lab of cfg cannot run here: -short
// mode, not root, or a tool it starts missing (named, with the Debian
// packages that bring it). For the tests of this package and test/e2e.
func SkipUnlessCapable(t testing.TB, cfg Config) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Corosync/Pacemaker cluster; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network and mount namespaces (run make test as root)")
	}
	if err := checkTools(cfg); err != nil {
		t.Skipf("%v", err)
	}
}

// TestLogger returns a logger that writes each record to t.Log, so a lab's
// log shows under the test that ran it.
func TestLogger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
