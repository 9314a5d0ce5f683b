package clusterip

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Bucket is one hash bucket of a VIP, 0 ≤ Bucket < VIP.Buckets.
type Bucket uint16

// HashMode says which packet fields pick a connection's bucket.
type HashMode int

const (
	// HashSourcePort hashes source address and source port (nft
	// `jhash ip saddr . tcp sport`): clients behind one NAT address spread.
	HashSourcePort HashMode = iota
	// HashSourceIP hashes the source address only (nft `jhash ip saddr`),
	// which for IPv4 is exactly what the iptables cluster match computes:
	// all connections of one client land on one node. The only mode of
	// BackendXTCluster.
	HashSourceIP
)

var hashModeNames = map[HashMode]string{
	HashSourcePort: "sourceip-sourceport",
	HashSourceIP:   "sourceip",
}

// String returns the mode's name as ParseHashMode reads it.
func (m HashMode) String() string {
	if s, ok := hashModeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("HashMode(%d)", int(m))
}

// ParseHashMode reads "sourceip-sourceport" (also "" and "sourceport") or "sourceip".
func ParseHashMode(s string) (HashMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "sourceip-sourceport", "sourceport":
		return HashSourcePort, nil
	case "sourceip":
		return HashSourceIP, nil
	}
	return 0, &FieldError{Field: "hash", Value: s, Reason: "unknown hash mode (want sourceip-sourceport or sourceip)"}
}

// MACMode says how every node gets every frame sent to the VIP.
type MACMode int

const (
	// MACMulticast answers ARP/ND with a multicast MAC derived from the
	// VIP (01:00:5e + low 23 bits, 33:33 + low 32 bits); the node joins it.
	// The switch must flood it (see the package README).
	MACMulticast MACMode = iota
	// MACUnicast answers with a locally administered unicast MAC no NIC
	// uses (02:bf + low 32 bits, Microsoft NLB's "unicast mode"): switches
	// never learn it, so they flood it as unknown unicast.
	MACUnicast
)

var macModeNames = map[MACMode]string{MACMulticast: "multicast", MACUnicast: "unicast"}

// String returns "multicast" or "unicast".
func (m MACMode) String() string {
	if s, ok := macModeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("MACMode(%d)", int(m))
}

// ParseMACMode reads "multicast" (also "") or "unicast".
func ParseMACMode(s string) (MACMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "multicast":
		return MACMulticast, nil
	case "unicast":
		return MACUnicast, nil
	}
	return 0, &FieldError{Field: "mac_mode", Value: s, Reason: "unknown MAC mode (want multicast or unicast)"}
}

// MaxBuckets is the largest VIP.Buckets the nftables backend accepts.
// Per-packet cost does not depend on it (one hash, set lookups); the bound
// only keeps the per-bucket counter sets small.
const MaxBuckets = 4096

// VIP is one shared address, configured identically on every node.
type VIP struct {
	Addr    netip.Addr       // IPv4 or IPv6, no zone
	Prefix  int              // prefix length of the address on Link; 0 means host (/32, /128)
	Link    string           // interface that receives the VIP's frames
	Buckets uint16           // hash modulus, 1..MaxBuckets (xtcluster: 1..32): the buckets parameter of every bucket primitive
	Seed    uint32           // jhash seed, non-zero; must be the same on every node
	Hash    HashMode         // fields hashed; same on every node
	MACMode MACMode          // how every node receives every frame
	MAC     net.HardwareAddr // cluster MAC; nil derives it from Addr and MACMode
}

// String returns the address, the form used in errors.
func (v VIP) String() string { return v.Addr.String() }

// ClusterMAC returns the MAC the nodes answer ARP/ND with: v.MAC when set,
// else the one derived from v.Addr and v.MACMode.
func (v VIP) ClusterMAC() net.HardwareAddr {
	if len(v.MAC) != 0 {
		return v.MAC
	}
	return DeriveMAC(v.Addr, v.MACMode)
}

