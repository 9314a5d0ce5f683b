package clusterip

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// nodeSysctls are the sysctls every node of an IPv4 VIP needs, written
// through /proc/sys/net, which is per network namespace.
//
// arp_announce=2 on all and on the link: when the node sends its own ARP
// requests (to resolve a client) it must use its own address as the sender,
// never the VIP; otherwise clients learn "VIP is at <this node's MAC>" and
// send every connection to that one node (a third of the lab's connections
// then time out on the other nodes' buckets).
//
// nf_conntrack_tcp_loose is read, not set: the bucket chain accepts only
// established/related packets and SYNs of owned buckets, so with loose=1 a
// mid-stream packet a node does not track becomes ct state new and is
// dropped by the SYN check, and with loose=0 it is invalid and dropped too;
// either way the non-owner stays silent (no RST). Status reports it.
func nodeSysctls(v VIP) map[string]string {
	if !v.Addr.Is4() {
		return nil
	}
	return map[string]string{
		"net/ipv4/conf/all/arp_announce":            "2",
		"net/ipv4/conf/" + v.Link + "/arp_announce": "2",
	}
}

// The values ensureSysctls replaced are kept, per network namespace, in
// one file of the run directory (sysctl.ns<inode>.saved), one line per sysctl:
// "net/ipv4/conf/all/arp_announce 0 2" (the key, the value before, the
// value set). restoreSysctls puts a value back when the last VIP needing
// it is gone, and only if nobody changed it since; the file goes with
// its last line. Both run under the file's flock, inside a VIP's lock.
type savedSysctl struct{ before, set string }

// sysctlPath is the record of the namespace the calling thread is in
// (call it inside inNS): named by the namespace's inode even for a plane
// of the caller's namespace, since nodes that share a run directory (the
// lab's, or test namespaces) each have their own sysctls.
func (p *Plane) sysctlPath() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return "", fmt.Errorf("network namespace: %w", err)
	}
	return filepath.Join(p.runDir, fmt.Sprintf("sysctl.ns%d.saved", st.Ino)), nil
}

func readSysctl(k string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + k)
	return strings.TrimSpace(string(b)), err
}

func writeSysctl(k, val string) error {
	if err := os.WriteFile("/proc/sys/"+k, []byte(val), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", strings.ReplaceAll(k, "/", "."), val, err)
	}
	return nil
}

func readSaved(f *os.File) (map[string]savedSysctl, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	out := map[string]savedSysctl{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			out[f[0]] = savedSysctl{before: f[1], set: f[2]}
		}
	}
	return out, nil
}

func writeSaved(f *os.File, saved map[string]savedSysctl) error {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(saved)) {
		fmt.Fprintf(&sb, "%s %s %s\n", k, saved[k].before, saved[k].set)
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(sb.String()), 0)
	return err
}

// ensureSysctls writes the node sysctls inside the plane's namespace,
// recording each value it replaces first. Every Own and Release ensures,
// so when all are set already it only reads them. It runs after v's
// tables exist: restoreSysctls relies on that order (see there).
func (p *Plane) ensureSysctls(v VIP) error {
	want := nodeSysctls(v)
	if len(want) == 0 {
		return nil
	}
	return p.inNS(func() error {
		var change []string
		for k, val := range want {
			cur, err := readSysctl(k)
			if errors.Is(err, os.ErrNotExist) {
				return &FieldError{"link", v.Link, "no such interface on this node"}
			}
			if err != nil || cur != val {
				change = append(change, k)
			}
		}
		if len(change) == 0 {
			return nil
		}
		path, err := p.sysctlPath()
		if err != nil {
			return fmt.Errorf("record sysctls: %w", err)
		}
		f, err := lockFile(p.runDir, path, unix.LOCK_EX)
		if err != nil {
			return fmt.Errorf("record sysctls: %w", err)
		}
		defer f.Close()
		saved, err := readSaved(f)
		if err != nil {
			return fmt.Errorf("record sysctls: %w", err)
		}
		n := len(saved)
		for _, k := range change {
			cur, err := readSysctl(k)
			if err != nil {
				return fmt.Errorf("read sysctl %s: %w", strings.ReplaceAll(k, "/", "."), err)
			}
			if _, ok := saved[k]; !ok && cur != want[k] {
				saved[k] = savedSysctl{before: cur, set: want[k]}
			}
		}
		if len(saved) != n {
			// Recorded before the change: a crash after it still restores.
			if err := writeSaved(f, saved); err != nil {
				return fmt.Errorf("record sysctls: %w", err)
			}
		}
		for _, k := range change {
			if err := writeSysctl(k, want[k]); err != nil {
				return err
			}
		}
		return nil
	})
}

