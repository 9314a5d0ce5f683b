package clusterip

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/footprint"
)

// xtVariants runs f once per iptables variant installed: the system's
// (iptables-nft on Debian) and, when iptables-legacy is there, legacy,
// through a PATH whose iptables tools are the legacy ones (arptables stays
// the system's: Debian ships only arptables-nft).
func xtVariants(t *testing.T, f func(t *testing.T, legacy bool)) {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("iptables not installed (Debian package iptables)")
	}
	if _, err := exec.LookPath("arptables"); err != nil {
		t.Skip("arptables not installed (Debian package arptables)")
	}
	t.Run("system", func(t *testing.T) { f(t, false) })
	t.Run("legacy", func(t *testing.T) {
		dir := t.TempDir()
		for _, tool := range []string{"iptables", "iptables-save", "iptables-restore"} {
			legacy, err := exec.LookPath(strings.Replace(tool, "iptables", "iptables-legacy", 1))
			if err != nil {
				t.Skipf("%s-legacy not installed", tool)
			}
			if err := os.Symlink(legacy, filepath.Join(dir, tool)); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
		f(t, true)
	})
}

// noNFTOfVIP fails when ns holds an nftables object of a VIP (a
// loadshare- table) or, with legacy iptables, any IPv4 nftables table.
func noNFTOfVIP(t *testing.T, l *lab, legacy bool) {
	t.Helper()
	for i, ns := range l.servers {
		js := nftJSON(t, ns)
		if strings.Contains(js, tablePrefix) {
			t.Errorf("%s: nftables objects of the VIP with backend xtcluster:\n%s", l.names[i], js)
		}
		if legacy && regexp.MustCompile(`"family": ?"ip"`).MatchString(js) {
			t.Errorf("%s: legacy iptables, yet an ip nftables table:\n%s", l.names[i], js)
		}
	}
}

