// Package mysqlconn is how the attribute agents (mysql_monitor and
// server_load) reach MySQL: the connection parameters they declare and the
// probe those parameters make. Apart from package attrs, so that agents
// sharing attrs' state files and attrd publishing (clustervip's flood
// check) do not link the MySQL driver.
package mysqlconn

import (
	"context"
	"errors"
	"time"

	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/loadmon"
)

// Parameters both agents use to reach MySQL; explicit parameters override
// the defaults file, as the mysql CLI's options override its option files.
// There is deliberately no password parameter: instance parameters are
// readable by anyone who can read the CIB.
func MySQLParams(forLoad bool) []ocf.Param {
	what := "the server to watch"
	if forLoad {
		what = "the server whose Threads_running and Threads_connected count as load (see probe_mysql)"
	}
	return []ocf.Param{
		{Name: "defaults_file", ShortDesc: "MySQL option file with the credentials",
			LongDesc: "Path of a MySQL option file whose [client] section (user, password, host, port, socket) says how to reach " + what + ", as mysql --defaults-file reads it. Keep it mode 0600; the password is never passed on a command line."},
		{Name: "user", ShortDesc: "MySQL user (overrides defaults_file)",
			LongDesc: "MySQL user to log in as; overrides user= of defaults_file; root when neither says. Its password can only come from defaults_file. Debian's root@localhost logs in over the socket without a password (unix_socket) because the agent runs as root, so on Debian no defaults file is needed."},
		{Name: "socket", ShortDesc: "unix socket (overrides defaults_file)",
			LongDesc: "Unix socket of the server; overrides socket= of defaults_file. Used unless host names a remote host. Default from defaults_file, else " + loadmon.DefaultSocket + "."},
		{Name: "host", ShortDesc: "TCP host (overrides defaults_file)",
			LongDesc: "Host to connect to over TCP; overrides host= of defaults_file. Empty or localhost means the unix socket."},
		{Name: "port", Type: ocf.Integer, ShortDesc: "TCP port (overrides defaults_file)",
			LongDesc: "TCP port; overrides port= of defaults_file. Default 3306.",
			Check: func(v string) error {
				if n := attrs.Atoi(v); n < 1 || n > 65535 {
					return errors.New("not a TCP port (1..65535)")
				}
				return nil
			}},
		{Name: "connect_timeout", Type: ocf.Integer, Default: "5", ShortDesc: "seconds to connect and query",
			LongDesc: "Seconds one probe (connect and query together) may take; it is also kept under half of the monitor operation's timeout, so a hung server becomes an attribute value, not a timed-out monitor.",
			Check:    attrs.Positive},
	}
}

// MySQLProbe builds the probe from the parameters; enabled is false when
// the agent has a probe_mysql parameter and it is false.
func MySQLProbe(p ocf.Params, optional bool) (m *loadmon.MySQL, enabled bool, err error) {
	if optional && !p.Bool("probe_mysql") {
		return nil, false, nil
	}
	var c loadmon.Conn
	if f := p.String("defaults_file"); f != "" {
		if c, err = loadmon.ReadDefaultsFile(f, "loadshare"); err != nil {
			return nil, false, &ocf.ParamError{Param: "defaults_file", Value: f, Reason: err.Error(), Local: true}
		}
	}
	if p.IsSet("user") {
		c.User = p.String("user")
	}
	if p.IsSet("socket") {
		c.Socket = p.String("socket")
	}
	if p.IsSet("host") {
		c.Host = p.String("host")
	}
	if p.IsSet("port") {
		c.Port = int(p.Int("port"))
	}
	if c.User == "" {
		c.User = "root"
	}
	return &loadmon.MySQL{Conn: c, Timeout: time.Duration(p.Int("connect_timeout")) * time.Second}, true, nil
}

// ProbeTimeout keeps a probe under half of what is left of the operation,
// leaving the rest for attrd_updater and the state file.
func ProbeTimeout(ctx context.Context, want time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) / 2; left < want {
			return max(left, 100*time.Millisecond)
		}
	}
	return want
}
