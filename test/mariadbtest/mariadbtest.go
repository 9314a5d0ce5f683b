// Package mariadbtest starts private MariaDB servers for tests: Debian's
// mariadbd on a throwaway datadir and unix socket (plus, when asked, a TCP
// port), never the system service. Each server is stopped by its pid and its
// files removed when the test ends. Servers can replicate from each other
// (ReplicateFrom) or form a Galera cluster on 127.0.0.1 (Options.Galera).
//
// It needs mariadbd and mariadb-install-db (Debian package mariadb-server);
// a Galera node also needs galera-4 (GaleraProvider), rsync (the SST
// method) and the mysql user. Without them, and under go test -short, the
// test skips, saying why. Any other failure fails the test.
//
//	srv := mariadbtest.Start(t, mariadbtest.Options{})
//	srv.CreateUser(t, "mon", "secret", "REPLICATION CLIENT ON *.*")
//	cnf := srv.DefaultsFile("mon", "secret") // [client] user, password, socket
//	srv.SQL(t, "SET GLOBAL read_only=1")
//	srv.Stop()                               // SIGTERM, wait; Restart() brings it back
//
//	g1 := mariadbtest.Start(t, mariadbtest.Options{Galera: true})             // a new cluster of one
//	g2 := mariadbtest.Start(t, mariadbtest.Options{Galera: true, Join: g1}) // joins it (rsync SST), Synced
package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options say how to run one server. The zero value is a unix-socket-only
// server with server_id 1 and no binary log.
type Options struct {
	TCP      bool   // also listen on TCP at Bind:Port
	Bind     string // TCP address; "" means 127.0.0.1
	Port     int    // TCP port; 0 picks a free one on 127.0.0.1
	ServerID int    // server_id; 0 means 1
	LogBin   bool   // write a binary log (needed by a replication source)
	Args     []string

	// Galera runs the server as a Galera node: wsrep provider
	// GaleraProvider, group communication, IST and SST on free ports of
	// 127.0.0.1, SST by rsync. Without Join it bootstraps a new cluster of
	// one; Start returns once the node is Synced. The rsync SST script drops
	// privileges to the server's user, so a Galera node runs as the mysql
	// user (when the test runs as root) and owns its directory.
	Galera bool
	// Join is a running Galera node whose cluster this one joins (SST from
	// it). Needs Galera.
	Join *Server

	// Command runs mariadbd; nil means exec.Command. A lab passes
	// (*nstest.NS).Command to run the server inside a network namespace.
	Command func(name string, arg ...string) *exec.Cmd
}

