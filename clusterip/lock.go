package clusterip

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultRunDir holds the per-VIP lock files.
const DefaultRunDir = "/run/loadshare"

// lock takes the per-VIP lock: Pacemaker starts many clone instances of one
// VIP at once, each a separate agent process, and their read-modify-write
// of the owned set and the address must not interleave. flock is released
// by the kernel when a holder dies (kill -9), so a crash never wedges it.
// The file name includes the namespace's inode so that test namespaces
// sharing one run dir do not serialize each other.
func (p *Plane) lock(v VIP) (unlock func(), err error) {
	return p.flock(v, "lock", unix.LOCK_EX)
}

// drainMarker is held (shared) by every Release waiting for v's
// connections to drain, so that Ensure can tell an address kept for a
// drain from one left behind by a process killed mid-release.
func (p *Plane) drainMarker(v VIP) (unlock func(), err error) {
	return p.flock(v, "drain", unix.LOCK_SH)
}

// noDrainer reports whether no Release is draining v now; while it
// returns true with a non-nil unlock, none can start one.
func (p *Plane) noDrainer(v VIP) (unlock func(), ok bool, err error) {
	unlock, err = p.flock(v, "drain", unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, false, nil
	}
	return unlock, err == nil, err
}

func (p *Plane) flock(v VIP, kind string, how int) (unlock func(), err error) {
	if err := os.MkdirAll(p.runDir, 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", v, err)
	}
	name := v.name()
	if p.nsIno != 0 {
		name = fmt.Sprintf("%s.ns%d", name, p.nsIno)
	}
	path := filepath.Join(p.runDir, name+"."+kind)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", v, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: flock %s: %w", v, path, err)
	}
	return func() { f.Close() }, nil
}
