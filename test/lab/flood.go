package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
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
//	    oifname "pN" ether daddr @cluster-macs counter drop comment "unflood nN"
//	    oifname "pM" ether daddr @cluster-macs numgen random mod 100 < P counter drop comment "lossy nM" }
//	}
//
// The second kind of rule is Lossy's: P% of the cluster MAC's frames to a
// node lost at random, as storm control does (the lab's kernel has no netem).

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
func lossyComment(node string) string   { return "lossy " + node }

// floodRules returns the forward chain's rules, by comment.
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
			out[s] = r
		}
	}
	return out, nil
}

// floodRulesOf opens the switch's nftables (done closes it) and reads the
// faults' rules, by comment; node must be one of the lab's.
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

// toClusterMAC matches a frame sent to a lab VIP's cluster MAC (the set
// cluster-macs, made if need be).
// Equivalent to: ether daddr @cluster-macs
func (l *Lab) toClusterMAC(c *nftables.Conn, t *nftables.Table) ([]expr.Any, error) {
	s := &nftables.Set{Table: t, Name: floodSet, KeyType: nftables.TypeEtherAddr}
	var els []nftables.SetElement
	for _, m := range l.clusterMACs() {
		els = append(els, nftables.SetElement{Key: []byte(m)})
	}
	if err := c.AddSet(s, els); err != nil {
		return nil, err
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 0, Len: 6},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}, nil
}

// addFault adds a rule to the switch's fault chain (its table and chain
// made if need be): frames out of node's port that match are counted and
// dropped.
func (l *Lab) addFault(c *nftables.Conn, node, comment string, match func(t *nftables.Table) ([]expr.Any, error)) error {
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyBridge, Name: floodTable})
	m, err := match(t)
	if err != nil {
		return err
	}
	prio := nftables.ChainPriority(-200)
	ch := c.AddChain(&nftables.Chain{Name: floodChain, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: &prio})
	exprs := append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname16(l.port(node))},
	}, m...)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(exprs, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}),
		UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
	return c.Flush()
}

// delFault deletes the fault rule of that comment (none is fine); the
// table goes with the last rule.
func delFault(c *nftables.Conn, rs map[string]*nftables.Rule, comment string) error {
	r, ok := rs[comment]
	if !ok {
		return nil
	}
	if len(rs) == 1 {
		c.DelTable(r.Table)
	} else if err := c.DelRule(r); err != nil {
		return err
	}
	return c.Flush()
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
	if _, ok := rs[unfloodComment(node)]; ok {
		return nil
	}
	err = l.addFault(c, node, unfloodComment(node), func(t *nftables.Table) ([]expr.Any, error) {
		return l.toClusterMAC(c, t)
	})
	if err != nil {
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
	if err := delFault(c, rs, unfloodComment(node)); err != nil {
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
	for c := range rs {
		if n, ok := strings.CutPrefix(c, unfloodComment("")); ok {
			out = append(out, n)
		}
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

// Lossy makes the lab's switch lose percent of the frames to the VIPs'
// cluster MAC it sends to node, at random: the flood check's probes and
// the clients' frames, as a switch's storm control drops a share of
// flooded and multicast frames under load (everything else, corosync
// among it, still arrives: a node losing 30% of all its frames leaves the
// membership and is fenced); 0 removes it. A node lossy already keeps its
// first percentage until it is removed.
// Equivalent to: nft add rule bridge loadshare-lab-flood forward oifname pN ether daddr @cluster-macs numgen random mod 100 lt P counter drop
func (l *Lab) Lossy(node string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("loss of %s: percent=%d: must be 0 to 100", node, percent)
	}
	c, rs, done, err := l.floodRulesOf(node)
	if err != nil {
		return fmt.Errorf("loss of %s: %w", node, err)
	}
	defer done()
	if percent == 0 {
		err = delFault(c, rs, lossyComment(node))
	} else if _, ok := rs[lossyComment(node)]; !ok {
		err = l.addFault(c, node, lossyComment(node), func(t *nftables.Table) ([]expr.Any, error) {
			m, err := l.toClusterMAC(c, t)
			return append(m,
				&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
				&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(percent))},
			), err
		})
	}
	if err != nil {
		return fmt.Errorf("loss of %s: %w", node, err)
	}
	return nil
}
