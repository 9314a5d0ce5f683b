package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/clusterip/metrics"
	"github.com/loadshare/loadshare/crm"
)

func init() {
	register(command{
		name:    "status",
		summary: "per node: online, writable, load, target and owned buckets (Pacemaker and kernel)",
		run:     runStatus,
	})
}

// statusView is `loadshare status --output json`.
type statusView struct {
	Name    string     `json:"name"`
	Buckets int        `json:"buckets"`
	DC      string     `json:"dc"`
	Nodes   []nodeView `json:"nodes"`
	Unowned []int      `json:"unowned"`       // buckets running nowhere (dark)
	Moves   int        `json:"pending_moves"` // buckets the placer would still move
	// FloodNone: the VIP's flood check runs on two or more nodes and none
	// says it hears another's probes: just started, or the network delivers
	// the VIP's frames to no node (every node keeps serving).
	FloodNone bool         `json:"flood_none_reached,omitempty"`
	Kernel    []kernelView `json:"kernel,omitempty"` // VIPs in this node's kernel
	KernelOn  string       `json:"kernel_node"`      // the node the kernel view is from
	KernelErr string       `json:"kernel_error,omitempty"`
	CrmErr    string       `json:"pacemaker_error,omitempty"` // crm_mon failed (no cluster on this node)
	Peers     []peerView   `json:"peers,omitempty"`           // the other nodes' kernels, from their metrics (--peers, --peer)
	// With peers, once every online node's kernel was read: the buckets no
	// kernel or several kernels own.
	OwnersChecked bool           `json:"kernel_owners_checked"`
	Owners        []ownerProblem `json:"kernel_owners,omitempty"`
}

// peerView is another node's kernel as its metrics endpoint shows it.
type peerView struct {
	Node  string           `json:"node"`
	URL   string           `json:"url"`
	VIPs  []metrics.Remote `json:"vips,omitempty"`
	Error string           `json:"error,omitempty"`
}

// ownerProblem is a bucket of a VIP that the kernels read own other than
// exactly once.
type ownerProblem struct {
	VIP    string   `json:"vip"`
	Bucket int      `json:"bucket"`
	Nodes  []string `json:"nodes"` // empty: dark
}

type nodeView struct {
	Name       string `json:"name"`
	Online     bool   `json:"online"`
	Writable   bool   `json:"writable_monit"`
	ServerLoad *int   `json:"server_load"` // null when not reported
	Target     int    `json:"target"`
	Owned      []int  `json:"owned"`   // buckets Pacemaker runs here
	Claimed    int    `json:"claimed"` // own_* attributes set here
	// Flood is the VIP's flood check on the node: "reached" (flood_NAME=1),
	// "unreached" (0: the network does not deliver the VIP's frames here;
	// no buckets go to it), "" not judged or no flood check.
	Flood string `json:"flood,omitempty"`
}

type kernelView struct {
	VIP      string                    `json:"vip"`
	Buckets  int                       `json:"buckets"`
	Owned    []int                     `json:"owned"`
	Counters map[string]kernelCounters `json:"counters,omitempty"` // by bucket
	Error    string                    `json:"error,omitempty"`
}

type kernelCounters struct {
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
	NewConns uint64 `json:"new_conns"`
}

