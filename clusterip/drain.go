package clusterip

import (
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultDrainGrace is how long Release of a node's last bucket waits for
// the connections it still serves to close before removing the address.
// It stays below Pacemaker's default 20 s operation timeout.
const DefaultDrainGrace = 15 * time.Second

// TCP conntrack states that need no address any more.
const (
	tcpConntrackTimeWait = 7
	tcpConntrackClose    = 8
)

// tracked counts conntrack entries whose original destination is the VIP
// and which still carry a live connection (TCP not in TIME_WAIT/CLOSE).
// Equivalent to: conntrack -L -d VIP
func tracked(h *netlink.Handle, v VIP) (int, error) {
	fam := netlink.InetFamily(unix.AF_INET)
	if v.Addr.Is6() {
		fam = unix.AF_INET6
	}
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		return 0, err
	}
	ip := v.Addr.AsSlice()
	n := 0
	for _, f := range flows {
		if !f.Forward.DstIP.Equal(ip) {
			continue
		}
		if f.Forward.Protocol == unix.IPPROTO_TCP {
			if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok &&
				(tcp.State == tcpConntrackTimeWait || tcp.State == tcpConntrackClose) {
				continue
			}
		}
		n++
	}
	return n, nil
}
