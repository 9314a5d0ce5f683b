package clusterip

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/loadshare/loadshare/test/nstest"
)

// lab is three servers and a client on one switch, all in namespaces.
type lab struct {
	sw      *nstest.Switch
	servers []*nstest.NS
	client  *nstest.NS
	planes  []*Plane
	names   []string
}

const (
	labPort   = 9000
	labClient = "10.201.0.50"
)

var (
	vip4 = netip.MustParseAddr("10.201.0.100")
	vip6 = netip.MustParseAddr("fd00:201::100")
	cli6 = netip.MustParseAddr("fd00:201::50")
)

// newLab builds the namespaces (prefix lsdp-, tag keeps tests apart) and
// starts a server in each server namespace answering its name.
func newLab(t *testing.T, tag string, be Backend) *lab {
	t.Helper()
	nstest.SkipShort(t, "namespace lab test")
	l := &lab{sw: nstest.NewSwitch(t, "lsdp-"+tag+"sw")}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("lsdp-%ss%d", tag, i)
		ns := nstest.New(t, name)
		l.sw.Plug(t, ns, "eth0", net.HardwareAddr{2, 0, 0, 0, 1, byte(i)},
			netip.MustParsePrefix(fmt.Sprintf("10.201.0.%d/16", 10+i)),
			netip.MustParsePrefix(fmt.Sprintf("fd00:201::%d/64", 10+i)))
		l.servers = append(l.servers, ns)
		l.names = append(l.names, fmt.Sprintf("s%d", i))
		p, err := New(WithNetNS(int(ns.Handle)), WithBackend(be), WithRunDir(t.TempDir()), WithDrainGrace(2*time.Second))
		if err != nil {
			t.Fatalf("New in %s: %v", name, err)
		}
		l.planes = append(l.planes, p)
		serve(t, ns, fmt.Sprintf("s%d", i))
	}
	l.client = nstest.New(t, "lsdp-"+tag+"c")
	l.sw.Plug(t, l.client, "eth0", net.HardwareAddr{2, 0, 0, 0, 1, 0x50},
		netip.MustParsePrefix(labClient+"/16"), netip.MustParsePrefix(cli6.String()+"/64"))
	return l
}

// serve listens on [::]:labPort inside ns (nstest.ServeName): each
// connection gets "NAME\n" right away, then one per line received.
func serve(t *testing.T, ns *nstest.NS, name string) { nstest.ServeName(t, ns, labPort, name) }

// dialFrom connects from src (in the client namespace) to dst.
func (l *lab) dialFrom(src, dst netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	return nstest.Dial(l.client, src, dst, timeout)
}

// ask connects from src to dst, reads the greeting and closes: which server
// answered ("" and an error when none did).
func (l *lab) ask(src, dst netip.AddrPort) (string, error) { return nstest.Ask(l.client, src, dst) }

// nftJSON lists the ruleset of ns with the independent reader (nft -j;
// plain `nft list` crashes on typeof-jhash sets in nft 1.0.6).
func nftJSON(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed: cannot check the ruleset independently")
	}
	out, err := ns.Command("nft", "-j", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: nft -j list ruleset: %v\n%s", ns.Name, err, out)
	}
	return string(out)
}
