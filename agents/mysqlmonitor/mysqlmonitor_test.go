package mysqlmonitor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/crm/crmtest"
	"github.com/loadshare/loadshare/loadmon"
	"github.com/loadshare/loadshare/test/mariadbtest"
)

func TestMySQLMonitorAgainstMariaDB(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.Options{})
	srv.CreateUser(t, "mon", "pw", "SLAVE MONITOR ON *.*")
	fake := &crmtest.Attrs{}
	runDir := t.TempDir()
	a := &mysqlMonitor{env: attrs.Env{Attrs: fake, RunDir: runDir, Now: time.Now}}
	name := agenttest.Register(a, "mysql_monitor")
	good := agenttest.Reskeys("defaults_file", srv.DefaultsFile("mon", "pw"), "dampen", "3")

	code, log := agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor before start", code, 7, log)

	code, log = agenttest.RunMain(t, name, "start", good)
	agenttest.WantCode(t, "start", code, 0, log)
	if got, want := fake.TakeCalls(), []string{"set readable_monit=1 delay=3s", "set writable_monit=1 delay=3s"}; !slices.Equal(got, want) {
		t.Errorf("start: attrd calls %q, want %q", got, want)
	}
	code, log = agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor", code, 0, log)
	if calls := fake.TakeCalls(); len(calls) != 0 || log != "" {
		t.Errorf("unchanged monitor: attrd calls %q, log %q; want none and silence", calls, log)
	}

	srv.SQL(t, "SET GLOBAL read_only=1")
	code, log = agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor with read_only=1", code, 0, log)
	if w, r := fake.Value(attrWritable), fake.Value(attrReadable); w != "0" || r != "0" || !strings.Contains(log, "read_only=ON and not a replica") {
		t.Errorf("read_only=1: writable_monit=%q readable_monit=%q, log %q; want 0, 0 and a line saying read_only=ON and not a replica", w, r, log)
	}
	srv.SQL(t, "SET GLOBAL read_only=0")
	code, log = agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor with read_only=0", code, 0, log)
	if v := fake.Value(attrWritable); v != "1" {
		t.Errorf("read_only=0 again: writable_monit=%q, want 1", v)
	}

	wrong := agenttest.Reskeys("defaults_file", srv.DefaultsFile("mon", "wrong"), "dampen", "3")
	code, log = agenttest.RunMain(t, name, "monitor", wrong)
	agenttest.WantCode(t, "monitor with a wrong password", code, 0, log)
	if w, r := fake.Value(attrWritable), fake.Value(attrReadable); w != "0" || r != "0" || !strings.Contains(log, "access denied") || strings.Contains(log, "wrong") {
		t.Errorf("wrong password: writable_monit=%q readable_monit=%q, log %q; want 0, 0, a line saying access denied, no password", w, r, log)
	}
	fake.TakeCalls()
	code, log = agenttest.RunMain(t, name, "monitor", wrong)
	if calls := fake.TakeCalls(); code != 0 || len(calls) != 0 || log != "" {
		t.Errorf("wrong password, second monitor: exit %d, attrd calls %q, log %q; want 0, none, silence", code, calls, log)
	}

	srv.Stop()
	code, log = agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor with the server stopped", code, 0, log)
	if w, r := fake.Value(attrWritable), fake.Value(attrReadable); w != "0" || r != "0" || !strings.Contains(log, "probe failed: down") {
		t.Errorf("server stopped: writable_monit=%q readable_monit=%q, log %q; want 0, 0 and a line saying down", w, r, log)
	}
	srv.Restart()
	code, log = agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor after restart", code, 0, log)
	if v := fake.Value(attrWritable); v != "1" {
		t.Errorf("server back: writable_monit=%q, want 1", v)
	}

	// attrd failing is not database health: the monitor fails, saying so.
	fake.Err = errors.New("attrd gone")
	srv.SQL(t, "SET GLOBAL read_only=1")
	code, log = agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor with attrd failing", code, 1, log)
	if !strings.Contains(log, "publish readable_monit=0: attrd gone") {
		t.Errorf("attrd failing: log %q lacks the reason", log)
	}
	fake.Err = nil

	code, log = agenttest.RunMain(t, name, "stop", good)
	agenttest.WantCode(t, "stop", code, 0, log)
	if v, ok, _ := fake.Get(context.Background(), attrWritable); ok {
		t.Errorf("after stop writable_monit=%q is still set", v)
	}
	if m, _ := filepath.Glob(filepath.Join(runDir, "*")); len(m) != 0 {
		t.Errorf("after stop the run dir holds %v", m)
	}
	code, log = agenttest.RunMain(t, name, "monitor", good)
	agenttest.WantCode(t, "monitor after stop", code, 7, log)
	code, log = agenttest.RunMain(t, name, "stop", good)
	agenttest.WantCode(t, "stop after stop", code, 0, log)
}

