package crm

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Sim is a cluster simulated with Pacemaker's own scheduler: a
// configuration, nodes with membership and transient attributes, and where
// each primitive runs. Transition asks crm_simulate what the cluster does
// next and applies it, as if every action succeeded.
//
// Sim writes the CIB status section itself (resource history with the
// operation digests Pacemaker computed, probes elsewhere) and runs
// `crm_simulate -R` (the scheduler only): crm_simulate's own executor (-S)
// takes minutes on 256 resources × 8 nodes (it is quadratic in the actions:
// 1m52s for the first transition) where the scheduler takes 0.3 s.
type Sim struct {
	// ForceQuorum keeps quorum whatever the membership (corosync
	// last_man_standing / auto_tie_breaker); without it the cluster has
	// quorum only while more than half the nodes are online.
	ForceQuorum bool

	config  *elem
	nodes   []*SimNode
	running map[string]string // primitive → node
	prims   []string          // primitive ids in configuration order
	history map[string]*elem  // primitive → lrm_resource with start and monitor ops
	dir     string
	seq     int
}

// SimNode is one simulated node.
type SimNode struct {
	Name   string
	ID     string
	Online bool
	Attrs  map[string]string // transient attributes (status section)
	fresh  bool              // joined with its resource history deleted
}

// Action is one resource action of a transition.
type Action struct {
	Action   string // start, stop, move, restart, recover, migrate
	Resource string
	From, To string
}

// Transition is what the scheduler decided in one run.
type Transition struct {
	Actions []Action
	Moves   int      // a running resource moved to another node
	Starts  int      // a stopped resource started
	Stops   int      // a running resource stopped
	Blocked []Action // wanted but not allowed (e.g. a start without quorum); not applied
}

// NewSim builds a simulated cluster from the configuration of one or more
// VIPs (the first Spec's Nodes are the nodes, all offline at first; Specs
// checks the others agree) and learns the operation digests Pacemaker
// records, by running crm_simulate once per chunk of resources. Work files
// go to dir.
func NewSim(ctx context.Context, specs Specs, dir string) (*Sim, error) {
	cfg, err := specs.configuration()
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 || len(specs[0].Nodes) == 0 {
		return nil, fmt.Errorf("simulate: spec has no nodes")
	}
	props := cfg.path("crm_config", "cluster_property_set")
	props.add(newElem("nvpair", "id", "sim-stonith", "name", "stonith-enabled", "value", "false"))
	sim := &Sim{config: cfg, running: map[string]string{}, dir: dir}
	for _, n := range cfg.path("nodes").children("node") {
		sim.nodes = append(sim.nodes, &SimNode{Name: n.attr("uname"), ID: n.attr("id"), Attrs: map[string]string{}, fresh: true})
	}
	for _, p := range cfg.path("resources").children("primitive") {
		sim.prims = append(sim.prims, p.attr("id"))
	}
	if sim.history, err = harvest(ctx, cfg, dir); err != nil {
		return nil, err
	}
	return sim, nil
}

var harvestCache sync.Map // configuration XML → map[string]*elem

