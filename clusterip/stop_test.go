package clusterip

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/footprint"
)

// marks are the strings that name v's pieces in a footprint.
func marks(v VIP) []string {
	return []string{v.name(), v.Addr.String() + "/", v.ClusterMAC().String()}
}

// TestStopLeavesNothing: the last release of a VIP on a node, after its
// drain, leaves the namespace as it was before the VIP's first bucket
// (tables, address, MAC, run files, arp_announce), and touches nothing of
// the node's other VIPs, which keep answering; a sysctl another VIP still
// needs stays until that one goes too.
func TestStopLeavesNothing(t *testing.T) {
	l := newLab(t, "sl", BackendNFTables)
	s1, p := l.servers[0], l.planes[0]
	dir := p.runDir
	// Someone else's objects and a non-default sysctl, to be left as they are.
	run(t, s1, "nft", "add", "table", "inet", "other")
	run(t, s1, "ip", "addr", "add", "10.201.9.9/32", "dev", "eth0")
	run(t, s1, "sysctl", "-w", "net.ipv4.conf.eth0.arp_announce=1")
	before := footprint.Namespace(t, s1, dir)

	a := VIP{Addr: vip4, Link: "eth0", Buckets: 4, Seed: 0x5eed}
	b := VIP{Addr: netip.MustParseAddr("10.201.0.101"), Link: "eth0", Buckets: 4, Seed: 0x5eed}
	c := VIP{Addr: vip6, Link: "eth0", Buckets: 4, Seed: 0x5eed, MACMode: MACUnicast}
	for _, v := range []VIP{a, b, c} {
		if err := p.Own(v, 0, 1); err != nil {
			t.Fatalf("Own(%s): %v", v, err)
		}
		t.Cleanup(func() { p.Remove(v) })
	}
	up := footprint.Namespace(t, s1, dir)
	for _, v := range []VIP{a, b, c} {
		if n := up.Only(marks(v)...).Lines(); n < 5 {
			t.Fatalf("%s up: only %d footprint lines of it; the reader misses its objects:\n%+v", v, n, up.Only(marks(v)...))
		}
	}
	if got := strings.Join(up.Sysctls, "; "); !strings.Contains(got, "all.arp_announce = 2") || !strings.Contains(got, "eth0.arp_announce = 2") {
		t.Fatalf("sysctls with IPv4 VIPs up: %s; want arp_announce 2 on all and eth0", got)
	}

	// a's last bucket goes under a live connection: it is answered during
	// the drain, with a's objects still there; then everything of a goes.
	client := netip.MustParseAddr(labClient)
	ll := l.startLongLived(t, portIn(t, a, client, 0, 30000), netip.AddrPortFrom(a.Addr, labPort))
	time.Sleep(200 * time.Millisecond)
	if err := p.Release(a, 1); err != nil {
		t.Fatal(err)
	}
	relErr := make(chan error, 1)
	go func() { relErr <- p.Release(a, 0) }()
	time.Sleep(600 * time.Millisecond)
	// Only the owned and held sets change: bucket 1 had no connection.
	d := up.Only(marks(a)...).Diff(footprint.Namespace(t, s1, dir).Only(marks(a)...))
	for _, line := range strings.Split(strings.TrimSpace(d), "\n") {
		if line != "" && !strings.HasPrefix(line[2:], `nft {"set"`) && !strings.HasPrefix(line[2:], "file") {
			t.Errorf("while draining a, its address, MAC or rules changed (they must stay until the drain ends):\n%s", d)
			break
		}
	}
	answers, n, err := ll.finish()
	if err != nil || answers["s1"] != n || n < 5 {
		t.Fatalf("connection during the drain: %d messages, answers %v, err %v; want all answered by s1", n, answers, err)
	}
	if err := <-relErr; err != nil {
		t.Fatalf("Release of a's last bucket: %v", err)
	}
	after := footprint.Namespace(t, s1, dir)
	if d := after.Only(marks(a)...).Diff(before.Only(marks(a)...)); d != "" {
		t.Errorf("after a's last release, a's pieces differ from before it started (-before +after):\n%s", d)
	}
	for _, v := range []VIP{b, c} {
		if d := up.Only(marks(v)...).Diff(after.Only(marks(v)...)); d != "" {
			t.Errorf("a's last release changed %s's pieces (-before +after):\n%s", v, d)
		}
		if st, lack, err := p.State(v, 0); st != FullyServed || err != nil {
			t.Errorf("after a's last release: State(%s, 0) = %s (missing %s), %v; want fully-served", v, st, lack, err)
		}
		src := client
		if v.Addr.Is6() {
			src = cli6
		}
		if who, err := l.ask(portIn(t, v, src, 0, 33000), netip.AddrPortFrom(v.Addr, labPort)); who != "s1" {
			t.Errorf("after a's last release: %s bucket 0 answered by %q (%v), want s1", v, who, err)
		}
	}
	if d := up.Diff(after); strings.Contains(d, "+") || strings.Contains(d, "sysctl") {
		t.Errorf("after a's last release (b still needs arp_announce): want only a's pieces gone (-up +after):\n%s", d)
	}

	// a again, drained twice: bucket 0 released last under connection c0,
	// then bucket 1 owned and released last again under c1 while the
	// first drain waits. The first drain's grace (2 s) ends with both
	// connections open: it leaves everything to the second, whose grace
	// ends later, and both connections are answered until they close.
	if err := p.Own(a, 0); err != nil {
		t.Fatal(err)
	}
	c0 := l.startLongLived(t, portIn(t, a, client, 0, 34000), netip.AddrPortFrom(a.Addr, labPort))
	time.Sleep(200 * time.Millisecond)
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- p.Release(a, 0) }()
	time.Sleep(500 * time.Millisecond)
	if err := p.Own(a, 1); err != nil {
		t.Fatal(err)
	}
	c1 := l.startLongLived(t, portIn(t, a, client, 1, 35000), netip.AddrPortFrom(a.Addr, labPort))
	time.Sleep(300 * time.Millisecond)
	go func() { second <- p.Release(a, 1) }()
	if err := <-first; err != nil {
		t.Errorf("first drain, ended by its grace while a later one waits: %v; want nil (nothing cut)", err)
	}
	time.Sleep(300 * time.Millisecond) // past the first grace, within the second
	for i, c := range []*longLived{c0, c1} {
		if answers, n, err := c.finish(); err != nil || answers["s1"] != n || n < 5 {
			t.Errorf("connection %d across two drains: %d messages, answers %v, err %v; want all answered by s1", i, n, answers, err)
		}
	}
	if err := <-second; err != nil {
		t.Errorf("second drain: %v", err)
	}
	if d := footprint.Namespace(t, s1, dir).Only(marks(a)...).Diff(before.Only(marks(a)...)); d != "" {
		t.Errorf("after the second drain, a's pieces differ from before it started (-before +after):\n%s", d)
	}

	// The others' last releases: the namespace is as it was.
	for _, v := range []VIP{b, c} {
		if err := p.Release(v, 0, 1); err != nil {
			t.Fatalf("Release(%s): %v", v, err)
		}
	}
	if d := before.Diff(footprint.Namespace(t, s1, dir)); d != "" {
		t.Errorf("after every VIP's last release, the namespace differs from before (-before +after):\n%s", d)
	}
}

