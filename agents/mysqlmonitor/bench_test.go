package mysqlmonitor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/crm/crmtest"

	"github.com/loadshare/loadshare/test/mariadbtest"
)

// The real binary, as Pacemaker runs it: one process per action, attrd via
// a stand-in attrd_updater (no Pacemaker here) or not at all
// (LOADSHARE_ATTRD_UPDATER=none, for the benchmark).

// runBinary runs "path action" with exactly env (plus PATH) where the test runs.
func runBinary(t testing.TB, path, action string, env map[string]string) agenttest.Result {
	t.Helper()
	return agenttest.Run(t, nil, path, action, env)
}

func TestMySQLMonitorBinary(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.Options{})
	srv.CreateUser(t, "mon", "pw", "SLAVE MONITOR ON *.*")
	dir := t.TempDir()
	env := map[string]string{
		attrs.EnvAttrd:                crmtest.FakeAttrdUpdater(t, dir),
		attrs.EnvRunDir:               filepath.Join(dir, "run"),
		"OCF_ROOT":                    "/usr/lib/ocf",
		"OCF_RESOURCE_INSTANCE":       "mysqlmon",
		"OCF_RESKEY_defaults_file":    srv.DefaultsFile("mon", "pw"),
		"OCF_RESKEY_publish_lag":      "true",
		"OCF_RESKEY_CRM_meta_timeout": "20000",
	}
	path := agenttest.Path(t, "mysql_monitor")
	if r := runBinary(t, path, "start", env); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Stderr)
	}
	if v := crmtest.ReadAttr(t, dir, attrWritable); v != "1" {
		t.Errorf("after start writable_monit=%s, want 1", v)
	}
	if v := crmtest.ReadAttr(t, dir, attrLag); v != "0" {
		t.Errorf("after start replication_lag=%s, want 0 (no replica)", v)
	}

	// One monitor = one connection and ONE query, seen by the server.
	stop := srv.GeneralLog(t)
	r := runBinary(t, path, "monitor", env)
	threads := stop()
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("monitor: exit %d, stderr %q; want 0 and silence", r.Code, r.Stderr)
	}
	if conns, queries := mariadbtest.Commands(threads); conns != 1 || queries != 1 {
		t.Errorf("one monitor made %d connections and %d query round trips (%v), want 1 and 1", conns, queries, threads)
	}

	srv.SQL(t, "SET GLOBAL read_only=1")
	if r := runBinary(t, path, "monitor", env); r.Code != 0 || !strings.Contains(r.Stderr, "read_only=ON") {
		t.Errorf("monitor with read_only=1: exit %d, stderr %q; want 0 and the reason", r.Code, r.Stderr)
	}
	if v := crmtest.ReadAttr(t, dir, attrWritable); v != "0" {
		t.Errorf("read_only=1: writable_monit=%s, want 0", v)
	}
	if r := runBinary(t, path, "stop", env); r.Code != 0 {
		t.Fatalf("stop: exit %d: %s", r.Code, r.Stderr)
	}
	if v := crmtest.ReadAttr(t, dir, attrWritable); v != "" {
		t.Errorf("after stop writable_monit=%q, want deleted", v)
	}
	if r := runBinary(t, path, "monitor", env); r.Code != 7 {
		t.Errorf("monitor after stop: exit %d, want 7 (OCF_NOT_RUNNING)", r.Code)
	}

	// server_load through the same binary, attrd stand-in and run dir.
	lpath := agenttest.Path(t, "server_load")
	lenv := map[string]string{attrs.EnvAttrd: env[attrs.EnvAttrd], attrs.EnvRunDir: env[attrs.EnvRunDir], "OCF_RESOURCE_INSTANCE": "load",
		"OCF_RESKEY_defaults_file": env["OCF_RESKEY_defaults_file"], "OCF_RESKEY_CRM_meta_timeout": "20000"}
	if r := runBinary(t, lpath, "start", lenv); r.Code != 0 {
		t.Fatalf("server_load start: exit %d: %s", r.Code, r.Stderr)
	}
	if v, err := strconv.Atoi(crmtest.ReadAttr(t, dir, crm.AttrLoad)); err != nil || v < 0 || v > 100 || v%5 != 0 {
		t.Errorf("server_load after start = %q, want a multiple of 5 in 0..100", crmtest.ReadAttr(t, dir, crm.AttrLoad))
	}
	if r := runBinary(t, lpath, "monitor", lenv); r.Code != 0 {
		t.Errorf("server_load monitor: exit %d: %s", r.Code, r.Stderr)
	}
	if r := runBinary(t, lpath, "stop", lenv); r.Code != 0 || crmtest.ReadAttr(t, dir, crm.AttrLoad) != "" {
		t.Errorf("server_load stop: exit %d, server_load=%q; want 0 and deleted", r.Code, crmtest.ReadAttr(t, dir, crm.AttrLoad))
	}
}

