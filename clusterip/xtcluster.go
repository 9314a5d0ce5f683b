package clusterip

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math/bits"
	"os/exec"
	"strconv"
	"strings"
)

// xtMaxBuckets is XT_CLUSTER_NODES_MAX: the node mask is 32 bits.
const xtMaxBuckets = 32

// xtBackend is BackendXTCluster: the iptables cluster match, built with the
// iptables tools alone (iptables-restore, iptables-save, arptables, legacy
// or nft-backed, whichever the system's alternatives name), so a node
// needs no nftables of its own: no nftables object of the VIP exists.
// IPv4 only, multicast cluster MAC only (Validate). Per VIP, with
// LS-xxxxxxxx its chain (xtChain):
//
//	mangle (PREROUTING runs after conntrack, at -150 like the nftables chain):
//	-A PREROUTING -i LINK -d VIP/32 -j LS-x
//	-A LS-x -m comment --comment "loadshare/1 … backend=xtcluster"
//	   -m cluster --cluster-total-nodes 1 --cluster-local-node 1 --cluster-hash-seed S
//	-A LS-x -m conntrack --ctstate RELATED,ESTABLISHED -m cluster
//	   --cluster-total-nodes N --cluster-local-node B+1 --cluster-hash-seed S -j ACCEPT   every bucket B
//	-A LS-x -p tcp --tcp-flags FIN,SYN,RST,ACK SYN -m cluster
//	   --cluster-total-nodes N --cluster-local-node B+1 --cluster-hash-seed S -j ACCEPT   every owned B
//	-A LS-x -j DROP
//	arptables filter:
//	-A OUTPUT -j LS-x
//	-A LS-x -o LINK -s VIP -j mangle --mangle-mac-s MAC --mangle-target CONTINUE
//
// The first rule has no target: it carries the settings (the fingerprint
// the nftables backend keeps on its ingress rule) and, matching every
// packet, makes the cluster match do what the nftables backend's netdev
// rule does: xt_cluster sets pkttype host on a frame to a unicast address
// that arrived as PACKET_MULTICAST (net/netfilter/xt_cluster.c), which TCP
// would otherwise drop. It cannot do that for PACKET_OTHERHOST, which IP
// drops before PREROUTING: hence multicast MAC only.
//
// The established rules are one per bucket, not one for all, so that each
// bucket's traffic is counted (Counters); a packet runs through at most N
// of them (N ≤ 32, one jhash each). The bucket rules are one per owned
// bucket, not one with the whole mask: iptables 1.8.9's libxt_cluster
// limits --cluster-local-nodemask to 1..32 (a parser bug), so a mask of
// buckets above 4 cannot be given. Only SYNs reach them.
//
// No early drop: the raw table runs before conntrack, where the cluster
// match never matches (it hashes the conntrack entry), and xt_bpf takes at
// most 64 classic BPF instructions (XT_BPF_MAX_NUM_INSTR), fewer than the
// ~80 a byte-swapped jhash_1word and its scaling need. Frames of other
// nodes' buckets go through conntrack and are dropped by the chain.
//
// The cluster match hashes jhash_1word(saddr, S) on the address as stored
// (network order read as a host word), scaled as (h*N)>>32: source address
// only, so every connection of one client lands on one node. IPv6 would
// hash only the first 32 bits of the source (jhash2 over
// NF_CT_TUPLE_L3SIZE/4 = 1 word): a whole /32 in one bucket.
//
// Every change of the mangle chain is one iptables-restore --noflush (one
// transaction per table), its rules' counters carried over. The ARP rule
// changes with single arptables commands (arptables-restore flushes the
// table even with --noflush): a new rule is added before the old one goes,
// so ARP answers never lack the cluster MAC. The tools run on a thread
// inside the plane's namespace (inNS), so the child inherits it.
type xtBackend struct{ p *Plane }

const xtTable = "mangle"

func (b *xtBackend) kind() Backend { return BackendXTCluster }

// xtChain is the VIP's chain name (iptables and arptables): iptables allows
// 28 characters, so it is a hash of the address.
func xtChain(v VIP) string {
	h := fnv.New32a()
	h.Write(v.Addr.AsSlice())
	return fmt.Sprintf("LS-%08x", h.Sum32())
}

