package lab

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/test/nstest"
	"github.com/vishvananda/netlink"
)

// Config describes a lab. The zero value of a field means its default.
type Config struct {
	Prefix   string       // netns name prefix: PREFIXn1…, PREFIXsw (bridge), PREFIXc1 (client); "lsl-"
	Subnet   netip.Prefix // IPv4 /24: nodes .11, .12, …, client .50, VIP .100; 10.204.0.0/24
	Nodes    int          // number of nodes; 3
	StateDir string       // config, pid files, node state; /var/tmp/loadshare-lab
	TokenMS  int          // corosync totem token, milliseconds; 1000
	Cluster  string       // corosync cluster_name; "loadshare-lab"
	NoDB     bool         // do not start MariaDB on the nodes
	IPv6     bool         // dual stack: every host also gets an address in fd00:10:204::/64 (nodes ::11…, client ::50), and the service a second VIP over IPv6, VIP6 ::100 (resources vip6_K)
	DB       string       // the MariaDB topology: DBGalera (one Galera cluster of every node), DBReplication (n1 primary, the others its replicas; the service gets a writer and a reader VIP), DBStandalone (independent servers); DBGalera
	Agents   string       // directory holding the agent binaries (make build's bin/, or an installed provider directory), installed on every node as OCF provider loadshare; "" none
	CLI      string       // the loadshare binary installed on every node beside the agents (the lab runs "loadshare crm" there); Agents/loadshare
	Fence    string       // the fence agent fence_loadshare_lab, installed in every node: the lab fences (see Lab.Fencing); Agents/fence_loadshare_lab if that exists, else "" (no fencing)
	Backend  string       // clustervip's backend for the placer's service (loadshare crm --param clustervip:backend=…): "" leaves the agent's default (auto); "xtcluster" also sets hash=sourceip and gives the client ClientSources addresses (the flood check runs as with nftables)
}

// ClientSources is the number of extra client addresses (.150 on) a lab
// with Backend xtcluster dials from, round robin: that backend hashes the
// source address only, so connections from one address all land in one
// bucket.
const ClientSources = 64

// sourceHashed reports whether the service hashes the source address only.
func (c Config) sourceHashed() bool { return c.Backend == "xtcluster" }

// DefaultConfig is the lab the CLI runs.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "lsl-"
	}
	if !c.Subnet.IsValid() {
		c.Subnet = netip.MustParsePrefix("10.204.0.0/24")
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.StateDir == "" {
		c.StateDir = "/var/tmp/loadshare-lab"
	}
	if c.TokenMS == 0 {
		c.TokenMS = 1000
	}
	if c.Cluster == "" {
		c.Cluster = "loadshare-lab"
	}
	if c.DB == "" {
		c.DB = DBGalera
	}
	if c.CLI == "" && c.Agents != "" {
		c.CLI = filepath.Join(c.Agents, "loadshare")
	}
	if c.Fence == "" && c.Agents != "" {
		if f := filepath.Join(c.Agents, FenceAgentName); isExecutable(f) {
			c.Fence = f
		}
	}
	return c
}

func (c Config) validate() error {
	if !c.Subnet.Addr().Is4() || c.Subnet.Bits() != 24 {
		return fmt.Errorf("subnet=%s: must be an IPv4 /24", c.Subnet)
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		return fmt.Errorf("nodes=%d: must be 1 to 9", c.Nodes)
	}
	if len(c.Prefix)+2 > 15 {
		return fmt.Errorf("prefix=%q: too long for a namespace and interface name", c.Prefix)
	}
	if c.DB != DBGalera && c.DB != DBReplication && c.DB != DBStandalone {
		return fmt.Errorf("db=%q: must be %s, %s or %s", c.DB, DBGalera, DBReplication, DBStandalone)
	}
	if c.TokenMS < 300 {
		return fmt.Errorf("token=%dms: must be at least 300", c.TokenMS)
	}
	if !filepath.IsAbs(c.StateDir) || filepath.Clean(c.StateDir) == "/" {
		return fmt.Errorf("state dir %q: must be an absolute path below /", c.StateDir)
	}
	if c.Agents != "" {
		for _, f := range append([]string{c.CLI}, agentFiles(c.Agents)...) {
			if !isExecutable(f) {
				return fmt.Errorf("agents: %s is not an executable (make build writes the CLI and the agents into bin/)", f)
			}
		}
	}
	if c.Fence != "" && (!isExecutable(c.Fence) || filepath.Base(c.Fence) != FenceAgentName) {
		return fmt.Errorf("fence agent %s: not an executable named %s (make build writes it into bin/)", c.Fence, FenceAgentName)
	}
	return nil
}

