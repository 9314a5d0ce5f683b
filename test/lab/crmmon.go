package lab

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Cluster is one node's view of the cluster, from crm_mon --output-as=xml.
type Cluster struct {
	DC        string // name of the designated controller; "" when none
	Quorum    bool   // the partition has quorum
	Nodes     []NodeState
	Resources []Resource // primitives, clone instances included
}

// NodeState is one node in crm_mon's view.
type NodeState struct {
	Name   string
	Online bool
	Attrs  map[string]string // transient and permanent node attributes
}

// Resource is one resource instance (a clone's instances are separate).
type Resource struct {
	ID     string // e.g. vip:3
	Agent  string // e.g. ocf:loadshare:clustervip
	Role   string // Started, Stopped, …
	Active bool
	Node   string // where it runs; "" when stopped
}

// Online returns the names of the online nodes, sorted.
func (c Cluster) Online() []string {
	var ns []string
	for _, n := range c.Nodes {
		if n.Online {
			ns = append(ns, n.Name)
		}
	}
	sort.Strings(ns)
	return ns
}

// Attr returns node's attribute name and whether it is set.
func (c Cluster) Attr(node, name string) (string, bool) {
	for _, n := range c.Nodes {
		if n.Name == node {
			v, ok := n.Attrs[name]
			return v, ok
		}
	}
	return "", false
}

// Count returns how many active instances whose ID starts with prefix run on
// each node.
func (c Cluster) Count(prefix string) map[string]int {
	m := map[string]int{}
	for _, r := range c.Resources {
		if r.Active && r.Node != "" && strings.HasPrefix(r.ID, prefix) {
			m[r.Node]++
		}
	}
	return m
}

type xmlCrmMon struct {
	Summary struct {
		DC struct {
			Present bool   `xml:"present,attr"`
			Name    string `xml:"name,attr"`
			Quorum  bool   `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
	} `xml:"summary"`
	Nodes []struct {
		Name   string `xml:"name,attr"`
		Online bool   `xml:"online,attr"`
	} `xml:"nodes>node"`
	Resources xmlResources `xml:"resources"`
	Attrs     []struct {
		Name  string `xml:"name,attr"`
		Attrs []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"attribute"`
	} `xml:"node_attributes>node"`
}

type xmlResources struct {
	Resources []xmlResource  `xml:"resource"`
	Clones    []xmlResources `xml:"clone"`
	Groups    []xmlResources `xml:"group"`
	Bundles   []xmlResources `xml:"bundle"`
}

type xmlResource struct {
	ID     string `xml:"id,attr"`
	Agent  string `xml:"resource_agent,attr"`
	Role   string `xml:"role,attr"`
	Active bool   `xml:"active,attr"`
	Nodes  []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

func (r xmlResources) flatten(out []Resource) []Resource {
	for _, x := range r.Resources {
		res := Resource{ID: x.ID, Agent: x.Agent, Role: x.Role, Active: x.Active}
		if len(x.Nodes) > 0 {
			res.Node = x.Nodes[0].Name
		}
		out = append(out, res)
	}
	for _, sub := range slices.Concat(r.Clones, r.Groups, r.Bundles) {
		out = sub.flatten(out)
	}
	return out
}

// parseCrmMon parses the output of crm_mon --output-as=xml.
func parseCrmMon(b []byte) (Cluster, error) {
	var x xmlCrmMon
	if err := xml.Unmarshal(b, &x); err != nil {
		return Cluster{}, fmt.Errorf("parse crm_mon xml: %w", err)
	}
	c := Cluster{Quorum: x.Summary.DC.Quorum}
	if x.Summary.DC.Present {
		c.DC = x.Summary.DC.Name
	}
	for _, n := range x.Nodes {
		ns := NodeState{Name: n.Name, Online: n.Online, Attrs: map[string]string{}}
		for _, a := range x.Attrs {
			if a.Name == n.Name {
				for _, kv := range a.Attrs {
					ns.Attrs[kv.Name] = kv.Value
				}
			}
		}
		c.Nodes = append(c.Nodes, ns)
	}
	c.Resources = x.Resources.flatten(nil)
	return c, nil
}

// Cluster returns node's view of the cluster.
// Equivalent to: crm_mon --output-as=xml (inside node)
func (l *Lab) Cluster(ctx context.Context, node string) (Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := l.Exec(ctx, node, "crm_mon", "--output-as=xml")
	if err != nil {
		return Cluster{}, err
	}
	return parseCrmMon(out)
}

// WaitOnline waits (up to 120 s) until every running node sees exactly the
// given nodes online, in a partition with quorum and with a DC.
func (l *Lab) WaitOnline(ctx context.Context, nodes ...string) error {
	want := slices.Clone(nodes)
	sort.Strings(want)
	var last string
	err := poll(ctx, 120*time.Second, func() (bool, error) {
		for _, n := range l.Nodes() {
			if !l.Running(n) {
				continue
			}
			c, err := l.Cluster(ctx, n)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = fmt.Sprintf("%s sees online %v, quorum %v, dc %q", n, c.Online(), c.Quorum, c.DC)
			if !c.Quorum || c.DC == "" || !slices.Equal(c.Online(), want) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %v online with quorum: %w (last: %s)", want, err, last)
	}
	return nil
}
