package loadmon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/loadshare/loadshare/test/mariadbtest"
)

func probeOf(t *testing.T, cnf string, replica bool) *MySQL {
	t.Helper()
	c, err := ReadDefaultsFile(cnf)
	if err != nil {
		t.Fatal(err)
	}
	return &MySQL{Conn: c, Timeout: 3 * time.Second, Replica: replica}
}

func TestMySQLSampleMariaDB(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.Options{TCP: true})
	srv.CreateUser(t, "mon", "s3cret#x", "SLAVE MONITOR ON *.*")
	srv.CreateUser(t, "plain", "pw") // USAGE only
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		cnf  string
	}{
		{"socket", srv.DefaultsFile("mon", "s3cret#x")}, // written quoted: # would start a comment
		{"tcp", srv.DefaultsFileTCP("mon", "s3cret#x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := probeOf(t, tc.cnf, true).Sample(ctx)
			if err != nil {
				t.Fatalf("Sample: %v", err)
			}
			if !strings.Contains(st.Version, "MariaDB") || st.Flavor != FlavorMariaDB {
				t.Errorf("Version, Flavor = %q, %v; want MariaDB", st.Version, st.Flavor)
			}
			if !st.Writable() || st.ReadOnly {
				t.Errorf("Writable() = false on a fresh server: %+v", st)
			}
			if st.MaxConnections != 100 || st.ThreadsRunning < 1 || st.ThreadsConnected < 1 {
				t.Errorf("MaxConnections, ThreadsRunning, ThreadsConnected = %d, %d, %d; want 100, ≥1, ≥1",
					st.MaxConnections, st.ThreadsRunning, st.ThreadsConnected)
			}
			if st.Replica != nil || st.ReplicaErr != nil {
				t.Errorf("Replica, ReplicaErr = %+v, %v on a primary; want nil, nil", st.Replica, st.ReplicaErr)
			}
			if st.Galera != nil {
				t.Errorf("Galera = %+v without a wsrep provider, want nil", st.Galera)
			}
			if st.RoundTrips != 1 || st.HandshakeRoundTrips != 1 {
				t.Errorf("RoundTrips, HandshakeRoundTrips = %d, %d; want 1, 1", st.RoundTrips, st.HandshakeRoundTrips)
			}
		})
	}

	srv.SQL(t, "SET GLOBAL read_only=1")
	st, err := probeOf(t, srv.DefaultsFile("mon", "s3cret#x"), false).Sample(ctx)
	if err != nil || !st.ReadOnly || st.Writable() {
		t.Errorf("after SET GLOBAL read_only=1: ReadOnly=%v Writable()=%v err=%v; want true, false, nil", st.ReadOnly, st.Writable(), err)
	}
	srv.SQL(t, "SET GLOBAL read_only=0")

	// Without the privilege for SHOW SLAVE STATUS the status part still arrives.
	st, err = probeOf(t, srv.DefaultsFile("plain", "pw"), true).Sample(ctx)
	var me *mysql.MySQLError
	if err != nil || !errors.As(st.ReplicaErr, &me) || me.Number != 1227 || st.RoundTrips != 1 {
		t.Errorf("Sample as a user without SLAVE MONITOR: ReplicaErr=%v err=%v RoundTrips=%d; want error 1227, nil, 1", st.ReplicaErr, err, st.RoundTrips)
	}
	if !st.Writable() || st.MaxConnections != 100 {
		t.Errorf("status part without SLAVE MONITOR = %+v; want writable, max_connections 100", st)
	}

	// Failures, each classified.
	_, err = probeOf(t, srv.DefaultsFile("mon", "wrong"), false).Sample(ctx)
	wantKind(t, "wrong password", err, ErrAccessDenied)
	if err != nil && strings.Contains(err.Error(), "wrong") {
		t.Errorf("error text %q holds the password", err)
	}

	srv.Stop()
	_, err = probeOf(t, srv.DefaultsFile("mon", "s3cret#x"), false).Sample(ctx)
	wantKind(t, "stopped server, socket", err, ErrDown)
	_, err = probeOf(t, srv.DefaultsFileTCP("mon", "s3cret#x"), false).Sample(ctx)
	wantKind(t, "stopped server, tcp", err, ErrDown)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("stopped server over TCP: %v; want ECONNREFUSED in the chain", err)
	}
}

