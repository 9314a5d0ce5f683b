package crm

import (
	"context"
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
)

// Status is the cluster as crm_mon shows it: nodes with their transient
// attributes, and every resource with the nodes it runs on.
type Status struct {
	DC        string // the designated controller's node name; "" when none
	Quorum    bool   // the viewer's partition has quorum
	Nodes     []NodeStatus
	Resources []Resource
}

// NodeStatus is one node of crm_mon's <nodes> and <node_attributes>.
type NodeStatus struct {
	Name        string
	ID          string
	Online      bool
	Standby     bool
	Maintenance bool
	Unclean     bool
	Attrs       map[string]string // transient and permanent node attributes crm_mon shows
}

// Resource is one primitive (a clone instance is one too: ID "rsc:K" for
// a globally-unique clone, Clone the clone's id).
type Resource struct {
	ID     string
	Agent  string // "ocf:loadshare:clustervip"
	Role   string // Started, Stopped, ...
	Failed bool
	Nodes  []string // where it is active; empty when stopped
	Clone  string   // enclosing clone id, "" for none
	Group  string   // enclosing group id, "" for none
}

// Node returns the named node, ok false when crm_mon does not list it.
func (s *Status) Node(name string) (NodeStatus, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeStatus{}, false
}

// Resource returns the resource with that id, ok false when absent.
func (s *Status) Resource(id string) (Resource, bool) {
	for _, r := range s.Resources {
		if r.ID == id {
			return r, true
		}
	}
	return Resource{}, false
}

// Online returns the names of the online nodes, sorted.
func (s *Status) Online() []string {
	var ns []string
	for _, n := range s.Nodes {
		if n.Online {
			ns = append(ns, n.Name)
		}
	}
	return ns // s.Nodes is sorted by name
}

// Attr returns node's attribute name and whether it is set.
func (s *Status) Attr(node, name string) (string, bool) {
	n, _ := s.Node(node)
	v, ok := n.Attrs[name]
	return v, ok
}

// Count returns how many active resources whose ID starts with prefix run
// on each node.
func (s *Status) Count(prefix string) map[string]int {
	m := map[string]int{}
	for _, r := range s.Resources {
		if strings.HasPrefix(r.ID, prefix) {
			for _, n := range r.Nodes {
				m[n]++
			}
		}
	}
	return m
}

type monResult struct {
	XMLName xml.Name `xml:"pacemaker-result"`
	Summary struct {
		DC struct {
			Present bool   `xml:"present,attr"`
			Name    string `xml:"name,attr"`
			Quorum  bool   `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
	} `xml:"summary"`
	monBody
	// crm_simulate --output-as=xml nests the body under <cluster_status>.
	Cluster *monBody `xml:"cluster_status"`
}

type monBody struct {
	Nodes []struct {
		Name        string `xml:"name,attr"`
		ID          string `xml:"id,attr"`
		Online      bool   `xml:"online,attr"`
		Standby     bool   `xml:"standby,attr"`
		Maintenance bool   `xml:"maintenance,attr"`
		Unclean     bool   `xml:"unclean,attr"`
	} `xml:"nodes>node"`
	NodeAttrs []struct {
		Name  string `xml:"name,attr"`
		Attrs []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"attribute"`
	} `xml:"node_attributes>node"`
	Resources monResources `xml:"resources"`
}

type monResources struct {
	Resources []monResource `xml:"resource"`
	Clones    []struct {
		ID string `xml:"id,attr"`
		monResources
	} `xml:"clone"`
	Groups []struct {
		ID string `xml:"id,attr"`
		monResources
	} `xml:"group"`
}

type monResource struct {
	ID     string `xml:"id,attr"`
	Agent  string `xml:"resource_agent,attr"`
	Role   string `xml:"role,attr"`
	Failed bool   `xml:"failed,attr"`
	Nodes  []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

func (m monResources) flatten(clone, group string, out *[]Resource) {
	for _, r := range m.Resources {
		res := Resource{ID: r.ID, Agent: r.Agent, Role: r.Role, Failed: r.Failed, Clone: clone, Group: group}
		for _, n := range r.Nodes {
			res.Nodes = append(res.Nodes, n.Name)
		}
		*out = append(*out, res)
	}
	for _, g := range m.Groups {
		g.monResources.flatten(clone, g.ID, out)
	}
	for _, c := range m.Clones {
		c.monResources.flatten(c.ID, group, out)
	}
}

// ParseStatus reads the XML of `crm_mon --output-as=xml` (with -A for node
// attributes), or the <cluster_status> of `crm_simulate --output-as=xml`.
func ParseStatus(b []byte) (*Status, error) {
	var m monResult
	if err := xml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse crm_mon XML: %w", err)
	}
	if m.Cluster != nil {
		m.monBody = *m.Cluster
	}
	s := &Status{Quorum: m.Summary.DC.Quorum}
	if m.Summary.DC.Present {
		s.DC = m.Summary.DC.Name
	}
	attrs := map[string]map[string]string{}
	for _, n := range m.NodeAttrs {
		a := map[string]string{}
		for _, kv := range n.Attrs {
			a[kv.Name] = kv.Value
		}
		attrs[n.Name] = a
	}
	for _, n := range m.Nodes {
		a := attrs[n.Name]
		if a == nil {
			a = map[string]string{}
		}
		s.Nodes = append(s.Nodes, NodeStatus{Name: n.Name, ID: n.ID, Online: n.Online, Standby: n.Standby,
			Maintenance: n.Maintenance, Unclean: n.Unclean, Attrs: a})
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })
	m.Resources.flatten("", "", &s.Resources)
	return s, nil
}

// ReadStatus runs crm_mon on this node (or on the CIB file named by the
// CIB_file environment variable, as every Pacemaker tool does).
// Equivalent to: crm_mon -1 -A --output-as=xml
func ReadStatus(ctx context.Context) (*Status, error) {
	out, err := runTool(ctx, nil, "crm_mon", "-1", "-A", "--output-as=xml")
	if err != nil {
		return nil, err
	}
	return ParseStatus(out)
}
