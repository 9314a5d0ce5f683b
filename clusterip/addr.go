package clusterip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (v VIP) ipnet() *net.IPNet {
	return &net.IPNet{IP: v.Addr.AsSlice(), Mask: net.CIDRMask(v.prefixLen(), v.Addr.BitLen())}
}

func linkOf(h *netlink.Handle, v VIP) (netlink.Link, error) {
	l, err := h.LinkByName(v.Link)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
		return nil, &FieldError{"link", v.Link, "no such interface on this node"}
	}
	return l, err
}

// linkIfAny is v's link, or nil when the link is gone (and v's address
// and cluster MAC with it): what the removals need, which still delete
// the tables.
func linkIfAny(h *netlink.Handle, v VIP) (netlink.Link, error) {
	l, err := linkOf(h, v)
	var fe *FieldError
	if errors.As(err, &fe) {
		return nil, nil
	}
	return l, err
}

// addrFamily is netlink's address family of a.
func addrFamily(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// hasAddr reports whether v's address is on its link (any prefix).
func hasAddr(h *netlink.Handle, l netlink.Link, v VIP) (bool, error) {
	as, err := h.AddrList(l, addrFamily(v.Addr))
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if a.IP.Equal(v.Addr.AsSlice()) {
			return true, nil
		}
	}
	return false, nil
}

// addAddr puts v's address on its link; present is fine.
// Equivalent to: ip addr add VIP/PREFIX dev LINK nodad
func addAddr(h *netlink.Handle, l netlink.Link, v VIP) error {
	ok, err := hasAddr(h, l, v)
	if err != nil || ok {
		return err
	}
	a := &netlink.Addr{IPNet: v.ipnet()}
	if v.Addr.Is6() {
		// Every node holds the address: duplicate address detection
		// would find the others and leave it tentative forever.
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s to %s: %w", v.ipnet(), v.Link, err)
	}
	return nil
}

// delAddr removes v's address from its link; absent is fine.
// Equivalent to: ip addr del VIP/PREFIX dev LINK
func delAddr(h *netlink.Handle, l netlink.Link, v VIP) error {
	ok, err := hasAddr(h, l, v)
	if err != nil || !ok {
		return err
	}
	if err := h.AddrDel(l, &netlink.Addr{IPNet: v.ipnet()}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete address %s from %s: %w", v.ipnet(), v.Link, err)
	}
	return nil
}

// bringUp joins the cluster MAC, then puts the address on the link: with
// the MAC first, frames sent to it are received once the address answers.
func bringUp(h *netlink.Handle, l netlink.Link, v VIP) error {
	if err := joinMAC(h, l, v); err != nil {
		return err
	}
	return addAddr(h, l, v)
}

// takeDown removes the address, then leaves the cluster MAC: the reverse
// of bringUp. Absent pieces are fine.
func takeDown(h *netlink.Handle, l netlink.Link, v VIP) error {
	if err := delAddr(h, l, v); err != nil {
		return err
	}
	return leaveMAC(h, l, v)
}
