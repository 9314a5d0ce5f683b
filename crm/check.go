package crm

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Severity of a Problem.
type Severity int

const (
	Warning Severity = iota // works, but not as loadshare intends
	Error                   // buckets will be dark, misplaced or never start
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Problem is one thing wrong with a configuration, in operator words.
type Problem struct {
	Severity Severity
	Object   string // resource, constraint or property id; "" for the whole CIB
	Message  string // what is wrong and what follows from it
	Fix      string // what to do
}

func (p Problem) String() string {
	s := p.Severity.String() + ": "
	if p.Object != "" {
		s += p.Object + ": "
	}
	s += p.Message
	if p.Fix != "" {
		s += " Fix: " + p.Fix
	}
	return s
}

var bucketRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(.+)_([0-9]+)$`) })

// resolved is a primitive with its template applied.
type resolved struct {
	id       string
	agent    string // class:provider:type
	params   map[string]string
	meta     map[string]string
	backends []string // every backend parameter value of its and its template's sets, rule-scoped ones too (normalized)
}

// backendName normalizes a clustervip backend value as the agent reads it
// ("" is auto), so that synonyms do not look like a mix.
func backendName(v string) string {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "", "auto":
		return "auto"
	case "nft":
		return "nftables"
	case "xt_cluster", "iptables":
		return "xtcluster"
	}
	return v
}

// Check reads a CIB (cibadmin -Q, or a file) and reports what keeps
// loadshare's placement from working: bucket primitives and their
// numbering, the buckets parameter, resource-stickiness, the two location
// rules, a clustervip clone's meta, the attribute agents, fencing,
// quorum, and (from the status section) agent versions that differ
// between nodes. It does not run crm_verify (Verify does).
func Check(cib []byte) ([]Problem, error) {
	doc, err := parseElem(cib)
	if err != nil {
		return nil, err
	}
	cfg := doc.child("configuration")
	if doc.Name == "configuration" {
		cfg = doc
	}
	if cfg == nil {
		return nil, fmt.Errorf("check CIB: no <configuration> element")
	}
	var out []Problem
	add := func(sev Severity, obj, msg, fix string) {
		out = append(out, Problem{Severity: sev, Object: obj, Message: msg, Fix: fix})
	}
	res := cfg.child("resources")
	templates := map[string]*elem{}
	for _, t := range res.children("template") {
		templates[t.attr("id")] = t
	}
	defaults := map[string]string{}
	for _, rd := range cfg.path("rsc_defaults").children("meta_attributes") {
		for _, nv := range rd.children("nvpair") {
			defaults[nv.attr("name")] = nv.attr("value")
		}
	}
	resolve := func(p *elem) resolved {
		r := resolved{id: p.attr("id"), params: map[string]string{}, meta: map[string]string{}}
		src := p
		if t := templates[p.attr("template")]; t != nil {
			src = t
			for k, v := range t.nvpairs("instance_attributes") {
				r.params[k] = v
			}
			for k, v := range t.nvpairs("meta_attributes") {
				r.meta[k] = v
			}
		}
		r.agent = src.attr("class") + ":" + src.attr("provider") + ":" + src.attr("type")
		if src.attr("class") != "ocf" {
			r.agent = src.attr("class") + ":" + src.attr("type")
		}
		for k, v := range p.nvpairs("instance_attributes") {
			r.params[k] = v
		}
		for k, v := range p.nvpairs("meta_attributes") {
			r.meta[k] = v
		}
		// Every set counts, also one whose rule scopes it to some nodes
		// (#uname eq n1): that node's kernel would use that backend.
		for _, e := range []*elem{templates[p.attr("template")], p} {
			if e == nil {
				continue
			}
			for _, set := range e.children("instance_attributes") {
				for _, nv := range set.children("nvpair") {
					if nv.attr("name") == "backend" {
						r.backends = append(r.backends, backendName(nv.attr("value")))
					}
				}
			}
		}
		if len(r.backends) == 0 {
			r.backends = []string{"auto"}
		}
		return r
	}
	stickiness := func(meta map[string]string) (string, bool) {
		if v, ok := meta["resource-stickiness"]; ok {
			return v, true
		}
		v, ok := defaults["resource-stickiness"]
		return v, ok
	}

	// Bucket primitives, grouped by name prefix.
	groups := map[string][]resolved{}
	agents := map[string]bool{}
	var mysqlMonitors, serverLoads []resolved
	for _, p := range res.all("primitive") {
		r := resolve(p)
		agents[r.agent] = true
		switch r.agent {
		case "ocf:loadshare:mysql_monitor":
			mysqlMonitors = append(mysqlMonitors, r)
		case "ocf:loadshare:server_load":
			serverLoads = append(serverLoads, r)
		}
		if r.agent != "ocf:loadshare:clustervip" {
			continue
		}
		if isClone(res, p) {
			continue
		}
		m := bucketRE().FindStringSubmatch(r.id)
		if m == nil {
			add(Error, r.id, "a clustervip primitive whose name does not end in _BUCKET: the placer cannot give it to a node.",
				"name bucket primitives NAME_0 … NAME_{N-1} (loadshare crm generates them)")
			continue
		}
		groups[m[1]] = append(groups[m[1]], r)
	}
	requires := map[string]string{} // VIP → the attribute its rules require
	strict := map[string]bool{}     // VIP → a -INFINITY rule keeps it off ineligible nodes
	vipOf := map[string]string{}    // ip → the VIP that has it
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	cons := cfg.child("constraints")
	for _, name := range names {
		g := groups[name]
		n := len(g)
		seen := map[int]bool{}
		for _, r := range g {
			k, _ := strconv.Atoi(bucketRE().FindStringSubmatch(r.id)[2])
			seen[k] = true
			if b := r.params["bucket"]; b != strconv.Itoa(k) {
				add(Error, r.id, fmt.Sprintf("parameter bucket=%q, but the name says bucket %d: the kernel would serve the wrong slice of clients.", b, k),
					fmt.Sprintf("set bucket=%d", k))
			}
			if b := r.params["buckets"]; b != strconv.Itoa(n) {
				add(Error, r.id, fmt.Sprintf("parameter buckets=%q, but %s has %d bucket primitives: nodes would hash clients into a different number of buckets than exist.", b, name, n),
					fmt.Sprintf("set buckets=%d (on the template) or add/remove bucket primitives", n))
			}
			v, explicit := stickiness(r.meta)
			s, err := strconv.Atoi(v)
			switch {
			case !explicit:
				add(Warning, r.id, "resource-stickiness is not set (0): while a bucket moves, its old and new owner tie and Pacemaker may move it twice.",
					fmt.Sprintf("set meta resource-stickiness=%d on the template", Stickiness))
			case err != nil || v == "INFINITY" || v == "+INFINITY" || s >= OwnScore:
				add(Error, r.id, fmt.Sprintf("resource-stickiness=%s is not below the owner score %d: buckets never move to the node the placer gives them to.", v, OwnScore),
					fmt.Sprintf("set resource-stickiness=%d", Stickiness))
			case s >= WritableScore:
				add(Error, r.id, fmt.Sprintf("resource-stickiness=%s is not below the writable score %d: a bucket stays on a node whose MySQL is not writable.", v, WritableScore),
					fmt.Sprintf("set resource-stickiness=%d", Stickiness))
			case s <= 0:
				add(Warning, r.id, fmt.Sprintf("resource-stickiness=%s: while a bucket moves, its old and new owner tie and Pacemaker may move it twice (measured with crm_simulate).", v),
					fmt.Sprintf("set resource-stickiness=%d", Stickiness))
			}
		}
		used := map[string]string{} // backend → a bucket primitive using it
		for _, r := range g {
			for _, b := range r.backends {
				if _, ok := used[b]; !ok {
					used[b] = r.id
				}
			}
		}
		if len(used) > 1 {
			var mix []string
			for b, id := range used {
				mix = append(mix, fmt.Sprintf("%s (%s)", b, id))
			}
			sort.Strings(mix)
			add(Error, name, fmt.Sprintf("the bucket primitives use different backends: %s. Nodes of one VIP must run one backend: "+
				"xtcluster hashes the source address only, takes at most 32 buckets, IPv4 and a multicast MAC, so a mix splits "+
				"clients differently or fails to start on some nodes (backend=auto resolves per node, to xtcluster where nftables is unusable).",
				strings.Join(mix, ", ")),
				"set one explicit backend for the VIP (backend=nftables or backend=xtcluster on the template)")
		}
		var missing []string
		for k := 0; k < n; k++ {
			if !seen[k] {
				missing = append(missing, strconv.Itoa(k))
			}
		}
		if len(missing) > 0 {
			add(Error, name, fmt.Sprintf("bucket primitives are not numbered 0…%d: missing %s; clients hashing into those buckets get no answer.", n-1, strings.Join(missing, ",")),
				"regenerate the configuration with loadshare crm")
		}
		probe := name + "_0"
		require := AttrWritable // the attribute the VIP's rules require
		if !hasRule(cons, probe, AttrWritable, WritableScore) && hasRule(cons, probe, AttrReadable, WritableScore) {
			require = AttrReadable
		}
		requires[name] = require
		strict[name] = hasForbid(cons, probe, require)
		if ip := g[0].params["ip"]; ip != "" {
			if other, ok := vipOf[ip]; ok {
				add(Error, name, fmt.Sprintf("VIP %s has ip=%s, as VIP %s does: both would hold the address and answer the same clients twice.", name, ip, other),
					"give every VIP its own address")
			} else {
				vipOf[ip] = name
			}
		}
		if !hasRule(cons, probe, "own_"+name+"_%1", OwnScore) {
			add(Error, name, fmt.Sprintf("no location rule gives bucket K to the node with own_%s_K=1 (score %d): the placer's targets are never enforced.", name, OwnScore),
				fmt.Sprintf("add: location %s-own /^%s_([0-9]+)$/ rule %d: own_%s_%%1 eq 1 and %s eq 1", name, name, OwnScore, name, require))
		}
		if !hasRule(cons, probe, require, WritableScore) {
			add(Error, name, fmt.Sprintf("no location rule prefers eligible nodes (%s eq 1, score %d): a failed owner's buckets may land on a node whose MySQL cannot serve them.", require, WritableScore),
				fmt.Sprintf("add: location %s-%s /^%s_[0-9]+$/ rule %d: %s eq 1", name, Requires[require], name, WritableScore, require))
		}
	}
	out = append(out, checkRoles(names, requires, mysqlMonitors, serverLoads)...)
	out = append(out, checkStrict(names, requires, strict)...)

	// The design's other shape: a globally-unique clone of clustervip.
	for _, c := range res.children("clone") {
		p := c.child("primitive")
		if p == nil || resolve(p).agent != "ocf:loadshare:clustervip" || resolve(p).params["flood_check"] != "" {
			continue // a flood check's clone owns no bucket
		}
		meta := c.nvpairs("meta_attributes")
		id := c.attr("id")
		if meta["globally-unique"] != "true" {
			add(Error, id, "clone of clustervip without globally-unique=true: all instances are the same bucket.", "set meta globally-unique=true")
		}
		cm, _ := strconv.Atoi(meta["clone-max"])
		if b := resolve(p).params["buckets"]; b != "" && b != meta["clone-max"] {
			add(Error, id, fmt.Sprintf("clone-max=%q differs from parameter buckets=%q: some buckets have no instance.", meta["clone-max"], b), "set clone-max to the number of buckets")
		}
		if cm > 0 && meta["clone-node-max"] != meta["clone-max"] {
			add(Error, id, fmt.Sprintf("clone-node-max=%q is not clone-max=%d: with nodes down some buckets cannot run anywhere (dark).", meta["clone-node-max"], cm), fmt.Sprintf("set clone-node-max=%d", cm))
		}
		if v, ok := stickiness(meta); !ok || v != "0" {
			add(Error, id, "clone without resource-stickiness=0 (clones default to 1): after a node recovers, instances stay piled on the survivors.", "set meta resource-stickiness=0")
		}
		add(Warning, id, "buckets as a clone cannot follow load: location rules cannot name clone instances, and utilization leaves buckets dark when a node fails (docs/placement.md).",
			"use per-bucket primitives: loadshare crm")
	}
	if len(groups) > 0 {
		for _, a := range []string{"ocf:loadshare:mysql_monitor", "ocf:loadshare:server_load"} {
			if !agents[a] {
				add(Warning, "", fmt.Sprintf("no %s resource: its node attribute is never written, so placement cannot see it.", a),
					"add the clone (loadshare crm generates it)")
			}
		}
	}

	props := map[string]string{}
	for _, ps := range cfg.path("crm_config").children("cluster_property_set") {
		for _, nv := range ps.children("nvpair") {
			props[nv.attr("name")] = nv.attr("value")
		}
	}
	if v := strings.ToLower(props["stonith-enabled"]); v == "false" || v == "0" || v == "no" {
		add(Warning, "stonith-enabled", "fencing is off: a node that hangs instead of dying keeps answering for its buckets while the survivors answer for them too.",
			"configure a fencing device and set stonith-enabled=true (test clusters only may run without)")
	}
	if props["no-quorum-policy"] == "ignore" {
		add(Warning, "no-quorum-policy", "no-quorum-policy=ignore: both halves of a split cluster serve every bucket.", "use stop (the default) with fencing")
	}
	most := 0 // the largest VIP's bucket count
	for _, g := range groups {
		most = max(most, len(g))
	}
	if most >= ThrottledBuckets {
		v, set := props["load-threshold"]
		pct, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
		if !set || !percentRE().MatchString(v) || err != nil {
			v, pct = "80%", 80 // Pacemaker's default, also for a value it cannot read
			if set {
				v = fmt.Sprintf("%q (not a percentage, so 80%%)", props["load-threshold"])
			} else {
				v = "not set (80%)"
			}
		}
		if pct > 0 {
			add(Warning, "load-threshold", fmt.Sprintf("load-threshold is %s with %d buckets: Pacemaker runs one action at a time on a node whose load average is above %.3g × its cores (2 × load-threshold), and the cluster at most nodes/2 at once, so a busy node takes over a failed node's buckets one by one.", v, most, float64(pct)/50),
				"crm configure property load-threshold=0% (loadshare crm generates it)")
		}
	}
	if v := strings.ToLower(props["symmetric-cluster"]); v == "false" {
		add(Warning, "symmetric-cluster", "symmetric-cluster=false: buckets may run only where a rule scores above 0, so with no writable node they all stop.", "")
	}
	out = append(out, checkVersions(doc)...)
	out = append(out, checkFlood(doc)...)
	return out, nil
}

// checkRoles checks what ties the VIPs to the attribute agents: each VIP
// is in server_load's placer list with the attribute its rules require, the
// list names no VIP that has no buckets, and a required attribute is one
// that mysql_monitor publishes.
func checkRoles(names []string, requires map[string]string, mysqlMonitors, serverLoads []resolved) []Problem {
	var out []Problem
	add := func(sev Severity, obj, msg, fix string) {
		out = append(out, Problem{Severity: sev, Object: obj, Message: msg, Fix: fix})
	}
	for _, m := range mysqlMonitors {
		v := strings.ToLower(m.params["publish_readable"])
		if v != "false" && v != "no" && v != "0" && v != "off" {
			continue
		}
		for _, name := range names {
			if requires[name] == AttrReadable {
				add(Error, name, fmt.Sprintf("VIP %s's buckets require %s, but %s has publish_readable=%s: no node is ever eligible, the buckets run on no chosen node.", name, AttrReadable, m.id, m.params["publish_readable"]),
					"remove publish_readable=false from "+m.id)
			}
		}
	}
	for _, sl := range serverLoads {
		vips, err := ParsePlacer(sl.params["placer"])
		if err != nil {
			add(Error, sl.id, fmt.Sprintf("parameter placer=%q: %v; its monitor refuses to run.", sl.params["placer"], err), "regenerate the configuration with loadshare crm")
			continue
		}
		placed := map[string]PlacerVIP{}
		for _, v := range vips {
			placed[v.Name] = v
			if _, ok := requires[v.Name]; !ok {
				add(Warning, sl.id, fmt.Sprintf("placer names VIP %s, which has no bucket primitives %s_0 …: that round does nothing.", v.Name, v.Name),
					"remove it from placer, or add the VIP")
			}
		}
		for _, name := range names {
			v, ok := placed[name]
			switch {
			case !ok:
				add(Error, name, fmt.Sprintf("VIP %s is not in %s's placer (%q): its own_%s_K attributes are never written, so its buckets do not follow load and a returning node gets none. Loading one VIP's configuration over another's does this.", name, sl.id, sl.params["placer"], name),
					"generate every VIP in one run (loadshare crm --vip … --vip …) and load that")
			case v.Require != requires[name]:
				add(Error, name, fmt.Sprintf("VIP %s's rules require %s, but the placer places it on nodes with %s=1: targets and rules disagree and buckets move back and forth.", name, requires[name], v.Require),
					fmt.Sprintf("set require=%s in its placer word", requires[name]))
			}
		}
	}
	return out
}

// checkStrict warns about a writer VIP that is not strict in a
// configuration with a reader VIP: that is a replication cluster, and
// with no writable node (the primary failed, no replica promoted yet) a
// writer VIP that is not strict keeps its buckets running on replicas,
// where a replica with read_only off would take writes.
func checkStrict(names []string, requires map[string]string, strict map[string]bool) []Problem {
	readers := false
	for _, n := range names {
		readers = readers || requires[n] == AttrReadable
	}
	if !readers {
		return nil
	}
	var out []Problem
	for _, n := range names {
		if requires[n] == AttrWritable && !strict[n] {
			out = append(out, Problem{Severity: Warning, Object: n,
				Message: fmt.Sprintf("writer VIP %s is not strict, beside a reader VIP (replication): when no node is writable its buckets keep running on replicas, and a replica with read_only off would take writes.", n),
				Fix:     fmt.Sprintf("generate it with strict=true (--vip name=%s,…,strict=true): location %s-strict /^%s_[0-9]+$/ rule -inf: not_defined %s or %s ne 1", n, n, n, AttrWritable, AttrWritable)})
		}
	}
	return out
}

// checkVersions warns when the nodes' agents are of different builds, as
// the AttrVersion node attributes in the CIB's status section say (a
// configuration file without status says nothing).
func checkVersions(doc *elem) []Problem {
	nodes := map[string][]string{} // version → node names
	for _, ns := range doc.path("status").children("node_state") {
		for _, ta := range ns.children("transient_attributes") {
			if v, ok := ta.nvpairs("instance_attributes")[AttrVersion]; ok && v != "" {
				nodes[v] = append(nodes[v], ns.attr("uname"))
			}
		}
	}
	if len(nodes) < 2 {
		return nil
	}
	versions := make([]string, 0, len(nodes))
	for v := range nodes {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	var each []string
	for _, v := range versions {
		sort.Strings(nodes[v])
		each = append(each, v+" on "+strings.Join(nodes[v], ","))
	}
	return []Problem{{Severity: Warning, Object: AttrVersion,
		Message: fmt.Sprintf("nodes run different loadshare agent versions: %s. Fine during an upgrade, node by node; otherwise the nodes may disagree on how buckets are served.", strings.Join(each, "; ")),
		Fix:     "install the same loadshare package on every node"}}
}

// checkFlood names the nodes whose flood check says the network does not
// deliver a VIP's frames to them (FloodAttr 0 in the status section): the
// rules and the placer keep that VIP's buckets off them, and the switch
// needs fixing.
func checkFlood(doc *elem) []Problem {
	byVIP := map[string][]string{}
	for _, ns := range doc.path("status").children("node_state") {
		for _, ta := range ns.children("transient_attributes") {
			for k, v := range ta.nvpairs("instance_attributes") {
				if name, ok := strings.CutPrefix(k, FloodAttr("")); ok && v == "0" {
					byVIP[name] = append(byVIP[name], ns.attr("uname"))
				}
			}
		}
	}
	var out []Problem
	for name, nodes := range byVIP {
		sort.Strings(nodes)
		out = append(out, Problem{Severity: Warning, Object: name,
			Message: fmt.Sprintf("%s do(es) not receive VIP %s's frames (%s=0, the flood check: no other node's probe arrives while the others hear each other): its buckets are kept off them.",
				strings.Join(nodes, ", "), name, FloodAttr(name)),
			Fix: "make the switch flood the cluster MAC to those ports (IGMP/MLD snooping, static MAC entries, teaming policy); the buckets return by themselves"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out
}

func isClone(res, p *elem) bool {
	for _, c := range res.all("clone") {
		for _, ch := range c.Children {
			if ch == p {
				return true
			}
		}
	}
	return false
}

// rulesFor returns the rules of the rsc_locations applying to rsc (by rsc
// or rsc-pattern).
func rulesFor(cons *elem, rsc string) []*elem {
	var out []*elem
	for _, l := range cons.children("rsc_location") {
		if l.attr("rsc") != rsc {
			pat := l.attr("rsc-pattern")
			re, err := regexp.Compile(pat)
			if pat == "" || err != nil || !re.MatchString(rsc) {
				continue
			}
		}
		out = append(out, l.children("rule")...)
	}
	return out
}

// mentions reports whether one of the rule's expressions is about attr.
func mentions(rule *elem, attr string) bool {
	for _, e := range rule.all("expression") {
		if e.attr("attribute") == attr {
			return true
		}
	}
	return false
}

// hasRule reports a rule applying to rsc of score at least score that
// names attr.
func hasRule(cons *elem, rsc, attr string, score int) bool {
	for _, r := range rulesFor(cons, rsc) {
		s, err := strconv.Atoi(r.attr("score"))
		if r.attr("score") == "INFINITY" || r.attr("score") == "+INFINITY" {
			s, err = 1000000, nil
		}
		if err == nil && s >= score && mentions(r, attr) {
			return true
		}
	}
	return false
}

// hasForbid reports a -INFINITY rule applying to rsc that names attr: what
// keeps a strict VIP off the nodes without it.
func hasForbid(cons *elem, rsc, attr string) bool {
	for _, r := range rulesFor(cons, rsc) {
		if sc := r.attr("score"); (sc == "-INFINITY" || sc == strconv.Itoa(Forbidden)) && mentions(r, attr) {
			return true
		}
	}
	return false
}

// Verify runs Pacemaker's crm_verify on a CIB file (file != "") or on the
// live cluster, and returns its findings as problems in operator words.
// Equivalent to: crm_verify -V -x FILE (or -L)
func Verify(ctx context.Context, file string) ([]Problem, error) {
	argv := []string{"crm_verify", "-V", "-L"}
	if file != "" {
		argv = []string{"crm_verify", "-V", "-x", file}
	}
	out, err := runTool(ctx, nil, argv...)
	te, _ := err.(*ToolError)
	if err != nil && te == nil {
		return nil, err
	}
	text := string(out)
	if te != nil {
		text += "\n" + strings.ReplaceAll(te.Stderr, "; ", "\n")
		if file == "" && (te.IsNotConnected() || strings.Contains(te.Stderr, "CIB query failed")) {
			return nil, fmt.Errorf("no running cluster on this node to check (use --file): %w", err)
		}
	}
	return explainVerify(text), nil
}

// explainVerify turns crm_verify's lines into problems; known messages get
// operator words, others pass as they are.
func explainVerify(text string) []Problem {
	var out []Problem
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		p := Problem{Severity: Error, Message: line}
		switch {
		case strings.Contains(line, "-V may provide more details"),
			strings.Contains(line, "Either configure some or disable STONITH"),
			strings.Contains(line, "Clusters with shared data need STONITH"),
			strings.Contains(line, "Errors found during check"),
			strings.Contains(line, "Warnings found during check"),
			strings.Contains(line, "CIB did not pass schema validation"),
			strings.HasPrefix(line, "... ("):
			continue
		case strings.Contains(line, "no STONITH resources have been defined"):
			p.Message = "no fencing device is configured, so Pacemaker starts nothing."
			p.Fix = "configure a stonith resource (on a test cluster only: crm configure property stonith-enabled=false)"
		case strings.Contains(line, "references an unknown ID"):
			p.Message = "a constraint names a resource that does not exist: " + afterColon(line)
			p.Fix = "fix the id or delete the constraint"
		case strings.Contains(line, "Relax-NG validity error"), strings.Contains(line, "validity error"):
			p.Message = "the configuration does not follow Pacemaker's schema: " + afterColon(line)
			p.Fix = "correct the element named (crm configure edit shows it)"
		case strings.Contains(line, "warning:"):
			p.Severity = Warning
			p.Message = afterColon(line)
		case strings.Contains(line, "error:"):
			p.Message = afterColon(line)
		}
		out = append(out, p)
	}
	return out
}

// afterColon drops crm_verify's "(function) error:" / "file:line: element x:" prefixes.
func afterColon(line string) string {
	for _, marker := range []string{"error:", "warning:", "validity error :", "Relax-NG validity error :"} {
		if i := strings.LastIndex(line, marker); i >= 0 {
			return strings.TrimSpace(line[i+len(marker):])
		}
	}
	return line
}
