package dpbench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// lookDB returns the paths of mariadbd and mariadb-install-db, or an
// ErrPrerequisite error.
func lookDB() (mariadbd, install string, err error) {
	var bins [2]string
	for i, bin := range []string{"mariadbd", "mariadb-install-db"} {
		p, err := exec.LookPath(bin)
		if err != nil {
			// mariadbd lives in /usr/sbin, which a non-root PATH may lack.
			if _, serr := os.Stat(filepath.Join("/usr/sbin", bin)); serr != nil {
				return "", "", fmt.Errorf("%w: %s not installed (Debian package mariadb-server): %v", ErrPrerequisite, bin, err)
			}
			p = filepath.Join("/usr/sbin", bin)
		}
		bins[i] = p
	}
	return bins[0], bins[1], nil
}

// startDB starts a private MariaDB in every server namespace (server_id
// i+1, port 3306 on every address, the VIPs included) with a user for the
// client, on datadirs below the lab's directory; each is stopped by its pid
// when the lab closes. Calling it again does nothing.
func (l *lab) startDB(ctx context.Context) error {
	if l.dbUp {
		return nil
	}
	mariadbd, install, err := lookDB()
	if err != nil {
		return err
	}
	for i, ns := range l.servers {
		// A short directory (a unix socket path must fit in 108 bytes) with a
		// private tmpdir: temporary tables in the shared /tmp were seen to
		// vanish while other suites ran MariaDB.
		dir := filepath.Join(l.dir, "db-"+serverNames[i])
		data, tmp, sock := filepath.Join(dir, "data"), filepath.Join(dir, "tmp"), filepath.Join(dir, "sock")
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return err
		}
		ic := exec.CommandContext(ctx, install, "--no-defaults", "--datadir="+data, "--tmpdir="+tmp,
			"--auth-root-authentication-method=normal", "--skip-test-db", "--user=root",
			"--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M")
		if out, err := ic.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: mariadb-install-db: %w: %s", ns.Name, err, tail(out))
		}
		errLog := filepath.Join(dir, "err.log")
		cmd := ns.Command(mariadbd, "--no-defaults", "--datadir="+data, "--socket="+sock,
			"--pid-file="+filepath.Join(dir, "pid"), "--log-error="+errLog, "--tmpdir="+tmp,
			"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--innodb-flush-log-at-trx-commit=2",
			"--performance-schema=OFF", "--skip-name-resolve", "--max-connections=100", "--user=root",
			"--server-id="+strconv.Itoa(i+1), "--bind-address=0.0.0.0", "--port="+strconv.Itoa(mariadbPorts.port),
			// 4 client workers; keep the threads for reuse, as a busy server would.
			"--thread-cache-size=16")
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%s: start mariadbd: %w", ns.Name, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		l.defer_(func() error { return stopDB(cmd, exited) })
		if err := l.initDB(ctx, sock, exited); err != nil {
			b, _ := os.ReadFile(errLog)
			return fmt.Errorf("%s: mariadbd: %w\n%s", ns.Name, err, tail(b))
		}
	}
	l.dbUp = true
	return nil
}

// stopDB sends SIGTERM to mariadbd's pid and waits (SIGKILL after 30 s).
func stopDB(cmd *exec.Cmd, exited chan struct{}) error {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("mariadbd pid %d: killed after 30 s", cmd.Process.Pid)
	}
}

// initDB waits (up to 60 s) until the server answers root over sock, then
// creates the benchmark's user.
func (l *lab) initDB(ctx context.Context, sock string, exited chan struct{}) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", sock
	cfg.Timeout = 2 * time.Second
	cfg.MultiStatements = true
	cfg.Logger = nopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return errors.New("exited during start")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 60 s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", dbUser, dbPassword)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create user %s: %w", dbUser, err)
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		return "..." + string(b[len(b)-2000:])
	}
	return string(b)
}
