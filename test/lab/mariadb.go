package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The lab starts its own mariadbd per node rather than test/mariadbtest's:
// the server must run inside the node's namespaces (nsenter), outlive the
// process that started it (the CLI), and be found again by pid file.

// initDB creates the node's MariaDB datadir (bootstrap mode, no network),
// mounted at /var/lib/mysql inside the node.
func (l *Lab) initDB(node string) error {
	data := filepath.Join(l.dir(node), "var_lib_mysql")
	if _, err := os.Stat(filepath.Join(data, "mysql")); err == nil {
		return nil
	}
	my, err := lookupIDs("mysql", "mysql")
	if err != nil {
		return err
	}
	// A private tmpdir: temporary tables in a shared /tmp were seen to vanish
	// under a concurrent bootstrap (Unknown table 'mysql.tmp_user_sys').
	tmp := filepath.Join(l.dir(node), "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}
	for _, d := range []string{data, tmp} {
		if err := chownR(d, my); err != nil {
			return err
		}
	}
	cmd := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=mysql",
		"--auth-root-authentication-method=socket", "--skip-test-db",
		"--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M", "--tmpdir="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		return fmt.Errorf("node %s: running %v: %w: %s", node, cmd.Args, err, strings.Join(lines, " | "))
	}
	init := ""
	if l.cfg.DB == DBReplication {
		// Not in the binlog: each server's own user setup must not become
		// a transaction of its own GTID domain position.
		init = "SET SQL_LOG_BIN=0;\n"
	}
	init += fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'%%';\n",
		DBUser, DBPassword, DBUser)
	return os.WriteFile(filepath.Join(l.dir(node), "init.sql"), []byte(init), 0o644)
}

// StartDB starts node's MariaDB (if not running) and waits until it answers
// on its socket. Inside the node: datadir /var/lib/mysql, socket
// /run/mysqld/mysqld.sock, port 3306 on every address (the VIPs included;
// IPv6 ones too in a dual stack lab),
// user lab/lab from anywhere, root by unix socket.
func (l *Lab) StartDB(ctx context.Context, node string) error {
	i, err := l.index(node)
	if err != nil {
		return err
	}
	if l.Pid(node, string(mariadbd)) == 0 {
		bind := "0.0.0.0"
		if l.cfg.IPv6 {
			bind = "*" // IPv4 and IPv6
		}
		argv, err := l.nsenterArgv(node, "mariadbd", "--no-defaults", "--user=mysql",
			"--datadir=/var/lib/mysql", "--socket=/run/mysqld/mysqld.sock",
			"--pid-file=/run/mysqld/mysqld.pid", "--port="+strconv.Itoa(DBPort), "--bind-address="+bind,
			"--skip-name-resolve", "--log-error=/var/lib/mysql/mariadbd.err", "--tmpdir="+filepath.Join(l.dir(node), "tmp"),
			"--init-file="+filepath.Join(l.dir(node), "init.sql"), "--server-id="+strconv.Itoa(i+1),
			"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--performance-schema=OFF",
			"--max-connections=500")
		if err == nil && l.cfg.DB == DBGalera {
			argv = append(argv, l.galeraArgs(node, l.galeraPrimary(ctx, node))...)
		}
		if err == nil && l.cfg.DB == DBReplication {
			argv = append(argv, "--log-bin=/var/lib/mysql/binlog", "--binlog-format=ROW", "--log-slave-updates")
			if i != 0 {
				// A replica (the initial role) comes up read-only, as a
				// replica's my.cnf would have it.
				argv = append(argv, "--read-only")
			}
		}
		if err != nil {
			return err
		}
		if _, err := l.spawn(node, mariadbd, argv); err != nil {
			return err
		}
	}
	limit := 30 * time.Second
	if l.cfg.DB == DBGalera {
		limit = 120 * time.Second // a joiner's state transfer (SST), and waiting for a donor
	}
	err = poll(ctx, limit, func() (bool, error) {
		if !l.spawned(node, mariadbd) {
			return false, fmt.Errorf("mariadbd exited: %s %s", tail(filepath.Join(l.dir(node), "var_lib_mysql", "mariadbd.err")),
				tail(filepath.Join(l.dir(node), "mariadbd.out")))
		}
		if l.cfg.DB == DBGalera {
			return l.galeraSynced(ctx, node), nil
		}
		_, err := l.Exec(ctx, node, "mariadb-admin", "--no-defaults", "--socket=/run/mysqld/mysqld.sock", "ping")
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("start MariaDB on %s: %w", node, err)
	}
	return nil
}

// galeraSynced reports whether node's MariaDB is Synced in a Primary
// component whose view holds exactly the lab's running servers. A node
// that was SIGKILLed and restarted at once rejoins before its old instance
// is evicted (evs.inactive_timeout): the view then counts it twice (size 4
// in a 3-node lab), and a crash of another node in that window leaves 2 of
// 4, no Primary component. Waiting for the view to match means the next
// fault starts from the cluster the lab believes it has.
func (l *Lab) galeraSynced(ctx context.Context, node string) bool {
	out, err := l.SQL(ctx, node, "SHOW GLOBAL STATUS WHERE Variable_name IN "+
		"('wsrep_local_state', 'wsrep_cluster_status', 'wsrep_cluster_size')")
	if err != nil {
		return false
	}
	status := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			status[k] = v
		}
	}
	running := 0
	for _, n := range l.Nodes() {
		if l.Pid(n, string(mariadbd)) != 0 {
			running++
		}
	}
	return status["wsrep_local_state"] == "4" && status["wsrep_cluster_status"] == "Primary" &&
		status["wsrep_cluster_size"] == strconv.Itoa(running)
}

