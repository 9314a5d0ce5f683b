package ocf

import (
	"context"
	"errors"
	"fmt"
)

// ExitCode is an OCF exit status. Agents never return one: they return
// errors, and Code maps those here, in one place.
type ExitCode int

// The OCF exit codes (OCF Resource Agent API, "Return codes").
const (
	ExitSuccess          ExitCode = 0 // OCF_SUCCESS: action done; monitor: running
	ExitErrGeneric       ExitCode = 1 // OCF_ERR_GENERIC: failed, may work again here (soft error)
	ExitErrArgs          ExitCode = 2 // OCF_ERR_ARGS: configuration fine in general, not on this node (hard error here)
	ExitErrUnimplemented ExitCode = 3 // OCF_ERR_UNIMPLEMENTED: action not implemented by this agent
	ExitErrPerm          ExitCode = 4 // OCF_ERR_PERM: insufficient privileges
	ExitErrInstalled     ExitCode = 5 // OCF_ERR_INSTALLED: a binary or kernel feature is missing on this node
	ExitErrConfigured    ExitCode = 6 // OCF_ERR_CONFIGURED: configuration wrong everywhere (fatal, cluster-wide)
	ExitNotRunning       ExitCode = 7 // OCF_NOT_RUNNING: cleanly stopped (monitor/probe answer, not a failure)
	ExitRunningPromoted  ExitCode = 8 // OCF_RUNNING_PROMOTED: monitor: running in the promoted role
	ExitFailedPromoted   ExitCode = 9 // OCF_FAILED_PROMOTED: monitor: failed in the promoted role
)

var codeNames = map[ExitCode]string{
	ExitSuccess:          "OCF_SUCCESS",
	ExitErrGeneric:       "OCF_ERR_GENERIC",
	ExitErrArgs:          "OCF_ERR_ARGS",
	ExitErrUnimplemented: "OCF_ERR_UNIMPLEMENTED",
	ExitErrPerm:          "OCF_ERR_PERM",
	ExitErrInstalled:     "OCF_ERR_INSTALLED",
	ExitErrConfigured:    "OCF_ERR_CONFIGURED",
	ExitNotRunning:       "OCF_NOT_RUNNING",
	ExitRunningPromoted:  "OCF_RUNNING_PROMOTED",
	ExitFailedPromoted:   "OCF_FAILED_PROMOTED",
}

// String returns the code's OCF name, e.g. OCF_NOT_RUNNING.
func (c ExitCode) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("OCF_EXIT_%d", int(c))
}

// Sentinel errors for the outcomes an agent distinguishes. Wrap them with
// context (fmt.Errorf("...: %w", ocf.ErrInstalled)); Code finds them with
// errors.Is. Any other error is OCF_ERR_GENERIC.
var (
	// ErrNotRunning: the resource is cleanly stopped. From monitor it is the
	// normal answer for a stopped resource; from stop it counts as success.
	ErrNotRunning = errors.New("not running") // OCF_NOT_RUNNING (7)
	// ErrInstalled: a binary, module or kernel feature is missing on this node.
	ErrInstalled = errors.New("not installed") // OCF_ERR_INSTALLED (5)
	// ErrConfigured: the configuration is wrong on every node, e.g. clone
	// meta attributes the agent cannot work with. Prefer *ParamError for a
	// single bad parameter.
	ErrConfigured = errors.New("not configured") // OCF_ERR_CONFIGURED (6)
	// ErrArgs: the configuration cannot work on this node only.
	ErrArgs = errors.New("invalid on this node") // OCF_ERR_ARGS (2)
	// ErrPerm: insufficient privileges (e.g. not root, no CAP_NET_ADMIN).
	ErrPerm = errors.New("insufficient privileges") // OCF_ERR_PERM (4)
	// ErrUnimplemented: the action is not implemented.
	ErrUnimplemented = errors.New("unimplemented") // OCF_ERR_UNIMPLEMENTED (3)
	// ErrRunningPromoted: monitor of a promotable clone: running, promoted.
	ErrRunningPromoted = errors.New("running promoted") // OCF_RUNNING_PROMOTED (8)
	// ErrFailedPromoted: monitor of a promotable clone: failed while promoted.
	ErrFailedPromoted = errors.New("failed promoted") // OCF_FAILED_PROMOTED (9)
)

// ParamError is a bad parameter: OCF_ERR_CONFIGURED (6), or OCF_ERR_ARGS (2)
// when the value is fine in general but not on this node (Local; e.g. the
// nic it names does not exist here).
type ParamError struct {
	Param, Value, Reason string
	Local                bool
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("parameter %s=%q: %s", e.Param, e.Value, e.Reason)
}

// Code maps an action's error to its OCF exit code. It is the only place
// where errors become exit codes.
func Code(err error) ExitCode {
	var pe *ParamError
	switch {
	case err == nil:
		return ExitSuccess
	case errors.As(err, &pe):
		if pe.Local {
			return ExitErrArgs
		}
		return ExitErrConfigured
	case errors.Is(err, ErrNotRunning):
		return ExitNotRunning
	case errors.Is(err, ErrInstalled):
		return ExitErrInstalled
	case errors.Is(err, ErrConfigured):
		return ExitErrConfigured
	case errors.Is(err, ErrArgs):
		return ExitErrArgs
	case errors.Is(err, ErrPerm):
		return ExitErrPerm
	case errors.Is(err, ErrUnimplemented):
		return ExitErrUnimplemented
	case errors.Is(err, ErrRunningPromoted):
		return ExitRunningPromoted
	case errors.Is(err, ErrFailedPromoted):
		return ExitFailedPromoted
	case errors.Is(err, context.DeadlineExceeded):
		// Out of time: a soft failure, Pacemaker may retry here.
		return ExitErrGeneric
	default:
		return ExitErrGeneric
	}
}
