package clusterip

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TestBucketOfKernel: with 1024 buckets spread at random over the three
// servers, every connection is answered by the owner of the bucket
// BucketOf predicts (IPv4 and IPv6).
func TestBucketOfKernel(t *testing.T) {
	l := newLab(t, "bk", BackendNFTables)
	rng := rand.New(rand.NewPCG(1, 2))
	owners := make([][]Bucket, 3)
	for b := range 1024 {
		i := rng.IntN(3)
		owners[i] = append(owners[i], Bucket(b))
	}
	for _, tc := range []struct {
		addr, src netip.Addr
	}{{vip4, netip.MustParseAddr(labClient)}, {vip6, cli6}} {
		v := VIP{Addr: tc.addr, Link: "eth0", Buckets: 1024, Seed: 0xdeadbeef}
		l.assign(t, v, owners)
		var srcs []netip.AddrPort
		for i := range 300 {
			srcs = append(srcs, netip.AddrPortFrom(tc.src, uint16(40000+i*7)))
		}
		l.checkShareFrom(t, v, srcs, len(srcs), owners)
	}
}

// TestHelperProcess is the body of the crash test's child process.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("LSDP_HELPER_NETNS") == "" {
		t.Skip("helper process of TestCrashRepair")
	}
	h, err := netns.GetFromPath(os.Getenv("LSDP_HELPER_NETNS"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(WithNetNS(int(h)), WithBackend(BackendNFTables), WithRunDir(os.Getenv("LSDP_HELPER_RUNDIR")), WithDrainGrace(0))
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := strconv.Atoi(os.Getenv("LSDP_HELPER_SEED"))
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	v := crashVIP
	for range 100000 { // killed long before
		b := Bucket(rng.IntN(int(v.Buckets)))
		if rng.IntN(2) == 0 {
			err = p.Own(v, b)
		} else {
			err = p.Release(v, b)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

var crashVIP = VIP{Addr: vip4, Link: "eth0", Buckets: 4, Seed: 77}

// TestCrashRepair kills agent processes (-9) at random points while they
// own and release buckets; the next Ensure leaves a consistent state:
// tables as built, address present exactly when a bucket is owned.
func TestCrashRepair(t *testing.T) {
	l := newLab(t, "kc", BackendNFTables)
	ns := l.servers[0]
	dir := t.TempDir()
	p := l.planes[0]
	t.Cleanup(func() { p.Remove(crashVIP) })
	var seen []int
	for round := range 8 {
		var cmds []*exec.Cmd
		for i := range 3 {
			c := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			c.Env = append(os.Environ(), "LSDP_HELPER_NETNS=/run/netns/"+ns.Name, "LSDP_HELPER_RUNDIR="+dir,
				fmt.Sprintf("LSDP_HELPER_SEED=%d", round*10+i))
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, c)
		}
		time.Sleep(time.Duration(150+round*40) * time.Millisecond)
		for _, c := range cmds {
			c.Process.Kill() // SIGKILL: mid-operation, locks released by the kernel
			c.Wait()
		}
		if err := p.Ensure(crashVIP); err != nil {
			t.Fatalf("round %d: Ensure after kill -9: %v", round, err)
		}
		c, _ := p.nftConn()
		s, err := readNFT(c, crashVIP, BackendNFTables, true)
		if err != nil || !s.asBuilt() {
			t.Fatalf("round %d: after Ensure: tables %+v, %v", round, s, err)
		}
		st, err := p.StatusOf(crashVIP)
		if err != nil {
			t.Fatal(err)
		}
		// No drainer is alive and no connection is tracked, so the address
		// and MAC are up exactly when a bucket is owned.
		if up := len(st.Owned) > 0; st.Address != up || st.MACJoined != up {
			t.Fatalf("round %d: owned %v but address %v, MAC %v", round, st.Owned, st.Address, st.MACJoined)
		}
		t.Logf("round %d: killed 3 owners; repaired state: owned %v, address %v", round, st.Owned, st.Address)
		seen = append(seen, len(st.Owned))
		// Releasing everything removes the address (nothing to drain).
		if err := p.Release(crashVIP, 0, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		if st, _ := p.StatusOf(crashVIP); len(st.Owned) != 0 || st.Address || st.MACJoined {
			t.Fatalf("round %d: after releasing all: %+v", round, st)
		}
	}
	if slices.Max(seen) == 0 {
		t.Errorf("the killed processes never owned a bucket: the test did not exercise anything")
	}
}
