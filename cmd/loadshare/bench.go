package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/loadshare/loadshare/test/dpbench"
)

func init() {
	register(command{
		name:    "bench",
		summary: "measure the shared VIP against direct, client-side spreading and haproxy in a namespace lab",
		run:     runBench,
	})
}

const benchUsage = `usage: loadshare bench [flags]

Builds a lab of network namespaces on this host (three servers and a client on a
bridge, names PREFIXs1..s3, PREFIXc, PREFIXsw; 10.202.0.0/24), programs shared VIPs
with 16 and 1024 buckets, starts haproxy (and MariaDB for --protocol mariadb), makes
short connections from the client in interleaved rounds, prints p50/p99 latency,
rate and spread per variant with the issue's target ratios, and removes the lab
(also on Ctrl-C). Missed targets are printed, not failed on: exit 0. Exit 1 when
a prerequisite is missing (root, haproxy, mariadbd) or the harness is broken
(more than 1% failed connections).`

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", benchUsage, stderr)
	protocol := fs.String("protocol", "line", "line (one-line echo server), mariadb (log in, SELECT 1, quit) or all")
	rounds := fs.Int("rounds", 12, "rounds of every variant, each round in a rotated order")
	conns := fs.Int("conns", 0, "connections per variant and round (0: line 1250, mariadb 250)")
	workers := fs.Int("workers", 4, "concurrent client connections")
	prefix := fs.String("netns-prefix", dpbench.DefaultPrefix, "name prefix of the lab's network namespaces")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	o := dpbench.Options{Rounds: *rounds, Conns: *conns, Workers: *workers, Prefix: *prefix, Log: stderr}
	switch *protocol {
	case "line", "mariadb":
		o.Protocols = []string{*protocol}
	case "all":
		o.Protocols = []string{"line", "mariadb"}
	default:
		return fmt.Errorf("--protocol %q: want line, mariadb or all: %w", *protocol, errUsage)
	}
	switch {
	case *rounds < 1 || *rounds > 1000:
		return fmt.Errorf("--rounds %d: want 1..1000: %w", *rounds, errUsage)
	case *conns < 0 || *conns > 100000:
		return fmt.Errorf("--conns %d: want 0..100000: %w", *conns, errUsage)
	case *workers < 1 || *workers > 64:
		return fmt.Errorf("--workers %d: want 1..64: %w", *workers, errUsage)
	case *prefix == "" || len(*prefix) > 8 || strings.ContainsAny(*prefix, "/ "):
		return fmt.Errorf("--netns-prefix %q: want 1..8 characters, no slash or space: %w", *prefix, errUsage)
	}
	if err := dpbench.CheckPrerequisites(o); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := dpbench.Run(ctx, o, stdout)
	if errors.Is(err, dpbench.ErrBroken) {
		return fmt.Errorf("%w (the figures above are not figures)", err)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted; lab removed: %w", err)
	}
	return err
}
