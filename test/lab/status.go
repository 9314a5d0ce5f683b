package lab

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteStatus prints the lab's nodes (pids, memory), the cluster as the
// first running node sees it, and every node's attributes.
func WriteStatus(ctx context.Context, l *Lab, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tNETNS\tADDR\tCOROSYNC\tPACEMAKERD\tMARIADBD\tMEMORY\n")
	var viewer string
	for _, n := range l.Nodes() {
		mem := "-"
		if m, err := l.Memory(n); err == nil {
			mem = fmt.Sprintf("%d MiB", m>>20)
		}
		if viewer == "" && l.Pid(n, "pacemakerd") != 0 {
			viewer = n
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, l.Netns(n), l.Addr(n),
			pidStr(l.Pid(n, "corosync")), pidStr(l.Pid(n, "pacemakerd")), pidStr(l.Pid(n, "mariadbd")), mem)
	}
	fmt.Fprintf(tw, "client\t%s\t%s\t\t\t\t\n", l.Netns("client"), l.Addr("client"))
	if err := tw.Flush(); err != nil {
		return err
	}
	if viewer == "" {
		fmt.Fprintln(w, "\nno node is running pacemakerd")
		return nil
	}
	c, err := l.Cluster(ctx, viewer)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nseen from %s: dc=%s quorum=%v online=[%s]\n", viewer, orDash(c.DC), c.Quorum, strings.Join(c.Online(), " "))
	return WriteAttrs(w, c)
}

// WriteAttrs prints a node × attribute table (crm_mon -A style) and, for
// each clone prefix in the resources, how many instances run on each node.
func WriteAttrs(w io.Writer, c Cluster) error {
	names := map[string]bool{}
	for _, n := range c.Nodes {
		for k := range n.Attrs {
			names[k] = true
		}
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tONLINE\t%s\tRESOURCES\n", strings.Join(keys, "\t"))
	for _, n := range c.Nodes {
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = orDash(n.Attrs[k])
		}
		running := 0
		for _, r := range c.Resources {
			if r.Active && r.Node == n.Name {
				running++
			}
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\n", n.Name, n.Online, strings.Join(vals, "\t"), running)
	}
	return tw.Flush()
}

func pidStr(p int) string {
	if p == 0 {
		return "-"
	}
	return fmt.Sprint(p)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
