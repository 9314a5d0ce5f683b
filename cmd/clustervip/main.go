// Command clustervip is the OCF resource agent ocf:loadshare:clustervip:
// one bucket of a shared VIP (package agents/clustervip). make install puts it in
// /usr/lib/ocf/resource.d/loadshare/.
//
// Each agent is a binary of its own, not a link to the CLI: Pacemaker
// starts one process per action, and a binary that links only what its
// agent needs starts faster (package initialisation and page faults of the
// whole CLI cost a monitor about a third of its time).
package main

import (
	"os"

	_ "github.com/loadshare/loadshare/agents/clustervip" // registers clustervip
	"github.com/loadshare/loadshare/agents/ocf"
)

func main() { os.Exit(ocf.Main("clustervip", os.Args[1:], os.Environ())) }