func (v VIP) hostPrefix() string {
	return fmt.Sprintf("%s/%d", v.Addr, v.Addr.BitLen())
}

// xtExec runs one iptables tool in the plane's namespace with stdin (if
// any) and returns its standard output; errors carry argv and stderr.
// Equivalent to: ip netns exec NS NAME ARGS… < stdin
func (p *Plane) xtExec(stdin, name string, args ...string) (string, error) {
	var out []byte
	err := p.inNS(func() error {
		c := exec.Command(name, args...)
		if stdin != "" {
			c.Stdin = strings.NewReader(stdin)
		}
		var stderr bytes.Buffer
		c.Stderr = &stderr
		var err error
		if out, err = c.Output(); err != nil {
			return fmt.Errorf("running [%s %s]: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
	return string(out), err
}

// xtLine is one rule of an iptables-save -c (or arptables-save -c) dump.
type xtLine struct {
	chain       string
	args        []string // after "-A CHAIN", quotes removed
	pkts, bytes uint64
	text        string // after "-A CHAIN", as printed
}

// opt returns the value after flag in l's arguments ("" when absent).
func (l xtLine) opt(flag string) string {
	for i := 0; i+1 < len(l.args); i++ {
		if l.args[i] == flag {
			return l.args[i+1]
		}
	}
	return ""
}

func (l xtLine) has(flag string) bool {
	for _, a := range l.args {
		if a == flag {
			return true
		}
	}
	return false
}

// xtSaved is one table of a save dump: its chains and rules in order.
type xtSaved struct {
	chains map[string]bool
	rules  []xtLine
}

// parseSave reads the *table section of iptables-save -c or
// arptables-save -c output.
func parseSave(out, table string) (xtSaved, error) {
	s := xtSaved{chains: map[string]bool{}}
	in := false
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "*"):
			in = l[1:] == table
		case !in:
		case l == "COMMIT":
			in = false
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			s.chains[name] = true
		default:
			var r xtLine
			if strings.HasPrefix(l, "[") {
				ctr, rest, ok := strings.Cut(l[1:], "]")
				p, b, ok2 := strings.Cut(ctr, ":")
				var err1, err2 error
				r.pkts, err1 = strconv.ParseUint(p, 10, 64)
				r.bytes, err2 = strconv.ParseUint(b, 10, 64)
				if !ok || !ok2 || err1 != nil || err2 != nil {
					return s, fmt.Errorf("parse %q: bad counters", l)
				}
				l = strings.TrimSpace(rest)
			}
			f, err := splitQuoted(l)
			if err != nil || len(f) < 2 || f[0] != "-A" {
				return s, fmt.Errorf("parse %q: not a rule", l)
			}
			r.chain, r.args = f[1], f[2:]
			r.text = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(l, "-A"), " "+r.chain))
			s.rules = append(s.rules, r)
		}
	}
	return s, nil
}

// splitQuoted splits a save line into words; "…" is one word (iptables
// quotes comments with spaces, escaping " and \ inside).
func splitQuoted(s string) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, w.String())
	}
	return out, nil
}

// xtRole is what a rule of a VIP's mangle chain is for.
type xtRole int

const (
	xtOther xtRole = iota
	xtMark         // the settings comment and pkttype fix
	xtEst          // established/related of one bucket
	xtSyn          // SYN of one owned bucket
	xtDrop         // the final drop
)

// xtRule is one rule of a VIP's mangle chain as read or as built.
type xtRule struct {
	role        xtRole
	bucket      Bucket // xtEst, xtSyn
	total, seed uint64 // of the cluster match (0: none)
	comment     string // xtMark
	pkts, bytes uint64
}

// key identifies a rule across a rewrite, to carry its counters.
func (r xtRule) key() [2]int { return [2]int{int(r.role), int(r.bucket)} }

