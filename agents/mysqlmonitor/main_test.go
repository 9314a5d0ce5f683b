package mysqlmonitor

import (
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// TestMetaDataDTD validates mysql_monitor's meta-data against Debian's
// ra-api-1.dtd.
func TestMetaDataDTD(t *testing.T) { agenttest.CheckMetaData(t, "mysql_monitor") }

// TestWithPacemakerTools: crmsh reads mysql_monitor as installed and lists
// every parameter.
func TestWithPacemakerTools(t *testing.T) {
	agenttest.CheckWithPacemakerTools(t, "lsag-pcmk2", "mysql_monitor")
}