// DeriveMAC returns the cluster MAC for addr: multicast 01:00:5e + the low 23
// bits of an IPv4 address (RFC 1112 mapping), 33:33 + the low 32 bits of an
// IPv6 one (RFC 2464 mapping); unicast 02:bf + the low 32 bits.
func DeriveMAC(addr netip.Addr, mode MACMode) net.HardwareAddr {
	b := addr.As16()
	low := b[12:16]
	if mode == MACUnicast {
		return net.HardwareAddr{0x02, 0xbf, low[0], low[1], low[2], low[3]}
	}
	if addr.Is4() || addr.Is4In6() {
		return net.HardwareAddr{0x01, 0x00, 0x5e, low[1] & 0x7f, low[2], low[3]}
	}
	return net.HardwareAddr{0x33, 0x33, low[0], low[1], low[2], low[3]}
}

// FieldError is bad input, naming the field and the value.
type FieldError struct {
	Field, Value, Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Field, e.Value, e.Reason)
}

// Validate checks v for use with backend (BackendAuto: any). It does not
// look at the kernel: a missing interface is found by Ensure.
func (v VIP) Validate(backend Backend) error {
	if !v.Addr.IsValid() {
		return &FieldError{"addr", "", "not an IP address"}
	}
	if v.Addr.Zone() != "" {
		return &FieldError{"addr", v.Addr.String(), "zoned addresses are not supported"}
	}
	if v.Addr.Is4In6() {
		return &FieldError{"addr", v.Addr.String(), "IPv4-mapped IPv6 address; give the IPv4 form"}
	}
	if v.Addr.IsUnspecified() || v.Addr.IsMulticast() || v.Addr.IsLoopback() || v.Addr.IsLinkLocalUnicast() {
		return &FieldError{"addr", v.Addr.String(), "not a unicast address usable as a VIP"}
	}
	if max := v.Addr.BitLen(); v.Prefix < 0 || v.Prefix > max {
		return &FieldError{"prefix", fmt.Sprint(v.Prefix), fmt.Sprintf("must be 0..%d", max)}
	}
	if v.Link == "" {
		return &FieldError{"link", "", "interface name missing"}
	}
	if len(v.Link) > 15 || strings.ContainsAny(v.Link, "/ \t\n") {
		return &FieldError{"link", v.Link, "not a valid interface name"}
	}
	if v.Buckets == 0 {
		return &FieldError{"buckets", "0", "must be at least 1"}
	}
	if v.Buckets > MaxBuckets {
		return &FieldError{"buckets", fmt.Sprint(v.Buckets), fmt.Sprintf("must be at most %d", MaxBuckets)}
	}
	if v.Seed == 0 {
		// google/nftables omits a zero seed and the kernel then draws a
		// random one per rule: nodes would disagree on every bucket.
		return &FieldError{"seed", "0", "must be non-zero (and the same on every node)"}
	}
	if _, ok := hashModeNames[v.Hash]; !ok {
		return &FieldError{"hash", v.Hash.String(), "unknown hash mode"}
	}
	if _, ok := macModeNames[v.MACMode]; !ok {
		return &FieldError{"mac_mode", v.MACMode.String(), "unknown MAC mode"}
	}
	if len(v.MAC) != 0 {
		switch {
		case len(v.MAC) != 6:
			return &FieldError{"mac", v.MAC.String(), "not a 6-byte Ethernet address"}
		case v.MACMode == MACMulticast && v.MAC[0]&1 == 0:
			return &FieldError{"mac", v.MAC.String(), "multicast mode needs a multicast MAC (low bit of the first byte set)"}
		case v.MACMode == MACUnicast && v.MAC[0]&1 == 1:
			return &FieldError{"mac", v.MAC.String(), "unicast mode needs a unicast MAC"}
		case v.MAC.String() == "ff:ff:ff:ff:ff:ff":
			return &FieldError{"mac", v.MAC.String(), "broadcast MAC"}
		}
	}
	if m := v.ClusterMAC(); v.MACMode == MACMulticast && kernelJoinedMAC(m) {
		from := ""
		if len(v.MAC) == 0 {
			from = " (derived from addr " + v.Addr.String() + ")"
		}
		return &FieldError{"mac", m.String(), "collides with a multicast MAC the kernel joins for its own groups" + from +
			"; leaving it would break IGMP/ND: give another mac"}
	}
	if backend == BackendXTCluster {
		if v.Buckets > xtMaxBuckets {
			return &FieldError{"buckets", fmt.Sprint(v.Buckets), fmt.Sprintf("backend xtcluster allows at most %d", xtMaxBuckets)}
		}
		if v.Addr.Is6() {
			// xt_cluster hashes jhash2(saddr, NF_CT_TUPLE_L3SIZE/4 = 1 word):
			// only the first 32 bits of an IPv6 source, so every client in
			// one /32 lands in one bucket (measured on this kernel).
			return &FieldError{"addr", v.Addr.String(), "backend xtcluster hashes only the first 32 bits of IPv6 sources; use nftables for IPv6"}
		}
		if v.Hash != HashSourceIP {
			return &FieldError{"hash", v.Hash.String(), "backend xtcluster hashes the source address only (hash=sourceip)"}
		}
		if v.MACMode != MACMulticast {
			// Frames to a foreign unicast MAC are PACKET_OTHERHOST, which
			// IP drops before PREROUTING: only nftables' netdev hook can
			// turn them into PACKET_HOST.
			return &FieldError{"mac_mode", v.MACMode.String(), "backend xtcluster needs mac_mode=multicast"}
		}
	}
	return nil
}

