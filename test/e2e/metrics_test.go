package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/loadshare/loadshare/test/lab"
	"github.com/loadshare/loadshare/test/promtest"
)

// testMetrics runs on the lab testVIP leaves (its VIP placed by the
// placer, spread back): server_load gets metrics_textfile (its instances
// restart), every node runs node_exporter reading the textfile and
// `loadshare metrics --listen`, a Prometheus in the client's namespace
// scrapes the six, and PromQL returns through each delivery, per node,
// the buckets its kernel owns and Pacemaker runs there, and one DC.
func testMetrics(t *testing.T, l *lab.Lab, bin string) {
	ctx := context.Background()
	const dir = "/run/loadshare-metrics" // /run is private to each node
	for _, n := range l.Nodes() {
		if _, err := l.Exec(ctx, n, "mkdir", "-p", dir); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Exec(ctx, l.Nodes()[0], "crm_resource", "--resource", "server_load",
		"--set-parameter", "metrics_textfile", "--parameter-value", dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes() {
		waitFor(t, 60*time.Second, n+" writes "+dir+"/loadshare.prom", func() (bool, string) {
			out, err := l.Exec(ctx, n, "cat", dir+"/loadshare.prom")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(string(out), "loadshare_pacemaker_up 1\n") &&
				strings.Contains(string(out), "loadshare_kernel_buckets_owned{"), tail(string(out), 300)
		})
	}
	var targets []promtest.Target
	for _, n := range l.Nodes() {
		h := promtest.Host{
			Command: func(name string, args ...string) *exec.Cmd { return l.Command(ctx, n, name, args...) },
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return l.Dial(ctx, n, network, addr)
			},
			IP: l.Addr(n).String(),
		}
		targets = append(targets, promtest.Target{Addr: h.NodeExporter(t, dir),
			Labels: map[string]string{"lab_node": n, "delivery": "textfile"}})
		listen := net.JoinHostPort(l.Addr(n).String(), "9667")
		h.Start(t, filepath.Join(bin, "loadshare"), "metrics", "--listen", listen)
		h.WaitHTTP(t, "http://"+listen+"/metrics", 300)
		targets = append(targets, promtest.Target{Addr: listen, Labels: map[string]string{"lab_node": n, "delivery": "listen"}})
	}
	prom := promtest.Host{
		Command: func(name string, args ...string) *exec.Cmd { return l.ClientCommand(ctx, name, args...) },
		Dial:    l.DialClient,
		IP:      "127.0.0.1",
	}.Prometheus(t, targets...)

	// The kernels and Pacemaker as the lab reads them, and as Prometheus
	// shows them through both deliveries: equal once the textfiles (one
	// monitor, 2 s) and the scrapes (500 ms) have caught up.
	series := func(q string) map[string]float64 {
		m := map[string]float64{}
		for _, s := range prom.Query(t, q) {
			m[string(s.Metric["lab_node"])+"/"+string(s.Metric["delivery"])] = float64(s.Value)
		}
		return m
	}
	waitFor(t, 60*time.Second, "Prometheus's buckets per node equal to the kernels' and Pacemaker's", func() (bool, string) {
		tb, err := l.Buckets(ctx, l.Nodes()[0], buckets)
		if err != nil {
			return false, err.Error()
		}
		owned := series(`loadshare_kernel_buckets_owned{address="` + l.VIP().String() + `"}`)
		running := series(`loadshare_vip_buckets_running{vip="vip"}`)
		dc := series(`loadshare_node_dc`)
		var bad []string
		dcs := map[string]int{}
		for _, n := range l.Nodes() {
			for _, d := range []string{"textfile", "listen"} {
				k := n + "/" + d
				if g, ok := owned[k]; !ok || int(g) != len(tb.Kernel[n]) {
					bad = append(bad, fmt.Sprintf("%s owned %v, kernel %d", k, owned[k], len(tb.Kernel[n])))
				}
				if g, ok := running[k]; !ok || int(g) != len(tb.Pacemaker[n]) {
					bad = append(bad, fmt.Sprintf("%s running %v, Pacemaker %d", k, running[k], len(tb.Pacemaker[n])))
				}
				if dc[k] == 1 {
					dcs[d]++
				}
			}
		}
		if dcs["textfile"] != 1 || dcs["listen"] != 1 {
			bad = append(bad, fmt.Sprintf("DCs per delivery %v, want one each", dcs))
		}
		if len(bad) > 0 {
			return false, strings.Join(bad, "; ") + "\n" + tb.String()
		}
		t.Logf("Prometheus through node_exporter's textfile and --listen: buckets per node %v, as the kernels and Pacemaker hold them", tb.Counts(l.Nodes()))
		return true, ""
	})
	// The DC's placer rounds are counted, and by result.
	prom.WaitQuery(t, `sum(loadshare_placer_rounds_total{delivery="textfile",result=~"applied|balanced"})`, 40,
		func(v model.Vector) bool { return len(v) == 1 && v[0].Value > 0 })
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
