package crm

import (
	"errors"
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
	// Forbidden is -INFINITY: a strict VIP's rule that keeps its buckets
	// off every node without the required attribute (Spec.Strict).
	Forbidden = -1000000
)

// Spec describes one shared VIP's Pacemaker configuration.
type Spec struct {
	Name        string     // resource prefix: primitives NAME_0..NAME_{Buckets-1}; default "vip"
	IP          netip.Addr // the shared address
	CIDRNetmask int        // prefix length; 0 lets the agent choose
	NIC         string     // interface; "" lets the agent choose
	Buckets     int        // hash buckets, one primitive each: 1–1024
	// Require is the node attribute that must be 1 on a node for the VIP's
	// buckets to run there: AttrWritable (the default: a writer VIP) or
	// AttrReadable (a reader VIP over caught-up replicas and the primary).
	Require string
	// Strict keeps the buckets off every node whose required attribute is
	// not 1, also when no node has it: the VIP goes dark rather than run
	// elsewhere. For the writer VIP of a replication cluster, where a
	// replica must never take writes. Without it (Galera, one server per
	// node) the buckets keep running where they are when no node is
	// eligible: a monitor that fails everywhere at once (a changed
	// password) does not take the service down.
	Strict bool
	// Policy is the in-cluster placer's policy for this VIP (the zero value
	// is DefaultPolicy), written into server_load's placer parameter.
	Policy Policy
	Seed   uint32   // hash_seed; 0 lets the agent derive it from IP
	Nodes  []string // node names, for the XML <nodes> section (ids 1..n); crmsh output leaves nodes to the cluster
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
	// server_load; 0: 5 and 10. It is the flood check's interval too
	// (0: FloodMonitor).
	AttrMonitor int
	// LoadThreshold is the cluster property load-threshold the
	// configuration sets (a percentage, "0%": see LoadThresholdOff);
	// "" leaves the property out. Cluster-wide, so the same on every Spec.
	LoadThreshold string
	// FloodCheck makes the location rules refuse buckets to a node whose
	// FloodAttr is 0 and, with AttributeAgents, adds the VIP's flood
	// check that publishes it, NAME-flood-clone (clustervip
	// flood_check=NAME on every node). Default in the CLI with the
	// attribute agents.
	FloodCheck bool
}

// LoadThresholdOff is the load-threshold loadshare crm generates: 0%
// turns off the CPU part of Pacemaker's throttle. Pacemaker 2.1
// (controld_throttle.c) otherwise lets a node whose 1-minute load average
// is above 2 × load-threshold × its cores (1.6 × at the default 80%) run
// one action at a time (above 1.6 × load-threshold a quarter of
// node-action-limit, above 1.2 × half), and while any node
// is that busy the whole cluster runs at most nodes ÷ 2 (one of three) at
// once (throttle_get_total_job_limit): a busy database server is
// throttled exactly when it takes over a failed node's buckets. Measured in the lab at 64 buckets: the starts of a failover
// 2.0–2.7 s → 0.8–1.3 s, a placer round of 22 moves ~1 s per move → 3.3 s
// (docs/placement.md, "Failover"). The CIB daemon's own CPU check stays.
const LoadThresholdOff = "0%"

// ThrottledBuckets is the bucket count of a VIP from which crm check
// warns about load-threshold left at Pacemaker's 80% (or above 0%): below
// it a failover has only a few starts to throttle.
const ThrottledBuckets = 24

// FloodMonitor is the seconds between the flood check's probes (its
// monitor) when AttrMonitor is 0; flood_window (3) of them without a
// peer's probe make a node unreached.
const FloodMonitor = 5

// Specs is a whole configuration of several VIPs: each its own buckets
// and rules, one set of attribute agents for all, whose server_load
// places every VIP. The attribute agents' settings (AttributeAgents,
// AttrMonitor, Nodes and the mysql_monitor and server_load Params) must
// be the same on every Spec.
type Specs []Spec

