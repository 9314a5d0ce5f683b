package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/loadshare/loadshare/test/lab"
)

func init() {
	register(command{
		name:        "lab",
		summary:     "a 3-node Pacemaker + MariaDB lab on this machine: up|down|status|exec|demo|soak|start|stop|crash|freeze|isolate|unflood|reflood",
		subcommands: []string{"up", "demo", "soak", "down", "status", "exec", "start", "stop", "crash", "freeze", "isolate", "unflood", "reflood", "load"},
		run:         runLab,
	})
}

const labUsage = `usage: loadshare lab COMMAND [flags]

  up [flags]           build the lab and start every node; waits for quorum
  down                 kill everything the lab started, remove its namespaces and state
  status               nodes, pids, memory, membership and node attributes
  exec NODE CMD...     run CMD inside a node (n1, n2, …) or in the client namespace (client)
  demo [--keep]        up, client load on the VIP, load/break/recover one node, down
  soak [--nodes N] [--faults K] [--seed S] [--keep]
                       up, then K random faults (the same for the same seed: crash, hung
                       node, partition, daemon kills, MariaDB kill/hang, read_only, load,
                       bucket moves, unflood) under client load, each checked on every kernel; a table
  start|stop|crash N   start, stop gracefully, or kill -9 one node
  freeze N             SIGSTOP every process of a node (hung, its kernel alive): it gets fenced
  isolate N            cut a node's link both ways while it runs (a partition): it gets fenced
  unflood N            the switch stops delivering the VIPs' cluster MAC frames to a node
                       (everything else still reaches it); reflood N undoes it
  load [-n N] [ADDR]   N new MariaDB connections from the client to ADDR (default: the VIP),
                       each asking which node answered (SELECT @@hostname)

The lab runs as root: nodes are network+mount+UTS namespaces PREFIXn1…,
joined by a bridge in PREFIXsw, client PREFIXc1; state in --state.
The lab fences through Pacemaker (stonith resource lab-fence, agent
fence_loadshare_lab from beside this binary; without it stonith-enabled=false).`

func runLab(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, labUsage)
		if len(args) == 0 {
			return fmt.Errorf("missing lab command: %w", errUsage)
		}
		return nil
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sub, rest := args[0], args[1:]
	fs := newFlagSet("lab "+sub, labUsage, stderr)
	cfg := lab.DefaultConfig()
	state := fs.String("state", cfg.StateDir, "state directory of the lab")
	switch sub {
	case "up", "demo", "soak":
		fs.StringVar(&cfg.Prefix, "prefix", cfg.Prefix, "network namespace name prefix")
		fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes")
		fs.IntVar(&cfg.TokenMS, "token", cfg.TokenMS, "corosync totem token, milliseconds")
		fs.BoolVar(&cfg.NoDB, "no-db", false, "do not start MariaDB on the nodes")
		fs.BoolVar(&cfg.IPv6, "ipv6", false, "dual stack: the nodes also on fd00:10:204::/64, and the service a second VIP fd00:10:204::100 (vip6)")
		fs.StringVar(&cfg.DB, "db", cfg.DB, "MariaDB topology: "+lab.DBGalera+" (one Galera cluster of every node), "+lab.DBReplication+" (n1 primary, n2.. its replicas; a writer and a reader VIP) or "+lab.DBStandalone+" (independent servers)")
		fs.StringVar(&cfg.Backend, "backend", "", `clustervip's backend for the service: nftables, xtcluster (also hash=sourceip, and the client dials from 64 addresses) or "" (the agent's default, auto)`)
		agents := fs.String("agents", "self", `directory of the agent binaries to install as OCF provider loadshare in every node ("self": beside this binary, else `+ocfDir+`; "": none)`)
		keep := fs.Bool("keep", false, "demo, soak: leave the lab up at the end")
		faults := fs.Int("faults", 10, "soak: faults in the campaign")
		seed := fs.Uint64("seed", 1, "soak: seed of the fault sequence (the same seed, the same faults)")
		svg := fs.String("svg", filepath.Join(os.TempDir(), "loadshare-demo.svg"), `demo: draw the run's timeline (buckets per node, server_load, writable_monit, the phases) into this SVG file; "" for none`)
		service := fs.Int("buckets", 12, "VIP buckets of the loadshare service (up: 0 leaves the cluster empty)")
		placement := fs.String("placement", "placer", "placer: loadshare crm configuration and placer; clone: a clone Pacemaker spreads evenly")
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		cfg.StateDir = *state
		cfg.Agents = *agents
		how, err := lab.ParsePlacement(*placement)
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		if cfg.Agents != "" {
			// The nodes get this very CLI beside the agents.
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.CLI = exe
			if cfg.Agents == "self" {
				cfg.Agents = agentsBeside(exe)
			}
		}
		if sub == "soak" {
			return labSoak(ctx, cfg, how, *service, lab.SoakOptions{Faults: *faults, Seed: *seed, Out: stdout}, *keep, log, stdout)
		}
		if sub == "demo" {
			_, err := lab.Demo(ctx, cfg, lab.DemoOptions{Keep: *keep, Out: stdout, Log: log, Buckets: *service, Placement: how, SVG: *svg})
			return err
		}
		l, err := lab.Up(ctx, cfg, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "lab up: %d nodes online with quorum after %s\n", cfg.Nodes, l.QuorumAfter.Round(time.Millisecond))
		if *service > 0 && cfg.Agents != "" {
			if err := l.ConfigureService(ctx, "n1", *service, how); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "service configured: VIP %s in %d buckets (placement %s), mysql_monitor, server_load\n", l.VIP(), *service, how)
			if cfg.DB == lab.DBReplication {
				fmt.Fprintf(stdout, "replication: VIP %s is the writer VIP (strict, on the primary n1), %s the reader VIP (readable_monit: caught-up replicas and the primary)\n", l.VIP(), l.ReaderVIP())
			} else if cfg.IPv6 {
				fmt.Fprintf(stdout, "and the IPv6 VIP %s in %d buckets (loadshare lab load %s)\n", l.VIP6(), *service, l.VIP6())
			}
		}
		fmt.Fprintf(stdout, "try: loadshare lab status; loadshare lab load; loadshare lab exec n1 crm_mon -1A; loadshare lab down\n")
		return nil
	}
	var load func(*lab.Lab) error
	if sub == "load" {
		load = labLoad(ctx, fs, stdout)
	}
	if err := fs.Parse(rest); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if sub == "down" {
		l, err := lab.Open(*state, log)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(stdout, "no lab in", *state)
			return nil
		}
		if err != nil {
			return err
		}
		if err := l.Down(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "lab down")
		return nil
	}
	l, err := lab.Open(*state, log)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no lab in %s (start one with: loadshare lab up)", *state)
	}
	if err != nil {
		return err
	}
	switch sub {
	case "load":
		return load(l)
	case "status":
		return lab.WriteStatus(ctx, l, stdout)
	case "exec":
		if fs.NArg() < 2 {
			return fmt.Errorf("exec NODE CMD...: %w", errUsage)
		}
		node, argv := fs.Arg(0), fs.Args()[1:]
		var cmd *exec.Cmd
		if node == "client" {
			cmd = l.ClientCommand(ctx, argv[0], argv[1:]...)
		} else {
			cmd = l.Command(ctx, node, argv[0], argv[1:]...)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s on %s: %w", strings.Join(argv, " "), node, err)
		}
		return nil
	case "start", "stop", "crash", "freeze", "isolate", "unflood", "reflood":
		if fs.NArg() != 1 {
			return fmt.Errorf("%s NODE: %w", sub, errUsage)
		}
		node := fs.Arg(0)
		t0 := time.Now()
		switch sub {
		case "start":
			err = l.Start(ctx, node)
		case "stop":
			err = l.Stop(ctx, node)
		case "crash":
			err = l.Crash(node)
		case "freeze":
			err = l.Freeze(node)
		case "isolate":
			err = l.Isolate(node)
		case "unflood":
			err = l.Unflood(node)
		case "reflood":
			err = l.Reflood(node)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s: done in %s\n", sub, node, time.Since(t0).Round(time.Millisecond))
		return nil
	}
	return fmt.Errorf("unknown lab command %q: %w", sub, errUsage)
}

