// Package footprint reads, with the system's own tools and apart from the
// code under test, what a network namespace holds that a VIP could have
// added: nftables objects (nft -j list ruleset), iptables and arptables
// rules (iptables-save, arptables-save: legacy tables are not in the
// nftables ruleset), addresses (ip -j addr),
// link-layer multicast memberships (ip -j maddr), the links' own address
// lists (bridge -j fdb: unicast filter entries too), sysctls, and the
// files of a run directory. A test reads one before a VIP starts and one
// after it stopped; Diff says what was left or lost.
package footprint

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// Runner runs a command where the footprint is read (a namespace, a lab
// node) and returns its standard output.
type Runner func(name string, args ...string) ([]byte, error)

// Tools are the commands Read runs; OptionalTools it runs when installed
// (a host without iptables has no iptables rules either).
var (
	Tools         = []string{"nft", "ip", "bridge", "sysctl", "ls"}
	OptionalTools = []string{"iptables-save", "arptables-save"}
)

// Missing returns the first of Tools not installed here, "" when none.
func Missing() string {
	for _, t := range Tools {
		if _, err := exec.LookPath(t); err != nil {
			return t
		}
	}
	return ""
}

// Options says which sysctls and which run directory Read reads.
type Options struct {
	Sysctls []string // e.g. net.ipv4.conf.all.arp_announce
	RunDir  string   // "": none
}

// Footprint is one reading, each kind as sorted lines.
type Footprint struct {
	NFT     []string // a table, chain, set or rule: its JSON without handles and counters
	XT      []string // "iptables mangle -A PREROUTING …", "arptables filter :OUTPUT ACCEPT": save lines without counters
	Addrs   []string // "eth0 10.0.0.1/24"
	MAddrs  []string // "eth0 link 01:00:5e:00:00:01", "eth0 inet 224.0.0.1"
	FDB     []string // "eth0 02:bf:0a:00:00:64 self permanent"
	Sysctls []string // "net.ipv4.conf.all.arp_announce = 0"
	Files   []string // names in the run directory
}

// Read takes a footprint through run.
func Read(run Runner, o Options) (Footprint, error) {
	var f Footprint
	var err error
	if f.NFT, err = readNFT(run); err != nil {
		return f, err
	}
	if f.XT, err = readXT(run); err != nil {
		return f, err
	}
	if f.Addrs, err = readAddrs(run); err != nil {
		return f, err
	}
	if f.MAddrs, err = readMAddrs(run); err != nil {
		return f, err
	}
	if f.FDB, err = readFDB(run); err != nil {
		return f, err
	}
	if len(o.Sysctls) > 0 {
		out, err := run("sysctl", o.Sysctls...)
		if err != nil {
			return f, fmt.Errorf("sysctl %v: %w", o.Sysctls, err)
		}
		f.Sysctls = lines(string(out))
	}
	if o.RunDir != "" {
		// A missing directory is an empty one.
		out, err := run("sh", "-c", `[ ! -d "$1" ] || ls -A "$1"`, "sh", o.RunDir)
		if err != nil {
			return f, fmt.Errorf("ls %s: %w", o.RunDir, err)
		}
		f.Files = lines(string(out))
	}
	return f, nil
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// strip removes what changes while nothing is configured: object handles
// and packet and byte counts.
func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "handle", "packets", "bytes":
				delete(x, k)
			default:
				x[k] = strip(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = strip(e)
		}
	}
	return v
}

func readNFT(run Runner) ([]string, error) {
	out, err := run("nft", "-j", "list", "ruleset")
	if err != nil {
		return nil, fmt.Errorf("nft -j list ruleset: %w", err)
	}
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("nft -j list ruleset: %w", err)
	}
	var res []string
	for _, o := range doc.Nftables {
		if _, ok := o["metainfo"]; ok {
			continue
		}
		b, err := json.Marshal(strip(o)) // map keys come out sorted
		if err != nil {
			return nil, err
		}
		res = append(res, string(b))
	}
	slices.Sort(res)
	return res, nil
}

// readXT reads the iptables and arptables rules with the save tools,
// whichever variant (legacy, nft) the system's alternatives name: each
// line prefixed by tool and table, counters and comments dropped.
func readXT(run Runner) ([]string, error) {
	var res []string
	for _, tool := range OptionalTools {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		out, err := run(tool)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tool, err)
		}
		name, table := strings.TrimSuffix(tool, "-save"), ""
		for _, l := range strings.Split(string(out), "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "" || strings.HasPrefix(l, "#") || l == "COMMIT":
				continue
			case strings.HasPrefix(l, "*"):
				table = l[1:]
				continue
			case strings.HasPrefix(l, "["): // [packets:bytes] -A …
				if _, rest, ok := strings.Cut(l, "] "); ok {
					l = rest
				}
			case strings.HasPrefix(l, ":"): // :CHAIN POLICY [packets:bytes]
				if i := strings.Index(l, " ["); i >= 0 {
					l = l[:i]
				}
			}
			res = append(res, fmt.Sprintf("%s %s %s", name, table, l))
		}
	}
	slices.Sort(res)
	return res, nil
}