// kernelJoinedMAC reports whether m is a group MAC hosts join by
// themselves: all-hosts/all-routers/IGMPv3/mDNS/LLMNR (224.0.0.1, .2, .22,
// .251, .252), IPv6 all-nodes/all-routers/MLDv2/mDNS/DHCP and any
// solicited-node MAC (33:33:ff:xx:xx:xx). The cluster MAC is joined and
// left through the same per-link list, so leaving one of these would drop
// the kernel's own membership.
func kernelJoinedMAC(m net.HardwareAddr) bool {
	if len(m) != 6 {
		return false
	}
	switch {
	case m[0] == 0x01 && m[1] == 0x00 && m[2] == 0x5e && m[3] == 0 && m[4] == 0:
		switch m[5] {
		case 0x01, 0x02, 0x16, 0xfb, 0xfc:
			return true
		}
	case m[0] == 0x33 && m[1] == 0x33 && m[2] == 0xff:
		return true
	case m[0] == 0x33 && m[1] == 0x33 && m[2] == 0 && m[3] == 0 && m[4] == 0:
		switch m[5] {
		case 0x01, 0x02, 0x16, 0xfb:
			return true
		}
	case m[0] == 0x33 && m[1] == 0x33 && m[2] == 0 && m[3] == 1 && m[4] == 0:
		return m[5] == 0x02 || m[5] == 0x03 // DHCPv6 agents and servers
	}
	return false
}

// checkBuckets reports the first bucket out of range for v.
func (v VIP) checkBuckets(bs []Bucket) error {
	for _, b := range bs {
		if uint16(b) >= v.Buckets {
			return &FieldError{"bucket", fmt.Sprint(b), fmt.Sprintf("out of range 0..%d", v.Buckets-1)}
		}
	}
	return nil
}

// prefixLen is the prefix length to put on the link.
func (v VIP) prefixLen() int {
	if v.Prefix == 0 {
		return v.Addr.BitLen()
	}
	return v.Prefix
}

// name is the VIP's kernel object name: "loadshare-" + the address with
// '.' and ':' turned into '_' (nft and iptables both accept it).
func (v VIP) name() string {
	return tablePrefix + strings.NewReplacer(".", "_", ":", "_").Replace(v.Addr.String())
}

const tablePrefix = "loadshare-"