// TestMySQLSampleGalera reads a real Galera node's state with the rest,
// in the one query round trip (counted on the probe's connection and by
// the server's general log), Synced and then desynced.
func TestMySQLSampleGalera(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.Options{Galera: true})
	srv.CreateUser(t, "mon", "pw", "SLAVE MONITOR ON *.*")
	m := probeOf(t, srv.DefaultsFile("mon", "pw"), true)
	ctx := context.Background()

	stop := srv.GeneralLog(t)
	st, err := m.Sample(ctx)
	threads := stop()
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	want := Galera{Provider: "Galera", Ready: true, Cluster: "Primary", State: GaleraSynced, StateComment: "Synced", ClusterSize: 1}
	if st.Galera == nil || *st.Galera != want {
		t.Errorf("Galera = %+v, want %+v", st.Galera, want)
	}
	if conns, queries := mariadbtest.Commands(threads); conns != 1 || queries != 1 || st.RoundTrips != 1 {
		t.Errorf("one Sample: %d connections, %d queries in the general log (%v), RoundTrips %d; want 1, 1, 1", conns, queries, threads, st.RoundTrips)
	}
	if st.ThreadsRunning < 1 || st.ThreadsConnected < 1 || !st.Writable() {
		t.Errorf("the rest of the status on a Galera node: %+v", st)
	}
	if ok, reason := st.Galera.Available(false); !ok {
		t.Errorf("Available(false) on a Synced node = false, %q", reason)
	}

	srv.SQL(t, "SET GLOBAL wsrep_desync=ON")
	st, err = m.Sample(ctx)
	if err != nil || st.Galera == nil || st.Galera.State != GaleraDonor || st.Galera.StateComment != "Donor/Desynced" {
		t.Fatalf("desynced: Galera %+v, err %v; want wsrep_local_state 2 (Donor/Desynced)", st.Galera, err)
	}
	if ok, reason := st.Galera.Available(false); ok || reason != "wsrep_local_state=2 (Donor/Desynced)" {
		t.Errorf("desynced: Available(false) = %v, %q; want false and the state", ok, reason)
	}
	if ok, _ := st.Galera.Available(true); !ok {
		t.Errorf("desynced: Available(true) = false, want true (donor allowed)")
	}
}

func TestGaleraAvailable(t *testing.T) {
	synced := Galera{Provider: "Galera", Ready: true, Cluster: "Primary", State: 4, StateComment: "Synced"}
	with := func(f func(*Galera)) Galera { g := synced; f(&g); return g }
	for _, tc := range []struct {
		name    string
		g       Galera
		donorOK bool
		ok      bool
		reason  string
	}{
		{"synced", synced, false, true, ""},
		{"donor", with(func(g *Galera) { g.State, g.StateComment = 2, "Donor/Desynced" }), false, false, "wsrep_local_state=2 (Donor/Desynced)"},
		{"donor allowed", with(func(g *Galera) { g.State, g.StateComment = 2, "Donor/Desynced" }), true, true, ""},
		{"joined, donor allowed", with(func(g *Galera) { g.State, g.StateComment = 3, "Joined" }), true, false, "wsrep_local_state=3 (Joined)"},
		{"non-Primary", with(func(g *Galera) { g.Ready, g.Cluster, g.State, g.StateComment = false, "non-Primary", 0, "Initialized" }), true, false,
			"wsrep_ready=OFF, wsrep_cluster_status=non-Primary, wsrep_local_state=0 (Initialized)"},
		{"not ready", with(func(g *Galera) { g.Ready = false }), false, false, "wsrep_ready=OFF"},
	} {
		if ok, reason := tc.g.Available(tc.donorOK); ok != tc.ok || reason != tc.reason {
			t.Errorf("%s: Available(%v) = %v, %q; want %v, %q", tc.name, tc.donorOK, ok, reason, tc.ok, tc.reason)
		}
	}
}

func TestMySQLSampleTimeout(t *testing.T) {
	// A listener that accepts and never greets: a hung server.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	m := &MySQL{Conn: Conn{User: "u", Host: "127.0.0.1", Port: port}, Timeout: 200 * time.Millisecond}
	_, err = m.Sample(context.Background())
	wantKind(t, "silent server", err, ErrTimeout)
}

func wantKind(t *testing.T, what string, err error, want ErrorKind) {
	t.Helper()
	var pe *ProbeError
	if !errors.As(err, &pe) {
		t.Errorf("%s: error %v (%T), want a *ProbeError of kind %v", what, err, err, want)
		return
	}
	if pe.Kind != want {
		t.Errorf("%s: kind %v (%v), want %v", what, pe.Kind, err, want)
	}
}

