// Package promtest checks loadshare's metrics for tests: in process, a
// collector's exposition and its promlint findings; and with Debian's real
// Prometheus tools, promtool check metrics on an exposition,
// prometheus-node-exporter with only its textfile collector, and a
// Prometheus server scraping given targets and answering PromQL through
// its HTTP API. Every tool listens on 127.0.0.1 at a free port, keeps its
// files in the test's temporary directory, and is killed by its pid when
// the test ends.
//
// The tools need the Debian packages prometheus (prometheus, promtool) and
// prometheus-node-exporter (test/install-deps.sh installs them); without
// them, and under go test -short, the test skips, saying why.
package promtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/mariadbtest"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Debian's paths of the tools.
const (
	PromtoolPath     = "/usr/bin/promtool"
	PrometheusPath   = "/usr/bin/prometheus"
	NodeExporterPath = "/usr/bin/prometheus-node-exporter"
)

// need skips t under -short or when the tool is not installed.
func need(t testing.TB, path, pkg string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("runs %s (-short)", filepath.Base(path))
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("needs %s (Debian package %s): %v", path, pkg, err)
	}
}

// Lint fails t on what promlint (promtool check metrics' rules, in
// process) reports of c's metrics.
func Lint(t testing.TB, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// Exposition is what cs serve: registered in a pedantic registry (which
// fails t on an inconsistent collector), gathered, in the text format.
func Exposition(t testing.TB, cs ...prometheus.Collector) []byte {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	return text.Bytes()
}

// CheckMetrics fails t with promtool's findings when text (the Prometheus
// text format) is not clean. Equivalent to: promtool check metrics < text
func CheckMetrics(t testing.TB, text []byte) {
	t.Helper()
	need(t, PromtoolPath, "prometheus")
	cmd := exec.Command(PromtoolPath, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// Host is where a long-lived tool runs and how the test reaches it. The
// zero Host is this one: the tool listens on 127.0.0.1 at a free port.
type Host struct {
	// Command returns name run on the host (e.g. inside a namespace); it
	// must exec the tool in place, so that its pid is the tool's. nil:
	// exec.Command.
	Command func(name string, args ...string) *exec.Cmd
	// Dial connects to what listens on the host; nil: a plain dial.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// IP to listen on, with the tool's default port (the host is a
	// namespace of the test's own); "": 127.0.0.1 at a free port.
	IP string
}

func (h Host) listen(t testing.TB, port int) string {
	t.Helper()
	if h.IP != "" {
		return net.JoinHostPort(h.IP, strconv.Itoa(port))
	}
	p, err := mariadbtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

func (h Host) httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if h.Dial != nil {
		tr.DialContext = h.Dial
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

// Start runs a long-lived tool on h, logging its output into t's log on
// failure, and kills it by its pid when t ends.
func (h Host) Start(t testing.TB, path string, args ...string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	if h.Command != nil {
		cmd = h.Command(path, args...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(path), tail(out.String(), 4000))
		}
	})
}

// WaitHTTP polls url until it answers 200, at most tries times 100 ms apart.
func (h Host) WaitHTTP(t testing.TB, url string, tries int) {
	t.Helper()
	c := h.httpClient()
	var last string
	for range tries {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200 (last: %s)", url, last)
}

// NodeExporter starts prometheus-node-exporter on this host with only
// the textfile collector, reading dir, and returns its host:port.
func NodeExporter(t testing.TB, dir string) string { return Host{}.NodeExporter(t, dir) }

// NodeExporter is NodeExporter on h (port 9100 with h.IP).
func (h Host) NodeExporter(t testing.TB, dir string) string {
	t.Helper()
	need(t, NodeExporterPath, "prometheus-node-exporter")
	addr := h.listen(t, 9100)
	h.Start(t, NodeExporterPath, "--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+dir, "--web.listen-address="+addr)
	h.WaitHTTP(t, "http://"+addr+"/metrics", 300)
	return addr
}

// Target is one scrape target and the labels Prometheus adds to its series.
type Target struct {
	Addr   string // host:port serving /metrics
	Labels map[string]string
}

// Server is a running Prometheus.
type Server struct {
	Addr string
	API  v1.API
}

// Prometheus starts a Prometheus on this host scraping targets every
// 500 ms, with its storage in a temporary directory, and returns it once
// ready.
func Prometheus(t testing.TB, targets ...Target) *Server { return Host{}.Prometheus(t, targets...) }

// Prometheus is Prometheus on h (port 9090 with h.IP).
func (h Host) Prometheus(t testing.TB, targets ...Target) *Server {
	t.Helper()
	need(t, PrometheusPath, "prometheus")
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: loadshare\n    static_configs:\n")
	for _, tg := range targets {
		fmt.Fprintf(&cfg, "      - targets: [%q]\n", tg.Addr)
		if len(tg.Labels) > 0 {
			cfg.WriteString("        labels:\n")
			for k, v := range tg.Labels {
				fmt.Fprintf(&cfg, "          %s: %q\n", k, v)
			}
		}
	}
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := h.listen(t, 9090)
	h.Start(t, PrometheusPath, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	h.WaitHTTP(t, "http://"+addr+"/-/ready", 600)
	c, err := api.NewClient(api.Config{Address: "http://" + addr, RoundTripper: h.httpClient().Transport})
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Addr: addr, API: v1.NewAPI(c)}
}

// Query evaluates an instant PromQL query that returns a vector.
func (s *Server) Query(t testing.TB, q string) model.Vector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, warnings, err := s.API.Query(ctx, q, time.Now())
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if len(warnings) > 0 {
		t.Logf("query %s: warnings %v", q, warnings)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		t.Fatalf("query %s: a %s, want a vector", q, v.Type())
	}
	return vec
}

// WaitQuery evaluates q every 250 ms until ok accepts the result, at most
// tries times, and returns the last result; ok false on the last try
// fails t with what the last result was.
func (s *Server) WaitQuery(t testing.TB, q string, tries int, ok func(model.Vector) bool) model.Vector {
	t.Helper()
	var vec model.Vector
	for range tries {
		if vec = s.Query(t, q); ok(vec) {
			return vec
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("query %s: after %d tries still %v", q, tries, vec)
	return vec
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
