package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/crm"
)

func init() {
	register(command{
		name:    "man",
		summary: "print or write the man pages: loadshare(8) and ocf_loadshare_AGENT(7)",
		run:     runMan,
	})
}

const manUsage = `usage: loadshare man [PAGE]          print one page (loadshare, or an agent: clustervip, …)
       loadshare man --dir DIR        write every page: DIR/loadshare.8, DIR/ocf_loadshare_AGENT.7

The pages are made from the declarations the programs use: the agents'
parameters and actions (the same as their meta-data) and the commands' flags
(the same as -h prints). Read one without installing it: loadshare man crm | man -l -`

func runMan(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("man", manUsage, stderr)
	dir := fs.String("dir", "", "write every page into this directory instead of printing one")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	pages := manPages()
	if *dir != "" {
		if fs.NArg() > 0 {
			return fmt.Errorf("--dir writes every page, not %q: %w", fs.Arg(0), errUsage)
		}
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		for _, p := range pages {
			if err := os.WriteFile(filepath.Join(*dir, p.file()), p.render(), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	want := "loadshare"
	if fs.NArg() > 1 {
		return fmt.Errorf("one page at a time: %w", errUsage)
	}
	if fs.NArg() == 1 {
		want = fs.Arg(0)
	}
	for _, p := range pages {
		if p.name == want || p.name == "ocf_loadshare_"+want {
			_, err := stdout.Write(p.render())
			return err
		}
	}
	return fmt.Errorf("no man page %q (loadshare, %s): %w", want, strings.Join(crm.Agents, ", "), errUsage)
}

// manPage is one page: its name, section and a body that writes roff.
type manPage struct {
	name    string
	section string
	title   string // the centre header, e.g. "OCF resource agents"
	body    func(w *roff)
}

func (p manPage) file() string { return p.name + "." + p.section }

func (p manPage) render() []byte {
	w := &roff{}
	w.req(".TH", strings.ToUpper(p.name), p.section, "", "loadshare "+ocf.Version(), p.title)
	p.body(w)
	return w.Bytes()
}

// manPages is loadshare(8) and one page per agent.
func manPages() []manPage {
	pages := []manPage{{name: "loadshare", section: "8", title: "System Administration", body: cliPage}}
	for _, a := range crm.Agents {
		m, err := agentMeta(a)
		if err != nil {
			panic(err) // crm.Agents and the linked agents are one list (agents.go)
		}
		actions, _ := ocf.ActionsOf(a)
		pages = append(pages, manPage{name: "ocf_loadshare_" + a, section: "7", title: "OCF resource agents",
			body: func(w *roff) { agentPage(w, m, actions) }})
	}
	return pages
}

func seeAlso(w *roff, except string) {
	var refs []string
	if except != "loadshare" {
		refs = append(refs, "loadshare(8)")
	}
	for _, a := range crm.Agents {
		if a != except {
			refs = append(refs, "ocf_loadshare_"+a+"(7)")
		}
	}
	refs = append(refs, "crm(8)", "pcs(8)", "crm_mon(8)", "attrd_updater(8)")
	w.section("SEE ALSO")
	w.text(strings.Join(refs, ", "))
}

// cliPage documents every command from the flag sets it makes when asked
// for -h (recordFlagSets): names, defaults and texts are the parser's own.
func cliPage(w *roff) {
	w.section("NAME")
	w.text("loadshare - a virtual IP shared by every node of a Pacemaker-managed MySQL/MariaDB cluster: configuration, status, lab and benchmarks")
	w.section("SYNOPSIS")
	w.line(`\fBloadshare\fR \fICOMMAND\fR [\fIflags\fR]`)
	w.line(".br")
	w.line(`\fBloadshare \-\-version\fR`)
	w.section("DESCRIPTION")
	w.text("Every node answers the new connections whose hash bucket it owns; Pacemaker decides who owns which bucket. " +
		"The OCF resource agents that do it are programs of their own, installed in /usr/lib/ocf/resource.d/loadshare; " +
		"this command writes their configuration, shows who serves what, and runs a lab and benchmarks on one machine. " +
		"Every flag takes one dash or two (-name, --name).")
	w.section("COMMANDS")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := commands[n]
		w.req(".SS", "loadshare "+n)
		w.text(c.summary)
		// Flag sets with the same flags (lab down, lab status, …) are listed once.
		var groups []*flagGroup
		bySig := map[string]*flagGroup{}
		usages := map[string]bool{}
		for _, args := range append([][]string{nil}, subArgs(c)...) {
			for _, fs := range recordFlagSets(c, args...) {
				if !usages[fs.usage] {
					usages[fs.usage] = true
					w.pre(fs.usage)
				}
				sig := flagSignature(fs.FlagSet)
				if g := bySig[sig]; g != nil {
					if !slices.Contains(g.names, fs.Name()) {
						g.names = append(g.names, fs.Name())
					}
					continue
				}
				g := &flagGroup{names: []string{fs.Name()}, fs: fs.FlagSet}
				bySig[sig] = g
				groups = append(groups, g)
			}
		}
		for _, g := range groups {
			if sig := flagSignature(g.fs); sig == "" {
				continue
			}
			w.text("Flags of loadshare " + strings.Join(g.names, ", loadshare ") + ":")
			w.flags(g.fs)
		}
	}
	w.section("EXIT STATUS")
	w.text("0 on success (and for -h), 1 when the command failed, 2 for a usage error.")
	seeAlso(w, "loadshare")
}

type flagGroup struct {
	names []string
	fs    *flag.FlagSet
}

// flagSignature is the flags' names, kinds and texts.
func flagSignature(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) { fmt.Fprintf(&b, "%s\x00%s\x00%s\n", f.Name, f.Usage, f.DefValue) })
	return b.String()
}

