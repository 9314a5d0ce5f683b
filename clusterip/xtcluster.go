package clusterip

import (
	"fmt"
	"hash/fnv"
	"math/bits"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// xtMaxBuckets is XT_CLUSTER_NODES_MAX: the node mask is 32 bits.
const xtMaxBuckets = 32

// xtBackend is BackendXTCluster: the iptables cluster match in the mangle
// table's PREROUTING (after conntrack, like the nftables chain):
//
//	-A PREROUTING -i LINK -d VIP -j LS-xxxxxxxx
//	-A LS-xxxxxxxx -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
//	-A LS-xxxxxxxx -p tcp --tcp-flags FIN,SYN,RST,ACK SYN -m cluster
//	   --cluster-total-nodes N --cluster-local-node B+1 --cluster-hash-seed S -j ACCEPT
//	-A LS-xxxxxxxx -j DROP
//
// with one cluster rule per owned bucket b (--cluster-local-node b+1).
// A change of the owned buckets rewrites the chain with one
// iptables-restore --noflush, which commits as one transaction.
//
// The cluster match hashes jhash_1word(saddr, S) on the address as stored
// (network order read as a host word), scaled as (h*N)>>32: source address
// only, so every connection of one client lands on one node. IPv4 only:
// for IPv6 the kernel hashes just the first 32 bits of the source (jhash2
// over NF_CT_TUPLE_L3SIZE/4 = 1 word), so a whole /32 shares one bucket.
//
// go-iptables execs iptables; calls run on a thread inside the plane's
// namespace (inNS) so the child inherits it.
type xtBackend struct{ p *Plane }

const xtTable = "mangle"

func (b *xtBackend) kind() Backend { return BackendXTCluster }

// chain is the VIP's chain name: iptables allows 28 characters, too few
// for an IPv6 address, so it is a hash of the address.
func xtChain(v VIP) string {
	h := fnv.New32a()
	h.Write(v.Addr.AsSlice())
	return fmt.Sprintf("LS-%08x", h.Sum32())
}

func (b *xtBackend) do(v VIP, f func(ipt *iptables.IPTables) error) error {
	return b.p.inNS(func() error {
		proto := iptables.ProtocolIPv4
		if v.Addr.Is6() {
			proto = iptables.ProtocolIPv6
		}
		ipt, err := iptables.New(iptables.IPFamily(proto))
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		return f(ipt)
	})
}

func (v VIP) hostPrefix() string {
	return fmt.Sprintf("%s/%d", v.Addr, v.Addr.BitLen())
}

func xtJump(v VIP) []string {
	return []string{"-i", v.Link, "-d", v.hostPrefix(), "-j", xtChain(v)}
}

// xtClusterRule accepts SYNs of bucket b. One rule per owned bucket, not
// one rule with the whole mask: iptables 1.8.9's libxt_cluster limits
// --cluster-local-nodemask to 1..32 (a parser bug), so a mask of
// buckets above 4 cannot be given. Only SYNs reach these rules.
func xtClusterRule(v VIP, b Bucket) []string {
	return []string{"-p", "tcp", "--tcp-flags", "FIN,SYN,RST,ACK", "SYN",
		"-m", "cluster", "--cluster-total-nodes", strconv.Itoa(int(v.Buckets)),
		"--cluster-local-node", strconv.Itoa(int(b) + 1),
		"--cluster-hash-seed", strconv.FormatUint(uint64(v.Seed), 10), "-j", "ACCEPT"}
}

// xtRules is the chain's rules for mask.
func xtRules(v VIP, mask uint32) [][]string {
	rs := [][]string{{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}}
	for m := mask; m != 0; m &= m - 1 {
		rs = append(rs, xtClusterRule(v, Bucket(bits.TrailingZeros32(m))))
	}
	if v.Addr.Is6() {
		for _, typ := range []string{"135", "136"} {
			rs = append(rs, []string{"-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", typ, "-j", "ACCEPT"})
		}
	}
	return append(rs, []string{"-j", "DROP"})
}

// xtRead returns the chain's rule lines (without the -N line) and the
// mask, total and seed of its cluster rule (0s when absent).
func xtRead(ipt *iptables.IPTables, v VIP) (lines []string, mask uint32, total, seed uint64, err error) {
	all, err := ipt.List(xtTable, xtChain(v))
	if err != nil {
		return nil, 0, 0, 0, err
	}
	for _, l := range all {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		lines = append(lines, l)
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			n, perr := strconv.ParseUint(f[i+1], 0, 32)
			switch f[i] {
			case "--cluster-local-nodemask":
				mask, err = mask|uint32(n), perr
			case "--cluster-local-node":
				mask, err = mask|1<<(n-1), perr
			case "--cluster-total-nodes":
				total, err = n, perr
			case "--cluster-hash-seed":
				seed, err = n, perr
			}
			if err != nil {
				return nil, 0, 0, 0, fmt.Errorf("parse %q: %w", l, err)
			}
		}
	}
	return lines, mask, total, seed, nil
}

