package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The lab's switch fault: the bridge stops delivering the VIPs' cluster
// MAC frames to one node's port, as a switch does whose IGMP/MLD snooping
// prunes the group, that learned the cluster MAC on one port, or whose
// teaming policy sends the flood elsewhere. Everything else (the node's own
// MAC, broadcasts: ARP, corosync) still reaches the node, so it stays in
// the cluster, Pacemaker shows its buckets Started, and its clients time out.
//
//	table bridge loadshare-lab-flood {
//	  set cluster-macs { type ether_addr; elements = { every lab VIP's MAC, both mac_mode values } }
//	  chain forward { type filter hook forward priority -200
//	    oifname "pN" ether daddr @cluster-macs counter drop comment "unflood nN" }
//	}

const (
	floodTable = "loadshare-lab-flood"
	floodSet   = "cluster-macs"
	floodChain = "forward"
)

// clusterMACs are the cluster MACs of every VIP a lab may serve, in both
// mac_modes (the fault must not depend on the configuration loaded).
func (l *Lab) clusterMACs() []net.HardwareAddr {
	vips := []netip.Addr{l.VIP(), l.ReaderVIP(), l.VIP6()}
	var out []net.HardwareAddr
	for _, v := range vips {
		for _, m := range []clusterip.MACMode{clusterip.MACMulticast, clusterip.MACUnicast} {
			out = append(out, clusterip.DeriveMAC(v, m))
		}
	}
	return out
}

func (l *Lab) switchNFT() (*nftables.Conn, func(), error) {
	ns, err := nstest.Open(l.Netns("switch"))
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return c, func() { ns.Close() }, nil
}

func unfloodComment(node string) string { return "unflood " + node }

// floodRules returns the forward chain's rules, by node.
func floodRules(c *nftables.Conn) (map[string]*nftables.Rule, error) {
	t := &nftables.Table{Family: nftables.TableFamilyBridge, Name: floodTable}
	rs, err := c.GetRules(t, &nftables.Chain{Name: floodChain, Table: t})
	if errors.Is(err, unix.ENOENT) {
		return map[string]*nftables.Rule{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]*nftables.Rule, len(rs))
	for _, r := range rs {
		if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
			var n string
			if _, err := fmt.Sscanf(s, "unflood %s", &n); err == nil {
				out[n] = r
			}
		}
	}
	return out, nil
}

// floodRulesOf opens the switch's nftables (done closes it) and reads the
// faults' rules, by node; node must be one of the lab's.
func (l *Lab) floodRulesOf(node string) (*nftables.Conn, map[string]*nftables.Rule, func(), error) {
	if _, err := l.index(node); err != nil {
		return nil, nil, nil, err
	}
	c, done, err := l.switchNFT()
	if err != nil {
		return nil, nil, nil, err
	}
	rs, err := floodRules(c)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return c, rs, done, nil
}

// Unflood makes the lab's switch stop delivering frames sent to a VIP's
// cluster MAC to node (both mac_mode values, every lab VIP); the node keeps
// everything else. A node already unflooded stays so.
// Equivalent to: nft add rule bridge loadshare-lab-flood forward oifname pN ether daddr @cluster-macs counter drop
func (l *Lab) Unflood(node string) error {
	c, rs, done, err := l.floodRulesOf(node)
	if err != nil {
		return fmt.Errorf("unflood %s: %w", node, err)
	}
	defer done()
	if _, ok := rs[node]; ok {
		return nil
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyBridge, Name: floodTable})
	s := &nftables.Set{Table: t, Name: floodSet, KeyType: nftables.TypeEtherAddr}
	var els []nftables.SetElement
	for _, m := range l.clusterMACs() {
		els = append(els, nftables.SetElement{Key: []byte(m)})
	}
	if err := c.AddSet(s, els); err != nil {
		return err
	}
	prio := nftables.ChainPriority(-200)
	ch := c.AddChain(&nftables.Chain{Name: floodChain, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: &prio})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname16(l.port(node))},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 0, Len: 6},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}, UserData: userdata.AppendString(nil, userdata.TypeComment, unfloodComment(node))})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("unflood %s: %w", node, err)
	}
	return nil
}

// Reflood removes Unflood's fault for node (none is fine); the table goes
// with the last fault.
// Equivalent to: nft delete rule bridge loadshare-lab-flood forward handle H
func (l *Lab) Reflood(node string) error {
	c, rs, done, err := l.floodRulesOf(node)
	if err != nil {
		return fmt.Errorf("reflood %s: %w", node, err)
	}
	defer done()
	r, ok := rs[node]
	if !ok {
		return nil
	}
	if len(rs) == 1 {
		c.DelTable(r.Table)
	} else if err := c.DelRule(r); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("reflood %s: %w", node, err)
	}
	return nil
}

// Unflooded returns the nodes the switch does not deliver cluster MAC
// frames to (Unflood), sorted.
func (l *Lab) Unflooded() ([]string, error) {
	c, done, err := l.switchNFT()
	if err != nil {
		return nil, err
	}
	defer done()
	rs, err := floodRules(c)
	if err != nil {
		return nil, err
	}
	var out []string
	for n := range rs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// ifname16 pads a link name as the kernel compares it (IFNAMSIZ).
func ifname16(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// Lossy makes the lab's switch lose percent of the frames it sends to
// node, at random (tc netem on node's port: probes, clients' frames,
// corosync alike, as a saturated port or NIC ring does); 0 removes it.
// Equivalent to: tc -n SW qdisc replace dev pN root netem loss P% (del with 0)
func (l *Lab) Lossy(node string, percent float32) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("loss of %s: percent=%v: must be 0 to 100", node, percent)
	}
	nl, port, done, err := l.switchPort(node)
	if err != nil {
		return fmt.Errorf("loss of %s: %w", node, err)
	}
	defer done()
	q := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: port.Attrs().Index, Handle: netlink.MakeHandle(1, 0),
		Parent: netlink.HANDLE_ROOT}, netlink.NetemQdiscAttrs{Loss: percent})
	if percent == 0 {
		if err := nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("loss of %s: remove netem on %s: %w", node, l.port(node), err)
		}
		return nil
	}
	if err := nl.QdiscReplace(q); err != nil {
		return fmt.Errorf("loss of %s: netem on %s: %w", node, l.port(node), err)
	}
	return nil
}
