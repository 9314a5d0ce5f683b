// Package nstest is the one implementation of the repository's network
// namespace plumbing: named network namespaces (so that `ip netns exec` and
// `ip netns pids` see them), joined by veth pairs to a bridge, a "switch",
// that lives in a namespace of its own. Nothing it makes is left in the root
// namespace. It serves tests, the long-lived cluster lab (test/lab, driven
// by `loadshare lab`) and the data-plane bench (test/dpbench, `loadshare
// bench`).
//
// The core returns errors and leaves lifetime and stale clean-up to the
// caller: Create, Open, Exists, Delete, (*NS).Close or Release, Do,
// Command, Sysctl, OpenNetlink, CreateSwitch, OpenSwitch and
// (*Switch).Attach, AttachPort, Detach. Tests use the testing.TB wrappers
// New, NewNode, NewSwitch, (*NS).Netlink and (*Switch).Plug, which remove a
// stale namespace of the same name first, skip without root, fail the test
// on any other error and remove everything when the test ends; and a TCP
// server and client inside namespaces (serve.go: Serve, ServeName, Dial,
// Ask).
//
// It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
package nstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted (as by ip netns add).
const Dir = "/run/netns"

// NS is one named network namespace.
type NS struct {
	Name   string
	Handle netns.NsHandle // open fd of the namespace, for netlink.NewHandleAt and nftables.WithNetNSFd
	made   bool           // made by Create: Close removes it; opened by Open: Close only closes Handle
}

// Path returns the bind mount of the named namespace (Dir/name).
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(Path(name))
	return err == nil
}

// Create creates the named network namespace name with lo up, without
// leaving the calling thread in it. A namespace of that name must not exist;
// the callers decide what to do with a stale one. Close removes it.
// Equivalent to: ip netns add NAME; ip -n NAME link set lo up
func Create(name string) (*NS, error) {
	h, err := newNamed(name)
	if err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	ns := &NS{Name: name, Handle: h, made: true}
	nl, err := ns.OpenNetlink()
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
	if err := sharedDir(); err != nil {
		return netns.None(), err
	}
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

// Open opens the existing named namespace name (made by another process,
// e.g. a long-lived lab). Close closes it and leaves the namespace alone.
func Open(name string) (*NS, error) {
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	return &NS{Name: name, Handle: h}, nil
}

// sharedDir makes Dir a shared mount point of its own, as iproute2's
// `ip netns add` does when it is not one yet. Doing it first matters: a
// later `ip netns add` that finds Dir a plain directory bind-mounts it over
// itself, and every namespace mounted before is then hidden beneath that
// mount, where no path reaches it (Delete copes; see removeHidden).
// Equivalent to: mount --make-shared /run/netns || mount --bind /run/netns /run/netns
func sharedDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if !errors.Is(err, unix.EINVAL) { // EINVAL: not a mount point yet
		return err
	}
	if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s over itself: %w", Dir, err)
	}
	return unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
}

// removeHidden removes Dir/name whose namespace mount lies beneath a later
// bind mount of Dir over itself (see sharedDir): in this mount namespace
// the path reaches only the file in the upper mount, and unlinking a
// mount point of one's own namespace is refused (EBUSY). A private copy of
// the mount namespace detaches the upper mounts and its copy of the
// namespace mount, then unlinks the file; the kernel then detaches the
// namespace's mount in every namespace (a deleted mount point takes its
// mounts with it). A multithreaded Go process cannot unshare its mount
// namespace, hence unshare(1).
func removeHidden(name string) error {
	const script = `p="$1/$2"
for i in 1 2 3 4 5 6 7 8; do umount -l "$p" 2>/dev/null || umount -l "$1" 2>/dev/null || break; done
rm -f "$p"`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", Dir, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("remove %s from a private mount namespace: %w: %s", Path(name), err, strings.TrimSpace(string(out)))
	}
	if Exists(name) {
		return fmt.Errorf("remove %s from a private mount namespace: still there", Path(name))
	}
	return nil
}

