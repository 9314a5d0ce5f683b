package attrs

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm/crmtest"
)

// A respawned pacemaker-attrd holds none of the node's attributes: the
// next Publish writes every value again, though none changed. After a
// respawned pacemaker-controld (the DC erased the node's attributes from
// the CIB, attrd still holds them) it asks attrd to resend them.
func TestPublishAgainAfterAttrdRestart(t *testing.T) {
	fake := &crmtest.Attrs{}
	stamp, ctl := "100@5000", "101@5001"
	e := Env{Attrs: fake, RunDir: t.TempDir(), Now: time.Now, Daemons: func() (string, string) { return stamp, ctl }}
	p := ocf.Params{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st := &Published{}
	values := map[string]string{"writable_monit": "1", "loadshare_version": "v1"}
	publish := func() []string {
		t.Helper()
		if _, err := e.Publish(context.Background(), p, st, values, 0, false); err != nil {
			t.Fatal(err)
		}
		return fake.TakeCalls()
	}
	if got := publish(); len(got) != 2 {
		t.Fatalf("first publish: attrd calls %q, want both values", got)
	}
	if got := publish(); len(got) != 0 {
		t.Fatalf("unchanged values, same attrd: attrd calls %q, want none", got)
	}
	stamp = "131@9000" // attrd killed and respawned
	got := publish()
	slices.Sort(got)
	if len(got) != 2 || !strings.HasPrefix(got[0], "set loadshare_version=v1") || !strings.HasPrefix(got[1], "set writable_monit=1") {
		t.Fatalf("after attrd restarted: attrd calls %q, want both values again", got)
	}
	if got := publish(); len(got) != 0 {
		t.Fatalf("then unchanged: attrd calls %q, want none", got)
	}
	ctl = "140@9900" // controld killed and respawned: the DC erased the CIB's copy
	if got := publish(); !slices.Equal(got, []string{"refresh"}) {
		t.Fatalf("after controld restarted: attrd calls %q, want one refresh", got)
	}
	if got := publish(); len(got) != 0 {
		t.Fatalf("then unchanged: attrd calls %q, want none", got)
	}
	stamp = "" // attrd not found (between its death and respawn): no write of its own
	if got := publish(); len(got) != 0 {
		t.Fatalf("attrd not found: attrd calls %q, want none", got)
	}
}
