// Package nstest gives tests throwaway network namespaces: named ones (so that
// `ip netns exec` and `ip netns pids` see them), joined by veth pairs to a
// bridge that lives in a namespace of its own. Nothing it makes is left in
// the root namespace, and everything is removed when the test ends.
//
// It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); without it tests skip,
// saying why. Any other failure fails the test.
package nstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is one named network namespace made for a test.
type NS struct {
	Name   string
	Handle netns.NsHandle // open fd of the namespace, for netlink.NewHandleAt and nftables.WithNetNSFd
}

// SkipUnlessRoot skips t when the process cannot create network namespaces.
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (run make test as root)")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skipf("kernel without network namespaces: %v", err)
	}
}

// New creates the named network namespace name, with lo up, removed when t ends.
// A stale namespace of the same name (from a crashed run) is removed first.
func New(t testing.TB, name string) *NS {
	t.Helper()
	SkipUnlessRoot(t)
	_ = netns.DeleteNamed(name) // stale from a crashed run; absence is fine
	h, err := newNamed(name)
	if errors.Is(err, unix.EPERM) {
		t.Skipf("cannot create a network namespace (needs CAP_SYS_ADMIN): %v", err)
	}
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	ns := &NS{Name: name, Handle: h}
	t.Cleanup(func() { ns.Close() })
	nl := ns.Netlink(t)
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("netns %s: set lo up: %v", name, err)
	}
	return ns
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

// Close removes the namespace. Processes still inside keep it alive until they exit.
func (n *NS) Close() {
	n.Handle.Close()
	_ = netns.DeleteNamed(n.Name)
}

// Netlink returns a netlink handle bound to the namespace, closed when t ends.
func (n *NS) Netlink(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(n.Handle)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.Name, err)
	}
	t.Cleanup(h.Close)
	return h
}

// Do runs f on a thread switched into the namespace. Sockets f creates stay
// in the namespace after Do returns, so servers and clients can be plain
// goroutines.
func (n *NS) Do(f func() error) error {
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

// Command returns cmd run inside the namespace (ip netns exec NAME ...).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Sysctl writes value to /proc/sys/<key> as seen from inside the namespace
// (key with dots, e.g. net.ipv4.conf.all.arp_announce).
func (n *NS) Sysctl(key, value string) error {
	path := "/proc/sys/" + dotsToSlashes(key)
	return n.Do(func() error {
		// /proc/sys/net is per network namespace, resolved by the opening thread.
		return os.WriteFile(path, []byte(value), 0o644)
	})
}

func dotsToSlashes(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// Switch is a Linux bridge inside a namespace of its own: a lab's L2 segment.
type Switch struct {
	NS     *NS
	bridge string
	ports  int
}

// NewSwitch creates namespace name holding bridge br0 (up).
func NewSwitch(t testing.TB, name string) *Switch {
	t.Helper()
	ns := New(t, name)
	nl := ns.Netlink(t)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := nl.LinkAdd(br); err != nil {
		t.Fatalf("%s: add bridge: %v", name, err)
	}
	if err := nl.LinkSetUp(br); err != nil {
		t.Fatalf("%s: bridge up: %v", name, err)
	}
	return &Switch{NS: ns, bridge: "br0"}
}

// Plug connects host to the switch with a veth pair: ifname inside host, with
// the given MAC (nil: random) and addresses, link up.
func (s *Switch) Plug(t testing.TB, host *NS, ifname string, mac []byte, addrs ...netip.Prefix) {
	t.Helper()
	s.ports++
	port := fmt.Sprintf("p%d", s.ports)
	nl := s.NS.Netlink(t)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port},
		PeerName:      ifname,
		PeerNamespace: netlink.NsFd(host.Handle),
	}
	if mac != nil {
		veth.PeerHardwareAddr = mac
	}
	if err := nl.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s/%s <-> %s/%s: %v", s.NS.Name, port, host.Name, ifname, err)
	}
	br, err := nl.LinkByName(s.bridge)
	if err != nil {
		t.Fatal(err)
	}
	p, err := nl.LinkByName(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetMaster(p, br); err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(p); err != nil {
		t.Fatal(err)
	}
	hl := host.Netlink(t)
	l, err := hl.LinkByName(ifname)
	if err != nil {
		t.Fatalf("%s: %s not found: %v", host.Name, ifname, err)
	}
	for _, a := range addrs {
		addr := &netlink.Addr{IPNet: prefixToIPNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once, no 1-2 s of duplicate address detection
		}
		if err := hl.AddrAdd(l, addr); err != nil {
			t.Fatalf("%s: add %s to %s: %v", host.Name, a, ifname, err)
		}
	}
	if err := hl.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	ip := p.Addr().AsSlice()
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(p.Bits(), bits)}
}
