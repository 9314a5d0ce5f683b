// Package mysqlmonitor is the OCF resource agent ocf:loadshare:mysql_monitor:
// it publishes the local MySQL/MariaDB's roles through attrd:
// writable_monit (1 when it takes writes: not read-only, not a replica and,
// on Galera, a Synced member of the Primary component) and readable_monit
// (1 when it is writable or a replica in sync). It registers itself with
// package ocf in init(); cmd/mysql_monitor is its binary.
package mysqlmonitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/agents/mysqlconn"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/loadmon"
)

// Attributes mysql_monitor publishes (the names crm rules use).
const (
	attrWritable = "writable_monit"  // 1: takes writes (not read-only, not a replica, Galera Synced); 0: not
	attrReadable = "readable_monit"  // with publish_readable: 1 when writable or a replica in sync
	attrLag      = "replication_lag" // with publish_lag: seconds behind the source, in steps of lagStep
)

// lagStep and lagCap coarsen replication_lag: every distinct value is a CIB
// write and a new series in ha_cluster_exporter, so it moves in 10 s steps
// and stops at 600 (meaning "600 s or more"): at most 61 values.
const (
	lagStep = 10 * time.Second
	lagCap  = 600 * time.Second
)

func init() {
	ocf.Register("mysql_monitor", func() ocf.Agent { return &mysqlMonitor{env: attrs.NewEnv()} })
}

// mysqlMonitor is ocf:loadshare:mysql_monitor: it publishes whether the
// local database takes writes and reads. Like Percona's mysql_monitor, its
// own monitor succeeds while it runs: the database's health goes into the
// attributes, never into a failed resource.
type mysqlMonitor struct {
	env attrs.Env
}

// state is an instance's state file (attrs.Load, Save): it exists from
// start to stop.
type state struct {
	attrs.Published
	Reason string `json:"reason,omitempty"` // why the last values were what they were
}

// Values of the galera parameter.
const (
	galeraAuto = "auto" // Galera rules when a wsrep provider is loaded
	galeraOn   = "true"
	galeraOff  = "false"
)

// galeraMode reads the galera parameter: auto, or a boolean.
func galeraMode(v string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(v), galeraAuto) {
		return galeraAuto, nil
	}
	b, err := ocf.ParseBool(v)
	if err != nil {
		return "", errors.New("not auto, true or false")
	}
	if b {
		return galeraOn, nil
	}
	return galeraOff, nil
}

func (a *mysqlMonitor) Meta() ocf.Meta {
	params := append(mysqlconn.MySQLParams(false),
		ocf.Param{Name: "galera", Default: galeraAuto, ShortDesc: "apply Galera's rules: auto, true or false",
			LongDesc: "On a Galera node (MariaDB Galera Cluster, Percona XtraDB Cluster) " + attrWritable + " and " + attrReadable + " also need wsrep_ready=ON, wsrep_cluster_status=Primary and wsrep_local_state=4 (Synced; see donor_ok). " +
				"auto: when a wsrep provider is loaded (wsrep_provider_name is set). true: always; a server without a provider then gets 0. false: never (wsrep state ignored).",
			Check: func(v string) error { _, err := galeraMode(v); return err }},
		ocf.Param{Name: "donor_ok", Type: ocf.Boolean, Default: "false", ShortDesc: "a Galera donor (Donor/Desynced) still counts",
			LongDesc: "When true, a Galera node in wsrep_local_state=2 (Donor/Desynced: serving a state transfer, or wsrep_desync=ON) counts as Synced, like clustercheck's available-when-donor. An rsync or mysqldump donor blocks writes while it serves, so leave it false unless the SST method is mariabackup."},
		ocf.Param{Name: "max_lag", Type: ocf.Integer, Default: "30", ShortDesc: "seconds of replica lag still in sync",
			LongDesc: "A replica at most this many seconds behind its source (Seconds_Behind_Master), with both replication threads running, is in sync: " + attrReadable + "=1. At least 0.",
			Check:    attrs.NonNegative},
		ocf.Param{Name: "publish_readable", Type: ocf.Boolean, Default: "true", ShortDesc: "also publish " + attrReadable,
			LongDesc: "Publish " + attrReadable + ": 1 when the server is writable (as " + attrWritable + "), or is a replica whose IO and SQL threads run and whose lag is at most max_lag; 0 otherwise (a read-only server that is not a replica included). A reader VIP requires it."},
		ocf.Param{Name: "publish_lag", Type: ocf.Boolean, Default: "false", ShortDesc: "also publish " + attrLag,
			LongDesc: "Also publish " + attrLag + ": seconds behind the source rounded down to multiples of 10, at most 600 (meaning 600 or more; 0 on a server that is no replica); deleted while the lag is unknown (a replication thread stopped, or the server down)."},
		ocf.Param{Name: "replica_ok", Type: ocf.Boolean, Default: "false", ShortDesc: "deprecated: use " + attrReadable,
			LongDesc: "Deprecated, kept for old configurations; each action that gets it logs a warning. When true, " + attrWritable + " takes " + attrReadable + "'s value, so an in-sync replica counts as writable and a writer VIP could send writes to it. " +
				"Instead, leave it unset and make the VIP (or a second, reader VIP) require " + attrReadable + "=1."},
		ocf.Param{Name: "dampen", Type: ocf.Integer, Default: "5", ShortDesc: "attrd dampening, seconds",
			LongDesc: "attrd_updater --delay: seconds attrd waits for further changes before writing the attributes to the CIB; 0 writes at once.",
			Check:    attrs.NonNegative},
	)
	return ocf.Meta{
		Name:      "mysql_monitor",
		ShortDesc: "publishes whether the local MySQL/MariaDB takes writes (" + attrWritable + ") and reads (" + attrReadable + ")",
		LongDesc: "Run as a clone, one instance per node. Every monitor opens one connection to the local MySQL or MariaDB server and reads, in one query round trip, read_only, super_read_only, the wsrep (Galera) status and the replica status (SHOW SLAVE STATUS: needs the SLAVE MONITOR privilege on MariaDB, REPLICATION CLIENT on MySQL), then publishes through attrd_updater, only when they changed, the node attributes " +
			attrWritable + " (1: read_only and super_read_only off, not a replica, and on Galera Synced in the Primary component) and " + attrReadable + " (1: writable, or a replica whose threads run within max_lag). " +
			"The agent's own monitor succeeds while it runs: a server that is down, refusing the password, unknown or not answering in time sets the attributes to 0 and logs why, and never fails the resource. Stop deletes the attributes.",
		Params:  params,
		Actions: attrs.Actions(),
	}
}

