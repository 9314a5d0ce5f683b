package dpbench

import "testing"

// checkVIPOwner checks that a VIP connection was answered by the server
// owning its bucket, as clusterip.BucketOf (the kernel's jhash) predicts.
func checkVIPOwner(t *testing.T, v variant, c Conn) {
	t.Helper()
	b := v.vip.BucketOf(c.Local)
	if want := serverNames[ownerOf(int(b))]; c.Server != want {
		t.Errorf("%s from %s: bucket %d of %d, answered by %q, want its owner %q", c.Dst, c.Local, b, v.vip.Buckets, c.Server, want)
	}
}
