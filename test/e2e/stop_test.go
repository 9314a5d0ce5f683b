package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/footprint"
	"github.com/loadshare/loadshare/test/lab"
)

// stopLab is a lab whose nodes' footprints (read with the independent
// tools inside each node) were taken before the VIP's first start.
type stopLab struct {
	*lab.Lab
	t      *testing.T
	before map[string]footprint.Footprint
	marks  []string // the VIP's table name, address, and this lab's sysctl records
}

func (s *stopLab) read(node string) (footprint.Footprint, error) {
	f, err := footprint.Read(func(name string, args ...string) ([]byte, error) {
		return s.Exec(context.Background(), node, name, args...)
	}, footprint.Options{
		Sysctls: []string{"net.ipv4.conf.all.arp_announce", "net.ipv4.conf.eth0.arp_announce"},
		RunDir:  clusterip.DefaultRunDir,
	})
	if err != nil {
		return f, err
	}
	// The run directory is the host's, shared with whatever else runs on
	// it: keep this lab's files only.
	var files []string
	for _, n := range f.Files {
		for _, m := range s.marks {
			if strings.Contains(n, m) {
				files = append(files, n)
				break
			}
		}
	}
	f.Files = files
	return f, nil
}

// left is what node holds now that it did not before the first start, or
// lost ("" when it is as before).
func (s *stopLab) left(node string) string {
	f, err := s.read(node)
	if err != nil {
		return err.Error()
	}
	return s.before[node].Diff(f)
}

// waitClean waits until every node in nodes is as before the first start.
// The lab's nodes share the host's /run, where a node's lock and cache
// files of the VIP are named by the address alone: with the VIP still on
// another node (some), its files are that node's, and only the per-node
// parts are compared.
func (s *stopLab) waitClean(step string, some bool, nodes ...string) {
	s.t.Helper()
	d := waitFor(s.t, 60*time.Second, step+": nodes "+strings.Join(nodes, ",")+" as before the VIP's first start", func() (bool, string) {
		var out []string
		for _, n := range nodes {
			d := s.left(n)
			if some {
				var keep []string
				for _, line := range strings.Split(d, "\n") {
					if !strings.HasPrefix(line, "+ file ") && !strings.HasPrefix(line, "- file ") {
						keep = append(keep, line)
					}
				}
				d = strings.TrimSpace(strings.Join(keep, "\n"))
			}
			if d != "" {
				out = append(out, n+" (-before +now):\n"+d)
			}
		}
		return len(out) == 0, strings.Join(out, "\n")
	})
	s.t.Logf("%s: nodes %v hold nothing of the VIP after %s", step, nodes, d.Round(time.Millisecond))
}

// crm runs a cluster tool on n1.
func (s *stopLab) crm(name string, args ...string) {
	s.t.Helper()
	if _, err := s.Exec(context.Background(), "n1", name, args...); err != nil {
		s.t.Fatal(err)
	}
}

// running is the node each bucket runs on, as crm_mon says.
func (s *stopLab) running() (map[int]string, error) {
	c, err := s.Cluster(context.Background(), "n1")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, r := range c.Resources {
		var k int
		if _, err := fmt.Sscanf(r.ID, lab.VIPResource+"_%d", &k); err == nil && len(r.Nodes) > 0 {
			out[k] = r.Nodes[0]
		}
	}
	return out, nil
}

