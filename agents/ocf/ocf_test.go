package ocf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testAgent keeps its state in a file named by parameter state. Parameter
// fail makes Validate return one of the framework's error classes.
type testAgent struct{}

func (testAgent) Meta() Meta {
	return Meta{
		ShortDesc: "test agent",
		LongDesc:  "A file-backed agent that exercises the OCF framework.",
		Params: []Param{
			{Name: "state", Required: true, Unique: true, ShortDesc: "state file", LongDesc: "Path of the state file."},
			{Name: "count", Type: Integer, Default: "3", ShortDesc: "a count", LongDesc: "An integer, at least 1.",
				Check: func(v string) error {
					if v == "0" {
						return errors.New("must be at least 1")
					}
					return nil
				}},
			{Name: "flag", Type: Boolean, Default: "false", ShortDesc: "a flag", LongDesc: "A boolean."},
			{Name: "fail", ShortDesc: "failure to inject", LongDesc: "local, installed, configured or empty."},
			{Name: "sleep_ms", Type: Integer, Default: "0", ShortDesc: "delay", LongDesc: "Sleep this long in start, or until the deadline."},
			{Name: "note", Reloadable: true, ShortDesc: "reloadable text", LongDesc: "Written to the state file by reload."},
		},
		Actions: []Action{{Name: "start", Timeout: 30 * time.Second}},
	}
}

func (testAgent) Validate(ctx context.Context, p Params) error {
	switch f := p.String("fail"); f {
	case "local":
		return &ParamError{Param: "fail", Value: f, Reason: "not on this node", Local: true}
	case "installed":
		return fmt.Errorf("check tool: %w", ErrInstalled)
	case "configured":
		return fmt.Errorf("clone must be globally unique: %w", ErrConfigured)
	}
	return nil
}

func (testAgent) Start(ctx context.Context, p Params) error {
	if d := time.Duration(p.Int("sleep_ms")) * time.Millisecond; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fmt.Errorf("start: %w", ctx.Err())
		}
	}
	return os.WriteFile(p.String("state"), []byte(p.String("note")), 0o644)
}

func (testAgent) Stop(ctx context.Context, p Params) error {
	err := os.Remove(p.String("state"))
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotRunning
	}
	return err
}

func (testAgent) Monitor(ctx context.Context, p Params) error {
	if _, err := os.Stat(p.String("state")); errors.Is(err, os.ErrNotExist) {
		return ErrNotRunning
	}
	return nil
}

func (testAgent) Reload(ctx context.Context, p Params) error {
	return os.WriteFile(p.String("state"), []byte(p.String("note")), 0o644)
}

// promoAgent is a promotable agent whose monitor says promoted.
type promoAgent struct{ testAgent }

func (promoAgent) Meta() Meta {
	m := testAgent{}.Meta()
	m.Params = m.Params[:1] // no reloadable parameter: no reload action
	return m
}
func (promoAgent) Monitor(ctx context.Context, p Params) error  { return ErrRunningPromoted }
func (promoAgent) Promote(ctx context.Context, p Params) error  { return nil }
func (promoAgent) Demote(ctx context.Context, p Params) error   { return errors.New("cannot demote") }
func (promoAgent) Validate(ctx context.Context, p Params) error { return nil }

// closingAgent counts its Close calls.
type closingAgent struct {
	testAgent
	closes *int
}

func (a closingAgent) Close() error { *a.closes++; return nil }

var closes int

// internalAgent has one internal action, "touch", that writes the state
// file after validation (which parameter fail breaks).
type internalAgent struct{ testAgent }

func (internalAgent) InternalAction(name string) func(context.Context, Params) error {
	if name != "touch" {
		return nil
	}
	return func(_ context.Context, p Params) error { return os.WriteFile(p.String("state"), nil, 0o644) }
}

