package clusterip

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDrainHandOver: ReleaseOnly of the last bucket under a live
// connection returns at once with the drain marked; its marker, handed
// over as a duplicate descriptor (what a child inherits) and closed by
// the releaser, keeps the drain marked, so an Ensure meanwhile leaves the
// address; a file that is not the VIP's marker is refused; the adopter's
// Wait removes everything once the connection ends.
func TestDrainHandOver(t *testing.T) {
	l := newLab(t, "ho", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 4, Seed: 0x5eed}
	l.assign(t, v, [][]Bucket{{0}, {1, 2}, {3}})
	s1 := l.planes[0]
	ll := l.startLongLived(t, portIn(t, v, netip.MustParseAddr(labClient), 0, 30000), netip.AddrPortFrom(v.Addr, labPort))

	if d, err := s1.ReleaseOnly(v); err != nil || d != nil {
		t.Fatalf("ReleaseOnly of no bucket with bucket 0 owned = %v, %v; want no drain", d, err)
	}
	d, err := s1.ReleaseOnly(v, 0)
	if err != nil || d == nil {
		t.Fatalf("ReleaseOnly of the last bucket = %v, %v; want a drain", d, err)
	}
	if n, err := d.Tracked(); err != nil || n != 1 {
		t.Errorf("Tracked() = %d, %v; want the one live connection", n, err)
	}
	fd, err := unix.Dup(int(d.Marker().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	inherited := os.NewFile(uintptr(fd), "inherited marker")
	d.Close()

	// Another process's start of a bucket of v would Ensure first: with
	// the drain still marked, the kept address is not a crash's leftover.
	if err := s1.Ensure(v); err != nil {
		t.Fatal(err)
	}
	if st, err := s1.StatusOf(v); err != nil || !st.Address || len(st.Owned) != 0 {
		t.Fatalf("Ensure during a handed-over drain: address %v, owned %v (%v); want the address kept, nothing owned", st.Address, st.Owned, err)
	}
	other, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := s1.AdoptDrain(v, other); err == nil {
		t.Errorf("AdoptDrain of %s accepted a file that is not its drain marker", v)
	}

	adopted, err := s1.AdoptDrain(v, inherited)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few messages on the connection during the drain
	if answers, n, err := ll.finish(); err != nil || answers["s1"] != n || n < 3 {
		t.Fatalf("connection during the handed-over drain: %d messages, answers %v, err %v; want all answered by s1", n, answers, err)
	}
	if err := adopted.Wait(); err != nil {
		t.Fatalf("Wait of the adopted drain: %v", err)
	}
	if _, err := s1.StatusOf(v); err == nil {
		t.Errorf("after the adopted drain ended: %s still programmed on s1", v)
	}
	if err := adopted.Wait(); err == nil {
		t.Errorf("a second Wait of a drain let go succeeded")
	}
}
