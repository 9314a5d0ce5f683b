package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/crm"
)

// peerCIB is a 3-node configuration of VIP vip (12 buckets) whose status
// has n1 and n2 online and n3 offline.
func peerCIB(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("crm_mon"); err != nil {
		t.Skip("crm_mon not installed (Debian package pacemaker-cli-utils)")
	}
	x, err := crm.Spec{IP: netip.MustParseAddr("10.204.0.100"), Buckets: 12, Nodes: []string{"n1", "n2", "n3"}}.XML()
	if err != nil {
		t.Fatal(err)
	}
	var st strings.Builder
	st.WriteString("<status>")
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(&st, `<node_state id="%d" uname="n%d" in_ccm="true" crmd="online" crm-debug-origin="t" join="member" expected="member"/>`, i, i)
	}
	st.WriteString("</status>")
	f := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(f, bytes.Replace(x, []byte("<status/>"), []byte(st.String()), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// kernelText is a node's exposition owning buckets of 10.204.0.100.
func kernelText(owned ...int) string {
	var b strings.Builder
	b.WriteString("# TYPE loadshare_kernel_up gauge\nloadshare_kernel_up 1\n")
	b.WriteString("# TYPE loadshare_kernel_buckets gauge\nloadshare_kernel_buckets{address=\"10.204.0.100\"} 12\n")
	b.WriteString("# TYPE loadshare_bucket_owned gauge\n")
	for k := 0; k < 12; k++ {
		v := 0
		for _, o := range owned {
			if o == k {
				v = 1
			}
		}
		fmt.Fprintf(&b, "loadshare_bucket_owned{address=\"10.204.0.100\",bucket=\"%d\"} %d\n", k, v)
	}
	b.WriteString("# TYPE loadshare_bucket_new_connections_total counter\n")
	fmt.Fprintf(&b, "loadshare_bucket_new_connections_total{address=\"10.204.0.100\",bucket=\"%d\"} 7\n", owned[0])
	return b.String()
}

// TestStatusPeers: with --peers, status reads every other online node's
// kernel from its metrics endpoint over HTTP and names the buckets no
// kernel or two kernels own; a node whose endpoint fails means ownership
// is not checked, and the view says so. --watch with --count refreshes.
func TestStatusPeers(t *testing.T) {
	cib := peerCIB(t)
	fail := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node := strings.Split(strings.Trim(r.URL.Path, "/"), "/")[0]
		switch {
		case fail[node]:
			http.Error(w, "down", http.StatusInternalServerError)
		case node == "n1":
			fmt.Fprint(w, kernelText(0, 1, 2, 3, 4, 5))
		case node == "n2":
			fmt.Fprint(w, kernelText(5, 6, 7, 8, 9, 10))
		default:
			t.Errorf("scraped %s, which is offline", r.URL.Path)
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	peers := srv.URL + "/{node}/metrics"

	var out, errOut bytes.Buffer
	if code := cli([]string{"status", "--file", cib, "--peers", peers, "--output", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("status --peers: exit %d: %s", code, errOut.String())
	}
	var v statusView
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Peers) != 2 || v.Peers[0].Node != "n1" || v.Peers[1].Node != "n2" || len(v.Peers[0].VIPs) != 1 || v.Peers[0].VIPs[0].NewConns != 7 {
		t.Errorf("peers %+v, want n1 and n2 read (n3 is offline)", v.Peers)
	}
	want := []ownerProblem{{VIP: "10.204.0.100", Bucket: 5, Nodes: []string{"n1", "n2"}}, {VIP: "10.204.0.100", Bucket: 11, Nodes: []string{}}}
	if !v.OwnersChecked || !reflect.DeepEqual(v.Owners, want) {
		t.Errorf("owners checked %v: %+v, want %+v", v.OwnersChecked, v.Owners, want)
	}

	out.Reset()
	cli([]string{"status", "--file", cib, "--peers", peers}, &out, &errOut)
	for _, line := range []string{
		"kernel on n1: 10.204.0.100 owns 6/12 buckets 0-5",
		"kernels: 10.204.0.100 bucket 5 owned by n1 and n2 (TWICE)",
		"kernels: 10.204.0.100 bucket 11 owned by no node (DARK)",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("status text lacks %q:\n%s", line, out.String())
		}
	}

	fail["n2"] = true
	out.Reset()
	cli([]string{"status", "--file", cib, "--peers", peers}, &out, &errOut)
	for _, line := range []string{"kernel on n2: not read from " + srv.URL + "/n2/metrics: HTTP 500", "kernels: not every online node read; ownership not checked"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("n2's endpoint failing: status text lacks %q:\n%s", line, out.String())
		}
	}

	out.Reset()
	if code := cli([]string{"status", "--file", cib, "--peer", "n1=" + srv.URL + "/n1/metrics", "--watch", "100ms", "--count", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("--watch --count 2: exit %d: %s", code, errOut.String())
	}
	if n := strings.Count(out.String(), "\033[H\033[2J"); n != 2 || strings.Count(out.String(), "kernel on n1:") != 2 {
		t.Errorf("--watch --count 2 drew %d views:\n%q", n, out.String())
	}
}

func TestStatusPeersUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--peers", "http://n1:9667/metrics"}, "want a URL with {node}"},
		{[]string{"--peer", "n1"}, "want NODE=http://HOST:PORT/metrics"},
		{[]string{"--count", "3"}, "--count needs --watch"},
		{[]string{"--watch", "1s", "--output", "json"}, "--watch shows text"},
		{[]string{"--watch", "1ms"}, "want at least 100ms"},
	} {
		var out, errOut bytes.Buffer
		if code := cli(append([]string{"status"}, tc.args...), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("status %v: exit %d, %q; want 2 and %q", tc.args, code, errOut.String(), tc.msg)
		}
	}
}
