package clusterip

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// nodeSysctls are the sysctls every node of an IPv4 VIP needs, written
// through /proc/sys/net, which is per network namespace.
//
// arp_announce=2 on all and on the link: when the node sends its own ARP
// requests (to resolve a client) it must use its own address as the sender,
// never the VIP; otherwise clients learn "VIP is at <this node's MAC>" and
// send every connection to that one node (a third of the lab's connections
// then time out on the other nodes' buckets).
//
// nf_conntrack_tcp_loose is read, not set: the bucket chain accepts only
// established/related packets and SYNs of owned buckets, so with loose=1 a
// mid-stream packet a node does not track becomes ct state new and is
// dropped by the SYN check, and with loose=0 it is invalid and dropped too;
// either way the non-owner stays silent (no RST). Status reports it.
func nodeSysctls(v VIP) map[string]string {
	if !v.Addr.Is4() {
		return nil
	}
	return map[string]string{
		"net/ipv4/conf/all/arp_announce":            "2",
		"net/ipv4/conf/" + v.Link + "/arp_announce": "2",
	}
}

// ensureSysctls writes the node sysctls inside the plane's namespace.
func (p *Plane) ensureSysctls(v VIP) error {
	want := nodeSysctls(v)
	if len(want) == 0 {
		return nil
	}
	return p.inNS(func() error {
		for k, val := range want {
			path := "/proc/sys/" + k
			cur, err := os.ReadFile(path)
			if err == nil && strings.TrimSpace(string(cur)) == val {
				continue
			}
			if err := os.WriteFile(path, []byte(val), 0o644); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return &FieldError{"link", v.Link, "no such interface on this node"}
				}
				return fmt.Errorf("set sysctl %s=%s: %w", strings.ReplaceAll(k, "/", "."), val, err)
			}
		}
		return nil
	})
}

// TCPLoose reads net.netfilter.nf_conntrack_tcp_loose in the plane's
// namespace (-1 when conntrack is not loaded yet).
func (p *Plane) TCPLoose() (int, error) {
	n := -1
	err := p.inNS(func() error {
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = fmt.Sscan(string(b), &n)
		return err
	})
	return n, err
}