// The lab's MariaDB topologies (Config.DB).
const (
	DBGalera      = "galera"      // every node a member of one Galera cluster over the lab network
	DBReplication = "replication" // n1 the primary, the others its GTID replicas (read-only)
	DBStandalone  = "standalone"  // independent servers, nothing replicated
)

// Replicate makes node a GTID replica of primary: CHANGE MASTER TO the
// primary's lab address (the lab user, MASTER_USE_GTID=slave_pos), START
// SLAVE, read_only on.
func (l *Lab) Replicate(ctx context.Context, node, primary string) error {
	_, err := l.SQL(ctx, node, fmt.Sprintf("STOP SLAVE; SET GLOBAL read_only=1; CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, "+
		"MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE",
		l.Addr(primary), DBPort, DBUser, DBPassword))
	if err != nil {
		return fmt.Errorf("replicate %s from %s: %w", node, primary, err)
	}
	return nil
}

// Switchover moves the primary role of a replication lab from primary to
// replica: read_only on the old primary, the replica caught up with its
// binlog (MASTER_GTID_WAIT), STOP SLAVE + RESET SLAVE ALL + read_only off
// on the new one, then every other node (the old primary included)
// replicates from it.
func (l *Lab) Switchover(ctx context.Context, primary, replica string) error {
	if _, err := l.SQL(ctx, primary, "SET GLOBAL read_only=1"); err != nil {
		return err
	}
	pos, err := l.SQL(ctx, primary, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return err
	}
	out, err := l.SQL(ctx, replica, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 30)", strings.TrimSpace(pos)))
	if err != nil || strings.TrimSpace(out) != "0" {
		return fmt.Errorf("switchover: %s did not catch up with %s (gtid %s): %q %v", replica, primary, strings.TrimSpace(pos), out, err)
	}
	if _, err := l.SQL(ctx, replica, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0"); err != nil {
		return err
	}
	for _, n := range l.Nodes() {
		if n != replica {
			if err := l.Replicate(ctx, n, replica); err != nil {
				return err
			}
		}
	}
	return nil
}

// galeraProvider is the wsrep provider of Debian's galera-4.
const galeraProvider = "/usr/lib/galera/libgalera_smm.so"

