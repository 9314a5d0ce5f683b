package clusterip

// Applying a VIP's nftables objects to the kernel: Ensure's rebuild,
// the removal, the backend probe.

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// nftConn opens a connection to the plane's namespace.
func (p *Plane) nftConn() (*nftables.Conn, error) {
	if p.nsFd >= 0 {
		return nftables.New(nftables.WithNetNSFd(p.nsFd))
	}
	return nftables.New()
}

// nftLastingConn opens a connection that keeps one netlink socket for
// several requests (a plain Conn dials one per request, ~0.1 ms each);
// the caller calls CloseLasting.
func (p *Plane) nftLastingConn() (*nftables.Conn, error) {
	if p.nsFd >= 0 {
		return nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(p.nsFd))
	}
	return nftables.New(nftables.AsLasting())
}

// ensureNFT makes v's nft objects exactly as built for backend be, in one
// batch when anything is missing or different: the old tables are deleted
// and rebuilt in the same transaction, the owned buckets carried over.
// A rebuild of existing tables holds every bucket (connections of any bucket may be tracked
// here, and the hash may have changed); pruneHeld shrinks it later. An
// owned bucket missing from held is added back.
func (p *Plane) ensureNFT(v VIP, be Backend) error {
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	o, err := readNFT(c, v, be, true)
	if err != nil {
		return fmt.Errorf("read nftables objects of %s: %w", v, err)
	}
	if o.asBuilt() {
		var missing []Bucket
		if o.heldOK {
			for _, b := range o.owned {
				if !slices.Contains(o.held, b) {
					missing = append(missing, b)
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if err := c.SetAddElements(heldSet(v), bucketElems(missing)); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("hold buckets %v of %s: %w", missing, v, err)
		}
		return nil
	}
	var owned []Bucket
	for _, b := range o.owned {
		if uint16(b) < v.Buckets {
			owned = append(owned, b)
		}
	}
	var held []Bucket // new tables: nothing can be tracked yet
	for _, fam := range o.tables {
		c.DelTable(&nftables.Table{Family: fam, Name: v.name()})
		if fam != nftables.TableFamilyARP && held == nil {
			held = make([]Bucket, v.Buckets)
			for b := range held {
				held[b] = Bucket(b)
			}
		}
	}
	if err := addObjects(c, v, be, owned, held); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("program nftables tables %s: %w", v.name(), err)
	}
	return nil
}

// removeNFT deletes v's nft tables in one batch; absent ones are skipped.
func (p *Plane) removeNFT(v VIP) error {
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	fams, err := tablesOf(c, v)
	if err != nil || len(fams) == 0 {
		return err
	}
	for _, fam := range fams {
		c.DelTable(&nftables.Table{Family: fam, Name: v.name()})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables tables %s: %w", v.name(), err)
	}
	return nil
}

// probeNFT reports whether the kernel accepts the nftables backend's
// objects: it adds and deletes a scratch table in one batch.
func (p *Plane) probeNFT() error {
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	v := VIP{Addr: netip.MustParseAddr("192.0.2.1"), Link: "lo", Buckets: 2, Seed: 1}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: fmt.Sprintf("loadshare-probe-%d", unix.Getpid())})
	if err := addBucketObjects(c, t, v, nil); err != nil {
		return err
	}
	c.DelTable(t)
	return c.Flush()
}