// Validate reports a configuration that would be broken: a bad VIP, two
// VIPs with one name or one address, or attribute agent settings that
// differ between VIPs (one set of agents serves them all).
func (ss Specs) Validate() error {
	if len(ss) == 0 {
		return errors.New("no VIP")
	}
	names, addrs := map[string]bool{}, map[netip.Addr]string{}
	first := ss[0].norm()
	for _, s := range ss {
		if err := s.Validate(); err != nil {
			if len(ss) > 1 {
				return fmt.Errorf("vip %s: %w", s.norm().Name, err)
			}
			return err
		}
		s = s.norm()
		if names[s.Name] {
			return fmt.Errorf("name=%s: two VIPs with one name (their resources would be the same)", s.Name)
		}
		names[s.Name] = true
		if other, ok := addrs[s.IP]; ok {
			return fmt.Errorf("vip %s: ip=%s is vip %s's too: two VIPs cannot share an address", s.Name, s.IP, other)
		}
		addrs[s.IP] = s.Name
		for _, d := range []struct {
			what string
			same bool
		}{
			{"attribute agents (on or off)", s.AttributeAgents == first.AttributeAgents},
			{"attribute agents' monitor interval", s.AttrMonitor == first.AttrMonitor},
			{"nodes", slices.Equal(s.Nodes, first.Nodes)},
			{"mysql_monitor parameters", slices.Equal(s.Params["mysql_monitor"], first.Params["mysql_monitor"])},
			{"server_load parameters", slices.Equal(s.Params["server_load"], first.Params["server_load"])},
			{"load-threshold", s.LoadThreshold == first.LoadThreshold},
		} {
			if !d.same {
				return fmt.Errorf("vip %s: its %s differ from vip %s's: one set of attribute agents serves every VIP", s.Name, d.what, first.Name)
			}
		}
	}
	return nil
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
	if s.Require == "" {
		s.Require = AttrWritable
	}
	return s
}

// Requires are the attributes a VIP's buckets can require, by role.
var Requires = map[string]string{AttrWritable: "writable", AttrReadable: "readable"}

// role is "writable" or "readable": the VIP's required attribute without _monit.
func (s Spec) role() string { return Requires[s.norm().Require] }

// ValidName reports whether name can prefix a VIP's resources (vip_0,
// vip-own, own_vip_0, ...): letters, digits and '-', starting with a letter.
func ValidName(name string) bool { return nameRE().MatchString(name) }

// The patterns compile on first use (sync.OnceValue), not at package
// initialisation: every agent process links this package, and most never
// need them.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`) })