// classify reads a saved rule of the chain.
func classify(l xtLine) (xtRule, error) {
	r := xtRule{pkts: l.pkts, bytes: l.bytes, comment: l.opt("--comment")}
	num := func(flag string) (uint64, error) {
		s := l.opt(flag)
		if s == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(s, 0, 32)
		if err != nil {
			return 0, fmt.Errorf("parse %q: %s: %w", l.text, flag, err)
		}
		return n, nil
	}
	var err error
	if r.total, err = num("--cluster-total-nodes"); err != nil {
		return r, err
	}
	if r.seed, err = num("--cluster-hash-seed"); err != nil {
		return r, err
	}
	mask, err := num("--cluster-local-nodemask")
	if err != nil {
		return r, err
	}
	if node, err := num("--cluster-local-node"); err != nil {
		return r, err
	} else if node > 0 {
		mask |= 1 << (node - 1)
	}
	single := bits.OnesCount64(mask) == 1
	if single {
		r.bucket = Bucket(bits.TrailingZeros64(mask))
	}
	target := l.opt("-j")
	switch {
	case target == "" && r.comment != "" && r.total == 1:
		r.role = xtMark
	case target == "ACCEPT" && single && l.opt("--ctstate") != "":
		r.role = xtEst
	case target == "ACCEPT" && single && l.opt("--tcp-flags") != "":
		r.role = xtSyn
	case target == "DROP" && len(l.args) == 2:
		r.role = xtDrop
	}
	return r, nil
}

// args is the rule's iptables arguments after "-A CHAIN".
func (r xtRule) args(v VIP) string {
	cluster := func(total, node int) string {
		return fmt.Sprintf("-m cluster --cluster-total-nodes %d --cluster-local-node %d --cluster-hash-seed %d", total, node, v.Seed)
	}
	switch r.role {
	case xtMark:
		return fmt.Sprintf("-m comment --comment %q %s", fingerprint(v, BackendXTCluster), cluster(1, 1))
	case xtEst:
		return "-m conntrack --ctstate RELATED,ESTABLISHED " + cluster(int(v.Buckets), int(r.bucket)+1) + " -j ACCEPT"
	case xtSyn:
		return "-p tcp --tcp-flags FIN,SYN,RST,ACK SYN " + cluster(int(v.Buckets), int(r.bucket)+1) + " -j ACCEPT"
	}
	return "-j DROP"
}

// xtWant is the chain as built for v with the buckets of mask owned.
func xtWant(v VIP, mask uint32) []xtRule {
	n, s := uint64(v.Buckets), uint64(v.Seed)
	rs := []xtRule{{role: xtMark, total: 1, seed: s, comment: fingerprint(v, BackendXTCluster)}}
	for b := range v.Buckets {
		rs = append(rs, xtRule{role: xtEst, bucket: Bucket(b), total: n, seed: s})
	}
	for m := mask; m != 0; m &= m - 1 {
		rs = append(rs, xtRule{role: xtSyn, bucket: Bucket(bits.TrailingZeros32(m)), total: n, seed: s})
	}
	return append(rs, xtRule{role: xtDrop})
}

func sameRules(a, b []xtRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.role != y.role || x.bucket != y.bucket || x.total != y.total || x.seed != y.seed || x.comment != y.comment {
			return false
		}
	}
	return true
}

// xtState is what the kernel holds of a VIP's iptables and arptables rules.
type xtState struct {
	chain    bool     // the mangle chain exists
	rules    []xtRule // its rules, in order
	jumps    []xtLine // PREROUTING rules jumping to it
	arpRead  bool     // the arptables part below was read
	arpChain bool
	arpRules []xtLine // rules of the arptables chain
	arpJumps []xtLine // OUTPUT rules jumping to it
}

// mask is the owned buckets: those with a SYN rule.
func (s xtState) mask() uint32 {
	var m uint32
	for _, r := range s.rules {
		if r.role == xtSyn && r.bucket < xtMaxBuckets {
			m |= 1 << r.bucket
		}
	}
	return m
}

func (s xtState) owned() []Bucket {
	var out []Bucket
	for m := s.mask(); m != 0; m &= m - 1 {
		out = append(out, Bucket(bits.TrailingZeros32(m)))
	}
	return out
}

// settingsOK: the chain records v's settings.
func (s xtState) settingsOK(v VIP) bool {
	return len(s.rules) > 0 && s.rules[0].role == xtMark && s.rules[0].comment == fingerprint(v, BackendXTCluster)
}

