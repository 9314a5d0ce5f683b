// Package crm talks to Pacemaker: node attributes through attrd_updater
// (attrd.go), the cluster's status through crm_mon (crmmon.go), the
// configuration loadshare needs (config.go, check.go), and bucket placement:
// the pure target and assignment (placement.go), the placer that writes the
// own_NAME_K attributes Pacemaker's location rules follow (placer.go), and
// crm_simulate runs of Pacemaker's scheduler (simulate.go, which also holds
// CheckAll, what `loadshare crm check` reports). Every tool runs through
// one wrapper, runTool, whose failures are a *ToolError (tool.go). Design:
// docs/placement.md. It needs Pacemaker's command-line tools and, for live
// calls, a running cluster node; it does not touch the kernel or MySQL.
package crm
