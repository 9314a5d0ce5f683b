package mysqlmonitor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/crm/crmtest"

	"github.com/loadshare/loadshare/test/mariadbtest"
)

// TestAttributeAgentsOCFTester runs Debian's ocf-tester against the built
// mysql_monitor (on a Galera node, with the Galera rules required) and
// server_load with real parameters and a real MariaDB.
// attrd is the stand-in attrd_updater (no Pacemaker here), passed in the
// environment ocf-tester hands down to the agent.
func TestAttributeAgentsOCFTester(t *testing.T) {
	tester, err := exec.LookPath("ocf-tester")
	if err != nil {
		t.Skip("ocf-tester not installed (Debian package resource-agents)")
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils); ocf-tester needs it")
	}
	dir := t.TempDir()
	attrd := crmtest.FakeAttrdUpdater(t, dir)
	for _, c := range []struct {
		agent, attr string
		opts        mariadbtest.Options
		params      []string
	}{
		{"mysql_monitor", attrWritable, mariadbtest.Options{Galera: true}, []string{"-o", "galera=true", "-o", "donor_ok=false", "-o", "max_lag=10", "-o", "publish_lag=true"}},
		{"server_load", crm.AttrLoad, mariadbtest.Options{}, nil},
	} {
		t.Run(c.agent, func(t *testing.T) {
			srv := mariadbtest.Start(t, c.opts)
			srv.CreateUser(t, "mon", "pw", "SLAVE MONITOR ON *.*")
			args := append([]string{"-n", c.agent + "_t", "-o", "defaults_file=" + srv.DefaultsFile("mon", "pw")}, c.params...)
			cmd := exec.Command(tester, append(args, agenttest.Path(t, c.agent))...)
			cmd.Env = append(os.Environ(), attrs.EnvAttrd+"="+attrd, attrs.EnvRunDir+"="+filepath.Join(dir, "run"))
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("passed all tests")) {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
			if v := crmtest.ReadAttr(t, dir, c.attr); v != "" {
				t.Errorf("after ocf-tester (ends stopped): %s=%q, want deleted", c.attr, v)
			}
		})
	}
}
