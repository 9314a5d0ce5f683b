package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/nstest"
)

// VIPResource is the resource name of the lab's VIP: clone instances vip:K
// (ByClone), primitives vip_K (ByPlacer).
const VIPResource = "vip"

// ReaderResource is the resource name of a replication lab's reader VIP
// (Config.DB replication): primitives ro_K, on nodes with readable_monit=1.
const ReaderResource = "ro"

// VIP6Resource is the resource name of a dual stack lab's IPv6 VIP
// (Config.IPv6): primitives vip6_K, placed by the placer as vip's.
const VIP6Resource = "vip6"

// Placement says how the lab places the VIP's buckets.
type Placement int

const (
	// ByPlacer is loadshare's placement: the configuration `loadshare crm`
	// generates (one clustervip primitive per bucket, location rules on
	// own_vip_K and writable_monit), with the placer run by the server_load
	// agent's monitor (parameter placer=vip; only the DC writes), which
	// writes the own_vip_K attributes from writable_monit and server_load.
	ByPlacer Placement = iota
	// ByClone is a globally-unique clone of clustervip (instance K owns
	// bucket K) that Pacemaker spreads evenly, with a ban of nodes whose
	// writable_monit is 0: health-driven, not load-driven.
	ByClone
)

func (p Placement) String() string {
	if p == ByClone {
		return "clone"
	}
	return "placer"
}

// ParsePlacement parses "placer" or "clone".
func ParsePlacement(s string) (Placement, error) {
	switch s {
	case "placer":
		return ByPlacer, nil
	case "clone":
		return ByClone, nil
	}
	return 0, fmt.Errorf("placement %q: must be placer or clone", s)
}

// agentBinary is the loadshare CLI inside a node (Config.CLI, copied).
const agentBinary = "/usr/lib/ocf/resource.d/loadshare/.loadshare"

// attrAgentArgs are the lab's settings of the attribute agents, as
// loadshare crm options.
//
// The nodes of the lab share one kernel, so the host components of
// server_load (CPU, load average, iowait, memory) are the same on every
// node and say nothing about one node; the lab weighs only the per-node
// database components (Threads_running, Threads_connected), with a short
// half-life, 2 s monitors and a 6 s placer settle so that the demo moves
// in seconds.
var attrAgentArgs = []string{
	"--attr-monitor", "2",
	"--param", "mysql_monitor:socket=/run/mysqld/mysqld.sock",
	"--param", "mysql_monitor:dampen=0",
	"--param", "mysql_monitor:connect_timeout=2",
	"--param", "server_load:socket=/run/mysqld/mysqld.sock",
	"--param", "server_load:dampen=0",
	"--param", "server_load:half_life=4",
	"--param", "server_load:step=10",
	"--param", "server_load:weight_cpu=0",
	"--param", "server_load:weight_load=0",
	"--param", "server_load:weight_iowait=0",
	"--param", "server_load:weight_memory=0",
	"--param", "server_load:weight_db_threads=80",
	"--param", "server_load:weight_db_connections=20",
	"--param", "server_load:placer_settle=6",
}

// generate runs `loadshare crm` (the binary installed in the nodes) in
// viewer for the lab's VIP in buckets buckets, with the lab's attribute
// agents and extra options, and returns its resources and constraints,
// and the cluster properties it sets (name, value, name, value …).
func (l *Lab) generate(ctx context.Context, viewer string, buckets int, extra ...string) (resources, constraints string, props []string, err error) {
	args := []string{"crm", "--ip", l.VIP().String(), "--buckets", strconv.Itoa(buckets), "--cidr-netmask", "24", "--nic", "eth0"}
	if l.cfg.DB == DBReplication && !l.cfg.NoDB && len(extra) == 0 {
		// A strict writer VIP on the primary, a reader VIP over the
		// caught-up replicas (and the primary).
		args = []string{"crm",
			fmt.Sprintf("--vip=name=%s,ip=%s,buckets=%d,cidr-netmask=24,nic=eth0,strict=true", VIPResource, l.VIP(), buckets),
			fmt.Sprintf("--vip=name=%s,ip=%s,buckets=%d,cidr-netmask=24,nic=eth0,require=readable_monit", ReaderResource, l.ReaderVIP(), buckets)}
	} else if l.cfg.IPv6 && len(extra) == 0 {
		// Dual stack: the same service on a second VIP over IPv6.
		args = []string{"crm",
			fmt.Sprintf("--vip=name=%s,ip=%s,buckets=%d,cidr-netmask=24,nic=eth0", VIPResource, l.VIP(), buckets),
			fmt.Sprintf("--vip=name=%s,ip=%s,buckets=%d,cidr-netmask=64,nic=eth0", VIP6Resource, l.VIP6(), buckets)}
	}
	args = append(append(args, "--format", "xml"), attrAgentArgs...)
	if l.cfg.Backend != "" {
		args = append(args, "--param", "clustervip:backend="+l.cfg.Backend)
		if l.cfg.sourceHashed() {
			// loadshare crm leaves out the flood check (an nftables table).
			args = append(args, "--param", "clustervip:hash=sourceip")
		}
	}
	out, err := l.Exec(ctx, viewer, agentBinary, append(args, extra...)...)
	if err != nil {
		return "", "", nil, fmt.Errorf("generate the configuration with loadshare crm: %w", err)
	}
	x := string(out)
	section := func(name string) (string, error) {
		i, j := strings.Index(x, "<"+name+">"), strings.Index(x, "</"+name+">")
		if i < 0 || j < i {
			return "", fmt.Errorf("loadshare crm --format xml: no <%s> section", name)
		}
		return x[i : j+len(name)+3], nil
	}
	if resources, err = section("resources"); err != nil {
		return "", "", nil, err
	}
	if constraints, err = section("constraints"); err != nil {
		return "", "", nil, err
	}
	crmConfig, err := section("crm_config")
	if err != nil {
		crmConfig = "" // <crm_config/>: no property
	}
	for _, m := range nvpairRE.FindAllStringSubmatch(crmConfig, -1) {
		props = append(props, m[1], m[2])
	}
	return resources, constraints, props, nil
}