func readAddrs(run Runner) ([]string, error) {
	out, err := run("ip", "-j", "addr", "show")
	if err != nil {
		return nil, fmt.Errorf("ip -j addr show: %w", err)
	}
	var links []struct {
		Ifname   string `json:"ifname"`
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("ip -j addr show: %w", err)
	}
	var res []string
	for _, l := range links {
		for _, a := range l.AddrInfo {
			res = append(res, fmt.Sprintf("%s %s/%d", l.Ifname, a.Local, a.Prefixlen))
		}
	}
	slices.Sort(res)
	return res, nil
}

func readMAddrs(run Runner) ([]string, error) {
	out, err := run("ip", "-j", "maddr", "show")
	if err != nil {
		return nil, fmt.Errorf("ip -j maddr show: %w", err)
	}
	var links []struct {
		Ifname string `json:"ifname"`
		MAddr  []struct {
			Link    string `json:"link"` // a link-layer group: {"link": "01:00:5e:00:00:01"}
			Family  string `json:"family"`
			Address string `json:"address"`
		} `json:"maddr"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("ip -j maddr show: %w", err)
	}
	var res []string
	for _, l := range links {
		for _, m := range l.MAddr {
			if m.Link != "" {
				res = append(res, fmt.Sprintf("%s link %s", l.Ifname, m.Link))
			} else {
				res = append(res, fmt.Sprintf("%s %s %s", l.Ifname, m.Family, m.Address))
			}
		}
	}
	slices.Sort(res)
	return res, nil
}

func readFDB(run Runner) ([]string, error) {
	out, err := run("bridge", "-j", "fdb", "show")
	if err != nil {
		return nil, fmt.Errorf("bridge -j fdb show: %w", err)
	}
	var entries []struct {
		Mac    string   `json:"mac"`
		Ifname string   `json:"ifname"`
		Flags  []string `json:"flags"`
		State  string   `json:"state"`
	}
	if len(strings.TrimSpace(string(out))) > 0 {
		if err := json.Unmarshal(out, &entries); err != nil {
			return nil, fmt.Errorf("bridge -j fdb show: %w", err)
		}
	}
	var res []string
	for _, e := range entries {
		res = append(res, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", e.Ifname, e.Mac, strings.Join(e.Flags, ","), e.State)))
	}
	slices.Sort(res)
	return res, nil
}

func (f Footprint) kinds() []struct {
	name  string
	lines []string
} {
	return []struct {
		name  string
		lines []string
	}{{"nft", f.NFT}, {"xt", f.XT}, {"addr", f.Addrs}, {"maddr", f.MAddrs}, {"fdb", f.FDB}, {"sysctl", f.Sysctls}, {"file", f.Files}}
}

// Diff lists what differs from f to g, one line each: "- KIND LINE" only
// in f (lost), "+ KIND LINE" only in g (added); "" when they are equal.
func (f Footprint) Diff(g Footprint) string {
	var sb strings.Builder
	gk := g.kinds()
	for i, k := range f.kinds() {
		for _, l := range k.lines {
			if !slices.Contains(gk[i].lines, l) {
				fmt.Fprintf(&sb, "- %s %s\n", k.name, l)
			}
		}
		for _, l := range gk[i].lines {
			if !slices.Contains(k.lines, l) {
				fmt.Fprintf(&sb, "+ %s %s\n", k.name, l)
			}
		}
	}
	return sb.String()
}

// Only keeps the lines that contain one of subs (a VIP's table name,
// address, cluster MAC): the part of a footprint that is one VIP's.
func (f Footprint) Only(subs ...string) Footprint {
	keep := func(ls []string) []string {
		var out []string
		for _, l := range ls {
			for _, s := range subs {
				if strings.Contains(l, s) {
					out = append(out, l)
					break
				}
			}
		}
		return out
	}
	return Footprint{NFT: keep(f.NFT), XT: keep(f.XT), Addrs: keep(f.Addrs), MAddrs: keep(f.MAddrs), FDB: keep(f.FDB),
		Sysctls: keep(f.Sysctls), Files: keep(f.Files)}
}

// Lines is the number of lines in f.
func (f Footprint) Lines() int {
	n := 0
	for _, k := range f.kinds() {
		n += len(k.lines)
	}
	return n
}
