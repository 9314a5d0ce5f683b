// Command clustervip is the OCF resource agent ocf:loadshare:clustervip (package
// agents/clustervip), installed as /usr/lib/ocf/resource.d/loadshare/clustervip.
package main

import (
	"os"

	_ "github.com/loadshare/loadshare/agents/clustervip" // registers clustervip
	"github.com/loadshare/loadshare/agents/ocf"
	_ "github.com/loadshare/loadshare/agents/ocf/oneproc" // one P from the first init on
)

func main() { os.Exit(ocf.Main("clustervip", os.Args[1:], os.Environ())) }
