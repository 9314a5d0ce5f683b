package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/agents/serverload"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

func init() {
	register(command{
		name:    "metrics",
		summary: "this node's Prometheus metrics: print them, write a textfile, or serve /metrics",
		run:     runMetrics,
	})
}

const metricsUsage = `usage: loadshare metrics [--textfile DIR | --listen ADDR] [--run-dir DIR]

This node's metrics in the Prometheus text format: its kernel's VIPs
(buckets owned, per-bucket counters, drops, tracked connections, drain),
its Pacemaker attributes and bucket targets, and the placer's rounds.
Without flags it prints them. --textfile writes DIR/loadshare.prom for
node_exporter's textfile collector (atomically; the server_load agent's
metrics_textfile parameter does the same every monitor). --listen serves
them on http://ADDR/metrics until SIGTERM (needs root, as the reads do).`

func runMetrics(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("metrics", metricsUsage, stderr)
	textfile := fs.String("textfile", "", "write DIR/"+serverload.TextfileName+" instead of printing")
	listen := fs.String("listen", "", "serve /metrics on ADDR (host:port) instead of printing")
	runDir := fs.String("run-dir", attrs.NewEnv().RunDir, "the agents' state files (HA_RSCTMP), where the placer's record is")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *textfile != "" && *listen != "" {
		return fmt.Errorf("--textfile and --listen: give one: %w", errUsage)
	}
	if *textfile != "" {
		return serverload.WriteTextfile(*textfile, *runDir, nil)
	}
	reg, err := serverload.Metrics(*runDir, nil)
	if err != nil {
		return err
	}
	if *listen != "" {
		return serveMetrics(*listen, reg, stderr)
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(stdout, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// serveMetrics serves reg, with the process's own metrics, on addr until
// SIGINT or SIGTERM.
func serveMetrics(addr string, reg *prometheus.Registry, stderr io.Writer) error {
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, MaxRequestsInFlight: 2}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "loadshare metrics: /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "loadshare metrics: serving http://%s/metrics\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
