package oneproc_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/crm"
)

// TestInitFirst: in every agent binary, oneproc initialises before os (and
// with it everything that does I/O: the netlink and MySQL libraries...;
// GODEBUG=inittrace=1 lists package initialisations in order), so those
// run on one P already.
func TestInitFirst(t *testing.T) {
	for _, name := range crm.Agents {
		cmd := exec.Command(agenttest.Path(t, name), "usage")
		cmd.Env = []string{"GODEBUG=inittrace=1"}
		out, _ := cmd.CombinedOutput()
		var order []string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "init" {
				order = append(order, f[1])
			}
		}
		at := func(pkg string) int {
			for i, p := range order {
				if p == pkg {
					return i
				}
			}
			return -1
		}
		me, osAt := at("github.com/loadshare/loadshare/agents/ocf/oneproc"), at("os")
		if me < 0 || osAt < 0 || me > osAt {
			t.Errorf("%s: oneproc initialised at %d, os at %d (-1: not at all); want oneproc first:\n%s", name, me, osAt, strings.Join(order, " "))
		}
	}
}
