// Package mysqlmonitor is the OCF resource agent ocf:loadshare:mysql_monitor:
// it publishes writable_monit (1 when the local MySQL/MariaDB accepts writes,
// or is a replica that is caught up when replica_ok is set) through attrd.
// It registers itself with package ocf in init(); cmd/mysql_monitor is its
// binary.
package mysqlmonitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/loadmon"
)

// Attributes mysql_monitor publishes (the names crm rules use).
const (
	attrWritable = "writable_monit"  // 1: takes writes (or an in-sync replica with replica_ok); 0: not
	attrReadable = "readable_monit"  // with publish_readable: 1 when it answers and replication (if any) is healthy
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
// local database takes writes. Like Percona's mysql_monitor, its own monitor
// succeeds while it runs: the database's health goes into the attribute,
// never into a failed resource.
type mysqlMonitor struct {
	env attrs.Env
}

func (a *mysqlMonitor) Meta() ocf.Meta {
	params := append(attrs.MySQLParams(false),
		ocf.Param{Name: "replica_ok", Type: ocf.Boolean, Default: "false", ShortDesc: "an in-sync replica counts as writable",
			LongDesc: "When true, a read-only replica whose IO and SQL threads run and whose lag is at most max_lag also gets " + attrWritable + "=1 (for clusters where clients only read). Reading replica status needs the SLAVE MONITOR privilege (MariaDB) or REPLICATION CLIENT (MySQL)."},
		ocf.Param{Name: "max_lag", Type: ocf.Integer, Default: "30", ShortDesc: "seconds of replica lag still in sync",
			LongDesc: "A replica at most this many seconds behind its source (Seconds_Behind_Master) is in sync, for replica_ok and " + attrReadable + ".",
			Check:    attrs.NonNegative},
		ocf.Param{Name: "publish_readable", Type: ocf.Boolean, Default: "false", ShortDesc: "also publish " + attrReadable,
			LongDesc: "Also publish " + attrReadable + ": 1 when the server answers and, if it is a replica, both replication threads run and its lag is at most max_lag; 0 otherwise."},
		ocf.Param{Name: "publish_lag", Type: ocf.Boolean, Default: "false", ShortDesc: "also publish " + attrLag,
			LongDesc: "Also publish " + attrLag + ": seconds behind the source rounded down to multiples of 10, at most 600 (meaning 600 or more; 0 on a server that is no replica); deleted while the lag is unknown (a replication thread stopped, or the server down)."},
		ocf.Param{Name: "dampen", Type: ocf.Integer, Default: "5", ShortDesc: "attrd dampening, seconds",
			LongDesc: "attrd_updater --delay: seconds attrd waits for further changes before writing the attributes to the CIB; 0 writes at once.",
			Check:    attrs.NonNegative},
	)
	return ocf.Meta{
		Name:      "mysql_monitor",
		ShortDesc: "publishes whether the local MySQL/MariaDB takes writes (" + attrWritable + ")",
		LongDesc: "Run as a clone, one instance per node. Every monitor opens one connection to the local MySQL or MariaDB server and reads read_only, super_read_only and (when needed) the replica status in one round trip, then publishes the node attribute " + attrWritable + " (1 or 0) through attrd_updater, only when it changed. " +
			"The agent's own monitor succeeds while it runs: a server that is down, read-only, refusing the password, unknown or not answering in time sets the attribute to 0 and logs why, and never fails the resource. Stop deletes the attributes.",
		Params:  params,
		Actions: attrs.Actions(),
	}
}

// Validate checks that the defaults file (if any) is readable here, for
// validate-all and start only: once running, a defaults file that went
// away is the database's trouble (attribute 0, reason logged), and stop
// must always run so that it deletes the attributes.
func (a *mysqlMonitor) Validate(_ context.Context, p ocf.Params) error {
	if !attrs.ValidatesFiles(p) {
		return nil
	}
	_, _, err := attrs.MySQLProbe(p, false)
	return err
}

func (a *mysqlMonitor) Start(ctx context.Context, p ocf.Params) error {
	st, err := a.env.Load(p)
	if errors.Is(err, ocf.ErrNotRunning) {
		st, err = &attrs.State{}, nil
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
	st, err := a.env.Load(p)
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
func (a *mysqlMonitor) check(ctx context.Context, p ocf.Params, st *attrs.State, force bool) error {
	var status loadmon.Status
	probe, _, probeErr := attrs.MySQLProbe(p, false)
	if probeErr == nil {
		probe.Replica = p.Bool("replica_ok") || p.Bool("publish_readable") || p.Bool("publish_lag")
		probe.Timeout = attrs.ProbeTimeout(ctx, probe.Timeout)
		status, probeErr = probe.Sample(ctx)
	}

	v := judge(status, probeErr, time.Duration(p.Int("max_lag"))*time.Second, p.Bool("replica_ok"))
	values := map[string]string{attrWritable: strconv.Itoa(v.writable)}
	if p.Bool("publish_readable") {
		values[attrReadable] = strconv.Itoa(v.readable)
	}
	if p.Bool("publish_lag") {
		values[attrLag] = v.lag
	}
	before := st.PublishedAt
	changed, err := a.env.Publish(ctx, p, st, values, time.Duration(p.Int("dampen"))*time.Second, force)
	if err != nil {
		return err
	}
	// One line when the verdict or its reason changes: why it is 0 (or 1
	// again). A healthy, unchanged monitor prints nothing.
	if slices.Contains(changed, attrWritable) || v.reason != st.Reason || force {
		args := []any{"reason", v.reason, attrWritable, v.writable}
		if r := status.Replica; r != nil && r.LagKnown {
			args = append(args, "replica_lag", r.Lag) // not in reason: it would log every monitor
		}
		if v.writable == 0 {
			if probeErr != nil {
				args = append(args, "err", probeErr)
			}
			p.Log.Warn("database not writable", args...)
		} else {
			p.Log.Info("database writable", args...)
		}
	}
	if st.PublishedAt.Equal(before) && v.reason == st.Reason {
		return nil // nothing new: the state file stays as it is
	}
	st.Reason = v.reason
	return a.env.Save(p, st)
}

// verdict is what mysql_monitor publishes for one probe.
type verdict struct {
	writable, readable int
	lag                string // replication_lag value; "" deletes it
	reason             string // short and stable, for the log: why writable is what it is
}

// judge turns a probe's result into attribute values. Pure.
func judge(st loadmon.Status, err error, maxLag time.Duration, replicaOK bool) verdict {
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
	v := verdict{readable: 1, lag: "0"}
	r := st.Replica
	switch {
	case st.ReplicaErr != nil:
		v.lag = ""
	case r == nil:
	case r.LagKnown:
		v.lag = strconv.Itoa(int(min(r.Lag, lagCap)/lagStep) * int(lagStep/time.Second))
	default:
		v.lag = ""
	}
	replicaHealthy := r != nil && r.Healthy(maxLag)
	if r != nil && !replicaHealthy {
		v.readable = 0
	}
	switch {
	case st.Writable():
		v.writable, v.reason = 1, "writable"
	case !replicaOK:
		v.reason = readOnlyReason(st)
	case st.ReplicaErr != nil:
		v.reason = readOnlyReason(st) + ", replica status unreadable: " + st.ReplicaErr.Error()
	case r == nil:
		v.reason = readOnlyReason(st) + " and not a replica"
	case replicaHealthy:
		v.writable, v.reason = 1, fmt.Sprintf("replica in sync (lag within max_lag %s)", maxLag)
	default:
		v.reason = readOnlyReason(st) + ", replica not in sync: " + replicaProblem(r, maxLag)
	}
	return v
}

func readOnlyReason(st loadmon.Status) string {
	if st.SuperReadOnly {
		return "super_read_only=ON"
	}
	return "read_only=ON"
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
