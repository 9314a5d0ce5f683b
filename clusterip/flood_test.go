package clusterip

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/nstest"
)

// TestFloodProbe: three namespaces on one bridge run the flood check of
// one VIP; each probe is counted by the two others, under its sender's own
// MAC, and never by the sender; the cluster MAC stays joined while the
// check runs, also after the VIP's last bucket went, and RemoveFlood leaves
// nothing. Read back with nft and bridge, independently of the code.
func TestFloodProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("namespace test (-short)")
	}
	nstest.SkipUnlessRoot(t)
	for _, c := range []struct {
		mode MACMode
		addr netip.Addr
	}{{MACMulticast, vip4}, {MACUnicast, vip4}, {MACMulticast, vip6}} {
		mode := c.mode
		tag := mode.String()[:1]
		if c.addr.Is6() {
			tag = "6"
		}
		t.Run(mode.String()+"/"+c.addr.String(), func(t *testing.T) {
			sw := nstest.NewSwitch(t, "lsfl-"+tag+"sw")
			var planes []*Plane
			var nss []*nstest.NS
			for i := 1; i <= 3; i++ {
				ns := nstest.New(t, fmt.Sprintf("lsfl-%s%d", tag, i))
				sw.Plug(t, ns, "eth0", net.HardwareAddr{2, 0, 0, 0, 2, byte(i)},
					netip.MustParsePrefix(fmt.Sprintf("10.201.0.%d/24", 10+i)),
					netip.MustParsePrefix(fmt.Sprintf("fd00:201::%d/64", 10+i)))
				p, err := New(WithNetNS(int(ns.Handle)), WithRunDir(t.TempDir()), WithDrainGrace(0))
				if err != nil {
					t.Fatal(err)
				}
				planes, nss = append(planes, p), append(nss, ns)
			}
			v := VIP{Addr: c.addr, Link: "eth0", Buckets: 4, Seed: 7, MACMode: mode}
			var runDirs []string
			for i, p := range planes {
				if err := p.EnsureFlood(v); err != nil {
					t.Fatalf("EnsureFlood on %d: %v", i+1, err)
				}
				if err := p.EnsureFlood(v); err != nil {
					t.Fatalf("EnsureFlood again on %d: %v", i+1, err)
				}
				runDirs = append(runDirs, p.runDir)
			}
			if got, err := planes[0].FloodChecks(); err != nil || len(got) != 1 || got[0] != v.Addr {
				t.Errorf("FloodChecks = %v, %v, want [%s]", got, err, v.Addr)
			}
			if fs, _ := os.ReadDir(runDirs[0]); len(fs) != 0 {
				t.Errorf("EnsureFlood on a node serving no bucket left run files: %v", fs)
			}
			// Node 2 serves a bucket and releases it: the MAC stays joined.
			if err := planes[1].Ensure(v); err != nil {
				t.Fatal(err)
			}
			if err := planes[1].Own(v, 1); err != nil {
				t.Fatal(err)
			}
			if err := planes[1].Release(v, 1); err != nil {
				t.Fatal(err)
			}
			for round := 1; round <= 2; round++ {
				for i, p := range planes {
					if err := p.SendFloodProbe(v); err != nil {
						t.Fatalf("SendFloodProbe on %d: %v", i+1, err)
					}
				}
			}
			var heard map[string]uint64
			for i := 0; i < 20; i++ { // the bridge delivers in softirq; a few ms at most
				var err error
				if heard, err = planes[1].FloodHeard(v); err != nil {
					t.Fatal(err)
				}
				if len(heard) == 2 && heard["02:00:00:00:02:01"] == 2*FloodBurst && heard["02:00:00:00:02:03"] == 2*FloodBurst {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			want := map[string]uint64{"02:00:00:00:02:01": 2 * FloodBurst, "02:00:00:00:02:03": 2 * FloodBurst}
			if fmt.Sprint(heard) != fmt.Sprint(want) {
				t.Fatalf("FloodHeard on node 2 = %v, want %v (its own probes never)", heard, want)
			}
			out, err := nss[1].Command("nft", "list", "set", "netdev", FloodTableName(v), "peers").CombinedOutput()
			if err != nil || !strings.Contains(string(out), fmt.Sprintf("02:00:00:00:02:01 counter packets %d", 2*FloodBurst)) {
				t.Errorf("nft list set on node 2: %v\n%s", err, out)
			}
			if fdb := bridgeFDB(t, nss[1]); !strings.Contains(fdb, v.ClusterMAC().String()) {
				t.Errorf("node 2, flood check running, bucket released: cluster MAC %s not on eth0:\n%s", v.ClusterMAC(), fdb)
			}
			for _, p := range planes {
				if err := p.RemoveFlood(v); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range runDirs {
				if fs, _ := os.ReadDir(d); len(fs) != 0 {
					t.Errorf("after RemoveFlood, run files in %s: %v", d, fs)
				}
			}
			out, _ = nss[1].Command("nft", "list", "tables").CombinedOutput()
			if strings.Contains(string(out), "loadshare") {
				t.Errorf("after RemoveFlood, nft list tables on node 2:\n%s", out)
			}
			if fdb := bridgeFDB(t, nss[1]); strings.Contains(fdb, v.ClusterMAC().String()) {
				t.Errorf("after RemoveFlood: cluster MAC still on eth0:\n%s", fdb)
			}
		})
	}
}

func bridgeFDB(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns.Name, "bridge", "fdb", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("bridge fdb show: %v: %s", err, out)
	}
	return string(out)
}

func TestJudgeFlood(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := 6 * time.Second
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, c := range []struct {
		name string
		in   FloodInput
		want FloodVerdict
	}{
		{"heard recently", FloodInput{Now: at(60), Started: t0, LastHeard: at(58), Window: w, Confirm: w}, FloodReached},
		{"heard at the window's edge", FloodInput{Now: at(60), Started: t0, LastHeard: at(54), Window: w, Confirm: w, PeersReached: []string{"n1"}}, FloodReached},
		{"just started, nothing yet", FloodInput{Now: at(5), Started: t0, Unclaimed: t0, Window: w, Confirm: w, PeersReached: []string{"n1"}}, FloodUnknown},
		{"alone: no peer hears anyone", FloodInput{Now: at(60), Started: t0, Unclaimed: t0, Window: w, Confirm: w}, FloodNoneReached},
		{"everyone dark: heard long ago, no peer reached", FloodInput{Now: at(60), Started: t0, LastHeard: at(1), Unclaimed: at(8), Window: w, Confirm: w}, FloodNoneReached},
		{"silent, still claiming: withdraw first", FloodInput{Now: at(60), Started: t0, LastHeard: at(40), Window: w, Confirm: w, PeersReached: []string{"n1"}}, FloodUnknown},
		{"silent, claim withdrawn too recently", FloodInput{Now: at(60), Started: t0, LastHeard: at(40), Unclaimed: at(55), Window: w, Confirm: w, PeersReached: []string{"n1"}}, FloodUnknown},
		{"unreached: peers hear each other", FloodInput{Now: at(60), Started: t0, LastHeard: at(40), Unclaimed: at(47), Window: w, Confirm: w, PeersReached: []string{"n3", "n1"}}, FloodUnreached},
		{"never heard, a peer reached", FloodInput{Now: at(60), Started: t0, Unclaimed: t0, Window: w, Confirm: w, PeersReached: []string{"n1"}}, FloodUnreached},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, why := JudgeFlood(c.in)
			if got != c.want {
				t.Errorf("JudgeFlood(%+v) = %s (%s), want %s", c.in, got, why, c.want)
			}
		})
	}
}

func TestFloodTableAddr(t *testing.T) {
	for _, a := range []string{"10.201.0.100", "fd00:201::100", "::1", "fe80::1:2"} {
		v := VIP{Addr: netip.MustParseAddr(a)}
		if got, ok := floodTableAddr(FloodTableName(v)); !ok || got != v.Addr {
			t.Errorf("floodTableAddr(%q) = %v, %v, want %s", FloodTableName(v), got, ok, a)
		}
	}
	for _, n := range []string{"loadshare-10_201_0_100", "loadshare-flood-", "loadshare-flood-x_y", "other"} {
		if got, ok := floodTableAddr(n); ok {
			t.Errorf("floodTableAddr(%q) = %v, want no address", n, got)
		}
	}
}