// nvpairRE is an nvpair as loadshare crm --format xml writes it.
var nvpairRE = regexp.MustCompile(`<nvpair id="[^"]*" name="([^"]*)" value="([^"]*)"/>`)

// cloneConfig is the ByClone configuration: resources and constraints, the
// attribute agents (without placer) as loadshare crm generates them.
func (l *Lab) cloneConfig(ctx context.Context, viewer string, buckets int) (resources, constraints string, err error) {
	generated, _, _, err := l.generate(ctx, viewer, 1, "--param", "server_load:placer=")
	if err != nil {
		return "", "", err
	}
	i := strings.Index(generated, `<clone id="mysql_monitor-clone">`)
	j := strings.Index(generated, `<clone id="server_load-clone">`)
	k := strings.Index(generated[max(j, 0):], "</clone>")
	if i < 0 || j < i || k < 0 {
		return "", "", errors.New("loadshare crm --format xml: no attribute agent clones")
	}
	agents := generated[i : j+k+len("</clone>")]
	// drain_grace stays the agent's default, as in the placer's
	// configuration: with stickiness 0 Pacemaker reshuffles a unique
	// clone's instances, so a node that keeps serving can hold none for a
	// moment; a drain shorter than the gap to its next start removed the
	// VIP there and broke its established sessions (TestVIP/clone's
	// long-lived session, with drain_grace=2).
	// The backend as the placer's configuration has it (generate).
	backend := ""
	if l.cfg.Backend != "" {
		backend = fmt.Sprintf("\n        <nvpair id=%q name=\"backend\" value=%q/>", VIPResource+"-backend", l.cfg.Backend)
		if l.cfg.sourceHashed() {
			backend += fmt.Sprintf("\n        <nvpair id=%q name=\"hash\" value=\"sourceip\"/>", VIPResource+"-hash")
		}
	}
	resources = fmt.Sprintf(`<resources>%[4]s
  <clone id="%[1]s-clone">
    <meta_attributes id="%[1]s-clone-meta">
      <nvpair id="%[1]s-clone-max" name="clone-max" value="%[2]d"/>
      <nvpair id="%[1]s-clone-node-max" name="clone-node-max" value="%[2]d"/>
      <nvpair id="%[1]s-clone-unique" name="globally-unique" value="true"/>
      <nvpair id="%[1]s-clone-stickiness" name="resource-stickiness" value="0"/>
    </meta_attributes>
    <primitive id="%[1]s" class="ocf" provider="loadshare" type="clustervip">
      <instance_attributes id="%[1]s-params">
        <nvpair id="%[1]s-ip" name="ip" value="%[3]s"/>
        <nvpair id="%[1]s-cidr" name="cidr_netmask" value="24"/>
        <nvpair id="%[1]s-nic" name="nic" value="eth0"/>%[5]s
      </instance_attributes>
      <operations>
        <op id="%[1]s-monitor" name="monitor" interval="5s" timeout="20s"/>
        <op id="%[1]s-stop" name="stop" interval="0" timeout="20s"/>
      </operations>
    </primitive>
  </clone>
</resources>`, VIPResource, buckets, l.VIP(), agents, backend)
	constraints = fmt.Sprintf(`<constraints>
  <rsc_location id="%[1]s-not-unwritable" rsc="%[1]s-clone">
    <rule id="%[1]s-not-unwritable-rule" score="-INFINITY">
      <expression id="%[1]s-not-unwritable-expr" attribute="writable_monit" operation="eq" value="0"/>
    </rule>
  </rsc_location>
</constraints>`, VIPResource)
	return resources, constraints, nil
}