func TestMySQLMonitorValidate(t *testing.T) {
	a := &mysqlMonitor{env: attrs.Env{Attrs: &crmtest.Attrs{}, RunDir: t.TempDir(), Now: time.Now}}
	name := agenttest.Register(a, "mysql_monitor")
	for _, tc := range []struct {
		env  map[string]string
		want int
		msg  string
	}{
		{agenttest.Reskeys("defaults_file", "/nonexistent/my.cnf"), 2, `parameter defaults_file="/nonexistent/my.cnf"`},
		{agenttest.Reskeys("max_lag", "-1"), 6, `parameter max_lag="-1": must not be negative`},
		{agenttest.Reskeys("max_lag", "2.5"), 6, `parameter max_lag="2.5": not an integer`},
		{agenttest.Reskeys("max_lag", "30s"), 6, `parameter max_lag="30s": not an integer`},
		{agenttest.Reskeys("max_lag", "0"), 0, ""},
		{agenttest.Reskeys("galera", "maybe"), 6, `parameter galera="maybe": not auto, true or false`},
		{agenttest.Reskeys("donor_ok", "sometimes"), 6, `parameter donor_ok="sometimes": not a boolean`},
		{agenttest.Reskeys("publish_readable", "2"), 6, `parameter publish_readable="2": not a boolean`},
		{agenttest.Reskeys("replica_ok", "maybe"), 6, `parameter replica_ok="maybe": not a boolean`},
		{agenttest.Reskeys("port", "70000"), 6, `parameter port="70000": not a TCP port`},
		{agenttest.Reskeys("socket", "/run/x.sock", "replica_ok", "yes"), 0, "parameter replica_ok is deprecated"},
		{agenttest.Reskeys("galera", "true", "donor_ok", "yes"), 0, ""},
	} {
		code, log := agenttest.RunMain(t, name, "validate-all", tc.env)
		if code != tc.want || !strings.Contains(log, tc.msg) {
			t.Errorf("validate-all with %v: exit %d, log %q; want %d and %q", tc.env, code, log, tc.want, tc.msg)
		}
	}
}

