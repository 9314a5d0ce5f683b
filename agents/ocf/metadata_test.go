package ocf_test

import (
	"testing"

	"github.com/loadshare/loadshare/agents/agenttest"
	"github.com/loadshare/loadshare/agents/ocf"
)

// TestMetaDataDTD validates the meta-data of every agent registered in this
// test binary (ocf_test.go's) against Debian's ra-api-1.dtd, as ocf-tester
// does. An external test: agenttest, which holds the check, imports ocf.
func TestMetaDataDTD(t *testing.T) {
	agenttest.CheckMetaData(t, ocf.Names()...)
}
