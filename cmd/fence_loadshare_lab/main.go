// Command fence_loadshare_lab is the loadshare lab's fence agent (the
// fence-agents API, run by pacemaker-fenced inside the lab's nodes) and,
// as `fence_loadshare_lab serve STATEDIR`, the lab's power server on the
// host. Lab use only; see package test/lab.
package main

import (
	"os"

	"github.com/loadshare/loadshare/test/lab"
)

func main() {
	os.Exit(lab.FenceAgent(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
