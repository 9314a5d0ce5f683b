package clusterip

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// floodSim runs the flood check of a few nodes in simulated time: what
// the clustervip agent does at each monitor (send FloodBurst probes, then
// FloodMemory.Observe of its count, the peers' attribute when asked,
// JudgeFlood, FloodValue written on change, Publish), with a shared attrd whose values every node
// sees at once, monitors at random phases and late by up to half an
// interval, and a network the scenario changes over time.
type floodSim struct {
	nodes    []string
	interval time.Duration
	rng      *rand.Rand
	// deliver says whether a probe from one node reaches another at t
	// (before loss); nil: always.
	deliver func(t time.Duration, from, to string) bool
	loss    func(t time.Duration, to string) float64 // probability a frame to `to` is lost
	alive   func(t time.Duration, n string) bool     // nil: always
	attrs   map[string]string                        // attrd: flood_NAME by node
	st      map[string]*simNode
	// wrote records each node's published values in order ("" deletes).
	wrote map[string][]string
}

type simNode struct {
	FloodMemory
	next  time.Time
	count uint64 // the kernel's counters, summed
	up    bool
}

var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newFloodSim(seed uint64, nodes ...string) *floodSim {
	return &floodSim{nodes: nodes, interval: 2 * time.Second, rng: rand.New(rand.NewPCG(seed, 1)),
		attrs: map[string]string{}, st: map[string]*simNode{}, wrote: map[string][]string{}}
}

func (s *floodSim) run(end time.Duration) {
	w := 3 * s.interval
	confirm := max(w, 3*s.interval)
	for t := time.Duration(0); t <= end; t += 10 * time.Millisecond {
		now := simEpoch.Add(t)
		for _, n := range s.nodes {
			up := s.alive == nil || s.alive(t, n)
			st := s.st[n]
			switch {
			case !up && st != nil && st.up:
				st.up = false
				delete(s.attrs, n) // attrd forgets a node that left
				continue
			case !up:
				continue
			case st == nil || !st.up: // start
				st = &simNode{FloodMemory: NewFloodMemory(now), up: true,
					next: now.Add(time.Duration(s.rng.Int64N(int64(s.interval))))}
				s.st[n] = st
			}
			if now.Before(st.next) {
				continue
			}
			st.next = now.Add(s.interval + time.Duration(s.rng.Int64N(int64(s.interval/2))))
			for _, to := range s.nodes {
				peer := s.st[to]
				if to == n || peer == nil || !peer.up || (s.deliver != nil && !s.deliver(t, n, to)) {
					continue
				}
				for range FloodBurst {
					if s.loss == nil || s.rng.Float64() >= s.loss(t, to) {
						peer.count++
					}
				}
			}
			in, ask := st.Observe(now, st.count, w, confirm)
			if ask {
				for _, p := range s.nodes {
					if p != n && s.attrs[p] == "1" {
						in.PeersReached = append(in.PeersReached, p)
					}
				}
			}
			v, _ := JudgeFlood(in)
			if want := FloodValue(v); want != st.Published {
				if want == "" {
					delete(s.attrs, n)
				} else {
					s.attrs[n] = want
				}
				s.wrote[n] = append(s.wrote[n], want)
				st.Publish(now, want)
			}
		}
	}
}

// ever reports whether node n ever published val.
func (s *floodSim) ever(n, val string) bool {
	for _, v := range s.wrote[n] {
		if v == val {
			return true
		}
	}
	return false
}

func after(t0 time.Duration, nodes ...string) func(time.Duration, string, string) bool {
	return func(t time.Duration, from, to string) bool {
		for _, n := range nodes {
			if t >= t0 && to == n {
				return false
			}
		}
		return true
	}
}