func TestJudge(t *testing.T) {
	const maxLag = 30 * time.Second
	replica := func(io, sql bool, lag int) *loadmon.Replica {
		r := &loadmon.Replica{Source: "db1:3306", IORunning: io, SQLRunning: sql, IOState: "Yes", LagKnown: lag >= 0, Lag: time.Duration(lag) * time.Second}
		if !io {
			r.IOState = "Connecting"
		}
		if !sql {
			r.LastError = "Duplicate entry"
		}
		return r
	}
	ro := loadmon.Status{ReadOnly: true}
	withReplica := func(st loadmon.Status, r *loadmon.Replica) loadmon.Status { st.Replica = r; return st }
	synced := loadmon.Galera{Provider: "Galera", Ready: true, Cluster: "Primary", State: 4, StateComment: "Synced"}
	galera := func(f func(*loadmon.Galera)) loadmon.Status {
		g := synced
		if f != nil {
			f(&g)
		}
		return loadmon.Status{Galera: &g}
	}
	desynced := galera(func(g *loadmon.Galera) { g.State, g.StateComment = 2, "Donor/Desynced" })
	nonPrimary := galera(func(g *loadmon.Galera) {
		g.Ready, g.Cluster, g.State, g.StateComment = false, "non-Primary", 0, "Initialized"
	})
	def := rules{maxLag: maxLag, galera: galeraAuto}
	with := func(f func(*rules)) rules { r := def; f(&r); return r }
	replicaOK := with(func(r *rules) { r.replicaOK = true })
	for _, tc := range []struct {
		name  string
		st    loadmon.Status
		err   error
		rules rules
		want  verdict
	}{
		{"writable primary", loadmon.Status{}, nil, def, verdict{1, 1, "0", "writable"}},
		{"read_only, not a replica", ro, nil, def, verdict{0, 0, "0", "read_only=ON and not a replica"}},
		{"super_read_only", loadmon.Status{SuperReadOnly: true}, nil, def, verdict{0, 0, "0", "super_read_only=ON and not a replica"}},
		{"down", loadmon.Status{}, &loadmon.ProbeError{Kind: loadmon.ErrDown}, def, verdict{0, 0, "", "probe failed: down"}},
		{"access denied", loadmon.Status{}, &loadmon.ProbeError{Kind: loadmon.ErrAccessDenied}, replicaOK, verdict{0, 0, "", "probe failed: access denied"}},
		{"in-sync replica", withReplica(ro, replica(true, true, 3)), nil, def, verdict{0, 1, "0", "replica of db1:3306 in sync (lag within max_lag 30s)"}},
		{"in-sync replica, replica_ok", withReplica(ro, replica(true, true, 3)), nil, replicaOK, verdict{1, 1, "0", "replica of db1:3306 in sync (lag within max_lag 30s)"}},
		{"lag at max_lag", withReplica(ro, replica(true, true, 30)), nil, def, verdict{0, 1, "30", "replica of db1:3306 in sync (lag within max_lag 30s)"}},
		{"lagging replica", withReplica(ro, replica(true, true, 45)), nil, def, verdict{0, 0, "40", "replica of db1:3306 not in sync: lag over max_lag 30s"}},
		{"lagging, max_lag 0", withReplica(ro, replica(true, true, 1)), nil, with(func(r *rules) { r.maxLag = 0 }), verdict{0, 0, "0", "replica of db1:3306 not in sync: lag over max_lag 0s"}},
		{"far behind, replica_ok", withReplica(ro, replica(true, true, 7200)), nil, replicaOK, verdict{0, 0, "600", "replica of db1:3306 not in sync: lag over max_lag 30s"}},
		{"SQL thread stopped", withReplica(ro, replica(true, false, -1)), nil, def, verdict{0, 0, "", "replica of db1:3306 not in sync: SQL thread stopped (Duplicate entry)"}},
		{"IO thread connecting", withReplica(ro, replica(false, true, -1)), nil, def, verdict{0, 0, "", "replica of db1:3306 not in sync: IO thread Connecting"}},
		{"writable replica", withReplica(loadmon.Status{}, replica(true, true, 0)), nil, def, verdict{0, 1, "0", "replica of db1:3306 in sync (lag within max_lag 30s)"}},
		{"replica status unreadable", loadmon.Status{ReplicaErr: errors.New("denied")}, nil, def, verdict{0, 0, "", "replica status unreadable: denied"}},
		{"galera synced", galera(nil), nil, def, verdict{1, 1, "0", "writable"}},
		{"galera synced, read_only", func() loadmon.Status { s := galera(nil); s.ReadOnly = true; return s }(), nil, def, verdict{0, 0, "0", "read_only=ON and not a replica"}},
		{"galera desynced", desynced, nil, def, verdict{0, 0, "0", "galera: wsrep_local_state=2 (Donor/Desynced)"}},
		{"galera desynced, donor_ok", desynced, nil, with(func(r *rules) { r.donorOK = true }), verdict{1, 1, "0", "writable"}},
		{"galera non-Primary", nonPrimary, nil, def, verdict{0, 0, "0", "galera: wsrep_ready=OFF, wsrep_cluster_status=non-Primary, wsrep_local_state=0 (Initialized)"}},
		{"galera non-Primary, galera=false", nonPrimary, nil, with(func(r *rules) { r.galera = galeraOff }), verdict{1, 1, "0", "writable"}},
		{"galera=true without provider", loadmon.Status{}, nil, with(func(r *rules) { r.galera = galeraOn }), verdict{0, 0, "0", "galera=true but no wsrep provider loaded"}},
		{"galera desynced, replica_ok", desynced, nil, replicaOK, verdict{0, 0, "0", "galera: wsrep_local_state=2 (Donor/Desynced)"}},
	} {
		if got := judge(tc.st, tc.err, tc.rules); got != tc.want {
			t.Errorf("%s: judge = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestGaleraMode(t *testing.T) {
	for in, want := range map[string]string{"auto": galeraAuto, "AUTO": galeraAuto, "true": galeraOn, "yes": galeraOn, "1": galeraOn, "false": galeraOff, "off": galeraOff} {
		if got, err := galeraMode(in); got != want || err != nil {
			t.Errorf("galeraMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := galeraMode("maybe"); err == nil {
		t.Errorf("galeraMode(maybe) = %q, want an error", got)
	}
}

// TestMySQLMonitorDefaultsFileGone: start refuses a missing defaults file,
// but once running, losing it is reported in the attribute, and stop still
// deletes the attributes.
func TestMySQLMonitorDefaultsFileGone(t *testing.T) {
	fake := &crmtest.Attrs{}
	a := &mysqlMonitor{env: attrs.Env{Attrs: fake, RunDir: t.TempDir(), Now: time.Now}}
	name := agenttest.Register(a, "mysql_monitor")
	cnf := filepath.Join(t.TempDir(), "my.cnf")
	os.WriteFile(cnf, []byte("[client]\nuser=mon\npassword=pw\nsocket=/nonexistent/mysqld.sock\n"), 0o600)
	env := agenttest.Reskeys("defaults_file", cnf)

	code, log := agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start with the server down", code, 0, log)
	if v := fake.Value(attrWritable); v != "0" || !strings.Contains(log, "probe failed: down") {
		t.Errorf("start with the server down: writable_monit=%q, log %q; want 0 and the reason", v, log)
	}
	os.Remove(cnf)
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor without the defaults file", code, 0, log)
	if !strings.Contains(log, "probe failed: parameter defaults_file") {
		t.Errorf("defaults file gone: log %q does not say so", log)
	}
	fake.TakeCalls()
	code, log = agenttest.RunMain(t, name, "stop", env)
	agenttest.WantCode(t, "stop without the defaults file", code, 0, log)
	if calls := fake.TakeCalls(); len(calls) == 0 || calls[0] != "delete writable_monit" {
		t.Errorf("stop without the defaults file: attrd calls %q, want the attributes deleted", calls)
	}
	code, log = agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start without the defaults file", code, 2, log)
}

// TestMySQLMonitorHungServer: a server that accepts and never answers makes
// writable_monit 0 with "timeout", and the monitor itself still succeeds,
// inside its operation timeout.
func TestMySQLMonitorHungServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never greeted
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	fake := &crmtest.Attrs{}
	a := &mysqlMonitor{env: attrs.Env{Attrs: fake, RunDir: t.TempDir(), Now: time.Now}}
	name := agenttest.Register(a, "mysql_monitor")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	// connect_timeout 5 s, but the operation timeout of 2 s wins: the probe
	// gets half of what is left of it.
	env := agenttest.Reskeys("host", "127.0.0.1", "port", port, "user", "mon", "connect_timeout", "5")
	env["OCF_RESKEY_CRM_meta_timeout"] = "2000"
	code, log := agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start against a hung server", code, 0, log)
	if v := fake.Value(attrWritable); v != "0" || !strings.Contains(log, "probe failed: timeout") {
		t.Errorf("hung server: writable_monit=%q, log %q; want 0 and timeout", v, log)
	}
}
