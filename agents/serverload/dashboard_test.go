package serverload

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	kmetrics "github.com/loadshare/loadshare/clusterip/metrics"
	cmetrics "github.com/loadshare/loadshare/crm/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

const dashboard = "../../contrib/grafana/loadshare.json"

// exported is every metric name the collectors Metrics registers can
// export, from their descriptors.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc, 100)
	for _, c := range []prometheus.Collector{&kmetrics.Kernel{}, &cmetrics.Cluster{}, &cmetrics.Placer{}} {
		c.Describe(ch)
	}
	close(ch)
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("descriptor without a name: %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// dashboardQueries is every PromQL expression of the dashboard: panel
// targets and template variable queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	var out []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	lv := regexp.MustCompile(`label_values\(([a-z_:]+),`)
	for _, v := range d.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			m := lv.FindStringSubmatch(q.Query)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(METRIC, LABEL)", v.Name, q.Query)
				continue
			}
			out = append(out, m[1])
		}
	}
	return out
}

// TestDashboardMetricsExist: every metric a query of the Grafana dashboard
// uses is one the exposition has, and every query is valid PromQL
// (promtool parses them as recording rules), with Grafana's variables
// replaced by what Grafana puts there.
func TestDashboardMetricsExist(t *testing.T) {
	have := exported(t)
	queries := dashboardQueries(t)
	name := regexp.MustCompile(`\b(loadshare_[a-z_]+)\b`)
	used := map[string]bool{}
	for _, q := range queries {
		ms := name.FindAllString(q, -1)
		if len(ms) == 0 {
			t.Errorf("query %q uses no loadshare metric", q)
		}
		for _, m := range ms {
			used[m] = true
			if !have[m] {
				t.Errorf("query %q uses %s, which the exposition does not have", q, m)
			}
		}
	}
	for _, want := range []string{"loadshare_kernel_buckets_owned", "loadshare_bucket_new_connections_total", "loadshare_node_server_load",
		"loadshare_node_writable", "loadshare_vip_buckets_unowned", "loadshare_placer_moves_total"} {
		if !used[want] {
			t.Errorf("the dashboard has no panel with %s", want)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): the queries' syntax is not checked")
	}
	grafana := strings.NewReplacer(`$__rate_interval`, `1m`, `$address`, `.*`)
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	for i, q := range queries {
		fmt.Fprintf(&rules, "  - record: dashboard:q%d\n    expr: %q\n", i, grafana.Replace(q))
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s\n%s", err, out, rules.String())
	}
}
