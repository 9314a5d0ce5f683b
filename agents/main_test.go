package agents

import (
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// TestAgentsMetaDataDTD validates the meta-data of mysql_monitor and
// server_load against Debian's ra-api-1.dtd.
func TestAgentsMetaDataDTD(t *testing.T) { agenttest.CheckMetaData(t) }

// TestAgentsWithPacemakerTools: crmsh reads mysql_monitor and server_load
// as installed and lists every parameter.
func TestAgentsWithPacemakerTools(t *testing.T) { agenttest.CheckWithPacemakerTools(t, "lsag-pcmk2") }
