package crm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// Pacemaker's exit codes (crm_exit_t) that the tools loadshare runs use.
const (
	exitNotConnected = 102 // CRM_EX_DISCONNECT: no daemon to talk to (Pacemaker not running here)
	exitNotConn      = 107 // CRM_EX_NOT_CONNECTED
	exitNoSuch       = 105 // CRM_EX_NOSUCH: no such object (attrd_updater of newer versions)
)

// ToolError is a failed Pacemaker command: argv, exit status, trimmed
// stderr (CIB contents are no secret; no password ever passes here).
type ToolError struct {
	Argv     []string
	Err      error
	Stderr   string
	ExitCode int // -1 when it did not run to an exit
}

func (e *ToolError) Error() string {
	s := fmt.Sprintf("running [%s]: %v", strings.Join(e.Argv, " "), e.Err)
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

func (e *ToolError) Unwrap() error { return e.Err }

// IsNotExist reports that attrd_updater found no such attribute. Pacemaker
// 2.1.5 (Debian 12) exits 78 for it, a code it uses for other failures too,
// and says "Could not query value of NAME: attribute does not exist", so
// the text decides; exit 105 (CRM_EX_NOSUCH) is taken too. The one place
// that matches text.
func (e *ToolError) IsNotExist() bool {
	return e.ExitCode == exitNoSuch || strings.Contains(e.Stderr, "attribute does not exist")
}

// IsNotConnected reports that the tool found no running cluster on this
// node (exit status 102 or 107, or the message saying so).
func (e *ToolError) IsNotConnected() bool {
	return e.ExitCode == exitNotConnected || e.ExitCode == exitNotConn || strings.Contains(e.Stderr, "Transport endpoint is not connected") ||
		strings.Contains(e.Stderr, "Could not connect")
}

// runTool runs a Pacemaker tool with extra environment env and returns its
// stdout. An entry of env without "=" removes that variable instead.
func runTool(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = os.Environ()
		for _, e := range env {
			if !strings.Contains(e, "=") {
				cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, e+"=") })
				continue
			}
			cmd.Env = append(cmd.Env, e)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		te := &ToolError{Argv: argv, Err: err, Stderr: trimLines(stderr.Bytes(), 6), ExitCode: -1}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			te.ExitCode = ee.ExitCode()
		}
		return stdout.Bytes(), te
	}
	return stdout.Bytes(), nil
}

// trimLines keeps the first max non-empty lines of b, trimmed.
func trimLines(b []byte, max int) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > max {
		keep = append(keep[:max], "... ("+strconv.Itoa(len(keep)-max)+" more lines)")
	}
	return strings.Join(keep, "; ")
}

// QueryCIB reads the live CIB. Equivalent to: cibadmin -Q
func QueryCIB(ctx context.Context) ([]byte, error) {
	out, err := runTool(ctx, nil, "cibadmin", "-Q")
	if err != nil {
		return nil, fmt.Errorf("no cluster on this node? use --file: %w", err)
	}
	return out, nil
}
