package lab

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loadshare/loadshare/crm"
)

// Timeline is what a run of the lab saw, sample by sample: the buckets
// each node's kernel owned, the nodes' server_load and writable_monit,
// and the events (phases, faults) that moved them. WriteSVG draws it.
type Timeline struct {
	Nodes   []string
	Buckets int // the VIP's bucket count: the height of the bucket panel
	Samples []Sample
	Events  []Event
}

// Sample is one reading of the whole lab.
type Sample struct {
	At       time.Duration   // since the run started
	Owned    map[string]int  // buckets owned by each node's kernel; nil when one could not be read
	Load     map[string]int  // server_load; absent when not published
	Writable map[string]bool // writable_monit=1
}

// Event is a moment worth marking: a phase starting, a fault.
type Event struct {
	At    time.Duration
	Label string
}

// Mark adds an event at the given time.
func (t *Timeline) Mark(at time.Duration, label string) {
	t.Events = append(t.Events, Event{At: at, Label: label})
}

// palette gives each node a colour that stays distinguishable printed in
// grey (Okabe-Ito, for colour-blind readers).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// svg geometry, in user units.
const (
	svgWidth   = 1000.0
	svgLeft    = 70.0  // y-axis labels
	svgRight   = 110.0 // legend
	svgTop     = 30.0
	panelGap   = 34.0
	bucketsH   = 220.0
	loadH      = 140.0
	writableH  = 16.0 // one strip per node
	eventLabel = 150.0
)

