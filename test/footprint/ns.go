package footprint

import (
	"testing"

	"github.com/loadshare/loadshare/test/nstest"
)

// Namespace reads ns (a test's network namespace, eth0 its link) with the
// independent tools: its ruleset, addresses, multicast memberships, fdb
// self entries, arp_announce (all and eth0) and the files of runDir. It
// skips the test when a tool is missing and fails it when a read fails.
func Namespace(t testing.TB, ns *nstest.NS, runDir string) Footprint {
	t.Helper()
	if tool := Missing(); tool != "" {
		t.Skipf("%s not installed: cannot read the namespace independently", tool)
	}
	f, err := Read(func(name string, args ...string) ([]byte, error) {
		return ns.Command(name, args...).Output()
	}, Options{
		Sysctls: []string{"net.ipv4.conf.all.arp_announce", "net.ipv4.conf.eth0.arp_announce"},
		RunDir:  runDir,
	})
	if err != nil {
		t.Fatalf("%s: read footprint: %v", ns.Name, err)
	}
	return f
}
