package dpbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Options say what Run measures. The zero value is the line protocol with
// the defaults of `make bench`.
type Options struct {
	// Protocols to measure, in order: "line" (a one-line echo server) and
	// "mariadb" (log in, SELECT 1, quit). Empty means line only.
	Protocols []string
	// Rounds of every variant, each round in a rotated order; 0 means 12
	// (with 7 variants, each takes every position once or twice).
	Rounds int
	// Conns per variant and round; 0 means the protocol's default (line
	// 1250, mariadb 250).
	Conns int
	// Workers: concurrent client connections; 0 means 4.
	Workers int
	// Prefix of the lab's network namespace names; "" means DefaultPrefix.
	Prefix string
	// Log receives progress and clean-up notes; nil means io.Discard.
	Log io.Writer
}

// Report is what Run measured, one entry per protocol.
type Report struct {
	Protocols []ProtoReport
}

// ProtoReport is one protocol's figures.
type ProtoReport struct {
	Name          string
	Rounds, Conns int       // rounds, and connections per variant per round
	Workers       int       // concurrent client connections
	Summaries     []Summary // one per variant: a-direct, b-spread, c-vip16, c-vip1024, d-haproxy, e-vip-noflood, f-vip-owneronly
	Checks        []Check   // the targets, judged on the median of per-round ratios
	RulesP50      int64     // µs of the VIP's (16) p50 request time over direct due to its rules (e − a)
	FloodP50      int64     // µs due to flooding (c16 − e)
	RulesConnect  int64     // the same split of the connect p50
	FloodConnect  int64
	CopiesP50     int64 // µs of the flooding due to the copies the lab's bridge delivers to the non-owners (c16 − f)
	CopiesConnect int64
	// OwnerPath is the median of per-round f ÷ b request p50: the VIP's
	// path without the lab's copies, against client-side spreading.
	OwnerPath Check
	DataPlane string // what programmed the VIPs
}

// ErrBroken marks a run whose harness failed: more than 1% of some
// variant's connections failed. Its figures are not figures.
var ErrBroken = errors.New("broken harness")

// protoDefaults are each protocol's connections per round and warm-up
// connections per variant.
var protoDefaults = map[string]struct{ conns, warmup int }{
	"line":    {1250, 200},
	"mariadb": {250, 50},
}

