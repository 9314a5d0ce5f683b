package failbench

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestAnalyze reads an excerpt of two survivors' logs of a lab failover
// (n2, the DC, crashed; n1 won the election and fenced it).
func TestAnalyze(t *testing.T) {
	from := time.Date(2026, 12, 4, 19, 18, 57, 0, time.UTC)
	lines := readFixtures(t, from, from.Add(10*time.Second), "crash-n2-n1.log", "crash-n2-n3.log")
	if len(lines) != 26 {
		t.Fatalf("parsed %d lines, want all 26", len(lines))
	}
	p := analyze(lines, "n2", "vip", "n1")
	at := func(s string) time.Time {
		v, err := time.Parse("15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 12, 4, v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
	}
	for _, c := range []struct {
		what      string
		got, want time.Time
	}{
		{"lost", p.Lost, at("19:18:57.722")},
		{"fenced", p.Fenced, at("19:18:59.114")},
		{"first scheduler run", p.FirstCalc, at("19:18:59.078")},
		{"first start", p.FirstStart, at("19:18:59.118")},
		{"last start", p.LastStart, at("19:18:59.410")},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s at %s, want %s", c.what, c.got.Format(time.StampMilli), c.want.Format(time.StampMilli))
		}
	}
	if p.Starts != 2 || len(p.StartOps) != 2 || p.StartOps[0] != 32*time.Millisecond || p.StartOps[1] != 110*time.Millisecond {
		t.Errorf("starts %d, start ops %v; want 2: 32ms, 110ms", p.Starts, p.StartOps)
	}
	if p.SchedulerRuns != 1 || p.Transitions != 1 || p.MaxInFlight != 1 {
		t.Errorf("scheduler runs %d, transitions %d, max in flight %d; want 1, 1, 1", p.SchedulerRuns, p.Transitions, p.MaxInFlight)
	}
	want := map[string]int{"Peer Cancelled": 1, "Resource state removal": 1, "Transient attribute change": 2}
	if len(p.Aborts) != len(want) {
		t.Errorf("aborts %v, want %v", p.Aborts, want)
	}
	for k, v := range want {
		if p.Aborts[k] != v {
			t.Errorf("aborts %v, want %v", p.Aborts, want)
		}
	}
	if p.Throttle["High CPU load"] != 1 {
		t.Errorf("throttle %v, want one High CPU load", p.Throttle)
	}
	if p.CIBWrites != 3 { // n1's three status-section completions; n3's are the same writes
		t.Errorf("CIB writes %d, want 3", p.CIBWrites)
	}
}

// TestAnalyzeRound reads an excerpt of a lab rejoin (n1 restarted after a
// crash; n3 the DC, n2 up all along): before the placer's first claim for
// n1, n2's attrd logs 29 changes of the claims held for the survivors,
// which are not the round's; from the claim on, n2 counts the changes and
// CIB writes, n3 the scheduler runs, n1 the starts.
func TestAnalyzeRound(t *testing.T) {
	from := time.Date(2026, 12, 4, 21, 33, 33, 0, time.UTC)
	lines := readFixtures(t, from, from.Add(time.Minute), "rejoin-n1-n1.log", "rejoin-n1-n2.log", "rejoin-n1-n3.log")
	r := analyzeRound(lines, "vip", "n1", "n2")
	at := func(s string) time.Time {
		v, err := time.Parse("15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 12, 4, v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
	}
	if !r.FirstClaim.Equal(at("21:33:34.782")) || !r.LastStart.Equal(at("21:33:41.306")) {
		t.Errorf("first claim %s, last start %s; want 21:33:34.782, 21:33:41.306",
			r.FirstClaim.Format(time.StampMilli), r.LastStart.Format(time.StampMilli))
	}
	if r.Changes != 35 || r.Starts != 5 || r.SchedulerRuns != 14 || r.Transitions != 0 || r.CIBWrites != 1 {
		t.Errorf("changes %d, starts %d, scheduler runs %d, transitions %d, CIB writes %d; want 35, 5, 14, 0, 1",
			r.Changes, r.Starts, r.SchedulerRuns, r.Transitions, r.CIBWrites)
	}
	if r.Aborts["Transient attribute change"] != 1 {
		t.Errorf("aborts %v, want 1 Transient attribute change", r.Aborts)
	}
	if none := analyzeRound(lines, "vip", "n4", "n2"); !none.FirstClaim.IsZero() || none.Changes != 0 || none.Starts != 0 {
		t.Errorf("round for a node never claimed: %+v, want nothing", none)
	}
}

// readFixtures reads the lines in [from, to] of log excerpts in testdata.
func readFixtures(t *testing.T, from, to time.Time, names ...string) []logLine {
	t.Helper()
	var lines []logLine
	for _, name := range names {
		f, err := os.Open("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := readLog(f, from, to, time.UTC)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, ls...)
	}
	return lines
}

// TestAnalyzeRoundActions: the DC's stops and starts of buckets are
// counted, the most of them in flight at once, and the throttle notices.
func TestAnalyzeRoundActions(t *testing.T) {
	log := `Dec 06 22:00:00.000 n2 pacemaker-attrd     [1] (attrd_peer_update_one) 	notice: Setting own_vip_1[n3]: (unset) -> 1 | from n1
Dec 06 22:00:00.100 n1 pacemaker-controld  [2] (te_rsc_command) 	notice: Initiating stop operation vip_1_stop_0 on n2 | action 5
Dec 06 22:00:00.110 n1 pacemaker-controld  [2] (te_rsc_command) 	notice: Initiating stop operation vip_2_stop_0 on n2 | action 6
Dec 06 22:00:00.200 n1 pacemaker-controld  [2] (match_graph_event) 	info: Transition 7 action 5 (vip_1_stop_0 on n2) confirmed: ok | rc=0 call-id=9
Dec 06 22:00:00.210 n1 pacemaker-controld  [2] (te_rsc_command) 	notice: Initiating start operation vip_1_start_0 on n3 | action 7
Dec 06 22:00:00.220 n1 pacemaker-controld  [2] (throttle_check_thresholds) 	notice: High CIB load detected: 0.990000
Dec 06 22:00:00.300 n1 pacemaker-controld  [2] (match_graph_event) 	info: Transition 7 action 6 (vip_2_stop_0 on n2) confirmed: ok | rc=0 call-id=10
Dec 06 22:00:00.310 n1 pacemaker-controld  [2] (match_graph_event) 	info: Transition 7 action 7 (vip_1_start_0 on n3) confirmed: ok | rc=0 call-id=11
Dec 06 22:00:00.320 n1 pacemaker-controld  [2] (te_rsc_command) 	notice: Initiating start operation vip_2_start_0 on n3 | action 8
`
	lines, err := readLog(strings.NewReader(log), time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	r := analyzeRound(lines, "vip", "n3", "n2")
	if r.Actions != 4 || r.MaxInFlight != 2 || r.Throttle["High CIB load"] != 1 {
		t.Errorf("actions %d, at most %d in flight, throttle %v; want 4, 2, High CIB load 1", r.Actions, r.MaxInFlight, r.Throttle)
	}
}
