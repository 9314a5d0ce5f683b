package clusterip

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The link must accept frames sent to the cluster MAC. A multicast MAC is
// joined on the link's multicast list, a unicast one on its secondary
// unicast list; both through the "self" FDB of the device, which for
// ordinary NICs (no ndo_fdb_add) is the kernel's default handler
// calling dev_mc_add_excl / dev_uc_add_excl. Equivalent to:
// bridge fdb add MAC dev LINK self permanent (the netlink form of
// `ip maddr add MAC dev LINK`, SIOCADDMULTI).

func macNeigh(l netlink.Link, v VIP) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		Family:       unix.AF_BRIDGE,
		Flags:        netlink.NTF_SELF,
		State:        netlink.NUD_PERMANENT,
		HardwareAddr: v.ClusterMAC(),
	}
}

// macJoined reports whether the link's address lists hold the cluster MAC.
func macJoined(h *netlink.Handle, l netlink.Link, v VIP) (bool, error) {
	ns, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return false, err
	}
	mac := v.ClusterMAC()
	for _, n := range ns {
		if n.LinkIndex == l.Attrs().Index && bytes.Equal(n.HardwareAddr, mac) {
			return true, nil
		}
	}
	return false, nil
}

// joinMAC adds the cluster MAC to the link; present is fine.
func joinMAC(h *netlink.Handle, l netlink.Link, v VIP) error {
	if ok, err := macJoined(h, l, v); err != nil || ok {
		return err
	}
	if err := h.NeighAdd(macNeigh(l, v)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("join cluster MAC %s on %s: %w", v.ClusterMAC(), v.Link, err)
	}
	return nil
}

// leaveMAC removes the cluster MAC from the link; absent is fine.
func leaveMAC(h *netlink.Handle, l netlink.Link, v VIP) error {
	if ok, err := macJoined(h, l, v); err != nil || !ok {
		return err
	}
	if err := h.NeighDel(macNeigh(l, v)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("leave cluster MAC %s on %s: %w", v.ClusterMAC(), v.Link, err)
	}
	return nil
}