// Validate checks that the defaults file (if any) is readable here, for
// validate-all and start only: once running, a defaults file that went
// away is the database's trouble (attribute 0, reason logged), and stop
// must always run so that it deletes the attributes.
//
// With start and validate-all it also warns that replica_ok is deprecated:
// once per start, not at every monitor, so the warning is not lost in noise.
func (a *mysqlMonitor) Validate(_ context.Context, p ocf.Params) error {
	if p.IsSet("replica_ok") && attrs.ValidatesFiles(p) {
		const see = " (README: \"Migrating from replica_ok\")"
		if p.Bool("replica_ok") {
			p.Log.Warn("parameter replica_ok is deprecated: " + attrWritable + " takes " + attrReadable + "'s value, so a writer VIP can get a replica; " +
				"remove replica_ok and make a reader VIP require " + attrReadable + "=1" + see)
		} else {
			p.Log.Warn("parameter replica_ok is deprecated and false is what the agent does without it: remove it" + see)
		}
	}
	if !attrs.ValidatesFiles(p) {
		return nil
	}
	_, _, err := mysqlconn.MySQLProbe(p, false)
	return err
}

func (a *mysqlMonitor) Start(ctx context.Context, p ocf.Params) error {
	st, err := attrs.Load[state](a.env, p)
	if errors.Is(err, ocf.ErrNotRunning) {
		st, err = &state{}, nil
	}
	if err != nil {
		return err
	}
	// Mark running first: a start that times out after this is a running
	// instance Pacemaker will stop, not a leak.
	if err := a.env.Save(p, st); err != nil {
		return err
	}
	return a.check(ctx, p, st, true)
}

func (a *mysqlMonitor) Monitor(ctx context.Context, p ocf.Params) error {
	st, err := attrs.Load[state](a.env, p)
	if err != nil {
		return err
	}
	return a.check(ctx, p, st, false)
}

func (a *mysqlMonitor) Stop(ctx context.Context, p ocf.Params) error {
	a.env.Unpublish(ctx, p, attrWritable, attrReadable, attrLag)
	return a.env.Remove(p)
}

