package clusterip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
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
// sender MAC. A table of its own, so that it exists also on a node that owns
// no bucket of the VIP (the node must learn when the fault is gone):
//
//	table netdev loadshare-flood-ADDR {
//	  set peers { type ether_addr; flags dynamic; counter; size 256 }
//	  chain ingress { type filter hook ingress device LINK priority -510
//	    ether type 0x88b5 ether daddr CLUSTER_MAC @nh,0,32 "LSFP" @nh,32,128 VIP
//	      update @peers { ether saddr } drop }
//	}
//
// The cluster MAC is joined on the link while the check runs (a NIC filters
// multicast and foreign unicast it has not been told about), and kept there
// when the VIP's last bucket goes (see Plane.dropLocked).

// FloodEtherType is the probe frames' EtherType: IEEE 802 Local Experimental
// EtherType 1, never forwarded beyond the L2 segment by routers.
const FloodEtherType = 0x88B5

// floodMagic starts a probe's payload; the VIP's address (16 bytes, IPv4
// mapped) follows, so two VIPs sharing a MAC by configuration do not count
// each other's probes.
var floodMagic = []byte("LSFP")

const (
	floodSet      = "peers"
	floodPrio     = prioIngress - 10
	floodSetSize  = 256
	floodFrameLen = 60 // the Ethernet minimum without FCS
)

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
	h, err := p.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(v.Link)
	if err != nil {
		return fmt.Errorf("flood check of %s: link %s: %w", v, v.Link, err)
	}
	if err := joinMAC(h, l, v); err != nil {
		return err
	}
	c, err := p.nftConn()
	if err != nil {
		return err
	}
	// The lock file is the VIP's (lock.go): it goes with the VIP's last
	// bucket, so the check leaves none behind on a node serving no bucket.
	if served, err := tableExists(c, nftables.TableFamilyNetdev, v.name()); err != nil {
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
	addr := v.Addr.As16()
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(FloodEtherType)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 0, Len: 6},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(v.ClusterMAC())},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 0, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: floodMagic},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 4, Len: 16},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Dynset{SrcRegKey: 1, SetName: s.Name, SetID: s.ID, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("program flood check table %s: %w", t.Name, err)
	}
	return nil
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
	served, err := tableExists(c, nftables.TableFamilyNetdev, v.name())
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

// floodFrame is a probe of v from src.
func floodFrame(v VIP, src net.HardwareAddr) []byte {
	b := make([]byte, floodFrameLen)
	copy(b[0:6], v.ClusterMAC())
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], FloodEtherType)
	copy(b[14:18], floodMagic)
	a := v.Addr.As16()
	copy(b[18:34], a[:])
	return b
}

// SendFloodProbe sends one probe frame of v on its link: to the cluster
// MAC, from the link's own MAC. One AF_PACKET socket, one send; no process.
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
	frame := floodFrame(v, src)
	idx := l.Attrs().Index
	return p.inNS(func() error {
		// Protocol 0: the socket only sends, it receives nothing.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("flood probe of %s: %w", v, os.NewSyscallError("socket", err))
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: idx, Halen: 6, Protocol: htons(FloodEtherType)}
		copy(sa.Addr[:], v.ClusterMAC())
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			return fmt.Errorf("flood probe of %s on %s: %w", v, v.Link, os.NewSyscallError("sendto", err))
		}
		return nil
	})
}

func htons(x uint16) uint16 { return x<<8 | x>>8 }

// FloodVerdict is what the flood check concludes about this node.
type FloodVerdict int

const (
	// FloodUnknown: not judged (just started, alone, or no node hears any
	// peer: then every node looks unreached, and all keep serving).
	FloodUnknown FloodVerdict = iota
	// FloodReached: a peer's probe arrived within the window.
	FloodReached
	// FloodUnreached: no peer's probe for the window, while some online
	// peer hears others: the network does not deliver the VIP's frames here.
	FloodUnreached
)

func (f FloodVerdict) String() string {
	switch f {
	case FloodReached:
		return "reached"
	case FloodUnreached:
		return "unreached"
	}
	return "unknown"
}

// FloodInput is what JudgeFlood decides from.
type FloodInput struct {
	Now       time.Time
	Started   time.Time     // when the check's counters started (its table was made)
	LastHeard time.Time     // when a peer's count last grew; zero: never
	Window    time.Duration // K probe intervals
	// PeersReached: other nodes that say they hear peers (their verdict
	// is FloodReached), i.e. online and hearing each other.
	PeersReached []string
}

// JudgeFlood decides the verdict and says why in words. Pure.
//
// A node is unreached only after a whole window without any peer's probe,
// and only while another node hears probes: a node alone, a node that just
// started, and a cluster where nobody hears anybody (the network, or every
// node at once) are never judged, so the check never darkens the VIP
// everywhere.
func JudgeFlood(in FloodInput) (FloodVerdict, string) {
	switch {
	case !in.LastHeard.IsZero() && in.Now.Sub(in.LastHeard) <= in.Window:
		return FloodReached, "a peer's probe arrived " + in.Now.Sub(in.LastHeard).Round(time.Second).String() + " ago"
	case in.Now.Sub(in.Started) < in.Window:
		return FloodUnknown, "started " + in.Now.Sub(in.Started).Round(time.Second).String() + " ago, within the window"
	case len(in.PeersReached) == 0:
		return FloodUnknown, "no peer's probe for " + in.Window.String() + ", and no other node hears one either: every node looks unreached, keep serving"
	}
	ps := slices.Clone(in.PeersReached)
	slices.Sort(ps)
	return FloodUnreached, fmt.Sprintf("no peer's probe for %s while %v hear theirs: the network does not deliver the VIP's frames here", in.Window, ps)
}
