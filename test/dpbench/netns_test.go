package dpbench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/nstest"
)

// TestLabLifetime: a lab removes stale namespaces of its own names (and no
// others) before it starts, waits for a lab of the same prefix held by
// someone else instead of removing its namespaces, and leaves no namespace
// after Close.
func TestLabLifetime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a namespace lab with haproxy; skipped in -short")
	}
	if _, err := checkLab(); err != nil {
		t.Skip(err)
	}
	const prefix = "lsdb-z"
	stale, err := nstest.Create(prefix + "c") // as a crashed run leaves it
	if err != nil {
		t.Fatal(err)
	}
	stale.Release()
	other, err := nstest.Create(prefix + "zz") // same prefix, not a lab name
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })

	var log strings.Builder
	l, err := newLab(context.Background(), prefix, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if !strings.Contains(log.String(), "removed stale netns "+prefix+"c") {
		t.Errorf("log %q does not report the stale namespace removed", log.String())
	}
	exists := nstest.Exists
	if !exists(other.Name) {
		t.Errorf("%s (not a lab name) was removed", other.Name)
	}

	// A second lab of the same prefix waits for the lock, and leaves the
	// running lab alone.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if l2, err := newLab(ctx, prefix, &log); !errors.Is(err, context.DeadlineExceeded) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second lab while the first runs: err = %v, want a wait for the lock until the deadline", err)
	}
	for _, name := range labNames(prefix) {
		if !exists(name) {
			t.Errorf("%s of the running lab is gone", name)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range labNames(prefix) {
		if exists(name) {
			t.Errorf("%s left after Close", name)
		}
	}
}