func isExecutable(f string) bool {
	st, err := os.Stat(f)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// agentFiles are the agent binaries in dir.
func agentFiles(dir string) []string {
	var fs []string
	for _, a := range crm.Agents {
		fs = append(fs, filepath.Join(dir, a))
	}
	return fs
}

// Lab is a running (or stopped) lab, known by its state directory.
type Lab struct {
	cfg Config
	log *slog.Logger

	// QuorumAfter is the time Up took from its start until every node was
	// online in a partition with quorum and a DC.
	QuorumAfter time.Duration

	mu   sync.Mutex
	cmds []*exec.Cmd // processes this Lab value started, reaped by goroutines
}

// MySQL credentials of the lab's client user on every node's MariaDB.
const (
	DBUser     = "lab"
	DBPassword = "lab"
	DBPort     = 3306
)

const stateFile = "lab.json"

// Config returns the lab's configuration, defaults filled in.
func (l *Lab) Config() Config { return l.cfg }

// Nodes returns the node names: n1, n2, …
func (l *Lab) Nodes() []string {
	ns := make([]string, l.cfg.Nodes)
	for i := range ns {
		ns[i] = fmt.Sprintf("n%d", i+1)
	}
	return ns
}

// Netns returns the network namespace name of a node, "client" or "switch".
func (l *Lab) Netns(node string) string {
	switch node {
	case "client":
		return l.cfg.Prefix + "c1"
	case "switch":
		return l.cfg.Prefix + "sw"
	}
	return l.cfg.Prefix + node
}

// Addr returns the address of a node (n1…) or of "client".
func (l *Lab) Addr(node string) netip.Addr {
	if node == "client" {
		return hostAddr(l.cfg.Subnet, 50)
	}
	i, err := l.index(node)
	if err != nil {
		return netip.Addr{}
	}
	return hostAddr(l.cfg.Subnet, 11+i)
}

// VIP returns the address the lab reserves for the shared VIP (.100); in a
// replication lab the writer VIP.
func (l *Lab) VIP() netip.Addr { return hostAddr(l.cfg.Subnet, 100) }

// ReaderVIP returns the reader VIP of a replication lab (.101).
func (l *Lab) ReaderVIP() netip.Addr { return hostAddr(l.cfg.Subnet, 101) }

// subnet6 is the lab's IPv6 subnet (Config.IPv6).
var subnet6 = netip.MustParsePrefix("fd00:10:204::/64")

// Addr6 returns the IPv6 address of a node (n1…) or of "client" in a dual
// stack lab (Config.IPv6): fd00:10:204::11… and ::50.
func (l *Lab) Addr6(node string) netip.Addr {
	if node == "client" {
		return hostAddr6(50)
	}
	i, err := l.index(node)
	if err != nil {
		return netip.Addr{}
	}
	return hostAddr6(0x11 + i)
}

// VIP6 returns the IPv6 VIP of a dual stack lab (Config.IPv6), fd00:10:204::100.
func (l *Lab) VIP6() netip.Addr { return hostAddr6(0x100) }

func hostAddr6(host int) netip.Addr {
	a := subnet6.Addr().As16()
	a[14], a[15] = byte(host>>8), byte(host)
	return netip.AddrFrom16(a)
}

func hostAddr(p netip.Prefix, host int) netip.Addr {
	a := p.Masked().Addr().As4()
	a[3] = byte(host)
	return netip.AddrFrom4(a)
}

func (l *Lab) index(node string) (int, error) {
	for i, n := range l.Nodes() {
		if n == node {
			return i, nil
		}
	}
	return 0, fmt.Errorf("node %q: no such lab node (have %s)", node, strings.Join(l.Nodes(), ", "))
}

func (l *Lab) dir(node string) string { return filepath.Join(l.cfg.StateDir, node) }

func newLab(cfg Config, log *slog.Logger) *Lab {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Lab{cfg: cfg, log: log}
}

// Open attaches to the lab whose state is in stateDir ("" = default).
// It returns an error wrapping os.ErrNotExist when there is none.
func Open(stateDir string, log *slog.Logger) (*Lab, error) {
	if stateDir == "" {
		stateDir = DefaultConfig().StateDir
	}
	b, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("open lab in %s: %w", stateDir, err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("open lab in %s: %w", stateDir, err)
	}
	cfg = cfg.withDefaults()
	cfg.StateDir = stateDir
	return newLab(cfg, log), nil
}

// Up builds the lab and starts every node: namespaces, bridge, per-node
// directories and configuration, the mount namespace of each node,
// corosync, pacemakerd and (unless NoDB) MariaDB; it returns once every
// node is online in a partition with quorum. A lab left in cfg's state
// directory or namespaces (a crashed run, or a lab still up) is torn down
// first. On error the partial lab is torn down.
func Up(ctx context.Context, cfg Config, log *slog.Logger) (*Lab, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkTools(cfg); err != nil {
		return nil, err
	}
	l := newLab(cfg, log)
	if err := cleanStale(cfg, l.log); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := l.build(); err != nil {
		l.Down()
		return nil, err
	}
	l.log.Info("lab network ready", "nodes", cfg.Nodes, "subnet", cfg.Subnet, "elapsed", time.Since(t0).Round(time.Millisecond))
	errs := make([]error, cfg.Nodes)
	nodes := l.Nodes()
	if !cfg.NoDB && cfg.DB == DBGalera {
		// n1 bootstraps the Galera cluster (StartDB: no other node's
		// MariaDB runs); the others join it once it is Synced.
		if err := l.Start(ctx, nodes[0]); err != nil {
			l.Down()
			return nil, err
		}
		nodes = nodes[1:]
		errs = errs[1:]
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Start(ctx, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		l.Down()
		return nil, err
	}
	if err := l.WaitOnline(ctx, l.Nodes()...); err != nil {
		l.Down()
		return nil, err
	}
	if !cfg.NoDB && cfg.DB == DBReplication {
		for _, n := range l.Nodes()[1:] {
			if err := l.Replicate(ctx, n, "n1"); err != nil {
				l.Down()
				return nil, err
			}
		}
	}
	l.QuorumAfter = time.Since(t0)
	// The stonith resource comes once every node is online: a node that
	// joins late must not be fenced at startup (startup-fencing) before it
	// had a chance to join.
	if l.Fencing() {
		if err := l.addFence(ctx, "n1"); err != nil {
			l.Down()
			return nil, err
		}
	}
	l.log.Info("lab up: all nodes online with quorum", "elapsed", l.QuorumAfter.Round(time.Millisecond))
	return l, nil
}

func checkTools(cfg Config) error {
	tools := []string{"ip", "unshare", "nsenter", "corosync", "corosync-cmapctl", "pacemakerd", "crm_mon", "mount"}
	if !cfg.NoDB {
		tools = append(tools, "mariadbd", "mariadb-install-db", "mariadb-admin")
		if cfg.DB == DBGalera {
			tools = append(tools, "rsync") // the SST method
		}
	}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if !cfg.NoDB && cfg.DB == DBGalera {
		if _, err := os.Stat(galeraProvider); err != nil {
			missing = append(missing, galeraProvider+" (galera-4)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lab needs %s: %w (install the Debian packages: make deps)", strings.Join(missing, ", "), exec.ErrNotFound)
	}
	return nil
}

// build makes the state directory, the namespaces, the bridge and the links.
func (l *Lab) build() error {
	c := l.cfg
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(filepath.Join(c.StateDir, stateFile), b, 0o644); err != nil {
		return err
	}
	key := make([]byte, 256)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.StateDir, "authkey"), key, 0o400); err != nil {
		return err
	}
	addrs := make([]string, c.Nodes)
	for i, n := range l.Nodes() {
		addrs[i] = l.Addr(n).String()
	}
	conf := corosyncConf(c.Cluster, c.TokenMS, l.Nodes(), addrs)
	if err := os.WriteFile(filepath.Join(c.StateDir, "holder.sh"), []byte(holderScript), 0o755); err != nil {
		return err
	}
	// Nodes are prepared in parallel: most of it is mariadb-install-db.
	errs := make([]error, c.Nodes)
	var wg sync.WaitGroup
	for i, n := range l.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.prepareNode(n, conf, key)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// Multicast snooping off, so that frames to a VIP's multicast cluster
	// MAC are flooded to every port (nstest's switches for tests and the
	// bench keep the kernel's default).
	sw, err := nstest.CreateSwitch(l.Netns("switch"), nstest.NoMulticastSnooping())
	if err != nil {
		return err
	}
	sw.NS.Release() // the lab outlives this process: Down removes the switch
	for _, h := range append(l.Nodes(), "client") {
		if err := l.powerOn(h); err != nil {
			return err
		}
	}
	if l.Fencing() {
		return l.startFenceServer(context.Background())
	}
	return nil
}

// switchPort returns a netlink handle in the switch's namespace and node's
// bridge port; done closes them.
func (l *Lab) switchPort(node string) (*netlink.Handle, netlink.Link, func(), error) {
	if _, err := l.index(node); err != nil {
		return nil, nil, nil, err
	}
	sw, err := nstest.OpenSwitch(l.Netns("switch"))
	if err != nil {
		return nil, nil, nil, err
	}
	nl, err := sw.NS.OpenNetlink()
	if err != nil {
		sw.NS.Close()
		return nil, nil, nil, err
	}
	done := func() { nl.Close(); sw.NS.Close() }
	p, err := nl.LinkByName(l.port(node))
	if err != nil {
		done()
		return nil, nil, nil, fmt.Errorf("port %s: %w", l.port(node), err)
	}
	return nl, p, done, nil
}

// port is the bridge port of host: p1… for the nodes, p0 for the client.
func (l *Lab) port(host string) string {
	i, err := l.index(host)
	if err != nil {
		return "p0"
	}
	return fmt.Sprintf("p%d", i+1)
}

// powerOn gives host a fresh network namespace plugged into the bridge, as
// a machine that boots: no addresses but its own, no rules.
func (l *Lab) powerOn(host string) error {
	name, port := l.Netns(host), l.port(host)
	if nstest.Exists(name) {
		return nil
	}
	sw, err := nstest.OpenSwitch(l.Netns("switch"))
	if err != nil {
		return err
	}
	defer sw.NS.Close()
	// A port left from before (its namespace not yet freed) goes first; if
	// it cannot, AttachPort below says so.
	_ = sw.Detach(port)
	ns, err := nstest.Create(name)
	if err != nil {
		return err
	}
	defer ns.Release() // the lab outlives this process: powerOff and Down remove it
	// The ports are named by host (not nstest's p1, p2, … in the order of
	// attaching): every lab command is a process of its own, and a node
	// powered off and on again gets its old port back.
	addrs := []netip.Prefix{netip.PrefixFrom(l.Addr(host), 24)}
	if l.cfg.IPv6 {
		addrs = append(addrs, netip.PrefixFrom(l.Addr6(host), 64))
	}
	if err := sw.AttachPort(port, ns, "eth0", nil, addrs...); err != nil {
		return err
	}
	if host == "client" {
		if l.cfg.sourceHashed() {
			return l.addClientSources(ns)
		}
		return nil
	}
	// A node must never answer ARP for, or source ARP from, an address
	// (the VIP) with its own MAC: clients would stick to one node.
	for _, k := range []string{"net.ipv4.conf.all.arp_announce", "net.ipv4.conf.eth0.arp_announce"} {
		if err := ns.Sysctl(k, "2"); err != nil {
			return err
		}
	}
	return nil
}

// powerOff cuts node off the bridge and drops its network namespace with
// every address, rule and socket in it, as a machine that goes dark: a
// crashed node must not keep answering (with resets) for its old VIP
// buckets. Its processes must be gone already.
func (l *Lab) powerOff(node string) error {
	if err := l.unplug(node); err != nil {
		return err
	}
	return nstest.Delete(l.Netns(node))
}

// unplug removes node's port from the bridge (and with it the node's eth0).
// Equivalent to: ip -n PREFIXsw link del pN
func (l *Lab) unplug(node string) error {
	sw, err := nstest.OpenSwitch(l.Netns("switch"))
	if err != nil {
		return nil // no bridge: nothing is plugged
	}
	defer sw.NS.Close()
	if err := sw.Detach(l.port(node)); err != nil {
		return fmt.Errorf("%s: %w", node, err)
	}
	return nil
}

// privateDirs are bind-mounted from the node's state directory over the
// same path inside the node's mount namespace (path with / → _ below the node dir).
var privateDirs = []string{
	"etc/corosync", "var/lib/corosync", "var/lib/pacemaker", "var/log/pacemaker", "var/log/cluster", "var/lib/mysql",
}

func (l *Lab) prepareNode(node, conf string, key []byte) error {
	r := l.dir(node)
	for _, d := range privateDirs {
		if err := os.MkdirAll(filepath.Join(r, strings.ReplaceAll(d, "/", "_")), 0o755); err != nil {
			return err
		}
		// The mount point must exist in the root namespace too; Debian's
		// corosync does not create /var/log/cluster.
		if err := os.MkdirAll("/"+d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"cib", "pengine", "blackbox", "cores"} {
		if err := os.MkdirAll(filepath.Join(r, "var_lib_pacemaker", d), 0o750); err != nil {
			return err
		}
	}
	hac, err := lookupIDs("hacluster", "haclient")
	if err != nil {
		return err
	}
	for _, d := range []string{"var_lib_pacemaker", "var_log_pacemaker"} {
		if err := chownR(filepath.Join(r, d), hac); err != nil {
			return err
		}
	}
	etc := filepath.Join(r, "etc_corosync")
	if err := os.WriteFile(filepath.Join(etc, "corosync.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "authkey"), key, 0o400); err != nil {
		return err
	}
	cib := filepath.Join(r, "var_lib_pacemaker", "cib", "cib.xml")
	if err := os.WriteFile(cib, []byte(seedCIB(l.Fencing())), 0o600); err != nil {
		return err
	}
	if err := os.Chown(cib, hac.uid, hac.gid); err != nil {
		return err
	}
	if l.cfg.Agents != "" {
		if err := l.installAgents(node); err != nil {
			return err
		}
	}
	if l.Fencing() {
		if err := l.installFence(node); err != nil {
			return err
		}
	}
	if !l.cfg.NoDB {
		if err := l.initDB(node); err != nil {
			return err
		}
	}
	return nil
}

// Down tears the lab down: every process in the lab's namespaces is killed
// (SIGKILL, pids checked to be inside them), the namespaces, bridge and
// links go with them, and the state directory is removed. Safe to call on a
// half-built or already removed lab.
func (l *Lab) Down() error {
	err := teardown(l.cfg, l.Nodes(), l.log)
	l.mu.Lock()
	l.cmds = nil
	l.mu.Unlock()
	return err
}

// cleanStale removes a lab left behind under cfg's names or state directory.
func cleanStale(cfg Config, log *slog.Logger) error {
	stale := false
	if old, err := Open(cfg.StateDir, nil); err == nil {
		stale = true
		log.Warn("stale lab found, removing it", "state", cfg.StateDir, "prefix", old.cfg.Prefix)
		if err := old.Down(); err != nil {
			return err
		}
	}
	l := newLab(cfg, log)
	for _, h := range append(l.Nodes(), "client", "switch") {
		if nstest.Exists(l.Netns(h)) {
			if !stale {
				log.Warn("stale lab namespaces found, removing them", "prefix", cfg.Prefix)
			}
			stale = true
			break
		}
	}
	if !stale {
		if _, err := os.Stat(cfg.StateDir); err != nil {
			return nil
		}
	}
	return teardown(cfg, l.Nodes(), log)
}

func teardown(cfg Config, nodes []string, log *slog.Logger) error {
	var errs []error
	l := newLab(cfg, log)
	// The power server first: it must not boot a node while it goes.
	stopFenceServer(cfg)
	hosts := append(append([]string{}, nodes...), "client", "switch")
	for _, h := range hosts {
		ns := l.Netns(h)
		if !nstest.Exists(ns) {
			continue
		}
		if err := killNetns(ns); err != nil {
			errs = append(errs, err)
			continue
		}
	}
	for _, h := range hosts {
		if err := nstest.Delete(l.Netns(h)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, unmountBelow(cfg.StateDir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down lab %s: %w", cfg.StateDir, err)
	}
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		return fmt.Errorf("tear down lab: %w", err)
	}
	return nil
}

// unmountBelow unmounts anything mounted below dir in this mount namespace.
// The lab mounts only inside the nodes' own mount namespaces, which vanish
// with their last process; this catches anything left by hand.
func unmountBelow(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) > 4 && (fs[4] == dir || strings.HasPrefix(fs[4], dir+"/")) {
			mps = append(mps, fs[4])
		}
	}
	var errs []error
	for i := len(mps) - 1; i >= 0; i-- {
		if out, err := exec.Command("umount", "-l", mps[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("umount %s: %w: %s", mps[i], err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}
