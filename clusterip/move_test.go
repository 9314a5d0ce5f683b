package clusterip

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// portIn returns a client source port whose connection lands in bucket b.
func portIn(t *testing.T, v VIP, src netip.Addr, b Bucket, from int) netip.AddrPort {
	t.Helper()
	for p := from; p < 65000; p++ {
		s := netip.AddrPortFrom(src, uint16(p))
		if v.BucketOf(s) == b {
			return s
		}
	}
	t.Fatalf("no source port in bucket %d", b)
	return netip.AddrPort{}
}

// longLived is a connection that sends a line every 100 ms and records
// who answers, until stop; it reports the first failure.
type longLived struct {
	mu      sync.Mutex
	answers map[string]int
	n       int
	err     error
	stop    chan struct{}
	done    chan struct{}
}

func (l *lab) startLongLived(t *testing.T, src, dst netip.AddrPort) *longLived {
	t.Helper()
	c, err := l.dialFrom(src, dst, 2*time.Second)
	if err != nil {
		t.Fatalf("long-lived connection from %s: %v", src, err)
	}
	ll := &longLived{answers: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	r := bufio.NewReader(c)
	go func() {
		defer close(ll.done)
		defer c.Close()
		for i := 0; ; i++ {
			if i > 0 {
				select {
				case <-ll.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := fmt.Fprintf(c, "ping %d\n", i); err != nil {
					ll.fail(err)
					return
				}
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil {
				ll.fail(fmt.Errorf("after %d answers: %w", i, err))
				return
			}
			ll.mu.Lock()
			ll.answers[strings.TrimSpace(line)]++
			ll.n++
			ll.mu.Unlock()
		}
	}()
	t.Cleanup(func() { ll.finish() })
	return ll
}

func (ll *longLived) fail(err error) {
	ll.mu.Lock()
	ll.err = err
	ll.mu.Unlock()
}

// finish closes the connection and returns answers and the first error.
func (ll *longLived) finish() (map[string]int, int, error) {
	select {
	case <-ll.stop:
	default:
		close(ll.stop)
	}
	<-ll.done
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.answers, ll.n, ll.err
}

// TestMoveKeepsConnection moves a bucket twice under a long-lived
// connection: the old owner keeps answering it, new connections of the
// bucket go to the new owner, no reset.
func TestMoveKeepsConnection(t *testing.T) {
	l := newLab(t, "mv", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 16, Seed: 0x5eed}
	owners := [][]Bucket{span(0, 6), span(6, 11), span(11, 16)}
	l.assign(t, v, owners)
	const b = Bucket(2) // owned by s1
	client := netip.MustParseAddr(labClient)
	dst := netip.AddrPortFrom(v.Addr, labPort)
	ll := l.startLongLived(t, portIn(t, v, client, b, 30000), dst)
	time.Sleep(300 * time.Millisecond)

	next := 31000
	for _, to := range []int{1, 2} { // s1 -> s2 -> s3
		from := to - 1
		if err := l.planes[from].Release(v, b); err != nil {
			t.Fatalf("%s: Release(%d): %v", l.names[from], b, err)
		}
		if err := l.planes[to].Own(v, b); err != nil {
			t.Fatalf("%s: Own(%d): %v", l.names[to], b, err)
		}
		// A new connection in the moved bucket goes to the new owner.
		s := portIn(t, v, client, b, next)
		next = int(s.Port()) + 1
		if who, err := l.ask(s, dst); err != nil || who != l.names[to] {
			t.Errorf("new connection in bucket %d after the move: answered by %q (%v), want %s", b, who, err, l.names[to])
		}
		time.Sleep(400 * time.Millisecond)
		// A no-op Own prunes s1's held set: b must stay held (s1 still
		// tracks the connection), or ingress would drop its packets.
		if err := l.planes[0].Own(v, 0); err != nil {
			t.Fatal(err)
		}
		if h := heldOf(t, l.planes[0], v); !slices.Contains(h, b) {
			t.Errorf("s1 after moving bucket %d away under a tracked connection: held %v lacks it", b, h)
		}
	}
	// A bucket released without connections leaves held at the next prune.
	s3 := l.planes[2]
	if err := s3.Release(v, 15); err != nil {
		t.Fatal(err)
	}
	if h := heldOf(t, s3, v); !slices.Contains(h, 15) {
		t.Errorf("s3 just after releasing bucket 15: held %v, want it kept until the next prune", h)
	}
	if err := s3.Own(v, 11); err != nil {
		t.Fatal(err)
	}
	if h := heldOf(t, s3, v); !slices.Equal(slices.DeleteFunc(h, func(x Bucket) bool { return x == b }), span(11, 15)) {
		t.Errorf("s3 after a prune: held %v, want 11..14 (and %d only if a connection of it is tracked)", h, b)
	}
	answers, n, err := ll.finish()
	if err != nil {
		t.Fatalf("long-lived connection broke: %v (answers %v)", err, answers)
	}
	if answers["s1"] != n || n < 8 {
		t.Fatalf("long-lived connection answered by %v over %d messages, want all by s1", answers, n)
	}
	loose, _ := l.planes[1].TCPLoose()
	t.Logf("long-lived connection: %d messages, all answered by s1 while bucket %d moved s1→s2→s3 (nf_conntrack_tcp_loose=%d on the new owners)", n, b, loose)
}

// TestReleaseLastBucketDrains releases a node's last bucket under a live
// connection: the connection keeps working, the address stays until it
// closes, then goes; a connection outliving the grace gets a DrainError.
func TestReleaseLastBucketDrains(t *testing.T) {
	l := newLab(t, "dr", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 4, Seed: 0x5eed}
	owners := [][]Bucket{{0}, {1, 2}, {3}}
	l.assign(t, v, owners)
	client := netip.MustParseAddr(labClient)
	dst := netip.AddrPortFrom(v.Addr, labPort)
	s1 := l.planes[0]

	// Drained: the client closes during the grace (2 s in newLab).
	ll := l.startLongLived(t, portIn(t, v, client, 0, 30000), dst)
	time.Sleep(200 * time.Millisecond)
	relErr := make(chan error, 1)
	go func() { relErr <- s1.Release(v, 0) }()
	time.Sleep(600 * time.Millisecond)
	st, err := s1.StatusOf(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Owned) != 0 || !st.Address || st.Tracked != 1 {
		t.Errorf("while draining: owned %v, address %v, tracked %d; want none, true, 1", st.Owned, st.Address, st.Tracked)
	}
	answers, n, err := ll.finish()
	if err != nil || answers["s1"] != n || n < 5 {
		t.Fatalf("connection during the drain: %d messages, answers %v, err %v; want all answered by s1", n, answers, err)
	}
	if err := <-relErr; err != nil {
		t.Fatalf("Release of the last bucket after the connection closed: %v", err)
	}
	if st, _ := s1.StatusOf(v); st.Address || st.MACJoined {
		t.Errorf("after the drain: address %v, MAC joined %v; want both gone", st.Address, st.MACJoined)
	}

	// Owned again during the drain: Release ends without removing the address.
	if err := s1.Own(v, 0); err != nil {
		t.Fatal(err)
	}
	ll = l.startLongLived(t, portIn(t, v, client, 0, 32000), dst)
	time.Sleep(200 * time.Millisecond)
	go func() { relErr <- s1.Release(v, 0) }()
	time.Sleep(400 * time.Millisecond)
	// Pacemaker moves bucket 1 from s2 to s1 meanwhile.
	if err := l.planes[1].Release(v, 1); err != nil {
		t.Fatal(err)
	}
	if err := s1.Own(v, 1); err != nil {
		t.Fatal(err)
	}
	ll.finish()
	if err := <-relErr; err != nil {
		t.Fatalf("Release whose drain saw a new bucket owned: %v", err)
	}
	if st, _ := s1.StatusOf(v); !st.Address || !slices.Equal(st.Owned, []Bucket{1}) {
		t.Errorf("after a drain interrupted by Own: address %v, owned %v; want true, [1]", st.Address, st.Owned)
	}
	if err := s1.Release(v, 1); err != nil {
		t.Fatal(err)
	}
	if err := l.planes[1].Own(v, 1); err != nil {
		t.Fatal(err)
	}

	// Cut: the connection outlives the grace; Release says so.
	if err := s1.Own(v, 0); err != nil {
		t.Fatal(err)
	}
	ll = l.startLongLived(t, portIn(t, v, client, 0, 31000), dst)
	time.Sleep(200 * time.Millisecond)
	err = s1.Release(v, 0)
	var de *DrainError
	if !errors.As(err, &de) || !errors.Is(err, ErrDrainCut) || de.Remaining != 1 {
		t.Fatalf("Release with a connection outliving the grace = %v, want a DrainError with 1 remaining", err)
	}
	if st, _ := s1.StatusOf(v); st.Address {
		t.Errorf("after the grace: address still present")
	}
	ll.finish()
}

// TestConcurrentOwners: 64 planes (as 64 agent processes would) own one
// bucket each at once; the lock leaves exactly 64 buckets and one address.
func TestConcurrentOwners(t *testing.T) {
	l := newLab(t, "cc", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 64, Seed: 7}
	ns := l.servers[0]
	dir := t.TempDir()
	t.Cleanup(func() { l.planes[0].Remove(v) })
	run := func(f func(p *Plane, b Bucket) error) {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := New(WithNetNS(int(ns.Handle)), WithBackend(BackendNFTables), WithRunDir(dir), WithDrainGrace(time.Second))
				if err == nil {
					err = f(p, Bucket(i))
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	run(func(p *Plane, b Bucket) error { return p.Own(v, b) })
	got, err := l.planes[0].Owned(v)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, span(0, 64)) {
		t.Fatalf("after 64 concurrent Own: owned %v, want 0..63", got)
	}
	if n := countAddr(t, ns.Netlink(t), v); n != 1 {
		t.Fatalf("after 64 concurrent Own: %d addresses %s, want 1", n, v.Addr)
	}
	run(func(p *Plane, b Bucket) error { return p.Release(v, b) })
	got, _ = l.planes[0].Owned(v)
	if len(got) != 0 {
		t.Fatalf("after 64 concurrent Release: owned %v", got)
	}
	if n := countAddr(t, ns.Netlink(t), v); n != 0 {
		t.Fatalf("after 64 concurrent Release: %d addresses %s, want 0", n, v.Addr)
	}
}

func countAddr(t *testing.T, h *netlink.Handle, v VIP) int {
	t.Helper()
	as, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range as {
		if a.IP.Equal(v.Addr.AsSlice()) {
			n++
		}
	}
	return n
}

// heldOf reads v's held set on p.
func heldOf(t *testing.T, p *Plane, v VIP) []Bucket {
	t.Helper()
	c, err := p.nftConn()
	if err != nil {
		t.Fatal(err)
	}
	h, err := readHeld(c, v)
	if err != nil {
		t.Fatalf("read held set: %v", err)
	}
	return h
}
