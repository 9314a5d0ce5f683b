package attrs

import (
	"errors"
	"strconv"
	"time"

	"github.com/loadshare/loadshare/agents/ocf"
)

// ValidatesFiles reports whether Validate should check files on this node:
// for validate-all and start. A running instance whose files went away
// reports it in its attribute, and stop must always run.
func ValidatesFiles(p ocf.Params) bool {
	return p.Action == "validate-all" || p.Action == "start"
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
