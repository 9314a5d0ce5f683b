package ocf

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Type is a parameter's OCF content type.
type Type int

const (
	String  Type = iota // any text
	Integer             // a decimal integer (int64)
	Boolean             // Pacemaker's booleans: true/false, yes/no, on/off, y/n, 1/0
)

func (t Type) String() string {
	switch t {
	case Integer:
		return "integer"
	case Boolean:
		return "boolean"
	default:
		return "string"
	}
}

// Param declares one instance parameter (OCF_RESKEY_<Name>). The declaration
// is the only source of meta-data, defaults, type checks and typed access.
type Param struct {
	Name      string
	Type      Type
	Default   string // "" means no default
	Required  bool   // validation fails when unset (and meta-data says required="1")
	Unique    bool   // no two resources of this agent may share the value
	ShortDesc string
	LongDesc  string
	// Reloadable: a change takes effect through reload without a restart.
	// See MetaData for how this is expressed in ra-api-1.dtd terms.
	Reloadable bool
	// Check, when set, vets a value that passed the type check (and a
	// default). It returns the reason the value is wrong, or nil.
	Check func(value string) error
}

// Params are an action's validated instance parameters, with defaults
// applied, plus what Pacemaker says about the operation and the clone.
type Params struct {
	Agent    string        // agent name, e.g. clustervip
	Instance string        // OCF_RESOURCE_INSTANCE, e.g. vip:3
	Action   string        // start, stop, monitor, ...
	Clone    Clone         // from OCF_RESKEY_CRM_meta_*
	Timeout  time.Duration // OCF_RESKEY_CRM_meta_timeout; 0 when not given
	Interval time.Duration // OCF_RESKEY_CRM_meta_interval; 0 for a probe or a one-shot op
	Log      *slog.Logger  // tagged with agent, instance and action

	decl   map[string]*Param
	values map[string]string
	set    map[string]bool
}

// IsProbe reports a one-shot monitor (Pacemaker's probe: interval 0).
func (p Params) IsProbe() bool { return p.Action == "monitor" && p.Interval == 0 }

// IsSet reports whether the parameter was given (not defaulted).
func (p Params) IsSet(name string) bool {
	p.param(name)
	return p.set[name]
}

// String returns the parameter's value or its default.
func (p Params) String(name string) string {
	p.param(name)
	return p.values[name]
}

// Int returns an Integer parameter; 0 when unset without a default.
func (p Params) Int(name string) int64 {
	d := p.param(name)
	if d.Type != Integer {
		panic(fmt.Sprintf("ocf: parameter %s is %s, not integer", name, d.Type))
	}
	v := p.values[name]
	if v == "" {
		return 0
	}
	n, _ := strconv.ParseInt(v, 10, 64) // validated in parse
	return n
}

// Bool returns a Boolean parameter; false when unset without a default.
func (p Params) Bool(name string) bool {
	d := p.param(name)
	if d.Type != Boolean {
		panic(fmt.Sprintf("ocf: parameter %s is %s, not boolean", name, d.Type))
	}
	b, _ := ParseBool(p.values[name]) // validated in parse
	return b
}

// param returns the declaration; asking for an undeclared parameter is a
// programming error in the agent.
func (p Params) param(name string) *Param {
	d, ok := p.decl[name]
	if !ok {
		panic(fmt.Sprintf("ocf: agent %s asked for undeclared parameter %q", p.Agent, name))
	}
	return d
}

// ParseBool parses a boolean the way Pacemaker does (crm_str_to_boolean):
// true, yes, on, y, 1 and false, no, off, n, 0, case-insensitive.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "y", "1":
		return true, nil
	case "false", "no", "off", "n", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean (true/false, yes/no, on/off, 1/0)")
}

const reskeyPrefix = "OCF_RESKEY_"

// parseParams resolves and validates the declared parameters from env. It
// returns the first bad parameter as *ParamError, in declaration order, so
// the message is stable. Undeclared OCF_RESKEY_ names come back in unknown.
func parseParams(decl []Param, env map[string]string) (values map[string]string, set map[string]bool, unknown []string, err error) {
	values = make(map[string]string, len(decl))
	set = make(map[string]bool, len(decl))
	known := make(map[string]bool, len(decl))
	for i := range decl {
		d := &decl[i]
		known[d.Name] = true
		v, ok := env[reskeyPrefix+d.Name]
		if ok && v != "" {
			set[d.Name] = true
		} else {
			v = d.Default
		}
		values[d.Name] = v
		if err == nil {
			err = checkParam(d, v)
		}
	}
	for k := range env {
		name, ok := strings.CutPrefix(k, reskeyPrefix)
		if !ok || known[name] || strings.HasPrefix(name, "CRM_meta_") || strings.HasPrefix(name, "crm_") {
			continue // Pacemaker adds crm_feature_set and the CRM_meta_* set itself
		}
		unknown = append(unknown, name)
	}
	return values, set, unknown, err
}

// CheckParam vets one value of parameter name as the agent would at
// validate-all: the declared type, then the declaration's Check. An
// undeclared name is a *ParamError listing the declared ones. Checks that
// need the node (nic present, files readable) or other parameters are the
// agent's Validate and are not run here. Used to refuse a value when a
// configuration is written (loadshare crm --param), not when it fails on
// every node.
func (m Meta) CheckParam(name, value string) error {
	for i := range m.Params {
		if m.Params[i].Name == name {
			return checkParam(&m.Params[i], value)
		}
	}
	names := make([]string, len(m.Params))
	for i, p := range m.Params {
		names[i] = p.Name
	}
	return &ParamError{Param: name, Value: value, Reason: "not a parameter of " + m.Name + " (" + strings.Join(names, ", ") + ")"}
}

func checkParam(d *Param, v string) error {
	if v == "" {
		if d.Required {
			return &ParamError{Param: d.Name, Value: v, Reason: "required"}
		}
		return nil
	}
	switch d.Type {
	case Integer:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return &ParamError{Param: d.Name, Value: v, Reason: "not an integer"}
		}
	case Boolean:
		if _, err := ParseBool(v); err != nil {
			return &ParamError{Param: d.Name, Value: v, Reason: err.Error()}
		}
	}
	if d.Check != nil {
		if err := d.Check(v); err != nil {
			return &ParamError{Param: d.Name, Value: v, Reason: err.Error()}
		}
	}
	return nil
}