// galeraPrimary finds the Galera node that node's MariaDB joins: one of the
// other nodes whose MariaDB runs in the Primary component. When those that
// run are all outside it (the others of its last Primary component
// crashed: a lone survivor is non-Primary and no joiner can make it
// Primary again), the lab recovers as an operator would: the first of
// them is told pc.bootstrap=YES, and the node joins it. "" when no other
// node's MariaDB runs: the node bootstraps a new cluster.
func (l *Lab) galeraPrimary(ctx context.Context, node string) string {
	var running []string
	for _, n := range l.Nodes() {
		if n == node || l.Pid(n, string(mariadbd)) == 0 {
			continue
		}
		out, err := l.SQL(ctx, n, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_status'")
		if err != nil {
			continue
		}
		if strings.TrimSpace(out) == "wsrep_cluster_status\tPrimary" {
			return n
		}
		running = append(running, n)
	}
	if len(running) == 0 {
		return ""
	}
	if _, err := l.SQL(ctx, running[0], "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'"); err != nil {
		l.log.Warn("galera: cannot make the non-Primary component Primary again", "node", running[0], "err", err)
	} else {
		l.log.Info("galera: no Primary component left; made it Primary again", "node", running[0], "joining", node)
	}
	return running[0]
}

// galeraArgs make node a member of the lab's Galera cluster: group
// communication on the node's lab address (port 4567), SST by rsync (the
// script runs its own rsync daemon for the transfer: no package beyond
// rsync), IST from the donor's gcache. With primary "" the node
// bootstraps a new cluster (--wsrep-new-cluster), else it joins (every
// node's address in gcomm://, so it finds the cluster whichever members
// run).
// Group communication timeouts are shortened (defaults: suspect 5 s,
// inactive 15 s) so that a crashed node leaves the Primary component within
// seconds, as the lab's corosync token does.
func (l *Lab) galeraArgs(node, primary string) []string {
	var peers []string
	for _, n := range l.Nodes() {
		peers = append(peers, l.Addr(n).String())
	}
	a := []string{
		"--wsrep-on=ON",
		"--wsrep-provider=" + galeraProvider,
		"--wsrep-cluster-name=" + l.cfg.Cluster,
		"--wsrep-cluster-address=gcomm://" + strings.Join(peers, ","),
		"--wsrep-node-address=" + l.Addr(node).String(),
		"--wsrep-node-name=" + node,
		"--wsrep-sst-method=rsync",
		"--wsrep-provider-options=gcache.size=32M; evs.keepalive_period=PT0.5S; evs.inactive_check_period=PT0.5S; " +
			"evs.suspect_timeout=PT2S; evs.inactive_timeout=PT3S",
		"--binlog-format=ROW",
		"--innodb-autoinc-lock-mode=2",
	}
	if primary == "" {
		// A datadir that was part of the cluster refuses to bootstrap
		// unless marked safe (the lab knows no other member runs).
		markSafeToBootstrap(filepath.Join(l.dir(node), "var_lib_mysql", "grastate.dat"))
		a = append(a, "--wsrep-new-cluster")
	}
	return a
}

// markSafeToBootstrap sets safe_to_bootstrap: 1 in a Galera state file, if
// there is one.
func markSafeToBootstrap(grastate string) {
	b, err := os.ReadFile(grastate)
	if err != nil {
		return
	}
	s := strings.Replace(string(b), "safe_to_bootstrap: 0", "safe_to_bootstrap: 1", 1)
	os.WriteFile(grastate, []byte(s), 0o660)
}

// StopDB stops node's MariaDB cleanly (SIGTERM, then SIGKILL after 30 s).
func (l *Lab) StopDB(node string) error {
	if _, err := l.index(node); err != nil {
		return err
	}
	stopPid(l.Pid(node, string(mariadbd)), l.Netns(node), 30*time.Second)
	return nil
}

// KillDB kills node's MariaDB at once (SIGKILL by pid).
func (l *Lab) KillDB(node string) error {
	if _, err := l.index(node); err != nil {
		return err
	}
	pid := l.Pid(node, string(mariadbd))
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill MariaDB on %s (pid %d): %w", node, pid, err)
	}
	waitGone([]int{pid}, 5*time.Second)
	return nil
}

// SQL runs statements with the mariadb client inside node as root (unix
// socket) and returns the tab-separated result without column names.
func (l *Lab) SQL(ctx context.Context, node, stmts string) (string, error) {
	out, err := l.Exec(ctx, node, "mariadb", "--no-defaults", "--socket=/run/mysqld/mysqld.sock",
		"-u", "root", "-N", "-B", "-e", stmts)
	return string(out), err
}
