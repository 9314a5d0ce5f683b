package clusterip

// Building a VIP's nftables objects, and the shape they are expected to
// have (shapeOf), which the reader (nftread.go) checks them against.

import (
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Kernel objects of one VIP (the names are v.name(), e.g. loadshare-10_201_0_100):
//
//	table netdev NAME { chain ingress: daddr VIP meta pkttype set host }
//	                  { set held; chain ingress: TCP to VIP, jhash not in @held: counter drop }
//	table arp NAME    { chain output: arp saddr ip VIP arp saddr ether set MAC } IPv4
//	table ip|ip6 NAME {                                                        nftables backend
//	  set owned   (4-byte host-order integer: the jhash bucket)
//	  set traffic (all buckets, counter)   set new (all buckets, counter)
//	  chain prerouting (-150): iifname LINK daddr VIP jump bucket
//	  chain bucket: ct established,related: count in @traffic; accept
//	                SYN-only, jhash … mod N seed S in @owned: count in @new; accept
//	                (IPv6: neighbour discovery accept); drop
//	  chain neigh-out (IPv6, output): NS/NA from VIP: link-layer option set MAC
//	}
//
// The ingress rule carries the VIP's settings in its comment (userdata), so
// Status reads everything back from the kernel. The nftables backend only:
// xtcluster builds its own in iptables (xtcluster.go). addObjects builds all of
// them; shapeOf is what it builds, so a rule added there is expected by
// Ensure's and State's checks without further change.

const (
	setOwned    = "owned"
	setTraffic  = "traffic"
	setNew      = "new"
	setHeld     = "held"
	chainPre    = "prerouting"
	chainBucket = "bucket"
	chainNeigh  = "neigh-out"
	chainIngr   = "ingress"
	chainARPOut = "output"

	// PrioBucket runs after conntrack (-200) so ct state is known, before
	// mangle (-150 is mangle's priority; ties are fine, we only accept/drop).
	prioBucket = -150
	// prioIngress runs before anything else on the link.
	prioIngress = -500
)

// batch is what the build functions queue objects into: a *nftables.Conn
// (Ensure, the backend probe) or a shapeRecorder (shapeOf).
type batch interface {
	AddTable(*nftables.Table) *nftables.Table
	AddChain(*nftables.Chain) *nftables.Chain
	AddRule(*nftables.Rule) *nftables.Rule
	AddSet(*nftables.Set, []nftables.SetElement) error
}

// addObjects queues every nftables object of v for backend be: the link
// tables (addLinkObjects) and, with the nftables backend or IPv6, the
// ip/ip6 table with the bucket objects (addBucketObjects) and the
// neighbour rewrite (addNeighObjects).
func addObjects(c batch, v VIP, be Backend, owned, held []Bucket) error {
	if err := addLinkObjects(c, v, be, held); err != nil {
		return err
	}
	if be != BackendNFTables && v.Addr.Is4() {
		return nil
	}
	t := c.AddTable(&nftables.Table{Family: l3Family(v), Name: v.name()})
	if be == BackendNFTables {
		if err := addBucketObjects(c, t, v, owned); err != nil {
			return err
		}
	}
	if v.Addr.Is6() {
		addNeighObjects(c, t, v)
	}
	return nil
}

// shape is the tables, sets and chains addObjects builds for one VIP and
// backend, with each chain's rule count, in build order.
type shape struct {
	tables []nftables.TableFamily
	sets   []shapeSet
	chains []shapeChain
}

type shapeSet struct {
	family nftables.TableFamily
	name   string
}

type shapeChain struct {
	family nftables.TableFamily
	name   string
	rules  int
}

func (s shape) hasSet(fam nftables.TableFamily, name string) bool {
	return slices.Contains(s.sets, shapeSet{fam, name})
}

// shapeOf is the shape addObjects builds for v and be, recorded from a
// build into a shapeRecorder (a few microseconds; no kernel request).
func shapeOf(v VIP, be Backend) shape {
	var r shapeRecorder
	// The recorder fails nothing; the owned and held buckets do not
	// change the shape.
	_ = addObjects(&r, v, be, nil, nil)
	return r.s
}

// shapeRecorder is a batch that only records what is queued into it.
type shapeRecorder struct{ s shape }

func (r *shapeRecorder) AddTable(t *nftables.Table) *nftables.Table {
	if !slices.Contains(r.s.tables, t.Family) {
		r.s.tables = append(r.s.tables, t.Family)
	}
	return t
}

func (r *shapeRecorder) AddChain(c *nftables.Chain) *nftables.Chain {
	r.s.chains = append(r.s.chains, shapeChain{family: c.Table.Family, name: c.Name})
	return c
}

func (r *shapeRecorder) AddRule(rule *nftables.Rule) *nftables.Rule {
	for i, c := range r.s.chains {
		if c.family == rule.Table.Family && c.name == rule.Chain.Name {
			r.s.chains[i].rules++
		}
	}
	return rule
}

func (r *shapeRecorder) AddSet(s *nftables.Set, _ []nftables.SetElement) error {
	r.s.sets = append(r.s.sets, shapeSet{s.Table.Family, s.Name})
	return nil
}

func l3Family(v VIP) nftables.TableFamily {
	if v.Addr.Is4() {
		return nftables.TableFamilyIPv4
	}
	return nftables.TableFamilyIPv6
}

func bucketKey(b Bucket) []byte { return binaryutil.NativeEndian.PutUint32(uint32(b)) }

func keyBucket(k []byte) (Bucket, bool) {
	if len(k) != 4 {
		return 0, false
	}
	return Bucket(binaryutil.NativeEndian.Uint32(k)), true
}

func ipBytes(a netip.Addr) []byte { return a.AsSlice() }

// ifname pads a link name as the kernel compares it (IFNAMSIZ).
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// hashExprs puts v's bucket of the packet into register 1.
func hashExprs(v VIP) []expr.Any {
	var e []expr.Any
	length := uint32(0)
	if v.Addr.Is4() {
		e = append(e, &expr.Payload{DestRegister: 2, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4})
		length = 4
	} else {
		e = append(e, &expr.Payload{DestRegister: 2, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16})
		length = 16
	}
	if v.Hash == HashSourcePort {
		// The port goes to the 32-bit register right after the address
		// (zero-padded to 4 bytes), as nft does for `saddr . tcp sport`:
		// NFT_REG_2 is words 8..11; word 9 is NFT_REG32_05 (13), word 12 is NFT_REG_3.
		reg := uint32(13)
		if v.Addr.Is6() {
			reg = 3
		}
		e = append(e, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2})
		length += 4
	}
	return append(e, &expr.Hash{SourceRegister: 2, DestRegister: 1, Length: length,
		Modulus: uint32(v.Buckets), Seed: v.Seed, Type: expr.HashTypeJenkins})
}