// subArgs is the first argument of each of a command's subcommands (crm
// generate, lab up, …): each makes a flag set of its own.
func subArgs(c command) [][]string {
	var out [][]string
	for _, s := range c.subcommands {
		out = append(out, []string{s})
	}
	return out
}

// agentPage documents an agent from its declarations, as its meta-data does.
func agentPage(w *roff, m ocf.Meta, actions []ocf.Action) {
	w.section("NAME")
	w.text("ocf_loadshare_" + m.Name + " - " + m.ShortDesc)
	w.section("SYNOPSIS")
	var names []string
	for _, a := range actions {
		names = append(names, a.Name)
	}
	w.line(`\fB` + m.Name + `\fR [` + escape(strings.Join(names, " | ")) + "]")
	w.section("DESCRIPTION")
	w.text(m.LongDesc)
	w.section("SUPPORTED PARAMETERS")
	for _, p := range m.Params {
		w.line(".TP")
		var tags []string
		tags = append(tags, p.Type.String())
		if p.Required {
			tags = append(tags, "required")
		}
		if p.Default != "" {
			tags = append(tags, "default "+p.Default)
		}
		if p.Unique {
			tags = append(tags, "unique")
		}
		if p.Reloadable {
			tags = append(tags, "reloadable")
		}
		w.line(`\fB` + escape(p.Name) + `\fR (` + escape(strings.Join(tags, ", ")) + ")")
		w.fill(p.ShortDesc + ". " + p.LongDesc)
	}
	w.section("SUPPORTED ACTIONS")
	for _, a := range actions {
		w.line(".TP")
		w.line(`\fB` + escape(a.Name) + `\fR`)
		s := "timeout " + a.Timeout.String()
		if a.Interval > 0 {
			s += ", interval " + a.Interval.String()
		}
		if a.Role != "" {
			s += ", role " + a.Role
		}
		w.fill(s)
	}
	var req []string
	for _, p := range m.Params {
		if p.Required {
			req = append(req, p.Name+`="`+p.Type.String()+`"`)
		}
	}
	params := ""
	if len(req) > 0 {
		params = " params " + strings.Join(req, " ")
	}
	w.section("EXAMPLE CRM SHELL")
	w.text("The agent is normally configured by the output of loadshare crm (see loadshare(8)). By hand:")
	w.pre("primitive p_" + m.Name + " ocf:loadshare:" + m.Name + params)
	w.section("EXAMPLE PCS")
	w.pre("pcs resource create p_" + m.Name + " ocf:loadshare:" + m.Name + strings.TrimPrefix(params, " params"))
	seeAlso(w, m.Name)
}

// roff writes man(7) source. Text goes through escape: roff reads a
// backslash as an escape, "-" as a hyphen (not the minus options need) and
// a line starting with "." or "'" as a request.
type roff struct{ bytes.Buffer }

// Other characters than ASCII are written as \[uXXXX], which every groff
// reads whatever the locale.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > unicode.MaxASCII:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// line writes one line of roff as given: requests and font escapes.
func (w *roff) line(s string) { w.WriteString(s + "\n") }

// req writes a request with quoted arguments.
func (w *roff) req(name string, args ...string) {
	w.WriteString(name)
	for _, a := range args {
		w.WriteString(` "` + strings.ReplaceAll(escape(a), `"`, `\(dq`) + `"`)
	}
	w.WriteString("\n")
}

func (w *roff) section(name string) { w.req(".SH", name) }

// fill writes text to be filled, one output line per input line, no line
// starting with a control character.
func (w *roff) fill(s string) {
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		w.line(escape(l))
	}
}

// text writes paragraphs: a blank line in s starts a new one.
func (w *roff) text(s string) {
	for _, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		w.line(".PP")
		w.fill(p)
	}
}

// pre writes s as it is, indented, without filling: usage texts and
// examples keep their layout.
func (w *roff) pre(s string) {
	w.line(".PP")
	w.line(".RS 4")
	w.line(".nf")
	sc := bufio.NewScanner(strings.NewReader(strings.TrimRight(s, "\n")))
	for sc.Scan() {
		w.line(`\&` + escape(sc.Text()))
	}
	w.line(".fi")
	w.line(".RE")
}

// flags writes a flag set as the -h list shows it: name, value kind,
// usage and default.
func (w *roff) flags(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		w.line(".TP")
		dash := `\-\-`
		if len(f.Name) == 1 {
			dash = `\-` // -n, as the usage texts write one-letter flags
		}
		head := `\fB` + dash + escape(f.Name) + `\fR`
		if kind != "" {
			head += ` \fI` + escape(kind) + `\fR`
		}
		w.line(head)
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "[]" {
			usage += " (default " + d + ")"
		}
		w.fill(usage)
	})
}
