package clusterip

import (
	"net/netip"
	"os"
	"reflect"
	"testing"
)

func TestSeenCacheText(t *testing.T) {
	for _, c := range []seenCache{
		{Cookie: 4096, Gen: 17, Key: "loadshare/1 addr=192.0.2.10 prefix=24 backend=auto",
			Seen: nftSeen{Lack: LackShape | LackARP, Anything: true, Backend: BackendNFTables, Owned: []Bucket{0, 3}, Held: []Bucket{0, 3, 5}}},
		{Cookie: 1, Gen: 0, Key: "k", Seen: nftSeen{Backend: BackendNFTables}},
	} {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got seenCache
		if err := got.UnmarshalText(b); err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("round trip of %q = %+v, %v; want %+v", b, got, err, c)
		}
	}
	for _, bad := range []string{
		"",
		"seen/1 cookie=1 gen=2 lack=0 anything=true backend=nftables owned=- held=-", // no key line
		"seen/2 cookie=1 gen=2 lack=0 anything=true backend=nftables owned=- held=-\nk\n",
		"seen/1 cookie=x gen=2 lack=0 anything=true backend=nftables owned=- held=-\nk\n",
		"seen/1 cookie=1 gen=2 lack=0 anything=true backend=nftables owned=1,x held=-\nk\n",
		"seen/1 cookie=1 gen=2 lack=0 anything=maybe backend=nftables owned=- held=-\nk\n",
		"seen/1 cookie=1 gen=2 lack=0 anything=true backend=nftables owned=-\nk\n",
	} {
		var c seenCache
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %+v, want an error", bad, c)
		}
	}
}

// TestStateCache: State takes the run directory's cache only while it is
// of the namespace's current ruleset generation (proved by planting a
// false one: believed until the next commit), and two namespaces sharing
// a run directory never take each other's.
func TestStateCache(t *testing.T) {
	ns1 := stateNS(t, "lsmg-seen1")
	ns2 := stateNS(t, "lsmg-seen2")
	run := t.TempDir()
	v := VIP{Addr: netip.MustParseAddr("10.205.0.110"), Link: "eth0", Buckets: 4, Seed: 11}
	planes := map[string]*Plane{}
	for name, ns := range map[string]int{"ns1": int(ns1.Handle), "ns2": int(ns2.Handle)} {
		p, err := New(WithNetNS(ns), WithBackend(BackendNFTables), WithRunDir(run), WithDrainGrace(0))
		if err != nil {
			t.Fatal(err)
		}
		planes[name] = p
		t.Cleanup(func() { p.Remove(v) })
	}
	p1, p2 := planes["ns1"], planes["ns2"]
	if err := p1.Own(v, 1); err != nil {
		t.Fatal(err)
	}
	if err := p2.Own(v, 2); err != nil {
		t.Fatal(err)
	}
	want := func(step string, p *Plane, b Bucket, st ServeState, lack Lack) {
		t.Helper()
		if got, gl, err := p.State(v, b); err != nil || got != st || gl != lack {
			t.Errorf("%s: State(%d) = %s (missing %q), %v; want %s (missing %q)", step, b, got, gl, err, st, lack)
		}
	}
	// Alternating namespaces: each call finds the other's cache entry.
	for i := 0; i < 2; i++ {
		want("ns1", p1, 1, FullyServed, 0)
		want("ns1", p1, 2, PartlyServed, LackBucket)
		want("ns2", p2, 2, FullyServed, 0)
		want("ns2", p2, 1, PartlyServed, LackBucket)
	}

	want("ns1 caches", p1, 1, FullyServed, 0)
	path := p1.seenPath(v)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no cache after State: %v", err)
	}
	var c seenCache
	if err := c.UnmarshalText(b); err != nil {
		t.Fatal(err)
	}
	if cookie, gen, err := p1.rulesetGen(); err != nil || c.Cookie != cookie || c.Gen != gen {
		t.Fatalf("cache of cookie %d gen %d, namespace now %d gen %d (%v)", c.Cookie, c.Gen, cookie, gen, err)
	}
	if !reflect.DeepEqual(c.Seen.Owned, []Bucket{1}) {
		t.Errorf("cached owned = %v, want [1]", c.Seen.Owned)
	}
	c.Seen.Owned = nil // false, and of the current generation
	storeSeen(path, c)
	want("planted cache", p1, 1, PartlyServed, LackBucket)
	if err := p1.Own(v, 3); err != nil { // a commit: the generation moves on
		t.Fatal(err)
	}
	want("after a commit", p1, 1, FullyServed, 0)
	want("after a commit", p1, 3, FullyServed, 0)
	if err := p1.Remove(v); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("cache still there after Remove: %v", err)
	}
}
