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
	init := fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'%%';\n",
		DBUser, DBPassword, DBUser)
	return os.WriteFile(filepath.Join(l.dir(node), "init.sql"), []byte(init), 0o644)
}

// StartDB starts node's MariaDB (if not running) and waits until it answers
// on its socket. Inside the node: datadir /var/lib/mysql, socket
// /run/mysqld/mysqld.sock, port 3306 on every address (the VIP included),
// user lab/lab from anywhere, root by unix socket.
func (l *Lab) StartDB(ctx context.Context, node string) error {
	i, err := l.index(node)
	if err != nil {
		return err
	}
	if l.Pid(node, string(mariadbd)) == 0 {
		argv, err := l.nsenterArgv(node, "mariadbd", "--no-defaults", "--user=mysql",
			"--datadir=/var/lib/mysql", "--socket=/run/mysqld/mysqld.sock",
			"--pid-file=/run/mysqld/mysqld.pid", "--port="+strconv.Itoa(DBPort), "--bind-address=0.0.0.0",
			"--skip-name-resolve", "--log-error=/var/lib/mysql/mariadbd.err", "--tmpdir="+filepath.Join(l.dir(node), "tmp"),
			"--init-file="+filepath.Join(l.dir(node), "init.sql"), "--server-id="+strconv.Itoa(i+1),
			"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--performance-schema=OFF",
			"--max-connections=500")
		if err == nil && l.cfg.DB == DBGalera {
			argv = append(argv, l.galeraArgs(node)...)
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
			state, err := l.SQL(ctx, node, "SHOW GLOBAL STATUS LIKE 'wsrep_local_state'")
			return err == nil && strings.TrimSpace(state) == "wsrep_local_state\t4", nil
		}
		_, err := l.Exec(ctx, node, "mariadb-admin", "--no-defaults", "--socket=/run/mysqld/mysqld.sock", "ping")
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("start MariaDB on %s: %w", node, err)
	}
	return nil
}

// The lab's MariaDB topologies (Config.DB).
const (
	DBGalera     = "galera"     // every node a member of one Galera cluster over the lab network
	DBStandalone = "standalone" // independent servers, nothing replicated
)

// galeraProvider is the wsrep provider of Debian's galera-4.
const galeraProvider = "/usr/lib/galera/libgalera_smm.so"

// galeraArgs make node a member of the lab's Galera cluster: group
// communication on the node's lab address (port 4567), SST by rsync (the
// script runs its own rsync daemon for the transfer: no package beyond
// rsync), IST from the donor's gcache. The node bootstraps a new cluster
// (--wsrep-new-cluster) when no other node's MariaDB runs, else it joins.
// Group communication timeouts are shortened (defaults: suspect 5 s,
// inactive 15 s) so that a crashed node leaves the Primary component within
// seconds, as the lab's corosync token does.
func (l *Lab) galeraArgs(node string) []string {
	var peers []string
	bootstrap := true
	for _, n := range l.Nodes() {
		peers = append(peers, l.Addr(n).String())
		if n != node && l.Pid(n, string(mariadbd)) != 0 {
			bootstrap = false
		}
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
	if bootstrap {
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