// WriteSVG draws the timeline as a standalone SVG: buckets per node
// (stacked bands, the bucket count as the top), server_load per node (0–100)
// and a strip per node that is filled while writable_monit=1, over one
// time axis, with each event as a dashed line labelled at the bottom.
func (t *Timeline) WriteSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var end time.Duration
	for _, s := range t.Samples {
		end = max(end, s.At)
	}
	for _, e := range t.Events {
		end = max(end, e.At)
	}
	if end <= 0 {
		end = time.Second
	}
	plotW := svgWidth - svgLeft - svgRight
	x := func(at time.Duration) float64 { return svgLeft + plotW*at.Seconds()/end.Seconds() }
	bucketsTop := svgTop
	loadTop := bucketsTop + bucketsH + panelGap
	writableTop := loadTop + loadH + panelGap
	writableBottom := writableTop + writableH*float64(len(t.Nodes))
	height := writableBottom + 30 + eventLabel

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")

	// Panel frames, titles and y scales.
	buckets := float64(max(t.Buckets, 1))
	panel := func(top, h float64, title string, ticks []float64, scale float64) {
		fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", svgLeft, top, plotW, h)
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" font-weight="bold">%s</text>`+"\n", svgLeft, top-8, esc(title))
		for _, v := range ticks {
			y := top + h - h*v/scale
			fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", svgLeft, y, svgLeft+plotW, y)
			fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="end">%g</text>`+"\n", svgLeft-6, y+4, v)
		}
	}
	panel(bucketsTop, bucketsH, fmt.Sprintf("buckets owned by each node's kernel, stacked (of %d)", t.Buckets), ticks(buckets), buckets)
	panel(loadTop, loadH, "server_load", []float64{0, 25, 50, 75, 100}, 100)
	fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" font-weight="bold">writable_monit=1</text>`+"\n", svgLeft, writableTop-8)

	// Buckets as stacked bands, node by node, so that the top edge is the
	// number of buckets owned anywhere: a dip below the bucket count is a
	// dark bucket, a rise above it one owned twice. server_load as one line
	// per node, broken where a node published none (down).
	base := make([]float64, len(t.Samples))
	for i, n := range t.Nodes {
		colour := palette[i%len(palette)]
		var top, bottom []string
		for j, s := range t.Samples {
			if s.Owned == nil {
				continue // a kernel could not be read: no stack for this sample
			}
			y0 := base[j]
			base[j] += float64(s.Owned[n])
			top = append(top, fmt.Sprintf("%.1f,%.1f", x(s.At), bucketsTop+bucketsH-bucketsH*base[j]/buckets))
			bottom = append(bottom, fmt.Sprintf("%.1f,%.1f", x(s.At), bucketsTop+bucketsH-bucketsH*y0/buckets))
		}
		slices.Reverse(bottom)
		fmt.Fprintf(bw, `<polygon id="buckets-%s" fill="%s" fill-opacity="0.8" stroke="white" stroke-width="0.5" points="%s"/>`+"\n",
			esc(n), colour, strings.Join(append(top, bottom...), " "))
		line(bw, colour, "load-"+n, t.Samples, x, func(s Sample) (float64, bool) {
			v, ok := s.Load[n]
			return loadTop + loadH - loadH*float64(v)/100, ok
		})
		// writable_monit: one bar per run of samples where it was 1.
		y := writableTop + writableH*float64(i)
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLeft-6, y+writableH-4, esc(n))
		fmt.Fprintf(bw, `<g id="writable-%s" fill="%s">`+"\n", esc(n), colour)
		for j := 0; j < len(t.Samples); j++ {
			if !t.Samples[j].Writable[n] {
				continue
			}
			from := t.Samples[j].At
			for j+1 < len(t.Samples) && t.Samples[j+1].Writable[n] {
				j++
			}
			to := end
			if j+1 < len(t.Samples) {
				to = t.Samples[j+1].At
			}
			fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`+"\n", x(from), y+2, math.Max(x(to)-x(from), 0.5), writableH-4)
		}
		fmt.Fprintf(bw, "</g>\n")
		// Legend.
		ly := bucketsTop + 16*float64(i) + 10
		fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="14" height="8" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			svgLeft+plotW+12, ly-7, colour, svgLeft+plotW+32, ly, esc(n))
	}

	// Time axis and events.
	for _, s := range timeTicks(end) {
		xx := x(s)
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xx, writableBottom+16, tickText(s))
	}
	fmt.Fprintf(bw, `<g id="events" stroke="#555" stroke-dasharray="4 3">`+"\n")
	for _, e := range t.Events {
		fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x(e.At), bucketsTop, x(e.At), writableBottom)
	}
	fmt.Fprintf(bw, "</g>\n")
	// Labels slanted below the axis, cut to a readable length; one close
	// to the previous label starts lower, so they do not overprint.
	prevX, drop := math.Inf(-1), 0.0
	for _, e := range t.Events {
		label := []rune(e.Label)
		if len(label) > 28 {
			label = append(label[:27], '…')
		}
		if x(e.At)-prevX < 18 {
			drop += 14
		} else {
			drop = 0
		}
		prevX = x(e.At)
		fmt.Fprintf(bw, `<text class="event" transform="translate(%.1f,%.1f) rotate(45)">%s</text>`+"\n", x(e.At)+3, writableBottom+26+drop, esc(string(label)))
	}
	fmt.Fprintf(bw, "</svg>\n")
	return bw.Flush()
}

// line draws one node's values as polylines, broken where it has none.
func line(w io.Writer, colour, id string, samples []Sample, x func(time.Duration) float64, y func(Sample) (float64, bool)) {
	fmt.Fprintf(w, `<g id="%s" fill="none" stroke="%s" stroke-width="2">`+"\n", esc(id), colour)
	var pts []string
	flush := func() {
		if len(pts) > 0 {
			fmt.Fprintf(w, `<polyline points="%s"/>`+"\n", strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for _, s := range samples {
		v, ok := y(s)
		if !ok {
			flush()
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.At), v))
	}
	flush()
	fmt.Fprintf(w, "</g>\n")
}

// ticks are up to 5 round values from 0 to top.
func ticks(top float64) []float64 {
	step := math.Max(1, math.Ceil(top/4))
	var out []float64
	for v := 0.0; v <= top; v += step {
		out = append(out, v)
	}
	return out
}

// timeTicks are about 10 round times from 0 to end.
func timeTicks(end time.Duration) []time.Duration {
	step := time.Second
	for _, s := range []time.Duration{5, 10, 15, 30, 60, 120, 300, 600} {
		if end/(s*time.Second) <= 10 {
			step = s * time.Second
			break
		}
		step = s * time.Second
	}
	var out []time.Duration
	for t := time.Duration(0); t <= end; t += step {
		out = append(out, t)
	}
	return out
}

// tickText is 0s, 10s, … 50s, 1m, 1m10s: short, as an axis wants.
func tickText(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	m, s := int(d/time.Minute), int((d % time.Minute).Seconds())
	if s == 0 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dm%ds", m, s)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Recorder samples a running lab into a Timeline until stopped: the
// buckets each running node's kernel owns, and server_load and
// writable_monit as the first running node's crm_mon shows them.
type Recorder struct {
	mu   sync.Mutex
	tl   Timeline
	t0   time.Time
	stop chan struct{}
	done chan struct{}
}

// Record starts sampling l every interval (one crm_mon and a kernel read
// per running node each time); Stop ends it and returns the timeline.
func (l *Lab) Record(ctx context.Context, buckets int, every time.Duration) *Recorder {
	r := &Recorder{tl: Timeline{Nodes: l.Nodes(), Buckets: buckets}, t0: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			r.sample(ctx, l)
			select {
			case <-ctx.Done():
				return
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *Recorder) sample(ctx context.Context, l *Lab) {
	s := Sample{At: time.Since(r.t0), Owned: map[string]int{}, Load: map[string]int{}, Writable: map[string]bool{}}
	viewer := ""
	for _, n := range l.Nodes() {
		if !l.Running(n) {
			continue
		}
		if viewer == "" {
			viewer = n
		}
		owned, err := l.KernelOwned(n)
		if err != nil {
			s.Owned = nil // a partial stack would draw a dark bucket that was not
			continue
		}
		if s.Owned != nil {
			s.Owned[n] = len(owned)
		}
	}
	if viewer != "" {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := l.Cluster(cctx, viewer)
		cancel()
		if err == nil {
			for _, n := range l.Nodes() {
				if v, ok := c.Attr(n, crm.AttrLoad); ok {
					if load, err := strconv.Atoi(v); err == nil {
						s.Load[n] = load
					}
				}
				if v, _ := c.Attr(n, crm.AttrWritable); v == "1" {
					s.Writable[n] = true
				}
			}
		}
	}
	r.mu.Lock()
	r.tl.Samples = append(r.tl.Samples, s)
	r.mu.Unlock()
}

// Mark adds an event now.
func (r *Recorder) Mark(label string) {
	r.mu.Lock()
	r.tl.Mark(time.Since(r.t0), label)
	r.mu.Unlock()
}

// Stop ends the sampling and returns what was recorded.
func (r *Recorder) Stop() *Timeline {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	tl := r.tl
	return &tl
}
