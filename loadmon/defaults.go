package loadmon

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Conn says where a server is and whom to log in as: the [client] options
// of a MySQL defaults file. The password never appears on a command line or
// in String().
type Conn struct {
	User     string
	Password string
	Host     string // "" or "localhost": the unix socket, as the mysql CLI does
	Port     int    // TCP port; 0 means 3306
	Socket   string // unix socket; "" means DefaultSocket
	Protocol string // "tcp" forces TCP even for localhost; "socket" forces the socket
}

// Network returns the driver's network ("unix" or "tcp") and address.
func (c Conn) Network() (network, addr string) {
	useSocket := c.Host == "" || c.Host == "localhost"
	switch strings.ToLower(c.Protocol) {
	case "tcp":
		useSocket = false
	case "socket":
		useSocket = true
	}
	if useSocket {
		s := c.Socket
		if s == "" {
			s = DefaultSocket
		}
		return "unix", s
	}
	host := c.Host
	if host == "" {
		host = "localhost"
	}
	port := c.Port
	if port == 0 {
		port = 3306
	}
	return "tcp", net.JoinHostPort(host, strconv.Itoa(port))
}

// String is "unix:/path" or "tcp:host:port", for logs.
func (c Conn) String() string {
	n, a := c.Network()
	return n + ":" + a
}

// ReadDefaultsFile reads a MySQL option file as the mysql CLI does with
// --defaults-file: the options of group [client] and of each of groups, the
// last one in file order winning, following !include and !includedir. Keys: user,
// password, host, port, socket, protocol; others are ignored. Values may be
// quoted; '#' outside quotes starts a comment.
func ReadDefaultsFile(path string, groups ...string) (Conn, error) {
	want := map[string]bool{"client": true}
	for _, g := range groups {
		want[strings.ToLower(g)] = true
	}
	opts := map[string]string{} // the last value in file order wins, as in the client
	err := readOptionFile(path, 0, func(group, key, value string) {
		if want[group] {
			opts[key] = value
		}
	})
	if err != nil {
		return Conn{}, err
	}
	c := Conn{
		User:     opts["user"],
		Password: opts["password"],
		Host:     opts["host"],
		Socket:   opts["socket"],
		Protocol: opts["protocol"],
	}
	if p := opts["port"]; p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Conn{}, fmt.Errorf("read %s: port=%q: not a TCP port", path, p)
		}
		c.Port = n
	}
	return c, nil
}

func readOptionFile(path string, depth int, set func(group, key, value string)) error {
	if depth > 8 {
		return fmt.Errorf("read %s: !include nested too deep", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read defaults file: %w", err)
	}
	defer f.Close()
	group := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || s[0] == '#' || s[0] == ';':
			continue
		case strings.HasPrefix(s, "!includedir"):
			dir := strings.TrimSpace(strings.TrimPrefix(s, "!includedir"))
			names, _ := filepath.Glob(filepath.Join(dir, "*.cnf"))
			sort.Strings(names)
			for _, n := range names {
				if err := readOptionFile(n, depth+1, set); err != nil {
					return err
				}
			}
			continue
		case strings.HasPrefix(s, "!include"):
			if err := readOptionFile(strings.TrimSpace(strings.TrimPrefix(s, "!include")), depth+1, set); err != nil {
				return err
			}
			continue
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return fmt.Errorf("read %s:%d: group %q: missing ]", path, line, s)
			}
			group = strings.ToLower(strings.TrimSpace(s[1:end]))
			continue
		}
		key, value, _ := strings.Cut(stripComment(s), "=")
		key = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "-", "_")
		set(group, key, unquote(strings.TrimSpace(value)))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// stripComment cuts a '#' comment that is not inside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0 && c == '\\':
			i++
		case c == '\'' || c == '"':
			if quote == 0 {
				quote = c
			} else if quote == c {
				quote = 0
			}
		case c == '#' && quote == 0:
			return s[:i]
		}
	}
	return s
}

// unquote removes matching surrounding quotes and reads the escapes the
// mysql client reads (\n \t \r \b \s \\ \' \"); others keep their backslash.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' || i == len(v)-1 {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 's':
			b.WriteByte(' ')
		case '\\', '\'', '"':
			b.WriteByte(v[i])
		default: // unknown escapes keep their backslash, as the client does
			b.WriteByte('\\')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}
