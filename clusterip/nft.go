package clusterip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Kernel objects of one VIP (the names are v.name(), e.g. loadshare-10_201_0_100):
//
//	table netdev NAME { chain ingress: daddr VIP meta pkttype set host }       both backends
//	                  { set held; chain ingress: TCP to VIP, jhash not in @held: counter drop } nftables backend
//	table arp NAME    { chain output: arp saddr ip VIP arp saddr ether set MAC } IPv4, both backends
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
// Status reads everything back from the kernel.

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

func l3Family(v VIP) nftables.TableFamily {
	if v.Addr.Is4() {
		return nftables.TableFamilyIPv4
	}
	return nftables.TableFamilyIPv6
}

// fingerprint is the settings comment on the ingress rule.
func fingerprint(v VIP, b Backend) string {
	return fmt.Sprintf("loadshare/1 addr=%s prefix=%d link=%s buckets=%d seed=%#x hash=%s mac_mode=%s mac=%s backend=%s",
		v.Addr, v.prefixLen(), v.Link, v.Buckets, v.Seed, v.Hash, v.MACMode, v.ClusterMAC(), b)
}

// parseFingerprint reverses fingerprint.
func parseFingerprint(s string) (VIP, Backend, error) {
	f := strings.Fields(s)
	if len(f) == 0 || f[0] != "loadshare/1" {
		return VIP{}, 0, fmt.Errorf("not a loadshare comment: %q", s)
	}
	var v VIP
	var be Backend
	for _, kv := range f[1:] {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "addr":
			v.Addr, err = netip.ParseAddr(val)
		case "prefix":
			v.Prefix, err = strconv.Atoi(val)
		case "link":
			v.Link = val
		case "buckets":
			var n uint64
			n, err = strconv.ParseUint(val, 10, 16)
			v.Buckets = uint16(n)
		case "seed":
			var n uint64
			n, err = strconv.ParseUint(val, 0, 32)
			v.Seed = uint32(n)
		case "hash":
			v.Hash, err = ParseHashMode(val)
		case "mac_mode":
			v.MACMode, err = ParseMACMode(val)
		case "mac":
			v.MAC, err = net.ParseMAC(val)
		case "backend":
			be, err = ParseBackend(val)
		}
		if err != nil {
			return VIP{}, 0, fmt.Errorf("comment %q: %s: %w", s, k, err)
		}
	}
	if v.Prefix == v.Addr.BitLen() {
		v.Prefix = 0
	}
	if v.MAC.String() == DeriveMAC(v.Addr, v.MACMode).String() {
		v.MAC = nil
	}
	return v, be, nil
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

