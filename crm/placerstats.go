package crm

import (
	"strings"
	"time"
)

// Results of a placer round: what it did, or why it did nothing. Few and
// fixed, so that a metric can carry them as a label.
const (
	RoundApplied   = "applied"    // this node is the DC and wrote own_* changes
	RoundBalanced  = "balanced"   // this node is the DC; every bucket already had its owner
	RoundNotDC     = "not_dc"     // another node is the DC and places
	RoundNoBuckets = "no_buckets" // the cluster has no bucket primitives of the VIP
	RoundFailed    = "failed"     // reading the cluster or writing an attribute failed
)

// RoundResults is every result, in a fixed order.
var RoundResults = []string{RoundApplied, RoundBalanced, RoundNotDC, RoundNoBuckets, RoundFailed}

// RoundOf names the result of what PlaceSettling returned.
func RoundOf(plan Plan, skipped string, err error) string {
	switch {
	case err != nil:
		return RoundFailed
	case strings.HasPrefix(skipped, ErrNoBuckets.Error()): // PlaceSettling's own text
		return RoundNoBuckets
	case skipped != "":
		return RoundNotDC
	case plan.Empty():
		return RoundBalanced
	}
	return RoundApplied
}

// PlacerStats is what one node's placer rounds of one VIP did, summed
// since the record began (the server_load agent keeps it in its state
// file: every monitor is a new process). Read by the metrics.
type PlacerStats struct {
	Rounds map[string]uint64 `json:"rounds"` // by result (RoundResults)
	Moves  uint64            `json:"moves"`  // running buckets sent to another node
	Writes uint64            `json:"writes"` // own_* attributes set or deleted
	Last   PlacerRound       `json:"last"`
}

// PlacerRound is one round as PlacerStats records it.
type PlacerRound struct {
	Result   string        `json:"result"`
	Reason   string        `json:"reason,omitempty"` // skipped's or the error's text
	At       time.Time     `json:"at"`               // when the round started
	Duration time.Duration `json:"duration"`
	Moves    int           `json:"moves"`
	Writes   int           `json:"writes"`
}

// NewPlacerRound is the record of a round that started at and took d,
// from what PlaceSettling returned.
func NewPlacerRound(at time.Time, d time.Duration, plan Plan, skipped string, err error) PlacerRound {
	r := PlacerRound{Result: RoundOf(plan, skipped, err), Reason: skipped, At: at, Duration: d}
	if err != nil {
		r.Reason = err.Error()
	}
	if r.Result == RoundApplied || r.Result == RoundFailed {
		// A failed Apply may have written part of the plan; the counts
		// are what it meant to write.
		r.Moves, r.Writes = plan.Moves(), len(plan.Set)+len(plan.Delete)
	}
	return r
}

// Add counts one round.
func (s *PlacerStats) Add(r PlacerRound) {
	if s.Rounds == nil {
		s.Rounds = map[string]uint64{}
	}
	s.Rounds[r.Result]++
	if r.Result == RoundApplied {
		s.Moves += uint64(r.Moves)
		s.Writes += uint64(r.Writes)
	}
	s.Last = r
}
