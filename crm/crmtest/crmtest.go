// Package crmtest holds stand-ins for Pacemaker's command-line tools, for
// tests of code that runs them. They fake the transport (the command), not
// the caller's logic; the real tools are exercised by the cluster lab.
package crmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// FakeAttrdUpdater writes dir/attrd_updater, a shell script that behaves
// like attrd_updater for -n/-U/-B/-d/-N/-Q/-D against files dir/attr.NAME,
// logs each argv to dir/argv, and fails as attrd does while dir/down
// exists. Outputs and exit codes are those of Pacemaker 2.1.5's
// attrd_updater, as seen on a one-node lab cluster: -Q of an unknown
// attribute exits 78 saying "attribute does not exist"; after -D, -Q prints
// value="" and exits 0. It returns the script's path.
func FakeAttrdUpdater(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "attrd_updater")
	script := `#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/argv"
[ -e "$dir/down" ] && { echo "attrd_updater: Could not connect to attrd: Connection refused" >&2; exit 102; }
name= cmd= val=
while [ $# -gt 0 ]; do
  case "$1" in
    -n) name=$2; shift;;
    -U|-B) cmd=U; val=$2; shift;;
    -d|-N) shift;;
    -Q) cmd=Q;;
    -R|--refresh) exit 0;;
    -D) cmd=D;;
  esac
  shift
done
case $cmd in
  U) printf %s "$val" > "$dir/attr.$name";;
  D) : > "$dir/attr.$name";;
  Q) [ -e "$dir/attr.$name" ] || { echo "attrd_updater: Could not query value of $name: attribute does not exist" >&2; exit 78; }
     printf 'name="%s" host="n1" value="%s"\n' "$name" "$(cat "$dir/attr.$name")";;
esac
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// ReadAttr is attribute name as FakeAttrdUpdater in dir holds it: its value,
// "" once deleted, "<unset>" when never written.
func ReadAttr(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "attr."+name))
	if errors.Is(err, os.ErrNotExist) {
		return "<unset>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Attrs is attrd in memory (a crm.Attrs): the transport faked, so tests see
// exactly which calls the code under test made.
type Attrs struct {
	Err error // returned by Set and Delete when set

	mu    sync.Mutex
	vals  map[string]string
	calls []string
}

func (f *Attrs) Set(_ context.Context, name, value string, delay time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("set %s=%s delay=%s", name, value, delay))
	if f.Err != nil {
		return f.Err
	}
	if f.vals == nil {
		f.vals = map[string]string{}
	}
	f.vals[name] = value
	return nil
}

func (f *Attrs) Get(_ context.Context, name string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vals[name]
	return v, ok && v != "", nil
}

func (f *Attrs) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "delete "+name)
	if f.Err != nil {
		return f.Err
	}
	delete(f.vals, name)
	return nil
}

func (f *Attrs) Refresh(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "refresh")
	return f.Err
}

// Value is attribute name's value ("" when unset or deleted).
func (f *Attrs) Value(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vals[name]
}

// TakeCalls returns the calls since the last TakeCalls.
func (f *Attrs) TakeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}
