package lab

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/loadshare/loadshare/crm"
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
	fmt.Fprintf(w, "\nseen from %s: dc=%s quorum=%v online=[%s]\n", viewer, cmp.Or(c.DC, "-"), c.Quorum, strings.Join(c.Online(), " "))
	if err := WriteAttrs(w, c); err != nil {
		return err
	}
	n := l.ServiceBuckets()
	if n == 0 {
		return nil
	}
	p, _ := l.placement()
	tb, err := l.Buckets(ctx, viewer, n)
	if err != nil {
		return err
	}
	check := "every bucket owned by exactly one node"
	if err := tb.Check(); err != nil {
		check = err.Error()
	}
	fmt.Fprintf(w, "\nVIP %s, %d buckets, placement %s; kernel owned sets (%s):\n%s", l.VIP(), n, p, check, tb)
	return nil
}

// WriteAttrs prints a node × attribute table (crm_mon -A style) with the
// number of resources running on each node. The placer's own_NAME_K
// attributes are summed into one column, OWN (buckets claimed).
func WriteAttrs(w io.Writer, c *crm.Status) error {
	names := map[string]bool{}
	own := false
	for _, n := range c.Nodes {
		for k := range n.Attrs {
			if strings.HasPrefix(k, "own_") {
				own = true
				continue
			}
			names[k] = true
		}
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	head := append([]string{"NODE", "ONLINE"}, keys...)
	if own {
		head = append(head, "OWN")
	}
	head = append(head, "RESOURCES")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, n := range c.Nodes {
		row := []string{n.Name, fmt.Sprint(n.Online)}
		for _, k := range keys {
			row = append(row, cmp.Or(n.Attrs[k], "-"))
		}
		if own {
			claims := 0
			for k, v := range n.Attrs {
				if strings.HasPrefix(k, "own_") && v == "1" {
					claims++
				}
			}
			row = append(row, fmt.Sprint(claims))
		}
		running := 0
		for _, r := range c.Resources {
			if slices.Contains(r.Nodes, n.Name) {
				running++
			}
		}
		row = append(row, fmt.Sprint(running))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func pidStr(p int) string {
	if p == 0 {
		return "-"
	}
	return fmt.Sprint(p)
}
