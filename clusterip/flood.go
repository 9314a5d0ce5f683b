package clusterip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The flood check: does the network deliver the VIP's cluster MAC frames to
// this node? A switch that prunes the group (IGMP/MLD snooping), learned the
// cluster MAC on one port, or a teaming policy can stop flooding it to some
// ports; the node then owns buckets whose clients never reach it.
//
// Every node running the check sends a probe frame to the cluster MAC with
// its own link MAC as source (never the cluster MAC: a switch that learns it
// stops flooding it), and counts in the kernel the probes it receives, per
// sender MAC. The probe is a UDP datagram to the link's broadcast (IPv4) or
// all-nodes (IPv6) address, port 9, whose Ethernet destination the egress
// chain rewrites to the cluster MAC: a plain UDP socket, since closing an
// AF_PACKET socket waits for an RCU grace period (synchronize_net, 15-20 ms
// measured), most of a monitor's time. A table of its own, so that it exists
// also on a node that owns no bucket of the VIP (the node must learn when
// the fault is gone):
//
//	table netdev loadshare-flood-ADDR {
//	  set peers { type ether_addr; flags dynamic; counter; size 256 }
//	  chain ingress { type filter hook ingress device LINK priority -510
//	    ether daddr CLUSTER_MAC udp dport 9 @th,64,32 "LSFP" @th,96,128 VIP
//	      update @peers { ether saddr } drop }
//	  chain egress { type filter hook egress device LINK priority -510
//	    ether daddr BROADCAST udp dport 9 @th,64,32 "LSFP" @th,96,128 VIP
//	      ether daddr set CLUSTER_MAC }
//	}
//
// The cluster MAC is joined on the link while the check runs (a NIC filters
// multicast and foreign unicast it has not been told about), and kept there
// when the VIP's last bucket goes (see Plane.dropLocked).
//
// The check is independent of the buckets' backend: with xtcluster (iptables'
// cluster match) it runs the same on a kernel that also has nf_tables with
// netdev ingress and egress hooks; the probes (to the broadcast or all-nodes
// address, not the VIP) never match the VIP's iptables rules, and are dropped
// at netdev ingress before them. A kernel without those hooks refuses the
// table: ErrFloodUnsupported.

// FloodPort is the probes' UDP port (discard): a probe that reaches a
// node's stack (no flood check there) is dropped silently.
const FloodPort = 9

// floodMagic starts a probe's payload; the VIP's address (16 bytes, IPv4
// mapped) follows, so two VIPs sharing a MAC by configuration do not count
// each other's probes.
var floodMagic = []byte("LSFP")

const (
	floodSet     = "peers"
	floodPrio    = prioIngress - 10
	floodSetSize = 256
	chainEgress  = "egress"
)

// floodDest is where a probe of v is sent before the egress rewrite: the
// limited broadcast (IPv4) or all-nodes (IPv6) address, and its MAC.
func floodDest(v VIP) (netip.Addr, net.HardwareAddr) {
	if v.Addr.Is4() {
		return netip.AddrFrom4([4]byte{255, 255, 255, 255}), net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	return netip.MustParseAddr("ff02::1"), net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
}

// floodMatch matches a probe of v whose Ethernet destination is mac.
func floodMatch(v VIP, mac net.HardwareAddr) []expr.Any {
	proto := uint16(unix.ETH_P_IP)
	if v.Addr.Is6() {
		proto = unix.ETH_P_IPV6
	}
	addr := v.Addr.As16()
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(proto)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 0, Len: 6},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(mac)},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(FloodPort)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 8, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: floodMagic},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 12, Len: 16},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
	}
}

func floodTable(v VIP) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyNetdev, Name: tablePrefix + "flood-" + v.name()[len(tablePrefix):]}
}

// FloodTableName is the name of v's flood check table (netdev family).
func FloodTableName(v VIP) string { return floodTable(v).Name }

// FloodPresent reports whether v's flood check runs here (its table exists).
func (p *Plane) FloodPresent(v VIP) (bool, error) {
	c, err := p.nftConn()
	if err != nil {
		return false, err
	}
	return tableExists(c, nftables.TableFamilyNetdev, floodTable(v).Name)
}