var ctEstablished = []expr.Any{
	&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
	&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
		Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
		Xor:  binaryutil.NativeEndian.PutUint32(0)},
	&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
}

// synOnly: tcp flags & (fin|syn|rst|ack) == syn. Without it a node that
// newly owns a bucket would pick up (tcp_loose) and reset the mid-stream
// packets of a connection the old owner still serves.
var synOnly = []expr.Any{
	&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
	&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
	&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x17}, Xor: []byte{0}},
	&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func daddrMatch(v VIP) []expr.Any {
	if v.Addr.Is4() {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ipBytes(v.Addr)},
		}
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ipBytes(v.Addr)},
	}
}

// frameToVIP matches, at the netdev hook (before IP), a frame of v's IP
// version whose destination address is v's.
func frameToVIP(v VIP) []expr.Any {
	proto := uint16(unix.ETH_P_IP)
	if v.Addr.Is6() {
		proto = unix.ETH_P_IPV6
	}
	return cat([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(proto)},
	}, daddrMatch(v))
}

// addLinkObjects queues the nftables backend's link tables: pkttype fix and the
// ARP (IPv4) answer rewrite, and with the nftables backend the early drop
// (addEarlyDrop) with held as its set. IPv6's neighbour rewrite lives in
// the ip6 table (addNeighObjects) since ND is ICMPv6.
func addLinkObjects(c batch, v VIP, be Backend, held []Bucket) error {
	name := v.name()
	nd := c.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: name})
	ch := c.AddChain(&nftables.Chain{Name: chainIngr, Table: nd, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityRef(prioIngress),
		Device: v.Link, Policy: policy(nftables.ChainPolicyAccept)})
	// pkttype set host: frames to a multicast (or foreign unicast) MAC
	// arrive as PACKET_MULTICAST/OTHERHOST; IP drops OTHERHOST, TCP
	// drops anything not PACKET_HOST.
	c.AddRule(&nftables.Rule{Table: nd, Chain: ch, Exprs: cat(
		frameToVIP(v),
		[]expr.Any{
			&expr.Immediate{Register: 1, Data: []byte{unix.PACKET_HOST}},
			&expr.Meta{Key: expr.MetaKeyPKTTYPE, SourceRegister: true, Register: 1},
		}),
		UserData: userdata.AppendString(nil, userdata.TypeComment, fingerprint(v, be)),
	})
	if be == BackendNFTables {
		if err := addEarlyDrop(c, nd, ch, v, held); err != nil {
			return err
		}
	}
	if v.Addr.Is4() {
		at := c.AddTable(&nftables.Table{Family: nftables.TableFamilyARP, Name: name})
		// The arp family numbers its hooks apart: NF_ARP_OUT is 1, not NF_INET_LOCAL_OUT.
		ach := c.AddChain(&nftables.Chain{Name: chainARPOut, Table: at, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookRef(nfARPOut), Priority: nftables.ChainPriorityRef(0),
			Policy: policy(nftables.ChainPolicyAccept)})
		// arp saddr ip VIP arp saddr ether set MAC: requests and replies
		// for the VIP name the cluster MAC (Ethernet source stays the NIC's).
		c.AddRule(&nftables.Rule{Table: at, Chain: ach, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ipBytes(v.Addr)},
			&expr.Immediate{Register: 1, Data: []byte(v.ClusterMAC())},
			&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 6},
			&expr.Counter{},
		}})
	}
	return nil
}

