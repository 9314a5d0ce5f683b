package crm

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRoundOf(t *testing.T) {
	moving := Plan{Set: []AttrChange{{Node: "n1", Name: "own_vip_0"}}, Delete: []AttrChange{{Node: "n2", Name: "own_vip_0"}},
		Owners: Placement{"n1"}, Running: Placement{"n2"}}
	for _, c := range []struct {
		name    string
		plan    Plan
		skipped string
		err     error
		want    string
	}{
		{"writes", moving, "", nil, RoundApplied},
		{"nothing to write", Plan{}, "", nil, RoundBalanced},
		{"not the DC", Plan{}, `this node (n1) is not the DC ("n2")`, nil, RoundNotDC},
		{"no buckets", Plan{}, ErrNoBuckets.Error() + " vip_0 … in the cluster status", nil, RoundNoBuckets},
		{"failed", moving, "", errors.New("attrd_updater: exit status 1"), RoundFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := RoundOf(c.plan, c.skipped, c.err); got != c.want {
				t.Errorf("RoundOf(%q, %v) = %s, want %s", c.skipped, c.err, got, c.want)
			}
		})
	}
	var s PlacerStats
	at := time.Now()
	s.Add(NewPlacerRound(at, time.Second, moving, "", nil))
	s.Add(NewPlacerRound(at, time.Second, moving, "", errors.New("cut")))
	s.Add(NewPlacerRound(at, time.Second, Plan{}, "", nil))
	if s.Moves != 1 || s.Writes != 2 || s.Rounds[RoundApplied] != 1 || s.Rounds[RoundFailed] != 1 || s.Last.Result != RoundBalanced {
		t.Errorf("stats after applied, failed, balanced = %+v; want 1 move, 2 writes (the failed round's not counted), last balanced", s)
	}
}

func TestVIPsIn(t *testing.T) {
	st := &Status{Resources: []Resource{
		{ID: "ro_1"}, {ID: "ro_0"}, {ID: "vip_0"}, {ID: "vip_1"},
		{ID: "web_2"}, // no web_0: not a bucket set
		{ID: "server_load:0", Clone: "server_load-clone"}, // a clone instance
		{ID: "c_0", Clone: "c-clone"},
	}}
	if got, want := VIPsIn(st), []string{"ro", "vip"}; !slices.Equal(got, want) {
		t.Errorf("VIPsIn = %q, want %q", got, want)
	}
}
