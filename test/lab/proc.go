package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loadshare/loadshare/test/nstest"
	"golang.org/x/sys/unix"
)

// nsID identifies a namespace by its nsfs device and inode, as ip netns pids does.
type nsID struct{ dev, ino uint64 }

// netnsID returns the identity of the named network namespace (/run/netns/name).
func netnsID(name string) (nsID, bool) {
	return statNS(nstest.Path(name))
}

func statNS(path string) (nsID, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, false
	}
	return nsID{uint64(st.Dev), st.Ino}, true
}

// pidsIn lists the processes whose network namespace is the named one.
// Equivalent to: ip netns pids NAME
func pidsIn(name string) []int {
	id, ok := netnsID(name)
	if !ok {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if wholeIn(pid, id) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// inNetns reports whether pid is alive and inside the named network namespace:
// the check before any signal, so that a recycled pid is never killed.
func inNetns(pid int, name string) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	id, ok := netnsID(name)
	if !ok {
		return false
	}
	return wholeIn(pid, id)
}

// wholeIn reports whether every thread of pid is in the network namespace
// id. /proc/PID/ns/net is the main thread's alone: a Go program (a test,
// the CLI) that reads a node's kernel switches one locked thread into the
// node's namespace for a moment, and when that thread is the main one the
// whole process looked like the node's. A crash or fence of the node then
// SIGKILLed the test itself ("signal: killed" in the middle of an e2e
// run). A node's own processes have every thread there.
func wholeIn(pid int, id nsID) bool {
	got, ok := statNS(fmt.Sprintf("/proc/%d/ns/net", pid))
	if !ok || got != id {
		return false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, t := range tasks {
		if got, ok := statNS(fmt.Sprintf("/proc/%d/task/%s/ns/net", pid, t.Name())); !ok || got != id {
			return false
		}
	}
	return true
}

// alive reports whether pid exists and is not a zombie. PID 1 on this kind
// of machine reaps late, so a killed process may linger as a zombie for seconds.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: comm may hold spaces and parentheses; the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	s := b[i+2]
	return s != 'Z' && s != 'X'
}

// childPid returns the child of parent, inside the named network namespace,
// whose program (argv[0]'s base name) is prog; 0 when there is none.
func childPid(parent int, prog, netns string) int {
	if parent <= 0 {
		return 0
	}
	for _, p := range pidsIn(netns) {
		if ppid(p) != parent {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(b, []byte{0})
		if filepath.Base(string(argv0)) == prog {
			return p
		}
	}
	return 0
}

// ppid returns the parent of pid (/proc/PID/stat), 0 when it is gone.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) S PPID ...: the fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// readPid reads a pid file; 0 when absent or unparsable.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

func writePid(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// waitGone waits until none of pids is alive, or until d passes.
func waitGone(pids []int, d time.Duration) bool {
	end := time.Now().Add(d)
	for {
		left := false
		for _, p := range pids {
			if alive(p) {
				left = true
				break
			}
		}
		if !left {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killNetns sends SIGKILL to every process in the named network namespace
// until none is left (processes forked meanwhile are caught by the next pass).
func killNetns(name string) error {
	end := time.Now().Add(10 * time.Second)
	for {
		pids := pidsIn(name)
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			if inNetns(p, name) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		waitGone(pids, 2*time.Second)
		if time.Now().After(end) {
			return fmt.Errorf("kill processes in netns %s: still alive: %v", name, pidsIn(name))
		}
	}
}

// stopPid sends SIGTERM to pid (only if it is inside netns) and waits up to d
// for it to exit, then SIGKILLs it.
func stopPid(pid int, netns string, d time.Duration) {
	if !inNetns(pid, netns) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone([]int{pid}, d) {
		return
	}
	if inNetns(pid, netns) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone([]int{pid}, 2*time.Second)
	}
}

// pss returns the proportional set size of pid in bytes (/proc/PID/smaps_rollup).
func pss(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "Pss:" {
			kb, err := strconv.ParseUint(fs[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no Pss line")
}

// killPid ends pid (one the caller has checked is its own): SIGTERM, up
// to 5 s to exit, then SIGKILL.
func killPid(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone([]int{pid}, 5*time.Second) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitGone([]int{pid}, 2*time.Second)
}

// execCommand is a command in a session of its own, so that it outlives
// the process group of the lab command that starts it.
func execCommand(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}