func bucketElems(bs []Bucket) []nftables.SetElement {
	out := make([]nftables.SetElement, len(bs))
	for i, b := range bs {
		out[i] = nftables.SetElement{Key: bucketKey(b)}
	}
	return out
}

// addEarlyDrop queues the set held and the ingress rule that drops TCP to
// the VIP whose bucket is not in it. Every node receives every frame of
// the VIP; without this, a node that does not own a frame's bucket runs
// it through the IP stack and conntrack (which, with tcp_loose, allocates
// an entry for each mid-stream packet) before the bucket chain drops it.
// Ingress runs before conntrack, so it cannot ask whether this node tracks
// the packet's connection: held is every owned bucket plus every bucket
// that may still have connections tracked here (released buckets leave it
// only once conntrack shows none of theirs; see Plane.pruneHeld).
func addEarlyDrop(c batch, nd *nftables.Table, ch *nftables.Chain, v VIP, held []Bucket) error {
	s := heldSet(v)
	s.Table = nd
	if err := c.AddSet(s, bucketElems(held)); err != nil {
		return err
	}
	// Non-TCP (ND, ICMP errors) and non-first fragments (no ports: the
	// payload read fails and the rule does not match) go on to the bucket chain.
	c.AddRule(&nftables.Rule{Table: nd, Chain: ch, Exprs: cat(
		frameToVIP(v),
		[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		},
		hashExprs(v),
		[]expr.Any{
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: true},
			// counter: the frames other nodes answer (Plane.Dropped); one
			// per-CPU add, and the shape check counts rules, not
			// expressions, so tables built before it are not rebuilt.
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		})})
	return nil
}

