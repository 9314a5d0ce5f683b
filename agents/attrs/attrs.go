// Package attrs is what the attribute agents (mysql_monitor and
// server_load) share: the state file that marks an instance running and
// remembers what it published, publishing through attrd only on change,
// the MySQL connection parameters, and the actions they declare.
package attrs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/loadmon"
)

// Environment the attribute agents read besides OCF_RESKEY_*.
const (
	// EnvRunDir is the OCF run directory for state files (ocf-shellfuncs
	// sets HA_RSCTMP); DefaultRunDir when unset.
	EnvRunDir     = "HA_RSCTMP"
	DefaultRunDir = "/run/resource-agents"
	// EnvAttrd names the attrd_updater to run (default: from PATH), or
	// "none" to publish nothing (values are still computed, kept in the
	// state file and logged at debug level): for benchmarks and tests
	// without a running Pacemaker, never for a cluster node.
	EnvAttrd = "LOADSHARE_ATTRD_UPDATER"
)

// republishAfter: a value unchanged this long is written again, so an
// attribute lost by attrd (or deleted by hand) comes back without a restart.
const republishAfter = 10 * time.Minute

// Env is how an attribute agent reaches the outside: attrd and the
// run directory. Tests give fakes; NewEnv reads the process environment.
type Env struct {
	Attrs  crm.Attrs // nil: publish nothing (EnvAttrd=none)
	RunDir string    // state files
	Now    func() time.Time
	// Daemons identifies the pacemaker-attrd the values go to and the
	// pacemaker-controld beside it (DaemonStamps); when one changes,
	// Publish makes sure the CIB holds the values again. nil or "": not
	// known.
	Daemons func() (attrd, controld string)
}

func NewEnv() Env {
	e := Env{RunDir: os.Getenv(EnvRunDir), Now: time.Now, Daemons: DaemonStamps}
	if e.RunDir == "" {
		e.RunDir = DefaultRunDir
	}
	switch path := os.Getenv(EnvAttrd); path {
	case "none":
	case "":
		e.Attrs = &crm.AttrdUpdater{}
	default:
		e.Attrs = &crm.AttrdUpdater{Path: path}
	}
	return e
}

// State is an instance's state file: it exists from start to stop.
type State struct {
	Published   map[string]string `json:"published"`             // attribute → value we last wrote
	PublishedAt time.Time         `json:"published_at"`          // last write of any attribute
	Reason      string            `json:"reason,omitempty"`      // mysql_monitor: why the last value was what it was
	Model       *loadmon.State    `json:"model,omitempty"`       // server_load: the load model between monitors
	Probe       string            `json:"probe_error,omitempty"` // server_load: last database probe error, logged once
	Ideals      map[string]Ideal  `json:"ideals,omitempty"`      // server_load: per placed VIP, the ideal targets and since when
	// server_load: per placed VIP, what its rounds on this node did (the metrics read it)
	Placer map[string]*crm.PlacerStats `json:"placer,omitempty"`
	// server_load: why the last metrics textfile was not written ("": it was), logged once
	Textfile string `json:"textfile_error,omitempty"`
	// The attrd that holds what we published and the controller beside
	// it (Env.Daemons) at the last write
	Attrd    string `json:"attrd,omitempty"`
	Controld string `json:"controld,omitempty"`
}

// Ideal is a placer's ideal targets (as text) and when they were first
// seen: once they have held long enough, the placer goes to them.
type Ideal struct {
	Targets string    `json:"targets"`
	Since   time.Time `json:"since"`
}

// StatePath is the instance's state file: one per agent and instance, so
// two clones on a node never share one.
func (e Env) StatePath(p ocf.Params) string {
	name := strings.NewReplacer("/", "_", string(os.PathSeparator), "_").Replace(p.Instance)
	return filepath.Join(e.RunDir, "loadshare-"+p.Agent+"-"+name+".state")
}