// mangleOK: the chain is exactly as built for v and its owned buckets,
// with one jump to it from PREROUTING, for v's link and address.
func (s xtState) mangleOK(v VIP) bool {
	return s.chain && s.settingsOK(v) && sameRules(s.rules, xtWant(v, s.mask())) && len(s.jumps) == 1 && s.jumpOK(v, s.jumps[0])
}

func (s xtState) jumpOK(v VIP, j xtLine) bool {
	return j.opt("-i") == v.Link && j.opt("-d") == v.hostPrefix() && len(j.args) == 6
}

// arpOK: one rule answering for v with its cluster MAC, one jump to it.
func (s xtState) arpOK(v VIP) bool {
	return s.arpChain && s.arpRuleOK(v) && len(s.arpJumps) == 1
}

// arpRuleOK: the arptables chain's one rule is v's, as built.
func (s xtState) arpRuleOK(v VIP) bool {
	if len(s.arpRules) != 1 {
		return false
	}
	r := s.arpRules[0]
	src := r.opt("-s")
	return r.opt("-o") == v.Link && (src == v.Addr.String() || src == v.hostPrefix()) &&
		strings.EqualFold(r.opt("--mangle-mac-s"), v.ClusterMAC().String()) && r.opt("--mangle-target") == "CONTINUE"
}

// read dumps the mangle table (and, with arp, the arptables filter table)
// and picks out v's chain, its rules and the jumps to it.
// Equivalent to: iptables-save -c -t mangle; arptables-save -c
func (b *xtBackend) read(v VIP, arp bool) (xtState, error) {
	var s xtState
	chain := xtChain(v)
	out, err := b.p.xtExec("", "iptables-save", "-c", "-t", xtTable)
	if err != nil {
		return s, err
	}
	sv, err := parseSave(out, xtTable)
	if err != nil {
		return s, fmt.Errorf("iptables-save: %w", err)
	}
	s.chain = sv.chains[chain]
	for _, l := range sv.rules {
		switch {
		case l.chain == chain:
			r, err := classify(l)
			if err != nil {
				return s, err
			}
			s.rules = append(s.rules, r)
		case l.chain == "PREROUTING" && l.opt("-j") == chain:
			s.jumps = append(s.jumps, l)
		}
	}
	if !arp {
		return s, nil
	}
	out, err = b.p.xtExec("", "arptables-save", "-c")
	if err != nil {
		return s, err
	}
	sv, err = parseSave(out, "filter")
	if err != nil {
		return s, fmt.Errorf("arptables-save: %w", err)
	}
	s.arpRead, s.arpChain = true, sv.chains[chain]
	for _, l := range sv.rules {
		switch {
		case l.chain == chain:
			s.arpRules = append(s.arpRules, l)
		case l.chain == "OUTPUT" && l.opt("-j") == chain:
			s.arpJumps = append(s.arpJumps, l)
		}
	}
	return s, nil
}

func (b *xtBackend) present(v VIP) (bool, error) {
	s, err := b.read(v, false)
	return s.chain, err
}

// ensure builds or repairs v's chain, jump and ARP rule, keeping the
// owned buckets in range (and their counters, when v's settings are the
// chain's).
func (b *xtBackend) ensure(v VIP) error {
	s, err := b.read(v, true)
	if err != nil {
		return err
	}
	if !s.mangleOK(v) {
		mask := s.mask()
		if v.Buckets < 32 {
			mask &= uint32(1)<<v.Buckets - 1
		}
		if err := b.write(v, s, mask, true); err != nil {
			return err
		}
	}
	if !s.arpOK(v) {
		return b.ensureARP(v, s)
	}
	return nil
}

