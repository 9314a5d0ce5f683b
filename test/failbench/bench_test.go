package failbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/lab"
)

// BenchmarkFailover crashes a node of the 3-node lab at several bucket
// counts (LOADSHARE_FAILOVER_BUCKETS, default 12,32,64,128,256), several
// rounds each (LOADSHARE_FAILOVER_ROUNDS, default 3), and prints per round
// the time from the crash until the survivors' kernels own every bucket,
// its phases from the survivors' Pacemaker logs, and the time from the
// node's restart until the placer's spread is even again; then the medians
// per bucket count, the 256/12 ratio and the CPU the nodes' agents used
// per second while idle. The goals are printed as met or not,
// never failed on (the machine is shared). One run does it all: -benchtime 1x.
//
// LOADSHARE_FAILOVER_VARIANTS compares settings in the same run: variants
// separated by ";", each a list of TYPE:NAME=VALUE (TYPE crm_config,
// op_defaults or rsc_defaults, set with crm_attribute; or a primitive's id,
// e.g. server_load:placer_settle=30, an instance parameter set
// with crm_resource once the service is configured) separated by ",";
// the empty variant is the configuration as generated (load-threshold=0%
// included). Each variant runs every bucket count, the settings of the
// one before undone, its own set after each configuration of the service.
//
// The rejoin is one placer round: the restarted node's share, claimed at
// once (an even spread wants it, whatever the hysteresis). Its columns
// give the time from the round's first claim (attrd's log) to the last
// bucket started, and the scheduler runs, transitions and CIB writes
// meanwhile.
//
// LOADSHARE_FAILOVER_LOGS=DIR keeps each round's Pacemaker logs, which
// the lab removes when it goes down: DIR/BUCKETS-vVARIANT-rROUND-NODE.log,
// every node's log from the crash to the even spread after the rejoin.
func BenchmarkFailover(b *testing.B) {
	cfg := lab.Config{Prefix: "lsl-b", StateDir: "/var/tmp/loadshare-lab-failbench"}
	lab.SkipUnlessCapable(b, cfg)
	counts, err := intList(os.Getenv("LOADSHARE_FAILOVER_BUCKETS"), []int{12, 32, 64, 128, 256})
	if err != nil {
		b.Fatal(err)
	}
	rounds, err := intList(os.Getenv("LOADSHARE_FAILOVER_ROUNDS"), []int{3})
	if err != nil || len(rounds) != 1 || rounds[0] < 1 {
		b.Fatalf("LOADSHARE_FAILOVER_ROUNDS=%q: want one number ≥ 1", os.Getenv("LOADSHARE_FAILOVER_ROUNDS"))
	}
	bin := b.TempDir()
	if err := buildbin.BuildAll(bin); err != nil {
		b.Fatal(err)
	}
	cfg.Agents = bin
	ctx := context.Background()
	l, err := lab.Up(ctx, cfg, lab.TestLogger(b, slog.LevelWarn))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Down()
	r := &runner{l: l, out: os.Stdout, keep: os.Getenv("LOADSHARE_FAILOVER_LOGS")}
	if r.token, r.consensus, err = r.totem(ctx); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(r.out, "corosync: token %s, consensus %s (runtime values: the token grows by token_coefficient per node beyond 2)\n", r.token, r.consensus)
	variants := strings.Split(os.Getenv("LOADSHARE_FAILOVER_VARIANTS"), ";")
	var prev []setting
	for vi, v := range variants {
		set, err := parseSettings(v)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.apply(ctx, prev, set); err != nil {
			b.Fatal(err)
		}
		prev = set
		r.variant = vi + 1
		label := strings.TrimSpace(v)
		if label == "" {
			label = "as generated"
		}
		fmt.Fprintf(r.out, "\n=== variant %d: %s\n", vi+1, label)
		var sums []summary
		for _, n := range counts {
			s, err := r.count(ctx, n, rounds[0])
			if err != nil {
				b.Fatalf("%s, %d buckets: %v", label, n, err)
			}
			sums = append(sums, s)
			b.ReportMetric(s.failover.Seconds(), fmt.Sprintf("v%d-failover-%d-s", vi+1, n))
			b.ReportMetric(s.placer.Seconds(), fmt.Sprintf("v%d-placer-round-%d-s", vi+1, n))
		}
		fmt.Fprintf(r.out, "\nvariant %d: %s", vi+1, label)
		r.report(sums)
		if len(sums) > 1 {
			b.ReportMetric(sums[len(sums)-1].failover.Seconds()/sums[0].failover.Seconds(), fmt.Sprintf("v%d-ratio-last/first", vi+1))
		}
	}
	b.ReportMetric(0, "ns/op")
}