// TestInternalAction: an internal action runs with the parameters and
// validation of any action, is in neither meta-data nor usage, and a name
// the agent does not claim stays unimplemented.
func TestInternalAction(t *testing.T) {
	state := filepath.Join(t.TempDir(), "s")
	env := map[string]string{"OCF_RESKEY_state": state}
	if r := call("ocftest-internal", with(env, "OCF_RESKEY_fail", "installed"), "touch"); r.code != ExitErrInstalled {
		t.Errorf("touch with validation failing = %v, want %v (%s)", r.code, ExitErrInstalled, r.stderr)
	}
	if r := call("ocftest-internal", env, "touch"); r.code != ExitSuccess {
		t.Errorf("touch = %v, want success (%s)", r.code, r.stderr)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("touch did not run: %v", err)
	}
	if r := call("ocftest-internal", env, "scratch"); r.code != ExitErrUnimplemented {
		t.Errorf("an action the agent does not claim = %v, want %v", r.code, ExitErrUnimplemented)
	}
	for _, args := range [][]string{{"meta-data"}, {"usage"}} {
		if r := call("ocftest-internal", env, args...); strings.Contains(r.stdout, "touch") {
			t.Errorf("%s lists the internal action:\n%s", args[0], r.stdout)
		}
	}
}

func init() {
	Register("ocftest", func() Agent { return testAgent{} })
	Register("ocftest-promo", func() Agent { return promoAgent{} })
	Register("ocftest-closing", func() Agent { return closingAgent{closes: &closes} })
	Register("ocftest-internal", func() Agent { return internalAgent{} })
}

// TestCloser: an agent holding resources from Validate into its action
// is closed exactly once per call, also when validation fails.
func TestCloser(t *testing.T) {
	env := map[string]string{"OCF_RESKEY_state": filepath.Join(t.TempDir(), "s")}
	for _, c := range []struct {
		action string
		env    map[string]string
		want   ExitCode
	}{
		{"monitor", env, ExitNotRunning},
		{"start", env, ExitSuccess},
		{"monitor", with(env, "OCF_RESKEY_fail", "configured"), ExitNotRunning},
		{"start", with(env, "OCF_RESKEY_fail", "installed"), ExitErrInstalled},
	} {
		closes = 0
		if r := call("ocftest-closing", c.env, c.action); r.code != c.want || closes != 1 {
			t.Errorf("%s = %v with %d Close calls, want %v with 1 (%s)", c.action, r.code, closes, c.want, r.stderr)
		}
	}
}

type result struct {
	code           ExitCode
	stdout, stderr string
}

