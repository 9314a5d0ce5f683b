package clustervip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/test/nstest"
)

// TestFloodCheckAgent runs clustervip flood_check=vip on a node whose link
// delivers no other node's probe, while attrd (a fake attrd_updater that
// logs its arguments) says another node, peer1, hears probes: the first
// monitors publish nothing (the window has not passed), then the node says
// flood_vip=0, once, dampened; stop deletes it and leaves no table, cluster
// MAC or state file.
func TestFloodCheckAgent(t *testing.T) {
	nstest.SkipUnlessRoot(t)
	ns := agenttest.NodeNS(t, "lsmg-flood", monitorAddrs...)
	path := agenttest.Path(t, "clustervip")
	dir := t.TempDir()
	log := filepath.Join(dir, "attrd.log")
	fake := filepath.Join(dir, "attrd_updater")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\ncase \"$*\" in *'-Q -A'*) echo 'name=\"flood_vip\" host=\"peer1\" value=\"1\"';; esac\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OCF_ROOT":                    "/usr/lib/ocf",
		"OCF_RESOURCE_INSTANCE":       "vip-flood:0",
		"OCF_RESKEY_ip":               "10.205.0.100",
		"OCF_RESKEY_nic":              "eth0",
		"OCF_RESKEY_flood_check":      "vip",
		"OCF_RESKEY_flood_window":     "2",
		"OCF_RESKEY_CRM_meta_timeout": "20000",
		"OCF_RESKEY_CRM_meta_on_node": "self",
		"HA_RSCTMP":                   dir,
		"LOADSHARE_ATTRD_UPDATER":     fake,
	}
	run := func(action string, interval string) {
		t.Helper()
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		if interval != "" {
			e["OCF_RESKEY_CRM_meta_interval"] = interval
		}
		if r := agenttest.Run(t, ns, path, action, e); r.Code != 0 {
			t.Fatalf("%s = %d: %s", action, r.Code, r.Stderr)
		}
	}
	t.Cleanup(func() { agenttest.Run(t, ns, path, "stop", env) })
	if r := agenttest.Run(t, ns, path, "monitor", env); r.Code != 7 {
		t.Fatalf("probe before start = %d, want 7 (not running): %s", r.Code, r.Stderr)
	}
	run("start", "")
	state := filepath.Join(dir, "loadshare-clustervip-vip-flood:0.state") // attrs.Env.StatePath
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("after start, the state file: %v", err)
	}
	run("monitor", "") // a probe: running, nothing judged
	out, err := ns.Command("nft", "list", "table", "netdev", "loadshare-flood-10_205_0_100").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "update @peers") {
		t.Fatalf("after start, nft list table: %v\n%s", err, out)
	}
	// Window: 2 monitors of 500 ms. Bounded: 8 monitors, 4 s.
	var attrd string
	for i := 0; i < 8 && !strings.Contains(attrd, "-B 0"); i++ {
		run("monitor", "500")
		b, _ := os.ReadFile(log)
		attrd = string(b)
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(attrd, "-n flood_vip -B 0 -d 5s") {
		t.Fatalf("attrd_updater calls, want flood_vip set to 0 with dampening:\n%s", attrd)
	}
	if n := strings.Count(attrd, "-B "); n != 1 {
		t.Errorf("flood_vip written %d times, want once (only on change):\n%s", n, attrd)
	}
	run("monitor", "500")
	run("stop", "")
	b, _ := os.ReadFile(log)
	if !strings.HasSuffix(strings.TrimSpace(string(b)), "-n flood_vip -D") {
		t.Errorf("stop: attrd_updater calls end without deleting flood_vip:\n%s", b)
	}
	out, _ = ns.Command("nft", "list", "tables").CombinedOutput()
	if strings.Contains(string(out), "loadshare") {
		t.Errorf("after stop, nft list tables:\n%s", out)
	}
	if fdb := bridgeFDBOf(t, ns); strings.Contains(fdb, "01:00:5e:4d:00:64") {
		t.Errorf("after stop, the cluster MAC is still on eth0:\n%s", fdb)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("after stop, the state file: %v", err)
	}
}

func bridgeFDBOf(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	out, err := ns.Command("bridge", "fdb", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("bridge fdb show: %v: %s", err, out)
	}
	return string(out)
}
