package crm

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Scores of the two location rules that place the buckets, and the
// buckets' resource-stickiness. The owner's score (OwnScore+WritableScore)
// beats any other node's (WritableScore+Stickiness), so a bucket runs where
// the placer's own_* attribute says; without an owner (the owner failed, or
// before the placer has run) it runs on some writable node and stays there
// (Stickiness); with no writable node at all it still runs (scores 0 allow,
// only -INFINITY forbids). Stickiness must be explicit, at least 1 and below
// WritableScore: 1 makes the old owner win while old and new owner both
// hold own_K during a move (with 0 the tie goes to whichever node the
// scheduler has filled least so far: extra moves, measured), and a bucket
// on a node that stops being writable still leaves it (0+1 < 10).
const (
	OwnScore      = 100
	WritableScore = 10
	Stickiness    = 1
)

// Spec describes one shared VIP's Pacemaker configuration.
type Spec struct {
	Name        string     // resource prefix: primitives NAME_0..NAME_{Buckets-1}; default "vip"
	IP          netip.Addr // the shared address
	CIDRNetmask int        // prefix length; 0 lets the agent choose
	NIC         string     // interface; "" lets the agent choose
	Buckets     int        // hash buckets, one primitive each: 1–1024
	Seed        uint32     // hash_seed; 0 lets the agent derive it from IP
	Nodes       []string   // node names, for the XML <nodes> section (ids 1..n); crmsh output leaves nodes to the cluster
	// AttributeAgents adds the mysql_monitor and server_load clones that
	// write writable_monit and server_load on every node (default in the
	// CLI; the placement simulations leave them out).
	AttributeAgents bool
	Monitor         int // seconds between monitors of a bucket; default 10
}

func (s Spec) norm() Spec {
	if s.Name == "" {
		s.Name = "vip"
	}
	if s.Monitor == 0 {
		s.Monitor = 10
	}
	return s
}

// ValidName reports whether name can prefix a VIP's resources (vip_0,
// vip-own, own_vip_0, ...): letters, digits and '-', starting with a letter.
func ValidName(name string) bool { return nameRE().MatchString(name) }

// The patterns compile on first use (sync.OnceValue), not at package
// initialisation: every agent process links this package, and most never
// need them.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`) })

// Validate reports a spec that would give a broken configuration.
func (s Spec) Validate() error {
	s = s.norm()
	switch {
	case !ValidName(s.Name):
		return fmt.Errorf("name=%q: must be letters, digits and '-', starting with a letter (no '_': it separates the bucket number)", s.Name)
	case !s.IP.IsValid():
		return fmt.Errorf("ip: missing or not an IP address")
	case s.Buckets < 1 || s.Buckets > 1024:
		return fmt.Errorf("buckets=%d: must be 1–1024", s.Buckets)
	case s.CIDRNetmask < 0 || s.CIDRNetmask > s.IP.BitLen():
		return fmt.Errorf("cidr_netmask=%d: must be 1–%d", s.CIDRNetmask, s.IP.BitLen())
	case s.Monitor < 1:
		return fmt.Errorf("monitor=%d: must be at least 1 second", s.Monitor)
	}
	seen := map[string]bool{}
	for _, n := range s.Nodes {
		if n == "" || strings.ContainsAny(n, " \t\"'<>&") || seen[n] {
			return fmt.Errorf("node %q: empty, duplicate or not a node name", n)
		}
		seen[n] = true
	}
	return nil
}

// Resource returns the primitive id of bucket k: NAME_k.
func (s Spec) Resource(k int) string { return fmt.Sprintf("%s_%d", s.norm().Name, k) }

// OwnAttr returns the transient node attribute that gives bucket k to a
// node: own_NAME_k=1.
func (s Spec) OwnAttr(k int) string { return fmt.Sprintf("own_%s_%d", s.norm().Name, k) }

// ResourcePattern is the rsc-pattern matching the bucket primitives; its
// group 1 is the bucket number.
func (s Spec) ResourcePattern() string { return "^" + s.norm().Name + `_([0-9]+)$` }

func (s Spec) template() string { return s.norm().Name + "-bucket" }

// params are the clustervip parameters shared by every bucket.
func (s Spec) params() [][2]string {
	p := [][2]string{{"ip", s.IP.String()}, {"buckets", strconv.Itoa(s.Buckets)}}
	if s.CIDRNetmask > 0 {
		p = append(p, [2]string{"cidr_netmask", strconv.Itoa(s.CIDRNetmask)})
	}
	if s.NIC != "" {
		p = append(p, [2]string{"nic", s.NIC})
	}
	if s.Seed != 0 {
		p = append(p, [2]string{"hash_seed", strconv.FormatUint(uint64(s.Seed), 10)})
	}
	return p
}