func call(agent string, env map[string]string, args ...string) result {
	var o, e bytes.Buffer
	c := run(agent, args, env, &o, &e)
	return result{c, o.String(), e.String()}
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestExitCodes runs the OCF exit-code table against the file-backed agent,
// in order: each step sees the state the previous ones left.
func TestExitCodes(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	env := map[string]string{
		"OCF_RESOURCE_INSTANCE":       "t1",
		"OCF_RESKEY_state":            state,
		"OCF_RESKEY_CRM_meta_timeout": "20000",
	}
	probe := with(env, "OCF_RESKEY_CRM_meta_interval", "0")
	steps := []struct {
		name   string
		env    map[string]string
		args   []string
		want   ExitCode
		stderr string // substring that must appear; "-" for empty stderr; "!x": x must not appear
	}{
		{"no action", env, nil, ExitErrArgs, "usage: ocftest"},
		{"two actions", env, []string{"start", "stop"}, ExitErrArgs, "usage"},
		{"unknown action", env, []string{"bogus"}, ExitErrUnimplemented, "-"},
		{"notify not implemented", env, []string{"notify"}, ExitErrUnimplemented, "-"},
		{"promote not implemented", env, []string{"promote"}, ExitErrUnimplemented, "-"},
		{"migrate_to not implemented", env, []string{"migrate_to"}, ExitErrUnimplemented, "-"},
		{"usage", env, []string{"usage"}, ExitSuccess, "-"},
		{"validate ok", env, []string{"validate-all"}, ExitSuccess, "-"},
		{"required missing", with(env, "OCF_RESKEY_state", ""), []string{"validate-all"}, ExitErrConfigured, `parameter state="": required`},
		{"integer bad", with(env, "OCF_RESKEY_count", "x3"), []string{"validate-all"}, ExitErrConfigured, `parameter count="x3": not an integer`},
		{"check bad", with(env, "OCF_RESKEY_count", "0"), []string{"validate-all"}, ExitErrConfigured, `must be at least 1`},
		{"boolean bad", with(env, "OCF_RESKEY_flag", "maybe"), []string{"validate-all"}, ExitErrConfigured, `parameter flag="maybe": not a boolean`},
		{"boolean yes", with(env, "OCF_RESKEY_flag", "yes"), []string{"validate-all"}, ExitSuccess, "-"},
		{"clone meta bad", with(env, "OCF_RESKEY_CRM_meta_clone_max", "many"), []string{"validate-all"}, ExitErrConfigured, `clone_max`},
		{"local error validate", with(env, "OCF_RESKEY_fail", "local"), []string{"validate-all"}, ExitErrArgs, `parameter fail="local": not on this node`},
		{"local error start", with(env, "OCF_RESKEY_fail", "local"), []string{"start"}, ExitErrArgs, "not on this node"},
		{"local error stop succeeds", with(env, "OCF_RESKEY_fail", "local"), []string{"stop"}, ExitSuccess, "stop succeeds"},
		{"no exit reason when stop succeeds", with(env, "OCF_RESKEY_fail", "local"), []string{"stop"}, ExitSuccess, "!ocf-exit-reason"},
		{"local error monitor not running", with(env, "OCF_RESKEY_fail", "local"), []string{"monitor"}, ExitNotRunning, "not running here"},
		{"installed start", with(env, "OCF_RESKEY_fail", "installed"), []string{"start"}, ExitErrInstalled, "not installed"},
		{"installed probe", with(probe, "OCF_RESKEY_fail", "installed"), []string{"monitor"}, ExitNotRunning, "not installed"},
		{"configured validate", with(env, "OCF_RESKEY_fail", "configured"), []string{"validate-all"}, ExitErrConfigured, "globally unique"},
		{"probe stopped", probe, []string{"monitor"}, ExitNotRunning, "-"},
		{"monitor stopped", env, []string{"monitor"}, ExitNotRunning, "-"},
		{"stop stopped", env, []string{"stop"}, ExitSuccess, "-"},
		{"start", env, []string{"start"}, ExitSuccess, "-"},
		{"monitor running prints nothing", env, []string{"monitor"}, ExitSuccess, "-"},
		{"probe running", probe, []string{"monitor"}, ExitSuccess, "-"},
		{"start started", env, []string{"start"}, ExitSuccess, "-"},
		{"reload", with(env, "OCF_RESKEY_note", "v2"), []string{"reload"}, ExitSuccess, "-"},
		{"reload-agent", with(env, "OCF_RESKEY_note", "v3"), []string{"reload-agent"}, ExitSuccess, "-"},
		{"stop", env, []string{"stop"}, ExitSuccess, "-"},
		{"monitor after stop", env, []string{"monitor"}, ExitNotRunning, "-"},
		{"start times out", with(env, "OCF_RESKEY_sleep_ms", "60000", "OCF_RESKEY_CRM_meta_timeout", "300"), []string{"start"}, ExitErrGeneric, "context deadline exceeded"},
		{"start error is logged with agent, instance, action", with(env, "OCF_RESKEY_state", "/nonexistent/dir/state"), []string{"start"}, ExitErrGeneric, `agent=ocftest instance=t1 action=start`},
		{"start error gives Pacemaker an exit reason", with(env, "OCF_RESKEY_state", "/nonexistent/dir/state"), []string{"start"}, ExitErrGeneric, "\nocf-exit-reason:open /nonexistent/dir/state: no such file or directory\n"},
		{"exit reason prefix from Pacemaker", with(env, "OCF_RESKEY_fail", "configured", "OCF_EXIT_REASON_PREFIX", "why:"), []string{"start"}, ExitErrConfigured, "\nwhy:clone must be globally unique: not configured\n"},
		{"undeclared parameter warned on start", with(env, "OCF_RESKEY_bogus", "1"), []string{"start"}, ExitSuccess, `params=bogus`},
		{"undeclared parameter silent on monitor", with(env, "OCF_RESKEY_bogus", "1"), []string{"monitor"}, ExitSuccess, "-"},
	}
	for _, s := range steps {
		r := call("ocftest", s.env, s.args...)
		if r.code != s.want {
			t.Fatalf("%s: ocftest %v = %v, want %v; stderr:\n%s", s.name, s.args, r.code, s.want, r.stderr)
		}
		switch {
		case strings.HasPrefix(s.stderr, "!"):
			if strings.Contains(r.stderr, s.stderr[1:]) {
				t.Errorf("%s: ocftest %v printed %q, want no %q", s.name, s.args, r.stderr, s.stderr[1:])
			}
		case s.stderr == "-" && r.stderr != "":
			t.Errorf("%s: ocftest %v printed %q, want nothing", s.name, s.args, r.stderr)
		case s.stderr != "-" && !strings.Contains(r.stderr+r.stdout, s.stderr):
			t.Errorf("%s: ocftest %v output %q, want it to contain %q", s.name, s.args, r.stderr+r.stdout, s.stderr)
		}
	}
	if b, err := os.ReadFile(state); err != nil || string(b) != "" {
		// the last successful start wrote note="" again
		t.Errorf("state file after last start = %q, %v; want empty content", b, err)
	}
}

func TestReloadWritesNewValue(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	env := map[string]string{"OCF_RESKEY_state": state}
	if r := call("ocftest", env, "start"); r.code != ExitSuccess {
		t.Fatalf("start = %v: %s", r.code, r.stderr)
	}
	if r := call("ocftest", with(env, "OCF_RESKEY_note", "new"), "reload-agent"); r.code != ExitSuccess {
		t.Fatalf("reload-agent = %v: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(state); string(b) != "new" {
		t.Errorf("after reload-agent note=new the state holds %q, want %q", b, "new")
	}
}

func TestPromotable(t *testing.T) {
	env := map[string]string{"OCF_RESKEY_state": filepath.Join(t.TempDir(), "s")}
	for _, c := range []struct {
		action string
		want   ExitCode
	}{
		{"monitor", ExitRunningPromoted},
		{"promote", ExitSuccess},
		{"demote", ExitErrGeneric},
		{"reload", ExitErrUnimplemented}, // no reloadable parameter
	} {
		if r := call("ocftest-promo", env, c.action); r.code != c.want {
			t.Errorf("ocftest-promo %s = %v, want %v (%s)", c.action, r.code, c.want, r.stderr)
		}
	}
}

func TestCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want ExitCode
	}{
		{nil, ExitSuccess},
		{errors.New("x"), ExitErrGeneric},
		{fmt.Errorf("a: %w", ErrNotRunning), ExitNotRunning},
		{fmt.Errorf("a: %w", ErrInstalled), ExitErrInstalled},
		{fmt.Errorf("a: %w", ErrConfigured), ExitErrConfigured},
		{fmt.Errorf("a: %w", ErrArgs), ExitErrArgs},
		{fmt.Errorf("a: %w", ErrPerm), ExitErrPerm},
		{fmt.Errorf("a: %w", ErrUnimplemented), ExitErrUnimplemented},
		{ErrRunningPromoted, ExitRunningPromoted},
		{ErrFailedPromoted, ExitFailedPromoted},
		{fmt.Errorf("a: %w", &ParamError{Param: "ip"}), ExitErrConfigured},
		{fmt.Errorf("a: %w", &ParamError{Param: "nic", Local: true}), ExitErrArgs},
		{context.DeadlineExceeded, ExitErrGeneric},
	} {
		if got := Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestCloneMeta(t *testing.T) {
	env := map[string]string{
		"OCF_RESKEY_CRM_meta_clone":           "5",
		"OCF_RESKEY_CRM_meta_clone_max":       "64",
		"OCF_RESKEY_CRM_meta_clone_node_max":  "64",
		"OCF_RESKEY_CRM_meta_globally_unique": "true",
		"OCF_RESKEY_CRM_meta_timeout":         "20000",
		"OCF_RESKEY_CRM_meta_interval":        "10000",
	}
	c, timeout, interval, err := parseMeta(env)
	want := Clone{IsClone: true, Instance: 5, Max: 64, NodeMax: 64, GloballyUnique: true}
	if err != nil || c != want || timeout != 20*time.Second || interval != 10*time.Second {
		t.Errorf("parseMeta = %+v, %v, %v, %v; want %+v, 20s, 10s, nil", c, timeout, interval, err, want)
	}
	c, _, _, err = parseMeta(map[string]string{})
	if err != nil || c.IsClone {
		t.Errorf("parseMeta(no meta) = %+v, %v; want not a clone", c, err)
	}
}

func TestLogFile(t *testing.T) {
	logf := filepath.Join(t.TempDir(), "ha.log")
	env := map[string]string{"OCF_RESOURCE_INSTANCE": "vip:3", "OCF_RESKEY_state": "/nonexistent/x", "HA_LOGFILE": logf}
	if r := call("ocftest", env, "start"); r.code != ExitErrGeneric {
		t.Fatalf("start = %v, want %v", r.code, ExitErrGeneric)
	}
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ERROR: start failed: open /nonexistent/x", "agent=ocftest", "instance=vip:3", "action=start"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("HA_LOGFILE holds %q, want it to contain %q", b, want)
		}
	}
	stamp, _, _ := strings.Cut(string(b), " ")
	if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
		t.Errorf("HA_LOGFILE line %q does not start with a time stamp: %v", b, err)
	}
}