// setting is one crm_attribute of a variant: TYPE:NAME=VALUE.
type setting struct{ typ, name, value string }

func parseSettings(v string) ([]setting, error) {
	var out []setting
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		typ, rest, ok1 := strings.Cut(f, ":")
		name, value, ok2 := strings.Cut(rest, "=")
		if !ok1 || !ok2 || typ == "" || name == "" {
			return nil, fmt.Errorf("variant setting %q: want crm_config|op_defaults|rsc_defaults|PRIMITIVE:NAME=VALUE", f)
		}
		out = append(out, setting{typ, name, value})
	}
	return out, nil
}

// clusterOption reports whether a setting's TYPE is a crm_attribute
// section rather than a primitive.
func (s setting) clusterOption() bool {
	return slices.Contains([]string{"crm_config", "op_defaults", "rsc_defaults"}, s.typ)
}

// apply removes the cluster options of the previous variant and keeps the
// next's settings for count, which sets them after each configuration of
// the service: that resets the primitives' parameters and sets the
// cluster properties loadshare crm generates (load-threshold), which a
// variant's own value must override.
// Equivalent to: crm_attribute --type TYPE --name NAME --delete
func (r *runner) apply(ctx context.Context, prev, next []setting) error {
	for _, s := range prev {
		if !s.clusterOption() {
			continue
		}
		if _, err := r.l.Exec(ctx, "n1", "crm_attribute", "--type", s.typ, "--name", s.name, "--delete"); err != nil {
			return err
		}
	}
	r.settings = next
	return nil
}

// setSettings sets the variant's cluster options and primitive parameters.
// Equivalent to: crm_attribute --type TYPE --name NAME --update VALUE;
// crm_resource --resource PRIMITIVE --set-parameter NAME --parameter-value VALUE
func (r runner) setSettings(ctx context.Context) error {
	for _, s := range r.settings {
		args := []string{"crm_resource", "--resource", s.typ, "--set-parameter", s.name, "--parameter-value", s.value}
		if s.clusterOption() {
			args = []string{"crm_attribute", "--type", s.typ, "--name", s.name, "--update", s.value}
		}
		if _, err := r.l.Exec(ctx, "n1", args[0], args[1:]...); err != nil {
			return err
		}
	}
	return nil
}

type runner struct {
	l                *lab.Lab
	out              io.Writer
	token, consensus time.Duration // Corosync's, as it runs
	settings         []setting     // the variant's, set after each configuration of the service
	keep             string        // LOADSHARE_FAILOVER_LOGS: where each round's logs are copied; "" for nowhere
	variant          int           // the variant running, from 1
}