// Delete removes the named namespace; absence is fine, and so is a bare
// file where the namespace's mount was (a crash between creating the file
// and mounting, or a machine restored without its mounts: CI once failed
// on such a file, which netns.DeleteNamed leaves because it stops at the
// unmount). Processes still inside keep the (then unnamed) namespace alive
// until they exit. A namespace mount hidden beneath a later bind mount of
// Dir is removed too (removeHidden). Equivalent to: ip netns delete NAME
func Delete(name string) error {
	if !Exists(name) {
		return nil
	}
	err := netns.DeleteNamed(name)
	if errors.Is(err, unix.EINVAL) { // not a mount point: only the file is left
		err = os.Remove(Path(name))
	}
	if errors.Is(err, unix.EBUSY) { // a mount point beneath a later mount of Dir
		err = removeHidden(name)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// Close closes the handle and, for a namespace made by Create, removes it
// (absence is fine). Processes still inside keep it alive until they exit.
func (n *NS) Close() error {
	n.Handle.Close()
	if !n.made {
		return nil
	}
	return Delete(n.Name)
}

// Release closes the handle and leaves the namespace in place, also one
// made by Create: for a lab that outlives this process (Delete removes it).
func (n *NS) Release() {
	n.Handle.Close()
}

// OpenNetlink returns a netlink handle bound to the namespace; the caller closes it.
func (n *NS) OpenNetlink() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(n.Handle)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", n.Name, err)
	}
	return h, nil
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

// Command returns name run inside the namespace (ip netns exec NAME ...,
// which execs in place: the pid is the command's).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Sysctl writes value to /proc/sys/<key> as seen from inside the namespace
// (key with dots, e.g. net.ipv4.conf.all.arp_announce).
// Equivalent to: ip netns exec NAME sysctl -w KEY=VALUE
func (n *NS) Sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return n.Do(func() error {
		// /proc/sys/net is per network namespace, resolved by the opening thread.
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("%s: sysctl %s=%s: %w", n.Name, key, value, err)
		}
		return nil
	})
}

// Switch is a Linux bridge br0 inside a namespace of its own: a lab's L2 segment.
type Switch struct {
	NS     *NS
	bridge string
	ports  int
}

// SwitchOption configures a switch made by CreateSwitch.
type SwitchOption func(*netlink.Bridge)

// NoMulticastSnooping makes the bridge flood every multicast frame to every
// port (mcast_snooping 0) instead of the kernel's default snooping.
func NoMulticastSnooping() SwitchOption {
	return func(br *netlink.Bridge) {
		off := false
		br.MulticastSnooping = &off
	}
}

// CreateSwitch creates namespace name holding bridge br0 (up). Closing
// s.NS removes it with every port.
// Equivalent to: ip netns add NAME; ip -n NAME link add br0 type bridge [mcast_snooping 0]; ip -n NAME link set br0 up
func CreateSwitch(name string, opts ...SwitchOption) (*Switch, error) {
	ns, err := Create(name)
	if err != nil {
		return nil, err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	for _, o := range opts {
		o(br)
	}
	nl, err := ns.OpenNetlink()
	if err == nil {
		if err = nl.LinkAdd(br); err == nil {
			err = nl.LinkSetUp(br)
		}
		nl.Close()
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("%s: bridge br0: %w", name, err)
	}
	return &Switch{NS: ns, bridge: "br0"}, nil
}

// OpenSwitch opens the switch in the existing namespace name (made by
// CreateSwitch in another process). Closing s.NS leaves it alone.
func OpenSwitch(name string) (*Switch, error) {
	ns, err := Open(name)
	if err != nil {
		return nil, err
	}
	return &Switch{NS: ns, bridge: "br0"}, nil
}

// Attach connects host to the switch with a veth pair named by the switch
// (p1, p2, … in the order of attaching): see AttachPort.
func (s *Switch) Attach(host *NS, ifname string, mac []byte, addrs ...netip.Prefix) error {
	s.ports++
	return s.AttachPort(fmt.Sprintf("p%d", s.ports), host, ifname, mac, addrs...)
}

// AttachPort connects host to the switch with a veth pair: port on the
// bridge, ifname inside host with the given MAC (nil: random) and addresses
// (IPv6 ones without duplicate address detection), both links up. The pair
// goes with either namespace.
// Equivalent to: ip -n SW link add PORT type veth peer name IF netns HOST; ip -n SW link set PORT master br0 up; ...
func (s *Switch) AttachPort(port string, host *NS, ifname string, mac []byte, addrs ...netip.Prefix) error {
	nl, err := s.NS.OpenNetlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port},
		PeerName:      ifname,
		PeerNamespace: netlink.NsFd(host.Handle),
	}
	if mac != nil {
		veth.PeerHardwareAddr = mac
	}
	if err := nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s/%s <-> %s/%s: %w", s.NS.Name, port, host.Name, ifname, err)
	}
	br, err := nl.LinkByName(s.bridge)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", s.NS.Name, s.bridge, err)
	}
	p, err := nl.LinkByName(port)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", s.NS.Name, port, err)
	}
	if err := nl.LinkSetMaster(p, br); err != nil {
		return fmt.Errorf("%s: %s master %s: %w", s.NS.Name, port, s.bridge, err)
	}
	if err := nl.LinkSetUp(p); err != nil {
		return fmt.Errorf("%s: %s up: %w", s.NS.Name, port, err)
	}
	hl, err := host.OpenNetlink()
	if err != nil {
		return err
	}
	defer hl.Close()
	l, err := hl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: %s not found: %w", host.Name, ifname, err)
	}
	if err := addAddrs(hl, host, l, addrs); err != nil {
		return err
	}
	if err := hl.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s: %s up: %w", host.Name, ifname, err)
	}
	return nil
}

