// Package metrics exports what Pacemaker knows of this node as Prometheus
// metrics: its attributes (writable_monit, readable_monit, server_load,
// replication_lag), each VIP's bucket count, target and running buckets
// here and its flood check's verdict (flood_NAME), and what the placer rounds on this node did. The collectors read
// on every scrape (crm_mon, through package crm) and keep no state.
// The kernel's side of a VIP is package clusterip/metrics.
package metrics
