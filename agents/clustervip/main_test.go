package clustervip

import (
	"strings"
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// TestMetaDataDTD validates clustervip's meta-data against Debian's
// ra-api-1.dtd.
func TestMetaDataDTD(t *testing.T) { agenttest.CheckMetaData(t, "clustervip") }

// TestWithPacemakerTools: crmsh reads clustervip as installed, and
// crm_resource --validate runs its validate-all through Pacemaker's own
// executor code, accepting a globally-unique clone and refusing one that
// is not, with the fix in the message.
func TestWithPacemakerTools(t *testing.T) {
	inMountNS := agenttest.CheckWithPacemakerTools(t, "lsag-pcmk", "clustervip")
	out, err := inMountNS("crm_resource --validate --class ocf --provider loadshare --agent clustervip " +
		"--option ip=10.203.0.120 --option CRM_meta_clone=1 --option CRM_meta_clone_max=4 --option CRM_meta_globally_unique=true")
	if err != nil || !strings.Contains(out, "returned 0 (ok)") {
		t.Errorf("crm_resource --validate clustervip: %v\n%s", err, out)
	}
	out, err = inMountNS("crm_resource --validate --class ocf --provider loadshare --agent clustervip " +
		"--option ip=10.203.0.120 --option CRM_meta_clone=1 --option CRM_meta_clone_max=4 --option CRM_meta_globally_unique=false")
	if err == nil || !strings.Contains(out, "set meta globally-unique=true") {
		t.Errorf("crm_resource --validate of a clone that is not globally unique: want failure naming the fix, got %v\n%s", err, out)
	}
}
