package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/mariadbtest"
	"github.com/loadshare/loadshare/test/promtest"
)

// TestMetricsCommand: on a node without Pacemaker, `loadshare metrics`
// prints the kernel's VIP (promtool check metrics clean), --textfile
// writes the same into DIR/loadshare.prom, and --listen serves it on
// /metrics until SIGTERM, then exits 0.
func TestMetricsCommand(t *testing.T) {
	ns, _, bin := vipNode(t, "lsE-metrics", 98)
	run := func(args ...string) *exec.Cmd {
		cmd := ns.Command(bin, append([]string{"metrics", "--run-dir", t.TempDir()}, args...)...)
		cmd.Env = append(cmd.Environ(), "PATH=/nonexistent") // no crm_mon: as on a node without Pacemaker
		return cmd
	}
	want := []string{
		`loadshare_kernel_up 1`,
		`loadshare_kernel_buckets_owned{address="10.205.98.100"} 2`,
		`loadshare_bucket_owned{address="10.205.98.100",bucket="3"} 1`,
		`loadshare_bucket_new_connections_total{address="10.205.98.100",bucket="0"} 0`,
		`loadshare_vip_dropped_packets_total{address="10.205.98.100",stage="ingress"} 0`,
		`loadshare_vip_address_present{address="10.205.98.100"} 1`,
		`loadshare_pacemaker_up 0`,
		`loadshare_placer_record_up 1`,
	}
	check := func(what string, text []byte) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(string(text), w+"\n") {
				t.Errorf("%s lacks %s:\n%s", what, w, text)
			}
		}
		promtest.CheckMetrics(t, text)
	}
	out, err := run().Output()
	if err != nil {
		t.Fatalf("loadshare metrics: %v\n%s", err, out)
	}
	check("loadshare metrics", out)

	dir := t.TempDir()
	if out, err := run("--textfile", dir).CombinedOutput(); err != nil {
		t.Fatalf("loadshare metrics --textfile: %v\n%s", err, out)
	}
	text, err := os.ReadFile(filepath.Join(dir, "loadshare.prom"))
	if err != nil {
		t.Fatal(err)
	}
	check("--textfile", text)

	err = run("--textfile", dir, "--listen", "127.0.0.1:1").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("--textfile with --listen: %v, want exit status 2", err)
	}

	port, err := mariadbtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port) // the namespace's own loopback
	srv := run("--listen", listen)
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.Contains(line, "serving http://"+listen+"/metrics") {
		t.Fatalf("--listen said %q (%v), want serving http://%s/metrics", line, err, listen)
	}
	go io.Copy(io.Discard, stderr)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (c net.Conn, err error) {
			err = ns.Do(func() (err error) { c, err = (&net.Dialer{}).DialContext(ctx, network, a); return err })
			return c, err
		}}}
	resp, err := hc.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check("--listen /metrics", body)
	if !strings.Contains(string(body), "process_cpu_seconds_total") {
		t.Errorf("--listen /metrics lacks the process's own metrics (process_cpu_seconds_total)")
	}
	srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Errorf("--listen after SIGTERM: %v, want exit status 0", err)
	}
}
