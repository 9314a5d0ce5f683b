package dpbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/loadshare/loadshare/test/nstest"
	"golang.org/x/sys/unix"
)

// cleanStale removes the named namespaces among names that exist (left by
// a crashed run). Unlike nstest.New, which drops a test's stale namespace
// silently, it reports each one, and it kills nothing: processes still
// inside (a crashed run's haproxy or mariadbd) are named on w, with their
// pids, for the operator.
func cleanStale(names []string, w io.Writer) error {
	var errs []error
	for _, name := range names {
		if !nstest.Exists(name) {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
			fmt.Fprintf(w, "dpbench: stale netns %s still holds pids %s (not killed)\n", name, strings.Join(strings.Fields(string(out)), " "))
		}
		if err := nstest.Delete(name); err != nil {
			errs = append(errs, fmt.Errorf("remove stale netns: %w", err))
			continue
		}
		fmt.Fprintf(w, "dpbench: removed stale netns %s (from an earlier run)\n", name)
	}
	return errors.Join(errs...)
}

// lockLab takes an exclusive lock for the lab names with prefix, waiting
// while another run (another process's benchmark, test or `loadshare
// bench`) holds it, so that its start-up never removes a running lab's
// namespaces as stale. The lock goes with the returned release (which
// also removes the lock file) or the process.
func lockLab(ctx context.Context, prefix string, w io.Writer) (release func() error, err error) {
	dir := "/run/lock"
	if _, err := os.Stat(dir); err != nil {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "loadshare-dpbench-"+prefix+".lock")
	said := false
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			// The previous holder removes the file as it releases: a lock
			// won on a file no longer at path is no lock; open it anew.
			if held, _ := f.Stat(); held != nil {
				if now, err := os.Stat(path); err == nil && os.SameFile(held, now) {
					return func() error { os.Remove(path); return f.Close() }, nil
				}
			}
			f.Close()
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		f.Close()
		if !said {
			fmt.Fprintf(w, "dpbench: waiting for another lab with prefix %q to finish (lock %s)\n", prefix, path)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
