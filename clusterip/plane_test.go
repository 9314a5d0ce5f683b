package clusterip

import (
	"net/netip"
	"testing"
)

func TestSmoke(t *testing.T) {
	l := newLab(t, "sm", BackendNFTables)
	v := VIP{Addr: vip4, Link: "eth0", Buckets: 3, Seed: 0x5eed}
	for i, p := range l.planes {
		if err := p.Own(v, Bucket(i)); err != nil {
			t.Fatalf("own: %v", err)
		}
	}
	t.Log(nftJSON(t, l.servers[0]))
	for port := 30000; port < 30010; port++ {
		src := netip.AddrPortFrom(netip.MustParseAddr(labClient), uint16(port))
		who, err := l.ask(src, netip.AddrPortFrom(vip4, labPort))
		t.Logf("port %d bucket %d -> %q %v", port, v.BucketOf(src), who, err)
	}
}
