package dpbench

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/vishvananda/netlink"
)

// TestHarness proves that every variant the benchmark measures reaches the
// servers it claims to, for the line server and for MariaDB: direct hits
// one server, client-side spreading hits the server it dialed, the VIPs
// and haproxy spread over all three, each VIP connection is answered by
// the owner of its bucket and counted as new by exactly one node, VIP
// connections arrive with the client's own address (no proxy hop) and
// haproxy's with haproxy's; the no-flood control hits only its one server.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a namespace lab with haproxy (and MariaDB); skipped in -short")
	}
	l := newTestLab(t)
	t.Run("line", func(t *testing.T) { l.checkVariants(t, lineProto) })
	t.Run("broken", func(t *testing.T) { checkBroken(t, l) })
	t.Run("mariadb", func(t *testing.T) {
		startTestDB(t, l)
		l.checkVariants(t, l.mariadbProto())
	})
}

// checkBroken proves that a harness whose connections fail is an error
// (ErrBroken), not a fast run, and that the table still shows why.
func checkBroken(t *testing.T, l *lab) {
	// Port 9 (discard): nothing listens there, every connection is refused.
	p := proto{name: "nothing", port: 9, haproxyPort: 9, exchange: LineExchange, peerPort: true}
	var out strings.Builder
	pr, err := l.bench(context.Background(), p, "broken", 1, 20, 1, 4, &out)
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("bench against a closed port: err = %v, want ErrBroken", err)
	}
	if len(pr.Summaries) != 7 || pr.Summaries[0].Errors != 20 {
		t.Errorf("summaries %+v: want 7 variants, 20 errors in a-direct", pr.Summaries)
	}
	if !strings.Contains(out.String(), "first error") || !strings.Contains(out.String(), "refused") {
		t.Errorf("table does not show the first error (connection refused):\n%s", out.String())
	}
}

func (l *lab) checkVariants(t *testing.T, p proto) {
	const n = 60
	for _, v := range l.variants(p) {
		t.Run(v.name, func(t *testing.T) {
			counted := map[string]*clusterip.VIP{"c-vip16": &vip16, "c-vip1024": &vip1024, "e-vip-noflood": &vipSolo,
				"f-vip-owneronly": &vipOwnerOnly}[v.name]
			before := l.newConns(t, counted)
			rx := l.serverRx(t)
			conns, _, err := l.run(context.Background(), p, v, n, 4)
			if err != nil {
				t.Fatal(err)
			}
			// The owner-only control: s2 and s3 see none of its frames (a
			// flooded connection is at least 4 frames to every server); the
			// VIPs: they see them all.
			rx2 := l.serverRx(t)
			for k := 1; k < len(serverNames); k++ {
				got := rx2[k] - rx[k]
				switch {
				case v.ownerOnly && got >= n:
					t.Errorf("%s: %s received %d packets during %d connections, want fewer than %d (not flooded to)", v.name, serverNames[k], got, n, n)
				case v.name == "c-vip16" && got < 4*n:
					t.Errorf("%s: %s received %d packets during %d connections, want at least %d (flooded to)", v.name, serverNames[k], got, n, 4*n)
				}
			}
			// The product's own counters: every connection accepted as new
			// by exactly one node.
			if got := l.newConns(t, counted) - before; counted != nil && got != n {
				t.Errorf("%s: clusterip counted %d new connections over all servers, want %d (one per connection)", v.name, got, n)
			}
			by := map[string]int{}
			for i, c := range conns {
				if c.Err != nil {
					t.Fatalf("connection %d to %s: %v", i, c.Dst, c.Err)
				}
				by[c.Server]++
				if c.Local.Addr() != clientAddr {
					t.Errorf("connection %d to %s left from %s, want the client %s", i, c.Dst, c.Local, clientAddr)
				}
				checkPeer(t, p, v, c)
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
			if v.vip != nil {
				// The client must reach the VIP at the cluster MAC (flooded to
				// every server), not at one server's MAC.
				if mac := l.clientNeigh(t, v.vip.Addr); mac.String() != v.vip.ClusterMAC().String() {
					t.Errorf("client resolves %s to %s, want the cluster MAC %s", v.vip.Addr, mac, v.vip.ClusterMAC())
				}
			}
			switch v.name {
			case "a-direct", "e-vip-noflood", "f-vip-owneronly":
				if by[serverNames[0]] != n {
					t.Errorf("%s: answers %v, want all %d from %s", v.name, by, n, serverNames[0])
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

// checkPeer checks where the server saw c come from: via haproxy from
// haproxy's address, otherwise from the client's own address (and port,
// where the protocol reports it).
func checkPeer(t *testing.T, p proto, v variant, c Conn) {
	t.Helper()
	want := c.Local.String()
	switch {
	case v.name == "d-haproxy":
		want = serverAddrs[0].String()
		if p.peerPort {
			if ap, err := netip.ParseAddrPort(c.Peer); err == nil {
				c.Peer = ap.Addr().String()
			}
		}
	case !p.peerPort:
		want = c.Local.Addr().String()
	}
	if c.Peer != want {
		t.Errorf("%s: server %s saw the connection from %q, want %q", c.Dst, c.Server, c.Peer, want)
	}
}

// newConns sums v's new-connection counters over the servers that have v
// (0 for v nil).
func (l *lab) newConns(t *testing.T, v *clusterip.VIP) uint64 {
	t.Helper()
	var sum uint64
	if v == nil {
		return 0
	}
	for i, p := range l.planes {
		m, err := p.Counters(*v)
		if errors.Is(err, clusterip.ErrNotEnsured) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: Counters(%s): %v", serverNames[i], v, err)
		}
		for _, c := range m {
			sum += c.NewConns
		}
	}
	return sum
}

// clientNeigh returns the MAC the client's neighbour table holds for a.
func (l *lab) clientNeigh(t *testing.T, a netip.Addr) net.HardwareAddr {
	t.Helper()
	nl, err := l.client.OpenNetlink()
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	neighs, err := nl.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("%s: list neighbours: %v", l.client.Name, err)
	}
	for _, n := range neighs {
		if n.IP.Equal(a.AsSlice()) {
			return n.HardwareAddr
		}
	}
	return nil
}

// serverRx returns the packets each server's eth0 has received.
func (l *lab) serverRx(t *testing.T) []uint64 {
	t.Helper()
	var out []uint64
	for _, ns := range l.servers {
		h, err := ns.OpenNetlink()
		if err != nil {
			t.Fatal(err)
		}
		lk, err := h.LinkByName("eth0")
		h.Close()
		if err != nil {
			t.Fatalf("%s: eth0: %v", ns.Name, err)
		}
		out = append(out, lk.Attrs().Statistics.RxPackets)
	}
	return out
}