// addNeighObjects queues the IPv6 neighbour-discovery rewrite: neighbour
// solicitations and advertisements sent from the VIP carry the cluster MAC
// in their link-layer address option (source option 1 in NS, target
// option 2 in NA, both at ICMPv6 offset 24), checksum fixed incrementally.
func addNeighObjects(c batch, t *nftables.Table, v VIP) {
	ch := c.AddChain(&nftables.Chain{Name: chainNeigh, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityRef(0),
		Policy: policy(nftables.ChainPolicyAccept)})
	for _, m := range []struct{ icmpType, opt byte }{{135, 1}, {136, 2}} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ipBytes(v.Addr)},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.icmpType}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 24, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.opt, 1}},
			&expr.Immediate{Register: 1, Data: []byte(v.ClusterMAC())},
			&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseTransportHeader,
				Offset: 26, Len: 6, CsumType: expr.CsumTypeInet, CsumOffset: 2},
			&expr.Counter{},
		}})
	}
}

func policy(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }

// addBucketObjects queues the nftables backend's sets and chains.
func addBucketObjects(c batch, t *nftables.Table, v VIP, owned []Bucket) error {
	mk := func(name string, counter bool) (*nftables.Set, error) {
		s := &nftables.Set{Table: t, Name: name, KeyType: nftables.TypeInteger,
			KeyByteOrder: binaryutil.NativeEndian, Counter: counter}
		var elems []nftables.SetElement
		switch {
		case name == setOwned:
			for _, b := range owned {
				elems = append(elems, nftables.SetElement{Key: bucketKey(b)})
			}
		default:
			for b := range v.Buckets {
				elems = append(elems, nftables.SetElement{Key: bucketKey(Bucket(b))})
			}
		}
		return s, c.AddSet(s, elems)
	}
	so, err := mk(setOwned, false)
	if err != nil {
		return err
	}
	st, err := mk(setTraffic, true)
	if err != nil {
		return err
	}
	sn, err := mk(setNew, true)
	if err != nil {
		return err
	}
	pre := c.AddChain(&nftables.Chain{Name: chainPre, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(prioBucket),
		Policy: policy(nftables.ChainPolicyAccept)})
	bk := c.AddChain(&nftables.Chain{Name: chainBucket, Table: t})
	// Only frames from the VIP's link: the node's own connections to the
	// VIP (over lo) are always accepted.
	c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: cat(
		[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(v.Link)},
		},
		daddrMatch(v),
		[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chainBucket}})})
	lookup := func(s *nftables.Set) expr.Any {
		return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}
	}
	// Established/related: count, then accept — whoever tracks a
	// connection keeps it, whichever node owns its bucket now.
	c.AddRule(&nftables.Rule{Table: t, Chain: bk, Exprs: cat(ctEstablished, hashExprs(v), []expr.Any{lookup(st)})})
	c.AddRule(&nftables.Rule{Table: t, Chain: bk, Exprs: cat(ctEstablished, []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}})})
	// A new connection only when its bucket is owned here.
	c.AddRule(&nftables.Rule{Table: t, Chain: bk, Exprs: cat(synOnly, hashExprs(v),
		[]expr.Any{lookup(so), lookup(sn), &expr.Verdict{Kind: expr.VerdictAccept}})})
	if v.Addr.Is6() {
		// Neighbour discovery to the VIP (NUD probes are unicast to it).
		c.AddRule(&nftables.Rule{Table: t, Chain: bk, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{133}},
			&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{137}},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: bk, Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}})
	return nil
}

// nfARPOut is NF_ARP_OUT (linux/netfilter_arp.h); x/sys/unix lacks it.
const nfARPOut = 1
