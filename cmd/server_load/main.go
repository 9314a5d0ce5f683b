// Command server_load is the OCF resource agent ocf:loadshare:server_load (package
// agents/serverload), installed as /usr/lib/ocf/resource.d/loadshare/server_load.
package main

import (
	"os"

	"github.com/loadshare/loadshare/agents/ocf"
	_ "github.com/loadshare/loadshare/agents/ocf/oneproc" // one P from the first init on
	_ "github.com/loadshare/loadshare/agents/serverload"  // registers server_load
)

func main() { os.Exit(ocf.Main("server_load", os.Args[1:], os.Environ())) }
