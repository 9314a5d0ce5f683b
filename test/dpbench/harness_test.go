package dpbench

import (
	"net/netip"
	"testing"
)

// TestHarness proves that every variant the benchmark measures reaches the
// servers it claims to: direct hits one server, client-side spreading hits
// the server it dialed, the VIPs and haproxy spread over all three, VIP
// connections arrive with the client's own address (no proxy hop) and
// haproxy's with haproxy's.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a namespace lab with haproxy; skipped in -short")
	}
	l := newLab(t)
	const n = 60
	for _, v := range l.variants() {
		t.Run(v.name, func(t *testing.T) {
			conns, _ := l.run(t, v, n)
			by := map[string]int{}
			for i, c := range conns {
				if c.Err != nil {
					t.Fatalf("connection %d to %s: %v", i, c.Dst, c.Err)
				}
				by[c.Server]++
				if c.Local.Addr() != clientAddr {
					t.Errorf("connection %d to %s left from %s, want the client %s", i, c.Dst, c.Local, clientAddr)
				}
				peer, err := netip.ParseAddrPort(c.Peer)
				if err != nil {
					t.Fatalf("connection %d to %s: server %q reported peer %q: %v", i, c.Dst, c.Server, c.Peer, err)
				}
				switch v.name {
				case "d-haproxy":
					if peer.Addr() != serverAddrs[0] {
						t.Errorf("via haproxy: server %s saw peer %s, want haproxy's address %s", c.Server, peer, serverAddrs[0])
					}
				default:
					if peer != c.Local {
						t.Errorf("%s: server %s saw peer %s, want the client's own %s (no hop)", c.Dst, c.Server, peer, c.Local)
					}
				}
				switch v.name {
				case "a-direct", "b-spread":
					want := ""
					for k, a := range serverAddrs {
						if a == c.Dst.Addr() {
							want = serverNames[k]
						}
					}
					if c.Server != want {
						t.Errorf("dialed %s, answered by %q, want %q", c.Dst, c.Server, want)
					}
				case "c-vip16", "c-vip1024":
					checkVIPOwner(t, v, c)
				}
			}
			t.Logf("%s: answers %v", v.name, by)
			switch v.name {
			case "a-direct":
				if by[serverNames[0]] != n {
					t.Errorf("direct: answers %v, want all %d from %s", by, n, serverNames[0])
				}
			default:
				// b and haproxy: round robin, n/3 each. VIPs: buckets 6/5/5 (or
				// 342/341/341) of random ports; a server with fewer than n/10 of
				// 60 has probability < 1e-5 (binomial, p ≥ 5/16).
				for _, s := range serverNames {
					if by[s] < n/10 {
						t.Errorf("%s: answers %v: %s got %d, want at least %d of %d", v.name, by, s, by[s], n/10, n)
					}
				}
			}
		})
	}
}
