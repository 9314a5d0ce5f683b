package clusterip

import (
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"math"
	"net/netip"
	"strings"
	"testing"
)

// assign owns buckets on the lab's servers: owners[i] are server i's.
func (l *lab) assign(t *testing.T, v VIP, owners [][]Bucket) {
	t.Helper()
	for i, bs := range owners {
		if err := l.planes[i].Own(v, bs...); err != nil {
			t.Fatalf("%s: Own(%v): %v", l.names[i], bs, err)
		}
	}
	t.Cleanup(func() {
		for i, p := range l.planes {
			if err := p.Remove(v); err != nil {
				t.Errorf("%s: Remove: %v", l.names[i], err)
			}
		}
	})
}

// checkShare makes n connections from consecutive source ports and checks
// that each is answered by the server owning its predicted bucket, and
// that each server's share matches its owned buckets' share.
func (l *lab) checkShare(t *testing.T, v VIP, src netip.Addr, owners [][]Bucket, n int) {
	t.Helper()
	var srcs []netip.AddrPort
	for i := range n {
		srcs = append(srcs, netip.AddrPortFrom(src, uint16(20000+i)))
	}
	l.checkShareFrom(t, v, srcs, n, owners)
}

// checkShareFrom connects from each of srcs; trials is the number of
// independent hash inputs among them (distinct addresses when the hash is
// on the source address only).
func (l *lab) checkShareFrom(t *testing.T, v VIP, srcs []netip.AddrPort, trials int, owners [][]Bucket) {
	t.Helper()
	n := len(srcs)
	owner := map[Bucket]string{}
	for i, bs := range owners {
		for _, b := range bs {
			owner[b] = l.names[i]
		}
	}
	got := map[string]int{}
	wrong := 0
	for _, s := range srcs {
		b := v.BucketOf(s)
		who, err := l.ask(s, netip.AddrPortFrom(v.Addr, labPort))
		if err != nil || who != owner[b] {
			if wrong++; wrong <= 5 {
				t.Errorf("connection from %s (bucket %d): answered by %q (%v), want %s", s, b, who, err, owner[b])
			}
			continue
		}
		got[who]++
	}
	if wrong > 0 {
		t.Fatalf("%d of %d connections not answered by their bucket's owner", wrong, n)
	}
	// Each connection is a Bernoulli trial with p = owned/N if the hash
	// spreads evenly; allow 5 standard deviations (a false alarm about
	// once in 1.7 million runs per server).
	// With trials < n, connections come in equal groups sharing one input.
	group := float64(n) / float64(trials)
	for i, bs := range owners {
		p := float64(len(bs)) / float64(v.Buckets)
		want := p * float64(n)
		tol := 5 * group * math.Sqrt(float64(trials)*p*(1-p))
		if d := math.Abs(float64(got[l.names[i]]) - want); d > tol {
			t.Errorf("%s answered %d of %d connections, want %.0f ± %.0f (owns %d of %d buckets)",
				l.names[i], got[l.names[i]], n, want, tol, len(bs), v.Buckets)
		}
	}
	t.Logf("shares over %d connections: %v", n, got)
}

func span(from, to int) []Bucket {
	var out []Bucket
	for b := from; b < to; b++ {
		out = append(out, Bucket(b))
	}
	return out
}

var shareOwners = [][]Bucket{span(0, 8), span(8, 12), span(12, 16)}