// EnsureFlood sets up v's flood check on the node: its table and the
// cluster MAC joined on v's link; a repeat is a no-op. The probe counters
// start at zero when the table is made.
// Equivalent to: nft add table netdev loadshare-flood-ADDR { … }; bridge fdb add MAC dev LINK self permanent
func (p *Plane) EnsureFlood(v VIP) error {
	unlock, err := p.lock(v)
	if err != nil {
		return err
	}
	defer unlock()
	h, l, err := p.openLink(v, linkOf)
	if err != nil {
		return fmt.Errorf("flood check of %s: %w", v, err)
	}
	defer h.Close()
	if err := joinMAC(h, l, v); err != nil {
		return err
	}
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	// The lock file is the VIP's (lock.go): it goes with the VIP's last
	// bucket, so the check leaves none behind on a node serving no bucket.
	if served, err := p.servedHere(c, v); err != nil {
		return err
	} else if !served {
		defer p.removeLockFile(v)
	}
	ok, err := p.FloodPresent(v)
	if err != nil || ok {
		return err
	}
	t := c.AddTable(floodTable(v))
	s := &nftables.Set{Table: t, Name: floodSet, KeyType: nftables.TypeEtherAddr,
		Dynamic: true, Counter: true, Size: floodSetSize}
	if err := c.AddSet(s, nil); err != nil {
		return err
	}
	ch := c.AddChain(&nftables.Chain{Name: chainIngr, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityRef(floodPrio),
		Device: v.Link, Policy: policy(nftables.ChainPolicyAccept)})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(floodMatch(v, v.ClusterMAC()),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Dynset{SrcRegKey: 1, SetName: s.Name, SetID: s.ID, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)})
	eg := c.AddChain(&nftables.Chain{Name: chainEgress, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookEgress, Priority: nftables.ChainPriorityRef(floodPrio),
		Device: v.Link, Policy: policy(nftables.ChainPolicyAccept)})
	_, bcast := floodDest(v)
	c.AddRule(&nftables.Rule{Table: t, Chain: eg, Exprs: append(floodMatch(v, bcast),
		&expr.Immediate{Register: 1, Data: []byte(v.ClusterMAC())},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 0, Len: 6},
	)})
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAFNOSUPPORT) {
			err = fmt.Errorf("%w: %w", ErrFloodUnsupported, err)
		}
		return fmt.Errorf("program flood check table %s: %w", t.Name, err)
	}
	return nil
}

// ErrFloodUnsupported: the kernel lacks what the flood check's table
// needs, nf_tables with netdev ingress and egress hooks (Linux 5.16 or
// later, CONFIG_NETFILTER_EGRESS). Either backend's buckets work without
// it; the check does not.
var ErrFloodUnsupported = errors.New("the kernel has no nftables netdev ingress and egress hooks (Linux 5.16 or later)")

// servedHere reports whether buckets of v are served on this node, by
// either backend: its nftables table, else its iptables chain (looked
// for only when the table is absent: an exec of iptables-save).
func (p *Plane) servedHere(c *nftables.Conn, v VIP) (bool, error) {
	ok, err := tableExists(c, nftables.TableFamilyNetdev, v.name())
	if err != nil || ok {
		return ok, err
	}
	return p.xtRecorded(v), nil
}

// RemoveFlood removes v's flood check: its table, and the cluster MAC from
// the link unless buckets of v are served here (their tables exist).
// Absent pieces are fine.
func (p *Plane) RemoveFlood(v VIP) error {
	unlock, err := p.lock(v)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	if ok, err := p.FloodPresent(v); err != nil {
		return err
	} else if ok {
		c.DelTable(floodTable(v))
		if err := c.Flush(); err != nil {
			return fmt.Errorf("delete flood check table of %s: %w", v, err)
		}
	}
	served, err := p.servedHere(c, v)
	if err != nil || served {
		return err
	}
	h, err := p.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	if l, err := h.LinkByName(v.Link); err == nil {
		if err := leaveMAC(h, l, v); err != nil {
			return err
		}
	}
	p.removeLockFile(v)
	return nil
}

