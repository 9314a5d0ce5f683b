package placement

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/loadshare/loadshare/crm"
)

// replication is the README's asynchronous replication example: a strict
// writer VIP rw (buckets only where writable_monit=1: the primary; dark
// when no node is) and a reader
// VIP ro (readable_monit=1: the caught-up replicas and the primary, which
// gets half a replica's share), on p1 (primary) and replicas r1..r3.
func replication(t *testing.T) *cluster { return replicationOf(t, true) }

func replicationOf(t *testing.T, strict bool) *cluster {
	nodes := []string{"p1", "r1", "r2", "r3"}
	c := newSim(t, crm.Specs{
		{Name: "rw", IP: netip.MustParseAddr("192.0.2.10"), Buckets: 12, Nodes: nodes, Strict: strict},
		{Name: "ro", IP: netip.MustParseAddr("192.0.2.11"), Buckets: 24, Nodes: nodes, Require: crm.AttrReadable,
			Policy: crm.Policy{FullLoad: 100, MinShare: 5, Hysteresis: 1, WriterWeight: 50}},
	})
	for _, n := range nodes {
		c.sim.Join(n)
		c.role(n, n == "p1", true)
	}
	c.transition()
	c.place()
	c.take()
	return c
}

// role sets what mysql_monitor publishes for a node: writable_monit for a
// primary, readable_monit for a primary or a caught-up replica.
func (c *cluster) role(node string, writable, readable bool) {
	b := map[bool]string{false: "0", true: "1"}
	c.sim.SetAttr(node, crm.AttrWritable, b[writable])
	c.sim.SetAttr(node, crm.AttrReadable, b[readable])
	c.sim.SetAttr(node, crm.AttrLoad, strconv.Itoa(30))
}

// TestReplicationRoles: the writer VIP never leaves the primary, the
// reader VIP spreads over replicas and the primary (half share); a
// replica that falls behind loses its reader buckets in Pacemaker's own
// transition, before any placer round, and the writer VIP is untouched.
func TestReplicationRoles(t *testing.T) {
	c := replication(t)
	rw, ro := c.specs[0], c.specs[1]
	c.expectVIP(rw, map[string]int{"p1": 12})
	// Weights 0.5:1:1:1 of 24: 3.43 and 6.86 each, by largest remainder.
	c.expectVIP(ro, map[string]int{"p1": 3, "r1": 7, "r2": 7, "r3": 7})

	c.role("r3", false, false) // lag above max_lag: readable_monit=0
	c.transition()
	if got := c.countsOf(ro)["r3"]; got != 0 {
		t.Fatalf("r3 lagging: still holds %d reader buckets before the placer runs", got)
	}
	c.expectVIP(rw, map[string]int{"p1": 12})
	c.take()
	c.place()
	c.expectVIP(ro, map[string]int{"p1": 5, "r1": 10, "r2": 9})
	if m := c.take(); m > 3 {
		t.Errorf("evening out after r3 left moved %d reader buckets, want at most 3", m)
	}

	c.role("r3", false, true) // caught up again
	c.transition()
	if m := c.take(); m != 0 {
		t.Fatalf("readable_monit=1 alone moved %d buckets, want 0 before the placer gives r3 buckets", m)
	}
	c.place()
	c.expectVIP(ro, map[string]int{"p1": 3, "r1": 7, "r2": 7, "r3": 7})
	c.expectVIP(rw, map[string]int{"p1": 12})
}

// TestReplicationFailover: the primary is fenced. Its reader buckets go to
// the replicas in the same transition; the writer VIP is dark, as it must
// be, since no node is writable (a replica taking writes would split the
// data). Promoting r1 (writable_monit=1) starts every writer bucket there
// in one transition, before any placer round; the old primary returns as a
// replica and gets reader buckets, never writer ones.
func TestReplicationFailover(t *testing.T) {
	c := replication(t)
	rw, ro := c.specs[0], c.specs[1]

	c.sim.Fail("p1")
	c.transition()
	if d := c.dark(rw); len(d) != rw.Buckets {
		t.Fatalf("primary fenced, no writable node: %d writer buckets dark, want all %d (the rest run on a replica)", len(d), rw.Buckets)
	}
	if d := c.dark(ro); len(d) != 0 {
		t.Fatalf("primary fenced: reader buckets %v dark, want its 4 moved to the replicas", d)
	}
	c.place()
	c.expectVIP(ro, map[string]int{"r1": 8, "r2": 8, "r3": 8})
	c.take()

	c.role("r1", true, true) // promoted
	c.transition()
	c.expectVIP(rw, map[string]int{"r1": 12})
	c.take()
	c.place()
	c.expectVIP(rw, map[string]int{"r1": 12})
	// r1 is now the writer: half a replica's share of the reader VIP.
	c.expectVIP(ro, map[string]int{"r1": 5, "r2": 10, "r3": 9})

	c.sim.Join("p1")
	c.role("p1", false, true) // back as a replica of r1
	c.transition()
	c.place()
	c.expectVIP(rw, map[string]int{"r1": 12})
	c.expectVIP(ro, map[string]int{"p1": 7, "r1": 3, "r2": 7, "r3": 7})
}

// TestReplicationNotStrict is the same failover with a writer VIP that is
// not strict: with no writable node its buckets stay running, on the
// replicas that held them before or wherever Pacemaker puts the fenced
// primary's: what crm check warns about beside a reader VIP.
func TestReplicationNotStrict(t *testing.T) {
	c := replicationOf(t, false)
	c.sim.Fail("p1")
	c.transition()
	if d := c.dark(c.specs[0]); len(d) != 0 {
		t.Fatalf("writer VIP not strict, primary fenced: buckets %v dark, want them running on replicas", d)
	}
	if n := c.countsOf(c.specs[0]); n["r1"]+n["r2"]+n["r3"] != 12 {
		t.Fatalf("writer VIP not strict: counts %v, want all 12 on the replicas", n)
	}
}

// TestGaleraDesync: on Galera every Synced node is writable. A node that
// becomes a donor (or desyncs) publishes writable_monit=0 unless donor_ok:
// its buckets leave in Pacemaker's transition; when it is Synced again
// the placer gives it its share back, and nothing was dark meanwhile.
func TestGaleraDesync(t *testing.T) {
	c := newCluster(t, 3, 24)
	c.expect(map[string]int{"n1": 8, "n2": 8, "n3": 8})
	c.attrs("n2", 0, 30) // wsrep_local_state=2 (Donor/Desynced)
	c.transition()
	c.expect(map[string]int{"n1": 12, "n3": 12})
	c.place()
	c.expect(map[string]int{"n1": 12, "n3": 12})
	c.attrs("n2", 1, 30) // Synced
	c.transition()
	c.place()
	c.expect(map[string]int{"n1": 8, "n2": 8, "n3": 8})
}