// harvest runs crm_simulate -S on one node for chunks of the primitives and
// keeps each primitive's resource history (start + monitor with digests).
func harvest(ctx context.Context, cfg *elem, dir string) (map[string]*elem, error) {
	key := string(cfg.bytes(""))
	if h, ok := harvestCache.Load(key); ok {
		return h.(map[string]*elem), nil
	}
	res := cfg.path("resources")
	var prims, others []*elem
	for _, c := range res.Children {
		if c.Name == "primitive" {
			prims = append(prims, c)
		} else if c.Name == "template" {
			others = append(others, c)
		}
	}
	const chunk = 48 // crm_simulate -S is quadratic: 48 take 0.3 s, 256 take 13 s
	type result struct {
		hist map[string]*elem
		err  error
	}
	var chunks [][]*elem
	for i := 0; i < len(prims); i += chunk {
		chunks = append(chunks, prims[i:min(i+chunk, len(prims))])
	}
	results := make([]result, len(chunks))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, part := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c := cfg.clone()
			r := c.path("resources")
			r.Children = append(append([]*elem(nil), others...), part...)
			c.path("nodes").Children = []*elem{newElem("node", "id", "1", "uname", "h")}
			c.path("constraints").Children = nil
			cib := newElem("cib", "validate-with", "pacemaker-3.0", "epoch", "1", "num_updates", "0", "admin_epoch", "0", "have-quorum", "1")
			cib.add(c, newElem("status").add(onlineState("1", "h")))
			in := filepath.Join(dir, fmt.Sprintf("harvest-%d.xml", i))
			out := filepath.Join(dir, fmt.Sprintf("harvest-%d-out.xml", i))
			if err := os.WriteFile(in, cib.bytes(""), 0o644); err != nil {
				results[i].err = err
				return
			}
			if _, err := runTool(ctx, nil, "crm_simulate", "-x", in, "-S", "-Q", "-O", out); err != nil {
				results[i].err = fmt.Errorf("learn operation digests: %w", err)
				return
			}
			b, err := os.ReadFile(out)
			if err != nil {
				results[i].err = err
				return
			}
			doc, err := parseElem(b)
			if err != nil {
				results[i].err = err
				return
			}
			results[i].hist = map[string]*elem{}
			for _, lr := range doc.all("lrm_resource") {
				results[i].hist[lr.attr("id")] = lr
			}
		}()
	}
	wg.Wait()
	hist := map[string]*elem{}
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		for k, v := range r.hist {
			hist[k] = v
		}
	}
	for _, p := range prims {
		if hist[p.attr("id")] == nil {
			return nil, fmt.Errorf("learn operation digests: crm_simulate did not start %s", p.attr("id"))
		}
	}
	harvestCache.Store(key, hist)
	return hist, nil
}

func onlineState(id, name string) *elem {
	return newElem("node_state", "id", id, "uname", name, "in_ccm", "true", "crmd", "online", "join", "member", "expected", "member")
}

