// Package clusterip programs the kernel side of a shared VIP: the cluster MAC
// and the nftables (or iptables cluster-match) rules that accept only the hash
// buckets this node owns. It needs CAP_NET_ADMIN. Which buckets to own is
// decided by Pacemaker, not here.
//
// Every node holds the address and receives every frame for it (the
// cluster MAC, answered in ARP/ND, is flooded by the switch). Per VIP and
// node, in the namespace a Plane is bound to:
//
//   - netdev ingress: daddr VIP → meta pkttype set host (frames to a
//     multicast or foreign MAC are otherwise dropped by IP or TCP); TCP
//     whose bucket is not held here (owned, or maybe still tracked after
//     a release) → drop, before the IP stack and conntrack;
//   - ip/ip6 prerouting at -150, after conntrack: established/related
//     accept (whoever tracks a connection keeps it); a SYN whose jhash
//     bucket is in the owned set accept; everything else drop — a node
//     never answers, or resets, a connection another node serves;
//   - arp output (IPv4) / ip6 output (IPv6 NS/NA): the VIP's link-layer
//     address is the cluster MAC;
//   - the address (netlink) and the cluster MAC on the link, while any
//     bucket is owned; releasing the last bucket drains first, then
//     removes every object and run file of the VIP, and restores the
//     sysctls it set that no other VIP needs;
//   - apart from the buckets, the VIP's flood check (flood.go), while it
//     runs: a netdev table counting the other nodes' probes to the cluster
//     MAC, the egress rewrite of this node's own probes, and the cluster
//     MAC joined (kept after the last bucket's release).
//
// Owning or releasing buckets is one atomic kernel transaction; concurrent
// callers on one node (one process per Pacemaker clone instance) are
// serialized by a per-VIP flock in the run directory. The kernel is the
// truth: Owned and Status read the kernel objects, never a state file.
// BucketOf computes the kernel's bucket in user space.
package clusterip
