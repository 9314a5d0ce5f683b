package dpbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// labNS is one named network namespace of the lab (named, so that
// `ip netns exec` reaches it). It is a lab-lifetime twin of nstest.NS that
// needs no testing.TB: the lab removes it in Close.
type labNS struct {
	Name   string
	Handle netns.NsHandle
}

// newLabNS creates the named namespace with lo up. A namespace of the same
// name must not exist (cleanStale removes those of a crashed run first).
func newLabNS(name string) (*labNS, error) {
	h, err := newNamed(name)
	if err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	ns := &labNS{Name: name, Handle: h}
	nl, err := ns.Netlink()
	if err == nil {
		var lo netlink.Link
		if lo, err = nl.LinkByName("lo"); err == nil {
			err = nl.LinkSetUp(lo)
		}
		nl.Close()
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netns %s: set lo up: %w", name, err)
	}
	return ns, nil
}

// newNamed creates a named namespace without leaving the calling thread in it.
func newNamed(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), err
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// The thread is stuck in the new namespace: never hand it back to the runtime.
		runtime.Goexit()
	}
	return h, err
}

// Close removes the namespace (equivalent to: ip netns delete NAME).
// Processes still inside keep the (then unnamed) namespace alive until they exit.
func (n *labNS) Close() error {
	n.Handle.Close()
	if err := netns.DeleteNamed(n.Name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", n.Name, err)
	}
	return nil
}

// Netlink returns a netlink handle bound to the namespace; the caller closes it.
func (n *labNS) Netlink() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(n.Handle)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", n.Name, err)
	}
	return h, nil
}

// Do runs f on a thread switched into the namespace. Sockets f creates stay
// in the namespace after Do returns.
func (n *labNS) Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(n.Handle); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		runtime.Goexit() // never return a thread left in the wrong namespace
	}
	return ferr
}

// Command returns name run inside the namespace (ip netns exec NAME ...,
// which execs in place: the pid is the command's).
func (n *labNS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Sysctl writes value to /proc/sys/<key> as seen from inside the namespace.
func (n *labNS) Sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return n.Do(func() error {
		// /proc/sys/net is per network namespace, resolved by the opening thread.
		return os.WriteFile(path, []byte(value), 0o644)
	})
}

// labSwitch is a Linux bridge br0 in a namespace of its own.
type labSwitch struct {
	NS    *labNS
	ports int
}

// plug connects host to the switch with a veth pair: ifname inside host,
// with addr, link up. The pair goes with either namespace.
func (s *labSwitch) plug(host *labNS, ifname string, addr netip.Prefix) error {
	s.ports++
	port := fmt.Sprintf("p%d", s.ports)
	nl, err := s.NS.Netlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	// Equivalent to: ip link add pN type veth peer name IF netns HOST; ip link set pN master br0 up
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port}, PeerName: ifname, PeerNamespace: netlink.NsFd(host.Handle)}
	if err := nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s/%s <-> %s/%s: %w", s.NS.Name, port, host.Name, ifname, err)
	}
	br, err := nl.LinkByName("br0")
	if err != nil {
		return fmt.Errorf("%s: br0: %w", s.NS.Name, err)
	}
	p, err := nl.LinkByName(port)
	if err == nil {
		err = nl.LinkSetMaster(p, br)
	}
	if err == nil {
		err = nl.LinkSetUp(p)
	}
	if err != nil {
		return fmt.Errorf("%s: attach %s to br0: %w", s.NS.Name, port, err)
	}
	hl, err := host.Netlink()
	if err != nil {
		return err
	}
	defer hl.Close()
	l, err := hl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: %s not found: %w", host.Name, ifname, err)
	}
	ipnet := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}
	if err := hl.AddrAdd(l, &netlink.Addr{IPNet: ipnet}); err != nil {
		return fmt.Errorf("%s: add %s to %s: %w", host.Name, addr, ifname, err)
	}
	if err := hl.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s: %s up: %w", host.Name, ifname, err)
	}
	return nil
}

// newLabSwitch creates namespace name holding bridge br0, up.
func newLabSwitch(name string) (*labSwitch, error) {
	ns, err := newLabNS(name)
	if err != nil {
		return nil, err
	}
	nl, err := ns.Netlink()
	if err == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
		if err = nl.LinkAdd(br); err == nil {
			err = nl.LinkSetUp(br)
		}
		nl.Close()
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("%s: bridge br0: %w", name, err)
	}
	return &labSwitch{NS: ns}, nil
}

// cleanStale removes the named namespaces among names that exist (left by
// a crashed run). It kills nothing: processes still inside (a crashed run's
// haproxy or mariadbd) are named on w, with their pids, for the operator.
func cleanStale(names []string, w io.Writer) error {
	var errs []error
	for _, name := range names {
		if _, err := os.Stat("/run/netns/" + name); err != nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
			fmt.Fprintf(w, "dpbench: stale netns %s still holds pids %s (not killed)\n", name, strings.Join(strings.Fields(string(out)), " "))
		}
		if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove stale netns %s: %w", name, err))
			continue
		}
		fmt.Fprintf(w, "dpbench: removed stale netns %s (from an earlier run)\n", name)
	}
	return errors.Join(errs...)
}

// lockLab takes an exclusive lock for the lab names with prefix, waiting
// while another run (another process's benchmark, test or `loadshare
// bench`) holds it, so that its start-up never removes a running lab's
// namespaces as stale. The lock goes with the returned release or the
// process.
func lockLab(ctx context.Context, prefix string, w io.Writer) (release func() error, err error) {
	dir := "/run/lock"
	if _, err := os.Stat(dir); err != nil {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "loadshare-dpbench-"+prefix+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f.Close, nil // closing the file releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !said {
			fmt.Fprintf(w, "dpbench: waiting for another lab with prefix %q to finish (lock %s)\n", prefix, path)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