// check probes the server and publishes what changed.
func (a *mysqlMonitor) check(ctx context.Context, p ocf.Params, st *state, force bool) error {
	var status loadmon.Status
	probe, _, probeErr := mysqlconn.MySQLProbe(p, false)
	if probeErr == nil {
		probe.Replica = true // writable_monit needs "not a replica" too
		probe.Timeout = mysqlconn.ProbeTimeout(ctx, probe.Timeout)
		status, probeErr = probe.Sample(ctx)
	}

	galera, _ := galeraMode(p.String("galera")) // validated
	v := judge(status, probeErr, rules{
		maxLag:    time.Duration(p.Int("max_lag")) * time.Second,
		galera:    galera,
		donorOK:   p.Bool("donor_ok"),
		replicaOK: p.Bool("replica_ok"),
	})
	values := map[string]string{attrWritable: strconv.Itoa(v.writable)}
	if p.Bool("publish_readable") {
		values[attrReadable] = strconv.Itoa(v.readable)
	}
	if p.Bool("publish_lag") {
		values[attrLag] = v.lag
	}
	before := st.PublishedAt
	changed, err := a.env.Publish(ctx, p, &st.Published, values, time.Duration(p.Int("dampen"))*time.Second, force)
	if err != nil {
		return err
	}
	// One line when a role or its reason changes: why it is what it is. A
	// healthy, unchanged monitor prints nothing.
	if slices.Contains(changed, attrWritable) || slices.Contains(changed, attrReadable) || v.reason != st.Reason || force {
		args := []any{"reason", v.reason, attrWritable, v.writable, attrReadable, v.readable}
		if r := status.Replica; r != nil && r.LagKnown {
			args = append(args, "replica_lag", r.Lag) // not in reason: it would log every monitor
		}
		switch {
		case v.writable == 1:
			p.Log.Info("database writable", args...)
		case v.readable == 1:
			p.Log.Info("database readable, not writable", args...)
		default:
			if probeErr != nil {
				args = append(args, "err", probeErr)
			}
			p.Log.Warn("database neither writable nor readable", args...)
		}
	}
	if st.PublishedAt.Equal(before) && v.reason == st.Reason {
		return nil // nothing new: the state file stays as it is
	}
	st.Reason = v.reason
	return a.env.Save(p, st)
}

// rules are the parameters judge applies.
type rules struct {
	maxLag    time.Duration
	galera    string // galeraAuto, galeraOn or galeraOff
	donorOK   bool
	replicaOK bool // deprecated: writable takes readable's value
}

// verdict is what mysql_monitor publishes for one probe.
type verdict struct {
	writable, readable int
	lag                string // replication_lag value; "" deletes it
	reason             string // short and stable, for the log: why the roles are what they are
}

// judge turns a probe's result into attribute values. Pure.
//
//	writable: read_only and super_read_only off, not a replica (replica
//	          status read), and on Galera available (Galera.Available)
//	readable: writable, or a replica whose threads run within maxLag (and
//	          on Galera available)
func judge(st loadmon.Status, err error, r rules) verdict {
	if err != nil {
		var pe *loadmon.ProbeError
		var param *ocf.ParamError
		kind := "error"
		switch {
		case errors.As(err, &pe):
			kind = pe.Kind.String()
		case errors.As(err, &param):
			kind = "parameter " + param.Param
		}
		return verdict{reason: "probe failed: " + kind}
	}
	v := verdict{lag: "0"}
	rep := st.Replica
	switch {
	case st.ReplicaErr != nil:
		v.lag = ""
	case rep == nil:
	case rep.LagKnown:
		v.lag = strconv.Itoa(int(min(rep.Lag, lagCap)/lagStep) * int(lagStep/time.Second))
	default:
		v.lag = ""
	}
	v.writable, v.readable, v.reason = roles(st, r)
	if r.replicaOK {
		v.writable = v.readable
	}
	return v
}

// roles decides writable and readable and says why, the first failing
// condition first.
func roles(st loadmon.Status, r rules) (writable, readable int, reason string) {
	g := st.Galera
	switch {
	case r.galera == galeraOn && g == nil:
		return 0, 0, "galera=true but no wsrep provider loaded"
	case r.galera != galeraOff && g != nil:
		if ok, why := g.Available(r.donorOK); !ok {
			return 0, 0, "galera: " + why
		}
	}
	rep := st.Replica
	switch {
	case st.ReplicaErr != nil:
		// Without the replica status "not a replica" is unknown: a writer
		// VIP must not land on what may be one.
		return 0, 0, "replica status unreadable: " + st.ReplicaErr.Error()
	case rep != nil && rep.Healthy(r.maxLag):
		return 0, 1, fmt.Sprintf("replica of %s in sync (lag within max_lag %s)", rep.Source, r.maxLag)
	case rep != nil:
		return 0, 0, fmt.Sprintf("replica of %s not in sync: %s", rep.Source, replicaProblem(rep, r.maxLag))
	case st.SuperReadOnly:
		return 0, 0, "super_read_only=ON and not a replica"
	case st.ReadOnly:
		return 0, 0, "read_only=ON and not a replica"
	}
	return 1, 1, "writable"
}

func replicaProblem(r *loadmon.Replica, maxLag time.Duration) string {
	switch {
	case !r.SQLRunning:
		s := "SQL thread stopped"
		if r.LastError != "" {
			s += " (" + r.LastError + ")"
		}
		return s
	case !r.IORunning:
		s := "IO thread " + r.IOState
		if r.LastError != "" {
			s += " (" + r.LastError + ")"
		}
		return s
	case !r.LagKnown:
		return "lag unknown"
	}
	return fmt.Sprintf("lag over max_lag %s", maxLag)
}