func TestShareIPv4(t *testing.T) {
	l := newLab(t, "v4", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 16, Seed: 0x5eed}
	l.assign(t, v, shareOwners)
	l.checkShare(t, v, netip.MustParseAddr(labClient), shareOwners, 1000)

	// The kernel's counters agree with the predicted buckets.
	total := uint64(0)
	for i, p := range l.planes {
		cs, err := p.Counters(v)
		if err != nil {
			t.Fatalf("Counters: %v", err)
		}
		for b, c := range cs {
			if c.NewConns > 0 && !contains(shareOwners[i], b) {
				t.Errorf("%s: bucket %d not owned but counted %d new connections", l.names[i], b, c.NewConns)
			}
			total += c.NewConns
		}
	}
	if total != 1000 {
		t.Errorf("new connections counted over all servers = %d, want 1000", total)
	}
	// Packets: each connection's SYN plus its established packets (ACK,
	// FIN…), so more packets than connections, and bytes to match.
	for i, p := range l.planes {
		cs, _ := p.Counters(v)
		var pk, by, nc uint64
		for _, c := range cs {
			pk, by, nc = pk+c.Packets, by+c.Bytes, nc+c.NewConns
		}
		if pk < 3*nc || by < 40*pk {
			t.Errorf("%s: counters %d packets, %d bytes for %d new connections; want ≥3 packets (SYN, ACK, FIN) of ≥40 bytes each", l.names[i], pk, by, nc)
		}
	}
	// Frames of buckets a server does not hold are dropped at ingress:
	// few reach the bucket chain's drop rule (without the early drop,
	// each server would drop every packet of the others' ~600 connections there).
	for i, p := range l.planes {
		if d := bucketDrops(t, p, v); d > 100 {
			t.Errorf("%s: %d packets reached the bucket chain's drop rule, want < 100 (non-owned ones dropped at ingress)", l.names[i], d)
		}
	}
	// nft -j (an independent reader) sees our table and owned set.
	js := nftJSON(t, l.servers[1])
	for _, want := range []string{`"name": "owned"`, `"elem": [8, 9, 10, 11]`, `"seed": 24301`, `01:00:5e:49:00:64`} {
		if !strings.Contains(js, want) {
			t.Errorf("nft -j list ruleset of s2 lacks %s", want)
		}
	}
}

func TestShareIPv6(t *testing.T) {
	l := newLab(t, "v6", BackendNFTables)
	v := VIP{Addr: vip6, Link: "eth0", Buckets: 16, Seed: 0x5eed}
	l.assign(t, v, shareOwners)
	l.checkShare(t, v, cli6, shareOwners, 1000)
	// The neighbour advertisements carried the cluster MAC.
	if got := l.clientNeigh(t, v.Addr); got != "33:33:00:00:01:00" {
		t.Errorf("client's neighbour entry for %s = %q, want the cluster MAC 33:33:00:00:01:00", v, got)
	}
}

// addClients puts n extra addresses on the client (hash-on-address tests
// need many sources) and returns them.
func (l *lab) addClients(t *testing.T, v6 bool, n int) []netip.Addr {
	t.Helper()
	h := l.client.Netlink(t)
	link, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for i := range n {
		var a netip.Addr
		var bitsLen int
		if v6 {
			a = netip.AddrFrom16([16]byte{0xfd, 0, 0x02, 0x01, 12: 0, 13: 1, 14: byte(i >> 8), 15: byte(i)})
			bitsLen = 128
		} else {
			a = netip.AddrFrom4([4]byte{10, 201, 4 + byte(i>>8), byte(i)})
			bitsLen = 32
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bitsLen, bitsLen)}}
		if v6 {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, addr); err != nil {
			t.Fatalf("client: add %s: %v", a, err)
		}
		out = append(out, a)
	}
	return out
}

// srcsFrom makes ports connections from each address.
func srcsFrom(addrs []netip.Addr, ports int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range addrs {
		for p := range ports {
			out = append(out, netip.AddrPortFrom(a, uint16(20000+p)))
		}
	}
	return out
}

var xtOwners = [][]Bucket{span(0, 4), span(4, 6), span(6, 8)}

// TestShareSourceIPNFT: the nftables backend's source-address mode hashes
// exactly as the cluster match (same BucketOf).
func TestShareSourceIPNFT(t *testing.T) {
	l := newLab(t, "si", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 8, Seed: 0x5eed, Hash: HashSourceIP}
	l.assign(t, v, xtOwners)
	clients := l.addClients(t, false, 400)
	l.checkShareFrom(t, v, srcsFrom(clients, 2), 400, xtOwners)
}

func contains(bs []Bucket, b Bucket) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// bucketDrops reads the packet counter of v's bucket-chain drop rule on p.
func bucketDrops(t *testing.T, p *Plane, v VIP) uint64 {
	t.Helper()
	c, err := p.nftConn()
	if err != nil {
		t.Fatal(err)
	}
	tb := &nftables.Table{Family: l3Family(v), Name: v.name()}
	rs, err := c.GetRules(tb, &nftables.Chain{Name: chainBucket, Table: tb})
	if err != nil || len(rs) == 0 {
		t.Fatalf("rules of chain %s: %d, %v", chainBucket, len(rs), err)
	}
	for _, e := range rs[len(rs)-1].Exprs {
		if ct, ok := e.(*expr.Counter); ok {
			return ct.Packets
		}
	}
	t.Fatalf("no counter on the last rule of chain %s", chainBucket)
	return 0
}
