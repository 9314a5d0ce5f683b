package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/test/nstest"
)

func TestBenchFlagErrorsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--protocol", "udp"},
		{"bench", "--rounds", "0"},
		{"bench", "--conns", "-1"},
		{"bench", "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := cli(args, &out, &errOut); code != 2 {
			t.Errorf("cli(%q) = %d, want 2 (usage); stderr %q", args, code, errOut.String())
		}
	}
}

// TestBenchEndToEnd runs `loadshare bench --rounds 1 --conns 50` as an
// operator would: the table must list every variant, each answered, and
// the lab must be gone afterwards.
func TestBenchEndToEnd(t *testing.T) {
	nstest.SkipShort(t, "builds a namespace lab with haproxy")
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skipf("haproxy not installed (Debian package haproxy): %v", err)
	}
	// A prefix of its own: the dpbench package's tests may run at the same time.
	const prefix = "lsdb-t"
	var out, errOut bytes.Buffer
	code := cli([]string{"bench", "--rounds", "1", "--conns", "50", "--netns-prefix", prefix}, &out, &errOut)
	t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	if code != 0 {
		t.Fatalf("loadshare bench exited %d, want 0", code)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	for _, v := range []string{"a-direct", "b-spread", "c-vip16", "c-vip1024", "d-haproxy", "e-vip-noflood"} {
		f, ok := rows[v]
		if !ok {
			t.Errorf("no table row for variant %s", v)
			continue
		}
		// variant conns err connect request conn/s noise answers(s1/s2/s3)
		if len(f) != 8 || f[1] != "50" || f[2] != "0" {
			t.Errorf("row %q: want 50 connections, 0 errors, 8 columns", strings.Join(f, " "))
			continue
		}
		sum := 0
		for _, n := range strings.Split(f[7], "/") {
			var k int
			if _, err := fmt.Sscan(n, &k); err != nil {
				t.Errorf("row %q: answers %q: %v", v, f[7], err)
			}
			sum += k
		}
		if sum != 50 {
			t.Errorf("row %q: answers %s add up to %d, want 50", v, f[7], sum)
		}
	}
	for _, ratio := range []string{"vip/spread-p50", "vip-overhead/haproxy-overhead", "vip/haproxy-rate", "b1024/b16-p50"} {
		if f := rows[ratio]; len(f) == 0 || !(strings.HasSuffix(strings.Join(f, " "), " met")) {
			t.Errorf("no verdict line for %s", ratio)
		}
	}
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("netns %s left behind", e.Name())
		}
	}
}
