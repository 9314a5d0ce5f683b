package clusterip

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
)

// TestResolve finds a VIP's link and prefix in a namespace: by the route,
// by the address already on the link (whose route then goes through lo),
// the subnet's prefix for each family, a given prefix kept, and a missing
// or unroutable link as a FieldError of "link".
func TestResolve(t *testing.T) {
	nstest.SkipShort(t, "namespace test")
	ns := nstest.New(t, "lsdp-res")
	sw := nstest.NewSwitch(t, "lsdp-ressw")
	sw.Plug(t, ns, "eth0", net.HardwareAddr{2, 0, 0, 0, 9, 1},
		netip.MustParsePrefix("10.209.0.11/16"), netip.MustParsePrefix("fd00:209::11/64"))
	r, err := NewResolver(WithNetNS(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check := func(name string, in VIP, link string, prefix int) {
		t.Helper()
		got, err := r.Resolve(in)
		if err != nil || got.Link != link || got.Prefix != prefix {
			t.Errorf("%s: Resolve = link %q prefix %d, %v; want %q, %d", name, got.Link, got.Prefix, err, link, prefix)
		}
	}
	check("IPv4 by route", VIP{Addr: netip.MustParseAddr("10.209.0.100")}, "eth0", 16)
	check("IPv6 by route", VIP{Addr: netip.MustParseAddr("fd00:209::100")}, "eth0", 64)
	check("prefix given", VIP{Addr: netip.MustParseAddr("10.209.0.100"), Prefix: 24}, "eth0", 24)
	check("link given", VIP{Addr: netip.MustParseAddr("10.209.0.100"), Link: "eth0"}, "eth0", 16)
	h := ns.Netlink(t)
	l, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	held := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.209.0.101").To4(), Mask: net.CIDRMask(32, 32)}}
	if err := h.AddrAdd(l, held); err != nil {
		t.Fatal(err)
	}
	check("address on the link", VIP{Addr: netip.MustParseAddr("10.209.0.101")}, "eth0", 16)
	for _, c := range []struct {
		name string
		in   VIP
	}{
		{"no such link", VIP{Addr: netip.MustParseAddr("10.209.0.100"), Link: "nosuch0"}},
		{"no route", VIP{Addr: netip.MustParseAddr("198.51.100.7")}},
	} {
		_, err := r.Resolve(c.in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "link" || fe.Value != c.in.Link {
			t.Errorf("%s: Resolve error = %v, want a FieldError of link %q", c.name, err, c.in.Link)
		}
	}
}
