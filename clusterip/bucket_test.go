package clusterip

import (
	"net/netip"
	"testing"
)

// Vectors from the reference user-space replica
// (/work/shared/reference/dataplane/nfjhash.py), which matched the kernel
// 200/200; the namespace tests check BucketOf against the kernel itself.
func TestBucketOfVectors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		seed uint32
		n    uint16
		want Bucket
	}{
		{"reference lab", "10.99.0.50:40000", 0x5eed, 16, 5},
		{"1024 buckets", "10.201.0.50:12345", 1, 1024, 12},
		{"port 65535", "192.168.1.1:65535", 0xdeadbeef, 7, 2},
		{"port 1", "10.201.0.50:1", 42, 3, 1},
		{"ipv6", "[fd00:201::50]:40000", 0x5eed, 16, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := netip.MustParseAddrPort(tt.src)
			if got := BucketOf(src, tt.seed, tt.n); got != tt.want {
				t.Errorf("BucketOf(%s, %#x, %d) = %d, want %d", src, tt.seed, tt.n, got, tt.want)
			}
		})
	}
}
