package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/loadshare/loadshare/crm"
)

func init() {
	register(command{
		name:        "crm",
		summary:     "Pacemaker configuration: generate | check | place",
		subcommands: []string{"check", "place"},
		run:         runCrm,
	})
}

const crmUsage = `usage: loadshare crm [generate] --ip ADDR --buckets N [flags]   print the configuration
       loadshare crm [generate] --vip KEY=VALUE,… [--vip …] [flags]  the same for several VIPs
       loadshare crm check [--file CIB.xml]                       check a live or file CIB
       loadshare crm place [--name vip] [--dry-run] [--only-dc]   one placer round

generate prints the whole configuration of one or more shared VIPs: for each
one primitive per bucket (NAME_0 … NAME_{N-1}, from the rsc_template
NAME-bucket) and the location rules that give bucket K to the node with
own_NAME_K=1 among those whose required attribute is 1 (writable_monit, or
readable_monit for a reader VIP); and one pair of mysql_monitor /
server_load clones, whose placer places every VIP. A writer VIP and a
reader VIP that gives the primary half a replica's share:
  loadshare crm --vip name=rw,ip=192.0.2.10,buckets=24,strict=true \
    --vip name=ro,ip=192.0.2.11,buckets=24,require=readable_monit,writer-weight=50
--vip keys: name, ip, buckets, nic, cidr-netmask, seed, strict (true: the
buckets stop when no node has the required attribute, for the writer VIP
of a replication cluster), require, and the
placer's policy (idle-load, full-load, min-share, min-buckets, max-buckets,
hysteresis, writer-weight: as the flags of crm place). Adding a VIP to a
cluster: generate the whole configuration, every VIP, and load it with
crm configure load update (it replaces server_load's placer list, so a VIP
left out of it is no longer placed: crm check says so). Load it with crmsh
  loadshare crm --ip 192.0.2.10 --buckets 64 > vip.crm && crm configure load update vip.crm
or with pcs (--format pcs prints pcs commands; run them on a copy of the CIB)
  loadshare crm --ip 192.0.2.10 --buckets 64 --format pcs > vip.pcs
  pcs cluster cib vip.xml && sed 's/^pcs /pcs -f vip.xml /' vip.pcs | sh -e && pcs cluster cib-push vip.xml --config
--param values are checked against the agent's declarations first. The
configuration also sets the cluster property load-threshold=0%: Pacemaker's
CPU throttle otherwise runs one action at a time on a busy node (a database
server) exactly when it takes over a failed node's buckets, and then the
whole cluster at most nodes/2 at once; --load-threshold "" leaves it out.

check runs crm_verify (live: crm_verify -L; with --file: crm_verify -x) and
loadshare's own checks, and explains each problem. Exit status 1 on errors.

place reads the cluster status (crm_mon), computes every node's bucket
target from writable_monit and server_load, and writes the own_* attributes
(attrd_updater -N) that move buckets there. Run it on every node from the
server_load monitor with --only-dc: only the DC writes. By hand, one round
keeps a spread within --hysteresis of the ideal (a round has no history to
tell a still load from a wobble); --hysteresis 0 goes to the exact spread,
as server_load's rounds do once the ideal has held placer_settle seconds.`

func runCrm(args []string, stdout, stderr io.Writer) error {
	sub := "generate"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "generate":
		return crmGenerate(args, stdout, stderr)
	case "check":
		return crmCheck(args, stdout, stderr)
	case "place":
		return crmPlace(args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, crmUsage)
		return nil
	}
	return fmt.Errorf("unknown crm command %q (generate, check, place): %w", sub, errUsage)
}

func crmGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("crm", crmUsage, stderr)
	ip := fs.String("ip", "", "the shared VIP (IPv4 or IPv6)")
	buckets := fs.Int("buckets", 0, "hash buckets, one primitive each (1–1024)")
	name := fs.String("name", "vip", "resource prefix: primitives NAME_0 …")
	nic := fs.String("nic", "", "interface (default: the agent picks the route's)")
	mask := fs.Int("cidr-netmask", 0, "prefix length (default: the agent's choice)")
	seed := fs.Uint("seed", 0, "hash seed (default: the agent derives it from the ip)")
	nodes := fs.String("nodes", "", "comma-separated node names (the XML gets a <nodes> section)")
	format := fs.String("format", "crmsh", "crmsh, pcs (pcs commands) or xml (a whole CIB, for crm_verify -x / crm_simulate -x)")
	noAgents := fs.Bool("no-attribute-agents", false, "leave out the mysql_monitor and server_load clones")
	noFlood := fs.Bool("no-flood-check", false, "leave out each VIP's flood check (NAME-flood-clone) and its term in the location rules")
	params := map[string][]crm.Param{}
	fs.Func("param", "AGENT:NAME=VALUE: an instance parameter of clustervip (every bucket), mysql_monitor or server_load, e.g. mysql_monitor:defaults_file=/etc/mysql/monitor.cnf (repeatable)", func(v string) error {
		agent, kv, ok := strings.Cut(v, ":")
		name, value, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 {
			return errors.New("want AGENT:NAME=VALUE")
		}
		params[agent] = append(params[agent], crm.Param{Name: name, Value: value})
		return nil
	})
	loadThreshold := fs.String("load-threshold", crm.LoadThresholdOff, `cluster property load-threshold the configuration sets; 0% turns off Pacemaker's CPU throttle, which otherwise runs one action at a time on a busy node just when it takes over buckets ("": leave the property as the cluster has it)`)
	attrMonitor := fs.Int("attr-monitor", 0, "seconds between monitors of mysql_monitor and server_load (default 5 and 10)")
	var vipFlags []string
	fs.Func("vip", "KEY=VALUE,…: one VIP of several (keys name, ip, buckets, nic, cidr-netmask, seed, strict, require, and the placer policy's); repeatable, instead of --ip, --buckets, --name, --nic, --cidr-netmask, --seed", func(v string) error {
		vipFlags = append(vipFlags, v)
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Parsed here, not in the flag callback, so a bad value is one line.
	var vips crm.Specs
	for _, v := range vipFlags {
		s, err := crm.ParseVIP(v)
		if err != nil {
			return fmt.Errorf("--vip %s: %w: %w", v, err, errUsage)
		}
		vips = append(vips, s)
	}
	if err := checkParams(params); err != nil {
		return err
	}
	if len(vips) == 0 {
		addr, err := netip.ParseAddr(*ip)
		if err != nil {
			return fmt.Errorf("--ip=%q: not an IP address: %w", *ip, errUsage)
		}
		if *seed > 0xffffffff {
			return fmt.Errorf("--seed=%d: must be below 2^32: %w", *seed, errUsage)
		}
		vips = crm.Specs{{Name: *name, IP: addr, NIC: *nic, CIDRNetmask: *mask, Buckets: *buckets, Seed: uint32(*seed)}}
	} else {
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			if slices.Contains([]string{"ip", "buckets", "name", "nic", "cidr-netmask", "seed"}, f.Name) {
				clash = append(clash, "--"+f.Name)
			}
		})
		if len(clash) > 0 {
			return fmt.Errorf("%s with --vip: give each VIP's settings in its --vip: %w", strings.Join(clash, ", "), errUsage)
		}
	}
	for i := range vips {
		vips[i].AttributeAgents, vips[i].Params, vips[i].AttrMonitor = !*noAgents, params, *attrMonitor
		vips[i].LoadThreshold = *loadThreshold
		// The flood check is a netdev nftables table of its own, whatever
		// the buckets' backend (xtcluster too); on a kernel without it
		// its start fails with OCF_ERR_INSTALLED, and --no-flood-check
		// leaves it out.
		vips[i].FloodCheck = !*noAgents && !*noFlood
		if *nodes != "" {
			vips[i].Nodes = strings.Split(*nodes, ",")
		}
	}
	s := vips
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	switch *format {
	case "crmsh":
		out, err := s.Crmsh()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, out)
		return err
	case "pcs":
		out, err := s.Pcs()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, out)
		return err
	case "xml":
		out, err := s.XML()
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	return fmt.Errorf("--format=%q: want crmsh, pcs or xml: %w", *format, errUsage)
}