// addLinkObjects queues the tables both backends use: pkttype fix and the
// ARP (IPv4) answer rewrite, and with the nftables backend the early drop
// (addEarlyDrop) with held as its set. IPv6's neighbour rewrite lives in
// the ip6 table (addNeighObjects) since ND is ICMPv6.
func addLinkObjects(c *nftables.Conn, v VIP, be Backend, held []Bucket) error {
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

func heldSet(v VIP) *nftables.Set {
	return &nftables.Set{Table: &nftables.Table{Family: nftables.TableFamilyNetdev, Name: v.name()}, Name: setHeld,
		KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.NativeEndian}
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
func addEarlyDrop(c *nftables.Conn, nd *nftables.Table, ch *nftables.Chain, v VIP, held []Bucket) error {
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

// readHeld reads v's held set.
func readHeld(c *nftables.Conn, v VIP) ([]Bucket, error) {
	els, err := c.GetSetElements(heldSet(v))
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

// addNeighObjects queues the IPv6 neighbour-discovery rewrite: neighbour
// solicitations and advertisements sent from the VIP carry the cluster MAC
// in their link-layer address option (source option 1 in NS, target
// option 2 in NA, both at ICMPv6 offset 24), checksum fixed incrementally.
func addNeighObjects(c *nftables.Conn, t *nftables.Table, v VIP) {
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
func addBucketObjects(c *nftables.Conn, t *nftables.Table, v VIP, owned []Bucket) error {
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

// nftState is what exists of a VIP's nft objects.
type nftState struct {
	netdev, arp, l3 bool
	comment         string
	owned           []Bucket
	ownedOK         bool     // the owned set exists and was read
	held            []Bucket // nftables backend: the netdev set held
	shapeOK         bool     // chains and rule counts as built
}

func tableExists(c *nftables.Conn, fam nftables.TableFamily, name string) (bool, error) {
	_, err := c.ListTableOfFamily(name, fam)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return false, err
}

func readOwned(c *nftables.Conn, t *nftables.Table) ([]Bucket, error) {
	els, err := c.GetSetElements(&nftables.Set{Table: t, Name: setOwned})
	if err != nil {
		return nil, err
	}
	var out []Bucket
	for _, e := range els {
		if b, ok := keyBucket(e.Key); ok {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out, nil
}

func ruleCount(c *nftables.Conn, t *nftables.Table, chain string) (int, error) {
	rs, err := c.GetRules(t, &nftables.Chain{Name: chain, Table: t})
	if err != nil {
		return 0, err
	}
	return len(rs), nil
}

// readNFT reads the state of v's nft objects; withBuckets says whether the
// nftables backend's sets and chains are expected in the l3 table.
func readNFT(c *nftables.Conn, v VIP, withBuckets bool) (nftState, error) {
	var s nftState
	name := v.name()
	var err error
	if s.netdev, err = tableExists(c, nftables.TableFamilyNetdev, name); err != nil {
		return s, err
	}
	if s.arp, err = tableExists(c, nftables.TableFamilyARP, name); err != nil {
		return s, err
	}
	if s.l3, err = tableExists(c, l3Family(v), name); err != nil {
		return s, err
	}
	shape := s.netdev && (v.Addr.Is6() || s.arp)
	if s.netdev {
		nd := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: name}
		rs, err := c.GetRules(nd, &nftables.Chain{Name: chainIngr, Table: nd})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return s, err
		}
		if len(rs) == ingressRuleCount(withBuckets) {
			s.comment, _ = userdata.GetString(rs[0].UserData, userdata.TypeComment)
		} else {
			shape = false
		}
		if withBuckets {
			if s.held, err = readHeld(c, v); err != nil {
				shape = false
			}
		}
	}
	if s.arp && v.Addr.Is4() {
		at := &nftables.Table{Family: nftables.TableFamilyARP, Name: name}
		if n, err := ruleCount(c, at, chainARPOut); err != nil || n != 1 {
			shape = false
		}
	}
	needL3 := withBuckets || v.Addr.Is6()
	if needL3 != s.l3 {
		shape = false
	}
	if s.l3 {
		t := &nftables.Table{Family: l3Family(v), Name: name}
		if withBuckets {
			if o, err := readOwned(c, t); err == nil {
				s.owned, s.ownedOK = o, true
			} else {
				shape = false
			}
			want := 4
			if v.Addr.Is6() {
				want = 5
			}
			if n, err := ruleCount(c, t, chainBucket); err != nil || n != want {
				shape = false
			}
			if n, err := ruleCount(c, t, chainPre); err != nil || n != 1 {
				shape = false
			}
		}
		if v.Addr.Is6() {
			if n, err := ruleCount(c, t, chainNeigh); err != nil || n != 2 {
				shape = false
			}
		}
	}
	s.shapeOK = shape
	return s, nil
}

// ingressRuleCount is the number of rules in the netdev ingress chain:
// the pkttype fix, and with the nftables backend the early drop.
func ingressRuleCount(withBuckets bool) int {
	if withBuckets {
		return 2
	}
	return 1
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
	withBuckets := be == BackendNFTables
	s, err := readNFT(c, v, withBuckets)
	if err != nil {
		return fmt.Errorf("read nftables objects of %s: %w", v, err)
	}
	if s.shapeOK && s.comment == fingerprint(v, be) {
		var missing []Bucket
		for _, b := range s.owned {
			if withBuckets && !slices.Contains(s.held, b) {
				missing = append(missing, b)
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
	for _, b := range s.owned {
		if uint16(b) < v.Buckets {
			owned = append(owned, b)
		}
	}
	name := v.name()
	if s.netdev {
		c.DelTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: name})
	}
	if s.arp {
		c.DelTable(&nftables.Table{Family: nftables.TableFamilyARP, Name: name})
	}
	if s.l3 {
		c.DelTable(&nftables.Table{Family: l3Family(v), Name: name})
	}
	var held []Bucket // new tables: nothing can be tracked yet
	if s.netdev || s.l3 {
		held = make([]Bucket, v.Buckets)
		for b := range held {
			held[b] = Bucket(b)
		}
	}
	if err := addLinkObjects(c, v, be, held); err != nil {
		return err
	}
	if withBuckets || v.Addr.Is6() {
		t := c.AddTable(&nftables.Table{Family: l3Family(v), Name: name})
		if withBuckets {
			if err := addBucketObjects(c, t, v, owned); err != nil {
				return err
			}
		}
		if v.Addr.Is6() {
			addNeighObjects(c, t, v)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("program nftables tables %s: %w", name, err)
	}
	return nil
}

// removeNFT deletes v's nft tables in one batch; absent ones are skipped.
func (p *Plane) removeNFT(v VIP) error {
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	name := v.name()
	n := 0
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyNetdev, nftables.TableFamilyARP, l3Family(v)} {
		ok, err := tableExists(c, fam, name)
		if err != nil {
			return err
		}
		if ok {
			c.DelTable(&nftables.Table{Family: fam, Name: name})
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables tables %s: %w", name, err)
	}
	return nil
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
	s := &nftables.Set{Table: &nftables.Table{Family: l3Family(v), Name: v.name()}, Name: setOwned,
		KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.NativeEndian}
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
	return readOwned(c, &nftables.Table{Family: l3Family(v), Name: v.name()})
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

// nfARPOut is NF_ARP_OUT (linux/netfilter_arp.h); x/sys/unix lacks it.
const nfARPOut = 1