// ConfigureService configures the loadshare service on a running cluster
// (through node viewer): the attribute agents and the VIP in buckets
// buckets, placed as how says, and rsc_defaults resource-stickiness=0;
// ByPlacer also sets the cluster properties loadshare crm generates
// (load-threshold=0%), so the lab runs what operators get. The lab's
// stonith resource (if it fences) is kept. no-quorum-policy stays
// Pacemaker's default, stop: a node left without quorum stops its buckets.
// The nodes need the agents (Config.Agents).
// Equivalent to: crm_attribute --type crm_config --name NAME --update VALUE;
// cibadmin --replace -o resources / -o constraints
func (l *Lab) ConfigureService(ctx context.Context, viewer string, buckets int, how Placement) error {
	return l.configure(ctx, viewer, buckets, how)
}

// ConfigureServiceWith is ConfigureService by the placer, with extra
// options of loadshare crm (e.g. "--param", "clustervip:mac_mode=unicast").
func (l *Lab) ConfigureServiceWith(ctx context.Context, viewer string, buckets int, extra ...string) error {
	return l.configure(ctx, viewer, buckets, ByPlacer, extra...)
}

func (l *Lab) configure(ctx context.Context, viewer string, buckets int, how Placement, extra ...string) error {
	if l.cfg.Agents == "" {
		return errors.New("configure service: the lab has no agents installed (Config.Agents)")
	}
	var res, cons string
	var props []string
	var err error
	switch how {
	case ByClone:
		res, cons, err = l.cloneConfig(ctx, viewer, buckets)
	default:
		// The whole service as loadshare crm generates it, its cluster
		// properties (load-threshold) too; server_load's monitor runs
		// the placer.
		res, cons, props, err = l.generate(ctx, viewer, buckets, extra...)
	}
	if err != nil {
		return err
	}
	sets := [][]string{{"--type", "rsc_defaults", "--name", "resource-stickiness", "--update", "0"}}
	for i := 0; i+1 < len(props); i += 2 {
		sets = append(sets, []string{"--type", "crm_config", "--name", props[i], "--update", props[i+1]})
	}
	for _, a := range sets {
		if _, err := l.Exec(ctx, viewer, "crm_attribute", a...); err != nil {
			return err
		}
	}
	if f := l.fencePrimitive(); f != "" {
		res = strings.Replace(res, "<resources>", "<resources>\n  "+f, 1)
	}
	if _, err := l.Exec(ctx, viewer, "cibadmin", "--replace", "-o", "resources", "--xml-text", res); err != nil {
		return err
	}
	if _, err := l.Exec(ctx, viewer, "cibadmin", "--replace", "-o", "constraints", "--xml-text", cons); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.cfg.StateDir, "placement"), []byte(how.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.cfg.StateDir, "buckets"), []byte(strconv.Itoa(buckets)), 0o644); err != nil {
		return err
	}
	return nil
}

// placement returns how the service was configured, if it was.
func (l *Lab) placement() (Placement, bool) {
	b, err := os.ReadFile(filepath.Join(l.cfg.StateDir, "placement"))
	if err != nil {
		return 0, false
	}
	p, err := ParsePlacement(strings.TrimSpace(string(b)))
	return p, err == nil
}

