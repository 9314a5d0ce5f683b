package attrs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/loadshare/loadshare/agents/ocf"
)

// StatePath is the instance's state file: one per agent and instance, so
// two clones on a node never share one.
func (e Env) StatePath(p ocf.Params) string {
	name := strings.NewReplacer("/", "_", string(os.PathSeparator), "_").Replace(p.Instance)
	return filepath.Join(e.RunDir, "loadshare-"+p.Agent+"-"+name+".state")
}

// Load returns the instance's state, of the agent's own type S, or
// ocf.ErrNotRunning when there is no state file (never started, stopped,
// or the node rebooted: /run is a tmpfs).
func Load[S any](e Env, p ocf.Params) (*S, error) {
	b, err := os.ReadFile(e.StatePath(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ocf.ErrNotRunning
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st S
	if err := json.Unmarshal(b, &st); err != nil {
		// A torn or foreign file: start afresh rather than fail the monitor.
		p.Log.Warn("state file unreadable, starting afresh", "path", e.StatePath(p), "err", err)
		return new(S), nil
	}
	return &st, nil
}

// Save writes the state st (the agent's own type) atomically: a
// temporary file, then a rename.
func (e Env) Save(p ocf.Params, st any) error {
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

// Remove deletes the state file; a missing one is fine.
func (e Env) Remove(p ocf.Params) error {
	err := os.Remove(e.StatePath(p))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove state: %w", err)
	}
	return nil
}