func TestMetaDataContent(t *testing.T) {
	out, err := MetaDataOf("ocftest")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n",
		`<resource-agent name="ocftest" version="` + Version() + `">`,
		`<parameter name="state" unique="1" required="1">`,
		`<content type="integer" default="3"></content>`,
		`<content type="boolean" default="false"></content>`,
		// not reloadable, so unique="1" for Pacemaker's legacy reload
		`<parameter name="count" unique="1" required="0">`,
		`<parameter name="note" unique="0" required="0">`,
		`<action name="start" timeout="30s"></action>`,
		`<action name="monitor" timeout="20s" interval="10s" depth="0"></action>`,
		`<action name="reload" timeout="20s"></action>`,
		`<action name="validate-all" timeout="20s"></action>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("meta-data lacks %s:\n%s", want, s)
		}
	}
	promo, _ := MetaDataOf("ocftest-promo")
	if strings.Contains(string(promo), `"reload"`) || !strings.Contains(string(promo), `"promote"`) {
		t.Errorf("ocftest-promo meta-data: want promote and no reload:\n%s", promo)
	}
}

func TestMetaCheck(t *testing.T) {
	base := testAgent{}.Meta()
	base.Name = "x"
	for _, c := range []struct {
		name string
		mod  func(m *Meta)
		want string
	}{
		{"duplicate", func(m *Meta) { m.Params = append(m.Params, m.Params[0]) }, "declared twice"},
		{"bad default", func(m *Meta) { m.Params[1].Default = "many" }, `default of parameter count="many": not an integer`},
		{"required with default", func(m *Meta) { m.Params[0].Default = "/x" }, "required with a default"},
		{"action outside DTD", func(m *Meta) { m.Actions = []Action{{Name: "reload-agent"}} }, "not in ra-api-1.dtd"},
	} {
		m := base
		m.Params = append([]Param(nil), base.Params...)
		c.mod(&m)
		if err := m.check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: check() = %v, want %q", c.name, err, c.want)
		}
	}
}
