package failbench

import (
	"bufio"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// logLine is one line of a Pacemaker 2.1 log file (PCMK_logfile, the lab's
// /var/log/pacemaker/pacemaker.log):
//
//	Dec 04 19:18:57.722 n1 pacemaker-attrd     [26524] (update_peer_state_iter) 	notice: Node n2 state is now lost | nodeid=2 …
type logLine struct {
	At     time.Time
	Node   string // the node that wrote the line
	Daemon string // pacemaker-controld, pacemaker-based, …
	Func   string // the C function that logged it
	Level  string
	Msg    string // after "level: "
}

var lineRE = regexp.MustCompile(`^([A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2}\.\d{3}) (\S+) (pacemaker-[a-z]+|pacemakerd)\s*\[\d+\] \(([^)]*)\)\s+([a-z]+): (.*)$`)

// readLog parses the lines of r that fall in [from, to]. The file has no
// year: it is taken from from, in loc (the host's zone: the nodes share
// the host's clock and zone).
func readLog(r io.Reader, from, to time.Time, loc *time.Location) ([]logLine, error) {
	var out []logLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.ParseInLocation("Jan _2 15:04:05.000", m[1], loc)
		if err != nil {
			continue
		}
		at = at.AddDate(from.In(loc).Year(), 0, 0)
		if at.Before(from.Truncate(time.Millisecond)) || at.After(to) {
			continue
		}
		out = append(out, logLine{At: at, Node: m[2], Daemon: m[3], Func: m[4], Level: m[5], Msg: m[6]})
	}
	return out, sc.Err()
}

// Phases is what the survivors' logs say about one failover of node Victim.
// A zero time means the logs did not show it.
type Phases struct {
	Lost       time.Time // first "Node VICTIM state is now lost" (the membership change reaching Pacemaker)
	Fenced     time.Time // first "Operation 'off' targeting VICTIM … OK"
	FirstCalc  time.Time // first scheduler run after Lost ("Calculated transition")
	FirstStart time.Time // first "Initiating start operation NAME_K…"
	LastStart  time.Time // last "Result of start operation for NAME_K on NODE: ok"

	Starts        int             // bucket start results
	StartOps      []time.Duration // each bucket start on its node: request → result (the agent and its CIB update)
	SchedulerRuns int
	Transitions   int            // transitions that completed
	Aborts        map[string]int // transition aborts by cause ("Transient attribute change", "Resource op removal", …)
	Throttle      map[string]int // the controller's throttle notices: "High CPU load", "Extreme CIB load", …
	CIBWrites     int            // CIB operations on the status section completed (as one survivor logged them)
	MaxInFlight   int            // most bucket starts initiated and not yet confirmed at once
}

var (
	abortRE    = regexp.MustCompile(`^Transition -?\d+ aborted(?: by .*?)?: ([^|]+?)\s*(?:\||$)`)
	throttleRE = regexp.MustCompile(`^(Extreme|High|Moderate) (CPU load|CIB load) detected`)
	cibRE      = regexp.MustCompile(`^Completed cib_(modify|delete|create|replace|apply_diff|bump) operation for section (status|//node_state)`)
	startReqRE = regexp.MustCompile(`^Requesting local execution of start operation for (\S+) on (\S+)`)
	startResRE = regexp.MustCompile(`^Result of start operation for (\S+) on (\S+): ok`)
	initRE     = regexp.MustCompile(`^Initiating start operation (\S+)_start_0`)
	confirmRE  = regexp.MustCompile(`^Transition \d+ action \d+ \((\S+)_start_0 on \S+\) confirmed`)
	// a bucket's stop or start as the DC initiates and confirms it
	actionInitRE    = regexp.MustCompile(`^Initiating (stop|start) operation (\S+)_(?:stop|start)_0`)
	actionConfirmRE = regexp.MustCompile(`^Transition \d+ action \d+ \((\S+)_(stop|start)_0 on \S+\) confirmed`)
)

