package clusterip

import (
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
)

// clientNeigh returns the MAC the client's neighbour table holds for a.
func (l *lab) clientNeigh(t *testing.T, a netip.Addr) string {
	t.Helper()
	h := l.client.Netlink(t)
	link, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := h.NeighList(link.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.IP.Equal(a.AsSlice()) {
			return n.HardwareAddr.String()
		}
	}
	return ""
}

func run(t *testing.T, ns *nstest.NS, name string, args ...string) string {
	t.Helper()
	out, err := ns.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %v: %v\n%s", ns.Name, name, args, err, out)
	}
	return string(out)
}

// TestLifecycle: two VIPs (IPv4 multicast MAC, IPv6 unicast "NLB" MAC)
// and a third on the xtcluster backend coexist; status, answers with the
// cluster MAC, errors leave nothing behind, Ensure repairs, Remove removes
// what it added and nothing else.
func TestLifecycle(t *testing.T) {
	l := newLab(t, "lc", BackendNFTables)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed: cannot check the ruleset independently")
	}
	s1 := l.servers[0]
	// Someone else's objects, which Remove must leave alone.
	run(t, s1, "nft", "add", "table", "inet", "other")
	run(t, s1, "ip", "addr", "add", "10.201.9.9/32", "dev", "eth0")

	v4 := VIP{Addr: vip4, Link: "eth0", Buckets: 4, Seed: 0x1234}
	v6 := VIP{Addr: vip6, Link: "eth0", Buckets: 4, Seed: 0x1234, MACMode: MACUnicast}
	owners := [][]Bucket{{0, 1}, {2}, {3}}
	for _, v := range []VIP{v4, v6} {
		for i, p := range l.planes {
			if err := p.Ensure(v); err != nil {
				t.Fatalf("%s: Ensure(%s): %v", l.names[i], v, err)
			}
			if err := p.Ensure(v); err != nil { // idempotent
				t.Fatalf("%s: second Ensure(%s): %v", l.names[i], v, err)
			}
		}
	}
	p1 := l.planes[0]
	// Ensure set the node sysctls inside the namespace.
	for _, k := range []string{"all", "eth0"} {
		if got := strings.TrimSpace(run(t, s1, "sysctl", "-n", "net.ipv4.conf."+k+".arp_announce")); got != "2" {
			t.Errorf("net.ipv4.conf.%s.arp_announce = %s after Ensure, want 2", k, got)
		}
	}
	// auto picks nftables where the kernel takes its objects.
	if pa, err := New(WithNetNS(int(s1.Handle)), WithRunDir(t.TempDir())); err != nil || pa.Backend() != BackendNFTables {
		t.Errorf("New(auto) backend = %v, %v; want nftables", pa, err)
	}
	if st, lack, err := p1.State(v4, 0); err != nil || st != PartlyServed || lack != LackBucket|LackAddress|LackMAC {
		t.Errorf("State(v4, 0) before Own = %s (missing %s), %v; want partly-served, missing bucket,address,mac", st, lack, err)
	}
	if bs, err := p1.Owned(v4); err != nil || len(bs) != 0 {
		t.Errorf("Owned(v4) before Own = %v, %v", bs, err)
	}
	for _, v := range []VIP{v4, v6} {
		l.assign(t, v, owners)
	}
	for _, tc := range []struct {
		v    VIP
		src  netip.Addr
		want string
	}{{v4, netip.MustParseAddr(labClient), "01:00:5e:49:00:64"}, {v6, cli6, "02:bf:00:00:01:00"}} {
		s := netip.AddrPortFrom(tc.src, 40000)
		who, err := l.ask(s, netip.AddrPortFrom(tc.v.Addr, labPort))
		if want := l.names[slices.IndexFunc(owners, func(bs []Bucket) bool { return slices.Contains(bs, tc.v.BucketOf(s)) })]; err != nil || who != want {
			t.Errorf("%s: answered by %q (%v), want %s", tc.v, who, err, want)
		}
		if got := l.clientNeigh(t, tc.v.Addr); got != tc.want {
			t.Errorf("client's neighbour entry for %s = %q, want the cluster MAC %s", tc.v, got, tc.want)
		}
	}
	if st, lack, err := p1.State(v4, 0); st != FullyServed || lack != 0 || err != nil {
		t.Errorf("State(v4, 0) on s1 = %s (missing %s), %v; want fully-served", st, lack, err)
	}
	if st, lack, _ := p1.State(v4, 2); st != PartlyServed || lack != LackBucket {
		t.Errorf("State(v4, 2) on s1 = %s (missing %s), want partly-served, missing bucket", st, lack)
	}
	all, err := p1.Status()
	if err != nil || len(all) != 2 {
		t.Fatalf("Status() = %+v, %v; want 2 VIPs", all, err)
	}
	for _, st := range all {
		if st.Backend != BackendNFTables || !slices.Equal(st.Owned, []Bucket{0, 1}) || !st.Address || !st.MACJoined ||
			st.VIP.Buckets != 4 || st.VIP.Seed != 0x1234 || st.VIP.Link != "eth0" {
			t.Errorf("Status of %s = %+v", st.VIP, st)
		}
	}
	if all[1].MAC.String() != "02:bf:00:00:01:00" || all[0].MAC.String() != "01:00:5e:49:00:64" {
		t.Errorf("Status MACs = %s, %s", all[0].MAC, all[1].MAC)
	}

	// A missing interface is an error naming the field, and leaves nothing.
	bad := VIP{Addr: netip.MustParseAddr("10.201.0.101"), Link: "nope0", Buckets: 4, Seed: 1}
	var fe *FieldError
	if err := p1.Own(bad, 0); !errors.As(err, &fe) || fe.Field != "link" {
		t.Errorf("Own on a missing interface = %v, want a FieldError on link", err)
	}
	if err := p1.Own(v4, 4); !errors.As(err, &fe) || fe.Field != "bucket" {
		t.Errorf("Own(bucket 4 of 4) = %v, want a FieldError on bucket", err)
	}
	if js := nftJSON(t, s1); strings.Contains(js, "10_201_0_101") {
		t.Errorf("a failed Own left tables behind")
	}

	// Repair: remove the address and the ARP table behind the plane's back
	// (as a crash between steps would); Ensure puts them back, owned kept.
	s2 := l.servers[1]
	run(t, s2, "ip", "addr", "del", vip4.String()+"/32", "dev", "eth0")
	run(t, s2, "nft", "delete", "table", "arp", v4.name())
	if err := l.planes[1].Ensure(v4); err != nil {
		t.Fatalf("repairing Ensure: %v", err)
	}
	if st, err := l.planes[1].StatusOf(v4); err != nil || !st.Address || !slices.Equal(st.Owned, []Bucket{2}) {
		t.Errorf("after repair: %+v, %v; want address back, owned [2]", st, err)
	}
	if js := nftJSON(t, s2); !strings.Contains(js, `"family": "arp", "name": "`+v4.name()) {
		t.Errorf("after repair: ARP table missing")
	}

	// A third VIP on the xtcluster backend beside the nftables ones.
	if _, err := exec.LookPath("iptables"); err == nil {
		vx := VIP{Addr: netip.MustParseAddr("10.201.0.102"), Link: "eth0", Buckets: 4, Seed: 9, Hash: HashSourceIP}
		px, err := New(WithNetNS(int(s1.Handle)), WithBackend(BackendXTCluster), WithRunDir(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		if err := px.Own(vx, 1, 3); err != nil {
			t.Fatalf("xtcluster Own: %v", err)
		}
		if bs, err := px.Owned(vx); err != nil || !slices.Equal(bs, []Bucket{1, 3}) {
			t.Errorf("xtcluster Owned = %v, %v", bs, err)
		}
		if all, _ := p1.Status(); len(all) != 3 || all[1].VIP.Addr != vx.Addr || all[1].Backend != BackendXTCluster {
			t.Errorf("Status with an xtcluster VIP = %+v", all)
		}
		if err := px.Remove(vx); err != nil {
			t.Fatal(err)
		}
		if out := run(t, s1, "iptables-save", "-t", "mangle"); strings.Contains(out, "LS-") {
			t.Errorf("xtcluster Remove left rules:\n%s", out)
		}
	}

	// Teardown: everything added goes, nothing else.
	for _, v := range []VIP{v4, v6} {
		for i, p := range l.planes {
			if err := p.Remove(v); err != nil {
				t.Fatalf("%s: Remove(%s): %v", l.names[i], v, err)
			}
			if err := p.Remove(v); err != nil {
				t.Fatalf("%s: second Remove(%s): %v", l.names[i], v, err)
			}
		}
	}
	for i, ns := range l.servers {
		js := nftJSON(t, ns)
		if strings.Contains(js, tablePrefix) {
			t.Errorf("%s: tables left after Remove: %s", l.names[i], js)
		}
		addrs := run(t, ns, "ip", "addr", "show", "dev", "eth0")
		if strings.Contains(addrs, vip4.String()) || strings.Contains(addrs, vip6.String()) {
			t.Errorf("%s: VIP address left after Remove:\n%s", l.names[i], addrs)
		}
		fdb := run(t, ns, "bridge", "fdb", "show", "dev", "eth0")
		if strings.Contains(fdb, "01:00:5e:49:00:64") || strings.Contains(fdb, "02:bf:00:00:01:00") {
			t.Errorf("%s: cluster MAC left after Remove:\n%s", l.names[i], fdb)
		}
		if st, err := l.planes[i].Status(); err != nil || len(st) != 0 {
			t.Errorf("%s: Status after Remove = %+v, %v", l.names[i], st, err)
		}
	}
	if js := nftJSON(t, s1); !strings.Contains(js, `"name": "other"`) {
		t.Errorf("Remove deleted someone else's table")
	}
	if addrs := run(t, s1, "ip", "addr", "show", "dev", "eth0"); !strings.Contains(addrs, "10.201.9.9") {
		t.Errorf("Remove deleted someone else's address")
	}
}

// TestEnsureReconfigure: Ensure with other settings rebuilds the objects in
// one batch, keeping the owned buckets still in range; connections then
// follow the new hash.
func TestEnsureReconfigure(t *testing.T) {
	l := newLab(t, "rc", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 8, Seed: 5}
	l.assign(t, v, [][]Bucket{{0, 1, 5}, {2, 3, 6}, {4, 7}})
	w := v
	w.Buckets, w.Seed = 4, 6
	for i, p := range l.planes {
		if err := p.Ensure(w); err != nil {
			t.Fatalf("%s: Ensure(new settings): %v", l.names[i], err)
		}
	}
	got, err := l.planes[0].Owned(w)
	if err != nil || !slices.Equal(got, []Bucket{0, 1}) {
		t.Fatalf("owned after shrinking to 4 buckets = %v, %v; want [0 1]", got, err)
	}
	st, err := l.planes[0].StatusOf(w)
	if err != nil || st.VIP.Buckets != 4 || st.VIP.Seed != 6 {
		t.Fatalf("status after reconfigure = %+v, %v", st, err)
	}
	l.checkShare(t, w, netip.MustParseAddr(labClient), [][]Bucket{{0, 1}, {2, 3}, nil}, 100)
}
