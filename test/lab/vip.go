package lab

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/vishvananda/netns"
)

// VIPResource is the id of the lab's VIP clone primitive: instances vip:0…
const VIPResource = "vip"

// ServiceConfig is the Pacemaker configuration the lab applies for the
// shared VIP: the attribute agents (mysql_monitor, server_load) as clones
// and the VIP as a globally-unique clone of clustervip, one instance per
// bucket, resource-stickiness 0 (instances spread again after a node
// returns), and a ban of nodes whose writable_monit is 0.
//
// The nodes of the lab share one kernel, so the host components of
// server_load (CPU, load average, iowait, memory) are the same on every
// node and say nothing about one node; the lab weighs only the per-node
// database components (Threads_running, Threads_connected).
func (l *Lab) ServiceConfig(buckets int) string {
	vip := l.VIP().String()
	return fmt.Sprintf(`<resources>
  <clone id="mysql_monitor-clone">
    <meta_attributes id="mysql_monitor-clone-meta"><nvpair id="mysql_monitor-clone-interleave" name="interleave" value="true"/></meta_attributes>
    <primitive id="mysql_monitor" class="ocf" provider="loadshare" type="mysql_monitor">
      <instance_attributes id="mysql_monitor-params">
        <nvpair id="mysql_monitor-socket" name="socket" value="/run/mysqld/mysqld.sock"/>
        <nvpair id="mysql_monitor-dampen" name="dampen" value="0"/>
        <nvpair id="mysql_monitor-timeout" name="connect_timeout" value="2"/>
      </instance_attributes>
      <operations><op id="mysql_monitor-monitor" name="monitor" interval="2s" timeout="10s"/></operations>
    </primitive>
  </clone>
  <clone id="server_load-clone">
    <meta_attributes id="server_load-clone-meta"><nvpair id="server_load-clone-interleave" name="interleave" value="true"/></meta_attributes>
    <primitive id="server_load" class="ocf" provider="loadshare" type="server_load">
      <instance_attributes id="server_load-params">
        <nvpair id="server_load-socket" name="socket" value="/run/mysqld/mysqld.sock"/>
        <nvpair id="server_load-dampen" name="dampen" value="0"/>
        <nvpair id="server_load-half_life" name="half_life" value="4"/>
        <nvpair id="server_load-step" name="step" value="10"/>
        <nvpair id="server_load-w-cpu" name="weight_cpu" value="0"/>
        <nvpair id="server_load-w-load" name="weight_load" value="0"/>
        <nvpair id="server_load-w-iowait" name="weight_iowait" value="0"/>
        <nvpair id="server_load-w-memory" name="weight_memory" value="0"/>
        <nvpair id="server_load-w-dbt" name="weight_db_threads" value="80"/>
        <nvpair id="server_load-w-dbc" name="weight_db_connections" value="20"/>
      </instance_attributes>
      <operations><op id="server_load-monitor" name="monitor" interval="2s" timeout="10s"/></operations>
    </primitive>
  </clone>
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
        <nvpair id="%[1]s-nic" name="nic" value="eth0"/>
        <nvpair id="%[1]s-drain" name="drain_grace" value="2"/>
      </instance_attributes>
      <operations>
        <op id="%[1]s-monitor" name="monitor" interval="5s" timeout="20s"/>
        <op id="%[1]s-stop" name="stop" interval="0" timeout="20s"/>
      </operations>
    </primitive>
  </clone>
</resources>
<constraints>
  <rsc_location id="%[1]s-not-unwritable" rsc="%[1]s-clone">
    <rule id="%[1]s-not-unwritable-rule" score="-INFINITY">
      <expression id="%[1]s-not-unwritable-expr" attribute="writable_monit" operation="eq" value="0"/>
    </rule>
  </rsc_location>
</constraints>`, VIPResource, buckets, vip)
}

// ConfigureService applies ServiceConfig on a running cluster (through
// node viewer): rsc_defaults resource-stickiness=0, no-quorum-policy=ignore
// (so that the last node standing keeps serving, as in the seed article's
// two-of-three failure; without fencing, a lab-only choice), then the
// resources and constraints.
// Equivalent to: cibadmin --replace -o resources/constraints
func (l *Lab) ConfigureService(ctx context.Context, viewer string, buckets int) error {
	for _, a := range [][]string{
		{"--type", "rsc_defaults", "--name", "resource-stickiness", "--update", "0"},
		{"--type", "crm_config", "--name", "no-quorum-policy", "--update", "ignore"},
	} {
		if _, err := l.Exec(ctx, viewer, "crm_attribute", a...); err != nil {
			return err
		}
	}
	cfg := l.ServiceConfig(buckets)
	i := strings.Index(cfg, "<constraints>")
	if _, err := l.Exec(ctx, viewer, "cibadmin", "--replace", "-o", "resources", "--xml-text", cfg[:i]); err != nil {
		return err
	}
	if _, err := l.Exec(ctx, viewer, "cibadmin", "--replace", "-o", "constraints", "--xml-text", cfg[i:]); err != nil {
		return err
	}
	return nil
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
		id, ok := strings.CutPrefix(r.ID, VIPResource+":")
		if !ok || !r.Active || r.Node == "" {
			continue
		}
		k, err := strconv.Atoi(id)
		if err != nil {
			continue
		}
		t.Pacemaker[r.Node] = append(t.Pacemaker[r.Node], k)
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
func (l *Lab) KernelOwned(node string) ([]int, error) {
	h, err := netns.GetFromName(l.Netns(node))
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", l.Netns(node), err)
	}
	defer h.Close()
	p, err := clusterip.New(clusterip.WithNetNS(int(h)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node, err)
	}
	sts, err := p.Status()
	if err != nil {
		return nil, fmt.Errorf("%s: read VIP status: %w", node, err)
	}
	owned := []int{}
	for _, s := range sts {
		if s.VIP.Addr != l.VIP() {
			continue
		}
		for _, b := range s.Owned {
			owned = append(owned, int(b))
		}
	}
	sort.Ints(owned)
	return owned, nil
}
