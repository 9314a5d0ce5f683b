// Package e2e runs loadshare's end-to-end scenarios on the real lab
// (test/lab): Corosync, Pacemaker and MariaDB in namespaces.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/lab"
)

// newLab starts the e2e lab (own names and state, so that it never meets
// the CLI's lab nor test/lab's) and tears it down when t ends.
func newLab(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	lab.SkipUnlessCapable(t, cfg)
	if cfg.Prefix == "" {
		cfg.Prefix = "lsl-e"
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/tmp/loadshare-lab-e2e"
	}
	log := lab.TestLogger(t, slog.LevelInfo)
	l, err := lab.Up(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes() {
				if out, err := l.Exec(context.Background(), n, "crm_mon", "-1", "-A", "-r"); err == nil {
					t.Logf("crm_mon on %s at failure:\n%s", n, out)
					break
				}
			}
		}
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("lab start to all online with quorum: %s", l.QuorumAfter.Round(time.Millisecond))
	return l
}

// waitFor polls cond every 200 ms for up to d; it fails t with what on timeout.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	t0 := time.Now()
	var last string
	for time.Since(t0) < d {
		ok, state := cond()
		if ok {
			return time.Since(t0)
		}
		last = state
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not reached in %s (last: %s)", what, d, last)
	return 0
}

// TestCluster is the cluster without loadshare's agents: membership and
// quorum, a node attribute set with attrd_updater on one node and seen on
// another and by the stock ha_cluster_exporter, and a node crash and rejoin.
func TestCluster(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := context.Background()

	t.Run("quorum", func(t *testing.T) {
		for _, n := range l.Nodes() {
			c, err := l.Cluster(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.Online(), " "); got != "n1 n2 n3" || !c.Quorum || c.DC == "" {
				t.Errorf("%s sees online [%s] quorum=%v dc=%q, want [n1 n2 n3] with quorum and a DC", n, got, c.Quorum, c.DC)
			}
		}
		for _, n := range l.Nodes() {
			m, err := l.Memory(n)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s memory (PSS of corosync, pacemaker, MariaDB): %d MiB", n, m>>20)
		}
	})

	t.Run("attribute", func(t *testing.T) {
		if _, err := l.Exec(ctx, "n2", "attrd_updater", "-n", "server_load", "-U", "40"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Exec(ctx, "n1", "attrd_updater", "-n", "writable_monit", "-U", "1"); err != nil {
			t.Fatal(err)
		}
		d := waitFor(t, 10*time.Second, "server_load=40 of n2 in n1's crm_mon XML", func() (bool, string) {
			c, err := l.Cluster(ctx, "n1")
			if err != nil {
				return false, err.Error()
			}
			v, _ := c.Attr("n2", "server_load")
			w, _ := c.Attr("n1", "writable_monit")
			return v == "40" && w == "1", fmt.Sprintf("n2 server_load=%q n1 writable_monit=%q", v, w)
		})
		t.Logf("attribute visible on another node after %s", d.Round(time.Millisecond))
	})

	t.Run("exporter", func(t *testing.T) {
		if _, err := exec.LookPath("ha_cluster_exporter"); err != nil {
			t.Skipf("needs ha_cluster_exporter (Debian package prometheus-hacluster-exporter): %v", err)
		}
		exporterShows(t, l, "n3", "node attributes", func() ([]string, error) {
			return []string{
				`ha_cluster_pacemaker_node_attributes{name="server_load",node="n2",value="40"} 1`,
				`ha_cluster_pacemaker_node_attributes{name="writable_monit",node="n1",value="1"} 1`,
			}, nil
		})
	})

	t.Run("crash and rejoin", func(t *testing.T) {
		t0 := time.Now()
		if err := l.Crash("n3"); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"n1", "n2"} {
			waitFor(t, 30*time.Second, n+" sees n3 offline", func() (bool, string) {
				c, err := l.Cluster(ctx, n)
				if err != nil {
					return false, err.Error()
				}
				on := strings.Join(c.Online(), " ")
				return on == "n1 n2" && c.Quorum, "online " + on
			})
		}
		t.Logf("crash of n3 noticed by n1 and n2 after %s", time.Since(t0).Round(time.Millisecond))
		t0 = time.Now()
		if err := l.Start(ctx, "n3"); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitOnline(ctx, l.Nodes()...); err != nil {
			t.Fatal(err)
		}
		t.Logf("n3 back online with quorum after %s", time.Since(t0).Round(time.Millisecond))
	})
}

// scrape returns the set of sample lines of a Prometheus text exposition.
func scrape(hc *http.Client, url string) (map[string]bool, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	lines := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") {
			lines[l] = true
		}
	}
	return lines, sc.Err()
}

// vipTable is the name of the lab VIP's nftables tables (every family):
// what an operator sees in nft list tables.
func vipTable(l *lab.Lab) string {
	return "loadshare-" + strings.NewReplacer(".", "_", ":", "_").Replace(l.VIP().String())
}
