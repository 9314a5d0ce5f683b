package crm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/crm/crmtest"
)

// fakeAttrdUpdater is crmtest.FakeAttrdUpdater in a directory of its own.
func fakeAttrdUpdater(t *testing.T) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	return crmtest.FakeAttrdUpdater(t, dir), dir
}

func lastArgv(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func TestAttrdUpdater(t *testing.T) {
	path, dir := fakeAttrdUpdater(t)
	a := &AttrdUpdater{Path: path}
	ctx := context.Background()

	if _, ok, err := a.Get(ctx, "server_load"); ok || err != nil {
		t.Fatalf("Get(server_load) before any Set = ok %v, err %v; want false, nil", ok, err)
	}
	if err := a.Set(ctx, "server_load", "40", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := lastArgv(t, dir), "-n server_load -B 40 -d 5s"; got != want {
		t.Errorf("Set(server_load, 40, 5s) ran %q, want %q", got, want)
	}
	if v, ok, err := a.Get(ctx, "server_load"); v != "40" || !ok || err != nil {
		t.Errorf("Get(server_load) = %q, %v, %v; want 40, true, nil", v, ok, err)
	}
	if got, want := lastArgv(t, dir), "-n server_load -Q"; got != want {
		t.Errorf("Get ran %q, want %q", got, want)
	}
	if err := a.Set(ctx, "writable_monit", "1", 0); err != nil {
		t.Fatal(err)
	}
	if got, want := lastArgv(t, dir), "-n writable_monit -U 1"; got != want {
		t.Errorf("Set without delay ran %q, want %q", got, want)
	}
	if err := a.Set(ctx, "x", "1", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, want := lastArgv(t, dir), "-n x -B 1 -d 1500ms"; got != want {
		t.Errorf("Set with 1.5s ran %q, want %q", got, want)
	}
	if err := a.Delete(ctx, "server_load"); err != nil {
		t.Fatal(err)
	}
	if got, want := lastArgv(t, dir), "-n server_load -D"; got != want {
		t.Errorf("Delete ran %q, want %q", got, want)
	}
	if v, ok, err := a.Get(ctx, "server_load"); ok || err != nil {
		t.Errorf("Get after Delete = %q, %v, %v; want not ok", v, ok, err)
	}

	other := &AttrdUpdater{Path: path, Node: "n2"}
	other.Set(ctx, "server_load", "5", 0)
	if got, want := lastArgv(t, dir), "-n server_load -U 5 -N n2"; got != want {
		t.Errorf("Set on node n2 ran %q, want %q", got, want)
	}

	os.WriteFile(filepath.Join(dir, "down"), nil, 0o644)
	err := a.Set(ctx, "server_load", "45", 0)
	var ae *ToolError
	if !errors.As(err, &ae) || !ae.IsNotConnected() || ae.IsNotExist() {
		t.Fatalf("Set with attrd down = %v, want *ToolError IsNotConnected", err)
	}
	want := "running [" + path + " -n server_load -U 45]: exit status 102: attrd_updater: Could not connect to attrd: Connection refused"
	if err.Error() != want {
		t.Errorf("error text:\n got %s\nwant %s", err, want)
	}
}

// TestAttrdUpdaterNoPacemaker runs the real attrd_updater where no
// pacemaker-attrd runs (the test's normal situation outside the lab).
func TestAttrdUpdaterNoPacemaker(t *testing.T) {
	if _, err := exec.LookPath("attrd_updater"); err != nil {
		t.Skip("attrd_updater not installed (Debian package pacemaker-cli-utils)")
	}
	if exec.Command("pidof", "pacemaker-attrd").Run() == nil {
		t.Skip("pacemaker-attrd runs on this machine; not touching its attributes")
	}
	err := (&AttrdUpdater{}).Set(context.Background(), "loadshare_test", "1", time.Second)
	var ae *ToolError
	if !errors.As(err, &ae) || !ae.IsNotConnected() {
		t.Fatalf("Set without pacemaker = %v, want a *ToolError that IsNotConnected", err)
	}
	if !strings.HasPrefix(err.Error(), "running [attrd_updater -n loadshare_test -B 1 -d 1s]: exit status 102: ") {
		t.Errorf("error text %q lacks argv and status", err)
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want string
		ok   bool
	}{
		{`name="server_load" host="n1" value="40"` + "\n", "40", true},
		{`name="a" host="n1" value=""`, "", true},
		{`name="a" host="n1" value="x \"y\""`, `x "y"`, true},
		{`scope="status" name="a" host="n1" value="7"`, "7", true},
		{"garbage", "", false},
	} {
		got, ok := parseQuery([]byte(tc.out))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseQuery(%q) = %q, %v; want %q, %v", tc.out, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseQueryAll(t *testing.T) {
	out := `name="flood_vip" host="n1" value="1"
name="flood_vip" host="n2" value="0"
name="flood_vip" host="n3" value=""
`
	got := parseQueryAll([]byte(out))
	if fmt.Sprint(got) != "map[n1:1 n2:0]" {
		t.Errorf("parseQueryAll(%q) = %v, want map[n1:1 n2:0]", out, got)
	}
}