// percentRE is a percentage as Pacemaker reads one (pcmk__valid_percentage:
// an integer, then %).
var percentRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+%$`) })

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
	case Requires[s.Require] == "":
		return fmt.Errorf("require=%q: must be %s (a writer VIP) or %s (a reader VIP)", s.Require, AttrWritable, AttrReadable)
	}
	if err := s.Policy.Validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := s.validateParams(); err != nil {
		return err
	}
	if s.LoadThreshold != "" && !percentRE().MatchString(s.LoadThreshold) {
		return fmt.Errorf("load-threshold=%q: want a percentage, digits and %%, such as 0%% (Pacemaker's default is 80%%), or \"\" to leave the property out", s.LoadThreshold)
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

// model is a configuration as every renderer (Crmsh, XML, Pcs) sees it:
// what each resource is and where the rules send it. The renderers decide
// only the syntax and the ids of the elements inside.
type model struct {
	// props are the cluster properties (crm_config) the configuration
	// sets, each with the comment lines that say why.
	props []property
	// attrs are the attribute agents, each in an interleaved clone; they
	// come first, since Pacemaker starts resources in that order and the
	// placer places nothing on a node before its attributes are there.
	// One set serves every VIP: server_load's placer names them all.
	attrs []primitive
	vips  []vipModel
}

// property is one cluster property and why it is set.
type property struct {
	Param
	why []string // comment lines, without "# "
}

// vipModel is one VIP's part of the model.
type vipModel struct {
	spec     Spec        // normalised
	template primitive   // NAME-bucket: what every bucket shares
	buckets  []primitive // NAME_K: the template plus bucket=K
	rules    []location
	flood    *primitive // NAME-flood in NAME-flood-clone (Spec.FloodCheck); nil without
}

// primitive is one resource of agent ocf:loadshare:<agent>.
type primitive struct {
	id, agent string
	params    []Param
	meta      []Param
	ops       []operation
	clone     string  // id of the clone holding it; "" for none
	cloneMeta []Param // the clone's meta attributes
}

// operation is one op: interval "0" for start and stop. noPending sets
// the op's record-pending=false (see vipModel).
type operation struct {
	name, interval, timeout string
	noPending               bool
}

// location is a rsc_location with one rule, over the resources whose ids
// match pattern.
type location struct {
	id, pattern, ruleID string
	score               int
	booleanOp           string // "and" when the rule has several expressions
	exprs               []expression
}

// expression is a rule's "attribute OP value" (string comparison): op
// "" is eq; "not_defined" has no value.
type expression struct{ id, attribute, op, value string }

func (e expression) operation() string {
	if e.op == "" {
		return "eq"
	}
	return e.op
}

// scoreText is a rule's score as Pacemaker writes it.
func scoreText(score int) string {
	if score <= Forbidden {
		return "-INFINITY"
	}
	return strconv.Itoa(score)
}

func (s Spec) model() (model, error) { return Specs{s}.model() }

func (ss Specs) model() (model, error) {
	if err := ss.Validate(); err != nil {
		return model{}, err
	}
	s := ss[0].norm() // the attribute agents' settings (Validate: the same on every VIP)
	var m model
	if s.LoadThreshold != "" {
		m.props = append(m.props, property{Param{"load-threshold", s.LoadThreshold}, []string{
			"load-threshold=" + s.LoadThreshold + ": with Pacemaker's default (80%) a node whose load average is",
			"above 1.6 x its cores runs one action at a time (above 1.28 x a quarter of them), and",
			"the cluster then at most nodes/2 at once: a busy database server is throttled exactly",
			"when it takes over a failed node's buckets. 0% turns the CPU part of the throttle off",
			"(the CIB daemon's own check stays). Cluster-wide: loadshare crm with an empty",
			"load-threshold option leaves it out."}}) // no "--": crmsh keeps comments as XML comments
	}
	if s.AttributeAgents {
		mysqlEvery, loadEvery := 5, 10
		if s.AttrMonitor > 0 {
			mysqlEvery, loadEvery = s.AttrMonitor, s.AttrMonitor
		}
		placer := make([]string, len(ss))
		for i, v := range ss {
			v = v.norm()
			placer[i] = PlacerVIP{Name: v.Name, Require: v.Require, Policy: v.Policy}.String()
		}
		for _, a := range []struct {
			name   string
			params []Param
			every  int
		}{
			{"mysql_monitor", s.withParams("mysql_monitor", nil), mysqlEvery},
			// Its monitor runs the placer for the VIPs (it writes only on the DC).
			{"server_load", s.withParams("server_load", []Param{{"placer", strings.Join(placer, " ")}}), loadEvery},
		} {
			m.attrs = append(m.attrs, primitive{id: a.name, agent: a.name, params: a.params,
				ops:   []operation{{name: "monitor", interval: strconv.Itoa(a.every) + "s", timeout: "20s"}},
				clone: a.name + "-clone", cloneMeta: []Param{{"interleave", "true"}}})
		}
	}
	for _, s := range ss {
		m.vips = append(m.vips, s.norm().vipModel())
	}
	return m, nil
}

// vipModel is s's bucket template, primitives and rules; s is normalised.
func (s Spec) vipModel() vipModel {
	v := vipModel{spec: s}
	v.template = primitive{id: s.template(), agent: "clustervip", params: s.params(),
		meta: []Param{{"resource-stickiness", strconv.Itoa(Stickiness)}},
		// record-pending=false: Pacemaker 2.1 records every start, stop
		// and monitor as pending in the CIB before running it (the default
		// is true), one more write of the whole status section per bucket
		// action; a bucket's action takes milliseconds, so the pending
		// state shows nothing and costs a failover a CIB write per bucket
		// (docs/placement.md, "Failover").
		ops: []operation{
			{name: "monitor", interval: strconv.Itoa(s.Monitor) + "s", timeout: "20s", noPending: true},
			{name: "start", interval: "0", timeout: "20s", noPending: true},
			{name: "stop", interval: "0", timeout: "20s", noPending: true},
		}}
	for k := 0; k < s.Buckets; k++ {
		v.buckets = append(v.buckets, primitive{id: s.Resource(k), agent: "clustervip", params: []Param{{"bucket", strconv.Itoa(k)}}})
	}
	role := s.role() // the ids say which attribute the rules require
	v.rules = []location{
		{id: s.Name + "-own", pattern: s.ResourcePattern(), ruleID: s.Name + "-own-rule", score: OwnScore, booleanOp: "and",
			exprs: []expression{
				{id: s.Name + "-own-rule-own", attribute: "own_" + s.Name + "_%1", value: "1"},
				{id: s.Name + "-own-rule-" + role, attribute: s.Require, value: "1"},
			}},
		{id: s.Name + "-" + role, pattern: "^" + s.Name + "_[0-9]+$", ruleID: s.Name + "-" + role + "-rule", score: WritableScore,
			exprs: []expression{{id: s.Name + "-" + role + "-rule-expr", attribute: s.Require, value: "1"}}},
	}
	if s.FloodCheck {
		// ne 0: a node with no verdict (attribute unset) keeps its buckets.
		for i := range v.rules {
			v.rules[i].booleanOp = "and"
			v.rules[i].exprs = append(v.rules[i].exprs, expression{id: v.rules[i].ruleID + "-flood",
				attribute: FloodAttr(s.Name), op: "ne", value: "0"})
		}
	}
	if s.FloodCheck && s.AttributeAgents {
		every := FloodMonitor
		if s.AttrMonitor > 0 {
			every = s.AttrMonitor
		}
		var params []Param
		for _, p := range s.params() {
			if p.Name != "buckets" {
				params = append(params, p)
			}
		}
		v.flood = &primitive{id: s.Name + "-flood", agent: "clustervip",
			params: append(params, Param{"flood_check", s.Name}),
			ops: []operation{
				{name: "monitor", interval: strconv.Itoa(every) + "s", timeout: "20s", noPending: true},
				{name: "start", interval: "0", timeout: "20s", noPending: true},
				{name: "stop", interval: "0", timeout: "20s", noPending: true},
			},
			clone: FloodClone(s.Name), cloneMeta: []Param{{"interleave", "true"}}}
	}
	if s.Strict {
		v.rules = append(v.rules, location{id: s.Name + "-strict", pattern: "^" + s.Name + "_[0-9]+$", ruleID: s.Name + "-strict-rule",
			score: Forbidden, booleanOp: "or", exprs: []expression{
				{id: s.Name + "-strict-rule-undefined", attribute: s.Require, op: "not_defined"},
				{id: s.Name + "-strict-rule-not-1", attribute: s.Require, op: "ne", value: "1"},
			}})
	}
	return v
}

// resolved is bucket b with the template applied: its own parameters
// follow the template's, as a renderer without templates (pcs) writes it.
func (v vipModel) resolved(b primitive) primitive {
	r := v.template
	r.id = b.id
	r.params = append(slices.Clone(v.template.params), b.params...)
	return r
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
func (s Spec) Crmsh() (string, error) { return Specs{s}.Crmsh() }

// Crmsh returns the configuration of every VIP in crmsh syntax.
func (ss Specs) Crmsh() (string, error) {
	m, err := ss.model()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	m.header(&b)
	for _, p := range m.props {
		b.WriteString(p.comment())
		fmt.Fprintf(&b, "property%s\n", crmshPairs([]Param{p.Param}))
	}
	for _, a := range m.attrs {
		crmshClone(&b, a)
	}
	for _, v := range m.vips {
		t := v.template
		b.WriteString(stickinessComment(v.spec))
		fmt.Fprintf(&b, "rsc_template %s ocf:loadshare:%s \\\n\t%s", t.id, t.agent, strings.TrimPrefix(crmshParams(t.params), " "))
		fmt.Fprintf(&b, " \\\n\tmeta%s \\\n\t%s\n", crmshPairs(t.meta), crmshOps(t.ops, " \\\n\t"))
		for _, k := range v.buckets {
			fmt.Fprintf(&b, "primitive %s @%s%s\n", k.id, t.id, crmshParams(k.params))
		}
		for _, l := range v.rules {
			fmt.Fprintf(&b, "location %s /%s/ \\\n\trule %s: %s\n", l.id, l.pattern, scoreText(l.score), l.expression())
		}
		if v.flood != nil {
			crmshClone(&b, *v.flood)
		}
	}
	return b.String(), nil
}

// crmshClone is a primitive and the clone holding it.
func crmshClone(b *strings.Builder, a primitive) {
	fmt.Fprintf(b, "primitive %s ocf:loadshare:%s \\\n", a.id, a.agent)
	if len(a.params) > 0 {
		fmt.Fprintf(b, "\t%s \\\n", strings.TrimPrefix(crmshParams(a.params), " "))
	}
	fmt.Fprintf(b, "\t%s\n", crmshOps(a.ops, " \\\n\t"))
	fmt.Fprintf(b, "clone %s %s meta%s\n", a.clone, a.id, crmshPairs(a.cloneMeta))
}

// header is the comment lines that open the crmsh and pcs text: one per
// VIP, then the nodes.
func (m model) header(b *strings.Builder) {
	for _, v := range m.vips {
		fmt.Fprintf(b, "# loadshare: VIP %s in %d buckets, one primitive per bucket (see docs/placement.md).\n", v.spec.IP, v.spec.Buckets)
	}
	if nodes := m.vips[0].spec.Nodes; len(nodes) > 0 {
		fmt.Fprintf(b, "# nodes: %s\n", strings.Join(nodes, " "))
	}
}

// comment is p's why as comment lines.
func (p property) comment() string {
	var b strings.Builder
	for _, l := range p.why {
		b.WriteString("# " + l + "\n")
	}
	return b.String()
}

// stickinessComment says why the buckets' stickiness is what it is.
func stickinessComment(s Spec) string {
	return fmt.Sprintf("# resource-stickiness=%d (explicit, below the %s score %d): a bucket runs where its own_* attribute says.\n", Stickiness, s.role(), WritableScore)
}

// expression is the rule's text in crmsh and pcs alike:
// "a eq 1 and b eq 1", "not_defined a or a ne 1".
func (l location) expression() string {
	parts := make([]string, len(l.exprs))
	for i, e := range l.exprs {
		if e.op == "not_defined" {
			parts[i] = "not_defined " + e.attribute
			continue
		}
		parts[i] = e.attribute + " " + e.operation() + " " + e.value
	}
	return strings.Join(parts, " "+l.booleanOp+" ")
}

// crmshPairs is " a=1 b=2", without quoting (meta values are generated).
func crmshPairs(ps []Param) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, " %s=%s", p.Name, p.Value)
	}
	return b.String()
}

// crmshOps is "op monitor interval=10s timeout=20s" for each op, joined
// by sep; one-shot ops put the timeout first, as crmsh shows them.
func crmshOps(ops []operation, sep string) string {
	parts := make([]string, len(ops))
	for i, o := range ops {
		if o.interval == "0" {
			parts[i] = fmt.Sprintf("op %s timeout=%s interval=0", o.name, o.timeout)
		} else {
			parts[i] = fmt.Sprintf("op %s interval=%s timeout=%s", o.name, o.interval, o.timeout)
		}
		if o.noPending {
			parts[i] += " record-pending=false"
		}
	}
	return strings.Join(parts, sep)
}

// XML returns a whole CIB (empty status) holding the configuration: the
// input of crm_verify -x and crm_simulate -x, or of
// `cibadmin --replace --xml-file` on a new cluster.
func (s Spec) XML() ([]byte, error) { return Specs{s}.XML() }

// XML returns a whole CIB holding the configuration of every VIP.
func (ss Specs) XML() ([]byte, error) {
	cfg, err := ss.configuration()
	if err != nil {
		return nil, err
	}
	cib := newElem("cib", "validate-with", "pacemaker-3.0", "epoch", "1", "num_updates", "0", "admin_epoch", "0")
	cib.add(cfg, newElem("status"))
	return cib.bytes("  "), nil
}

// configuration builds the <configuration> element.
func (ss Specs) configuration() (*elem, error) {
	m, err := ss.model()
	if err != nil {
		return nil, err
	}
	s := m.vips[0].spec
	cfg := newElem("configuration")
	// The property set and nvpair ids are those crmsh, pcs and
	// crm_attribute give them, so that any of them updates the same one.
	props := newElem("cluster_property_set", "id", "cib-bootstrap-options")
	for _, p := range m.props {
		props.add(newElem("nvpair", "id", "cib-bootstrap-options-"+p.Name, "name", p.Name, "value", p.Value))
	}
	crmConfig := newElem("crm_config").add(props)
	nodes := newElem("nodes")
	for i, n := range s.Nodes {
		nodes.add(newElem("node", "id", strconv.Itoa(i+1), "uname", n))
	}
	res := newElem("resources")
	for _, a := range m.attrs {
		res.add(newElem("clone", "id", a.clone).add(
			xmlPairs("meta_attributes", a.clone+"-meta", a.cloneMeta),
			xmlPrimitive("primitive", a, "class", "ocf", "provider", "loadshare", "type", a.agent)))
	}
	cons := newElem("constraints")
	for _, v := range m.vips {
		t := v.template
		res.add(xmlPrimitive("template", t, "class", "ocf", "provider", "loadshare", "type", t.agent))
		for _, k := range v.buckets {
			res.add(xmlPrimitive("primitive", k, "template", t.id))
		}
		for _, l := range v.rules {
			rule := newElem("rule", "id", l.ruleID, "score", scoreText(l.score))
			if l.booleanOp != "" {
				rule.set("boolean-op", l.booleanOp)
			}
			for _, e := range l.exprs {
				x := newElem("expression", "id", e.id, "attribute", e.attribute, "operation", e.operation())
				if e.op != "not_defined" {
					x.set("value", e.value)
				}
				rule.add(x)
			}
			cons.add(newElem("rsc_location", "id", l.id, "rsc-pattern", l.pattern).add(rule))
		}
		if f := v.flood; f != nil {
			res.add(newElem("clone", "id", f.clone).add(
				xmlPairs("meta_attributes", f.clone+"-meta", f.cloneMeta),
				xmlPrimitive("primitive", *f, "class", "ocf", "provider", "loadshare", "type", f.agent)))
		}
	}
	cfg.add(crmConfig, nodes, res, cons)
	return cfg, nil
}

// xmlPrimitive is p as a <primitive> or <template> with the attributes kv
// after its id: instance_attributes ID-params, meta_attributes ID-meta,
// operations with ops ID-NAME.
func xmlPrimitive(name string, p primitive, kv ...string) *elem {
	e := newElem(name, append([]string{"id", p.id}, kv...)...)
	if len(p.params) > 0 {
		e.add(xmlPairs("instance_attributes", p.id+"-params", p.params))
	}
	if len(p.meta) > 0 {
		e.add(xmlPairs("meta_attributes", p.id+"-meta", p.meta))
	}
	if len(p.ops) > 0 {
		ops := newElem("operations")
		for _, o := range p.ops {
			op := newElem("op", "id", p.id+"-"+o.name, "name", o.name, "interval", o.interval, "timeout", o.timeout)
			if o.noPending {
				op.set("record-pending", "false")
			}
			ops.add(op)
		}
		e.add(ops)
	}
	return e
}

// xmlPairs is a nvpair set: <set id=ID><nvpair id=ID-NAME .../>...</set>.
func xmlPairs(set, id string, ps []Param) *elem {
	e := newElem(set, "id", id)
	for _, p := range ps {
		e.add(newElem("nvpair", "id", id+"-"+p.Name, "name", p.Name, "value", p.Value))
	}
	return e
}