const statusUsage = `usage: loadshare status [--name vip] [--output text|json] [--file CIB.xml]
                        [--peers URL-TEMPLATE | --peer NODE=URL …] [--watch DURATION [--count N]]

Per node: online, writable_monit, server_load, the placer's target, the
buckets Pacemaker runs there (crm_mon), and, for the node this runs on, the
buckets its kernel owns with their counters (needs root).

With --peers (or --peer) it also reads every other online node's kernel, from
that node's metrics (loadshare metrics --listen, or node_exporter serving the
metrics_textfile), and says which buckets no kernel or several kernels own:
  loadshare status --peers 'http://{node}:9667/metrics'    # {node}: the Pacemaker node name
  loadshare status --peers 'http://{node}:9100/metrics'    # node_exporter's textfile collector
--watch refreshes the view in place every DURATION until interrupted.`

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusUsage, stderr)
	name := fs.String("name", "vip", "resource prefix of the bucket primitives")
	output := fs.String("output", "text", "text or json")
	file := fs.String("file", "", "read a CIB file instead of the live cluster (no kernel view)")
	policy := policyFlags(fs)
	peers := fs.String("peers", "", "URL of every other node's metrics, {node} standing for its Pacemaker name, e.g. http://{node}:9667/metrics")
	peer := map[string]string{}
	fs.Func("peer", "NODE=URL: one node's metrics URL (repeatable; overrides --peers for that node)", func(v string) error {
		n, u, ok := strings.Cut(v, "=")
		if !ok || n == "" || !strings.HasPrefix(u, "http") {
			return errors.New("want NODE=http://HOST:PORT/metrics")
		}
		peer[n] = u
		return nil
	})
	watch := fs.Duration("watch", 0, "refresh the view in place this often, until interrupted (text output)")
	count := fs.Int("count", 0, "with --watch: stop after this many views (0: until interrupted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("--output=%q: want text or json: %w", *output, errUsage)
	}
	if *peers != "" && (!strings.Contains(*peers, "{node}") || !strings.HasPrefix(*peers, "http")) {
		return fmt.Errorf("--peers=%q: want a URL with {node}, e.g. http://{node}:9667/metrics: %w", *peers, errUsage)
	}
	switch {
	case *watch < 0 || (*watch > 0 && *watch < 100*time.Millisecond):
		return fmt.Errorf("--watch=%s: want at least 100ms: %w", *watch, errUsage)
	case *count < 0:
		return fmt.Errorf("--count=%d: must not be negative: %w", *count, errUsage)
	case *count > 0 && *watch == 0:
		return fmt.Errorf("--count needs --watch: %w", errUsage)
	case *watch > 0 && *output == "json":
		return fmt.Errorf("--watch shows text: drop --output json: %w", errUsage)
	}
	p, err := policy()
	if err != nil {
		return err
	}
	if *file != "" {
		os.Setenv("CIB_file", *file)
	}
	o := statusOptions{name: *name, policy: p, file: *file, peers: *peers, peer: peer}
	if *watch == 0 {
		return showStatus(o, *output, stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for i := 0; *count == 0 || i < *count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*watch):
			}
		}
		var b strings.Builder
		err := showStatus(o, "text", &b)
		if err != nil && !errors.Is(err, errReported) {
			return err
		}
		// Home and clear, then the view: it refreshes in place on a terminal.
		fmt.Fprintf(stdout, "\033[H\033[2J%s  (every %s; Ctrl-C ends)\n%s", time.Now().Format(time.TimeOnly), *watch, b.String())
	}
	return nil
}

// statusOptions is what one view of status reads.
type statusOptions struct {
	name   string
	policy crm.Policy
	file   string
	peers  string            // URL template with {node}
	peer   map[string]string // node → URL
}

