package clusterip

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultRunDir holds the per-VIP lock files and State's cache. Every
// file of a VIP goes when its last bucket on the node is released (the
// directory itself stays: other VIPs share it).
const DefaultRunDir = "/run/loadshare"

// lock takes the per-VIP lock: Pacemaker starts many clone instances of one
// VIP at once, each a separate agent process, and their read-modify-write
// of the owned set and the address must not interleave. flock is released
// by the kernel when a holder dies (kill -9), so a crash never wedges it.
// The file name includes the namespace's inode so that test namespaces
// sharing one run dir do not serialize each other. The holder may delete
// the file before it unlocks (removeLockFile): the last release does.
func (p *Plane) lock(v VIP) (unlock func(), err error) {
	return p.flock(v, "lock", unix.LOCK_EX)
}

// drainMarker is held (shared) by every Drain waiting for v's
// connections, so that Ensure can tell an address kept for a drain from
// one left behind by a process killed mid-release. It is taken, tested
// and removed only under v's lock. The lock goes with the last close of
// the returned file's description: a process that inherits it (Drain's
// Marker passed to a child) holds the marker with no gap.
func (p *Plane) drainMarker(v VIP) (*os.File, error) {
	f, err := lockFile(p.runDir, p.lockPath(v, "drain"), unix.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", v, err)
	}
	return f, nil
}

// noDrainer reports whether no Drain of v is waiting now (in any
// process); while it
// returns true with a non-nil unlock, none can start one.
func (p *Plane) noDrainer(v VIP) (unlock func(), ok bool, err error) {
	unlock, err = p.flock(v, "drain", unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, false, nil
	}
	return unlock, err == nil, err
}

// lockPath is the file of v's lock of this kind ("lock", "drain").
func (p *Plane) lockPath(v VIP, kind string) string {
	name := v.name()
	if p.nsIno != 0 {
		name = fmt.Sprintf("%s.ns%d", name, p.nsIno)
	}
	return filepath.Join(p.runDir, name+"."+kind)
}

// removeRunFiles deletes v's run files but the lock itself: State's
// cache and, when no Release is draining v, the drain marker. The caller
// holds v's lock and deletes its file last (removeLockFile).
func (p *Plane) removeRunFiles(v VIP) {
	os.Remove(p.seenPath(v))
	if unlock, free, err := p.noDrainer(v); err == nil && free {
		os.Remove(p.lockPath(v, "drain")) // still held: see flock
		unlock()
	}
}

// removeLockFile deletes v's lock file; the caller holds the lock and
// unlocks right after. A process waiting on the deleted file finds it
// gone once it gets the lock, and locks the path's new file (flock).
func (p *Plane) removeLockFile(v VIP) { os.Remove(p.lockPath(v, "lock")) }

// flock locks the file of v's lock of this kind, creating it if needed.
func (p *Plane) flock(v VIP, kind string, how int) (unlock func(), err error) {
	f, err := lockFile(p.runDir, p.lockPath(v, kind), how)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", v, err)
	}
	return func() { f.Close() }, nil
}

// lockFile opens path in dir (both created if needed) and flocks it; the
// lock goes with Close. A holder may delete the file while it holds the
// lock, so once the lock is granted the file must still be the one the
// path names (same inode); otherwise it was deleted before us, and
// lockFile locks the path's new file.
func lockFile(dir, path string, how int) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, err
		}
		for {
			err = unix.Flock(int(f.Fd()), how)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		var held, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &named) == nil &&
			held.Dev == named.Dev && held.Ino == named.Ino {
			return f, nil
		}
		f.Close()
	}
}
