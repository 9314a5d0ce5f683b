package ocf

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Agent is one OCF resource agent. Package ocf owns argv, OCF_RESKEY_*
// parsing, exit codes and meta-data XML; an Agent only says what its actions
// do, returning errors (ErrNotRunning, *ParamError, ...), never exit codes.
//
// Stop of a stopped resource must return nil (or ErrNotRunning, which the
// framework turns into success); Monitor of a stopped one ErrNotRunning.
type Agent interface {
	Meta() Meta // name, parameters, actions: sole source of meta-data and validation
	Start(ctx context.Context, p Params) error
	Stop(ctx context.Context, p Params) error
	Monitor(ctx context.Context, p Params) error
}

// Validator is an Agent with checks beyond its parameter declarations: clone
// meta, values that depend on each other or on this node (return
// *ParamError with Local set, or wrap ErrInstalled). Validate runs for
// validate-all and before every start, stop, monitor, reload, promote and
// demote; it must not change anything.
type Validator interface {
	Validate(ctx context.Context, p Params) error
}

// Reloader is an Agent that applies changed reloadable parameters without a
// restart (actions reload and reload-agent). It is used only when some
// parameter is declared Reloadable.
type Reloader interface {
	Reload(ctx context.Context, p Params) error
}

// Closer is an Agent that holds resources from Validate into its action (a
// netlink socket); Close runs once, after the action.
type Closer interface {
	Close() error
}

// Internal is an Agent with actions of its own that Pacemaker never runs,
// only processes the agent starts itself (clustervip's drain after its
// stop): they are in neither meta-data nor usage, and get the parameters
// and validation of any action. InternalAction returns nil for a name
// that is not one.
type Internal interface {
	InternalAction(name string) func(context.Context, Params) error
}

// Promoter is an Agent for promotable clones.
type Promoter interface {
	Promote(ctx context.Context, p Params) error
	Demote(ctx context.Context, p Params) error
}

var (
	regMu    sync.Mutex
	registry = map[string]func() Agent{}
)

// Register makes an agent available to Main under name; call it from init().
// It panics on a duplicate name: two agents cannot share a link name.
func Register(name string, ctor func() Agent) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup || name == "" || ctor == nil {
		panic(fmt.Sprintf("ocf: agent %q registered twice or without a constructor", name))
	}
	registry[name] = ctor
}

// Names lists the registered agents, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns a fresh instance of the registered agent name, or nil.
func New(name string) Agent {
	regMu.Lock()
	ctor := registry[name]
	regMu.Unlock()
	if ctor == nil {
		return nil
	}
	return ctor()
}

// MetaDataOf renders the meta-data XML of a registered agent.
func MetaDataOf(name string) ([]byte, error) {
	a := New(name)
	if a == nil {
		return nil, fmt.Errorf("agent %q: not registered", name)
	}
	return MetaData(meta(name, a), isPromoter(a))
}

// MetaOf returns the declarations of a registered agent, and ActionsOf the
// actions its meta-data advertises: what man pages and crm --param checks
// read, so they say what the agent does.
func MetaOf(name string) (Meta, error) {
	a := New(name)
	if a == nil {
		return Meta{}, fmt.Errorf("agent %q: not registered", name)
	}
	return meta(name, a), nil
}

// ActionsOf: see MetaOf.
func ActionsOf(name string) ([]Action, error) {
	a := New(name)
	if a == nil {
		return nil, fmt.Errorf("agent %q: not registered", name)
	}
	return actionList(meta(name, a), isPromoter(a)), nil
}

func meta(name string, a Agent) Meta {
	m := a.Meta()
	if m.Name == "" {
		m.Name = name
	}
	return m
}

func isPromoter(a Agent) bool { _, ok := a.(Promoter); return ok }

// Main runs the agent registered as name with argv args (the action is
// args[0]) and the environment env (KEY=VALUE, as os.Environ returns), and
// returns the OCF exit code. Equivalent to: /usr/lib/ocf/resource.d/loadshare/<name> <action>.
// The agent binaries also import package oneproc, which runs them on one P.
func Main(name string, args, env []string) int {
	return Run(name, args, env, os.Stdout, os.Stderr)
}

