package mysqlmonitor

import (
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/crm/crmtest"
	"github.com/loadshare/loadshare/test/mariadbtest"
)

// TestMySQLMonitorGalera runs mysql_monitor against real Galera nodes: a
// cluster of one is writable; desynced (wsrep_desync=ON: Donor/Desynced)
// it is not, unless donor_ok; a node whose only peer is killed leaves the
// Primary component and is neither writable nor readable, saying why.
func TestMySQLMonitorGalera(t *testing.T) {
	g1 := mariadbtest.Start(t, mariadbtest.Options{Galera: true})
	g1.CreateUser(t, "mon", "pw", "SLAVE MONITOR ON *.*")
	fake := &crmtest.Attrs{}
	a := &mysqlMonitor{env: attrs.Env{Attrs: fake, RunDir: t.TempDir(), Now: time.Now}}
	name := agenttest.Register(a, "mysql_monitor")
	env := agenttest.Reskeys("defaults_file", g1.DefaultsFile("mon", "pw"), "dampen", "0")
	roles := func(what string, env map[string]string, writable, readable string, reason string) string {
		t.Helper()
		code, log := agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, what, code, 0, log)
		if w, r := fake.Value(attrWritable), fake.Value(attrReadable); w != writable || r != readable || !strings.Contains(log, reason) {
			t.Errorf("%s: writable_monit=%s readable_monit=%s, log %q; want %s %s and %q", what, w, r, log, writable, readable, reason)
		}
		return log
	}

	code, log := agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start", code, 0, log)
	if w, r := fake.Value(attrWritable), fake.Value(attrReadable); w != "1" || r != "1" || !strings.Contains(log, "reason=writable") {
		t.Fatalf("a Synced Galera cluster of one: writable_monit=%s readable_monit=%s, log %q; want 1 1", w, r, log)
	}

	g1.SQL(t, "SET GLOBAL wsrep_desync=ON")
	roles("desynced", env, "0", "0", `reason="galera: wsrep_local_state=2 (Donor/Desynced)"`)
	donorOK := agenttest.Reskeys("defaults_file", g1.DefaultsFile("mon", "pw"), "dampen", "0", "donor_ok", "true")
	roles("desynced, donor_ok", donorOK, "1", "1", "reason=writable")
	g1.SQL(t, "SET GLOBAL wsrep_desync=OFF")
	g1.WaitStatus(t, 30*time.Second, map[string]string{"wsrep_local_state": "4"})
	roles("Synced again", env, "1", "1", "")

	g2 := mariadbtest.Start(t, mariadbtest.Options{Galera: true, Join: g1})
	g1.WaitStatus(t, 30*time.Second, map[string]string{"wsrep_cluster_size": "2"})
	roles("two nodes", env, "1", "1", "")
	g2.Kill()
	waitFor(t, 30*time.Second, "writable_monit=0 once non-Primary", func() bool {
		code, l := agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, "monitor, peer killed", code, 0, l)
		if l != "" {
			log = l
		}
		return fake.Value(attrWritable) == "0"
	})
	if r := fake.Value(attrReadable); r != "0" || !strings.Contains(log, "wsrep_cluster_status=non-Primary") || !strings.Contains(log, "wsrep_ready=OFF") {
		t.Errorf("non-Primary: readable_monit=%s, log %q; want 0 and the failed conditions named", r, log)
	}
	// galera=false ignores the wsrep state: the server itself is not read-only.
	roles("non-Primary, galera=false", agenttest.Reskeys("defaults_file", g1.DefaultsFile("mon", "pw"), "dampen", "0", "galera", "false"), "1", "1", "reason=writable")
}