// write rewrites v's chain for mask in one iptables-restore --noflush, the
// counters of rules that stay carried over when the chain has v's
// settings; with fixJump it also makes PREROUTING's jump exactly one, as
// built. Equivalent to:
// printf '*mangle\n:LS-… - [0:0]\n-F LS-…\n[p:b] -A LS-… …\nCOMMIT\n' | iptables-restore --noflush --counters
func (b *xtBackend) write(v VIP, s xtState, mask uint32, fixJump bool) error {
	chain := xtChain(v)
	carry := map[[2]int]xtRule{}
	if s.settingsOK(v) {
		for _, r := range s.rules {
			carry[r.key()] = r
		}
	}
	var in strings.Builder
	fmt.Fprintf(&in, "*%s\n:%s - [0:0]\n-F %s\n", xtTable, chain, chain)
	for _, r := range xtWant(v, mask) {
		old := carry[r.key()]
		fmt.Fprintf(&in, "[%d:%d] -A %s %s\n", old.pkts, old.bytes, chain, r.args(v))
	}
	if fixJump && !(len(s.jumps) == 1 && s.jumpOK(v, s.jumps[0])) {
		for _, j := range s.jumps {
			fmt.Fprintf(&in, "-D PREROUTING %s\n", j.text)
		}
		fmt.Fprintf(&in, "-A PREROUTING -i %s -d %s -j %s\n", v.Link, v.hostPrefix(), chain)
	}
	in.WriteString("COMMIT\n")
	_, err := b.p.xtExec(in.String(), "iptables-restore", "--noflush", "--counters", "--wait")
	return err
}

// ensureARP makes the arptables chain answer for v with the cluster MAC:
// the new rule is appended before the old ones are deleted, so no ARP
// answer leaves without it. Equivalent to:
// arptables -N LS-…; arptables -A LS-… -o LINK -s VIP -j mangle --mangle-mac-s MAC --mangle-target CONTINUE;
// arptables -D LS-… 1; arptables -A OUTPUT -j LS-…
func (b *xtBackend) ensureARP(v VIP, s xtState) error {
	chain := xtChain(v)
	arp := func(args ...string) error {
		_, err := b.p.xtExec("", "arptables", args...)
		return err
	}
	if !s.arpChain {
		if err := arp("-N", chain); err != nil {
			return err
		}
	}
	if !s.arpRuleOK(v) {
		if err := arp("-A", chain, "-o", v.Link, "-s", v.Addr.String(), "-j", "mangle",
			"--mangle-mac-s", v.ClusterMAC().String(), "--mangle-target", "CONTINUE"); err != nil {
			return err
		}
		for range s.arpRules {
			if err := arp("-D", chain, "1"); err != nil {
				return err
			}
		}
	}
	for i := 1; i < len(s.arpJumps); i++ {
		if err := arp("-D", "OUTPUT", "-j", chain); err != nil {
			return err
		}
	}
	if len(s.arpJumps) == 0 {
		return arp("-A", "OUTPUT", "-j", chain)
	}
	return nil
}

// remove deletes v's chains, jumps and ARP rule; absent ones are fine.
// Equivalent to: printf '*mangle\n-D PREROUTING …\n-F LS-…\n-X LS-…\nCOMMIT\n' |
// iptables-restore --noflush; arptables -D OUTPUT -j LS-…; arptables -F LS-…; arptables -X LS-…
func (b *xtBackend) remove(v VIP) error {
	s, err := b.read(v, true)
	if err != nil {
		return err
	}
	chain := xtChain(v)
	if s.chain || len(s.jumps) > 0 {
		var in strings.Builder
		fmt.Fprintf(&in, "*%s\n", xtTable)
		for _, j := range s.jumps {
			fmt.Fprintf(&in, "-D PREROUTING %s\n", j.text)
		}
		if s.chain {
			fmt.Fprintf(&in, "-F %s\n-X %s\n", chain, chain)
		}
		in.WriteString("COMMIT\n")
		if _, err := b.p.xtExec(in.String(), "iptables-restore", "--noflush", "--wait"); err != nil {
			return err
		}
	}
	for range s.arpJumps {
		if _, err := b.p.xtExec("", "arptables", "-D", "OUTPUT", "-j", chain); err != nil {
			return err
		}
	}
	if s.arpChain {
		if _, err := b.p.xtExec("", "arptables", "-F", chain); err != nil {
			return err
		}
		if _, err := b.p.xtExec("", "arptables", "-X", chain); err != nil {
			return err
		}
	}
	return nil
}

func maskOf(bs []Bucket) uint32 {
	var m uint32
	for _, b := range bs {
		m |= 1 << b
	}
	return m
}