// Crmsh returns the configuration in crmsh syntax, for
// `crm configure load update FILE`.
func (s Spec) Crmsh() (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	s = s.norm()
	var b strings.Builder
	fmt.Fprintf(&b, "# loadshare: VIP %s in %d buckets, one primitive per bucket (see docs/placement.md).\n", s.IP, s.Buckets)
	if len(s.Nodes) > 0 {
		fmt.Fprintf(&b, "# nodes: %s\n", strings.Join(s.Nodes, " "))
	}
	b.WriteString("# resource-stickiness=1 (explicit, below the writable score 10): a bucket runs where its own_* attribute says.\n")
	fmt.Fprintf(&b, "rsc_template %s ocf:loadshare:clustervip \\\n\tparams", s.template())
	for _, p := range s.params() {
		fmt.Fprintf(&b, " %s=%s", p[0], p[1])
	}
	fmt.Fprintf(&b, " \\\n\tmeta resource-stickiness=%d \\\n\top monitor interval=%ds timeout=20s \\\n\top start timeout=20s interval=0 \\\n\top stop timeout=20s interval=0\n", Stickiness, s.Monitor)
	for k := 0; k < s.Buckets; k++ {
		fmt.Fprintf(&b, "primitive %s @%s params bucket=%d\n", s.Resource(k), s.template(), k)
	}
	if s.AttributeAgents {
		b.WriteString("primitive mysql_monitor ocf:loadshare:mysql_monitor \\\n\top monitor interval=5s timeout=20s\n")
		b.WriteString("clone mysql_monitor-clone mysql_monitor meta interleave=true\n")
		// server_load's monitor runs the placer for this VIP (it writes only on the DC).
		fmt.Fprintf(&b, "primitive server_load ocf:loadshare:server_load \\\n\tparams placer=%s \\\n\top monitor interval=10s timeout=20s\n", s.Name)
		b.WriteString("clone server_load-clone server_load meta interleave=true\n")
	}
	fmt.Fprintf(&b, "location %s-own /%s/ \\\n\trule %d: %s eq 1 and writable_monit eq 1\n",
		s.Name, s.ResourcePattern(), OwnScore, "own_"+s.Name+"_%1")
	fmt.Fprintf(&b, "location %s-writable /^%s_[0-9]+$/ \\\n\trule %d: writable_monit eq 1\n",
		s.Name, s.Name, WritableScore)
	return b.String(), nil
}

// XML returns a whole CIB (empty status) holding the configuration: the
// input of crm_verify -x and crm_simulate -x, or of
// `cibadmin --replace --xml-file` on a new cluster.
func (s Spec) XML() ([]byte, error) {
	cfg, err := s.configuration()
	if err != nil {
		return nil, err
	}
	cib := newElem("cib", "validate-with", "pacemaker-3.0", "epoch", "1", "num_updates", "0", "admin_epoch", "0")
	cib.add(cfg, newElem("status"))
	return cib.bytes("  "), nil
}

// configuration builds the <configuration> element.
func (s Spec) configuration() (*elem, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.norm()
	cfg := newElem("configuration")
	crmConfig := newElem("crm_config").add(newElem("cluster_property_set", "id", "cib-bootstrap-options"))
	nodes := newElem("nodes")
	for i, n := range s.Nodes {
		nodes.add(newElem("node", "id", strconv.Itoa(i+1), "uname", n))
	}
	res := newElem("resources")
	t := s.template()
	ia := newElem("instance_attributes", "id", t+"-params")
	for _, p := range s.params() {
		ia.add(newElem("nvpair", "id", t+"-params-"+p[0], "name", p[0], "value", p[1]))
	}
	tmpl := newElem("template", "id", t, "class", "ocf", "provider", "loadshare", "type", "clustervip").add(
		ia,
		newElem("meta_attributes", "id", t+"-meta").add(
			newElem("nvpair", "id", t+"-meta-resource-stickiness", "name", "resource-stickiness", "value", strconv.Itoa(Stickiness))),
		newElem("operations").add(
			newElem("op", "id", t+"-monitor", "name", "monitor", "interval", strconv.Itoa(s.Monitor)+"s", "timeout", "20s"),
			newElem("op", "id", t+"-start", "name", "start", "interval", "0", "timeout", "20s"),
			newElem("op", "id", t+"-stop", "name", "stop", "interval", "0", "timeout", "20s")))
	res.add(tmpl)
	for k := 0; k < s.Buckets; k++ {
		r := s.Resource(k)
		res.add(newElem("primitive", "id", r, "template", t).add(
			newElem("instance_attributes", "id", r+"-params").add(
				newElem("nvpair", "id", r+"-params-bucket", "name", "bucket", "value", strconv.Itoa(k)))))
	}
	if s.AttributeAgents {
		for _, a := range []struct {
			name     string
			interval string
		}{{"mysql_monitor", "5s"}, {"server_load", "10s"}} {
			prim := newElem("primitive", "id", a.name, "class", "ocf", "provider", "loadshare", "type", a.name)
			if a.name == "server_load" {
				// Its monitor runs the placer for this VIP (it writes only on the DC).
				prim.add(newElem("instance_attributes", "id", a.name+"-params").add(
					newElem("nvpair", "id", a.name+"-params-placer", "name", "placer", "value", s.Name)))
			}
			prim.add(newElem("operations").add(
				newElem("op", "id", a.name+"-monitor", "name", "monitor", "interval", a.interval, "timeout", "20s")))
			res.add(newElem("clone", "id", a.name+"-clone").add(
				newElem("meta_attributes", "id", a.name+"-clone-meta").add(
					newElem("nvpair", "id", a.name+"-clone-meta-interleave", "name", "interleave", "value", "true")),
				prim))
		}
	}
	cons := newElem("constraints").add(
		newElem("rsc_location", "id", s.Name+"-own", "rsc-pattern", s.ResourcePattern()).add(
			newElem("rule", "id", s.Name+"-own-rule", "score", strconv.Itoa(OwnScore), "boolean-op", "and").add(
				newElem("expression", "id", s.Name+"-own-rule-own", "attribute", "own_"+s.Name+"_%1", "operation", "eq", "value", "1"),
				newElem("expression", "id", s.Name+"-own-rule-writable", "attribute", "writable_monit", "operation", "eq", "value", "1"))),
		newElem("rsc_location", "id", s.Name+"-writable", "rsc-pattern", "^"+s.Name+"_[0-9]+$").add(
			newElem("rule", "id", s.Name+"-writable-rule", "score", strconv.Itoa(WritableScore)).add(
				newElem("expression", "id", s.Name+"-writable-rule-expr", "attribute", "writable_monit", "operation", "eq", "value", "1"))))
	cfg.add(crmConfig, nodes, res, cons)
	return cfg, nil
}
