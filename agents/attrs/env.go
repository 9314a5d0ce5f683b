// Package attrs is what the agents that publish node attributes
// (mysql_monitor, server_load, and clustervip's flood check) share, a file
// a job: how they reach the outside (env.go: attrd, the run directory, the
// Pacemaker daemons beside them), the state file that marks an instance
// running (store.go), publishing through attrd only on change
// (publish.go), and the validators and actions they declare (params.go).
// Each agent keeps its own state type, the attribute agents' with the
// Published record embedded. It links no MySQL driver (the attribute
// agents' MySQL parameters and probe are package mysqlconn).
package attrs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loadshare/loadshare/crm"
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