// BenchmarkMonitorVsHeartbeatMysql compares one monitor of mysql_monitor
// (the real binary, a new process as Pacemaker runs it, replica status
// included) with one monitor of ocf:heartbeat:mysql at OCF_CHECK_LEVEL=10
// against the same running MariaDB, interleaved. attrd_updater needs a
// running Pacemaker, so mysql_monitor runs with LOADSHARE_ATTRD_UPDATER=none
// (it computes and records the value, and publishes nothing; publishing is
// one attrd_updater process, and only when the value changed).
//
// Metrics: ratio (median wall time of ours / of heartbeat's, ours being the static binary
// make build ships; target ≤ 0.1), each side's ms/op, the part of ours spent in the action itself (the rest is process
// start-up), and each side's connections and query round trips per check
// as the server's general log counts them (target for ours: exactly 1 query).
func BenchmarkMonitorVsHeartbeatMysql(b *testing.B) {
	const heartbeat = "/usr/lib/ocf/resource.d/heartbeat/mysql"
	if _, err := os.Stat(heartbeat); err != nil {
		b.Skipf("%s missing (Debian package resource-agents): %v", heartbeat, err)
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		b.Skip("mariadb client missing (Debian package mariadb-client)")
	}
	srv := mariadbtest.Start(b, mariadbtest.Options{})
	srv.CreateUser(b, "mon", "pw", "SLAVE MONITOR ON *.*")
	srv.CreateUser(b, "hbtest", "pw", "SELECT ON mysql.*")
	dir := b.TempDir()
	cnf := filepath.Join(dir, "my.cnf")
	os.WriteFile(cnf, []byte("[mysqld]\n"), 0o644)

	hbEnv := map[string]string{
		"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "mysql", "OCF_CHECK_LEVEL": "10",
		"HA_RSCTMP": filepath.Join(dir, "hbrun"), "OCF_RESKEY_CRM_meta_interval": "10000",
		"OCF_RESKEY_binary": "/usr/sbin/mariadbd", "OCF_RESKEY_client_binary": client,
		"OCF_RESKEY_config": cnf, "OCF_RESKEY_datadir": srv.DataDir,
		"OCF_RESKEY_user": "root", "OCF_RESKEY_group": "root",
		"OCF_RESKEY_pid": srv.PidFile, "OCF_RESKEY_socket": srv.Socket,
		"OCF_RESKEY_test_user": "hbtest", "OCF_RESKEY_test_passwd": "pw", "OCF_RESKEY_test_table": "mysql.user",
	}
	os.MkdirAll(hbEnv["HA_RSCTMP"], 0o755)
	ourEnv := map[string]string{
		attrs.EnvAttrd: "none", attrs.EnvRunDir: filepath.Join(dir, "run"),
		"OCF_RESOURCE_INSTANCE": "mysqlmon", "OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_CRM_meta_timeout": "20000",
		"OCF_RESKEY_defaults_file": srv.DefaultsFile("mon", "pw"),
	}
	ours := agenttest.Path(b, "mysql_monitor")
	if r := runBinary(b, ours, "start", ourEnv); r.Code != 0 {
		b.Fatalf("mysql_monitor start: exit %d: %s", r.Code, r.Stderr)
	}

	// Round trips, once each, with the general log on (off while timing).
	count := func(path string, env map[string]string) (int, int) {
		stop := srv.GeneralLog(b)
		r := runBinary(b, path, "monitor", env)
		threads := stop()
		if r.Code != 0 {
			b.Fatalf("%s monitor: exit %d: %s%s", path, r.Code, r.Stdout, r.Stderr)
		}
		return mariadbtest.Commands(threads)
	}
	ourConns, ourQueries := count(ours, ourEnv)
	hbConns, hbQueries := count(heartbeat, hbEnv)

	// The action inside our process (the framework's debug line "done
	// took=..."), to tell process start-up from the probe itself.
	debugEnv := map[string]string{"HA_debug": "1"}
	for k, v := range ourEnv {
		debugEnv[k] = v
	}
	var actionTime time.Duration
	for i := 0; i < 5; i++ {
		r := runBinary(b, ours, "monitor", debugEnv)
		_, took, ok := strings.Cut(r.Stderr, "done took=")
		d, err := time.ParseDuration(strings.Fields(took + " ")[0])
		if !ok || err != nil {
			b.Fatalf("no \"done took=\" in the debug output %q", r.Stderr)
		}
		actionTime += d
	}

	// Interleaved, alternating which goes first, and compared by medians
	// (as the clustervip benchmark): a shared machine's stalls land in
	// single calls, and a mean would charge them to whichever ran then.
	timeOne := func(path string, env map[string]string) time.Duration {
		t0 := time.Now()
		if r := runBinary(b, path, "monitor", env); r.Code != 0 {
			b.Fatalf("%s monitor: exit %d: %s%s", path, r.Code, r.Stdout, r.Stderr)
		}
		return time.Since(t0)
	}
	b.ResetTimer()
	ourTime, hbTime := agenttest.Interleave(max(b.N, 40), func() time.Duration { return timeOne(ours, ourEnv) },
		func() time.Duration { return timeOne(heartbeat, hbEnv) })
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(ourTime)/float64(hbTime), "ratio")
	b.ReportMetric(ms(ourTime), "ours-ms/op")
	b.ReportMetric(ms(hbTime), "heartbeat-ms/op")
	b.ReportMetric(float64(actionTime)/5/float64(time.Millisecond), "ours-action-ms/op")
	b.ReportMetric(float64(ourQueries), "ours-roundtrips/op")
	b.ReportMetric(float64(ourConns), "ours-conns/op")
	b.ReportMetric(float64(hbQueries), "heartbeat-roundtrips/op")
	b.ReportMetric(float64(hbConns), "heartbeat-conns/op")
	if ourQueries != 1 {
		b.Errorf("mysql_monitor made %d query round trips per monitor, want exactly 1", ourQueries)
	}
}
