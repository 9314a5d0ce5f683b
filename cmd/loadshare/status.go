package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loadshare/loadshare/clusterip"
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
	Name      string       `json:"name"`
	Buckets   int          `json:"buckets"`
	DC        string       `json:"dc"`
	Nodes     []nodeView   `json:"nodes"`
	Unowned   []int        `json:"unowned"`          // buckets running nowhere (dark)
	Moves     int          `json:"pending_moves"`    // buckets the placer would still move
	Kernel    []kernelView `json:"kernel,omitempty"` // VIPs in this node's kernel
	KernelOn  string       `json:"kernel_node"`      // the node the kernel view is from
	KernelErr string       `json:"kernel_error,omitempty"`
	CrmErr    string       `json:"pacemaker_error,omitempty"` // crm_mon failed (no cluster on this node)
}

type nodeView struct {
	Name       string `json:"name"`
	Online     bool   `json:"online"`
	Writable   bool   `json:"writable_monit"`
	ServerLoad *int   `json:"server_load"` // null when not reported
	Target     int    `json:"target"`
	Owned      []int  `json:"owned"`   // buckets Pacemaker runs here
	Claimed    int    `json:"claimed"` // own_* attributes set here
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

Per node: online, writable_monit, server_load, the placer's target, the
buckets Pacemaker runs there (crm_mon), and, for the node this runs on, the
buckets its kernel owns with their counters (needs root).`

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusUsage, stderr)
	name := fs.String("name", "vip", "resource prefix of the bucket primitives")
	output := fs.String("output", "text", "text or json")
	file := fs.String("file", "", "read a CIB file instead of the live cluster (no kernel view)")
	policy := policyFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("--output=%q: want text or json: %w", *output, errUsage)
	}
	p, err := policy()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if *file != "" {
		os.Setenv("CIB_file", *file)
	}
	st, crmErr := crm.ReadStatus(ctx)
	if crmErr != nil && *file != "" {
		return fmt.Errorf("read cluster status: %w", crmErr)
	}
	if crmErr != nil { // no cluster here: still show the kernel
		st = &crm.Status{}
	}
	v := buildStatus(st, *name, p)
	if crmErr != nil {
		v.CrmErr = crmErr.Error()
		var te *crm.ToolError
		if errors.As(crmErr, &te) && te.IsNotConnected() {
			v.CrmErr = "Pacemaker is not running on this node (" + v.CrmErr + ")"
		}
	}
	if *file == "" {
		v.KernelOn, _ = crm.LocalNode(ctx)
		v.Kernel, v.KernelErr = kernelStatus()
	} else {
		v.KernelErr = "not read: --file"
	}
	if *output == "json" {
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
	for _, ns := range st.Nodes {
		nv := nodeView{Name: ns.Name, Online: ns.Online, Writable: ns.Attrs[crm.AttrWritable] == "1",
			Target: target[ns.Name], Owned: owned[ns.Name]}
		if nv.Owned == nil {
			nv.Owned = []int{}
		}
		if l, err := strconv.Atoi(ns.Attrs[crm.AttrLoad]); err == nil {
			nv.ServerLoad = &l
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

// kernelStatus reads this node's VIPs from clusterip (nftables; needs root).
func kernelStatus() ([]kernelView, string) {
	plane, err := clusterip.New()
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

func printNodes(w io.Writer, v statusView) {
	fmt.Fprintf(w, "%s: %d buckets, DC %s\n", v.Name, v.Buckets, orDash(v.DC))
	fmt.Fprintf(w, "%-14s %-7s %-8s %-5s %-6s %-5s %s\n", "NODE", "ONLINE", "WRITABLE", "LOAD", "TARGET", "OWNED", "BUCKETS")
	for _, n := range v.Nodes {
		load := "-"
		if n.ServerLoad != nil {
			load = strconv.Itoa(*n.ServerLoad)
		}
		fmt.Fprintf(w, "%-14s %-7v %-8v %-5s %-6d %-5d %s\n", n.Name, n.Online, n.Writable, load, n.Target, len(n.Owned), ranges(n.Owned))
	}
	if len(v.Unowned) > 0 {
		fmt.Fprintf(w, "DARK (running nowhere): %s\n", ranges(v.Unowned))
	}
	if v.Moves > 0 {
		fmt.Fprintf(w, "placer would move %d bucket(s)\n", v.Moves)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