// neededSysctls is the set of sysctls the VIPs programmed in the plane's
// namespace need now (read from their tables' or chains' settings comments).
func (p *Plane) neededSysctls() (map[string]bool, error) {
	comments, err := p.fingerprints()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range comments {
		if o, _, err := parseFingerprint(c); err == nil {
			for k := range nodeSysctls(o) {
				out[k] = true
			}
		}
	}
	return out, nil
}

// restoreSysctls puts back the values ensureSysctls replaced that no VIP
// still programmed here needs (v's tables are gone already): arp_announce
// on all while another IPv4 VIP is here, on a link while one is on that
// link. A value changed since by someone else stays as it is.
//
// Another VIP's Ensure (under its own lock) may be creating its tables
// meanwhile, and its ensureSysctls, finding the values set, takes no
// lock. So after restoring, the tables are read again and a value a VIP
// now needs is set back: that VIP's tables came after the first read,
// and if they also came after the second, its ensureSysctls (which runs
// after its tables) reads the restored value and sets it again itself.
func (p *Plane) restoreSysctls(v VIP) error {
	if len(nodeSysctls(v)) == 0 {
		return nil
	}
	return p.inNS(func() error {
		path, err := p.sysctlPath()
		if err != nil {
			return fmt.Errorf("restore sysctls: %w", err)
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil // nothing was changed here
		}
		f, err := lockFile(p.runDir, path, unix.LOCK_EX)
		if err != nil {
			return fmt.Errorf("restore sysctls: %w", err)
		}
		defer f.Close()
		saved, err := readSaved(f)
		if err != nil {
			return fmt.Errorf("restore sysctls: %w", err)
		}
		needed, err := p.neededSysctls()
		if err != nil {
			return fmt.Errorf("restore sysctls: %w", err)
		}
		restored := map[string]savedSysctl{}
		for k, s := range saved {
			if needed[k] {
				continue
			}
			delete(saved, k)
			cur, err := readSysctl(k)
			if errors.Is(err, os.ErrNotExist) {
				continue // the link is gone, and its sysctls with it
			}
			if err != nil || cur != s.set {
				continue // changed by someone else since: theirs now
			}
			if err := writeSysctl(k, s.before); err != nil {
				return err
			}
			restored[k] = s
		}
		if len(restored) > 0 {
			if needed, err = p.neededSysctls(); err != nil {
				return fmt.Errorf("restore sysctls: %w", err)
			}
			for k, s := range restored {
				if needed[k] {
					if err := writeSysctl(k, s.set); err != nil {
						return err
					}
					saved[k] = s
				}
			}
		}
		if len(saved) == 0 {
			os.Remove(path) // still locked: see lockFile
			return nil
		}
		return writeSaved(f, saved)
	})
}

// TCPLoose reads net.netfilter.nf_conntrack_tcp_loose in the plane's
// namespace (-1 when conntrack is not loaded yet).
func (p *Plane) TCPLoose() (int, error) {
	n := -1
	err := p.inNS(func() error {
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = fmt.Sscan(string(b), &n)
		return err
	})
	return n, err
}
