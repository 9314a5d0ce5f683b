package dpbench

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLExchange returns an exchange that logs in to MySQL/MariaDB at dst
// as user, runs `SELECT 1, @@server_id, USER()` and quits. Conn.Server is
// "s" + the server_id, Conn.Peer the client host the server saw. enter runs
// the dial in the client's network namespace (nstest.NS.Do), whichever
// thread the driver dials from.
func MySQLExchange(user, password string, enter func(func() error) error) func(context.Context, netip.AddrPort, time.Duration) Conn {
	return func(ctx context.Context, dst netip.AddrPort, timeout time.Duration) Conn {
		r := Conn{Dst: dst}
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", dst.String()
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = timeout, timeout, timeout
		cfg.Logger = nopLogger{} // errors are returned and counted, not printed
		start := time.Now()
		cfg.DialFunc = func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			d := net.Dialer{Timeout: timeout}
			derr := enter(func() error {
				c, err = d.DialContext(ctx, network, addr)
				return nil
			})
			r.Connect = time.Since(start)
			if derr != nil {
				return nil, derr
			}
			if a, ok := c.(*net.TCPConn); ok && err == nil {
				r.Local = a.LocalAddr().(*net.TCPAddr).AddrPort()
			}
			return c, err
		}
		conn, err := mustConnector(cfg).Connect(ctx)
		if err != nil {
			r.Err = fmt.Errorf("log in to %s: %w", dst, err)
			return r
		}
		defer conn.Close()
		rows, err := conn.(driver.QueryerContext).QueryContext(ctx, "SELECT 1, @@server_id, USER()", nil)
		if err != nil {
			r.Err = fmt.Errorf("query %s: %w", dst, err)
			return r
		}
		row := make([]driver.Value, 3)
		err = rows.Next(row)
		rows.Close()
		r.Request = time.Since(start)
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("no row")
			}
			r.Err = fmt.Errorf("query %s: %w", dst, err)
			return r
		}
		r.Server = "s" + str(row[1])
		if u := str(row[2]); strings.LastIndexByte(u, '@') >= 0 {
			r.Peer = u[strings.LastIndexByte(u, '@')+1:]
		}
		return r
	}
}

func mustConnector(cfg *mysql.Config) driver.Connector {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		panic(err) // only for an invalid Config, which is built above
	}
	return c
}

// str is a text-protocol value as a string ([]byte, or int64 where the
// driver parses integers).
func str(v driver.Value) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}
