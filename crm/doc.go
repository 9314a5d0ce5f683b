// Package crm talks to Pacemaker: node attributes through attrd_updater
// (attrd.go), and the cluster's status and configuration through the crm
// tools. It needs Pacemaker's command-line tools and, for live calls, a
// running cluster node; it does not touch the kernel or MySQL.
package crm
