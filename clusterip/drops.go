package clusterip

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Drops counts what this node dropped of the traffic to one VIP: frames
// other nodes answer. Counted is false for a stage without a counter
// (tables built by a loadshare before the ingress counter, until Ensure
// rebuilds them; the xtcluster backend has no ingress stage).
type Drops struct {
	Ingress        uint64 // TCP frames dropped at netdev ingress: bucket not held here
	IngressCounted bool
	Bucket         uint64 // packets dropped by the bucket chain: a SYN of a bucket not owned, non-TCP
	BucketCounted  bool
}

// Dropped reads v's two drop counters: the netdev ingress early drop and
// the bucket chain's final drop. Read only. Equivalent to:
// nft list chain netdev NAME ingress; nft list chain ip NAME bucket
// (xtcluster: iptables-save -c -t mangle, the chain's last rule)
func (p *Plane) Dropped(v VIP) (Drops, error) {
	var d Drops
	be, err := p.ensured(v, "drops")
	if err != nil {
		return d, err
	}
	if xt, ok := be.(*xtBackend); ok {
		if d, err = xt.dropped(v); err != nil {
			return d, fmt.Errorf("drops of %s: %w", v, err)
		}
		return d, nil
	}
	c, err := p.nftConn()
	if err != nil {
		return d, err
	}
	nd := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: v.name()}
	if d.Ingress, d.IngressCounted, err = dropCounter(c, nd, chainIngr); err != nil {
		return d, fmt.Errorf("drops of %s: %w", v, err)
	}
	l3 := &nftables.Table{Family: l3Family(v), Name: v.name()}
	if d.Bucket, d.BucketCounted, err = dropCounter(c, l3, chainBucket); err != nil {
		return d, fmt.Errorf("drops of %s: %w", v, err)
	}
	return d, nil
}

// dropCounter sums the packet counters of the chain's rules that end in
// drop; counted is false when no such rule has a counter (or no chain).
func dropCounter(c *nftables.Conn, t *nftables.Table, chain string) (packets uint64, counted bool, err error) {
	rs, err := c.GetRules(t, &nftables.Chain{Name: chain, Table: t})
	if isNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	for _, r := range rs {
		var ctr *expr.Counter
		drop := false
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Counter:
				ctr = e
			case *expr.Verdict:
				drop = e.Kind == expr.VerdictDrop
			}
		}
		if drop && ctr != nil {
			packets += ctr.Packets
			counted = true
		}
	}
	return packets, counted, nil
}
