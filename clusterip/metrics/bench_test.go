package metrics

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkScrape is one scrape of a node's kernel metrics (what every
// server_load monitor with metrics_textfile adds) with 0, 1000 and 8000
// connections to the VIP open: Status dumps the conntrack table to count
// the VIP's tracked connections, so the cost grows with the table.
func BenchmarkScrape(b *testing.B) {
	nstest.SkipUnlessRoot(b)
	v := clusterip.VIP{Addr: netip.MustParseAddr("10.204.2.100"), Link: "eth0", Buckets: 64, Seed: 3}
	sw := nstest.NewSwitch(b, "lsmx-bsw")
	srv := nstest.New(b, "lsmx-bs")
	cli := nstest.New(b, "lsmx-bc")
	sw.Plug(b, srv, "eth0", nil, netip.MustParsePrefix("10.204.2.11/24"))
	sw.Plug(b, cli, "eth0", nil, netip.MustParsePrefix("10.204.2.50/24"))
	p, err := clusterip.New(clusterip.WithNetNS(int(srv.Handle)), clusterip.WithBackend(clusterip.BackendNFTables),
		clusterip.WithRunDir(b.TempDir()), clusterip.WithDrainGrace(0))
	if err != nil {
		b.Fatal(err)
	}
	all := make([]clusterip.Bucket, v.Buckets)
	for i := range all {
		all[i] = clusterip.Bucket(i)
	}
	if err := p.Own(v, all...); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Remove(v) })
	var ln net.Listener
	if err := srv.Do(func() (err error) { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", labPort)); return err }); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	var open []net.Conn
	b.Cleanup(func() {
		ln.Close()
		for _, c := range open {
			c.Close()
		}
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&Kernel{Plane: p})
	for _, n := range []int{0, 1000, 8000} {
		for len(open) < n {
			var c net.Conn
			err := cli.Do(func() (err error) { c, err = net.Dial("tcp", netip.AddrPortFrom(v.Addr, labPort).String()); return err })
			if err != nil {
				b.Fatalf("connection %d: %v", len(open), err)
			}
			open = append(open, c)
		}
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
			st, _ := p.StatusOf(v)
			b.ReportMetric(float64(st.Tracked), "tracked")
		})
	}
}
