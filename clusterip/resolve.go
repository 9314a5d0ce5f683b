package clusterip

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Resolver finds where a VIP goes on this node (Resolve): its link and
// the prefix its address takes there. It keeps one route socket open and
// what it has read through it: a Plane made WithResolver(r) reads links,
// addresses and neighbours through that socket and takes the link and
// the addresses r has just read instead of asking again, so a monitor
// that resolves its VIP and then asks State opens one socket and reads
// each of them once. Not safe for concurrent use; Close it.
type Resolver struct {
	h         *netlink.Handle
	links     []netlink.Link // links resolved
	family    int            // of addrs
	addrs     []netlink.Addr // every address of family on the node, when addrsRead
	addrsErr  error
	addrsRead bool
}

// NewResolver opens a resolver in the caller's network namespace, or
// with WithNetNS in that one (the other options do not apply).
func NewResolver(opts ...Option) (*Resolver, error) {
	p := &Plane{nsFd: -1}
	for _, o := range opts {
		o(p)
	}
	h, err := p.routeSocket()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Resolver{h: h}, nil
}

// Close closes the route socket.
func (r *Resolver) Close() error {
	if r.h != nil {
		r.h.Close()
		r.h = nil
	}
	return nil
}

// WithResolver makes the plane read links, addresses and neighbours
// through r's route socket and take what r has resolved (see Resolver).
// r must be of the plane's namespace and stay open for the plane's life.
func WithResolver(r *Resolver) Option { return func(p *Plane) { p.res = r } }

// Resolve returns v with its Link and Prefix as they are on this node.
// Link, when given, must exist here; when empty it becomes the interface
// already holding v's address (after a start the route to it is the local
// one, through lo), else the one the routing table sends the address to.
// Prefix, when 0, becomes the prefix length of the link's address whose
// subnet holds v's address (other than the address itself), as IPaddr2's
// findif picks it; without one it stays 0, a host prefix. A link that
// cannot be found is a *FieldError of field "link".
// Equivalent to: ip route get ADDR; ip -o addr show dev LINK.
func (r *Resolver) Resolve(v VIP) (VIP, error) {
	l, err := r.findLink(v.Link, v.Addr)
	if err != nil {
		return v, err
	}
	r.links = append(r.links, l)
	v.Link = l.Attrs().Name
	if v.Prefix == 0 {
		v.Prefix = r.coveringPrefix(l, v.Addr)
	}
	return v, nil
}

// addrList reads the node's addresses of addr's family at most once:
// finding the link and its covering prefix both need them, and so does
// State (a dump per link would cost a round trip each). again drops what
// was read.
func (r *Resolver) addrList(addr netip.Addr, again bool) ([]netlink.Addr, error) {
	fam := addrFamily(addr)
	if !r.addrsRead || again || r.family != fam {
		r.addrs, r.addrsErr = r.h.AddrList(nil, fam)
		r.family, r.addrsRead = fam, true
	}
	return r.addrs, r.addrsErr
}

func (r *Resolver) findLink(name string, addr netip.Addr) (netlink.Link, error) {
	if name != "" {
		l, err := r.h.LinkByName(name)
		if err != nil {
			return nil, &FieldError{"link", name, "no such interface on this node"}
		}
		return l, nil
	}
	var err error
	// Two passes: a concurrent start of another bucket of this VIP may put
	// the address on its link between our address read and the route
	// lookup, which then answers with the local route through lo; the
	// address is then on the link, and a fresh read finds it.
	for pass := 0; pass < 2; pass++ {
		all, lerr := r.addrList(addr, pass > 0)
		if lerr != nil {
			return nil, fmt.Errorf("list addresses: %w", lerr)
		}
		for _, a := range all {
			if ip, ok := netip.AddrFromSlice(a.IP); !ok || ip.Unmap() != addr {
				continue
			}
			if l, err := r.h.LinkByIndex(a.LinkIndex); err == nil && l.Attrs().Flags&net.FlagLoopback == 0 {
				return l, nil
			}
		}
		var routes []netlink.Route
		routes, err = r.h.RouteGet(addr.AsSlice())
		if err != nil || len(routes) == 0 {
			break
		}
		l, lerr := r.h.LinkByIndex(routes[0].LinkIndex)
		if lerr == nil && l.Attrs().Flags&net.FlagLoopback == 0 {
			return l, nil
		}
	}
	reason := "not given, and no route to ip on this node"
	if err != nil {
		reason += ": " + err.Error()
	}
	return nil, &FieldError{"link", "", reason}
}

// coveringPrefix is the prefix length of link's address whose subnet holds
// addr (other than addr itself); 0 when there is none.
func (r *Resolver) coveringPrefix(link netlink.Link, addr netip.Addr) int {
	all, err := r.addrList(addr, false)
	if err != nil {
		return 0
	}
	for _, a := range all {
		if a.LinkIndex != link.Attrs().Index {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap() == addr {
			continue
		}
		ones, _ := a.Mask.Size()
		if pfx, err := ip.Unmap().Prefix(ones); err == nil && pfx.Contains(addr) {
			return ones
		}
	}
	return 0
}

// knownLink is v's link: as a resolver of the plane found it, else read
// through h.
func (p *Plane) knownLink(h *netlink.Handle, v VIP) (netlink.Link, error) {
	if p.res != nil {
		for _, l := range p.res.links {
			if l.Attrs().Name == v.Link {
				return l, nil
			}
		}
	}
	return linkOf(h, v)
}

// knownAddr is hasAddr, from the addresses the plane's resolver read
// when it holds those of v's family.
func (p *Plane) knownAddr(h *netlink.Handle, l netlink.Link, v VIP) (bool, error) {
	r := p.res
	if r == nil || !r.addrsRead || r.addrsErr != nil || r.family != addrFamily(v.Addr) {
		return hasAddr(h, l, v)
	}
	for _, a := range r.addrs {
		if a.LinkIndex == l.Attrs().Index && a.IP.Equal(v.Addr.AsSlice()) {
			return true, nil
		}
	}
	return false, nil
}