// FloodChecks returns the addresses of the VIPs whose flood check runs
// here (their tables exist), sorted.
// Equivalent to: nft list tables netdev | grep loadshare-flood-
func (p *Plane) FloodChecks() ([]netip.Addr, error) {
	c, err := p.nftConn()
	if err != nil {
		return nil, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return nil, fmt.Errorf("list flood checks: %w", err)
	}
	var out []netip.Addr
	for _, t := range ts {
		if a, ok := floodTableAddr(t.Name); ok {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// floodTableAddr reverses floodTable's name: '_' stands for '.' (IPv4) or
// ':' (IPv6).
func floodTableAddr(name string) (netip.Addr, bool) {
	s, ok := strings.CutPrefix(name, tablePrefix+"flood-")
	if !ok {
		return netip.Addr{}, false
	}
	for _, sep := range []string{".", ":"} {
		if a, err := netip.ParseAddr(strings.ReplaceAll(s, "_", sep)); err == nil && a.Is4() == (sep == ".") {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// FloodHeard returns the probes of v received here so far, by sender MAC
// (lower-case colon form), since the check's table was made.
// Equivalent to: nft list set netdev loadshare-flood-ADDR peers
func (p *Plane) FloodHeard(v VIP) (map[string]uint64, error) {
	c, err := p.nftConn()
	if err != nil {
		return nil, err
	}
	els, err := c.GetSetElements(&nftables.Set{Table: floodTable(v), Name: floodSet, KeyType: nftables.TypeEtherAddr})
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("flood check of %s: %w", v, ErrNotEnsured)
	}
	if err != nil {
		return nil, fmt.Errorf("read flood check of %s: %w", v, err)
	}
	out := make(map[string]uint64, len(els))
	for _, e := range els {
		if len(e.Key) < 6 {
			continue
		}
		var n uint64
		if e.Counter != nil {
			n = e.Counter.Packets
		}
		out[net.HardwareAddr(e.Key[:6]).String()] = n
	}
	return out, nil
}

// floodPayload is a probe's UDP payload.
func floodPayload(v VIP) []byte {
	b := make([]byte, 20)
	copy(b[0:4], floodMagic)
	a := v.Addr.As16()
	copy(b[4:20], a[:])
	return b
}

// FloodBurst is how many probes SendFloodProbe sends at once: with two
// peers, a window of 3 monitors and a confirmation of 3 more, a node loses
// all of 36 probes before it is judged; at 50% random loss that is 2^-36
// (at one probe a monitor, 2^-12: once in 2.3 hours at 2 s monitors).
const FloodBurst = 3

// SendFloodProbe sends FloodBurst probes of v on its link: to the cluster
// MAC (the egress rewrite of EnsureFlood's table), from the link's own MAC.
// One UDP socket bound to the link; no process.
func (p *Plane) SendFloodProbe(v VIP) error {
	h, done, err := p.rtnetlink()
	if err != nil {
		return err
	}
	l, err := p.knownLink(h, v)
	done()
	if err != nil {
		return fmt.Errorf("flood probe of %s: link %s: %w", v, v.Link, err)
	}
	src := l.Attrs().HardwareAddr
	if len(src) != 6 || bytes.Equal(src, v.ClusterMAC()) {
		return fmt.Errorf("flood probe of %s: link %s has no Ethernet address of its own", v, v.Link)
	}
	dst, _ := floodDest(v)
	idx := l.Attrs().Index
	return p.inNS(func() error {
		family := unix.AF_INET6
		var sa unix.Sockaddr = &unix.SockaddrInet6{Port: FloodPort, Addr: dst.As16(), ZoneId: uint32(idx)}
		if v.Addr.Is4() {
			family = unix.AF_INET
			sa = &unix.SockaddrInet4{Port: FloodPort, Addr: dst.As4()}
		}
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("flood probe of %s: %w", v, os.NewSyscallError("socket", err))
		}
		defer unix.Close(fd)
		if err := unix.BindToDevice(fd, v.Link); err != nil {
			return fmt.Errorf("flood probe of %s: bind to %s: %w", v, v.Link, err)
		}
		if v.Addr.Is4() {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
		} else {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
		}
		if err != nil {
			return fmt.Errorf("flood probe of %s: %w", v, os.NewSyscallError("setsockopt", err))
		}
		b := floodPayload(v)
		for range FloodBurst {
			if err := unix.Sendto(fd, b, 0, sa); err != nil {
				return fmt.Errorf("flood probe of %s on %s: %w", v, v.Link, os.NewSyscallError("sendto", err))
			}
		}
		return nil
	})
}

// FloodVerdict is what the flood check concludes about this node.
type FloodVerdict int

const (
	// FloodUnknown: not judged (just started, or its claim withdrawn too
	// recently).
	FloodUnknown FloodVerdict = iota
	// FloodReached: a peer's probe arrived within the window.
	FloodReached
	// FloodUnreached: no peer's probe for the window, while some online
	// peer hears others: the network does not deliver the VIP's frames here.
	FloodUnreached
	// FloodNoneReached: no peer's probe for the window, and no other node
	// says it hears any (alone, or every node silenced): not judged, the
	// node keeps serving, as do all.
	FloodNoneReached
)

func (f FloodVerdict) String() string {
	switch f {
	case FloodReached:
		return "reached"
	case FloodUnreached:
		return "unreached"
	case FloodNoneReached:
		return "none-reached"
	}
	return "unknown"
}

// FloodInput is what JudgeFlood decides from.
type FloodInput struct {
	Now       time.Time
	Started   time.Time     // when the check's counters started (its table was made)
	LastHeard time.Time     // when a peer's count last grew; zero: never
	Window    time.Duration // K probe intervals
	// Unclaimed: since when this node has not said it is reached (no
	// flood_NAME=1 of its own); zero: it says so now.
	Unclaimed time.Time
	// Confirm: how long this node's claim must have been withdrawn before
	// it may judge itself unreached. Longer than the spread between the
	// moments the nodes one fault silences withdraw theirs (the last
	// probe's phase, the monitors' phases, a late monitor: 3 intervals),
	// so that a peer's "reached" it reads is not one the same fault has
	// already made stale.
	Confirm time.Duration
	// PeersReached: other nodes that say they hear peers (their verdict
	// is FloodReached), i.e. online and hearing each other.
	PeersReached []string
}

// FloodMemory is what a node's flood check remembers from one monitor to
// the next (the clustervip agent keeps it in its state file). Observe,
// JudgeFlood and Publish are one monitor's steps, in that order.
type FloodMemory struct {
	Started   time.Time `json:"started"`              // the counters' start (the table was made)
	Heard     uint64    `json:"heard"`                // peers' probes counted at the last monitor
	LastHeard time.Time `json:"last_heard,omitempty"` // when that count last grew; zero: never
	// Unclaimed: since when Published has not been "1" (the start, or the
	// claim's withdrawal); zero while it is.
	Unclaimed time.Time `json:"unclaimed,omitempty"`
	Published string    `json:"published,omitempty"` // the node attribute's value written: "1", "0", "" none
}

// NewFloodMemory is the memory of a check whose counters start at now.
func NewFloodMemory(now time.Time) FloodMemory { return FloodMemory{Started: now, Unclaimed: now} }

// Observe records heard, the probes counted by now (FloodHeard's sum),
// and returns what to judge; PeersReached is the caller's to fill, and
// only when ask: the node has been quiet for the window with its claim
// withdrawn for confirm, so that the other nodes' attributes are read
// only then.
func (m *FloodMemory) Observe(now time.Time, heard uint64, window, confirm time.Duration) (in FloodInput, ask bool) {
	if heard > m.Heard {
		m.LastHeard = now
	}
	m.Heard = heard
	if m.Published != "1" && m.Unclaimed.IsZero() {
		m.Unclaimed = now // a memory from before the field, or torn
	}
	in = FloodInput{Now: now, Started: m.Started, LastHeard: m.LastHeard, Window: window, Unclaimed: m.Unclaimed, Confirm: confirm}
	quiet := m.LastHeard.IsZero() || now.Sub(m.LastHeard) > window
	withdrawn := !m.Unclaimed.IsZero() && now.Sub(m.Unclaimed) >= confirm
	return in, quiet && withdrawn && now.Sub(m.Started) >= window
}

// FloodValue is the node attribute's value for a verdict: "1" reached,
// "0" unreached, "" (no value) when not judged.
func FloodValue(v FloodVerdict) string {
	switch v {
	case FloodReached:
		return "1"
	case FloodUnreached:
		return "0"
	}
	return ""
}

// Publish records that the attribute now holds value (written at now).
func (m *FloodMemory) Publish(now time.Time, value string) {
	switch {
	case value == "1":
		m.Unclaimed = time.Time{}
	case m.Published == "1":
		m.Unclaimed = now
	}
	m.Published = value
}

// JudgeFlood decides the verdict and says why in words. Pure.
//
// A node is unreached only after a whole window without any peer's probe,
// then Confirm more with its own claim withdrawn, and only while another
// node still says it hears probes. A node alone, a node that just
// started, and a cluster where nobody hears anybody (the network, or every
// node at once: FloodNoneReached) are never judged: when every node goes silent, each
// withdraws its claim first and none finds a peer still claiming, so the
// check never darkens the VIP everywhere, nor moves buckets back and forth.
func JudgeFlood(in FloodInput) (FloodVerdict, string) {
	since := func(t time.Time) string { return in.Now.Sub(t).Round(time.Second).String() }
	switch {
	case !in.LastHeard.IsZero() && in.Now.Sub(in.LastHeard) <= in.Window:
		return FloodReached, "a peer's probe arrived " + since(in.LastHeard) + " ago"
	case in.Now.Sub(in.Started) < in.Window:
		return FloodUnknown, "started " + since(in.Started) + " ago, within the window"
	case in.Unclaimed.IsZero():
		return FloodUnknown, "no peer's probe for " + in.Window.String() + ": withdrawing the claim to be reached"
	case in.Now.Sub(in.Unclaimed) < in.Confirm:
		return FloodUnknown, "no peer's probe for " + in.Window.String() + ", claim withdrawn " + since(in.Unclaimed) +
			" ago: judged after " + in.Confirm.String() + ", once the nodes the same fault silenced have withdrawn theirs"
	case len(in.PeersReached) == 0:
		return FloodNoneReached, "no peer's probe for " + in.Window.String() + ", and no other node hears one either: every node looks unreached, keep serving"
	}
	ps := slices.Clone(in.PeersReached)
	slices.Sort(ps)
	return FloodUnreached, fmt.Sprintf("no peer's probe for %s while %v hear theirs: the network does not deliver the VIP's frames here", in.Window, ps)
}
