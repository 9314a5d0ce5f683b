// Command mysql_monitor is the OCF resource agent ocf:loadshare:mysql_monitor:
// the writable_monit node attribute (package agents/mysqlmonitor). make install puts it in
// /usr/lib/ocf/resource.d/loadshare/.
//
// Each agent is a binary of its own, not a link to the CLI: Pacemaker
// starts one process per action, and a binary that links only what its
// agent needs starts faster (package initialisation and page faults of the
// whole CLI cost a monitor about a third of its time).
package main

import (
	"os"

	_ "github.com/loadshare/loadshare/agents/mysqlmonitor" // registers mysql_monitor
	"github.com/loadshare/loadshare/agents/ocf"
)

func main() { os.Exit(ocf.Main("mysql_monitor", os.Args[1:], os.Environ())) }