// setOwned rewrites the chain in one transaction (write), counters kept.
func (b *xtBackend) setOwned(v VIP, owned, add, del []Bucket) error {
	s, err := b.read(v, false)
	if err != nil {
		return err
	}
	m := (s.mask() | maskOf(add)) &^ maskOf(del)
	if m == s.mask() && s.mangleOK(v) {
		return nil
	}
	return b.write(v, s, m, false)
}

func (b *xtBackend) owned(v VIP) ([]Bucket, error) {
	s, err := b.read(v, false)
	return s.owned(), err
}

// counters reads the per-bucket rule counters: the established rule of
// each bucket and the SYN rule of each owned one.
func (b *xtBackend) counters(v VIP) (map[Bucket]Counter, error) {
	s, err := b.read(v, false)
	if err != nil {
		return nil, err
	}
	out := make(map[Bucket]Counter, v.Buckets)
	for bk := range v.Buckets {
		out[Bucket(bk)] = Counter{}
	}
	for _, r := range s.rules {
		if r.role != xtEst && r.role != xtSyn {
			continue
		}
		c := out[r.bucket]
		c.Packets += r.pkts
		c.Bytes += r.bytes
		if r.role == xtSyn {
			c.NewConns += r.pkts
		}
		out[r.bucket] = c
	}
	return out, nil
}

// dropped is the final drop rule's packet counter.
func (b *xtBackend) dropped(v VIP) (Drops, error) {
	var d Drops
	s, err := b.read(v, false)
	for _, r := range s.rules {
		if r.role == xtDrop {
			d.Bucket += r.pkts
			d.BucketCounted = true
		}
	}
	return d, err
}

// seen is State's reading of v's rules (never cached: they live outside
// nftables' generation when iptables is legacy).
func (b *xtBackend) seen(v VIP) (nftSeen, error) {
	s, err := b.read(v, true)
	out := nftSeen{Backend: BackendXTCluster}
	if err != nil {
		return out, err
	}
	out.Anything = s.chain || s.arpChain
	switch {
	case !s.chain:
		out.Lack |= LackBucketRules
	case !s.settingsOK(v):
		out.Lack |= LackSettings
	case !s.mangleOK(v):
		out.Lack |= LackShape
	}
	if !s.arpOK(v) {
		out.Lack |= LackARP
	}
	out.Owned = s.owned()
	return out, nil
}

// xtFingerprints returns the settings comments of the VIPs whose chains
// are in this namespace's mangle table; none when iptables is not
// installed. Equivalent to: iptables-save -t mangle | grep 'loadshare/1'
func (p *Plane) xtFingerprints() ([]string, error) {
	if _, err := exec.LookPath("iptables-save"); err != nil {
		return nil, nil
	}
	out, err := p.xtExec("", "iptables-save", "-t", xtTable)
	if err != nil {
		return nil, err
	}
	sv, err := parseSave(out, xtTable)
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	var fps []string
	seen := map[string]bool{}
	for _, l := range sv.rules {
		if !strings.HasPrefix(l.chain, "LS-") || seen[l.chain] {
			continue
		}
		seen[l.chain] = true
		if c := l.opt("--comment"); strings.HasPrefix(c, "loadshare/1 ") {
			if fv, be, err := parseFingerprint(c); err == nil && be == BackendXTCluster && xtChain(fv) == l.chain {
				fps = append(fps, c)
			}
		}
	}
	return fps, nil
}

// xtRecorded reports whether v's chain is in this namespace (for a plane
// that takes the backend v's objects record); false without iptables.
func (p *Plane) xtRecorded(v VIP) bool {
	if _, err := exec.LookPath("iptables-save"); err != nil {
		return false
	}
	ok, err := (&xtBackend{p: p}).present(v)
	return err == nil && ok
}

// errNoIPTables is returned when the xtcluster backend lacks its tools.
var errNoIPTables = errors.New("backend xtcluster needs iptables-restore, iptables-save and arptables")

// xtTools reports the first iptables tool the backend needs that is missing.
func xtTools() error {
	for _, t := range []string{"iptables-restore", "iptables-save", "arptables", "arptables-save"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%w: %w", errNoIPTables, err)
		}
	}
	return nil
}
