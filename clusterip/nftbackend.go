package clusterip

import (
	"fmt"

	"github.com/google/nftables"
)

// nftBackend is BackendNFTables.
type nftBackend struct{ p *Plane }

func (b nftBackend) kind() Backend { return BackendNFTables }

func (b nftBackend) ensure(v VIP) error { return nil } // all in ensureNFT

func (b nftBackend) remove(v VIP) error { return nil } // all in removeNFT

func (b nftBackend) present(v VIP) (bool, error) {
	c, err := b.p.nftConn()
	if err != nil {
		return false, err
	}
	return tableExists(c, l3Family(v), v.name())
}

// setOwned: Equivalent to: nft add element ip NAME owned { 3, 7 }; nft
// add element netdev NAME held { 3, 7 }; nft delete element … — in one batch.
func (b nftBackend) setOwned(v VIP, _, add, del []Bucket) error {
	c, err := b.p.nftConn()
	if err != nil {
		return err
	}
	s := ownedSet(v)
	if len(add) > 0 {
		if err := c.SetAddElements(s, bucketElems(add)); err != nil {
			return err
		}
		// Owned buckets are always held; released ones stay held (pruneHeld).
		if err := c.SetAddElements(heldSet(v), bucketElems(add)); err != nil {
			return err
		}
	}
	if len(del) > 0 {
		if err := c.SetDeleteElements(s, bucketElems(del)); err != nil {
			return err
		}
	}
	return c.Flush()
}

func (b nftBackend) owned(v VIP) ([]Bucket, error) {
	c, err := b.p.nftConn()
	if err != nil {
		return nil, err
	}
	return readOwned(c, v)
}

func (b nftBackend) counters(v VIP) (map[Bucket]Counter, error) {
	c, err := b.p.nftConn()
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Family: l3Family(v), Name: v.name()}
	out := make(map[Bucket]Counter, v.Buckets)
	for _, name := range []string{setTraffic, setNew} {
		els, err := c.GetSetElements(&nftables.Set{Table: t, Name: name})
		if err != nil {
			return nil, fmt.Errorf("read set %s: %w", name, err)
		}
		for _, e := range els {
			bk, ok := keyBucket(e.Key)
			if !ok || e.Counter == nil {
				continue
			}
			ct := out[bk]
			ct.Packets += e.Counter.Packets
			ct.Bytes += e.Counter.Bytes
			if name == setNew {
				ct.NewConns += e.Counter.Packets
			}
			out[bk] = ct
		}
	}
	return out, nil
}
