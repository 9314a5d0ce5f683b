package crm

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
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
	// Params are extra instance parameters per agent: "clustervip" (every
	// bucket), "mysql_monitor", "server_load" (e.g. defaults_file). One the
	// generator writes itself (server_load's placer) is replaced; the
	// bucket's ip, buckets, bucket, cidr_netmask, nic and hash_seed come
	// from the fields above only.
	Params map[string][]Param
	// AttrMonitor is the seconds between monitors of mysql_monitor and
	// server_load; 0: 5 and 10.
	AttrMonitor int
}

// Param is one instance parameter of a resource.
type Param struct{ Name, Value string }

// Agents are the resource agent types of provider loadshare.
var Agents = []string{"clustervip", "mysql_monitor", "server_load"}

// fieldParams are clustervip's parameters that Spec's fields set.
var fieldParams = []string{"ip", "buckets", "bucket", "cidr_netmask", "nic", "hash_seed"}

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
	if err := s.validateParams(); err != nil {
		return err
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

func (s Spec) validateParams() error {
	if s.AttrMonitor < 0 {
		return fmt.Errorf("attribute agents' monitor=%d: must be at least 1 second (0: their defaults)", s.AttrMonitor)
	}
	for agent, ps := range s.Params {
		switch {
		case !slices.Contains(Agents, agent):
			return fmt.Errorf("parameter of %q: not an agent of loadshare (%s)", agent, strings.Join(Agents, ", "))
		case agent != "clustervip" && !s.AttributeAgents && len(ps) > 0:
			return fmt.Errorf("parameters of %s given, but the attribute agents are left out", agent)
		}
		for _, p := range ps {
			switch {
			case !paramName(p.Name):
				return fmt.Errorf("%s parameter %q: not a parameter name (lower-case letters, digits, '_')", agent, p.Name)
			case agent == "clustervip" && slices.Contains(fieldParams, p.Name):
				return fmt.Errorf("clustervip parameter %s: set by its own option (--ip, --buckets, --cidr-netmask, --nic, --seed)", p.Name)
			case strings.ContainsFunc(p.Value, func(r rune) bool { return r == '"' || r == '\\' || r < ' ' }):
				return fmt.Errorf("%s parameter %s=%q: quotes, backslashes and control characters are not supported", agent, p.Name, p.Value)
			}
		}
	}
	return nil
}

func paramName(n string) bool {
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		return false
	}
	return !strings.ContainsFunc(n, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') })
}

// withParams is base with agent's extra parameters: a given name replaces
// the generated one in place, the others follow in order.
func (s Spec) withParams(agent string, base []Param) []Param {
	out := slices.Clone(base)
	for _, p := range s.Params[agent] {
		if i := slices.IndexFunc(out, func(q Param) bool { return q.Name == p.Name }); i >= 0 {
			out[i] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}

// crmshParams is " params a=1 b=\"x y\"", or "" for none.
func crmshParams(ps []Param) string {
	var b strings.Builder
	for i, p := range ps {
		if i == 0 {
			b.WriteString(" params")
		}
		v := p.Value
		if v == "" || strings.ContainsFunc(v, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:@,+%-", r))
		}) {
			v = `"` + v + `"`
		}
		fmt.Fprintf(&b, " %s=%s", p.Name, v)
	}
	return b.String()
}

// attrAgent is an attribute agent as generated: its name (type and
// resource id), parameters and monitor interval in seconds.
type attrAgent struct {
	name    string
	params  []Param
	monitor int
}

func (s Spec) attrAgents() []attrAgent {
	mysqlEvery, loadEvery := 5, 10
	if s.AttrMonitor > 0 {
		mysqlEvery, loadEvery = s.AttrMonitor, s.AttrMonitor
	}
	return []attrAgent{
		{"mysql_monitor", s.withParams("mysql_monitor", nil), mysqlEvery},
		// Its monitor runs the placer for this VIP (it writes only on the DC).
		{"server_load", s.withParams("server_load", []Param{{"placer", s.Name}}), loadEvery},
	}
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
func (s Spec) params() []Param {
	p := []Param{{"ip", s.IP.String()}, {"buckets", strconv.Itoa(s.Buckets)}}
	if s.CIDRNetmask > 0 {
		p = append(p, Param{"cidr_netmask", strconv.Itoa(s.CIDRNetmask)})
	}
	if s.NIC != "" {
		p = append(p, Param{"nic", s.NIC})
	}
	if s.Seed != 0 {
		p = append(p, Param{"hash_seed", strconv.FormatUint(uint64(s.Seed), 10)})
	}
	return s.withParams("clustervip", p)
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
	// The attribute agents first: Pacemaker starts resources in this
	// order, and the placer places nothing on a node before its
	// writable_monit and server_load are there.
	if s.AttributeAgents {
		for _, a := range s.attrAgents() {
			fmt.Fprintf(&b, "primitive %[1]s ocf:loadshare:%[1]s \\\n", a.name)
			if len(a.params) > 0 {
				fmt.Fprintf(&b, "\t%s \\\n", strings.TrimPrefix(crmshParams(a.params), " "))
			}
			fmt.Fprintf(&b, "\top monitor interval=%ds timeout=20s\n", a.monitor)
			fmt.Fprintf(&b, "clone %[1]s-clone %[1]s meta interleave=true\n", a.name)
		}
	}
	b.WriteString("# resource-stickiness=1 (explicit, below the writable score 10): a bucket runs where its own_* attribute says.\n")
	fmt.Fprintf(&b, "rsc_template %s ocf:loadshare:clustervip \\\n\t%s", s.template(), strings.TrimPrefix(crmshParams(s.params()), " "))
	fmt.Fprintf(&b, " \\\n\tmeta resource-stickiness=%d \\\n\top monitor interval=%ds timeout=20s \\\n\top start timeout=20s interval=0 \\\n\top stop timeout=20s interval=0\n", Stickiness, s.Monitor)
	for k := 0; k < s.Buckets; k++ {
		fmt.Fprintf(&b, "primitive %s @%s params bucket=%d\n", s.Resource(k), s.template(), k)
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
	if s.AttributeAgents {
		for _, a := range s.attrAgents() {
			prim := newElem("primitive", "id", a.name, "class", "ocf", "provider", "loadshare", "type", a.name)
			if len(a.params) > 0 {
				ia := newElem("instance_attributes", "id", a.name+"-params")
				for _, p := range a.params {
					ia.add(newElem("nvpair", "id", a.name+"-params-"+p.Name, "name", p.Name, "value", p.Value))
				}
				prim.add(ia)
			}
			prim.add(newElem("operations").add(
				newElem("op", "id", a.name+"-monitor", "name", "monitor", "interval", strconv.Itoa(a.monitor)+"s", "timeout", "20s")))
			res.add(newElem("clone", "id", a.name+"-clone").add(
				newElem("meta_attributes", "id", a.name+"-clone-meta").add(
					newElem("nvpair", "id", a.name+"-clone-meta-interleave", "name", "interleave", "value", "true")),
				prim))
		}
	}
	t := s.template()
	ia := newElem("instance_attributes", "id", t+"-params")
	for _, p := range s.params() {
		ia.add(newElem("nvpair", "id", t+"-params-"+p.Name, "name", p.Name, "value", p.Value))
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
