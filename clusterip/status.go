package clusterip

import (
	"errors"
	"fmt"
	"slices"
)

// Status lists the VIPs programmed in this namespace (by any backend),
// sorted by address. Equivalent to: nft -j list tables netdev | grep loadshare-
func (p *Plane) Status() ([]Status, error) {
	comments, err := p.listNFT()
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
	var bi backendImpl
	switch be {
	case BackendNFTables:
		bi = nftBackend{p}
	case BackendXTCluster:
		bi = &xtBackend{p: p}
	default:
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
