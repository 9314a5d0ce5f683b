// Package clusterip programs the kernel side of a shared VIP: the cluster MAC
// and the nftables (or iptables cluster-match) rules that accept only the hash
// buckets this node owns. It needs CAP_NET_ADMIN. Which buckets to own is
// decided by Pacemaker, not here.
package clusterip