// Server is one running (or stopped) private mariadbd.
type Server struct {
	Dir     string // holds datadir, socket, pid file, error log, defaults files
	DataDir string
	Socket  string
	PidFile string
	ErrLog  string
	Addr    string // host for TCP clients ("" without TCP)
	Port    int    // TCP port (0 without TCP)
	// GaleraPort is the Galera group communication port on 127.0.0.1 (0
	// when not a Galera node); IST and SST listen on ports of their own.
	GaleraPort int

	istPort, sstPort int
	t                testing.TB
	opts             Options
	mariadbd         string // resolved path

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start initialises a datadir, starts mariadbd on it and waits until it
// accepts connections as root over the socket. The server is stopped and
// its files removed when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not starting a MariaDB server")
	}
	var bins [2]string
	for i, bin := range []string{"mariadbd", "mariadb-install-db"} {
		p, err := lookPath(bin)
		if err != nil {
			t.Skipf("%s not installed (Debian package mariadb-server): %v", bin, err)
		}
		bins[i] = p
	}
	var owner *user.User
	if opts.Galera {
		if _, err := os.Stat(GaleraProvider); err != nil {
			t.Skipf("Galera provider missing (Debian package galera-4): %v", err)
		}
		if _, err := exec.LookPath("rsync"); err != nil {
			t.Skipf("rsync not installed (the Galera SST method): %v", err)
		}
		if os.Geteuid() == 0 {
			u, err := user.Lookup("mysql")
			if err != nil {
				t.Skipf("no mysql user to run a Galera node as (Debian package mariadb-server creates it): %v", err)
			}
			owner = u
		}
	} else if opts.Join != nil {
		t.Fatal("mariadbtest: Options.Join needs Options.Galera")
	}
	// A short directory of our own: a unix socket path must fit in 108 bytes,
	// and t.TempDir() paths grow with the test name.
	dir, err := os.MkdirTemp("", "mdbt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Dir:      dir,
		DataDir:  filepath.Join(dir, "data"),
		Socket:   filepath.Join(dir, "sock"),
		PidFile:  filepath.Join(dir, "pid"),
		ErrLog:   filepath.Join(dir, "err.log"),
		t:        t,
		opts:     opts,
		mariadbd: bins[0],
	}
	if opts.Galera {
		for _, p := range []*int{&s.GaleraPort, &s.istPort, &s.sstPort} {
			if *p, err = FreePort(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if opts.TCP {
		s.Addr = opts.Bind
		if s.Addr == "" {
			s.Addr = "127.0.0.1"
		}
		s.Port = opts.Port
		if s.Port == 0 {
			if s.Port, err = FreePort(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		s.Stop()
		if !t.Failed() {
			os.RemoveAll(dir)
			return
		}
		// Keep the error log's tail in the test output, then clean up.
		if b, err := os.ReadFile(s.ErrLog); err == nil {
			t.Logf("mariadbd error log (%s):\n%s", s.ErrLog, tail(string(b), 2000))
		}
		os.RemoveAll(dir)
	})
	// A private tmpdir: concurrent bootstraps sharing /tmp were seen to lose
	// each other's temporary tables (Unknown table 'mysql.tmp_user_sys').
	if err := os.Mkdir(s.tmpDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if owner != nil {
		if err := chownTo(dir, owner); err != nil {
			t.Fatal(err)
		}
	}
	install := exec.Command(bins[1], "--no-defaults",
		"--datadir="+s.DataDir, "--tmpdir="+s.tmpDir(), "--auth-root-authentication-method=normal",
		"--skip-test-db", "--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M")
	if os.Geteuid() == 0 {
		install.Args = append(install.Args, "--user="+s.runAs())
	}
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("running %v: %v: %s", install.Args, err, tail(string(out), 2000))
	}
	if owner != nil {
		// The install leaves files of root's (mysql_upgrade_info) behind.
		if err := chownTo(dir, owner); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// GaleraProvider is the wsrep provider of Debian's galera-4.
const GaleraProvider = "/usr/lib/galera/libgalera_smm.so"

// runAs is the user mariadbd runs as when the test runs as root.
func (s *Server) runAs() string {
	if s.opts.Galera {
		return "mysql"
	}
	return "root"
}

func chownTo(dir string, u *user.User) error {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// Restart starts a stopped server again on the same datadir, socket and port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Server) args() []string {
	a := []string{
		"--no-defaults",
		"--datadir=" + s.DataDir,
		"--socket=" + s.Socket,
		"--pid-file=" + s.PidFile,
		"--log-error=" + s.ErrLog,
		"--tmpdir=" + s.tmpDir(),
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=4M",
		"--innodb-flush-log-at-trx-commit=2",
		"--performance-schema=OFF",
		"--skip-name-resolve",
		"--max-connections=100",
		"--server-id=" + strconv.Itoa(max(s.opts.ServerID, 1)),
	}
	if os.Geteuid() == 0 {
		a = append(a, "--user="+s.runAs())
	}
	if s.Port != 0 {
		a = append(a, "--bind-address="+s.Addr, "--port="+strconv.Itoa(s.Port))
	} else {
		a = append(a, "--skip-networking")
	}
	if s.opts.LogBin {
		a = append(a, "--log-bin="+filepath.Join(s.DataDir, "binlog"), "--binlog-format=ROW")
	}
	if s.opts.Galera {
		a = append(a, s.galeraArgs()...)
	}
	return append(a, s.opts.Args...)
}

// galeraArgs make a Galera node on 127.0.0.1. The group communication
// timeouts are shortened (defaults: suspect 5 s, inactive 15 s) so that a
// node whose peer is killed leaves the Primary component within seconds.
func (s *Server) galeraArgs() []string {
	cluster := "gcomm://" // bootstrap a new cluster
	if j := s.opts.Join; j != nil {
		cluster = fmt.Sprintf("gcomm://127.0.0.1:%d", j.GaleraPort)
	}
	node := fmt.Sprintf("127.0.0.1:%d", s.GaleraPort)
	return []string{
		"--wsrep-on=ON",
		"--wsrep-provider=" + GaleraProvider,
		"--wsrep-cluster-name=mariadbtest",
		"--wsrep-cluster-address=" + cluster,
		"--wsrep-node-address=" + node,
		"--wsrep-node-name=" + filepath.Base(s.Dir),
		"--wsrep-sst-method=rsync",
		fmt.Sprintf("--wsrep-sst-receive-address=127.0.0.1:%d", s.sstPort),
		fmt.Sprintf("--wsrep-provider-options=gmcast.listen_addr=tcp://%s; ist.recv_addr=127.0.0.1:%d; gcache.size=16M; "+
			"evs.keepalive_period=PT0.5S; evs.inactive_check_period=PT0.5S; evs.suspect_timeout=PT2S; evs.inactive_timeout=PT3S",
			node, s.istPort),
		"--binlog-format=ROW",
		"--innodb-autoinc-lock-mode=2",
	}
}

func (s *Server) tmpDir() string { return filepath.Join(s.Dir, "tmp") }

func (s *Server) start() error {
	command := s.opts.Command
	if command == nil {
		command = exec.Command
	}
	cmd := command(s.mariadbd, s.args()...)
	cmd.Stdout, cmd.Stderr = nil, nil // everything goes to the error log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(s.ErrLog)
			return fmt.Errorf("mariadbd %v exited during start: %v\n%s", cmd.Args, cmd.ProcessState, tail(string(b), 2000))
		default:
		}
		err := s.ping()
		if err == nil && s.opts.Galera {
			err = s.synced()
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("mariadbd on %s not ready after 60s: %w", s.Socket, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) ping() error {
	db, err := s.rootDB()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// synced returns nil once a Galera node is Synced (wsrep_local_state 4).
func (s *Server) synced() error {
	rows, err := s.Query("SHOW GLOBAL STATUS LIKE 'wsrep_local_state'")
	if err != nil {
		return err
	}
	if len(rows) != 1 || rows[0][1] != "4" {
		return fmt.Errorf("galera node not synced: wsrep_local_state %v", rows)
	}
	return nil
}

// WaitStatus waits up to limit until every given global status variable
// has its value (SHOW GLOBAL STATUS), and fails t otherwise, saying what
// it last saw.
func (s *Server) WaitStatus(t testing.TB, limit time.Duration, want map[string]string) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, quote(n))
	}
	q := "SHOW GLOBAL STATUS WHERE Variable_name IN (" + strings.Join(names, ",") + ")"
	deadline := time.Now().Add(limit)
	for {
		rows, err := s.Query(q)
		got := map[string]string{}
		for _, r := range rows {
			got[r[0]] = r[1]
		}
		ok := err == nil
		for n, v := range want {
			ok = ok && got[n] == v
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %v not reached within %s: last %v, %v", want, limit, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Pid is the process id of the running mariadbd, 0 when stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop sends SIGTERM to the server's pid and waits for it to exit (SIGKILL
// after 30 s). Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.signalAndWait(syscall.SIGTERM, 30*time.Second)
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.signalAndWait(syscall.SIGKILL, 30*time.Second)
}

func (s *Server) signalAndWait(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
}

// rootDB opens a pool connected as root over the socket (empty password).
func (s *Server) rootDB() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = s.Socket
	cfg.Timeout = 2 * time.Second
	cfg.MultiStatements = true
	cfg.Logger = nopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// Query runs query (several statements may be separated by ';') as root and
// returns the rows of its first result as strings (NULL as "NULL").
func (s *Server) Query(query string) ([][]string, error) {
	db, err := s.rootDB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "NULL"
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	for rows.NextResultSet() {
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	return out, nil
}

// SQL runs query as root and fails t on error.
func (s *Server) SQL(t testing.TB, query string) [][]string {
	t.Helper()
	rows, err := s.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// CreateUser creates user with password for local connections (socket and
// TCP) and grants it each of grants, e.g. "SELECT ON *.*" or
// "REPLICATION CLIENT ON *.*".
func (s *Server) CreateUser(t testing.TB, user, password string, grants ...string) {
	t.Helper()
	q := fmt.Sprintf("CREATE USER %s@'localhost' IDENTIFIED BY %s; CREATE USER %s@'%%' IDENTIFIED BY %s",
		quote(user), quote(password), quote(user), quote(password))
	for _, g := range grants {
		q += fmt.Sprintf("; GRANT %s TO %s@'localhost'; GRANT %s TO %s@'%%'", g, quote(user), g, quote(user))
	}
	s.SQL(t, q)
}

// DefaultsFile writes a MySQL option file with a [client] section (user,
// password, socket) as the mysql CLI reads it, mode 0600, and returns its
// path. The password is written quoted and escaped: any text works.
func (s *Server) DefaultsFile(user, password string) string {
	return s.writeDefaults(user, password, fmt.Sprintf("socket=%s\n", s.Socket))
}

// DefaultsFileTCP is DefaultsFile with host and port instead of the socket.
func (s *Server) DefaultsFileTCP(user, password string) string {
	if s.Port == 0 {
		s.t.Fatal("mariadbtest: DefaultsFileTCP on a server started without TCP")
	}
	return s.writeDefaults(user, password, fmt.Sprintf("host=%s\nport=%d\n", s.Addr, s.Port))
}

func (s *Server) writeDefaults(user, password, where string) string {
	f, err := os.CreateTemp(s.Dir, "client-*.cnf")
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	// Quoted and escaped, so that any password survives the option-file
	// syntax ('#' would otherwise start a comment).
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(password)
	fmt.Fprintf(f, "[client]\nuser=%s\npassword=\"%s\"\n%s", user, esc, where)
	if err := f.Chmod(0o600); err != nil {
		s.t.Fatal(err)
	}
	return f.Name()
}

// ReplicateFrom makes s a replica of src over TCP (src needs Options.TCP and
// LogBin), using GTIDs from the start, with a replication user it creates on
// src, and starts both replication threads.
func (s *Server) ReplicateFrom(t testing.TB, src *Server) {
	t.Helper()
	if src.Port == 0 || !src.opts.LogBin {
		t.Fatal("mariadbtest: ReplicateFrom needs a source started with TCP and LogBin")
	}
	src.SQL(t, "CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'")
	s.SQL(t, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos; START SLAVE",
		quote(src.Addr), src.Port))
}

// GeneralLog records every command the server receives in
// mysql.general_log until the returned function stops it and returns, per
// client thread in order of appearance, the command types seen (Connect,
// Query, Quit, ...), the caller's own excluded. Several statements sent in
// one packet are one Query.
func (s *Server) GeneralLog(t testing.TB) (stop func() [][]string) {
	t.Helper()
	s.SQL(t, "SET GLOBAL general_log=0; SET GLOBAL log_output='TABLE'; TRUNCATE mysql.general_log; SET GLOBAL general_log=1")
	return func() [][]string {
		rows := s.SQL(t, "SELECT thread_id, command_type FROM mysql.general_log WHERE thread_id <> CONNECTION_ID() ORDER BY event_time")
		s.SQL(t, "SET GLOBAL general_log=0")
		byThread := map[string][]string{}
		var order []string
		for _, r := range rows {
			if _, seen := byThread[r[0]]; !seen {
				order = append(order, r[0])
			}
			byThread[r[0]] = append(byThread[r[0]], r[1])
		}
		var out [][]string
		for _, id := range order {
			out = append(out, byThread[id])
		}
		return out
	}
}

// Commands counts, over the threads GeneralLog returned, the connections
// and the commands that are request/response round trips after the
// handshake (everything but Connect and Quit).
func Commands(threads [][]string) (conns, queries int) {
	for _, th := range threads {
		for _, c := range th {
			switch c {
			case "Connect":
				conns++
			case "Quit":
			default:
				queries++
			}
		}
	}
	return conns, queries
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	// mariadbd lives in /usr/sbin, which a non-root PATH may lack.
	p := filepath.Join("/usr/sbin", bin)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("not found in PATH or /usr/sbin")
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}
