package clustervip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
)

// drainAction is the agent's internal action (ocf.Internal, never in
// meta-data) that waits out the drain of the node's last bucket of the
// VIP after its stop has returned: Pacemaker starts a bucket on its new
// node only once the stop returns, so a stop that waited the drain out
// itself left that bucket answered by no node for up to drain_grace.
const drainAction = "drain"

// drainMarkerEnv names the descriptor the drain process inherits the
// VIP's drain marker on; drainMarkerFD is that descriptor: the first of
// exec.Cmd.ExtraFiles.
const (
	drainMarkerEnv = "LOADSHARE_DRAIN_MARKER_FD"
	drainMarkerFD  = 3
)

func (a *clusterVIP) InternalAction(name string) func(context.Context, ocf.Params) error {
	if name == drainAction {
		return a.drain
	}
	return nil
}

// startDrain starts the drain process: this binary's drain action with
// the stop's parameters, in a session of its own (out of the executor's
// process group, which a timed-out operation has killed), stdin, stdout
// and stderr on /dev/null (the executor reads the stop's until they
// close), the drain marker inherited as drainMarkerFD, so the drain is
// marked with no gap; its lines go to the log file and syslog the stop's
// environment names. Without the stop's timeout: the process waits out
// all of drain_grace. It is not waited for; it returns the process's pid.
func startDrain(d *clusterip.Drain) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "OCF_RESKEY_CRM_meta_timeout=") || strings.HasPrefix(kv, drainMarkerEnv+"=")
	})
	cmd := exec.Command(exe, drainAction)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(env, fmt.Sprintf("%s=%d", drainMarkerEnv, drainMarkerFD))
	cmd.ExtraFiles = []*os.File{d.Marker()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}

// drain is the drain process's action: it adopts the drain the stop
// began (the marker it inherited) and waits it out with the whole
// drain_grace, then everything of the VIP goes unless a bucket was owned
// again meanwhile.
func (a *clusterVIP) drain(ctx context.Context, p ocf.Params) error {
	if os.Getenv(drainMarkerEnv) != fmt.Sprint(drainMarkerFD) {
		return fmt.Errorf("action %s is run by the agent's own stop, with the VIP's drain marker on descriptor %d (%s): %w",
			drainAction, drainMarkerFD, drainMarkerEnv, ocf.ErrUnimplemented)
	}
	marker := os.NewFile(drainMarkerFD, "drain marker")
	// The backend the VIP's objects record: no probe commit, which would
	// move the ruleset generation the monitors' caches are keyed by.
	pl, err := clusterip.New(clusterip.WithBackend(a.backend), clusterip.WithRecordedBackend(a.vip),
		clusterip.WithDrainGrace(a.grace))
	if err != nil {
		marker.Close()
		return kernelErr(err)
	}
	d, err := pl.AdoptDrain(a.vip, marker)
	if err != nil {
		marker.Close()
		return kernelErr(err)
	}
	return drained(p, d.Wait())
}

// drained maps the end of a drain to the action's result: connections
// cut by the grace are a warning, not a failure (the release is complete).
func drained(p ocf.Params, err error) error {
	var de *clusterip.DrainError
	switch {
	case errors.Is(err, clusterip.ErrNotEnsured):
		return nil
	case errors.As(err, &de):
		p.Log.Warn("released the last bucket with connections still open", "err", err)
		return nil
	}
	return kernelErr(err)
}