// labSoak is lab soak: a lab up with the service, the campaign, its
// table; the lab down unless keep. Invariant violations are an error.
func labSoak(ctx context.Context, cfg lab.Config, how lab.Placement, buckets int, o lab.SoakOptions, keep bool, log *slog.Logger, stdout io.Writer) error {
	if cfg.Agents == "" || buckets == 0 {
		return fmt.Errorf("soak needs the agents and the service (--agents, --buckets > 0): %w", errUsage)
	}
	if o.Faults < 1 || o.Faults > 10000 {
		return fmt.Errorf("--faults %d: must be 1..10000: %w", o.Faults, errUsage)
	}
	l, err := lab.Up(ctx, cfg, log)
	if err != nil {
		return err
	}
	if !keep {
		defer l.Down()
	}
	fmt.Fprintf(stdout, "lab up: %d nodes online with quorum after %s\n", cfg.Nodes, l.QuorumAfter.Round(time.Millisecond))
	if err := l.ConfigureService(ctx, "n1", buckets, how); err != nil {
		return err
	}
	rep, err := l.Soak(ctx, o)
	fmt.Fprintln(stdout)
	if rep != nil {
		rep.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	if v := rep.Violations(); len(v) > 0 {
		return fmt.Errorf("soak: %d invariant violations", len(v))
	}
	return nil
}

// labLoad declares load's flags on fs (beside --state) and returns what
// runs them once fs is parsed and the lab is open.
func labLoad(ctx context.Context, fs *flag.FlagSet, stdout io.Writer) func(*lab.Lab) error {
	n := fs.Int("n", 300, "connections (bounded)")
	c := fs.Int("c", 8, "concurrent connections")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	return func(l *lab.Lab) error {
		addr := l.VIP()
		if fs.NArg() > 0 {
			a, err := netip.ParseAddr(fs.Arg(0))
			if err != nil {
				return fmt.Errorf("address %q: %w", fs.Arg(0), err)
			}
			addr = a
		}
		if *n < 1 || *n > 100000 || *c < 1 || *c > 256 {
			return fmt.Errorf("-n %d -c %d: n must be 1..100000, c 1..256: %w", *n, *c, errUsage)
		}
		t0 := time.Now()
		s := l.Load(ctx, addr, *n, *c, *timeout)
		fmt.Fprintf(stdout, "%d connections to %s:%d in %s: %s\n", *n, addr, lab.DBPort, time.Since(t0).Round(time.Millisecond), s)
		if s.LastErr != nil {
			fmt.Fprintf(stdout, "last error: %v\n", s.LastErr)
		}
		return nil
	}
}

// ocfDir is where make install puts the agents.
const ocfDir = "/usr/lib/ocf/resource.d/loadshare"

// agentsBeside is the directory of the agents that go with the CLI exe:
// its own directory after make build (bin/), else the installed provider
// directory (make install puts the CLI in /usr/sbin).
func agentsBeside(exe string) string {
	if st, err := os.Stat(filepath.Join(filepath.Dir(exe), "clustervip")); err == nil && !st.IsDir() {
		return filepath.Dir(exe)
	}
	return ocfDir
}
