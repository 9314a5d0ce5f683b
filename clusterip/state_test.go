package clusterip

import (
	"net/netip"
	"os/exec"
	"testing"

	"github.com/google/nftables"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// stateNS returns a namespace (prefix lsmg-) with a veth pair eth0 <->
// peer0, both up, eth0 holding 10.205.0.1/24 and fd00:205::1/64.
func stateNS(t *testing.T, name string) *nstest.NS {
	t.Helper()
	nstest.SkipShort(t, "namespace test")
	return nstest.NewNode(t, name, netip.MustParsePrefix("10.205.0.1/24"), netip.MustParsePrefix("fd00:205::1/64"))
}

// TestStateLacks breaks each piece a served bucket needs behind the plane's
// back and checks that State names exactly that piece, and that Ensure
// repairs it; IPv4 and IPv6. A monitor plane (WithRecordedBackend, auto)
// sees the same.
func TestStateLacks(t *testing.T) {
	ns := stateNS(t, "lsmg-state")
	p, err := New(WithNetNS(int(ns.Handle)), WithBackend(BackendNFTables), WithRunDir(t.TempDir()), WithDrainGrace(0))
	if err != nil {
		t.Fatal(err)
	}
	nl := ns.Netlink(t)
	eth0, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []VIP{
		{Addr: netip.MustParseAddr("10.205.0.100"), Link: "eth0", Buckets: 4, Seed: 7},
		{Addr: netip.MustParseAddr("fd00:205::100"), Link: "eth0", Buckets: 4, Seed: 7},
	} {
		t.Run(v.Addr.String(), func(t *testing.T) {
			mon, err := New(WithNetNS(int(ns.Handle)), WithRecordedBackend(v), WithRunDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			check := func(step string, b Bucket, want ServeState, wantLack Lack) {
				t.Helper()
				for name, pl := range map[string]*Plane{"plane": p, "monitor plane": mon} {
					st, lack, err := pl.State(v, b)
					if err != nil || st != want || lack != wantLack {
						t.Errorf("%s: %s: State(%s, %d) = %s (missing %q), %v; want %s (missing %q)",
							step, name, v, b, st, lack, err, want, wantLack)
					}
				}
			}
			check("nothing set up", 1, NotServed, LackBucket|LackAddress|LackMAC|LackNetdev|LackBucketRules|ifv4(v, LackARP))
			if err := p.Own(v, 1); err != nil {
				t.Fatal(err)
			}
			check("owned", 1, FullyServed, 0)
			check("other bucket", 2, PartlyServed, LackBucket)
			w := v
			w.Seed = 8
			if st, lack, err := p.State(w, 1); err != nil || st != PartlyServed || lack != LackSettings {
				t.Errorf("State with another seed = %s (missing %q), %v; want partly-served, settings", st, lack, err)
			}
			name := v.name()
			for _, c := range []struct {
				step   string
				lack   Lack
				damage func() error
			}{
				{"address deleted", LackAddress, func() error { return nl.AddrDel(eth0, &netlink.Addr{IPNet: v.ipnet()}) }},
				{"cluster MAC left", LackMAC, func() error { return nl.NeighDel(macNeigh(eth0, v)) }},
				{"netdev table deleted", LackNetdev, func() error {
					nft.DelTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: name})
					return nft.Flush()
				}},
				{"bucket chain flushed", LackShape, func() error {
					t := &nftables.Table{Family: l3Family(v), Name: name}
					nft.FlushChain(&nftables.Chain{Name: chainBucket, Table: t})
					return nft.Flush()
				}},
				{"owned bucket not held", LackShape, func() error {
					if err := nft.SetDeleteElements(heldSet(v), bucketElems([]Bucket{1})); err != nil {
						return err
					}
					return nft.Flush()
				}},
				{"arp table deleted", LackARP, func() error {
					if v.Addr.Is6() {
						return errSkip
					}
					nft.DelTable(&nftables.Table{Family: nftables.TableFamilyARP, Name: name})
					return nft.Flush()
				}},
			} {
				if err := c.damage(); err == errSkip {
					continue
				} else if err != nil {
					t.Fatalf("%s: %v", c.step, err)
				}
				check(c.step, 1, PartlyServed, c.lack)
				if err := p.Ensure(v); err != nil {
					t.Fatalf("%s: Ensure: %v", c.step, err)
				}
				check(c.step+", then Ensure", 1, FullyServed, 0)
			}
			if err := p.Release(v, 1); err != nil {
				t.Fatal(err)
			}
			// The last bucket's release (nothing to drain) leaves nothing.
			check("released", 1, NotServed, LackBucket|LackAddress|LackMAC|LackNetdev|LackBucketRules|ifv4(v, LackARP))
			if err := p.Remove(v); err != nil {
				t.Fatal(err)
			}
			check("removed", 1, NotServed, LackBucket|LackAddress|LackMAC|LackNetdev|LackBucketRules|ifv4(v, LackARP))
		})
	}
}

var errSkip = unix.ENOTSUP

func ifv4(v VIP, l Lack) Lack {
	if v.Addr.Is4() {
		return l
	}
	return 0
}

// TestRecordedBackend: a plane made with WithRecordedBackend takes the
// backend v's objects record (here xtcluster, which auto would not pick)
// and reports the VIP served by it.
func TestRecordedBackend(t *testing.T) {
	ns := stateNS(t, "lsmg-recbe")
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed (Debian package iptables)")
	}
	v := VIP{Addr: netip.MustParseAddr("10.205.0.101"), Link: "eth0", Buckets: 4, Seed: 9, Hash: HashSourceIP}
	run := t.TempDir()
	px, err := New(WithNetNS(int(ns.Handle)), WithBackend(BackendXTCluster), WithRunDir(run))
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Own(v, 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Remove(v) })
	mon, err := New(WithNetNS(int(ns.Handle)), WithRecordedBackend(v), WithRunDir(run))
	if err != nil {
		t.Fatal(err)
	}
	if st, lack, err := mon.State(v, 3); err != nil || st != FullyServed {
		t.Errorf("State of an xtcluster bucket = %s (missing %q), %v; want fully-served", st, lack, err)
	}
	if st, lack, err := mon.State(v, 2); err != nil || st != PartlyServed || lack != LackBucket {
		t.Errorf("State of an unowned xtcluster bucket = %s (missing %q), %v; want partly-served, bucket", st, lack, err)
	}
	if be := mon.Backend(); be != BackendXTCluster {
		t.Errorf("recorded backend = %s, want xtcluster", be)
	}
	// A VIP not programmed here: no backend recorded, so none chosen yet;
	// State needs none.
	u := VIP{Addr: netip.MustParseAddr("10.205.0.102"), Link: "eth0", Buckets: 4, Seed: 9}
	mu, err := New(WithNetNS(int(ns.Handle)), WithRecordedBackend(u), WithRunDir(run))
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := mu.State(u, 0); err != nil || st != NotServed {
		t.Errorf("State of a VIP not set up = %s, %v; want not-served", st, err)
	}
	if mu.be != nil {
		t.Errorf("State chose a backend (%s): it must not probe", mu.be.kind())
	}
	if be := mu.Backend(); be != BackendNFTables {
		t.Errorf("deferred choice = %s, want nftables (the kernel takes its objects)", be)
	}
}
