// Package metrics exports the kernel's side of this node's VIPs as
// Prometheus metrics: the buckets owned, per-bucket counters of accepted
// traffic, the frames dropped for other nodes' buckets, tracked
// connections, the address, the cluster MAC, the drain, and the flood
// check's probes received. It reads on every scrape, through package
// clusterip (Status, Counters, Dropped, FloodChecks, FloodHeard),
// and needs what those need (CAP_NET_ADMIN). Pacemaker's side is package
// crm/metrics.
package metrics
