// Command server_load is the OCF resource agent ocf:loadshare:server_load:
// the server_load node attribute and the bucket placer (package agents/serverload). make install puts it in
// /usr/lib/ocf/resource.d/loadshare/.
//
// Each agent is a binary of its own, not a link to the CLI: Pacemaker
// starts one process per action, and a binary that links only what its
// agent needs starts faster (package initialisation and page faults of the
// whole CLI cost a monitor about a third of its time).
package main

import (
	"os"

	_ "github.com/loadshare/loadshare/agents/serverload" // registers server_load
	"github.com/loadshare/loadshare/agents/ocf"
)

func main() { os.Exit(ocf.Main("server_load", os.Args[1:], os.Environ())) }
