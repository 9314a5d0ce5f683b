package clusterip

// Reading a VIP's nftables objects back, and checking them against the
// shape addObjects builds (nftbuild.go): one reader for Ensure (asBuilt)
// and State (lack).

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// nftObjects is what one read finds of v's nftables objects, for the
// backend whose shape it was read against.
type nftObjects struct {
	v       VIP
	backend Backend // the backend asked for, or (BackendAuto) the one the objects record, else nftables
	shape   shape   // shapeOf(v, backend)
	rules   []int   // rules found in shape.chains[i] (0: the chain or its table is missing)
	comment string  // the settings comment on the first ingress rule
	owned   []Bucket
	ownedOK bool // the shape has an owned set and it was read
	held    []Bucket
	heldOK  bool // held was read: the shape has it, something is owned and the ingress chain is there
	tables  []nftables.TableFamily
	// tablesRead: tables lists v's tables that exist (readNFT with
	// withTables), shape or not.
	tablesRead bool
}

// readNFT reads v's nftables objects on c against the shape of backend be
// (BackendAuto: the one the ingress rule's comment records, else
// nftables): one rule dump per chain of the shape (a missing table or
// chain dumps nothing, which is what matters: the rule is missing), the
// owned set and, when something is owned, the held set. withTables adds
// one dump of the namespace's tables, for a caller that deletes them
// (Ensure); State leaves it out. Equivalent to:
// nft -j list chain netdev loadshare-… ingress (and the others).
func readNFT(c *nftables.Conn, v VIP, be Backend, withTables bool) (nftObjects, error) {
	o := nftObjects{v: v, backend: be}
	ingress, err := ingressRules(c, v)
	if err != nil {
		return o, err
	}
	if o.backend == BackendAuto {
		o.backend = BackendNFTables
		if rec, ok := recordedBackend(ingress, v); ok {
			o.backend = rec
		}
	}
	if len(ingress) > 0 {
		o.comment, _ = userdata.GetString(ingress[0].UserData, userdata.TypeComment)
	}
	o.shape = shapeOf(v, o.backend)
	o.rules = make([]int, len(o.shape.chains))
	for i, ch := range o.shape.chains {
		if ch.family == nftables.TableFamilyNetdev && ch.name == chainIngr {
			o.rules[i] = len(ingress)
			continue
		}
		t := &nftables.Table{Family: ch.family, Name: v.name()}
		rs, err := c.GetRules(t, &nftables.Chain{Name: ch.name, Table: t})
		if err != nil && !isNotFound(err) {
			return o, err
		}
		o.rules[i] = len(rs)
	}
	if o.shape.hasSet(l3Family(v), setOwned) {
		if o.owned, o.ownedOK, err = readBucketsIfThere(c, ownedSet(v)); err != nil {
			return o, err
		}
	}
	if o.shape.hasSet(nftables.TableFamilyNetdev, setHeld) && len(o.owned) > 0 && len(ingress) > 0 {
		if o.held, o.heldOK, err = readBucketsIfThere(c, heldSet(v)); err != nil {
			return o, err
		}
	}
	if withTables {
		if o.tables, err = tablesOf(c, v); err != nil {
			return o, err
		}
		o.tablesRead = true
	}
	return o, nil
}

// asBuilt reports whether the objects are exactly what addObjects builds
// for v's settings and the backend: every chain with its rule count, the
// owned set, held when read, the settings comment, and (read withTables)
// no table more or less.
func (o nftObjects) asBuilt() bool {
	for i, ch := range o.shape.chains {
		if o.rules[i] != ch.rules {
			return false
		}
	}
	if o.shape.hasSet(l3Family(o.v), setOwned) && !o.ownedOK {
		return false
	}
	if len(o.owned) > 0 && o.shape.hasSet(nftables.TableFamilyNetdev, setHeld) && !o.heldOK {
		return false
	}
	if o.tablesRead && !sameFamilies(o.tables, o.shape.tables) {
		return false
	}
	return o.comment == fingerprint(o.v, o.backend)
}

func sameFamilies(a, b []nftables.TableFamily) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// lack is what the objects miss, as State reports it (bucket-independent:
// see nftSeen.lackOf): a table of which nothing is there lacks as a whole
// (LackNetdev, LackARP, LackBucketRules: tableLack); a table that is there
// with a chain or set missing, or a chain with other rules than built,
// lacks its shape (LackShape); objects built for other settings lack
// LackSettings. anything says whether some object of v is there.
func (o nftObjects) lack() (lack Lack, anything bool) {
	found := map[nftables.TableFamily]bool{}
	if o.ownedOK {
		found[l3Family(o.v)] = true
	}
	for i, ch := range o.shape.chains {
		if o.rules[i] > 0 {
			found[ch.family] = true
		}
	}
	for i, ch := range o.shape.chains {
		switch {
		case o.rules[i] == ch.rules:
		case !found[ch.family]:
			lack |= tableLack(ch.family)
		default:
			lack |= LackShape
		}
	}
	if o.shape.hasSet(l3Family(o.v), setOwned) && !o.ownedOK {
		if found[l3Family(o.v)] {
			lack |= LackShape
		} else {
			lack |= tableLack(l3Family(o.v))
		}
	}
	if o.ingressAsBuilt() && o.comment != fingerprint(o.v, o.backend) {
		lack |= LackSettings
	}
	return lack, len(found) > 0
}

