package metrics

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/loadshare/loadshare/test/promtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
)

const labPort = 7000

// TestPrometheusSeesTheKernel: two servers share a VIP in namespaces
// (s1 owns buckets 0-3, s2 4-7), a client makes 120 connections; then
// Debian's Prometheus scrapes s1 through node_exporter's textfile
// collector (the server_load agent's delivery) and s2 through a /metrics
// handler (loadshare metrics --listen's), and PromQL returns what the two
// kernels hold: owned buckets, new connections per bucket, ingress drops.
func TestPrometheusSeesTheKernel(t *testing.T) {
	nstest.SkipShort(t, "namespace lab with Prometheus")
	v := clusterip.VIP{Addr: netip.MustParseAddr("10.204.0.100"), Link: "eth0", Buckets: 8, Seed: 0x5eed}
	owners := [][]clusterip.Bucket{{0, 1, 2, 3}, {4, 5, 6, 7}}
	sw := nstest.NewSwitch(t, "lsmx-sw")
	var planes []*clusterip.Plane
	for i, bs := range owners {
		name := fmt.Sprintf("s%d", i+1)
		ns := nstest.New(t, "lsmx-"+name)
		sw.Plug(t, ns, "eth0", net.HardwareAddr{2, 0, 0, 0, 4, byte(i + 1)}, netip.MustParsePrefix(fmt.Sprintf("10.204.0.%d/16", 11+i)))
		p, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendNFTables),
			clusterip.WithRunDir(t.TempDir()), clusterip.WithDrainGrace(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Own(v, bs...); err != nil {
			t.Fatalf("%s: Own(%v): %v", name, bs, err)
		}
		t.Cleanup(func() { p.Remove(v) })
		serve(t, ns, name)
		planes = append(planes, p)
	}
	client := nstest.New(t, "lsmx-c")
	sw.Plug(t, client, "eth0", net.HardwareAddr{2, 0, 0, 0, 4, 0x50}, netip.MustParsePrefix("10.204.0.50/16"))
	const conns = 120
	for i := range conns {
		src := netip.AddrPortFrom(netip.MustParseAddr("10.204.0.50"), uint16(30000+i))
		want := "s1"
		if v.BucketOf(src) >= 4 {
			want = "s2"
		}
		if got, err := ask(client, src, netip.AddrPortFrom(v.Addr, labPort)); err != nil || got != want {
			t.Fatalf("connection from %s (bucket %d): answered by %q (%v), want %s", src, v.BucketOf(src), got, err, want)
		}
	}

	// s1: the textfile, read by node_exporter; s2: a /metrics handler.
	dir := t.TempDir()
	reg1 := prometheus.NewPedanticRegistry()
	reg1.MustRegister(&Kernel{Plane: planes[0]})
	file := filepath.Join(dir, "loadshare.prom")
	if err := prometheus.WriteToTextfile(file, reg1); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	promtest.CheckMetrics(t, text)
	ne := promtest.NodeExporter(t, dir)
	reg2 := prometheus.NewPedanticRegistry()
	reg2.MustRegister(&Kernel{Plane: planes[1]})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg2, promhttp.HandlerOpts{EnableOpenMetrics: true})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	prom := promtest.Prometheus(t,
		promtest.Target{Addr: ne, Labels: map[string]string{"server": "s1"}},
		promtest.Target{Addr: ln.Addr().String(), Labels: map[string]string{"server": "s2"}})

	byServer := func(vec model.Vector) map[string]model.Vector {
		m := map[string]model.Vector{}
		for _, s := range vec {
			m[string(s.Metric["server"])] = append(m[string(s.Metric["server"])], s)
		}
		return m
	}
	both := func(vec model.Vector) bool { return len(byServer(vec)) == 2 }
	owned := prom.WaitQuery(t, "loadshare_kernel_buckets_owned", 120, both)
	perBucket := byServer(prom.WaitQuery(t, "loadshare_bucket_new_connections_total", 120, both))
	drops := byServer(prom.WaitQuery(t, `loadshare_vip_dropped_packets_total{stage="ingress"}`, 120, both))
	total := 0.0
	for i, p := range planes {
		name := fmt.Sprintf("s%d", i+1)
		st, err := p.StatusOf(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range owned {
			if string(s.Metric["server"]) == name && int(s.Value) != len(st.Owned) {
				t.Errorf("%s: loadshare_kernel_buckets_owned = %v, the kernel owns %d (%v)", name, s.Value, len(st.Owned), st.Owned)
			}
		}
		cs, err := p.Counters(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(perBucket[name]) != int(v.Buckets) {
			t.Errorf("%s: %d series of loadshare_bucket_new_connections_total, want one per bucket (%d)", name, len(perBucket[name]), v.Buckets)
		}
		for _, s := range perBucket[name] {
			b, _ := strconv.Atoi(string(s.Metric["bucket"]))
			if want := cs[clusterip.Bucket(b)].NewConns; uint64(s.Value) != want {
				t.Errorf("%s: loadshare_bucket_new_connections_total{bucket=%q} = %v, the kernel counts %d", name, s.Metric["bucket"], s.Value, want)
			}
			total += float64(s.Value)
		}
		d, err := p.Dropped(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(drops[name]) != 1 || uint64(drops[name][0].Value) != d.Ingress || d.Ingress == 0 {
			t.Errorf("%s: ingress drops in Prometheus %v, the kernel counts %d (want > 0: the other server's frames are flooded here)", name, drops[name], d.Ingress)
		}
		var nc uint64
		for _, c := range cs {
			nc += c.NewConns
		}
		t.Logf("%s: kernel owns %v, counted %d new connections, dropped %d frames at ingress; Prometheus agrees", name, st.Owned, nc, d.Ingress)
	}
	if total != conns {
		t.Errorf("new connections over both servers in Prometheus = %v, want %d", total, conns)
	}
}

// serve answers connections to labPort in ns with its name (nstest.ServeName).
func serve(t *testing.T, ns *nstest.NS, name string) { nstest.ServeName(t, ns, labPort, name) }

// ask connects from src in ns to dst and returns the name the server sent.
func ask(ns *nstest.NS, src, dst netip.AddrPort) (string, error) { return nstest.Ask(ns, src, dst) }

// TestScrapeCommitsNothing: a scrape reads the kernel and writes nothing
// to nftables, so it never moves the ruleset generation that every
// clustervip monitor's cache is keyed by. `nft monitor` in the namespace
// (an independent reader) sees the test's two marker tables and nothing
// between them while three scrapes run.
func TestScrapeCommitsNothing(t *testing.T) {
	nstest.SkipShort(t, "namespace test")
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skipf("needs nft (Debian package nftables): %v", err)
	}
	ns := nstest.New(t, "lsmx-gen")
	sw := nstest.NewSwitch(t, "lsmx-gensw")
	sw.Plug(t, ns, "eth0", nil, netip.MustParsePrefix("10.204.1.11/24"))
	v := clusterip.VIP{Addr: netip.MustParseAddr("10.204.1.100"), Link: "eth0", Buckets: 4, Seed: 9}
	p, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendNFTables),
		clusterip.WithRunDir(t.TempDir()), clusterip.WithDrainGrace(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Own(v, 0, 2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Remove(v) })

	// stdbuf: nft writes events through stdio, block-buffered into a pipe.
	mon := ns.Command("stdbuf", "-oL", "nft", "monitor")
	out, err := mon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Process.Kill(); mon.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// next returns the monitor's next line, false after d of silence.
	next := func(d time.Duration) (string, bool) {
		select {
		case l, ok := <-lines:
			return l, ok
		case <-time.After(d):
			return "", false
		}
	}
	nft := func(args ...string) {
		t.Helper()
		if out, err := ns.Command("nft", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v: %v\n%s", args, err, out)
		}
	}
	// A marker table, added until the monitor shows one (it listens from
	// then on), then silence: the marker's own lines are behind us.
	listening := false
	for i := 0; i < 20 && !listening; i++ {
		nft("add", "table", "inet", fmt.Sprintf("lsmx-m%d", i))
		_, listening = next(200 * time.Millisecond)
	}
	if !listening {
		t.Fatal("nft monitor showed none of 20 marker tables")
	}
	for {
		if _, ok := next(300 * time.Millisecond); !ok {
			break
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&Kernel{Plane: p})
	for range 3 {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	nft("delete", "table", "inet", "lsmx-m0")
	var between []string
	for range 20 {
		l, ok := next(2 * time.Second)
		if !ok {
			t.Fatal("nft monitor did not show the marker's delete")
		}
		if strings.Contains(l, "delete table inet lsmx-m0") {
			break
		}
		between = append(between, l)
	}
	if len(between) > 0 {
		t.Errorf("scrapes changed nftables: nft monitor showed %q", between)
	}
}
