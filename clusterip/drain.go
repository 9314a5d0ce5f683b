package clusterip

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultDrainGrace is how long Release of a node's last bucket waits for
// the connections it still serves to close before removing the address.
// It stays below Pacemaker's default 20 s operation timeout.
const DefaultDrainGrace = 15 * time.Second

// TCP conntrack states that need no address any more.
const (
	tcpConntrackTimeWait = 7
	tcpConntrackClose    = 8
)

// tracked counts conntrack entries whose original destination is the VIP
// and which still carry a live connection (TCP not in TIME_WAIT/CLOSE).
// Equivalent to: conntrack -L -d VIP
func tracked(h *netlink.Handle, v VIP) (int, error) {
	fam := netlink.InetFamily(unix.AF_INET)
	if v.Addr.Is6() {
		fam = unix.AF_INET6
	}
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		return 0, err
	}
	ip := v.Addr.AsSlice()
	n := 0
	for _, f := range flows {
		if !f.Forward.DstIP.Equal(ip) {
			continue
		}
		if f.Forward.Protocol == unix.IPPROTO_TCP {
			if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok &&
				(tcp.State == tcpConntrackTimeWait || tcp.State == tcpConntrackClose) {
				continue
			}
		}
		n++
	}
	return n, nil
}

// pruneHeld removes from v's held set (nftables backend) the buckets not
// owned here, not in keep, and with no connection tracked here (any TCP
// state but CLOSE: a TIME_WAIT peer may still retransmit its FIN), so the
// ingress rule drops their frames before conntrack. Owned buckets are
// always held (setOwned); the caller holds v's lock, so none of the
// candidates can gain a connection meanwhile. Callers pass the buckets
// they released just now as keep: a SYN accepted an instant before the
// release may not be in the conntrack table yet; the node's next Own or
// Release prunes them.
func (p *Plane) pruneHeld(v VIP, be backendImpl, keep []Bucket) error {
	if be.kind() != BackendNFTables {
		return nil
	}
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	held, err := readHeld(c, v)
	if err != nil {
		return err
	}
	owned, err := be.owned(v)
	if err != nil {
		return err
	}
	cand := map[Bucket]bool{}
	for _, b := range held {
		if !slices.Contains(owned, b) && !slices.Contains(keep, b) {
			cand[b] = true
		}
	}
	if len(cand) == 0 {
		return nil
	}
	h, err := p.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	fam := netlink.InetFamily(unix.AF_INET)
	if v.Addr.Is6() {
		fam = unix.AF_INET6
	}
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		return err
	}
	ip := v.Addr.AsSlice()
	for _, f := range flows {
		if !f.Forward.DstIP.Equal(ip) || f.Forward.Protocol != unix.IPPROTO_TCP {
			continue
		}
		if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok && tcp.State == tcpConntrackClose {
			continue
		}
		src, ok := netip.AddrFromSlice(f.Forward.SrcIP)
		if !ok {
			continue
		}
		delete(cand, v.BucketOf(netip.AddrPortFrom(src.Unmap(), f.Forward.SrcPort)))
	}
	if len(cand) == 0 {
		return nil
	}
	drop := slices.Sorted(maps.Keys(cand))
	if err := c.SetDeleteElements(heldSet(v), bucketElems(drop)); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("unhold buckets %v of %s: %w", drop, v, err)
	}
	return nil
}
