package serverload

import (
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// TestMetaDataDTD validates server_load's meta-data against Debian's
// ra-api-1.dtd.
func TestMetaDataDTD(t *testing.T) { agenttest.CheckMetaData(t, "server_load") }

// TestWithPacemakerTools: crmsh reads server_load as installed and lists
// every parameter.
func TestWithPacemakerTools(t *testing.T) {
	agenttest.CheckWithPacemakerTools(t, "lsag-pcmk3", "server_load")
}
