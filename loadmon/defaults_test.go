package loadmon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestReadDefaultsFile(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "inc.cnf")
	os.WriteFile(inc, []byte("[client]\nsocket=/from/include\n"), 0o600)
	for _, tc := range []struct {
		name, text string
		groups     []string
		want       Conn
	}{
		{"plain", "[client]\nuser=mon\npassword=pw\nsocket=/run/x.sock\n", nil,
			Conn{User: "mon", Password: "pw", Socket: "/run/x.sock"}},
		{"spaces comments dashes", "# top\n[client]\n; note\nuser = mon # trailing\npassword=s3cret#x\nhost = db1\nport=3307\n", nil,
			Conn{User: "mon", Password: "s3cret", Host: "db1", Port: 3307}},
		{"quotes and escapes", "[client]\npassword=\"a#b\\\"c\"\nsocket=/a\\sb\nuser='x\\qy'\n", nil,
			Conn{User: `x\qy`, Password: `a#b"c`, Socket: "/a b"}},
		{"other groups ignored, last wins", "[mysqld]\nport=1\n[client]\nuser=a\nport=2\n[loadshare]\nuser=b\nport=3\n[client]\nport=4\n", []string{"loadshare"},
			Conn{User: "b", Port: 4}},
		{"as mariadbtest writes it", "[client]\npassword=\"pa'ss#\\\"w\\\\d ;x\"\n", nil,
			Conn{Password: `pa'ss#"w\d ;x`}},
		{"include", "[client]\nuser=u\n!include " + inc + "\n", nil,
			Conn{User: "u", Socket: "/from/include"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "my.cnf")
			os.WriteFile(p, []byte(tc.text), 0o600)
			got, err := ReadDefaultsFile(p, tc.groups...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ReadDefaultsFile(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
			// The client's own reader is the reference, where installed.
			if mpd, err := exec.LookPath("my_print_defaults"); err == nil {
				out, err := exec.Command(mpd, append([]string{"--defaults-file=" + p, "client"}, tc.groups...)...).Output()
				if err != nil {
					t.Fatalf("my_print_defaults: %v", err)
				}
				ref := Conn{}
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					k, v, _ := strings.Cut(strings.TrimPrefix(l, "--"), "=")
					switch k {
					case "user":
						ref.User = v
					case "password":
						ref.Password = v
					case "host":
						ref.Host = v
					case "socket":
						ref.Socket = v
					case "port":
						ref.Port, _ = strconv.Atoi(v)
					}
				}
				if got != ref {
					t.Errorf("ReadDefaultsFile = %+v, my_print_defaults says %+v", got, ref)
				}
			}
		})
	}
	if _, err := ReadDefaultsFile(filepath.Join(dir, "missing.cnf")); err == nil {
		t.Error("ReadDefaultsFile(missing file) succeeded")
	}
	bad := filepath.Join(dir, "bad.cnf")
	os.WriteFile(bad, []byte("[client]\nport=abc\n"), 0o600)
	if _, err := ReadDefaultsFile(bad); err == nil || !strings.Contains(err.Error(), `port="abc"`) {
		t.Errorf("ReadDefaultsFile(port=abc) = %v, want an error naming port=\"abc\"", err)
	}
}

func TestConnNetwork(t *testing.T) {
	for _, tc := range []struct {
		c    Conn
		want string
	}{
		{Conn{}, "unix:" + DefaultSocket},
		{Conn{Host: "localhost", Socket: "/s"}, "unix:/s"},
		{Conn{Host: "localhost", Protocol: "tcp"}, "tcp:localhost:3306"},
		{Conn{Host: "127.0.0.1", Port: 3307, Socket: "/s"}, "tcp:127.0.0.1:3307"},
		{Conn{Host: "::1"}, "tcp:[::1]:3306"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.c, got, tc.want)
		}
	}
}