// load returns the state, or ocf.ErrNotRunning when there is no state file
// (never started, stopped, or the node rebooted: /run is a tmpfs).
func (e Env) Load(p ocf.Params) (*State, error) {
	b, err := os.ReadFile(e.StatePath(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ocf.ErrNotRunning
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		// A torn or foreign file: start afresh rather than fail the monitor.
		p.Log.Warn("state file unreadable, starting afresh", "path", e.StatePath(p), "err", err)
		return &State{}, nil
	}
	return &st, nil
}

// save writes the state atomically (temporary file, then rename).
func (e Env) Save(p ocf.Params, st *State) error {
	if err := os.MkdirAll(e.RunDir, 0o755); err != nil {
		return fmt.Errorf("create run dir: %w", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := e.StatePath(p)
	tmp, err := os.CreateTemp(e.RunDir, filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// remove deletes the state file; a missing one is fine.
func (e Env) Remove(p ocf.Params) error {
	err := os.Remove(e.StatePath(p))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove state: %w", err)
	}
	return nil
}

// publish writes each attribute whose value differs from what the state
// says we published (or all, with force, when the last write is older
// than republishAfter, or when attrd is another process than at the last
// write); "" deletes the attribute. It records what it wrote in st and
// returns the names it changed.
//
// Two restarts lose the node's attributes without any value changing
// (pacemakerd respawns a crashed daemon in place):
//   - a new pacemaker-attrd holds none of them: its peers drop them when
//     it leaves. Everything is written again.
//   - when pacemaker-controld is lost, the DC erases the node's transient
//     attributes from the CIB, while attrd still holds them and, since
//     none changed, never writes them back. attrd is asked to resend
//     every value (attrd_updater --refresh).
//
// Without either the node would keep writable_monit unset in the CIB, and
// so no bucket, indefinitely.
func (e Env) Publish(ctx context.Context, p ocf.Params, st *State, values map[string]string, delay time.Duration, force bool) ([]string, error) {
	if st.Published == nil {
		st.Published = map[string]string{}
	}
	stale := e.Now().Sub(st.PublishedAt) > republishAfter
	var attrd, controld string
	if e.Daemons != nil {
		attrd, controld = e.Daemons()
	}
	if attrd != "" && st.Attrd != "" && attrd != st.Attrd && !force {
		p.Log.Info("pacemaker-attrd restarted: publishing every attribute again", "was", st.Attrd, "now", attrd)
		force = true
	}
	refresh := controld != "" && st.Controld != "" && controld != st.Controld && !force
	var changed []string
	for _, name := range sortedKeys(values) {
		v := values[name]
		old, had := st.Published[name]
		if !force && !stale && old == v && (had || v == "") {
			continue
		}
		if e.Attrs == nil {
			p.Log.Debug("not publishing ("+EnvAttrd+"=none)", "attribute", name, "value", v)
		} else if v == "" {
			if err := e.Attrs.Delete(ctx, name); err != nil {
				return changed, fmt.Errorf("delete attribute %s: %w", name, err)
			}
		} else if err := e.Attrs.Set(ctx, name, v, delay); err != nil {
			return changed, fmt.Errorf("publish %s=%s: %w", name, v, err)
		}
		st.Published[name] = v
		if old != v {
			changed = append(changed, name)
		}
	}
	if refresh && e.Attrs != nil {
		// The DC erases the attributes as soon as it sees the old
		// controller gone (in the lab 50 ms after the kill, before the
		// respawn): a monitor that sees the new one comes after that.
		p.Log.Info("pacemaker-controld restarted: asking attrd to write every attribute again", "was", st.Controld, "now", controld)
		if err := e.Attrs.Refresh(ctx); err != nil {
			return changed, fmt.Errorf("attrd refresh: %w", err)
		}
	}
	if force || stale || len(changed) > 0 {
		st.PublishedAt = e.Now()
	}
	if attrd != "" {
		st.Attrd = attrd
	}
	if controld != "" {
		st.Controld = controld
	}
	return changed, nil
}

// DaemonStamps identifies the pacemaker-attrd and pacemaker-controld
// beside this agent: "PID@START" each (the start time in clock ticks
// after boot, /proc/PID/stat field 22), so that a respawned daemon
// differs even under a recycled pid. They are found as children of the
// pacemakerd above this process (pacemakerd → pacemaker-execd → the
// agent), through /proc/PID/task/PID/children: a few small reads, no
// process started. "" when not found (an agent run by hand or by a test).
func DaemonStamps() (attrd, controld string) {
	pid := os.Getpid()
	for range 3 { // the agent, execd, pacemakerd
		comm, _, ppid := procStat(pid)
		if comm == "pacemakerd" {
			break
		}
		if ppid <= 1 {
			return "", ""
		}
		pid = ppid
	}
	if comm, _, _ := procStat(pid); comm != "pacemakerd" {
		return "", ""
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return "", ""
	}
	for _, f := range strings.Fields(string(b)) {
		child, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		switch comm, start, _ := procStat(child); comm {
		case "pacemaker-attrd":
			attrd = f + "@" + start
		case "pacemaker-contr": // pacemaker-controld, cut to 15 bytes
			controld = f + "@" + start
		}
	}
	return attrd, controld
}

// procStat reads a process's command name (at most 15 bytes), start time
// (field 22) and parent from /proc/PID/stat; "" when it is gone.
func procStat(pid int) (comm, start string, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", 0
	}
	// PID (COMM) STATE PPID …: comm may hold spaces and parentheses.
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return "", "", 0
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 20 {
		return "", "", 0
	}
	ppid, _ = strconv.Atoi(f[1])
	return s[i+1 : j], f[19], ppid // f[0] is field 3 (state): field 22 is f[19]
}

// unpublish deletes the attributes on stop. A failure is logged, not
// returned: a failed stop gets the node fenced, and attrd being away (the
// only likely cause) means Pacemaker is going down on this node anyway.
func (e Env) Unpublish(ctx context.Context, p ocf.Params, names ...string) {
	if e.Attrs == nil {
		return
	}
	for _, n := range names {
		if err := e.Attrs.Delete(ctx, n); err != nil {
			p.Log.Warn("could not delete attribute on stop", "attribute", n, "err", err)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// Parameters both agents use to reach MySQL; explicit parameters override
// the defaults file, as the mysql CLI's options override its option files.
// There is deliberately no password parameter: instance parameters are
// readable by anyone who can read the CIB.
func MySQLParams(forLoad bool) []ocf.Param {
	what := "the server to watch"
	if forLoad {
		what = "the server whose Threads_running and Threads_connected count as load (see probe_mysql)"
	}
	return []ocf.Param{
		{Name: "defaults_file", ShortDesc: "MySQL option file with the credentials",
			LongDesc: "Path of a MySQL option file whose [client] section (user, password, host, port, socket) says how to reach " + what + ", as mysql --defaults-file reads it. Keep it mode 0600; the password is never passed on a command line."},
		{Name: "user", ShortDesc: "MySQL user (overrides defaults_file)",
			LongDesc: "MySQL user to log in as; overrides user= of defaults_file; root when neither says. Its password can only come from defaults_file. Debian's root@localhost logs in over the socket without a password (unix_socket) because the agent runs as root, so on Debian no defaults file is needed."},
		{Name: "socket", ShortDesc: "unix socket (overrides defaults_file)",
			LongDesc: "Unix socket of the server; overrides socket= of defaults_file. Used unless host names a remote host. Default from defaults_file, else " + loadmon.DefaultSocket + "."},
		{Name: "host", ShortDesc: "TCP host (overrides defaults_file)",
			LongDesc: "Host to connect to over TCP; overrides host= of defaults_file. Empty or localhost means the unix socket."},
		{Name: "port", Type: ocf.Integer, ShortDesc: "TCP port (overrides defaults_file)",
			LongDesc: "TCP port; overrides port= of defaults_file. Default 3306.",
			Check: func(v string) error {
				if n := Atoi(v); n < 1 || n > 65535 {
					return errors.New("not a TCP port (1..65535)")
				}
				return nil
			}},
		{Name: "connect_timeout", Type: ocf.Integer, Default: "5", ShortDesc: "seconds to connect and query",
			LongDesc: "Seconds one probe (connect and query together) may take; it is also kept under half of the monitor operation's timeout, so a hung server becomes an attribute value, not a timed-out monitor.",
			Check:    Positive},
	}
}

// MySQLProbe builds the probe from the parameters; enabled is false when
// the agent has a probe_mysql parameter and it is false.
func MySQLProbe(p ocf.Params, optional bool) (m *loadmon.MySQL, enabled bool, err error) {
	if optional && !p.Bool("probe_mysql") {
		return nil, false, nil
	}
	var c loadmon.Conn
	if f := p.String("defaults_file"); f != "" {
		if c, err = loadmon.ReadDefaultsFile(f, "loadshare"); err != nil {
			return nil, false, &ocf.ParamError{Param: "defaults_file", Value: f, Reason: err.Error(), Local: true}
		}
	}
	if p.IsSet("user") {
		c.User = p.String("user")
	}
	if p.IsSet("socket") {
		c.Socket = p.String("socket")
	}
	if p.IsSet("host") {
		c.Host = p.String("host")
	}
	if p.IsSet("port") {
		c.Port = int(p.Int("port"))
	}
	if c.User == "" {
		c.User = "root"
	}
	return &loadmon.MySQL{Conn: c, Timeout: time.Duration(p.Int("connect_timeout")) * time.Second}, true, nil
}

// ValidatesFiles reports whether Validate should check files on this node:
// for validate-all and start. A running instance whose files went away
// reports it in its attribute, and stop must always run.
func ValidatesFiles(p ocf.Params) bool {
	return p.Action == "validate-all" || p.Action == "start"
}

// ProbeTimeout keeps a probe under half of what is left of the operation,
// leaving the rest for attrd_updater and the state file.
func ProbeTimeout(ctx context.Context, want time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) / 2; left < want {
			return max(left, 100*time.Millisecond)
		}
	}
	return want
}

func Positive(v string) error {
	if Atoi(v) < 1 {
		return errors.New("must be at least 1")
	}
	return nil
}

func NonNegative(v string) error {
	if Atoi(v) < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

// Atoi reads a value the framework already checked to be an integer.
func Atoi(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// Actions are the actions of both attribute agents, with the
// timeouts crmsh advises (it warns below 20 s) and a 10 s monitor.
func Actions() []ocf.Action {
	return []ocf.Action{
		{Name: "start", Timeout: 20 * time.Second},
		{Name: "stop", Timeout: 20 * time.Second},
		{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second},
		{Name: "meta-data", Timeout: 5 * time.Second},
		{Name: "validate-all", Timeout: 20 * time.Second},
	}
}