func TestClassify(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	bg := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want ErrorKind
	}{
		{"access denied", bg, &mysql.MySQLError{Number: 1045, Message: "Access denied"}, ErrAccessDenied},
		{"host not allowed", bg, &mysql.MySQLError{Number: 1130}, ErrAccessDenied},
		{"too many", bg, &mysql.MySQLError{Number: 1040}, ErrTooManyConnections},
		{"shutdown", bg, &mysql.MySQLError{Number: 1053}, ErrDown},
		{"other server error", bg, &mysql.MySQLError{Number: 1064}, ErrOther},
		{"no such host", bg, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "db9", IsNotFound: true}}, ErrUnknownHost},
		{"dns timeout", bg, &net.DNSError{Err: "i/o timeout", Name: "db9", IsTimeout: true}, ErrTimeout},
		{"refused", bg, &net.OpError{Op: "dial", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}, ErrDown},
		{"no socket", bg, &net.OpError{Op: "dial", Err: fmt.Errorf("connect: %w", syscall.ENOENT)}, ErrDown},
		{"invalid conn", bg, mysql.ErrInvalidConn, ErrDown},
		{"deadline", expired, errors.New("anything"), ErrTimeout},
		{"unknown", bg, errors.New("something else"), ErrOther},
	} {
		if got := classify(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: classify(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestDialectFor(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    *dialect
	}{
		{"5.5.5-10.11.19-MariaDB-0+deb12u1", portable},
		{"11.4.2-MariaDB", portable},
		{"8.0.36-28", mysql8},
		{"8.0.21", mysql57},
		{"8.4.0", mysql8},
		{"5.7.44-log", mysql57},
		{"5.6.51", portable},
		{"", portable},
	} {
		if got := dialectFor(tc.version); got != tc.want {
			t.Errorf("dialectFor(%q) = %q, want %q", tc.version, got.query(true), tc.want.query(true))
		}
	}
	if q := mysql8.query(true); !strings.HasSuffix(q, "; SHOW REPLICA STATUS") || !strings.Contains(q, "super_read_only") {
		t.Errorf("mysql8.query(true) = %q: want super_read_only and SHOW REPLICA STATUS", q)
	}
}

// BenchmarkMySQLSample measures one probe in-process (connect, one query
// with the replica status, close) against a private MariaDB, and reports the
// round trips the probe counted on its connection.
func BenchmarkMySQLSample(b *testing.B) {
	srv := mariadbtest.Start(b, mariadbtest.Options{})
	srv.CreateUser(b, "mon", "pw", "SLAVE MONITOR ON *.*")
	c, err := ReadDefaultsFile(srv.DefaultsFile("mon", "pw"))
	if err != nil {
		b.Fatal(err)
	}
	m := &MySQL{Conn: c, Replica: true}
	rounds := max(b.N, 50)
	var rt, hs int
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < rounds; i++ {
		st, err := m.Sample(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		rt += st.RoundTrips
		hs += st.HandshakeRoundTrips
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(elapsed)/float64(rounds)/float64(time.Millisecond), "ms/sample")
	b.ReportMetric(float64(rt)/float64(rounds), "query-roundtrips/sample")
	b.ReportMetric(float64(hs)/float64(rounds), "handshake-roundtrips/sample")
	if rt != rounds {
		b.Errorf("%d query round trips in %d samples, want exactly one each", rt, rounds)
	}
}

// TestMySQLSampleDebianRoot: Debian's root@localhost is "IDENTIFIED VIA
// mysql_native_password USING 'invalid' OR unix_socket". The probe, running
// as OS root over the socket without a password (the agents' default: no
// defaults_file, user root), gets in through unix_socket in one handshake
// round trip.
func TestMySQLSampleDebianRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unix_socket authentication as root needs to run as root")
	}
	srv := mariadbtest.Start(t, mariadbtest.Options{})
	srv.SQL(t, "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket")
	st, err := (&MySQL{Conn: Conn{User: "root", Socket: srv.Socket}}).Sample(context.Background())
	if err != nil || st.HandshakeRoundTrips != 1 || st.RoundTrips != 1 {
		t.Fatalf("Sample as root by unix_socket: %+v, %v; want success in 1+1 round trips", st, err)
	}
	_, err = (&MySQL{Conn: Conn{User: "nobody", Socket: srv.Socket}}).Sample(context.Background())
	wantKind(t, "unknown user by socket", err, ErrAccessDenied)
}