// Node returns the named node, nil when there is none.
func (s *Sim) Node(name string) *SimNode {
	for _, n := range s.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Nodes returns the nodes, in configuration order.
func (s *Sim) Nodes() []*SimNode { return s.nodes }

// Join brings a node into the membership with no transient attributes and
// no resource history: the cluster deletes both when a node joins (and
// crm_simulate matches the real cluster only then).
func (s *Sim) Join(name string) {
	n := s.Node(name)
	n.Online, n.fresh, n.Attrs = true, true, map[string]string{}
	for r, at := range s.running {
		if at == name {
			delete(s.running, r)
		}
	}
}

// Fail takes a node out after it was fenced: offline, its transient
// attributes erased, nothing running there.
func (s *Sim) Fail(name string) {
	n := s.Node(name)
	n.Online, n.Attrs = false, map[string]string{}
	for r, at := range s.running {
		if at == name {
			delete(s.running, r)
		}
	}
}

// SetAttr sets a transient attribute; value "" deletes it.
func (s *Sim) SetAttr(node, name, value string) {
	n := s.Node(node)
	if value == "" {
		delete(n.Attrs, name)
		return
	}
	n.Attrs[name] = value
}

// Placement returns where the primitives named prefix_K run, by K.
func (s *Sim) Placement(spec Spec, buckets int) Placement {
	pl := make(Placement, buckets)
	for k := range pl {
		pl[k] = s.running[spec.Resource(k)]
	}
	return pl
}

// Stopped returns the primitives running nowhere.
func (s *Sim) Stopped() []string {
	var out []string
	for _, p := range s.prims {
		if s.running[p] == "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Sim) quorum() bool {
	if s.ForceQuorum {
		return true
	}
	on := 0
	for _, n := range s.nodes {
		if n.Online {
			on++
		}
	}
	return 2*on > len(s.nodes)
}

// CIB returns the whole simulated CIB: configuration and status.
func (s *Sim) CIB() []byte {
	q := "0"
	if s.quorum() {
		q = "1"
	}
	s.seq++
	cib := newElem("cib", "validate-with", "pacemaker-3.0", "epoch", strconv.Itoa(s.seq), "num_updates", "0", "admin_epoch", "0", "have-quorum", q)
	status := newElem("status")
	for _, n := range s.nodes {
		if !n.Online {
			status.add(newElem("node_state", "id", n.ID, "uname", n.Name, "in_ccm", "false", "crmd", "offline", "join", "down", "expected", "down"))
			continue
		}
		ns := onlineState(n.ID, n.Name)
		if len(n.Attrs) > 0 {
			ia := newElem("instance_attributes", "id", "status-"+n.ID)
			names := make([]string, 0, len(n.Attrs))
			for k := range n.Attrs {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				ia.add(newElem("nvpair", "id", "status-"+n.ID+"-"+k, "name", k, "value", n.Attrs[k]))
			}
			ns.add(newElem("transient_attributes", "id", n.ID).add(ia))
		}
		if !n.fresh {
			lrs := newElem("lrm_resources")
			for _, p := range s.prims {
				h := s.history[p]
				if s.running[p] == n.Name {
					lrs.add(h)
					continue
				}
				lrs.add(newElem("lrm_resource", "id", p, "class", h.attr("class"), "provider", h.attr("provider"), "type", h.attr("type")).add(
					newElem("lrm_rsc_op", "id", p+"_last_0", "operation_key", p+"_monitor_0", "operation", "monitor",
						"crm-debug-origin", "loadshare-sim", "crm_feature_set", "3.16.1", "transition-key", "1:-1:7:loadshare-sim",
						"transition-magic", "0:7;1:-1:7:loadshare-sim", "exit-reason", "", "call-id", "1", "rc-code", "7",
						"op-status", "0", "interval", "0", "last-rc-change", "1", "exec-time", "0", "queue-time", "0")))
			}
			ns.add(newElem("lrm", "id", n.ID).add(lrs))
		}
		status.add(ns)
	}
	cib.add(s.config, status)
	return cib.bytes("")
}

type simResult struct {
	Actions []struct {
		Action   string `xml:"action,attr"`
		Resource string `xml:"resource,attr"`
		Source   string `xml:"source,attr"`
		Dest     string `xml:"dest,attr"`
		Node     string `xml:"node,attr"`
		Blocked  bool   `xml:"blocked,attr"`
	} `xml:"actions>rsc_action"`
}

// Transition runs the scheduler once on the current state and applies its
// actions. Equivalent to: crm_simulate -x CIB -R --output-as=xml
func (s *Sim) Transition(ctx context.Context) (Transition, error) {
	f := filepath.Join(s.dir, "sim.xml")
	if err := os.WriteFile(f, s.CIB(), 0o644); err != nil {
		return Transition{}, err
	}
	out, err := runTool(ctx, nil, "crm_simulate", "-x", f, "-R", "--output-as=xml")
	if err != nil {
		return Transition{}, err
	}
	var r simResult
	if err := xml.Unmarshal(out, &r); err != nil {
		return Transition{}, fmt.Errorf("parse crm_simulate XML: %w", err)
	}
	var t Transition
	for _, a := range r.Actions {
		act := Action{Action: a.Action, Resource: a.Resource, From: a.Source}
		if a.Blocked {
			act.To = a.Node
			t.Blocked = append(t.Blocked, act)
			continue
		}
		switch a.Action {
		case "stop":
			if act.From == "" {
				act.From = a.Node
			}
			delete(s.running, a.Resource)
			t.Stops++
		case "start":
			act.To = a.Node
			s.running[a.Resource] = act.To
			t.Starts++
		case "move", "migrate":
			act.To = a.Dest
			s.running[a.Resource] = act.To
			t.Moves++
		default: // restart, recover: stays, or goes to dest
			act.To = a.Dest
			if act.To == "" {
				act.To = a.Node
			}
			if act.To == "" {
				act.To = a.Source
			}
			s.running[a.Resource] = act.To
		}
		t.Actions = append(t.Actions, act)
	}
	for _, n := range s.nodes {
		if n.Online {
			n.fresh = false // probed in this transition
		}
	}
	return t, nil
}

// Status returns the simulated cluster as crm_mon shows it, by running
// crm_mon on the simulated CIB. Equivalent to: CIB_file=CIB crm_mon -1 -A --output-as=xml
func (s *Sim) Status(ctx context.Context) (*Status, error) {
	f := filepath.Join(s.dir, "mon.xml")
	if err := os.WriteFile(f, s.CIB(), 0o644); err != nil {
		return nil, err
	}
	out, err := runTool(ctx, []string{"CIB_file=" + f}, "crm_mon", "-1", "-A", "--output-as=xml")
	if err != nil {
		return nil, err
	}
	return ParseStatus(out)
}

// Schedule asks Pacemaker's scheduler what it would do with a CIB (a file
// written from `cibadmin -Q`, or one Spec.XML made) and returns the status
// before and the resulting placement: every resource with the nodes it
// would run on. It changes nothing. Equivalent to: crm_simulate -x FILE -R -A --output-as=xml
func Schedule(ctx context.Context, file string) (before *Status, after []Resource, t Transition, err error) {
	out, err := runTool(ctx, nil, "crm_simulate", "-x", file, "-R", "-A", "--output-as=xml")
	if err != nil {
		return nil, nil, Transition{}, err
	}
	if before, err = ParseStatus(out); err != nil {
		return nil, nil, Transition{}, err
	}
	var r simResult
	if err := xml.Unmarshal(out, &r); err != nil {
		return nil, nil, Transition{}, fmt.Errorf("parse crm_simulate XML: %w", err)
	}
	at := map[string][]string{}
	for _, res := range before.Resources {
		at[res.ID] = res.Nodes
	}
	for _, a := range r.Actions {
		act := Action{Action: a.Action, Resource: a.Resource, From: a.Source, To: a.Dest}
		if a.Blocked {
			act.To = a.Node
			t.Blocked = append(t.Blocked, act)
			continue
		}
		switch a.Action {
		case "stop":
			at[a.Resource] = nil
			t.Stops++
		case "start":
			act.To = a.Node
			at[a.Resource] = []string{a.Node}
			t.Starts++
		case "move", "migrate":
			at[a.Resource] = []string{a.Dest}
			t.Moves++
		}
		t.Actions = append(t.Actions, act)
	}
	for _, res := range before.Resources {
		res.Nodes = at[res.ID]
		after = append(after, res)
	}
	return before, after, t, nil
}

// DarkBuckets asks the scheduler (crm_simulate -R) where the bucket
// primitives would run with this CIB, and reports those that would run
// nowhere while some node is online and writable.
func DarkBuckets(ctx context.Context, cib []byte) ([]Problem, error) {
	dir, err := os.MkdirTemp("", "loadshare-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "cib.xml")
	if err := os.WriteFile(f, cib, 0o600); err != nil {
		return nil, err
	}
	before, after, _, err := Schedule(ctx, f)
	if err != nil {
		return []Problem{{Severity: Warning, Message: "could not ask the scheduler where buckets would run: " + err.Error()}}, nil
	}
	writable := false
	for _, n := range before.Nodes {
		writable = writable || (n.Online && n.Attrs[AttrWritable] == "1")
	}
	if !writable {
		return nil, nil
	}
	var dark []string
	for _, r := range after {
		if r.Clone == "" && bucketRE().MatchString(r.ID) && len(r.Nodes) == 0 {
			dark = append(dark, r.ID)
		}
	}
	if len(dark) == 0 {
		return nil, nil
	}
	return []Problem{{Severity: Error, Message: fmt.Sprintf("%d bucket(s) would run nowhere although a node is writable: %s; their clients get no answer.", len(dark), strings.Join(dark, " ")),
		Fix: "crm_simulate -L -s shows the scores; look for bans (-INFINITY) and failed resources (crm_resource --cleanup)"}}, nil
}

// CheckAll is what `loadshare crm check` reports for a CIB: crm_verify's
// findings (of file, or of the live cluster when file is ""), loadshare's
// own checks (Check) and the buckets the scheduler would leave dark.
func CheckAll(ctx context.Context, file string, cib []byte) ([]Problem, error) {
	problems, err := Verify(ctx, file)
	if err != nil {
		return nil, err
	}
	own, err := Check(cib)
	if err != nil {
		return nil, err
	}
	dark, err := DarkBuckets(ctx, cib)
	if err != nil {
		return nil, err
	}
	return append(append(problems, own...), dark...), nil
}