// showStatus reads the cluster, this node's kernel and the peers' metrics
// once and prints the view.
func showStatus(o statusOptions, output string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	file, p := o.file, o.policy
	st, crmErr := crm.ReadStatus(ctx)
	if crmErr != nil && file != "" {
		return fmt.Errorf("read cluster status: %w", crmErr)
	}
	if crmErr != nil { // no cluster here: still show the kernel
		st = &crm.Status{}
	}
	v := buildStatus(st, o.name, p)
	if crmErr != nil {
		v.CrmErr = crmErr.Error()
		var te *crm.ToolError
		if errors.As(crmErr, &te) && te.IsNotConnected() {
			v.CrmErr = "Pacemaker is not running on this node (" + v.CrmErr + ")"
		}
	}
	if file == "" {
		v.KernelOn, _ = crm.LocalNode(ctx)
		v.Kernel, v.KernelErr = kernelStatus()
	} else {
		v.KernelErr = "not read: --file"
	}
	if o.peers != "" || len(o.peer) > 0 {
		v.Peers = readPeers(ctx, st, v.KernelOn, o.peers, o.peer)
		if kernelsRead(v) {
			v.OwnersChecked, v.Owners = true, checkOwners(v)
		}
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else {
		printStatus(stdout, v)
	}
	if crmErr != nil {
		return errReported // the view says why (pacemaker_error)
	}
	return nil
}

// buildStatus is the pure part: crm_mon status → view.
func buildStatus(st *crm.Status, name string, p crm.Policy) statusView {
	spec := crm.Spec{Name: name, Buckets: crm.BucketsIn(st, name)}
	v := statusView{Name: name, Buckets: spec.Buckets, DC: st.DC, Unowned: []int{}, Nodes: []nodeView{}}
	plan := crm.PlanFrom(st, spec, p)
	target := map[string]int{}
	for _, a := range plan.Targets {
		target[a.Node] = a.Buckets
	}
	owned := map[string][]int{}
	for k, n := range plan.Running {
		if n == "" {
			v.Unowned = append(v.Unowned, k)
		} else {
			owned[n] = append(owned[n], k)
		}
	}
	v.Moves = plan.Moves()
	checks, reached := 0, 0
	for _, r := range st.Resources {
		if r.Clone == crm.FloodClone(name) && r.Role == "Started" {
			checks += len(r.Nodes)
		}
	}
	for _, ns := range st.Nodes {
		if ns.Online && ns.Attrs[crm.FloodAttr(name)] == "1" {
			reached++
		}
	}
	v.FloodNone = checks >= 2 && reached == 0
	for _, ns := range st.Nodes {
		nv := nodeView{Name: ns.Name, Online: ns.Online, Writable: ns.Attrs[crm.AttrWritable] == "1",
			Target: target[ns.Name], Owned: owned[ns.Name]}
		if nv.Owned == nil {
			nv.Owned = []int{}
		}
		if l, err := strconv.Atoi(ns.Attrs[crm.AttrLoad]); err == nil {
			nv.ServerLoad = &l
		}
		switch ns.Attrs[crm.FloodAttr(name)] {
		case "1":
			nv.Flood = "reached"
		case "0":
			nv.Flood = "unreached"
		}
		for k := 0; k < spec.Buckets; k++ {
			if ns.Attrs[spec.OwnAttr(k)] == "1" {
				nv.Claimed++
			}
		}
		v.Nodes = append(v.Nodes, nv)
	}
	return v
}

// readPeers scrapes the metrics of every online node but this one (and of
// every node --peer names), at once, each within 5 s.
func readPeers(ctx context.Context, st *crm.Status, self, tmpl string, explicit map[string]string) []peerView {
	var out []peerView
	seen := map[string]bool{}
	add := func(node, url string) {
		if !seen[node] && node != self {
			seen[node] = true
			out = append(out, peerView{Node: node, URL: url})
		}
	}
	for _, n := range st.Nodes {
		if u, ok := explicit[n.Name]; ok {
			add(n.Name, u)
		} else if tmpl != "" && n.Online {
			add(n.Name, strings.ReplaceAll(tmpl, "{node}", n.Name))
		}
	}
	for n, u := range explicit {
		add(n, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range out {
		wg.Add(1)
		go func(pv *peerView) {
			defer wg.Done()
			pv.VIPs, pv.Error = scrape(ctx, client, pv.URL)
		}(&out[i])
	}
	wg.Wait()
	return out
}

func scrape(ctx context.Context, c *http.Client, url string) ([]metrics.Remote, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err.Error()
	}
	req.Header.Set("Accept", "text/plain") // the text format, from node_exporter too
	resp, err := c.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "HTTP " + resp.Status
	}
	vips, err := metrics.ParseKernel(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err.Error()
	}
	return vips, ""
}

// kernelsRead reports whether every online node's kernel was read: this
// node's directly, the others' from their metrics.
func kernelsRead(v statusView) bool {
	read := map[string]bool{}
	if v.KernelErr == "" && v.KernelOn != "" {
		read[v.KernelOn] = true
	}
	for _, p := range v.Peers {
		if p.Error == "" {
			read[p.Node] = true
		}
	}
	for _, n := range v.Nodes {
		if n.Online && !read[n.Name] {
			return false
		}
	}
	return true
}

// checkOwners lists the buckets that the kernels read (this node's and the
// peers') own other than exactly once, per VIP address. It means something
// only when every online node was read (kernelsRead).
func checkOwners(v statusView) []ownerProblem {
	owners := map[string][][]string{} // address → bucket → nodes
	note := func(node, addr string, buckets int, owned []int) {
		if owners[addr] == nil {
			owners[addr] = make([][]string, buckets)
		}
		for _, b := range owned {
			if b < len(owners[addr]) {
				owners[addr][b] = append(owners[addr][b], node)
			}
		}
	}
	if v.KernelErr == "" && v.KernelOn != "" {
		for _, k := range v.Kernel {
			addr, _, _ := strings.Cut(k.VIP, "/")
			note(v.KernelOn, addr, k.Buckets, k.Owned)
		}
	}
	for _, p := range v.Peers {
		for _, r := range p.VIPs {
			note(p.Node, r.Address, r.Buckets, r.Owned)
		}
	}
	var out []ownerProblem
	addrs := make([]string, 0, len(owners))
	for a := range owners {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		for b, ns := range owners[a] {
			if len(ns) != 1 {
				sort.Strings(ns)
				out = append(out, ownerProblem{VIP: a, Bucket: b, Nodes: append([]string{}, ns...)})
			}
		}
	}
	return out
}

// kernelStatus reads this node's VIPs from clusterip (nftables; needs root).
// The plane is bound to nftables: the automatic choice would probe the
// kernel with a commit, which moves the ruleset generation and voids every
// clustervip monitor's cache on the node.
func kernelStatus() ([]kernelView, string) {
	plane, err := clusterip.New(clusterip.WithBackend(clusterip.BackendNFTables))
	if err != nil {
		return nil, err.Error()
	}
	sts, err := plane.Status()
	if err != nil {
		return nil, err.Error()
	}
	var out []kernelView
	for _, s := range sts {
		kv := kernelView{VIP: s.VIP.String(), Buckets: int(s.VIP.Buckets), Owned: []int{}}
		for _, b := range s.Owned {
			kv.Owned = append(kv.Owned, int(b))
		}
		if cs, err := plane.Counters(s.VIP); err != nil {
			kv.Error = err.Error()
		} else {
			kv.Counters = map[string]kernelCounters{}
			for b, c := range cs {
				if c.Packets > 0 || c.NewConns > 0 {
					kv.Counters[strconv.Itoa(int(b))] = kernelCounters{Packets: c.Packets, Bytes: c.Bytes, NewConns: c.NewConns}
				}
			}
		}
		out = append(out, kv)
	}
	return out, ""
}

func printStatus(w io.Writer, v statusView) {
	if v.CrmErr != "" {
		fmt.Fprintf(w, "pacemaker: %s\n", v.CrmErr)
	} else {
		printNodes(w, v)
	}
	defer printPeers(w, v)
	if v.KernelErr != "" {
		fmt.Fprintf(w, "kernel: %s\n", v.KernelErr)
		return
	}
	here := v.KernelOn // the cluster's name for this node
	if here == "" {
		here = "this host"
	}
	if len(v.Kernel) == 0 {
		fmt.Fprintf(w, "kernel on %s: no VIP programmed\n", here)
	}
	for _, k := range v.Kernel {
		var pk, nc uint64
		for _, c := range k.Counters {
			pk += c.Packets
			nc += c.NewConns
		}
		fmt.Fprintf(w, "kernel on %s: %s owns %d/%d buckets %s; %d packets, %d new connections\n",
			here, k.VIP, len(k.Owned), k.Buckets, ranges(k.Owned), pk, nc)
		if k.Error != "" {
			fmt.Fprintf(w, "  counters: %s\n", k.Error)
		}
	}
}

func printPeers(w io.Writer, v statusView) {
	for _, p := range v.Peers {
		if p.Error != "" {
			fmt.Fprintf(w, "kernel on %s: not read from %s: %s\n", p.Node, p.URL, p.Error)
			continue
		}
		if len(p.VIPs) == 0 {
			fmt.Fprintf(w, "kernel on %s: no VIP programmed\n", p.Node)
		}
		for _, r := range p.VIPs {
			fmt.Fprintf(w, "kernel on %s: %s owns %d/%d buckets %s; %d packets, %d new connections\n",
				p.Node, r.Address, len(r.Owned), r.Buckets, ranges(r.Owned), r.Packets, r.NewConns)
		}
	}
	if len(v.Peers) == 0 {
		return
	}
	if !v.OwnersChecked {
		fmt.Fprintln(w, "kernels: not every online node read; ownership not checked")
		return
	}
	if len(v.Owners) == 0 {
		fmt.Fprintln(w, "kernels: every bucket owned by exactly one node")
	}
	for _, o := range v.Owners {
		if len(o.Nodes) == 0 {
			fmt.Fprintf(w, "kernels: %s bucket %d owned by no node (DARK)\n", o.VIP, o.Bucket)
		} else {
			fmt.Fprintf(w, "kernels: %s bucket %d owned by %s (TWICE)\n", o.VIP, o.Bucket, strings.Join(o.Nodes, " and "))
		}
	}
}

func printNodes(w io.Writer, v statusView) {
	fmt.Fprintf(w, "%s: %d buckets, DC %s\n", v.Name, v.Buckets, cmp.Or(v.DC, "-"))
	fmt.Fprintf(w, "%-14s %-7s %-8s %-5s %-6s %-5s %s\n", "NODE", "ONLINE", "WRITABLE", "LOAD", "TARGET", "OWNED", "BUCKETS")
	for _, n := range v.Nodes {
		load := "-"
		if n.ServerLoad != nil {
			load = strconv.Itoa(*n.ServerLoad)
		}
		fmt.Fprintf(w, "%-14s %-7v %-8v %-5s %-6d %-5d %s\n", n.Name, n.Online, n.Writable, load, n.Target, len(n.Owned), ranges(n.Owned))
	}
	for _, n := range v.Nodes {
		if n.Flood == "unreached" {
			fmt.Fprintf(w, "%s does not receive %s's frames (%s=0, flood check): its buckets go to the other nodes; check the switch (snooping, static MAC entries)\n",
				n.Name, v.Name, crm.FloodAttr(v.Name))
		}
	}
	if v.FloodNone {
		fmt.Fprintf(w, "flood check: no node hears another's probes (just started, or the network delivers %s's frames to none): every node keeps serving\n", v.Name)
	}
	if len(v.Unowned) > 0 {
		fmt.Fprintf(w, "DARK (running nowhere): %s\n", ranges(v.Unowned))
	}
	if v.Moves > 0 {
		fmt.Fprintf(w, "placer would move %d bucket(s)\n", v.Moves)
	}
}

// ranges prints 0,1,2,5,7,8 as 0-2,5,7-8.
func ranges(bs []int) string {
	if len(bs) == 0 {
		return "-"
	}
	s := append([]int(nil), bs...)
	sort.Ints(s)
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(s[i]))
		} else {
			parts = append(parts, strconv.Itoa(s[i])+"-"+strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
