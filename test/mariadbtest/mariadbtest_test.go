package mariadbtest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pw has every character the option-file syntax treats specially.
const pw = `pa'ss#"w\\d ;x`

func TestStartQueryStopRestart(t *testing.T) {
	s := Start(t, Options{TCP: true})
	if got := s.SQL(t, "SELECT @@read_only, @@port"); len(got) != 1 || got[0][0] != "0" || got[0][1] != itoa(s.Port) {
		t.Fatalf("SELECT @@read_only, @@port = %v, want [[0 %d]]", got, s.Port)
	}
	s.CreateUser(t, "mon", pw, "SELECT ON *.*")

	// The defaults file must work for the real mysql CLI, as an operator's would.
	if _, err := exec.LookPath("mariadb"); err == nil {
		for _, cnf := range []string{s.DefaultsFile("mon", pw), s.DefaultsFileTCP("mon", pw)} {
			out, err := exec.Command("mariadb", "--defaults-file="+cnf, "-N", "-e", "SELECT CURRENT_USER()").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "mon@") {
				b, _ := os.ReadFile(cnf)
				t.Errorf("mariadb --defaults-file=%s (%q): %q, %v; want mon@...", cnf, b, out, err)
			}
		}
	}

	pid := s.Pid()
	s.Stop()
	if s.Pid() != 0 {
		t.Fatalf("Pid() after Stop = %d, want 0", s.Pid())
	}
	if err := syscallKill0(pid); err == nil {
		t.Fatalf("process %d still exists after Stop", pid)
	}
	if _, err := s.Query("SELECT 1"); err == nil {
		t.Fatal("query after Stop succeeded")
	}
	s.Restart()
	if got := s.SQL(t, "SELECT COUNT(*) FROM mysql.user WHERE user='mon'"); got[0][0] != "2" {
		t.Fatalf("users named mon after restart = %v, want 2", got)
	}
}

func TestReplicateFrom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	src := Start(t, Options{TCP: true, LogBin: true, ServerID: 1})
	rep := Start(t, Options{ServerID: 2})
	rep.ReplicateFrom(t, src)
	src.SQL(t, "CREATE DATABASE d; CREATE TABLE d.t (i INT PRIMARY KEY); INSERT INTO d.t VALUES (42)")
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := rep.Query("SELECT i FROM d.t")
		if err == nil && len(rows) == 1 && rows[0][0] == "42" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica never saw the row: %v, %v; status %v", rows, err, rep.SQL(t, "SHOW SLAVE STATUS"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGalera: a bootstrapped node and a second joining it by rsync SST
// form one Primary component of two Synced nodes; a row written on one is
// read on the other; killing one leaves the other non-Primary.
func TestGalera(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Galera nodes")
	}
	g1 := Start(t, Options{Galera: true})
	g2 := Start(t, Options{Galera: true, Join: g1})
	for _, g := range []*Server{g1, g2} {
		g.WaitStatus(t, 30*time.Second, map[string]string{"wsrep_cluster_size": "2", "wsrep_cluster_status": "Primary", "wsrep_local_state": "4", "wsrep_ready": "ON"})
	}
	g1.SQL(t, "CREATE DATABASE d; CREATE TABLE d.t (i INT PRIMARY KEY); INSERT INTO d.t VALUES (42)")
	if rows := g2.SQL(t, "SET SESSION wsrep_sync_wait=1; SELECT i FROM d.t"); len(rows) != 1 || rows[0][0] != "42" {
		t.Fatalf("second node reads %v, want [[42]]", rows)
	}
	g2.Kill()
	g1.WaitStatus(t, 30*time.Second, map[string]string{"wsrep_cluster_status": "non-Primary", "wsrep_ready": "OFF"})
}

func itoa(i int) string { return strconv.Itoa(i) }

func syscallKill0(pid int) error { return syscall.Kill(pid, 0) }