// checkParams vets every --param against its agent's declarations (type,
// allowed values, name): refused here, before anything is printed, rather
// than by every node's validate once the configuration is loaded.
func checkParams(params map[string][]crm.Param) error {
	for _, agent := range slices.Sorted(maps.Keys(params)) {
		m, err := agentMeta(agent)
		if err != nil {
			return fmt.Errorf("--param %s:…: %w: %w", agent, err, errUsage)
		}
		for _, p := range params[agent] {
			if err := m.CheckParam(p.Name, p.Value); err != nil {
				return fmt.Errorf("--param %s:%s=%s: %w: %w", agent, p.Name, p.Value, err, errUsage)
			}
		}
	}
	return nil
}

// errProblems: check found errors (exit status 1, the list is printed).
var errProblems = errors.New("configuration has errors")

func crmCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("crm check", crmUsage, stderr)
	file := fs.String("file", "", "CIB XML file (default: the live cluster, cibadmin -Q)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cib []byte
	var err error
	if *file != "" {
		cib, err = os.ReadFile(*file)
	} else {
		cib, err = crm.QueryCIB(ctx)
	}
	if err != nil {
		return err
	}
	problems, err := crm.CheckAll(ctx, *file, cib)
	if err != nil {
		return err
	}
	errs := 0
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
		if p.Severity == crm.Error {
			errs++
		}
	}
	if len(problems) == 0 {
		fmt.Fprintln(stdout, "ok: crm_verify and loadshare's checks found nothing")
	}
	if errs > 0 {
		return fmt.Errorf("%d error(s): %w", errs, errProblems)
	}
	return nil
}

func policyFlags(fs *flag.FlagSet) func() (crm.Policy, error) {
	d := crm.DefaultPolicy
	idle := fs.Int("idle-load", d.IdleLoad, "server_load at or below which a node counts as idle")
	full := fs.Int("full-load", d.FullLoad, "server_load at or above which a node has no spare capacity")
	minShare := fs.Int("min-share", d.MinShare, "spare capacity (load points) a saturated writable node still counts with")
	minB := fs.Int("min-buckets", d.MinBuckets, "floor of a node's target (0: none)")
	maxB := fs.Int("max-buckets", d.MaxBuckets, "ceiling of a node's target (0: none)")
	hyst := fs.Int("hysteresis", d.Hysteresis, "buckets: targets stand while every node's ideal is within this many")
	weight := fs.Int("writer-weight", 100, "percent of its spare capacity a writable node counts with (a reader VIP's primary)")
	return func() (crm.Policy, error) {
		p := crm.Policy{IdleLoad: *idle, FullLoad: *full, MinShare: *minShare, MinBuckets: *minB, MaxBuckets: *maxB, Hysteresis: *hyst,
			WriterWeight: *weight}
		if err := p.Validate(); err != nil {
			return p, fmt.Errorf("%w: %w", errUsage, err)
		}
		return p, nil
	}
}

func crmPlace(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("crm place", crmUsage, stderr)
	name := fs.String("name", "vip", "resource prefix of the bucket primitives")
	dry := fs.Bool("dry-run", false, "print the plan, write nothing")
	onlyDC := fs.Bool("only-dc", false, "do nothing unless this node is the DC")
	file := fs.String("file", "", "plan from a CIB file (implies --dry-run)")
	policy := policyFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p, err := policy()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if *file != "" {
		*dry = true
		os.Setenv("CIB_file", *file)
	}
	plan, skipped, err := crm.PlanLive(ctx, crm.Spec{Name: *name}, p, *onlyDC, nil)
	if err != nil {
		return err
	}
	if skipped != "" {
		fmt.Fprintf(stdout, "nothing to do: %s\n", skipped)
		return nil
	}
	printPlan(stdout, plan)
	if *dry || plan.Empty() {
		return nil
	}
	return plan.Apply(ctx, crm.Attrd)
}

func printPlan(w io.Writer, plan crm.Plan) {
	counts := plan.Running.Counts()
	for _, a := range plan.Targets {
		fmt.Fprintf(w, "%-16s target %3d  running %3d\n", a.Node, a.Buckets, counts[a.Node])
	}
	fmt.Fprintf(w, "set %d, delete %d own attributes; %d bucket(s) move\n", len(plan.Set), len(plan.Delete), plan.Moves())
	for _, c := range plan.Set {
		fmt.Fprintf(w, "  set    %s %s=1\n", c.Node, c.Name)
	}
	for _, c := range plan.Delete {
		fmt.Fprintf(w, "  delete %s %s\n", c.Node, c.Name)
	}
}