// TestXTCluster: the iptables cluster match with the iptables tools only
// (system and legacy iptables): each node answers the clients of its
// buckets over many client addresses, the per-bucket counters agree with
// the predicted buckets, no nftables object of the VIP exists, and a
// long-lived connection stays with its node while its bucket moves twice.
func TestXTCluster(t *testing.T) {
	xtVariants(t, func(t *testing.T, legacy bool) {
		l := newLab(t, "xt", BackendXTCluster)
		v := VIP{Addr: vip4, Link: "eth0", Buckets: 8, Seed: 0x5eed, Hash: HashSourceIP}
		l.assign(t, v, xtOwners)
		clients := l.addClients(t, false, 300)
		l.checkShareFrom(t, v, srcsFrom(clients, 2), 300, xtOwners)
		noNFTOfVIP(t, l, legacy)

		// Every connection was counted once, in its bucket, by its owner.
		var total uint64
		for i, p := range l.planes {
			cs, err := p.Counters(v)
			if err != nil {
				t.Fatalf("%s: Counters: %v", l.names[i], err)
			}
			if len(cs) != int(v.Buckets) {
				t.Errorf("%s: Counters has %d buckets, want %d", l.names[i], len(cs), v.Buckets)
			}
			for b, c := range cs {
				if c.NewConns > 0 && !contains(xtOwners[i], b) {
					t.Errorf("%s: bucket %d not owned but counted %d new connections", l.names[i], b, c.NewConns)
				}
				if contains(xtOwners[i], b) && c.Packets <= c.NewConns {
					t.Errorf("%s: bucket %d: %d packets for %d new connections, want established ones too", l.names[i], b, c.Packets, c.NewConns)
				}
				total += c.NewConns
			}
			if d, err := p.Dropped(v); err != nil || !d.BucketCounted || d.Bucket == 0 || d.IngressCounted {
				t.Errorf("%s: Dropped = %+v, %v; want the chain's drops counted, no ingress stage", l.names[i], d, err)
			}
		}
		if want := uint64(len(clients) * 2); total != want {
			t.Errorf("new connections counted over all nodes = %d, want %d", total, want)
		}
		// A reader bound to nftables (loadshare status, the metrics)
		// lists the VIP and reads the same counters.
		reader, err := New(WithNetNS(int(l.servers[0].Handle)), WithBackend(BackendNFTables), WithRunDir(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		sts, err := reader.Status()
		if err != nil || len(sts) != 1 || sts[0].Backend != BackendXTCluster || !slices.Equal(sts[0].Owned, xtOwners[0]) || !sts[0].Address {
			t.Errorf("Status through an nftables-bound plane = %+v, %v; want the xtcluster VIP, owning %v", sts, err, xtOwners[0])
		}
		if cs, err := reader.Counters(v); err != nil || cs[0].NewConns == 0 {
			t.Errorf("Counters through an nftables-bound plane = %v, %v", cs, err)
		}

		// A bucket moves s1 → s2 → s3 under a long-lived connection.
		const b = Bucket(1) // s1's
		var in []netip.Addr
		for _, c := range clients {
			if v.BucketOf(netip.AddrPortFrom(c, 0)) == b {
				in = append(in, c)
			}
		}
		if len(in) < 3 {
			t.Fatalf("only %d client addresses in bucket %d", len(in), b)
		}
		dst := netip.AddrPortFrom(v.Addr, labPort)
		ll := l.startLongLived(t, netip.AddrPortFrom(in[0], 40000), dst)
		time.Sleep(300 * time.Millisecond)
		before, _ := l.planes[0].Counters(v)
		for _, to := range []int{1, 2} {
			from := to - 1
			if err := l.planes[from].Release(v, b); err != nil {
				t.Fatalf("%s: Release(%d): %v", l.names[from], b, err)
			}
			if err := l.planes[to].Own(v, b); err != nil {
				t.Fatalf("%s: Own(%d): %v", l.names[to], b, err)
			}
			if who, err := l.ask(netip.AddrPortFrom(in[to], 40000), dst); err != nil || who != l.names[to] {
				t.Errorf("new connection in bucket %d after the move: answered by %q (%v), want %s", b, who, err, l.names[to])
			}
			time.Sleep(400 * time.Millisecond)
		}
		answers, n, err := ll.finish()
		if err != nil {
			t.Fatalf("long-lived connection broke: %v (answers %v)", err, answers)
		}
		if answers["s1"] != n || n < 8 {
			t.Fatalf("long-lived connection answered by %v over %d messages, want all by s1", answers, n)
		}
		// The rewrites kept s1's counters: bucket 0's, and bucket 1's
		// established packets (its SYN rule, and count, went with it).
		after, _ := l.planes[0].Counters(v)
		est := func(c Counter) uint64 { return c.Packets - c.NewConns }
		if after[0] != before[0] || est(after[b]) <= est(before[b]) || after[b].NewConns != 0 {
			t.Errorf("s1's counters across the moves: bucket 0 %+v → %+v, bucket %d %+v → %+v; want bucket 0 kept, %d's established packets growing",
				before[0], after[0], b, before[b], after[b], b)
		}
		t.Logf("long-lived connection: %d messages, all answered by s1 while bucket %d moved s1→s2→s3", n, b)
	})
}

// TestStopLeavesNothingXTCluster: with the iptables backend the last
// release leaves no chain, jump, ARP rule or table of the VIP, as the
// independent reader (iptables-save, arptables-save, nft) sees it.
func TestStopLeavesNothingXTCluster(t *testing.T) {
	xtVariants(t, func(t *testing.T, legacy bool) {
		l := newLab(t, "sx", BackendXTCluster)
		ns, p := l.servers[0], l.planes[0]
		// iptables-nft and arptables-nft create the mangle and arp filter
		// tables and their built-in chains on first use and never delete
		// them: they are iptables', not the VIP's.
		run(t, ns, "iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "lo", "-j", "ACCEPT")
		run(t, ns, "iptables", "-t", "mangle", "-D", "PREROUTING", "-i", "lo", "-j", "ACCEPT")
		run(t, ns, "arptables", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
		run(t, ns, "arptables", "-D", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
		before := footprint.Namespace(t, ns, p.runDir)
		v := VIP{Addr: vip4, Link: "eth0", Buckets: 4, Seed: 9, Hash: HashSourceIP}
		t.Cleanup(func() { p.Remove(v) })
		if err := p.Own(v, 1, 3); err != nil {
			t.Fatal(err)
		}
		up := footprint.Namespace(t, ns, p.runDir).Only(xtChain(v))
		if len(up.XT) < 10 {
			t.Fatalf("xtcluster Own: the reader sees %d iptables/arptables lines of chain %s:\n%s", len(up.XT), xtChain(v), strings.Join(up.XT, "\n"))
		}
		if err := p.Release(v, 1, 3); err != nil {
			t.Fatal(err)
		}
		if d := before.Diff(footprint.Namespace(t, ns, p.runDir)); d != "" {
			t.Errorf("after the last release (xtcluster), the namespace differs from before (-before +after):\n%s", d)
		}
	})
}
