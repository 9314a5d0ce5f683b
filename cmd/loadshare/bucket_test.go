package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBucketCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"reference vector", []string{"--buckets", "16", "--seed", "0x5eed", "10.99.0.50:40000"}, 0, "10.99.0.50:40000 bucket=5\n", ""},
		{"ipv6", []string{"--buckets=16", "--seed=0x5eed", "[fd00:201::50]:40000"}, 0, "[fd00:201::50]:40000 bucket=6\n", ""},
		{"owner", []string{"--buckets=16", "--seed=0x5eed", "--owner", "n1=0-4", "--owner", "n2=5,6", "10.99.0.50:40000"}, 0, "10.99.0.50:40000 bucket=5 node=n2\n", ""},
		{"unowned", []string{"--buckets=16", "--seed=0x5eed", "--owner", "n1=0", "10.99.0.50:40000"}, 0, "node=none", ""},
		{"sourceip address only", []string{"--buckets=8", "--seed=1", "--hash=sourceip", "10.0.0.1"}, 0, "10.0.0.1 bucket=", ""},
		{"zero seed", []string{"--buckets=16", "--seed=0", "10.0.0.1:1"}, 2, "", `seed="0"`},
		{"no buckets", []string{"--seed=1", "10.0.0.1:1"}, 2, "", "buckets=0"},
		{"bad hash", []string{"--buckets=2", "--seed=1", "--hash=md5", "10.0.0.1:1"}, 2, "", `hash="md5"`},
		{"port missing", []string{"--buckets=2", "--seed=1", "10.0.0.1"}, 2, "", `client "10.0.0.1"`},
		{"owner out of range", []string{"--buckets=2", "--seed=1", "--owner=n1=5", "10.0.0.1:1"}, 2, "", "owner bucket 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := cli(append([]string{"bucket"}, tt.args...), &out, &errOut)
			if code != tt.code {
				t.Fatalf("loadshare bucket %v = %d, want %d (stderr %q)", tt.args, code, tt.code, errOut.String())
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Errorf("loadshare bucket %v: stdout %q, want it to contain %q", tt.args, out.String(), tt.out)
			}
			if !strings.Contains(errOut.String(), tt.err) {
				t.Errorf("loadshare bucket %v: stderr %q, want it to contain %q", tt.args, errOut.String(), tt.err)
			}
		})
	}
}
