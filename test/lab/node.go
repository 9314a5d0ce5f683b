package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// holderScript runs as the first process of a node, inside the node's
// network namespace and a fresh mount + UTS namespace (a multithreaded Go
// process cannot unshare its mount namespace, so the lab execs this):
// ip netns exec NS unshare --mount --uts --propagation private sh holder.sh DIR NODE.
// It sets the hostname, mounts the node's private directories and then
// holds the namespaces open until it is killed.
const holderScript = `#!/bin/sh
set -eu
R=$1; N=$2
rm -f "$R/holder.ready"
hostname "$N"
for d in ` + "etc/corosync var/lib/corosync var/lib/pacemaker var/log/pacemaker var/log/cluster var/lib/mysql" + `; do
  mount --bind "$R/$(echo "$d" | tr / _)" "/$d"
done
# This mount namespace is a private copy of the root's, /run/netns/* bind
# mounts included: detach them, or they would keep every other node's
# network namespace alive after it is dropped (a crashed node's kernel state
# must go with it).
for m in $(awk '$5 ~ "^/run/netns" {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null || true; done
mount -t tmpfs -o mode=755 tmpfs /run        # corosync pid lock, /run/crm, agents' state
mount -t tmpfs -o mode=1777 tmpfs /dev/shm   # libqb IPC ring buffers
mkdir -p /run/mysqld /run/resource-agents
chown mysql:mysql /run/mysqld 2>/dev/null || true
if [ -d "$R/ocf" ]; then mount --bind "$R/ocf" /usr/lib/ocf/resource.d/loadshare; fi
if [ -f "$R/fence_loadshare_lab" ]; then mount --bind "$R/fence_loadshare_lab" /usr/sbin/fence_loadshare_lab; fi
touch "$R/holder.ready"
exec sleep infinity
`

// daemon is a process the lab runs inside a node, known by its pid file.
type daemon string

const (
	holder     daemon = "holder"
	corosync   daemon = "corosync"
	pacemakerd daemon = "pacemakerd"
	mariadbd   daemon = "mariadbd"
)

func (l *Lab) pidFile(node string, d daemon) string {
	return filepath.Join(l.dir(node), string(d)+".pid")
}

// Pid returns the pid of daemon d on node, or 0 when it is not running
// inside the node: "holder", "corosync", "pacemakerd", "mariadbd" (the
// processes the lab starts, from their pid files), or one of the daemons
// pacemakerd runs ("pacemaker-controld", "pacemaker-attrd",
// "pacemaker-fenced", …: the child of the node's pacemakerd whose program
// has that name).
func (l *Lab) Pid(node string, d string) int {
	if strings.HasPrefix(d, "pacemaker-") {
		return childPid(l.Pid(node, string(pacemakerd)), d, l.Netns(node))
	}
	pid := readPid(l.pidFile(node, daemon(d)))
	if !inNetns(pid, l.Netns(node)) {
		return 0
	}
	return pid
}

// Signal sends sig to daemon d of node (a name Pid knows), by its pid and
// only that one: kill -SIG PID. SIGKILL waits (up to 5 s) for it to be gone.
func (l *Lab) Signal(node, d string, sig syscall.Signal) error {
	if _, err := l.index(node); err != nil {
		return err
	}
	pid := l.Pid(node, d)
	if pid == 0 {
		return fmt.Errorf("signal %s of %s: %w (no such process)", d, node, ErrNodeDown)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %s of %s (pid %d): %w", d, node, pid, err)
	}
	if sig == syscall.SIGKILL {
		waitGone([]int{pid}, 5*time.Second)
	}
	return nil
}

// spawned reports whether the process recorded for d is alive. Unlike Pid,
// it does not check the namespace: a process just spawned through nsenter
// may not have entered it yet.
func (l *Lab) spawned(node string, d daemon) bool {
	return alive(readPid(l.pidFile(node, d)))
}

// Running reports whether node's namespaces are held open (the node is up or
// at least partly up).
func (l *Lab) Running(node string) bool { return l.Pid(node, string(holder)) != 0 }

// spawn starts argv in a new session with output appended to
// DIR/NAME.out, records its pid and reaps it when it exits.
func (l *Lab) spawn(node string, d daemon, argv []string) (int, error) {
	out, err := os.OpenFile(filepath.Join(l.dir(node), string(d)+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: start %s: %w", node, d, err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap: PID 1 would do it only once this process has exited
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	l.mu.Unlock()
	if err := writePid(l.pidFile(node, d), pid); err != nil {
		return pid, err
	}
	return pid, nil
}

// nsenterArgv returns argv prefixed to run inside node's namespaces.
func (l *Lab) nsenterArgv(node string, argv ...string) ([]string, error) {
	if _, err := l.index(node); err != nil {
		return nil, err
	}
	h := l.Pid(node, string(holder))
	if h == 0 {
		return nil, fmt.Errorf("node %s: %w", node, ErrNodeDown)
	}
	return append([]string{"nsenter", "-t", strconv.Itoa(h), "-n", "-m", "-u", "--"}, argv...), nil
}

// ErrNodeDown is returned for an action that needs a running node.
var ErrNodeDown = errors.New("node is not running")

// Command returns name run inside node's network, mount and UTS namespaces.
// Equivalent to: nsenter -t HOLDER -n -m -u -- NAME ARGS...
// The node must be running (see ErrNodeDown); the error shows in Run.
func (l *Lab) Command(ctx context.Context, node, name string, args ...string) *exec.Cmd {
	argv, err := l.nsenterArgv(node, append([]string{name}, args...)...)
	if err != nil {
		cmd := exec.CommandContext(ctx, "false")
		cmd.Err = err
		return cmd
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// Exec runs name inside node and returns its standard output. The error
// carries argv and the trimmed standard error.
func (l *Lab) Exec(ctx context.Context, node, name string, args ...string) ([]byte, error) {
	return run(l.Command(ctx, node, name, args...))
}

// ClientCommand returns name run inside the client namespace.
// Equivalent to: ip netns exec PREFIXc1 NAME ARGS...
func (l *Lab) ClientCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Netns("client"), name}, args...)...)
}