// TestFloodFalsePositives: issue 16's false positives, over 100 random
// phase draws each: no scenario but a real fault ever publishes 0, none
// darkens every node, none flaps.
func TestFloodFalsePositives(t *testing.T) {
	const fault = 60 * time.Second
	for _, c := range []struct {
		name  string
		nodes []string
		setup func(*floodSim)
		end   time.Duration
		check func(*floodSim) error
	}{
		{"one node silenced: it alone is unreached", []string{"n1", "n2", "n3"},
			func(s *floodSim) { s.deliver = after(fault, "n2") }, 120 * time.Second,
			func(s *floodSim) error {
				if s.attrs["n2"] != "0" || s.attrs["n1"] != "1" || s.attrs["n3"] != "1" {
					return fmt.Errorf("attributes %v, want n2=0, n1=n3=1", s.attrs)
				}
				return nil
			}},
		{"every node silenced at once: all keep serving", []string{"n1", "n2", "n3"},
			func(s *floodSim) { s.deliver = after(fault, "n1", "n2", "n3") }, 180 * time.Second,
			func(s *floodSim) error {
				for _, n := range s.nodes {
					if s.ever(n, "0") {
						return fmt.Errorf("%s published 0 (writes %v)", n, s.wrote)
					}
				}
				return nil
			}},
		{"two of three silenced: the third serves", []string{"n1", "n2", "n3"},
			func(s *floodSim) { s.deliver = after(fault, "n2", "n3") }, 150 * time.Second,
			func(s *floodSim) error {
				if s.ever("n1", "0") || s.attrs["n1"] != "1" || s.attrs["n2"] != "0" || s.attrs["n3"] != "0" {
					return fmt.Errorf("attributes %v (writes %v), want n1=1 throughout, n2=n3=0", s.attrs, s.wrote)
				}
				return nil
			}},
		{"one peer down: the others keep 1", []string{"n1", "n2", "n3"},
			func(s *floodSim) { s.alive = func(t time.Duration, n string) bool { return n != "n3" || t < fault } }, 150 * time.Second,
			func(s *floodSim) error {
				for _, n := range []string{"n1", "n2"} {
					if len(s.wrote[n]) != 1 || s.attrs[n] != "1" {
						return fmt.Errorf("%s wrote %v, want 1 once", n, s.wrote[n])
					}
				}
				return nil
			}},
		{"two nodes, one down: the survivor is never judged", []string{"n1", "n2"},
			func(s *floodSim) { s.alive = func(t time.Duration, n string) bool { return n != "n2" || t < fault } }, 150 * time.Second,
			func(s *floodSim) error {
				if s.ever("n1", "0") {
					return fmt.Errorf("n1 wrote %v, want never 0", s.wrote["n1"])
				}
				return nil
			}},
		{"a node that just joined", []string{"n1", "n2", "n3"},
			func(s *floodSim) { s.alive = func(t time.Duration, n string) bool { return n != "n3" || t >= fault } }, 120 * time.Second,
			func(s *floodSim) error {
				for _, n := range s.nodes {
					if s.ever(n, "0") || s.attrs[n] != "1" {
						return fmt.Errorf("writes %v, want 1 on every node, never 0", s.wrote)
					}
				}
				return nil
			}},
		{"one-node cluster", []string{"n1"}, func(*floodSim) {}, 120 * time.Second,
			func(s *floodSim) error {
				if len(s.wrote["n1"]) != 0 {
					return fmt.Errorf("n1 wrote %v, want nothing (never judged)", s.wrote["n1"])
				}
				return nil
			}},
		{"50% of the frames to n2 lost for an hour: no flapping", []string{"n1", "n2", "n3"},
			func(s *floodSim) {
				s.loss = func(t time.Duration, to string) float64 { return map[bool]float64{true: 0.5}[to == "n2"] }
			}, time.Hour,
			func(s *floodSim) error {
				if len(s.wrote["n2"]) != 1 {
					return fmt.Errorf("n2 wrote %v, want 1 once", s.wrote["n2"])
				}
				return nil
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			runs := 100
			if c.end > 10*time.Minute {
				runs = 3
			}
			for seed := range uint64(runs) {
				s := newFloodSim(seed, c.nodes...)
				c.setup(s)
				s.run(c.end)
				if err := c.check(s); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}
