// Command mysql_monitor is the OCF resource agent ocf:loadshare:mysql_monitor (package
// agents/mysqlmonitor), installed as /usr/lib/ocf/resource.d/loadshare/mysql_monitor.
package main

import (
	"os"

	_ "github.com/loadshare/loadshare/agents/mysqlmonitor" // registers mysql_monitor
	"github.com/loadshare/loadshare/agents/ocf"
	_ "github.com/loadshare/loadshare/agents/ocf/oneproc" // one P from the first init on
)

func main() { os.Exit(ocf.Main("mysql_monitor", os.Args[1:], os.Environ())) }
