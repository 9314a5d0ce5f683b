package dpbench

import (
	"context"
	"errors"
	"os"
	"testing"
)

// newTestLab builds the lab for a test or benchmark, removed when tb ends;
// it skips, saying why, when a prerequisite is missing.
func newTestLab(tb testing.TB) *lab {
	tb.Helper()
	l, err := newLab(context.Background(), DefaultPrefix, os.Stderr)
	skipOrFatal(tb, err)
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("remove the lab: %v", err)
		}
	})
	return l
}

// startTestDB starts MariaDB in l's servers, skipping without mariadbd.
func startTestDB(tb testing.TB, l *lab) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: not starting MariaDB")
	}
	skipOrFatal(tb, l.startDB(context.Background()))
}

func skipOrFatal(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrPrerequisite) {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
}
