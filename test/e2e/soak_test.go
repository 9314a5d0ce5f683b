package e2e

import (
	"bytes"
	"context"
	"testing"

	"github.com/loadshare/loadshare/test/lab"
)

// testSoak runs a short seeded campaign (lab soak) on the test's lab:
// seed 2's first four faults are a corosync kill (fenced, booted), an
// attrd kill (respawned), a bucket moved under a long-lived session and a
// read_only flip, each checked on every kernel after it settles and after
// the recovery. A longer one is `loadshare lab soak --faults 100`.
func testSoak(t *testing.T, l *lab.Lab) {
	var out bytes.Buffer
	rep, err := l.Soak(context.Background(), lab.SoakOptions{Faults: 4, Seed: 2, Out: &out})
	t.Logf("campaign:\n%s", out.String())
	if rep != nil {
		var tb bytes.Buffer
		rep.WriteTable(&tb)
		t.Logf("\n%s", tb.String())
		for _, v := range rep.Violations() {
			t.Errorf("invariant violated: %s", v)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
