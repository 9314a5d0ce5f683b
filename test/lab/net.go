package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const netnsDir = "/run/netns"

// createNetns creates the named network namespace with lo up, without
// leaving the calling thread in it. Equivalent to: ip netns add NAME; ip -n NAME link set lo up
func createNetns(name string) error {
	h, err := newNamed(name)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("netns %s: set lo up: %w", name, err)
	}
	return nil
}

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
		runtime.Goexit() // the thread is stuck in the new namespace: never hand it back
	}
	return h, err
}

// deleteNetns removes the named namespace; absence is fine.
// Equivalent to: ip netns del NAME
func deleteNetns(name string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

func netnsExists(name string) bool {
	_, ok := netnsID(name)
	return ok
}

func handleIn(name string) (*netlink.Handle, error) {
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return nl, nil
}

// addBridge creates bridge br0 (up, multicast snooping off so that frames to a
// VIP's multicast cluster MAC are flooded to every port) in netns sw.
// Equivalent to: ip -n SW link add br0 type bridge mcast_snooping 0; ip -n SW link set br0 up
func addBridge(sw string) error {
	nl, err := handleIn(sw)
	if err != nil {
		return err
	}
	defer nl.Close()
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &off}
	if err := nl.LinkAdd(br); err != nil {
		return fmt.Errorf("%s: add bridge br0: %w", sw, err)
	}
	if err := nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("%s: set br0 up: %w", sw, err)
	}
	return nil
}

// plug connects host to the bridge in sw with a veth pair: port on the
// bridge, eth0 (with addr) in host.
// Equivalent to: ip -n SW link add PORT type veth peer name eth0 netns HOST; ...
func plug(sw, port, host string, addr netip.Prefix) error {
	nl, err := handleIn(sw)
	if err != nil {
		return err
	}
	defer nl.Close()
	hh, err := netns.GetFromName(host)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", host, err)
	}
	defer hh.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(hh),
	}
	if err := nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s/%s <-> %s/eth0: %w", sw, port, host, err)
	}
	br, err := nl.LinkByName("br0")
	if err != nil {
		return fmt.Errorf("%s: br0: %w", sw, err)
	}
	p, err := nl.LinkByName(port)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", sw, port, err)
	}
	if err := nl.LinkSetMaster(p, br); err != nil {
		return fmt.Errorf("%s: %s master br0: %w", sw, port, err)
	}
	if err := nl.LinkSetUp(p); err != nil {
		return fmt.Errorf("%s: %s up: %w", sw, port, err)
	}
	hl, err := netlink.NewHandleAt(hh)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", host, err)
	}
	defer hl.Close()
	l, err := hl.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("%s: eth0: %w", host, err)
	}
	ip := addr.Addr().AsSlice()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(addr.Bits(), 8*len(ip))}}
	if err := hl.AddrAdd(l, a); err != nil {
		return fmt.Errorf("%s: add %s to eth0: %w", host, addr, err)
	}
	if err := hl.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s: eth0 up: %w", host, err)
	}
	return nil
}

// sysctlIn writes /proc/sys/KEY as seen from the named network namespace.
// Equivalent to: ip netns exec NAME sysctl -w KEY=VALUE
func sysctlIn(name, key, value string) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer h.Close()
	return doIn(h, func() error {
		path := "/proc/sys/" + dotsToSlashes(key)
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("%s: sysctl %s=%s: %w", name, key, value, err)
		}
		return nil
	})
}

// doIn runs f on a thread switched into network namespace h; sockets f
// creates stay there after doIn returns.
func doIn(h netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		runtime.Goexit() // never return a thread left in the wrong namespace
	}
	return ferr
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
