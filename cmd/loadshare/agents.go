package main

import (
	"os"

	_ "github.com/loadshare/loadshare/agents" // registers clustervip, mysql_monitor, server_load
	"github.com/loadshare/loadshare/agents/ocf"
)

// Called by an agent's name (a link in /usr/lib/ocf/resource.d/loadshare/),
// the binary is that OCF resource agent.
func init() {
	agentMain = func(name string, args []string) (int, bool) {
		if !ocf.Registered(name) {
			return 0, false
		}
		return ocf.Main(name, args, os.Environ()), true
	}
}