// ServiceBuckets returns the bucket count ConfigureService was given; 0
// when the service is not configured.
func (l *Lab) ServiceBuckets() int {
	b, err := os.ReadFile(filepath.Join(l.cfg.StateDir, "buckets"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// BucketTable says which node owns which bucket of the VIP, as Pacemaker
// sees it and as each node's kernel holds it.
type BucketTable struct {
	Buckets   int
	Pacemaker map[string][]int // node → instances running there (vip:K → K)
	Kernel    map[string][]int // node → buckets in the node's nftables owned set
}

// Counts returns per node how many buckets its kernel owns, in node order.
func (t BucketTable) Counts(nodes []string) []int {
	c := make([]int, len(nodes))
	for i, n := range nodes {
		c[i] = len(t.Kernel[n])
	}
	return c
}

// Check returns nil when every bucket 0..Buckets-1 is owned by exactly one
// node in the kernels and Pacemaker agrees with the kernels.
func (t BucketTable) Check() error {
	owner := make([][]string, t.Buckets)
	for n, bs := range t.Kernel {
		for _, b := range bs {
			if b < 0 || b >= t.Buckets {
				return fmt.Errorf("node %s owns bucket %d outside 0..%d", n, b, t.Buckets-1)
			}
			owner[b] = append(owner[b], n)
		}
	}
	var bad []string
	for b, o := range owner {
		if len(o) != 1 {
			sort.Strings(o)
			bad = append(bad, fmt.Sprintf("bucket %d owned by [%s]", b, strings.Join(o, " ")))
		}
	}
	for n, bs := range t.Pacemaker {
		if fmt.Sprint(bs) != fmt.Sprint(t.Kernel[n]) {
			bad = append(bad, fmt.Sprintf("%s: pacemaker runs %v, kernel owns %v", n, bs, t.Kernel[n]))
		}
	}
	for n, bs := range t.Kernel {
		if _, ok := t.Pacemaker[n]; !ok && len(bs) > 0 {
			bad = append(bad, fmt.Sprintf("%s: pacemaker runs none, kernel owns %v", n, bs))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("buckets not owned exactly once: %s", strings.Join(bad, "; "))
	}
	return nil
}

// String prints one line per node: "n1  4  [0 3 6 9]".
func (t BucketTable) String() string {
	var ns []string
	for n := range t.Kernel {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "  %-4s %3d buckets %v\n", n, len(t.Kernel[n]), t.Kernel[n])
	}
	return b.String()
}

// Buckets reads the bucket table: Pacemaker's view from viewer's crm_mon,
// and the owned set from the kernel of every running node.
func (l *Lab) Buckets(ctx context.Context, viewer string, buckets int) (BucketTable, error) {
	t := BucketTable{Buckets: buckets, Pacemaker: map[string][]int{}, Kernel: map[string][]int{}}
	c, err := l.Cluster(ctx, viewer)
	if err != nil {
		return t, err
	}
	for _, r := range c.Resources {
		id, ok := strings.CutPrefix(r.ID, VIPResource+":") // clone instance vip:K
		if !ok {
			id, ok = strings.CutPrefix(r.ID, VIPResource+"_") // primitive vip_K
		}
		if !ok || len(r.Nodes) == 0 {
			continue
		}
		k, err := strconv.Atoi(id)
		if err != nil {
			continue
		}
		t.Pacemaker[r.Nodes[0]] = append(t.Pacemaker[r.Nodes[0]], k)
	}
	for n := range t.Pacemaker {
		sort.Ints(t.Pacemaker[n])
	}
	for _, n := range l.Nodes() {
		if !l.Running(n) {
			continue
		}
		owned, err := l.KernelOwned(n)
		if err != nil {
			return t, err
		}
		t.Kernel[n] = owned
	}
	return t, nil
}

// KernelOwned returns the VIP buckets node's kernel owns (read through
// package clusterip in the node's network namespace), sorted.
func (l *Lab) KernelOwned(node string) ([]int, error) { return l.KernelOwnedOf(node, l.VIP()) }

// KernelOwnedOf returns the buckets of the VIP vip that node's kernel owns,
// sorted.
func (l *Lab) KernelOwnedOf(node string, vip netip.Addr) ([]int, error) {
	st, ok, err := l.KernelVIP(node, vip)
	if err != nil {
		return nil, err
	}
	owned := []int{}
	if ok {
		for _, b := range st.Owned {
			owned = append(owned, int(b))
		}
	}
	sort.Ints(owned)
	return owned, nil
}

// KernelVIP returns what node's kernel holds of the VIP vip (read through
// package clusterip in the node's network namespace: its settings as read
// back, owned buckets, address); ok is false when it holds nothing of it.
func (l *Lab) KernelVIP(node string, vip netip.Addr) (st clusterip.Status, ok bool, err error) {
	ns, err := nstest.Open(l.Netns(node))
	if err != nil {
		return st, false, err
	}
	defer ns.Close()
	// Bound to nftables: the automatic choice probes with a commit, and a
	// lab polled every 200 ms would void the node's monitor caches as often.
	p, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithBackend(clusterip.BackendNFTables))
	if err != nil {
		return st, false, fmt.Errorf("%s: %w", node, err)
	}
	sts, err := p.Status()
	if err != nil {
		return st, false, fmt.Errorf("%s: read VIP status: %w", node, err)
	}
	for _, s := range sts {
		if s.VIP.Addr == vip {
			return s, true, nil
		}
	}
	return st, false, nil
}

// Targets returns the placer's bucket target per node, as node computes it
// now. Equivalent to: loadshare crm place --dry-run (inside node)
func (l *Lab) Targets(ctx context.Context, node string) (map[string]int, error) {
	out, err := l.Exec(ctx, node, agentBinary, "crm", "place", "--dry-run")
	if err != nil {
		return nil, err
	}
	t := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "target" {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("loadshare crm place --dry-run: line %q: %w", line, err)
			}
			t[f[0]] = n
		}
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("loadshare crm place --dry-run printed no targets: %q", out)
	}
	return t, nil
}
