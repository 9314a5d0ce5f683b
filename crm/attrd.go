package crm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Attrs reads and writes one node's transient attributes in pacemaker-attrd.
// Agents take this interface, so their tests can use a fake; AttrdUpdater is
// the real one.
type Attrs interface {
	// Set writes value. With delay > 0 attrd waits that long (dampening) for
	// further changes before writing to the CIB, so a flapping value does not
	// make Pacemaker recompute placement on every change.
	Set(ctx context.Context, name, value string, delay time.Duration) error
	// Get returns the value attrd holds; ok is false when the attribute is
	// not set (never set, or deleted).
	Get(ctx context.Context, name string) (value string, ok bool, err error)
	// Delete removes the attribute's value (attrd keeps the name, empty).
	Delete(ctx context.Context, name string) error
	// Refresh makes attrd write every value it holds to the CIB again:
	// after the DC erased a node's transient attributes from the CIB (it
	// does when that node's controller is lost), attrd still holds them
	// and writes none back on its own, since none changed.
	Refresh(ctx context.Context) error
}

// AttrdUpdater is Attrs through Pacemaker's attrd_updater command. It needs a
// running pacemaker-attrd on the node (attrd_updater exits 102 without).
type AttrdUpdater struct {
	Path string // the command; "" means attrd_updater from PATH
	Node string // -N: another node's attributes; "" means the local node
}

var _ Attrs = (*AttrdUpdater)(nil)

// Set writes value, with dampening when delay > 0.
// Equivalent to: attrd_updater -n NAME -B VALUE -d DELAY (-U VALUE without delay).
// -B, not -U: attrd_updater 2.1 ignores -d with -U, so -U never sets dampening.
func (a *AttrdUpdater) Set(ctx context.Context, name, value string, delay time.Duration) error {
	args := []string{"-n", name}
	if delay > 0 {
		args = append(args, "-B", value, "-d", formatDelay(delay))
	} else {
		args = append(args, "-U", value)
	}
	_, err := a.run(ctx, args...)
	return err
}

// Get returns the attribute's value on the node.
// Equivalent to: attrd_updater -n NAME -Q
func (a *AttrdUpdater) Get(ctx context.Context, name string) (string, bool, error) {
	out, err := a.run(ctx, "-n", name, "-Q")
	var ae *ToolError
	if errors.As(err, &ae) && ae.IsNotExist() {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	v, ok := parseQuery(out)
	if !ok {
		return "", false, fmt.Errorf("running %s: unexpected output %q", strings.Join(a.argv("-n", name, "-Q"), " "), trimLines(out, 6))
	}
	return v, v != "", nil
}

// Delete removes the attribute's value.
// Equivalent to: attrd_updater -n NAME -D
func (a *AttrdUpdater) Delete(ctx context.Context, name string) error {
	_, err := a.run(ctx, "-n", name, "-D")
	return err
}

// Refresh makes attrd resend every value it holds to the CIB.
// Equivalent to: attrd_updater --refresh
func (a *AttrdUpdater) Refresh(ctx context.Context) error {
	_, err := runTool(ctx, nil, a.argvNoNode("--refresh")...)
	return err
}

func (a *AttrdUpdater) argvNoNode(args ...string) []string {
	path := a.Path
	if path == "" {
		path = "attrd_updater"
	}
	return append([]string{path}, args...)
}

func (a *AttrdUpdater) argv(args ...string) []string {
	argv := a.argvNoNode(args...)
	if a.Node != "" {
		argv = append(argv, "-N", a.Node)
	}
	return argv
}

func (a *AttrdUpdater) run(ctx context.Context, args ...string) ([]byte, error) {
	return runTool(ctx, nil, a.argv(args...)...)
}

// queryLine matches attrd_updater -Q's text output, a line of key="value"
// pairs (Pacemaker 2.1: name="N" host="H" value="V"), and captures the value.
var queryLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^.*\bname="[^"]*".*\bvalue="((?:[^"\\]|\\.)*)"`)
})

// parseQuery returns the value of the first line of attrd_updater -Q output.
func parseQuery(out []byte) (string, bool) {
	m := queryLine().FindSubmatch(out)
	if m == nil {
		return "", false
	}
	v := string(m[1])
	if strings.Contains(v, `\`) {
		if u, err := strconv.Unquote(`"` + v + `"`); err == nil {
			v = u
		}
	}
	return v, true
}

// formatDelay renders a dampening delay as Pacemaker parses it: "5s", "1500ms".
func formatDelay(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// queryHost matches one line of attrd_updater -Q -A: host and value.
var queryHost = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^.*\bhost="([^"]*)".*\bvalue="((?:[^"\\]|\\.)*)"`)
})

// GetAll returns the attribute's value on every node attrd holds one for
// (an empty value, deleted, is left out). Run by a resource agent,
// attrd_updater 2.1 takes OCF_RESKEY_CRM_meta_on_node as the node to
// query and ignores -A (measured in the lab: only the local value came
// back), so that variable is kept from it.
// Equivalent to: attrd_updater -n NAME -Q -A
func (a *AttrdUpdater) GetAll(ctx context.Context, name string) (map[string]string, error) {
	b := *a
	b.Node = ""
	out, err := runTool(ctx, []string{"OCF_RESKEY_CRM_meta_on_node"}, b.argv("-n", name, "-Q", "-A")...)
	var ae *ToolError
	if errors.As(err, &ae) && ae.IsNotExist() {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseQueryAll(out), nil
}

func parseQueryAll(out []byte) map[string]string {
	vals := map[string]string{}
	for _, m := range queryHost().FindAllSubmatch(out, -1) {
		v := string(m[2])
		if strings.Contains(v, `\`) {
			if u, err := strconv.Unquote(`"` + v + `"`); err == nil {
				v = u
			}
		}
		if v != "" {
			vals[string(m[1])] = v
		}
	}
	return vals
}
