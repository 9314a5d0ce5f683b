package mysqlmonitor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/crm/crmtest"
	"github.com/loadshare/loadshare/test/mariadbtest"
)

// TestMySQLMonitorReplica runs mysql_monitor against a real primary and a
// second mariadbd replicating from it: the primary is writable; the
// replica in sync is readable, never writable; lagging past max_lag
// (MASTER_DELAY holds events back while Seconds_Behind_Master grows) and
// with the SQL thread stopped it is neither. The deprecated replica_ok
// still makes an in-sync replica writable, with a warning.
func TestMySQLMonitorReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and waits for replication lag")
	}
	src := mariadbtest.Start(t, mariadbtest.Options{TCP: true, LogBin: true, ServerID: 1})
	rep := mariadbtest.Start(t, mariadbtest.Options{ServerID: 2})
	src.CreateUser(t, "mon", "pw", "SLAVE MONITOR ON *.*") // replicated to rep
	rep.SQL(t, "SET GLOBAL read_only=1")
	rep.ReplicateFrom(t, src)
	src.SQL(t, "CREATE DATABASE d; CREATE TABLE d.t (i INT PRIMARY KEY)")
	waitFor(t, 30*time.Second, "replica caught up", func() bool {
		rows, err := rep.Query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='d'")
		return err == nil && rows[0][0] == "1"
	})

	fake := &crmtest.Attrs{}
	a := &mysqlMonitor{env: attrs.Env{Attrs: fake, RunDir: t.TempDir(), Now: time.Now}}
	name := agenttest.Register(a, "mysql_monitor")

	// The primary, in an instance of its own (attributes of another node).
	srcFake := &crmtest.Attrs{}
	srcName := agenttest.Register(&mysqlMonitor{env: attrs.Env{Attrs: srcFake, RunDir: t.TempDir(), Now: time.Now}}, "mysql_monitor")
	code, log := agenttest.RunMain(t, srcName, "start", agenttest.Reskeys("defaults_file", src.DefaultsFile("mon", "pw")))
	agenttest.WantCode(t, "start on the primary", code, 0, log)
	if w, r := srcFake.Value(attrWritable), srcFake.Value(attrReadable); w != "1" || r != "1" {
		t.Errorf("primary: writable_monit=%s readable_monit=%s, want 1 1; log %s", w, r, log)
	}

	env := agenttest.Reskeys("defaults_file", rep.DefaultsFile("mon", "pw"), "max_lag", "2", "publish_lag", "true")
	code, log = agenttest.RunMain(t, name, "start", env)
	agenttest.WantCode(t, "start", code, 0, log)
	if w, r, l := fake.Value(attrWritable), fake.Value(attrReadable), fake.Value(attrLag); w != "0" || r != "1" || l != "0" {
		t.Fatalf("in-sync replica: writable_monit=%s readable_monit=%s replication_lag=%s, want 0 1 0; log %s", w, r, l, log)
	}
	if want := fmt.Sprintf("replica of %s:%d in sync", src.Addr, src.Port); !strings.Contains(log, want) {
		t.Errorf("in-sync replica: log %q does not say %q", log, want)
	}

	// replica_ok, deprecated: writable takes readable's value; start says
	// so once, monitors do not repeat it.
	old := agenttest.Reskeys("defaults_file", rep.DefaultsFile("mon", "pw"), "max_lag", "2", "publish_lag", "true", "replica_ok", "true")
	code, log = agenttest.RunMain(t, name, "start", old)
	agenttest.WantCode(t, "start with replica_ok", code, 0, log)
	if w, r := fake.Value(attrWritable), fake.Value(attrReadable); w != "1" || r != "1" || strings.Count(log, "replica_ok is deprecated") != 1 {
		t.Errorf("in-sync replica, replica_ok=true: writable_monit=%s readable_monit=%s, log %q; want 1 1 and one deprecation warning", w, r, log)
	}
	code, log = agenttest.RunMain(t, name, "monitor", old)
	if w := fake.Value(attrWritable); code != 0 || w != "1" || strings.Contains(log, "deprecated") {
		t.Errorf("replica_ok, monitor: exit %d, writable_monit=%s, log %q; want 0, 1 and no warning", code, w, log)
	}
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor without replica_ok again", code, 0, log)
	if w := fake.Value(attrWritable); w != "0" || strings.Contains(log, "deprecated") {
		t.Errorf("without replica_ok again: writable_monit=%s, log %q; want 0 and no warning", w, log)
	}

	// Lag: events held back 60 s; Seconds_Behind_Master climbs past max_lag.
	rep.SQL(t, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=60; START SLAVE")
	src.SQL(t, "INSERT INTO d.t VALUES (1)")
	var lagLog string
	// Right after START SLAVE the IO thread may still be "Preparing" or
	// "Connecting" (also not in sync, said so); wait for the lag itself.
	waitFor(t, 30*time.Second, "readable_monit=0 from lag", func() bool {
		code, log := agenttest.RunMain(t, name, "monitor", env)
		agenttest.WantCode(t, "monitor of a lagging replica", code, 0, log)
		if log != "" {
			lagLog = log
		}
		return fake.Value(attrReadable) == "0" && strings.Contains(lagLog, "not in sync: lag")
	})
	if !strings.Contains(lagLog, "lag over max_lag 2s") || !strings.Contains(lagLog, "replica_lag=") || fake.Value(attrWritable) != "0" {
		t.Errorf("lagging replica: log %q, writable_monit=%s; want the lag named and writable 0", lagLog, fake.Value(attrWritable))
	}

	// Still lagging, more each second: said once, not on every monitor.
	if code, log := agenttest.RunMain(t, name, "monitor", env); code != 0 || log != "" {
		t.Errorf("still lagging: exit %d, log %q; want 0 and silence", code, log)
	}

	// SQL thread stopped: lag unknown, attribute deleted, reason logged.
	rep.SQL(t, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE IO_THREAD")
	code, log = agenttest.RunMain(t, name, "monitor", env)
	agenttest.WantCode(t, "monitor with the SQL thread stopped", code, 0, log)
	if w, r, l := fake.Value(attrWritable), fake.Value(attrReadable), fake.Value(attrLag); w != "0" || r != "0" || l != "" {
		t.Errorf("SQL thread stopped: writable_monit=%s readable_monit=%s replication_lag=%q, want 0 0 and deleted", w, r, l)
	}
	if !strings.Contains(log, "SQL thread stopped") {
		t.Errorf("SQL thread stopped: log %q does not say so", log)
	}

	// Healthy again: readable, still not writable.
	rep.SQL(t, "START SLAVE SQL_THREAD")
	waitFor(t, 30*time.Second, "readable_monit=1 after catching up", func() bool {
		code, log = agenttest.RunMain(t, name, "monitor", env)
		return code == 0 && fake.Value(attrReadable) == "1"
	})
	if w := fake.Value(attrWritable); w != "0" {
		t.Errorf("replica caught up again: writable_monit=%s, want 0", w)
	}
	code, log = agenttest.RunMain(t, name, "stop", env)
	agenttest.WantCode(t, "stop", code, 0, log)
	for _, n := range []string{attrWritable, attrReadable, attrLag} {
		if _, ok, _ := fake.Get(context.Background(), n); ok {
			t.Errorf("after stop %s is still set", n)
		}
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
