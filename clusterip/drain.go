package clusterip

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
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

// Drain is the wait that follows the release of a node's last bucket of a
// VIP (ReleaseOnly): for the connections the node still serves, then the
// removal of everything of the VIP there. It holds the VIP's drain marker
// until Wait or Close lets it go. The wait may run in another process:
// pass it Marker (exec.Cmd.ExtraFiles) and Close; the process inherits
// the marker's lock, so the drain stays marked with no gap, and adopts
// the drain (AdoptDrain) to Wait.
type Drain struct {
	p      *Plane
	v      VIP
	be     backendImpl
	marker *os.File // nil once let go
}

// VIP is the VIP whose last bucket was released.
func (d *Drain) VIP() VIP { return d.v }

// Tracked is the number of connections the wait is for now (the address
// held for them); 0: Wait removes everything at once.
// Equivalent to: conntrack -L -d VIP
func (d *Drain) Tracked() (int, error) {
	h, err := d.p.netlink()
	if err != nil {
		return 0, err
	}
	defer h.Close()
	n, err := tracked(h, d.v)
	if err != nil {
		return 0, fmt.Errorf("drain %s: %w", d.v, err)
	}
	return n, nil
}

// Wait waits for v's tracked connections to end while the address stays,
// up to the plane's drain grace, then removes everything of the VIP on the
// node unless a bucket of it was owned meanwhile or another drain of it is
// still waiting: see Release, whose errors it returns.
func (d *Drain) Wait() error {
	if d.marker == nil {
		return fmt.Errorf("drain %s: already let go", d.v)
	}
	return d.p.drainAndDrop(d.v, d.be, d.Close)
}

// Marker is the open drain marker, for a process that takes the wait over.
func (d *Drain) Marker() *os.File { return d.marker }

// Close lets go of this process's hold of the drain marker without
// waiting: after its Marker went to another process, or to give the drain
// up (the next start or stop of a bucket of the VIP cleans up then).
func (d *Drain) Close() {
	if d.marker != nil {
		d.marker.Close()
		d.marker = nil
	}
}

// AdoptDrain takes over the drain of v that another process's ReleaseOnly
// began and handed over as marker (its Marker, inherited): marker must be
// v's drain marker of this plane's run directory and namespace, its lock
// still held through the inherited description. The plane's drain grace
// applies to Wait.
func (p *Plane) AdoptDrain(v VIP, marker *os.File) (*Drain, error) {
	be, err := p.impl()
	if err != nil {
		return nil, err
	}
	if err := v.Validate(be.kind()); err != nil {
		return nil, err
	}
	path := p.lockPath(v, "drain")
	var held, named unix.Stat_t
	if err := unix.Fstat(int(marker.Fd()), &held); err != nil {
		return nil, fmt.Errorf("adopt the drain of %s: %s: %w", v, marker.Name(), err)
	}
	if err := unix.Stat(path, &named); err != nil || held.Dev != named.Dev || held.Ino != named.Ino {
		return nil, fmt.Errorf("adopt the drain of %s: %s is not its drain marker %s", v, marker.Name(), path)
	}
	// Shared, as ReleaseOnly took it: on the description it inherited, a
	// no-op that confirms the hold.
	if err := unix.Flock(int(marker.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("adopt the drain of %s: flock %s: %w", v, path, err)
	}
	return &Drain{p: p, v: v, be: be, marker: marker}, nil
}