// Run is Main inside a running program (tests, embedders): the same action
// with the streams given, and no change to the process's settings.
func Run(name string, args, env []string, stdout, stderr io.Writer) int {
	return int(run(name, args, envMap(env), stdout, stderr))
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func usage(w io.Writer, name string, m Meta, a Agent) {
	actions := []string{"start", "stop", "monitor"}
	if _, ok := a.(Promoter); ok {
		actions = append(actions, "promote", "demote")
	}
	if _, ok := a.(Reloader); ok && m.reloadable() {
		actions = append(actions, "reload", "reload-agent")
	}
	actions = append(actions, "meta-data", "validate-all", "usage")
	fmt.Fprintf(w, "usage: %s {%s}\n", name, strings.Join(actions, "|"))
	fmt.Fprintf(w, "\n%s: %s\nParameters come from OCF_RESKEY_<name>; run \"%s meta-data\" for the list.\n", name, m.ShortDesc, name)
}

// run is Main with the environment as a map and the streams injected.
func run(name string, args []string, env map[string]string, stdout, stderr io.Writer) ExitCode {
	a := New(name)
	if a == nil {
		fmt.Fprintf(stderr, "%s: no such OCF agent\n", name)
		return ExitErrInstalled
	}
	m := meta(name, a)
	if len(args) != 1 {
		usage(stderr, name, m, a)
		return ExitErrArgs
	}
	action := args[0]
	switch action {
	case "meta-data":
		out, err := MetaData(m, isPromoter(a))
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return ExitErrGeneric
		}
		stdout.Write(out)
		return ExitSuccess
	case "usage", "help", "--help", "-h":
		usage(stdout, name, m, a)
		return ExitSuccess
	}

	var do func(context.Context, Params) error
	switch action {
	case "start":
		do = a.Start
	case "stop":
		do = a.Stop
	case "monitor":
		do = a.Monitor
	case "validate-all":
		do = func(context.Context, Params) error { return nil } // validation below is the action
	case "reload", "reload-agent":
		if r, ok := a.(Reloader); ok && m.reloadable() {
			do = r.Reload
		}
	case "promote", "demote":
		if pr, ok := a.(Promoter); ok {
			do = pr.Promote
			if action == "demote" {
				do = pr.Demote
			}
		}
	default:
		if in, ok := a.(Internal); ok {
			do = in.InternalAction(action)
		}
	}
	instance := env["OCF_RESOURCE_INSTANCE"]
	if instance == "" {
		instance = name
	}
	log, closeLog := newLogger(env, stderr, name, instance, action)
	defer closeLog()
	if do == nil {
		log.Debug("action not implemented")
		return ExitErrUnimplemented
	}

	p := Params{Agent: name, Instance: instance, Action: action, Log: log}
	for i := range m.Params {
		if p.decl == nil {
			p.decl = make(map[string]*Param, len(m.Params))
		}
		p.decl[m.Params[i].Name] = &m.Params[i]
	}
	var unknown []string
	var err error
	p.Clone, p.Timeout, p.Interval, err = parseMeta(env)
	if err == nil {
		p.values, p.set, unknown, err = parseParams(m.Params, env)
	}
	if len(unknown) > 0 && (action == "validate-all" || action == "start") {
		sort.Strings(unknown)
		log.Warn("ignoring undeclared parameters", "params", strings.Join(unknown, ","))
	}

	if c, ok := a.(Closer); ok {
		defer c.Close()
	}
	ctx := context.Background()
	if p.Timeout > 0 {
		// Finish, with an error saying where, before the executor kills us.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout-margin(p.Timeout))
		defer cancel()
	}
	if err == nil {
		if v, ok := a.(Validator); ok {
			err = v.Validate(ctx, p)
		}
	}
	if err != nil {
		code := invalid(log, action, err)
		if code != ExitSuccess && code != ExitNotRunning {
			exitReason(stderr, env, err)
		}
		return code
	}

	start := time.Now()
	err = do(ctx, p)
	code := Code(err)
	switch {
	case action == "stop" && code == ExitNotRunning:
		code = ExitSuccess // stopping a stopped resource is success
	case code == ExitSuccess:
		log.Debug("done", "took", time.Since(start))
	case code == ExitNotRunning && action == "monitor":
		log.Debug("not running", "reason", err)
	default:
		log.Error(action+" failed", "err", err, "rc", code.String(), "took", time.Since(start))
		exitReason(stderr, env, err)
	}
	return code
}

// invalid decides what a validation failure means for the action, as
// resource-agents' own agents (IPaddr2) do: a resource whose configuration
// cannot work on this node cannot be running here, so stop succeeds and
// monitor reports not running; everything else fails with the error's code.
func invalid(log *slog.Logger, action string, err error) ExitCode {
	code := Code(err)
	cannotRun := code == ExitErrConfigured || code == ExitErrArgs || code == ExitErrInstalled
	switch {
	case action == "stop" && cannotRun:
		log.Warn("invalid configuration, so not running here: stop succeeds", "err", err)
		return ExitSuccess
	case action == "monitor" && cannotRun:
		log.Warn("invalid configuration, so not running here", "err", err)
		return ExitNotRunning
	}
	log.Error("invalid configuration", "err", err, "rc", code.String())
	return code
}

// exitReason prints the one line Pacemaker shows as the failure's reason
// (crm_mon's "exitreason"): pacemaker-execd takes it from the agent's stderr
// by the prefix it passes in OCF_EXIT_REASON_PREFIX, as ocf-shellfuncs'
// ocf_exit_reason does.
func exitReason(w io.Writer, env map[string]string, err error) {
	prefix := env["OCF_EXIT_REASON_PREFIX"]
	if prefix == "" {
		prefix = "ocf-exit-reason:"
	}
	fmt.Fprintf(w, "%s%s\n", prefix, strings.ReplaceAll(err.Error(), "\n", " "))
}

// margin is how much of the operation timeout is kept back, so an action
// that runs out of time returns its own error rather than being killed.
func margin(timeout time.Duration) time.Duration {
	m := timeout / 10
	if m > 2*time.Second {
		m = 2 * time.Second
	}
	return m
}
