// Command loadshare is the operators' CLI: the crm configuration, the
// attribute and bucket view, the lab and the benchmarks. The OCF agents
// are binaries of their own (cmd/clustervip, cmd/mysql_monitor,
// cmd/server_load).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/loadshare/loadshare/agents/ocf"
)

// command is one `loadshare` subcommand. Each lives in a file of its own and
// registers itself in init(), so adding one touches no other file.
type command struct {
	name    string
	summary string
	// subcommands whose flags are not those of the command itself (crm
	// check, lab up, …): loadshare man documents each.
	subcommands []string
	run         func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("loadshare: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error that the usage text explains; exit status 2.
var errUsage = errors.New("usage")

// errReported marks a failure the command has already shown in its own
// output (e.g. status without Pacemaker): exit status 1, printed once.
var errReported = errors.New("reported")

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(stdout, "loadshare", ocf.Version())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "loadshare: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errReported):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "loadshare %s: %v\n", c.name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "loadshare %s: %v\n", c.name, err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: loadshare COMMAND [flags]")
	fmt.Fprintln(w, "       loadshare --version")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nThe OCF resource agents are separate binaries (clustervip, mysql_monitor, server_load),\ninstalled in /usr/lib/ocf/resource.d/loadshare by make install.")
}