func run(cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if cmd.Err != nil {
			return out, cmd.Err
		}
		return out, fmt.Errorf("running %v: %w: %s", cmd.Args, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Start starts node: its namespaces (hostname, private mounts), corosync,
// pacemakerd and MariaDB, each only if not already running. It returns once
// the daemons are started (not once the node has joined; see WaitOnline).
//
// Start, Stop, Crash and Reboot of one node hold the node's lock (a file
// lock in its state directory), so that a fence by the lab's power server
// and a test's own crash or start never interleave.
func (l *Lab) Start(ctx context.Context, node string) error {
	unlock, err := l.lockNode(node)
	if err != nil {
		return err
	}
	defer unlock()
	return l.start(ctx, node)
}

func (l *Lab) start(ctx context.Context, node string) error {
	r := l.dir(node)
	if err := l.powerOn(node); err != nil {
		return fmt.Errorf("start node %s: %w", node, err)
	}
	if !l.Running(node) {
		for _, d := range []daemon{holder, corosync, pacemakerd, mariadbd} {
			os.Remove(l.pidFile(node, d))
		}
		os.Remove(filepath.Join(r, "holder.ready"))
		if _, err := l.spawn(node, holder, []string{"ip", "netns", "exec", l.Netns(node),
			"unshare", "--mount", "--uts", "--propagation", "private",
			"/bin/sh", filepath.Join(l.cfg.StateDir, "holder.sh"), r, node}); err != nil {
			return err
		}
		if err := poll(ctx, 10*time.Second, func() (bool, error) {
			if p := readPid(l.pidFile(node, holder)); !alive(p) {
				return false, fmt.Errorf("node %s: namespace holder exited: %s", node, tail(filepath.Join(r, "holder.out")))
			}
			_, err := os.Stat(filepath.Join(r, "holder.ready"))
			return err == nil, nil
		}); err != nil {
			return fmt.Errorf("start node %s: %w", node, err)
		}
	}
	if l.Pid(node, string(corosync)) == 0 {
		argv, err := l.nsenterArgv(node, "corosync", "-f")
		if err != nil {
			return err
		}
		if _, err := l.spawn(node, corosync, argv); err != nil {
			return err
		}
	}
	// pacemakerd needs corosync's IPC (cmap) up.
	if err := poll(ctx, 15*time.Second, func() (bool, error) {
		if !l.spawned(node, corosync) {
			return false, fmt.Errorf("node %s: corosync exited: %s", node, tail(filepath.Join(r, "var_log_cluster", "corosync.log")))
		}
		_, err := l.Exec(ctx, node, "corosync-cmapctl", "-g", "totem.cluster_name")
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("start node %s: corosync: %w", node, err)
	}
	if l.Pid(node, string(pacemakerd)) == 0 {
		argv, err := l.nsenterArgv(node, "pacemakerd", "-f")
		if err != nil {
			return err
		}
		if _, err := l.spawn(node, pacemakerd, argv); err != nil {
			return err
		}
	}
	if !l.cfg.NoDB {
		if err := l.StartDB(ctx, node); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops node gracefully: pacemakerd (which stops the node's resources
// and leaves the cluster), corosync, MariaDB, then the namespace holder.
func (l *Lab) Stop(ctx context.Context, node string) error {
	unlock, err := l.lockNode(node)
	if err != nil {
		return err
	}
	defer unlock()
	ns := l.Netns(node)
	stopPid(l.Pid(node, string(pacemakerd)), ns, 60*time.Second)
	stopPid(l.Pid(node, string(corosync)), ns, 20*time.Second)
	stopPid(l.Pid(node, string(mariadbd)), ns, 30*time.Second)
	if err := killNetns(ns); err != nil {
		return err
	}
	return l.powerOff(node)
}

// Crash kills node at once, as a power cut (and as a fence of the lab does): its link is unplugged from the
// bridge first (so that no socket of the dying node sends a reset to a
// client), then SIGKILL goes to every process in its network namespace
// (corosync, pacemakerd and its children, resource agents, MariaDB, the
// namespace holder; equivalent to kill -9 $(ip netns pids NS)), then its
// network namespace is dropped, with the VIP address and rules its kernel
// held. Start boots it again with a fresh one. A node already off stays off.
func (l *Lab) Crash(node string) error {
	unlock, err := l.lockNode(node)
	if err != nil {
		return err
	}
	defer unlock()
	return l.crash(node)
}

func (l *Lab) crash(node string) error {
	if err := l.unplug(node); err != nil {
		return err
	}
	if err := killNetns(l.Netns(node)); err != nil {
		return err
	}
	return l.powerOff(node)
}

// Freeze stops every process of node with SIGSTOP (equivalent to
// kill -STOP $(ip netns pids NS)): a hung machine whose kernel still runs,
// so its network namespace keeps taking the SYNs of the buckets it owns
// while nothing of it answers the cluster. Crash (or a fence) ends it.
func (l *Lab) Freeze(node string) error {
	unlock, err := l.lockNode(node)
	if err != nil {
		return err
	}
	defer unlock()
	ns := l.Netns(node)
	// Two passes: a process forked while the first one ran is caught by
	// the second (a stopped parent forks no more).
	for range 2 {
		for _, p := range pidsIn(ns) {
			if inNetns(p, ns) {
				_ = syscall.Kill(p, syscall.SIGSTOP)
			}
		}
	}
	if len(pidsIn(ns)) == 0 {
		return fmt.Errorf("freeze node %s: %w", node, ErrNodeDown)
	}
	return nil
}

// Isolate cuts node's link both ways while the node keeps running, as a
// network partition: its bridge port goes down (the node's eth0 loses its
// carrier). Crash, or a fence, then Start plug a fresh link in.
// Equivalent to: ip -n PREFIXsw link set pN down
func (l *Lab) Isolate(node string) error {
	nl, p, done, err := l.switchPort(node)
	if err != nil {
		return fmt.Errorf("isolate %s: %w", node, err)
	}
	defer done()
	if err := nl.LinkSetDown(p); err != nil {
		return fmt.Errorf("isolate %s: %w", node, err)
	}
	return nil
}

// lockNode takes node's lock: flock of STATEDIR/NODE/power.lock, released
// by the kernel if the holder dies.
func (l *Lab) lockNode(node string) (unlock func(), err error) {
	if _, err := l.index(node); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.dir(node), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(l.dir(node), "power.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock node %s: %w", node, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock node %s: %w", node, err)
	}
	return func() { f.Close() }, nil
}

// Memory returns the proportional set size (bytes) of all processes of node.
func (l *Lab) Memory(node string) (uint64, error) {
	var sum uint64
	for _, p := range pidsIn(l.Netns(node)) {
		m, err := pss(p)
		if err != nil {
			continue // exited meanwhile
		}
		sum += m
	}
	if sum == 0 {
		return 0, fmt.Errorf("node %s: %w", node, ErrNodeDown)
	}
	return sum, nil
}

// installAgents copies the agent binaries into the node's private OCF
// provider directory (bind-mounted at /usr/lib/ocf/resource.d/loadshare
// inside the node), and the CLI beside them as .loadshare (hidden: crmsh
// lists every file there as an agent).
func (l *Lab) installAgents(node string) error {
	dir := filepath.Join(l.dir(node), "ocf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll("/usr/lib/ocf/resource.d/loadshare", 0o755); err != nil {
		return err
	}
	for _, src := range append(agentFiles(l.cfg.Agents), l.cfg.CLI) {
		name := filepath.Base(src)
		if src == l.cfg.CLI {
			name = ".loadshare"
		}
		if err := copyFile(src, filepath.Join(dir, name), 0o755); err != nil {
			return fmt.Errorf("install agents on %s: %w", node, err)
		}
	}
	return nil
}

// installFence copies the fence agent into the node's state directory; the
// node's holder bind-mounts it at /usr/sbin/fence_loadshare_lab, where
// pacemaker-fenced looks for fence agents. The mount point is an empty
// file in the root file system, created if missing.
func (l *Lab) installFence(node string) error {
	if _, err := os.Stat(fenceInNode); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(fenceInNode, nil, 0o644); err != nil {
			return fmt.Errorf("install fence agent on %s: mount point: %w", node, err)
		}
	}
	if err := copyFile(l.cfg.Fence, filepath.Join(l.dir(node), FenceAgentName), 0o755); err != nil {
		return fmt.Errorf("install fence agent on %s: %w", node, err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

type ids struct{ uid, gid int }

func lookupIDs(usr, grp string) (ids, error) {
	u, err := user.Lookup(usr)
	if err != nil {
		return ids{}, fmt.Errorf("lab needs user %s (Debian package pacemaker): %w", usr, err)
	}
	g, err := user.LookupGroup(grp)
	if err != nil {
		return ids{}, fmt.Errorf("lab needs group %s: %w", grp, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return ids{uid, gid}, nil
}

func chownR(dir string, id ids) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id.uid, id.gid)
	})
}

// poll calls cond every 100 ms until it reports true, fails, or d (or ctx) ends.
func poll(ctx context.Context, d time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s: %w", d, ctx.Err())
		case <-t.C:
		}
	}
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no " + filepath.Base(path) + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