// ingressAsBuilt reports whether the ingress chain, which carries the
// settings comment, has the rules built.
func (o nftObjects) ingressAsBuilt() bool {
	for i, ch := range o.shape.chains {
		if ch.family == nftables.TableFamilyNetdev && ch.name == chainIngr {
			return o.rules[i] == ch.rules
		}
	}
	return false
}

// tableLack is what State reports for a table of which nothing is there.
func tableLack(fam nftables.TableFamily) Lack {
	switch fam {
	case nftables.TableFamilyNetdev:
		return LackNetdev
	case nftables.TableFamilyARP:
		return LackARP
	}
	return LackBucketRules
}

// tablesOf returns the families in which a table of v exists.
func tablesOf(c *nftables.Conn, v VIP) ([]nftables.TableFamily, error) {
	return tablesNamed(c, v.name())
}

// tableExists reports whether the table fam name exists.
func tableExists(c *nftables.Conn, fam nftables.TableFamily, name string) (bool, error) {
	fams, err := tablesNamed(c, name)
	return slices.Contains(fams, fam), err
}

// tablesNamed returns the families in which a table called name exists
// (one dump of the namespace's tables).
func tablesNamed(c *nftables.Conn, name string) ([]nftables.TableFamily, error) {
	ts, err := c.ListTables()
	if err != nil {
		return nil, err
	}
	var out []nftables.TableFamily
	for _, t := range ts {
		if t.Name == name {
			out = append(out, t.Family)
		}
	}
	return out, nil
}

func ownedSet(v VIP) *nftables.Set {
	return &nftables.Set{Table: &nftables.Table{Family: l3Family(v), Name: v.name()}, Name: setOwned,
		KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.NativeEndian}
}

func heldSet(v VIP) *nftables.Set {
	return &nftables.Set{Table: &nftables.Table{Family: nftables.TableFamilyNetdev, Name: v.name()}, Name: setHeld,
		KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.NativeEndian}
}

// readOwned reads v's owned set, sorted.
func readOwned(c *nftables.Conn, v VIP) ([]Bucket, error) { return readBuckets(c, ownedSet(v)) }

// readHeld reads v's held set, sorted.
func readHeld(c *nftables.Conn, v VIP) ([]Bucket, error) { return readBuckets(c, heldSet(v)) }

// readBucketsIfThere is readBuckets with a missing set (or table) not an
// error: ok false.
func readBucketsIfThere(c *nftables.Conn, s *nftables.Set) (bs []Bucket, ok bool, err error) {
	bs, err = readBuckets(c, s)
	if isNotFound(err) {
		return nil, false, nil
	}
	return bs, err == nil, err
}

func readBuckets(c *nftables.Conn, s *nftables.Set) ([]Bucket, error) {
	els, err := c.GetSetElements(s)
	if err != nil {
		return nil, err
	}
	out := make([]Bucket, 0, len(els))
	for _, e := range els {
		if b, ok := keyBucket(e.Key); ok {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out, nil
}

// isNotFound reports a missing table, chain or set. google/nftables
// formats the netlink error with %v, so errors.Is does not always see
// the errno.
func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), unix.ENOENT.Error()))
}

// ingressRules returns the rules of v's netdev ingress chain, nil when
// there are none (the table or chain is missing).
func ingressRules(c *nftables.Conn, v VIP) ([]*nftables.Rule, error) {
	nd := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: v.name()}
	rs, err := c.GetRules(nd, &nftables.Chain{Name: chainIngr, Table: nd})
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read settings of %s: %w", v, err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs, nil
}

// recordedBackend returns the backend v's settings comment (on one of the
// ingress rules rs) records.
func recordedBackend(rs []*nftables.Rule, v VIP) (Backend, bool) {
	for _, r := range rs {
		cm, found := userdata.GetString(r.UserData, userdata.TypeComment)
		if !found {
			continue
		}
		if rv, be, err := parseFingerprint(cm); err == nil && rv.Addr == v.Addr {
			return be, true
		}
	}
	return 0, false
}

// listNFT returns the settings comments of all loadshare VIPs here.
func (p *Plane) listNFT() ([]string, error) {
	c, err := p.nftConn()
	if err != nil {
		return nil, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		if !strings.HasPrefix(t.Name, tablePrefix) {
			continue
		}
		rs, err := c.GetRules(t, &nftables.Chain{Name: chainIngr, Table: t})
		if err != nil || len(rs) == 0 {
			continue
		}
		if s, ok := userdata.GetString(rs[0].UserData, userdata.TypeComment); ok {
			out = append(out, s)
		}
	}
	return out, nil
}
