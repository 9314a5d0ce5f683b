package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/lab"
)

// TestFlood is the switch fault of issue 16: the lab's bridge stops
// delivering the VIP's cluster MAC frames to n2 (lab.Unflood). n2 stays in
// the cluster, Pacemaker shows its buckets Started, and the clients hashed
// to them get no answer; the fault removed, every connection is answered
// again.
func TestFlood(t *testing.T) {
	bin := buildBinaries(t)
	l := newLab(t, lab.Config{Agents: bin, DB: lab.DBStandalone})
	ctx := context.Background()
	if err := l.ConfigureService(ctx, "n1", buckets, lab.ByPlacer); err != nil {
		t.Fatal(err)
	}
	v := vipLab{l, t}
	for _, n := range l.Nodes() {
		v.waitAttr(n, "writable_monit", "1")
	}
	v.waitSpread(90*time.Second, 4, 4, 4)
	v.answerAll(300, l.Nodes()...)

	if err := l.Unflood("n2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Reflood("n2") })
	if got, err := l.Unflooded(); err != nil || len(got) != 1 || got[0] != "n2" {
		t.Fatalf("Unflooded() = %v, %v; want [n2]", got, err)
	}
	s := l.Load(ctx, l.VIP(), 150, 16, 60*time.Second)
	t.Logf("n2 unflooded: 150 connections to the VIP: %s (last error %v)", s, s.LastErr)
	if s.Answers["n2"] != 0 || s.Errors == 0 {
		t.Fatalf("n2 unflooded: %s, want none answered by n2 and its buckets' clients unanswered", s)
	}

	if err := l.Reflood("n2"); err != nil {
		t.Fatal(err)
	}
	v.answerAll(300, l.Nodes()...)
}
