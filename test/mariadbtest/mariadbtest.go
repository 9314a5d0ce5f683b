// Package mariadbtest starts private MariaDB servers for tests: Debian's
// mariadbd on a throwaway datadir and unix socket (plus, when asked, a TCP
// port), never the system service. Each server is stopped by its pid and its
// files removed when the test ends.
//
// It needs mariadbd and mariadb-install-db (Debian package mariadb-server);
// without them, and under go test -short, the test skips, saying why. Any
// other failure fails the test.
//
//	srv := mariadbtest.Start(t, mariadbtest.Options{})
//	srv.CreateUser(t, "mon", "secret", "REPLICATION CLIENT ON *.*")
//	cnf := srv.DefaultsFile("mon", "secret") // [client] user, password, socket
//	srv.SQL(t, "SET GLOBAL read_only=1")
//	srv.Stop()                               // SIGTERM, wait; Restart() brings it back
package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
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

	t        testing.TB
	opts     Options
	mariadbd string // resolved path

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
	install := exec.Command(bins[1], "--no-defaults",
		"--datadir="+s.DataDir, "--tmpdir="+s.tmpDir(), "--auth-root-authentication-method=normal",
		"--skip-test-db", "--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M")
	if os.Geteuid() == 0 {
		install.Args = append(install.Args, "--user=root")
	}
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("running %v: %v: %s", install.Args, err, tail(string(out), 2000))
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
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
		a = append(a, "--user=root")
	}
	if s.Port != 0 {
		a = append(a, "--bind-address="+s.Addr, "--port="+strconv.Itoa(s.Port))
	} else {
		a = append(a, "--skip-networking")
	}
	if s.opts.LogBin {
		a = append(a, "--log-bin="+filepath.Join(s.DataDir, "binlog"), "--binlog-format=ROW")
	}
	return append(a, s.opts.Args...)
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