// TestStopLeavesNothing: on the real cluster, a node that no longer runs
// any bucket of the VIP holds nothing of it (no nftables object, address,
// multicast membership, run file; arp_announce as before), read inside
// each node with nft -j, ip -j addr/maddr, bridge -j fdb and sysctl:
// after crm resource stop of every bucket, after the VIP's configuration
// is deleted (Pacemaker stops the orphans), and after a bucket's failure
// and crm_resource --cleanup (whose probes on every node must not leave
// anything either).
func TestStopLeavesNothing(t *testing.T) {
	if tool := footprint.Missing(); tool != "" {
		t.Skipf("%s not installed: cannot read the nodes independently", tool)
	}
	bin := buildbin.Dir(t)
	l := newLab(t, lab.Config{Agents: bin})
	ctx := context.Background()
	s := &stopLab{Lab: l, t: t, before: map[string]footprint.Footprint{}}
	table := vipTable(l)
	s.marks = []string{table, l.VIP().String() + "/"}
	for _, n := range l.Nodes() {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join("/run/netns", l.Netns(n)), &st); err != nil {
			t.Fatal(err)
		}
		s.marks = append(s.marks, fmt.Sprintf("sysctl.ns%d.", st.Ino))
	}
	for _, n := range l.Nodes() {
		f, err := s.read(n)
		if err != nil {
			t.Fatal(err)
		}
		if f.Only(s.marks...).Lines() != 0 {
			t.Fatalf("%s holds pieces of the VIP before its first start: %+v", n, f.Only(s.marks...))
		}
		s.before[n] = f
	}
	rscs := make([]string, buckets)
	for k := range rscs {
		rscs[k] = fmt.Sprintf("%s_%d", lab.VIPResource, k)
	}
	v := vipLab{l, t}
	configure := func() {
		t.Helper()
		if err := l.ConfigureService(ctx, "n1", buckets, lab.ByPlacer); err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes() {
			v.waitAttr(n, "writable_monit", "1")
		}
		v.waitSpread(90*time.Second, 4, 4, 4)
	}

	configure()
	for _, n := range l.Nodes() {
		f, err := s.read(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Only(s.marks...); len(got.NFT) < 10 || len(got.Addrs) != 1 {
			t.Fatalf("%s serving 4 buckets: the reader sees %d nftables objects and addresses %v of the VIP", n, len(got.NFT), got.Addrs)
		}
		if got := f.Only(clusterip.FloodTableName(clusterip.VIP{Addr: l.VIP()})); len(got.NFT) == 0 {
			t.Fatalf("%s: the VIP's flood check table is not there", n)
		}
	}
	// The flood check keeps its table and the cluster MAC while it runs,
	// also where no bucket runs (its job): stopped first, it takes them
	// with it, and the buckets' stops below are what this test checks.
	s.crm("crm", "resource", "stop", lab.VIPResource+"-flood-clone")
	waitFor(t, 60*time.Second, "flood check tables gone", func() (bool, string) {
		for _, n := range l.Nodes() {
			f, err := s.read(n)
			if err != nil {
				return false, err.Error()
			}
			if got := f.Only(clusterip.FloodTableName(clusterip.VIP{Addr: l.VIP()})); len(got.NFT) > 0 {
				return false, n + ": " + got.NFT[0]
			}
		}
		return true, ""
	})

	// crm resource stop of every bucket.
	s.crm("crm", append([]string{"resource", "stop"}, rscs...)...)
	s.waitClean("crm resource stop of every bucket", false, l.Nodes()...)

	// One bucket started, failed, recovered and cleaned up: the nodes it
	// does not run on hold nothing, probes included.
	s.crm("crm", "resource", "start", rscs[0])
	var first string
	waitFor(t, 60*time.Second, rscs[0]+" running", func() (bool, string) {
		r, err := s.running()
		first = r[0]
		return err == nil && first != "", fmt.Sprint(r, err)
	})
	s.crm("crm_resource", "--fail", "--resource", rscs[0], "--node", first)
	time.Sleep(2 * time.Second) // the failure is handled (stop, start) by the next transition
	s.crm("crm_resource", "--cleanup", "--resource", rscs[0])
	var on string
	waitFor(t, 60*time.Second, rscs[0]+" running again after the cleanup", func() (bool, string) {
		r, err := s.running()
		on = r[0]
		if err != nil || on == "" {
			return false, fmt.Sprint(r, err)
		}
		owned, err := l.KernelOwned(on)
		return err == nil && len(owned) == 1 && owned[0] == 0, fmt.Sprintf("%s owns %v (%v)", on, owned, err)
	})
	var others []string
	for _, n := range l.Nodes() {
		if n != on {
			others = append(others, n)
		}
	}
	s.waitClean(fmt.Sprintf("%s failed on %s and cleaned up, now on %s", rscs[0], first, on), true, others...)
	s.crm("crm", "resource", "stop", rscs[0])
	s.waitClean("the cleaned-up bucket stopped", false, l.Nodes()...)

	// The configuration deleted while every bucket runs: Pacemaker stops
	// the orphans with the parameters it last ran them with.
	s.crm("crm", append([]string{"resource", "start"}, rscs...)...)
	v.waitSpread(90*time.Second, 4, 4, 4)
	s.crm("cibadmin", "--force", "--delete-all", "--xpath", "//rsc_location[starts-with(@id,'vip-')]")
	s.crm("cibadmin", "--force", "--delete-all", "--xpath", "//primitive[starts-with(@id,'vip_')]")
	s.waitClean("the VIP's configuration deleted", false, l.Nodes()...)
}
