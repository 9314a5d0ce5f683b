package lab

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// demoLike is a timeline shaped like the demo's: an even spread, n1
// loaded (its buckets leave), n3 crashed (no samples), back.
func demoLike() *Timeline {
	tl := &Timeline{Nodes: []string{"n1", "n2", "n3"}, Buckets: 12}
	for s := 0; s <= 60; s++ {
		at := time.Duration(s) * time.Second
		own := map[string]int{"n1": 4, "n2": 4, "n3": 4}
		load := map[string]int{"n1": 20, "n2": 20, "n3": 20}
		wr := map[string]bool{"n1": true, "n2": true, "n3": true}
		switch {
		case s >= 10 && s < 25:
			own = map[string]int{"n1": 0, "n2": 6, "n3": 6}
			load["n1"] = 90
		case s >= 40 && s < 50: // n3 crashed: no reading at all
			own = map[string]int{"n1": 6, "n2": 6}
			delete(load, "n3")
			delete(wr, "n3")
		}
		tl.Samples = append(tl.Samples, Sample{At: at, Owned: own, Load: load, Writable: wr})
	}
	tl.Mark(10*time.Second, "load n1 <SLEEP>")
	tl.Mark(40*time.Second, "crash n3")
	tl.Samples[30].Owned = nil // a kernel not read: that sample has no stack
	return tl
}

// svgElem is the parsed picture: enough to check what it draws.
type svgElem struct {
	XMLName  xml.Name
	ID       string    `xml:"id,attr"`
	Class    string    `xml:"class,attr"`
	Points   string    `xml:"points,attr"`
	Text     string    `xml:",chardata"`
	Children []svgElem `xml:",any"`
}

func (e svgElem) find(id string) *svgElem {
	if e.ID == id {
		return &e
	}
	for _, c := range e.Children {
		if f := c.find(id); f != nil {
			return f
		}
	}
	return nil
}

func (e svgElem) texts(class string, out *[]string) {
	if e.XMLName.Local == "text" && e.Class == class {
		*out = append(*out, e.Text)
	}
	for _, c := range e.Children {
		c.texts(class, out)
	}
}

// TestTimelineSVG: the picture is well-formed XML with one bucket line and
// one load line per node (broken while a node has no reading), a
// writable strip per node, every event as a line and an escaped label;
// a node owning every bucket is drawn at the panel's top.
func TestTimelineSVG(t *testing.T) {
	var buf bytes.Buffer
	tl := demoLike()
	if err := tl.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	var root svgElem
	if err := xml.Unmarshal(buf.Bytes(), &root); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, buf.String())
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root element %v, want svg in the SVG namespace", root.XMLName)
	}
	for _, n := range tl.Nodes {
		if g := root.find("load-" + n); g == nil || len(g.Children) != map[bool]int{true: 2, false: 1}[n == "n3"] {
			t.Errorf("load-%s: %v, want one polyline (two for n3: broken by its crash)", n, g)
		}
		if g := root.find("buckets-" + n); g == nil || g.XMLName.Local != "polygon" || len(strings.Fields(g.Points)) != 2*(len(tl.Samples)-1) {
			t.Errorf("buckets-%s: %v, want a band over every sample but the one without a reading", n, g)
		}
		// One bar per run of writable samples: n3 has two (crash between).
		if g := root.find("writable-" + n); g == nil || len(g.Children) != map[bool]int{true: 2, false: 1}[n == "n3"] {
			t.Errorf("writable-%s: %v, want one bar per writable run", n, g)
		}
	}
	// The stack's top at t=0 is all 12 buckets (the panel's top edge, y=30);
	// n1's band there runs from 0 to 4 of 12.
	pts := strings.Fields(root.find("buckets-n3").Points)
	if pts[0] != "70.0,30.0" {
		t.Errorf("top of the stack at t=0: %s, want 70.0,30.0 (12 of 12 buckets)", pts[0])
	}
	n1 := strings.Fields(root.find("buckets-n1").Points)
	if n1[0] != "70.0,176.7" || n1[len(n1)-1] != "70.0,250.0" {
		t.Errorf("n1's band at t=0: %s … %s, want 70.0,176.7 (4 of 12) over 70.0,250.0 (0)", n1[0], n1[len(n1)-1])
	}
	if ev := root.find("events"); ev == nil || len(ev.Children) != 2 {
		t.Errorf("events: %v, want 2 lines", ev)
	}
	var labels []string
	root.texts("event", &labels)
	if strings.Join(labels, "|") != "load n1 <SLEEP>|crash n3" {
		t.Errorf("event labels %q", labels)
	}

	// Rendered by a real SVG renderer: librsvg (rsvg-convert, installed
	// with the test packages) and headless Chromium when this machine has
	// one. A picture that renders to an almost empty PNG fails.
	dir := t.TempDir()
	svg := filepath.Join(dir, "t.svg")
	if err := os.WriteFile(svg, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rendered := 0
	render := func(name string, argv ...string) {
		path, err := exec.LookPath(name)
		if err != nil {
			return
		}
		png := argv[len(argv)-1]
		cmd := exec.Command(path, argv[:len(argv)-1]...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if name != "rsvg-convert" {
			cmd.Args = append(cmd.Args, "--screenshot="+png, "file://"+svg)
		} else {
			cmd.Args = append(cmd.Args, "-o", png, svg)
		}
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if st, err := os.Stat(png); err != nil || st.Size() < 10000 {
			t.Errorf("%s rendered %s: %v, %v; want a picture of more than 10 kB", name, png, err, st)
		}
		rendered++
	}
	render("rsvg-convert", filepath.Join(dir, "rsvg.png"))
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		render(b, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,700", filepath.Join(dir, b+".png"))
	}
	if rendered == 0 {
		t.Log("no SVG renderer (rsvg-convert, Chromium) on this machine: the picture is checked as XML only")
	}
}