func (b *xtBackend) present(v VIP) (ok bool, err error) {
	err = b.do(v, func(ipt *iptables.IPTables) error {
		ok, err = ipt.ChainExists(xtTable, xtChain(v))
		return err
	})
	return ok, err
}

// ensure creates the chain and the jump, or rebuilds the chain (keeping
// the owned buckets in range) when its rules are not the expected ones.
func (b *xtBackend) ensure(v VIP) error {
	return b.do(v, func(ipt *iptables.IPTables) error {
		chain := xtChain(v)
		exists, err := ipt.ChainExists(xtTable, chain)
		if err != nil {
			return err
		}
		var mask uint32
		if exists {
			lines, m, total, seed, err := xtRead(ipt, v)
			if err != nil {
				return err
			}
			mask = m & (uint32(1)<<v.Buckets - 1)
			if v.Buckets == 32 {
				mask = m
			}
			ok := m == mask && len(lines) == len(xtRules(v, m)) && (m == 0 || (total == uint64(v.Buckets) && seed == uint64(v.Seed)))
			if !ok {
				if err := ipt.ClearChain(xtTable, chain); err != nil {
					return err
				}
				exists = false
			}
		} else if err := ipt.NewChain(xtTable, chain); err != nil {
			return err
		}
		if !exists {
			for _, r := range xtRules(v, mask) {
				if err := ipt.Append(xtTable, chain, r...); err != nil {
					return err
				}
			}
		}
		return ipt.AppendUnique(xtTable, "PREROUTING", xtJump(v)...)
	})
}

func (b *xtBackend) remove(v VIP) error {
	return b.do(v, func(ipt *iptables.IPTables) error {
		if err := ipt.DeleteIfExists(xtTable, "PREROUTING", xtJump(v)...); err != nil {
			return err
		}
		ok, err := ipt.ChainExists(xtTable, xtChain(v))
		if err != nil || !ok {
			return err
		}
		return ipt.ClearAndDeleteChain(xtTable, xtChain(v))
	})
}

func maskOf(bs []Bucket) uint32 {
	var m uint32
	for _, b := range bs {
		m |= 1 << b
	}
	return m
}

// setOwned rewrites the chain in one transaction: iptables-restore
// --noflush with "-F chain" and the new rules between *mangle and COMMIT
// (go-iptables has no restore). Equivalent to:
// printf '*mangle\n-F LS-…\n-A LS-…\nCOMMIT\n' | iptables-restore --noflush
func (b *xtBackend) setOwned(v VIP, owned, add, del []Bucket) error {
	old := maskOf(owned)
	m := (old | maskOf(add)) &^ maskOf(del)
	if m == old {
		return nil
	}
	var in strings.Builder
	chain := xtChain(v)
	fmt.Fprintf(&in, "*%s\n-F %s\n", xtTable, chain)
	for _, r := range xtRules(v, m) {
		fmt.Fprintf(&in, "-A %s %s\n", chain, strings.Join(r, " "))
	}
	in.WriteString("COMMIT\n")
	cmd := "iptables-restore"
	if v.Addr.Is6() {
		cmd = "ip6tables-restore"
	}
	return b.p.inNS(func() error {
		c := exec.Command(cmd, "--noflush", "--wait")
		c.Stdin = strings.NewReader(in.String())
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("running [%s --noflush --wait]: %w: %s", cmd, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
}

func (b *xtBackend) owned(v VIP) (out []Bucket, err error) {
	err = b.do(v, func(ipt *iptables.IPTables) error {
		_, m, _, _, err := xtRead(ipt, v)
		for m != 0 {
			i := bits.TrailingZeros32(m)
			out = append(out, Bucket(i))
			m &^= 1 << i
		}
		return err
	})
	slices.Sort(out)
	return out, err
}

func (b *xtBackend) counters(v VIP) (map[Bucket]Counter, error) {
	return nil, fmt.Errorf("per-bucket counters: %w", ErrUnsupported)
}
