package clusterip

import (
	"errors"
	"fmt"
	"slices"
)

// Status lists the VIPs programmed in this namespace (by any backend),
// sorted by address. Equivalent to: nft -j list tables netdev | grep loadshare-;
// iptables-save -t mangle | grep loadshare/1
func (p *Plane) Status() ([]Status, error) {
	comments, err := p.fingerprints()
	if err != nil {
		return nil, fmt.Errorf("list VIPs: %w", err)
	}
	var out []Status
	for _, c := range comments {
		v, be, err := parseFingerprint(c)
		if err != nil {
			continue
		}
		st, err := p.status(v, be)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return a.VIP.Addr.Compare(b.VIP.Addr) })
	return out, nil
}

// fingerprints returns the settings comments of every VIP programmed
// here: the nftables backend's ingress rules and the xtcluster backend's
// chains. Where nftables cannot be read at all (the hosts xtcluster is
// for) but iptables can, only the latter.
func (p *Plane) fingerprints() ([]string, error) {
	nft, nerr := p.listNFT()
	xt, xerr := p.xtFingerprints()
	switch {
	case xerr != nil:
		return nil, xerr
	case nerr != nil && len(xt) == 0:
		return nil, nerr
	}
	return append(nft, xt...), nil
}

// StatusOf returns the status of v (ErrNotEnsured, wrapped, when absent).
// The settings in the result are those in the kernel, which may differ
// from v's when another configuration was ensured.
func (p *Plane) StatusOf(v VIP) (Status, error) {
	if !v.Addr.IsValid() {
		return Status{}, &FieldError{"addr", "", "not an IP address"}
	}
	all, err := p.Status()
	if err != nil {
		return Status{}, err
	}
	for _, s := range all {
		if s.VIP.Addr == v.Addr {
			return s, nil
		}
	}
	return Status{}, fmt.Errorf("status of %s: %w", v, ErrNotEnsured)
}

func (p *Plane) status(v VIP, be Backend) (Status, error) {
	st := Status{VIP: v, Backend: be, MAC: v.ClusterMAC()}
	bi, ok := p.implOf(be)
	if !ok {
		return st, fmt.Errorf("status of %s: unknown backend %s", v, be)
	}
	if ok, err := bi.present(v); err == nil && ok {
		owned, err := bi.owned(v)
		if err != nil {
			return st, fmt.Errorf("status of %s: %w", v, err)
		}
		st.Owned = owned
	}
	h, err := p.netlink()
	if err != nil {
		return st, err
	}
	defer h.Close()
	l, err := linkOf(h, v)
	var fe *FieldError
	if errors.As(err, &fe) {
		return st, nil // link gone: nothing on it
	}
	if err != nil {
		return st, err
	}
	if st.Address, err = hasAddr(h, l, v); err != nil {
		return st, err
	}
	if st.MACJoined, err = macJoined(h, l, v); err != nil {
		return st, err
	}
	if st.Tracked, err = tracked(h, v); err != nil {
		return st, err
	}
	return st, nil
}

// State says how far this node serves bucket b of v and what is missing
// for it to be served. FullyServed (Lack zero) only when the bucket is
// owned, the address is on the link, the link listens to the cluster MAC
// and every table, chain, set and rule Ensure builds for v's settings is
// there: the netdev ingress rule, the ARP answers (IPv4), the bucket rules.
// NotServed when nothing of v is here (no table, no address).
//
// It is meant for recurring monitors and stays cheap: a few netlink reads
// (with the nftables backend no exec), no conntrack dump (unlike Status)
// and no commit; the nftables objects are read again only when the
// ruleset generation changed since a monitor of any of v's buckets last
// read them (seenNFT). The backend is the plane's; on a plane that has not
// chosen one (WithRecordedBackend, v not recorded then), the one v's
// objects record (nftables' settings comment, else v's iptables chain),
// else nftables. With xtcluster, State execs iptables-save and
// arptables-save once each.
//
// State takes no lock. Every read is one netlink request answered from a
// consistent kernel snapshot of one object, and while bucket b is owned no
// change to v's other buckets removes the address, the MAC or a table
// (they go only when nothing is owned, and a rebuild replaces the tables
// in one atomic batch); so a concurrent Own/Release cannot make a served
// bucket look unserved. Taking the lock would make a monitor wait behind
// whichever start, stop or Ensure of v's other instances holds it (up to
// dozens of them on one node at once).
func (p *Plane) State(v VIP, b Bucket) (ServeState, Lack, error) {
	use := BackendAuto
	p.beMu.Lock()
	if p.be != nil {
		use = p.be.kind()
	}
	p.beMu.Unlock()
	if err := v.Validate(use); err != nil {
		return NotServed, 0, err
	}
	if err := v.checkBuckets([]Bucket{b}); err != nil {
		return NotServed, 0, err
	}
	fail := func(err error) (ServeState, Lack, error) {
		return NotServed, 0, fmt.Errorf("state of %s: %w", v, err)
	}
	seen, err := p.seenNFT(v, use)
	if use == BackendAuto && (err != nil || !seen.Anything) && p.xtRecorded(v) {
		// v is on xtcluster here: nothing of it in nftables (or nftables
		// unusable), its chain in iptables.
		seen, err = (&xtBackend{p: p}).seen(v)
	}
	if err != nil {
		return fail(err)
	}
	lack := seen.lackOf(b)
	anything := seen.Anything
	h, done, err := p.rtnetlink()
	if err != nil {
		return fail(err)
	}
	defer done()
	l, err := p.knownLink(h, v)
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		lack |= LackLink | LackAddress | LackMAC
	case err != nil:
		return fail(err)
	default:
		addr, err := p.knownAddr(h, l, v)
		if err != nil {
			return fail(err)
		}
		if !addr {
			lack |= LackAddress
		}
		anything = anything || addr
		if mac, err := macJoined(h, l, v); err != nil {
			return fail(err)
		} else if !mac {
			lack |= LackMAC
		}
	}
	switch {
	case lack == 0:
		return FullyServed, 0, nil
	case !anything:
		return NotServed, lack, nil
	}
	return PartlyServed, lack, nil
}
