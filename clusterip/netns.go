package clusterip

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNS runs f on an OS thread inside the plane's network namespace (the
// caller's when the plane has none). The thread is discarded afterwards
// (the goroutine exits locked), so no thread is ever handed back to the
// Go runtime in the wrong namespace. Needed for what has no netlink handle
// bound to a namespace: /proc/sys/net, ioctls, exec of iptables.
func (p *Plane) inNS(f func() error) error {
	if p.nsFd < 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(p.nsFd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter netns fd %d: %w", p.nsFd, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// netlink returns a handle bound to the plane's namespace; Close it.
func (p *Plane) netlink() (*netlink.Handle, error) {
	if p.nsFd < 0 {
		return netlink.NewHandle()
	}
	return netlink.NewHandleAt(netns.NsHandle(p.nsFd))
}

// openLink is netlink and v's link found in it by find (linkOf, or
// linkIfAny where a link that is gone is no error); the caller closes h.
func (p *Plane) openLink(v VIP, find func(*netlink.Handle, VIP) (netlink.Link, error)) (*netlink.Handle, netlink.Link, error) {
	h, err := p.netlink()
	if err != nil {
		return nil, nil, err
	}
	l, err := find(h, v)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, l, nil
}

// rtnetlink is netlink with only the route socket (links, addresses,
// neighbours): NewHandle opens xfrm and netfilter sockets too, which cost
// a read-only caller like State time for nothing. It is the socket of the
// plane's resolver (WithResolver) when it has one. Call done when
// finished with h.
func (p *Plane) rtnetlink() (h *netlink.Handle, done func(), err error) {
	if p.res != nil && p.res.h != nil {
		return p.res.h, func() {}, nil
	}
	if h, err = p.routeSocket(); err != nil {
		return nil, nil, err
	}
	return h, h.Close, nil
}

// routeSocket opens a handle with only the route socket in the plane's
// namespace; Close it.
func (p *Plane) routeSocket() (*netlink.Handle, error) {
	if p.nsFd < 0 {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	return netlink.NewHandleAt(netns.NsHandle(p.nsFd), unix.NETLINK_ROUTE)
}