// TestStopRaces: the 32 buckets of a VIP released at once by 32 planes
// (as 32 agent processes would), while a start of one bucket races them:
// each round ends with that bucket served, and its release then leaves
// nothing. A start that stopped after Ensure (its process killed) is
// cleaned up by the stop that follows.
func TestStopRaces(t *testing.T) {
	l := newLab(t, "sr", BackendNFTables)
	ns := l.servers[0]
	dir := t.TempDir()
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 32, Seed: 3}
	plane := func() *Plane {
		p, err := New(WithNetNS(int(ns.Handle)), WithBackend(BackendNFTables), WithRunDir(dir), WithDrainGrace(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Cleanup(func() { plane().Remove(v) })
	before := footprint.Namespace(t, ns, dir)
	clean := func(step string) {
		t.Helper()
		if d := before.Diff(footprint.Namespace(t, ns, dir)); d != "" {
			t.Fatalf("%s: the namespace differs from before (-before +after):\n%s", step, d)
		}
	}

	p := plane()
	if err := p.Ensure(v); err != nil {
		t.Fatal(err)
	}
	if err := plane().Release(v, 7); err != nil {
		t.Fatalf("stop after a start killed past Ensure: %v", err)
	}
	clean("stop after a start killed past Ensure")

	const racer = Bucket(5)
	all := span(0, 32)
	won := 0
	for round := range 6 {
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(all)+1)
		for _, bk := range all {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- plane().Own(v, bk) }()
		}
		wg.Wait()
		for _, bk := range all {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- plane().Release(v, bk) }()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round) * 3 * time.Millisecond)
			errs <- plane().Own(v, racer)
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		// The racing start came after its bucket's release (owned now),
		// or before it: then that release undid it, and the round must
		// have left nothing; Pacemaker would start it again, and so do we.
		if owned, _ := p.Owned(v); len(owned) == 0 {
			clean(fmt.Sprintf("round %d: the racing start's bucket released after it", round))
			if err := plane().Own(v, racer); err != nil {
				t.Fatal(err)
			}
		} else {
			won++
		}
		if st, lack, err := p.State(v, racer); st != FullyServed || err != nil {
			t.Fatalf("round %d: start racing 32 stops: State(%d) = %s (missing %s), %v; want fully-served", round, racer, st, lack, err)
		}
		src := portIn(t, v, netip.MustParseAddr(labClient), racer, 30000+100*round)
		if who, err := l.ask(src, netip.AddrPortFrom(v.Addr, labPort)); who != "s1" {
			t.Fatalf("round %d: bucket %d answered by %q (%v), want s1", round, racer, who, err)
		}
		if err := plane().Release(v, all...); err != nil {
			t.Fatal(err)
		}
		clean(fmt.Sprintf("round %d: after the last release", round))
	}
	t.Logf("the racing start ended owned in %d of 6 rounds (the others came before its bucket's stop)", won)
}