// CheckPrerequisites returns an ErrPrerequisite error naming what a run of o lacks
// (root, namespaces, haproxy; mariadbd for mariadb), nil when nothing.
func CheckPrerequisites(o Options) error {
	if _, err := checkLab(); err != nil {
		return err
	}
	for _, p := range o.protocols() {
		if _, ok := protoDefaults[p]; !ok {
			return fmt.Errorf("protocol %q: want line or mariadb", p)
		}
		if p == "mariadb" {
			if _, _, err := lookDB(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (o Options) protocols() []string {
	if len(o.Protocols) == 0 {
		return []string{"line"}
	}
	return o.Protocols
}

// Run builds the namespace lab, measures every protocol of o and removes
// the lab, also when ctx is cancelled. It writes each protocol's table, the
// split of the VIP's cost and the target verdicts to w. Missed targets are
// no error; a missing prerequisite is (ErrPrerequisite, before anything is
// made), and so is a broken harness (ErrBroken, after the table is written).
func Run(ctx context.Context, o Options, w io.Writer) (Report, error) {
	var rep Report
	if err := CheckPrerequisites(o); err != nil {
		return rep, err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	l, err := newLab(ctx, o.Prefix, o.Log)
	if err != nil {
		return rep, err
	}
	err = l.measure(ctx, o, w, "", &rep)
	if cerr := l.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("remove the lab: %w", cerr))
	}
	return rep, err
}

// measure runs every protocol of o on l, appending to rep. titlePrefix
// goes before each protocol's name in its header (a benchmark's name).
func (l *lab) measure(ctx context.Context, o Options, w io.Writer, titlePrefix string, rep *Report) error {
	var errs []error
	for _, name := range o.protocols() {
		pr, err := l.measureProto(ctx, name, o, w, titlePrefix+name)
		rep.Protocols = append(rep.Protocols, pr)
		if err != nil && !errors.Is(err, ErrBroken) {
			return errors.Join(append(errs, err)...)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// measureProto starts what the protocol needs and runs its bench.
func (l *lab) measureProto(ctx context.Context, name string, o Options, w io.Writer, title string) (ProtoReport, error) {
	d, ok := protoDefaults[name]
	if !ok {
		return ProtoReport{Name: name}, fmt.Errorf("protocol %q: want line or mariadb", name)
	}
	p := lineProto
	if name == "mariadb" {
		fmt.Fprintf(l.log, "dpbench: starting MariaDB in the server namespaces\n")
		if err := l.startDB(ctx); err != nil {
			return ProtoReport{Name: name}, err
		}
		p = l.mariadbProto()
	}
	rounds, conns, workers := o.Rounds, o.Conns, o.Workers
	if rounds <= 0 {
		rounds = 12
	}
	if conns <= 0 {
		conns = d.conns
	}
	if workers <= 0 {
		workers = 4
	}
	return l.bench(ctx, p, title, rounds, conns, min(d.warmup, conns), workers, w)
}

// bench runs rounds × perRound connections of every variant of p, after
// warmup connections each that are not counted, and writes the table
// headed by title to w.
func (l *lab) bench(ctx context.Context, p proto, title string, rounds, perRound, warmup, workers int, w io.Writer) (ProtoReport, error) {
	pr := ProtoReport{Name: p.name, Rounds: rounds, Conns: perRound, Workers: workers, DataPlane: l.dp}
	vs := l.variants(p)
	accs := make([]Acc, len(vs))
	for i, v := range vs {
		accs[i].Name = v.name
		// ARP, conntrack, haproxy and thread caches warm; discarded.
		if _, _, err := l.run(ctx, p, v, warmup, workers); err != nil {
			return pr, fmt.Errorf("%s warm-up: %w", p.name, err)
		}
	}
	for r := range rounds {
		for k := range vs {
			i := (r + k) % len(vs)
			conns, elapsed, err := l.run(ctx, p, vs[i], perRound, workers)
			if err != nil {
				return pr, fmt.Errorf("%s round %d: %w", p.name, r+1, err)
			}
			accs[i].Add(conns, elapsed)
		}
	}
	var broken []error
	for i := range accs {
		s := accs[i].Summary()
		pr.Summaries = append(pr.Summaries, s)
		// A broken harness must not pass for a fast one: more than 1% failed
		// connections is an error, not a figure.
		if s.Errors*100 > s.N {
			broken = append(broken, fmt.Errorf("%w: %s %s: %d of %d connections failed, first: %v", ErrBroken, p.name, s.Name, s.Errors, s.N, s.FirstErr))
		}
	}
	sums := pr.Summaries
	pr.Checks = Checks(sums[0], sums[1], sums[2], sums[3], sums[4])
	var out strings.Builder
	fmt.Fprintf(&out, "%s: %d rounds × %d connections per variant, %d client workers; VIPs programmed by %s\n",
		title, rounds, perRound, workers, l.dp)
	WriteTable(&out, serverNames, sums, pr.Checks)
	// Where the VIP's time goes: its rules alone (the no-flood control) and
	// the flooding to every server (dropped by the non-owners).
	us := func(s Summary) int64 { return s.RequestP50.Microseconds() }
	cus := func(s Summary) int64 { return s.ConnectP50.Microseconds() }
	pr.RulesP50, pr.FloodP50 = us(sums[5])-us(sums[0]), us(sums[2])-us(sums[5])
	pr.RulesConnect, pr.FloodConnect = cus(sums[5])-cus(sums[0]), cus(sums[2])-cus(sums[5])
	pr.CopiesP50, pr.CopiesConnect = us(sums[2])-us(sums[6]), cus(sums[2])-cus(sums[6])
	fmt.Fprintf(&out, "VIP (16) over direct, p50 request %+d µs = rules %+d µs (e − a) + flooding %+d µs (c16 − e); connect %+d = %+d + %+d µs\n",
		us(sums[2])-us(sums[0]), pr.RulesP50, pr.FloodP50,
		cus(sums[2])-cus(sums[0]), pr.RulesConnect, pr.FloodConnect)
	// The lab's bridge delivers the non-owners' copies on the CPUs, and in
	// the softirq, of the client's send: f has the VIP's whole path (cluster
	// MAC, rules) without them.
	pr.OwnerPath = OwnerPathCheck(sums[6], sums[1])
	fmt.Fprintf(&out, "of the flooding, the copies to the non-owners: p50 request %+d µs, connect %+d µs (c16 − f); without them (f), VIP/spread-p50 %.3f [%.3f %.3f] pooled %.3f\n\n",
		pr.CopiesP50, pr.CopiesConnect, pr.OwnerPath.Value, pr.OwnerPath.Q25, pr.OwnerPath.Q75, pr.OwnerPath.Pooled)
	if _, err := io.WriteString(w, out.String()); err != nil {
		return pr, err
	}
	return pr, errors.Join(broken...)
}