// totem reads the token and consensus timeouts Corosync runs with.
// Equivalent to: corosync-cmapctl -g runtime.config.totem.token (and .consensus)
func (r runner) totem(ctx context.Context) (token, consensus time.Duration, err error) {
	get := func(key string) (time.Duration, error) {
		out, err := r.l.Exec(ctx, "n1", "corosync-cmapctl", "-g", key)
		if err != nil {
			return 0, err
		}
		// "runtime.config.totem.token (u32) = 1650"
		_, v, ok := strings.Cut(strings.TrimSpace(string(out)), "= ")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return 0, fmt.Errorf("corosync-cmapctl -g %s: %q", key, out)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	if token, err = get("runtime.config.totem.token"); err != nil {
		return 0, 0, err
	}
	consensus, err = get("runtime.config.totem.consensus")
	return token, consensus, err
}

// summary is one bucket count's medians.
type summary struct {
	buckets            int
	failover, rejoin   time.Duration
	placer             time.Duration // the rejoin's placer round: first claim → last start
	placerRuns         int           // scheduler runs in it
	detect, fence      time.Duration
	sched, starts, ker time.Duration
	startOp            time.Duration
	cibBytes           int
	cpu                map[string]float64 // node → agents' CPU seconds per second, idle
}

// count configures n buckets, waits for the even spread, measures the
// idle CPU and runs the rounds.
func (r runner) count(ctx context.Context, n, rounds int) (summary, error) {
	l := r.l
	s := summary{buckets: n}
	t0 := time.Now()
	if err := l.ConfigureService(ctx, "n1", n, lab.ByPlacer); err != nil {
		return s, err
	}
	if err := r.setSettings(ctx); err != nil {
		return s, err
	}
	if err := r.waitEven(ctx, n, l.Nodes(), 900*time.Second); err != nil {
		return s, err
	}
	fmt.Fprintf(r.out, "\n%d buckets: configured → even spread %s\n", n, time.Since(t0).Round(time.Millisecond))
	if cib, err := l.Exec(ctx, "n1", "cibadmin", "-Q"); err == nil {
		s.cibBytes = len(cib)
	}
	s.cpu = r.idleCPU(10 * time.Second)
	fmt.Fprintf(r.out, "  CIB %d kB; agents' CPU while idle (execd's children, s/s):", s.cibBytes>>10)
	for _, node := range l.Nodes() {
		fmt.Fprintf(r.out, " %s %.3f", node, s.cpu[node])
	}
	fmt.Fprintln(r.out)
	fmt.Fprintf(r.out, "  %-5s %-4s %8s %8s %8s %8s %8s %8s %8s | %5s %5s %6s %4s %6s %s\n",
		"round", "node", "total", "detect", "fence", "sched", "starts", "kernel", "rejoin",
		"start", "runs", "aborts", "cib", "op.med", "aborts by cause, throttle")
	var fo, rj, det, fen, sch, st, ker, op, pl []time.Duration
	var runs []int
	victims := l.Nodes()
	for i := 0; i < rounds; i++ {
		victim, err := r.victim(ctx, victims[(i+1)%len(victims)])
		if err != nil {
			return s, err
		}
		res, err := r.round(ctx, n, victim)
		if err != nil {
			return s, err
		}
		if err := r.keepLogs(fmt.Sprintf("%d-v%d-r%d", n, r.variant, i+1), res.crash); err != nil {
			return s, err
		}
		p := res.phases
		fo, rj = append(fo, res.owned), append(rj, res.rejoin)
		d := func(a, b time.Time) time.Duration {
			if a.IsZero() || b.IsZero() {
				return -1
			}
			return b.Sub(a)
		}
		detect, fence := d(res.crash, p.Lost), d(p.Lost, p.Fenced)
		sched, starts, kernel := d(p.Fenced, p.FirstStart), d(p.FirstStart, p.LastStart), d(p.LastStart, res.crash.Add(res.owned))
		det, fen, sch, st, ker = append(det, detect), append(fen, fence), append(sch, sched), append(st, starts), append(ker, kernel)
		op = append(op, median(p.StartOps))
		aborts := 0
		for _, v := range p.Aborts {
			aborts += v
		}
		fmt.Fprintf(r.out, "  %-5d %-4s %8s %8s %8s %8s %8s %8s %8s | %5d %5d %6d %4d %6s %s\n",
			i+1, victim, ms(res.owned), ms(detect), ms(fence), ms(sched), ms(starts), ms(kernel), ms(res.rejoin),
			p.Starts, p.SchedulerRuns, aborts, p.CIBWrites, ms(median(p.StartOps)), causes(p))
		if res.double > 0 {
			fmt.Fprintf(r.out, "  round %d: %d samples with a bucket owned by two survivors\n", i+1, res.double)
		}
		pr := res.placer
		settle := d(pr.FirstClaim, pr.LastStart)
		pl = append(pl, settle)
		fmt.Fprintf(r.out, "  %-5s %-4s placer round of the rejoin: first claim → last start %s; %d attribute changes, %d starts, "+
			"%d stops and starts initiated (at most %d at once), %d scheduler runs, %d transitions, %d CIB writes; aborts %s\n",
			"", victim, ms(settle), pr.Changes, pr.Starts, pr.Actions, pr.MaxInFlight, pr.SchedulerRuns, pr.Transitions, pr.CIBWrites,
			causes(Phases{Aborts: pr.Aborts, Throttle: pr.Throttle}))
		runs = append(runs, pr.SchedulerRuns)
	}
	s.failover, s.rejoin, s.placer = median(fo), median(rj), median(pl)
	slices.Sort(runs)
	s.placerRuns = runs[len(runs)/2]
	s.detect, s.fence, s.sched, s.starts, s.ker, s.startOp = median(det), median(fen), median(sch), median(st), median(ker), median(op)
	return s, nil
}

// victim is want unless it is the DC: the DC's crash adds an election and
// is measured on its own; then the next non-DC node.
func (r runner) victim(ctx context.Context, want string) (string, error) {
	c, err := r.l.Cluster(ctx, r.l.Nodes()[0])
	if err != nil {
		return "", err
	}
	if c.DC != want {
		return want, nil
	}
	for _, n := range r.l.Nodes() {
		if n != c.DC {
			return n, nil
		}
	}
	return want, nil
}

type roundResult struct {
	crash  time.Time
	owned  time.Duration // crash → every bucket in a survivor's kernel
	rejoin time.Duration // restart → even spread over all nodes
	double int           // kernel samples with a bucket owned twice
	phases Phases
	placer Round // the rejoin's placer round
}

// round crashes victim, polls the survivors' kernels until they own all n
// buckets, reads the phases from their logs, then restarts victim and
// waits for the even spread.
func (r runner) round(ctx context.Context, n int, victim string) (roundResult, error) {
	l := r.l
	var res roundResult
	var survivors []string
	for _, node := range l.Nodes() {
		if node != victim {
			survivors = append(survivors, node)
		}
	}
	res.crash = time.Now()
	if err := l.Crash(victim); err != nil {
		return res, err
	}
	deadline := res.crash.Add(120 * time.Second)
	for {
		owned, double := r.owned(survivors, n)
		if double {
			res.double++
		}
		if owned == n && !double {
			res.owned = time.Since(res.crash)
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("crash %s: survivors own %d of %d buckets after 120 s", victim, owned, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // the last lines reach the log files
	lines, err := r.logs(survivors, res.crash, res.crash.Add(res.owned+500*time.Millisecond))
	if err != nil {
		return res, err
	}
	res.phases = analyze(lines, victim, lab.VIPResource, survivors[0])

	t0 := time.Now()
	if err := l.Start(ctx, victim); err != nil {
		return res, err
	}
	if err := r.waitEven(ctx, n, l.Nodes(), 300*time.Second); err != nil {
		return res, fmt.Errorf("%s restarted: %w", victim, err)
	}
	res.rejoin = time.Since(t0)
	if lines, err = r.logs(l.Nodes(), t0, time.Now()); err != nil {
		return res, err
	}
	res.placer = analyzeRound(lines, lab.VIPResource, victim, survivors[0])
	return res, nil
}

// logs reads the Pacemaker log lines of nodes that fall in [from, to].
func (r runner) logs(nodes []string, from, to time.Time) ([]logLine, error) {
	var lines []logLine
	for _, node := range nodes {
		f, err := os.Open(filepath.Join(r.l.Config().StateDir, node, "var_log_pacemaker", "pacemaker.log"))
		if err != nil {
			return nil, err
		}
		ls, err := readLog(f, from, to, time.Local)
		f.Close()
		if err != nil {
			return nil, err
		}
		lines = append(lines, ls...)
	}
	return lines, nil
}

// keepLogs copies every node's Pacemaker log lines from the crash on
// into r.keep as NAME-NODE.log, unless r.keep is "".
func (r runner) keepLogs(name string, from time.Time) error {
	if r.keep == "" {
		return nil
	}
	if err := os.MkdirAll(r.keep, 0o755); err != nil {
		return err
	}
	for _, node := range r.l.Nodes() {
		b, err := os.ReadFile(filepath.Join(r.l.Config().StateDir, node, "var_log_pacemaker", "pacemaker.log"))
		if err != nil {
			return err
		}
		// From the first line of the crash's minute (Pacemaker's stamp,
		// "Dec 04 19:18:57.722", has no year).
		if i := strings.Index(string(b), "\n"+from.Format("Jan 02 15:04:")); i >= 0 {
			b = b[i+1:]
		}
		if err := os.WriteFile(filepath.Join(r.keep, name+"-"+node+".log"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// owned returns how many of the n buckets the nodes' kernels own, and
// whether one is owned by two of them. The kernels are read one after
// the other, so a bucket that moves from an earlier-read node to a
// later-read one between the reads looks owned twice: a bucket seen
// twice counts only if the first node still owns it when read again.
func (r runner) owned(nodes []string, n int) (int, bool) {
	by := make([][]string, n)
	for _, node := range nodes {
		bs, err := r.l.KernelOwned(node)
		if err != nil {
			continue
		}
		for _, k := range bs {
			if k >= 0 && k < n {
				by[k] = append(by[k], node)
			}
		}
	}
	owned, double := 0, false
	for k, on := range by {
		if len(on) > 0 {
			owned++
		}
		if len(on) > 1 && !double {
			again, err := r.l.KernelOwned(on[0])
			double = err == nil && slices.Contains(again, k)
		}
	}
	return owned, double
}

// waitEven waits until the kernels of nodes own every bucket exactly once,
// Pacemaker agrees, each node holds n/len(nodes) within one bucket and
// every bucket is claimed (own_vip_K) by the node it runs on and no other,
// twice in a row 1 s apart (the placer has settled: at 128 buckets the
// first round's claims of the buckets where they run still streamed into
// the CIB for seconds after the spread was even, and a crash then was
// measured with 25 aborts that are not the failover's).
func (r runner) waitEven(ctx context.Context, n int, nodes []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	good, last := 0, ""
	for time.Now().Before(deadline) {
		ok, state := r.even(ctx, n, nodes)
		if ok {
			good++
			if good == 2 {
				return nil
			}
		} else {
			good, last = 0, state
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("no even spread of %d buckets over %v in %s (last: %s)", n, nodes, limit, last)
}

func (r runner) even(ctx context.Context, n int, nodes []string) (bool, string) {
	tb, err := r.l.Buckets(ctx, nodes[0], n)
	if err != nil {
		return false, err.Error()
	}
	if err := tb.Check(); err != nil {
		return false, err.Error()
	}
	counts := tb.Counts(nodes)
	for _, c := range counts {
		if c*len(nodes) < n-len(nodes) || c*len(nodes) > n+len(nodes) {
			return false, fmt.Sprintf("spread %v", counts)
		}
	}
	return r.claimed(ctx, nodes[0], tb)
}

// claimed reports whether every bucket's own_vip_K is 1 exactly on the
// node whose kernel owns it, as viewer's crm_mon shows the attributes.
// Equivalent to: crm_mon --output-as=xml -A
func (r runner) claimed(ctx context.Context, viewer string, tb lab.BucketTable) (bool, string) {
	out, err := r.l.Exec(ctx, viewer, "crm_mon", "--output-as=xml", "-A")
	if err != nil {
		return false, err.Error()
	}
	st, err := crm.ParseStatus(out)
	if err != nil {
		return false, err.Error()
	}
	owner := map[int]string{}
	for node, bs := range tb.Kernel {
		for _, b := range bs {
			owner[b] = node
		}
	}
	spec := crm.Spec{Name: lab.VIPResource}
	for _, ns := range st.Nodes {
		for k := 0; k < tb.Buckets; k++ {
			if claim := ns.Attrs[spec.OwnAttr(k)] == "1"; claim != (owner[k] == ns.Name) {
				return false, fmt.Sprintf("bucket %d runs on %s, %s=%v on %s", k, owner[k], spec.OwnAttr(k), claim, ns.Name)
			}
		}
	}
	return true, ""
}

// idleCPU returns, per node, the CPU seconds per second that the node's
// resource agents (the children pacemaker-execd reaped: every bucket
// monitor, the attribute agents) used over d.
func (r runner) idleCPU(d time.Duration) map[string]float64 {
	before := map[string]float64{}
	for _, n := range r.l.Nodes() {
		before[n] = r.execdChildCPU(n)
	}
	time.Sleep(d)
	out := map[string]float64{}
	for _, n := range r.l.Nodes() {
		out[n] = (r.execdChildCPU(n) - before[n]) / d.Seconds()
	}
	return out
}

// execdChildCPU is cutime+cstime of node's pacemaker-execd (a child of
// its pacemakerd), in seconds; 0 if not found.
func (r runner) execdChildCPU(node string) float64 {
	parent := r.l.Pid(node, "pacemakerd")
	if parent == 0 {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil || f.comm != "pacemaker-execd" || f.ppid != parent {
			continue
		}
		return float64(f.cutime+f.cstime) / 100 // USER_HZ
	}
	return 0
}

type stat struct {
	comm           string
	ppid           int
	cutime, cstime int64
}

// procStat reads /proc/PID/stat: comm, ppid (field 4), cutime and cstime
// (fields 16, 17).
func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return stat{}, errors.New("bad stat")
	}
	f := strings.Fields(s[j+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return stat{}, errors.New("short stat")
	}
	var st stat
	st.comm = s[i+1 : j]
	st.ppid, _ = strconv.Atoi(f[1])
	st.cutime, _ = strconv.ParseInt(f[13], 10, 64)
	st.cstime, _ = strconv.ParseInt(f[14], 10, 64)
	return st, nil
}

// report prints the medians and the goals.
func (r runner) report(sums []summary) {
	fmt.Fprintf(r.out, "\nfailover medians (crash → every bucket in a survivor's kernel; phases from the survivors' logs):\n")
	fmt.Fprintf(r.out, "  %7s %8s %8s %8s %8s %8s %8s %8s %8s %8s %4s %7s  %s\n", "buckets", "total", "detect", "fence", "sched", "starts", "kernel", "op.med", "rejoin",
		"placer", "runs", "CIB kB", "agents' CPU s/s per node (idle)")
	for _, s := range sums {
		var cpu []string
		for _, n := range r.l.Nodes() {
			cpu = append(cpu, fmt.Sprintf("%.3f", s.cpu[n]))
		}
		fmt.Fprintf(r.out, "  %7d %8s %8s %8s %8s %8s %8s %8s %8s %8s %4d %7d  %s\n", s.buckets, ms(s.failover), ms(s.detect), ms(s.fence),
			ms(s.sched), ms(s.starts), ms(s.ker), ms(s.startOp), ms(s.rejoin), ms(s.placer), s.placerRuns, s.cibBytes>>10, strings.Join(cpu, " "))
	}
	// Goals of issue 13: token + consensus + 1 s at 64 buckets; the last
	// count ≤ 1.3 × the first.
	goal := r.token + r.consensus + time.Second
	for _, s := range sums {
		if s.buckets == 64 {
			fmt.Fprintf(r.out, "goal: 64 buckets ≤ token+consensus+1 s = %s: %s (%s)\n", ms(goal), ms(s.failover), met(s.failover <= goal))
		}
	}
	if len(sums) > 1 {
		first, last := sums[0], sums[len(sums)-1]
		ratio := last.failover.Seconds() / first.failover.Seconds()
		fmt.Fprintf(r.out, "goal: %d buckets ≤ 1.3 × %d buckets: ratio %.2f (%s)\n", last.buckets, first.buckets, ratio, met(ratio <= 1.3))
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func causes(p Phases) string {
	var ks []string
	for k, v := range p.Aborts {
		ks = append(ks, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(ks)
	for k, v := range p.Throttle {
		ks = append(ks, fmt.Sprintf("throttle %s %d", k, v))
	}
	return strings.Join(ks, ", ")
}

func ms(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// intList parses "12,32,64"; "" gives def.
func intList(s string, def []int) ([]int, error) {
	if s == "" {
		return def, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q: want positive numbers separated by commas", s)
		}
		out = append(out, v)
	}
	return out, nil
}
