package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
)

// TestReplication runs the service on a replication lab (n1 primary, n2
// and n3 its GTID replicas): a strict writer VIP on the primary only and a
// reader VIP over the nodes with readable_monit; a replica whose SQL
// thread stops loses its reader buckets and gets them back; a switchover
// to n2 moves the writer VIP's buckets there. Clients through both VIPs
// are answered by the right nodes (@@hostname, @@read_only).
func TestReplication(t *testing.T) {
	bin := buildbin.Dir(t)
	l := newLab(t, lab.Config{Agents: bin, DB: lab.DBReplication})
	ctx := context.Background()
	if err := l.ConfigureService(ctx, "n1", buckets, lab.ByPlacer); err != nil {
		t.Fatal(err)
	}
	owned := func(vip netip.Addr) []int {
		var got []int
		for _, n := range l.Nodes() {
			o, err := l.KernelOwnedOf(n, vip)
			if err != nil {
				return nil
			}
			got = append(got, len(o))
		}
		return got
	}
	waitOwned := func(what string, vip netip.Addr, ok func([]int) bool) {
		t.Helper()
		d := waitFor(t, 90*time.Second, what, func() (bool, string) {
			got := owned(vip)
			return got != nil && ok(got), fmt.Sprint(got)
		})
		t.Logf("%s: %v after %s", what, owned(vip), d.Round(time.Millisecond))
	}
	// answers makes n connections to vip and returns, per answering node,
	// how many; every answer must carry the node's expected read_only.
	answers := func(vip netip.Addr, n int, readOnly map[string]string) map[string]int {
		t.Helper()
		db := l.DB(vip)
		defer db.Close()
		got := map[string]int{}
		for range n {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var host, ro string
			err := db.QueryRowContext(cctx, "SELECT @@hostname, @@read_only").Scan(&host, &ro)
			cancel()
			if err != nil {
				t.Fatalf("connection to %s: %v", vip, err)
			}
			if want, ok := readOnly[host]; !ok || want != ro {
				t.Fatalf("connection to %s answered by %s read_only=%s, want one of %v", vip, host, ro, readOnly)
			}
			got[host]++
		}
		t.Logf("%d connections to %s: %v", n, vip, got)
		return got
	}
	onlyOn := func(i int) func([]int) bool {
		return func(c []int) bool {
			w := make([]int, len(c))
			w[i] = buckets
			return slices.Equal(c, w)
		}
	}
	allOwned := func(c []int) bool {
		s := 0
		for _, x := range c {
			if x == 0 {
				return false
			}
			s += x
		}
		return s == buckets
	}

	waitOwned("writer VIP on the primary n1 only", l.VIP(), onlyOn(0))
	waitOwned("reader VIP over n1, n2, n3", l.ReaderVIP(), allOwned)
	answers(l.VIP(), 100, map[string]string{"n1": "0"})
	if got := answers(l.ReaderVIP(), 300, map[string]string{"n1": "0", "n2": "1", "n3": "1"}); len(got) != 3 {
		t.Errorf("reader VIP answered by %v, want n1, n2 and n3", got)
	}

	t.Run("lagging replica loses its reader buckets", func(t *testing.T) {
		if _, err := l.SQL(ctx, "n2", "STOP SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
		waitOwned("n2 (SQL thread stopped) owns no reader bucket", l.ReaderVIP(), func(c []int) bool {
			return c[1] == 0 && c[0]+c[2] == buckets
		})
		answers(l.ReaderVIP(), 200, map[string]string{"n1": "0", "n3": "1"})
		if _, err := l.SQL(ctx, "n2", "START SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
		waitOwned("n2 caught up owns reader buckets again", l.ReaderVIP(), allOwned)
	})

	t.Run("switchover moves the writer VIP", func(t *testing.T) {
		if _, err := l.SQL(ctx, "n1", "CREATE DATABASE e2e; CREATE TABLE e2e.t (id INT PRIMARY KEY); INSERT INTO e2e.t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if err := l.Switchover(ctx, "n1", "n2"); err != nil {
			t.Fatal(err)
		}
		waitOwned("writer VIP on the new primary n2 only", l.VIP(), onlyOn(1))
		answers(l.VIP(), 100, map[string]string{"n2": "0"})
		// A write through the writer VIP reaches the replicas, n1 now among them.
		db := l.DB(l.VIP())
		defer db.Close()
		if _, err := db.ExecContext(ctx, "INSERT INTO e2e.t VALUES (2)"); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"n1", "n3"} {
			waitFor(t, 30*time.Second, n+" has the row written on n2", func() (bool, string) {
				out, err := l.SQL(ctx, n, "SELECT COUNT(*) FROM e2e.t")
				return err == nil && out == "2\n", fmt.Sprintf("%q %v", out, err)
			})
		}
		waitOwned("reader VIP over n1, n2, n3 after the switchover", l.ReaderVIP(), allOwned)
		answers(l.ReaderVIP(), 300, map[string]string{"n1": "1", "n2": "0", "n3": "1"})
	})
}