// analyze reads the phases of the failover of victim from the lines of
// the survivors' logs (any order), for the buckets NAME_K of vip. cibNode
// is the survivor whose log counts the CIB writes (each node logs every
// completed operation, so one node's lines count each once).
func analyze(lines []logLine, victim, vip, cibNode string) Phases {
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].At.Before(lines[j].At) })
	p := Phases{Aborts: map[string]int{}, Throttle: map[string]int{}}
	bucket := func(rsc string) bool {
		rest, ok := strings.CutPrefix(rsc, vip+"_")
		return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
	}
	first := func(t *time.Time, at time.Time) {
		if t.IsZero() {
			*t = at
		}
	}
	requested := map[string]time.Time{} // node/rsc → start requested
	inFlight := map[string]bool{}
	for _, l := range lines {
		msg := l.Msg
		switch {
		case strings.HasPrefix(msg, "Node "+victim+" state is now lost"):
			first(&p.Lost, l.At)
		case strings.HasPrefix(msg, "Operation 'off' targeting "+victim+" ") && strings.Contains(msg, ": OK"),
			strings.HasPrefix(msg, "Operation 'reboot' targeting "+victim+" ") && strings.Contains(msg, ": OK"):
			first(&p.Fenced, l.At)
		case l.Daemon == "pacemaker-schedulerd" && strings.HasPrefix(msg, "Calculated transition"):
			if !p.Lost.IsZero() {
				p.SchedulerRuns++
				first(&p.FirstCalc, l.At)
			}
		case l.Daemon == "pacemaker-controld" && strings.HasPrefix(msg, "Transition ") && strings.HasSuffix(msg, ": Complete"):
			p.Transitions++
		}
		if m := abortRE.FindStringSubmatch(msg); m != nil && l.Daemon == "pacemaker-controld" {
			p.Aborts[strings.TrimSpace(m[1])]++
		}
		if m := throttleRE.FindStringSubmatch(msg); m != nil {
			p.Throttle[m[1]+" "+m[2]]++
		}
		if l.Node == cibNode && l.Daemon == "pacemaker-based" && cibRE.MatchString(msg) {
			p.CIBWrites++
		}
		if m := initRE.FindStringSubmatch(msg); m != nil && bucket(m[1]) {
			first(&p.FirstStart, l.At)
			inFlight[m[1]] = true
			p.MaxInFlight = max(p.MaxInFlight, len(inFlight))
		}
		if m := confirmRE.FindStringSubmatch(msg); m != nil {
			delete(inFlight, m[1])
		}
		if m := startReqRE.FindStringSubmatch(msg); m != nil && bucket(m[1]) {
			requested[m[2]+"/"+m[1]] = l.At
		}
		if m := startResRE.FindStringSubmatch(msg); m != nil && bucket(m[1]) {
			p.Starts++
			p.LastStart = l.At
			if t, ok := requested[m[2]+"/"+m[1]]; ok {
				p.StartOps = append(p.StartOps, l.At.Sub(t))
				delete(requested, m[2]+"/"+m[1])
			}
		}
	}
	return p
}

// Round is what one placer round did, from the nodes' logs: its bucket
// attribute changes as attrd logged them and the cluster's work from the
// first of them to the last bucket started.
type Round struct {
	FirstClaim time.Time // first "Setting own_VIP_K[NODE]: (unset) -> 1" for the node given buckets
	LastStart  time.Time // last bucket "Result of start operation … ok"

	Changes       int // own_VIP_K changes (sets and deletes), as one node's attrd logged them
	Starts        int // bucket start results
	SchedulerRuns int
	Transitions   int            // transitions that completed
	Aborts        map[string]int // transition aborts by cause
	Throttle      map[string]int // the controllers' throttle notices: "High CPU load", "High CIB load", …
	CIBWrites     int            // CIB status operations completed, as one node logged them
	Actions       int            // bucket stops and starts the DC initiated
	MaxInFlight   int            // most bucket stops and starts initiated and not yet confirmed at once
}

var settingRE = regexp.MustCompile(`^Setting (\S+)\[(\S+)\]: (\S+) -> (\S+)`)

// analyzeRound reads the placer round that gives node buckets from the
// lines (any order, every node's) for the buckets NAME_K of vip: lines
// before its first claim for node are ignored (a rejoining node's attrd
// logs every value it learns from its peers, and the node's probes and
// joins come first). cibNode, a node up all along, is the one whose log
// counts the attribute changes and CIB writes (every node logs each once).
func analyzeRound(lines []logLine, vip, node, cibNode string) Round {
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].At.Before(lines[j].At) })
	r := Round{Aborts: map[string]int{}, Throttle: map[string]int{}}
	inFlight := map[string]bool{}
	own := func(attr string) bool {
		rest, ok := strings.CutPrefix(attr, "own_"+vip+"_")
		return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
	}
	bucket := func(rsc string) bool {
		rest, ok := strings.CutPrefix(rsc, vip+"_")
		return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
	}
	for _, l := range lines {
		msg := l.Msg
		if m := settingRE.FindStringSubmatch(msg); m != nil && own(m[1]) && l.Daemon == "pacemaker-attrd" && l.Node == cibNode {
			if r.FirstClaim.IsZero() && m[2] == node && m[3] == "(unset)" && m[4] == "1" {
				r.FirstClaim = l.At
			}
			if !r.FirstClaim.IsZero() {
				r.Changes++
			}
			continue
		}
		if r.FirstClaim.IsZero() {
			continue
		}
		switch {
		case l.Daemon == "pacemaker-schedulerd" && strings.HasPrefix(msg, "Calculated transition"):
			r.SchedulerRuns++
		case l.Daemon == "pacemaker-controld" && strings.HasPrefix(msg, "Transition ") && strings.HasSuffix(msg, ": Complete"):
			r.Transitions++
		}
		if m := abortRE.FindStringSubmatch(msg); m != nil && l.Daemon == "pacemaker-controld" {
			r.Aborts[strings.TrimSpace(m[1])]++
		}
		if m := throttleRE.FindStringSubmatch(msg); m != nil {
			r.Throttle[m[1]+" "+m[2]]++
		}
		if l.Node == cibNode && l.Daemon == "pacemaker-based" && cibRE.MatchString(msg) {
			r.CIBWrites++
		}
		if m := startResRE.FindStringSubmatch(msg); m != nil && bucket(m[1]) {
			r.Starts++
			r.LastStart = l.At
		}
		if m := actionInitRE.FindStringSubmatch(msg); m != nil && bucket(m[2]) {
			r.Actions++
			inFlight[m[2]+"_"+m[1]] = true
			r.MaxInFlight = max(r.MaxInFlight, len(inFlight))
		}
		if m := actionConfirmRE.FindStringSubmatch(msg); m != nil {
			delete(inFlight, m[1]+"_"+m[2])
		}
	}
	return r
}
