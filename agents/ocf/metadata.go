package ocf

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Meta describes an agent: the sole source of its meta-data XML, parameter
// validation and typed access.
type Meta struct {
	Name      string // agent name; Register fills it in when empty
	ShortDesc string
	LongDesc  string
	Params    []Param
	// Actions overrides the advertised timeouts and intervals (at least
	// start, stop, monitor). Missing standard actions get defaultTimeout.
	Actions []Action
}

// Action is one advertised action: Pacemaker's advice for op timeouts.
type Action struct {
	Name     string
	Timeout  time.Duration
	Interval time.Duration // monitor only
	Role     string        // Promoted / Unpromoted for promotable monitors
}

const defaultTimeout = 20 * time.Second

// dtdActions are the action names ra-api-1.dtd accepts. reload-agent (OCF
// 1.1) is not among them: see MetaData.
var dtdActions = map[string]bool{
	"start": true, "stop": true, "recover": true, "monitor": true, "restart": true,
	"migrate_to": true, "migrate_from": true, "promote": true, "demote": true,
	"notify": true, "status": true, "reload": true, "meta-data": true, "usage": true,
	"methods": true, "validate-all": true,
}

// check reports declaration mistakes: they are bugs in the agent, caught by
// every agent's meta-data test.
func (m Meta) check() error {
	if m.Name == "" || m.ShortDesc == "" || m.LongDesc == "" {
		return fmt.Errorf("agent %q: name, shortdesc and longdesc are required", m.Name)
	}
	seen := map[string]bool{}
	for i := range m.Params {
		p := &m.Params[i]
		switch {
		case p.Name == "" || strings.ContainsAny(p.Name, " =\t\n"):
			return fmt.Errorf("agent %s: bad parameter name %q", m.Name, p.Name)
		case seen[p.Name]:
			return fmt.Errorf("agent %s: parameter %s declared twice", m.Name, p.Name)
		case p.ShortDesc == "" || p.LongDesc == "":
			return fmt.Errorf("agent %s: parameter %s: shortdesc and longdesc are required", m.Name, p.Name)
		case p.Required && p.Default != "":
			return fmt.Errorf("agent %s: parameter %s: required with a default", m.Name, p.Name)
		}
		seen[p.Name] = true
		if p.Default != "" {
			if err := checkParam(p, p.Default); err != nil {
				return fmt.Errorf("agent %s: default of %w", m.Name, err)
			}
		}
	}
	for _, a := range m.Actions {
		if !dtdActions[a.Name] {
			return fmt.Errorf("agent %s: action %q is not in ra-api-1.dtd", m.Name, a.Name)
		}
	}
	return nil
}

// reloadable reports whether any parameter can change without a restart.
func (m Meta) reloadable() bool {
	for _, p := range m.Params {
		if p.Reloadable {
			return true
		}
	}
	return false
}

type xmlAgent struct {
	XMLName    xml.Name    `xml:"resource-agent"`
	Name       string      `xml:"name,attr"`
	Version    string      `xml:"version,attr"`
	OCF        string      `xml:"version"`
	LongDesc   xmlDesc     `xml:"longdesc"`
	ShortDesc  xmlDesc     `xml:"shortdesc"`
	Parameters []xmlParam  `xml:"parameters>parameter"`
	Actions    []xmlAction `xml:"actions>action"`
}

type xmlDesc struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

type xmlParam struct {
	Name      string     `xml:"name,attr"`
	Unique    int        `xml:"unique,attr"`
	Required  int        `xml:"required,attr"`
	LongDesc  xmlDesc    `xml:"longdesc"`
	ShortDesc xmlDesc    `xml:"shortdesc"`
	Content   xmlContent `xml:"content"`
}

type xmlContent struct {
	Type    string `xml:"type,attr"`
	Default string `xml:"default,attr,omitempty"`
}

type xmlAction struct {
	Name     string `xml:"name,attr"`
	Timeout  string `xml:"timeout,attr"`
	Interval string `xml:"interval,attr,omitempty"`
	Depth    string `xml:"depth,attr,omitempty"`
	Role     string `xml:"role,attr,omitempty"`
}

// MetaData renders the agent's meta-data XML, valid against ra-api-1.dtd.
//
// That DTD (OCF 1.0, what Debian ships and ocf-tester checks) has neither
// OCF 1.1's reload-agent action nor its reloadable attribute. An agent with
// reloadable parameters therefore advertises the OCF 1.0 "reload" action,
// and its parameters that are not reloadable are marked unique="1":
// Pacemaker 2.1 ("legacy reload", ra_supports_legacy_reload) reloads when
// only unique="0" parameters changed and restarts otherwise. Agents without
// reloadable parameters advertise no reload and keep their declared unique.
// The agent answers both "reload" and "reload-agent".
func MetaData(m Meta, hasPromote bool) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	reload := m.reloadable()
	x := xmlAgent{
		Name:      m.Name,
		Version:   Version(), // the build's: every agent ships in one build
		OCF:       "1.0",
		LongDesc:  xmlDesc{"en", "\n" + strings.TrimSpace(m.LongDesc) + "\n"},
		ShortDesc: xmlDesc{"en", m.ShortDesc},
	}
	for _, p := range m.Params {
		xp := xmlParam{
			Name:      p.Name,
			Unique:    b2i(p.Unique || (reload && !p.Reloadable)),
			Required:  b2i(p.Required),
			LongDesc:  xmlDesc{"en", "\n" + strings.TrimSpace(p.LongDesc) + "\n"},
			ShortDesc: xmlDesc{"en", p.ShortDesc},
			Content:   xmlContent{Type: p.Type.String(), Default: p.Default},
		}
		x.Parameters = append(x.Parameters, xp)
	}
	for _, a := range actionList(m, hasPromote) {
		xa := xmlAction{Name: a.Name, Timeout: seconds(a.Timeout), Role: a.Role}
		if a.Name == "monitor" {
			xa.Interval = seconds(a.Interval)
			xa.Depth = "0"
		}
		x.Actions = append(x.Actions, xa)
	}
	out, err := xml.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("meta-data of %s: %w", m.Name, err)
	}
	// No encoding declaration (UTF-8 is XML's default): crmsh parses the
	// text with lxml, which rejects a decoded string that declares one
	// ("crm ra info": "Cannot parse meta-data XML").
	head := "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n"
	return append(append([]byte(head), out...), '\n'), nil
}

// actionList is the agent's advertised actions: its own entries first, then
// every standard action it implements and did not list.
func actionList(m Meta, hasPromote bool) []Action {
	list := append([]Action(nil), m.Actions...)
	have := map[string]bool{}
	for _, a := range list {
		have[a.Name] = true
	}
	std := []Action{
		{Name: "start", Timeout: defaultTimeout},
		{Name: "stop", Timeout: defaultTimeout},
		{Name: "monitor", Timeout: defaultTimeout, Interval: 10 * time.Second},
	}
	if hasPromote {
		std = append(std, Action{Name: "promote", Timeout: defaultTimeout}, Action{Name: "demote", Timeout: defaultTimeout})
	}
	if m.reloadable() {
		std = append(std, Action{Name: "reload", Timeout: defaultTimeout})
	}
	std = append(std,
		Action{Name: "meta-data", Timeout: 5 * time.Second},
		Action{Name: "validate-all", Timeout: defaultTimeout})
	for _, a := range std {
		if !have[a.Name] {
			list = append(list, a)
		}
	}
	return list
}

func seconds(d time.Duration) string {
	if d%time.Second != 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
