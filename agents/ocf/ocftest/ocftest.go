// Package ocftest holds checks that tests of OCF agents share.
package ocftest

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// DTD is the OCF resource-agent API DTD that Debian's resource-agents ships.
const DTD = "/usr/share/resource-agents/ra-api-1.dtd"

// ValidateMetaData validates meta-data XML against DTD with xmllint, as
// ocf-tester does; it skips t when xmllint or the DTD is not installed.
func ValidateMetaData(t testing.TB, metaData []byte) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils)")
	}
	if _, err := os.Stat(DTD); err != nil {
		t.Skipf("%s missing (Debian package resource-agents): %v", DTD, err)
	}
	cmd := exec.Command(xmllint, "--noout", "--dtdvalid", DTD, "-")
	cmd.Stdin = bytes.NewReader(metaData)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xmllint --dtdvalid %s: %v\n%s\nmeta-data:\n%s", DTD, err, msg, metaData)
	}
}