// addAddrs adds addrs to link l of ns (IPv6 without duplicate address
// detection). Equivalent to: ip -n NS addr add ADDR dev LINK [nodad]
func addAddrs(hl *netlink.Handle, ns *NS, l netlink.Link, addrs []netip.Prefix) error {
	for _, a := range addrs {
		addr := &netlink.Addr{IPNet: prefixToIPNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once, no 1-2 s of duplicate address detection
		}
		if err := hl.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("%s: add %s to %s: %w", ns.Name, a, l.Attrs().Name, err)
		}
	}
	return nil
}

// Detach removes port from the switch (and with it the peer in its host);
// absence is fine.
// Equivalent to: ip -n SW link del PORT
func (s *Switch) Detach(port string) error {
	nl, err := s.NS.OpenNetlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	p, err := nl.LinkByName(port)
	if err != nil {
		return nil // no such port
	}
	if err := nl.LinkDel(p); err != nil {
		return fmt.Errorf("%s: unplug %s: %w", s.NS.Name, port, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
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

// SkipShort skips t under go test -short, saying what it is ("namespace
// test"), and where namespaces cannot be made (SkipUnlessRoot).
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s (-short)", what)
	}
	SkipUnlessRoot(t)
}

// New creates the named network namespace name, with lo up, removed when t ends.
// A stale namespace of the same name (from a crashed run) is removed first.
func New(t testing.TB, name string) *NS {
	t.Helper()
	removeStale(t, name)
	ns, err := Create(name)
	checkCreate(t, err)
	t.Cleanup(func() { ns.Close() })
	return ns
}

// removeStale skips t without root and removes a namespace name left by a
// crashed run (absence is fine). Unlike the labs, a test owns its names.
func removeStale(t testing.TB, name string) {
	t.Helper()
	SkipUnlessRoot(t)
	if err := Delete(name); err != nil {
		t.Fatalf("stale namespace from an earlier run: %v", err)
	}
}

// checkCreate skips t when namespaces cannot be made, and fails it on any other error.
func checkCreate(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, unix.EPERM) {
		t.Skipf("cannot create a network namespace (needs CAP_SYS_ADMIN): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// NewNode creates namespace name (New) with a veth pair eth0 <-> peer0, both
// up, eth0 holding addrs: the one network interface of a node, with no
// switch behind it (this kernel has no dummy links). peer0 stays in the
// namespace, for a test to move elsewhere or leave.
// Equivalent to: ip netns add NAME; ip -n NAME link add eth0 type veth peer
// name peer0; ip -n NAME addr add ADDR dev eth0; ip -n NAME link set eth0 up
// (and peer0)
func NewNode(t testing.TB, name string, addrs ...netip.Prefix) *NS {
	t.Helper()
	ns := New(t, name)
	nl := ns.Netlink(t)
	if err := nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}); err != nil {
		t.Fatalf("%s: add veth eth0/peer0: %v", name, err)
	}
	for _, n := range []string{"eth0", "peer0"} {
		l, err := nl.LinkByName(n)
		if err == nil {
			err = nl.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("%s: %s up: %v", name, n, err)
		}
	}
	eth0, err := nl.LinkByName("eth0")
	if err == nil {
		err = addAddrs(nl, ns, eth0, addrs)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// Netlink returns a netlink handle bound to the namespace, closed when t ends.
func (n *NS) Netlink(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := n.OpenNetlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// NewSwitch creates namespace name holding bridge br0 (up), removed when t
// ends. A stale namespace of the same name is removed first.
func NewSwitch(t testing.TB, name string) *Switch {
	t.Helper()
	removeStale(t, name)
	s, err := CreateSwitch(name)
	checkCreate(t, err)
	t.Cleanup(func() { s.NS.Close() })
	return s
}

// Plug connects host to the switch with a veth pair: ifname inside host, with
// the given MAC (nil: random) and addresses, link up.
func (s *Switch) Plug(t testing.TB, host *NS, ifname string, mac []byte, addrs ...netip.Prefix) {
	t.Helper()
	if err := s.Attach(host, ifname, mac, addrs...); err != nil {
		t.Fatal(err)
	}
}
