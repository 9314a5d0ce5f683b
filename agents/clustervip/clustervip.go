// Package clustervip is the OCF resource agent ocf:loadshare:clustervip:
// one bucket of a shared VIP per resource, all of the kernel work done by
// package clusterip. It registers itself with package ocf in init();
// cmd/clustervip is its binary.
package clustervip

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loadshare/loadshare/agents/ocf"
	"github.com/loadshare/loadshare/clusterip"
	"golang.org/x/sys/unix"
)

func init() { ocf.Register("clustervip", func() ocf.Agent { return &clusterVIP{} }) }

// clusterVIP is ocf:loadshare:clustervip: one resource owns one bucket of
// the VIP, either a primitive with bucket=K buckets=N (what loadshare crm
// generates, placed by the placer's own_NAME_K rules) or instance K of a
// globally-unique clone whose clone-max is the bucket count. All of
// the kernel work is package clusterip's; this file maps parameters to a
// clusterip.VIP and actions to Ensure/Own/Release/Owned.
type clusterVIP struct {
	bucket   int // the bucket this resource owns
	buckets  int // the VIP's bucket count
	vip      clusterip.VIP
	backend  clusterip.Backend // as configured (may be auto)
	grace    time.Duration     // drain grace, clipped to the operation's deadline
	resolved bool
	plane    *clusterip.Plane    // nil until planeFor
	res      *clusterip.Resolver // from resolve to Close; the monitor's State reuses it
}

// Close closes the resolver resolve opened.
func (a *clusterVIP) Close() error {
	if a.res == nil {
		return nil
	}
	return a.res.Close()
}

const clusterVIPLongDesc = `
One bucket of a virtual IP address served by every node at once. A node
answers the new connections whose source hashes into a bucket it owns; the
address and the cluster MAC are on a node while it owns at least one bucket.

Run it as one primitive per bucket with parameters bucket=K and buckets=N,
placed by location rules ("loadshare crm" generates that configuration,
with a placer that spreads buckets by load), or as a globally-unique clone
(clone-max is the number of buckets, instance K owns bucket K; set
resource-stickiness=0 so instances spread again after a node returns, and
clone-node-max=clone-max so one node can hold every bucket).

Every bucket of one VIP must use the same ip, hash, hash_seed and bucket
count.`

func (a *clusterVIP) Meta() ocf.Meta {
	return ocf.Meta{
		ShortDesc: "One hash bucket of a shared virtual IP",
		LongDesc:  clusterVIPLongDesc,
		Params: []ocf.Param{
			{Name: "ip", Required: true, // not unique: every bucket primitive of a VIP shares it
				ShortDesc: "Virtual IPv4 or IPv6 address",
				LongDesc:  "The shared virtual address, e.g. 192.0.2.10 or 2001:db8::10."},
			{Name: "bucket", Type: ocf.Integer,
				ShortDesc: "Bucket of a per-bucket primitive (0..buckets-1)",
				LongDesc: "Only for one primitive per bucket (vip_0 … vip_N-1, as \"loadshare crm\" generates): " +
					"the bucket this primitive owns. Leave unset in a clone: instance K owns bucket K.",
				Check: vipNonNegative},
			{Name: "buckets", Type: ocf.Integer,
				ShortDesc: "Bucket count of a per-bucket primitive",
				LongDesc: "Only for one primitive per bucket: the VIP's number of buckets, the same on every " +
					"bucket primitive. In a clone it is clone-max (if given, it must equal clone-max).",
				Check: func(v string) error {
					if n, _ := strconv.Atoi(v); n < 1 {
						return errors.New("must be at least 1")
					}
					return nil
				}},
			{Name: "cidr_netmask", Type: ocf.Integer,
				ShortDesc: "Prefix length of the address",
				LongDesc: "Prefix length the address is added with (e.g. 24). Default: the prefix of the " +
					"interface address whose subnet holds ip, else a host prefix (32 or 128).",
				Check: func(v string) error {
					if n, _ := strconv.Atoi(v); n < 1 || n > 128 {
						return errors.New("must be 1..32 (IPv4) or 1..128 (IPv6)")
					}
					return nil
				}},
			{Name: "nic", ShortDesc: "Network interface",
				LongDesc: "Interface that receives the VIP's frames. Default: the interface the routing table " +
					"uses to reach ip (the one holding ip when it is already configured)."},
			{Name: "mac", ShortDesc: "Cluster MAC address",
				LongDesc: "The MAC all nodes answer ARP/neighbour solicitations for ip with. Default: derived " +
					"from ip (multicast: 01:00:5e:... for IPv4, 33:33:... for IPv6; unicast: 02:bf:...). " +
					"The switch must flood it to every node.",
				Check: func(v string) error {
					if _, err := net.ParseMAC(v); err != nil {
						return errors.New("not a MAC address (like 01:00:5e:00:00:01)")
					}
					return nil
				}},
			{Name: "mac_mode", Default: "multicast", ShortDesc: "multicast or unicast cluster MAC",
				LongDesc: "multicast: a multicast MAC the nodes join (switch must flood it, e.g. IGMP snooping " +
					"off or the node ports as multicast router ports). unicast: a MAC no NIC uses, which " +
					"switches flood as unknown unicast with no configuration.",
				Check: func(v string) error { _, err := clusterip.ParseMACMode(v); return reason(err) }},
			{Name: "hash", Default: "sourceip-sourceport", ShortDesc: "Fields hashed into a bucket",
				LongDesc: "sourceip-sourceport: source address and port (clients behind one NAT address spread " +
					"over nodes). sourceip: source address only (one client always on one node; the only " +
					"mode of backend xtcluster).",
				Check: func(v string) error { _, err := clusterip.ParseHashMode(v); return reason(err) }},
			{Name: "backend", Default: "auto", ShortDesc: "Kernel mechanism: auto, nftables or xtcluster",
				LongDesc: "nftables: needs nftables in the kernel (netdev, arp, ip/ip6 families; no tool, netlink " +
					"only); jhash and a set of owned buckets, up to " + strconv.Itoa(clusterip.MaxBuckets) +
					" buckets, IPv4 and IPv6, either hash, either mac_mode, per-bucket counters, and an early " +
					"drop of other nodes' frames before conntrack. xtcluster: needs only the iptables tools " +
					"(iptables-restore, iptables-save, arptables; legacy or nft-backed) and the kernel's " +
					"cluster match, conntrack and arptables mangle; no nftables object. Limits: at most 32 " +
					"buckets, IPv4 only, hash=sourceip (source address only: all connections of one client " +
					"go to one node), mac_mode=multicast; no early drop (other nodes' frames pass conntrack " +
					"before the chain drops them), and each monitor runs iptables-save and arptables-save. " +
					"auto: nftables when the kernel accepts its objects, else xtcluster (logged with the " +
					"reason). All nodes of a VIP must use the same backend.",
				Check: func(v string) error { _, err := clusterip.ParseBackend(v); return reason(err) }},
			{Name: "hash_seed", Type: ocf.Integer,
				ShortDesc: "Hash seed (1..4294967295), the same on every node",
				LongDesc: "Seed of the bucket hash. Must be non-zero and the same on every node. Default: " +
					"derived from ip (FNV-1a of its text form).",
				Check: func(v string) error {
					if n, err := strconv.ParseUint(v, 10, 32); err != nil || n == 0 {
						return errors.New("must be 1..4294967295")
					}
					return nil
				}},
			{Name: "drain_grace", Type: ocf.Integer, Default: strconv.Itoa(int(clusterip.DefaultDrainGrace / time.Second)),
				ShortDesc: "Seconds the node keeps the address for open connections after its last bucket",
				LongDesc: "When a node releases its last bucket of the VIP, new connections go elsewhere at " +
					"once, but the address stays until the node's open connections to it have closed or " +
					"this many seconds have passed (0: remove it at once); then every object of the VIP on " +
					"the node goes (address, cluster MAC, nftables tables, run files), and the arp_announce " +
					"values it set are put back once no other VIP needs them. The stop does not wait for " +
					"that: it returns at once and a process of the agent's own (its \"drain\" action) waits, " +
					"so the bucket starts on its new node meanwhile; a bucket of the VIP started here again " +
					"during the wait keeps everything. Only if that process cannot be started does the " +
					"stop wait itself, never past its own deadline.",
				Check: vipNonNegative},
			{Name: "flood_check",
				ShortDesc: "Run as VIP NAME's flood check instead of a bucket",
				LongDesc: "NAME: this resource owns no bucket; it is the flood check of the VIP whose buckets are " +
					"NAME_0 … (same ip, nic and mac parameters). Run it as a clone on every node (\"loadshare crm\" " +
					"generates NAME-flood-clone). Every monitor sends three probe frames to the cluster MAC from the " +
					"node's own MAC and reads, in the kernel, the probes received from the other nodes. A node that " +
					"has heard none for flood_window monitors withdraws its flood_NAME=1; if it still hears none " +
					"as long again (at least 3 monitors) while another node says it hears them, it publishes the node " +
					"attribute flood_NAME=0, and the location rules and the placer move its buckets away; 1 when " +
					"it hears probes; no value while it cannot tell (alone, just started, nobody hears anybody).",
				Check: func(v string) error {
					if !validVIPName(v) {
						return errors.New("must be the VIP's name: letters, digits and '-', starting with a letter")
					}
					return nil
				}},
			{Name: "flood_window", Type: ocf.Integer, Default: "3",
				ShortDesc: "Monitors without a peer's probe before the flood check says unreached",
				LongDesc: "With flood_check: how many monitor intervals may pass without any probe of another " +
					"node before this node counts as not reached by the VIP's frames. Higher rides out probes " +
					"lost under load; lower moves the buckets sooner.",
				Check: func(v string) error {
					if n, _ := strconv.Atoi(v); n < 2 {
						return errors.New("must be at least 2")
					}
					return nil
				}},
			{Name: "flood_dampen", Type: ocf.Integer, Default: "5",
				ShortDesc: "attrd dampening of flood_NAME, seconds",
				LongDesc: "With flood_check: attrd waits this long for further changes before writing " +
					"flood_NAME to the CIB, so that a verdict that flips back at once moves no bucket.",
				Check: vipNonNegative},
		},
		Actions: []ocf.Action{
			{Name: "start", Timeout: 20 * time.Second},
			{Name: "stop", Timeout: clusterip.DefaultDrainGrace + 5*time.Second},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second},
		},
	}
}

func vipNonNegative(v string) error {
	if n, _ := strconv.Atoi(v); n < 0 {
		return errors.New("must be 0 or more")
	}
	return nil
}

// reason turns a clusterip parse error into the bare reason a ParamError
// carries (the framework names the parameter and value itself).
func reason(err error) error {
	var fe *clusterip.FieldError
	if errors.As(err, &fe) {
		return errors.New(fe.Reason)
	}
	return err
}

// Validate checks the clone meta and resolves the VIP; it reads the routing
// table and links but changes nothing.
func (a *clusterVIP) Validate(ctx context.Context, p ocf.Params) error {
	if err := a.placement(p); err != nil {
		return err
	}
	c := p.Clone
	if c.IsClone && c.NodeMax != 0 && c.NodeMax < c.Max && (p.Action == "validate-all" || p.Action == "start") && p.String("flood_check") == "" {
		p.Log.Warn("clone-node-max is below clone-max: with nodes down some buckets cannot run anywhere and their clients get no answer; set clone-node-max=clone-max",
			"clone_node_max", c.NodeMax, "clone_max", c.Max)
	}
	if err := a.resolve(ctx, p); err != nil {
		return err
	}
	if p.Action == "validate-all" || p.Action == "start" {
		// Checks clone-max against the limits of the backend auto picks.
		_, err := a.planeFor(p.Log)
		return err
	}
	return nil
}

// placement sets which bucket this resource owns and how many there are.
// Two shapes are supported:
//   - a globally-unique clone: instance K owns bucket K of clone-max;
//   - one primitive per bucket (vip_0 … vip_N-1, what "loadshare crm"
//     generates so that location rules can place each bucket): parameters
//     bucket=K and buckets=N.
func (a *clusterVIP) placement(p ocf.Params) error {
	if p.String("flood_check") != "" {
		a.bucket, a.buckets = 0, 1 // owns no bucket; clusterip.VIP wants a count
		return nil
	}
	c := p.Clone
	if c.IsClone {
		switch {
		case !c.GloballyUnique:
			return fmt.Errorf("clone meta globally-unique=false: each instance owns its own bucket, so set meta globally-unique=true on the clone: %w", ocf.ErrConfigured)
		case c.Max < 1:
			return fmt.Errorf("clone meta clone-max=%d: set clone-max to the number of buckets (at least 1): %w", c.Max, ocf.ErrConfigured)
		case c.Instance >= c.Max:
			return fmt.Errorf("clone instance %d is outside clone-max=%d: %w", c.Instance, c.Max, ocf.ErrConfigured)
		case p.IsSet("bucket"):
			return &ocf.ParamError{Param: "bucket", Value: p.String("bucket"),
				Reason: "in a clone the instance number is the bucket: remove the parameter"}
		case p.IsSet("buckets") && p.Int("buckets") != int64(c.Max):
			return &ocf.ParamError{Param: "buckets", Value: p.String("buckets"),
				Reason: fmt.Sprintf("differs from clone-max=%d: remove it or set clone-max to the number of buckets", c.Max)}
		}
		a.bucket, a.buckets = c.Instance, c.Max
		return nil
	}
	if !p.IsSet("bucket") || !p.IsSet("buckets") {
		return fmt.Errorf("clustervip owns one bucket of the VIP: run it as a globally-unique clone (meta globally-unique=true clone-max=<buckets>), or as one primitive per bucket with parameters bucket=K and buckets=N: %w", ocf.ErrConfigured)
	}
	n, k := p.Int("buckets"), p.Int("bucket")
	if k >= n {
		return &ocf.ParamError{Param: "bucket", Value: p.String("bucket"), Reason: fmt.Sprintf("must be 0..%d (buckets=%d)", n-1, n)}
	}
	a.bucket, a.buckets = int(k), int(n)
	return nil
}

// resolve builds the clusterip.VIP from the parameters and this node's links.
func (a *clusterVIP) resolve(ctx context.Context, p ocf.Params) error {
	if a.resolved {
		return nil
	}
	ipText := p.String("ip")
	addr, err := netip.ParseAddr(ipText)
	if err != nil {
		return &ocf.ParamError{Param: "ip", Value: ipText, Reason: "not an IP address"}
	}
	v := clusterip.VIP{Addr: addr, Prefix: int(p.Int("cidr_netmask"))}
	if v.Hash, err = clusterip.ParseHashMode(p.String("hash")); err != nil {
		return paramErr(err)
	}
	if v.MACMode, err = clusterip.ParseMACMode(p.String("mac_mode")); err != nil {
		return paramErr(err)
	}
	if s := p.String("mac"); s != "" {
		v.MAC, _ = net.ParseMAC(s) // checked by the declaration
	}
	backend, err := clusterip.ParseBackend(p.String("backend"))
	if err != nil {
		return paramErr(err)
	}
	if p.IsSet("hash_seed") {
		v.Seed = uint32(p.Int("hash_seed"))
	} else {
		v.Seed = seedOf(addr)
	}
	if a.buckets > 65535 {
		return fmt.Errorf("clone-max (or buckets)=%d: at most %d buckets; lower it: %w", a.buckets, clusterip.MaxBuckets, ocf.ErrConfigured)
	}
	v.Buckets = uint16(a.buckets)

	// The link and prefix as this node has them (nic and cidr_netmask
	// when given). Kept open for the monitor's State, closed by Close.
	if a.res == nil {
		if a.res, err = clusterip.NewResolver(); err != nil {
			return err
		}
	}
	v.Link = p.String("nic")
	if v, err = a.res.Resolve(v); err != nil {
		return paramErr(err)
	}
	if err := v.Validate(backend); err != nil {
		return paramErr(err)
	}
	// A stop of the last bucket that waits for open connections itself
	// (no drain process could start) never waits past the operation's own
	// deadline: a stop that times out gets the node fenced. The drain
	// process has no deadline: all of drain_grace.
	grace := time.Duration(p.Int("drain_grace")) * time.Second
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) - time.Second; grace > left {
			grace = max(left, 0)
		}
	}
	a.vip, a.backend, a.grace, a.resolved = v, backend, grace, true
	return nil
}

// planeFor returns the plane for the configured backend. With backend=auto,
// clusterip.New probes the kernel (one batch that adds and deletes a probe
// table, ~10 ms) and picks the backend whose limits then apply to the VIP;
// when that is xtcluster, log says why.
func (a *clusterVIP) planeFor(log *slog.Logger) (*clusterip.Plane, error) {
	if a.plane != nil {
		return a.plane, nil
	}
	pl, err := clusterip.New(clusterip.WithBackend(a.backend), clusterip.WithDrainGrace(a.grace))
	if err != nil {
		return nil, kernelErr(err)
	}
	if why := pl.BackendReason(); why != "" {
		log.Warn("backend auto chose xtcluster", "reason", why)
	}
	if err := a.vip.Validate(pl.Backend()); err != nil {
		return nil, paramErr(err)
	}
	a.plane = pl
	return pl, nil
}

// seedOf is the default hash seed: the same on every node for one ip,
// different for two VIPs, never zero.
func seedOf(addr netip.Addr) uint32 {
	h := fnv.New32a()
	h.Write([]byte(addr.String()))
	if s := h.Sum32(); s != 0 {
		return s
	}
	return 1
}

// paramErr maps a clusterip field error to the OCF parameter it came from.
func paramErr(err error) error {
	var fe *clusterip.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	switch fe.Field {
	case "buckets":
		fix := "lower clone-max"
		if strings.Contains(fe.Reason, "xtcluster") {
			fix += " or use backend=nftables"
		}
		return fmt.Errorf("clone-max (or buckets)=%s: %s; %s: %w", fe.Value, fe.Reason, fix, ocf.ErrConfigured)
	case "link":
		return &ocf.ParamError{Param: "nic", Value: fe.Value, Reason: fe.Reason, Local: true}
	}
	name := map[string]string{"addr": "ip", "prefix": "cidr_netmask", "seed": "hash_seed"}[fe.Field]
	if name == "" {
		name = fe.Field // hash, mac, mac_mode, backend: same names
	}
	return &ocf.ParamError{Param: name, Value: fe.Value, Reason: fe.Reason}
}

// kernelErr classifies a data-plane error for Pacemaker.
func kernelErr(err error) error {
	switch {
	case errors.Is(err, clusterip.ErrUnsupported):
		return fmt.Errorf("%w: %w", err, ocf.ErrInstalled)
	case errors.Is(err, unix.EPERM), errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: %w", err, ocf.ErrPerm)
	}
	return paramErr(err)
}

// prepare resolves the parameters and, for a bucket instance, opens the
// plane Start and Stop change; a flood check's instance (flood_check set)
// gets flood true and no plane.
func (a *clusterVIP) prepare(ctx context.Context, p ocf.Params) (pl *clusterip.Plane, flood bool, err error) {
	if err := a.resolve(ctx, p); err != nil {
		return nil, false, err
	}
	if p.String("flood_check") != "" {
		return nil, true, nil
	}
	pl, err = a.planeFor(p.Log)
	return pl, false, err
}

// Start ensures the VIP's kernel objects and owns this instance's bucket.
func (a *clusterVIP) Start(ctx context.Context, p ocf.Params) error {
	pl, flood, err := a.prepare(ctx, p)
	switch {
	case err != nil:
		return err
	case flood:
		return a.floodStart(ctx, p)
	}
	b := clusterip.Bucket(a.bucket)
	if err := pl.Ensure(a.vip); err != nil {
		return kernelErr(err)
	}
	if err := pl.Own(a.vip, b); err != nil {
		return kernelErr(err)
	}
	return nil
}

// Stop releases this instance's bucket. Rules already gone (reboot, flush)
// mean the bucket is not owned: success. After the node's last bucket of
// the VIP, its open connections drain (up to drain_grace) and then
// everything of the VIP on the node goes: at once in the stop when no
// connection is open, else in a process of the agent's own (startDrain),
// so the stop returns, and the bucket starts on its new node, without
// waiting for the drain. When that process cannot be started, the stop
// waits itself (drain_grace clipped to the stop's deadline).
func (a *clusterVIP) Stop(ctx context.Context, p ocf.Params) error {
	pl, flood, err := a.prepare(ctx, p)
	switch {
	case err != nil:
		return err
	case flood:
		return a.floodStop(ctx, p)
	}
	d, err := pl.ReleaseOnly(a.vip, clusterip.Bucket(a.bucket))
	switch {
	case errors.Is(err, clusterip.ErrNotEnsured):
		return nil
	case err != nil:
		return kernelErr(err)
	case d == nil:
		return nil // other buckets of the VIP stay owned here
	}
	if n, err := d.Tracked(); err == nil && n > 0 && p.Int("drain_grace") > 0 {
		pid, err := startDrain(d)
		if err == nil {
			d.Close() // the drain process holds the marker now
			p.Log.Info("last bucket released; its open connections drain in a process of their own",
				"pid", pid, "connections", n, "drain_grace", p.Int("drain_grace"))
			return nil
		}
		p.Log.Warn("cannot start the drain process: the stop waits for the open connections itself",
			"err", err, "connections", n)
	}
	return drained(p, d.Wait())
}

// Monitor reports whether this instance's bucket is served here, the
// kernel being the truth (not a state file): clusterip's State says
// FullyServed only when the bucket is in the owned set, the address is on
// the link, the link listens to the cluster MAC and the VIP's tables and
// rules (ingress pkttype fix, ARP/ND answers, bucket rules) are there as
// built. Anything less is OCF_NOT_RUNNING, so Pacemaker recovers the
// instance (stop, then start, whose Ensure and Own repair what is missing),
// with one exception, rebuildInPlace: an owned bucket whose VIP only lacks
// rules of its tables.
//
// A recurring monitor of every instance on every node must stay cheap: the
// plane takes the backend the VIP's objects record (no clusterip.New probe,
// which commits a scratch table), and State reads a few netlink objects —
// no conntrack dump (StatusOf), no commit, no lock to wait for.
func (a *clusterVIP) Monitor(ctx context.Context, p ocf.Params) error {
	if err := a.resolve(ctx, p); err != nil {
		return err
	}
	if p.String("flood_check") != "" {
		return a.floodMonitor(ctx, p)
	}
	b := clusterip.Bucket(a.bucket)
	pl, err := clusterip.New(clusterip.WithBackend(a.backend), clusterip.WithRecordedBackend(a.vip),
		clusterip.WithResolver(a.res))
	if err != nil {
		return kernelErr(err)
	}
	st, lack, err := pl.State(a.vip, b)
	switch {
	case err != nil:
		return kernelErr(err)
	case st == clusterip.FullyServed:
		return nil
	case st == clusterip.NotServed:
		return fmt.Errorf("VIP %s not set up here: %w", a.vip, ocf.ErrNotRunning)
	case rebuildable(lack):
		return a.rebuildInPlace(p, lack)
	case lack&clusterip.LackBucket == 0:
		// Owned, yet not answering: something removed a piece behind our
		// back (ip addr flush, nft delete table, a link reset...).
		p.Log.Warn("bucket owned but not served: missing "+describeLack(lack)+"; reporting not running so that Pacemaker restarts it",
			"vip", a.vip.String(), "bucket", a.bucket, "missing", lack.String())
	case lack.Rules():
		p.Log.Info("bucket not owned, and the VIP's rules are incomplete: missing "+describeLack(lack),
			"vip", a.vip.String(), "bucket", a.bucket, "missing", lack.String())
	}
	return fmt.Errorf("bucket %d of %s not served here: missing %s: %w", b, a.vip, describeLack(lack), ocf.ErrNotRunning)
}

// rebuildable reports whether the monitor rebuilds the VIP's rules itself
// rather than report the bucket not running: the bucket is owned, the
// address, cluster MAC and link are there and the settings match, and only
// rules, chains or tables of the VIP differ from what this build makes. That
// is what an upgrade to a version that builds other rules finds on every
// node. Pacemaker's recovery (stop, then start) would rebuild them too, but
// the stopped bucket is answered by no node until its start: one bucket per
// node dark for a moment, on every upgrade.
func rebuildable(lack clusterip.Lack) bool {
	const rules = clusterip.LackShape | clusterip.LackNetdev | clusterip.LackARP
	return lack != 0 && lack&^rules == 0
}

// rebuildInPlace rebuilds the VIP's rules with Ensure, which deletes and
// rebuilds its tables in one nftables transaction (one iptables-restore
// with xtcluster) with the owned buckets carried over, so no bucket of the
// node stops answering; then the monitor reads the kernel again.
func (a *clusterVIP) rebuildInPlace(p ocf.Params, lack clusterip.Lack) error {
	pl, err := a.planeFor(p.Log)
	if err != nil {
		return err
	}
	b := clusterip.Bucket(a.bucket)
	if err := pl.Ensure(a.vip); err != nil {
		return kernelErr(err)
	}
	st, after, err := pl.State(a.vip, b)
	if err != nil {
		return kernelErr(err)
	}
	if st != clusterip.FullyServed {
		return fmt.Errorf("bucket %d of %s not served here after rebuilding its rules (missing before: %s, now: %s): %w",
			b, a.vip, describeLack(lack), describeLack(after), ocf.ErrNotRunning)
	}
	p.Log.Warn("rebuilt the VIP's rules in place, the owned buckets kept: they were not as this version builds them "+
		"(built by another version, or changed by hand): missing "+describeLack(lack),
		"vip", a.vip.String(), "bucket", a.bucket, "missing", lack.String())
	return nil
}

// describeLack says in words what State found missing.
func describeLack(l clusterip.Lack) string {
	var out []string
	for _, x := range []struct {
		bit  clusterip.Lack
		text string
	}{
		{clusterip.LackBucket, "bucket (not in the owned set)"},
		{clusterip.LackLink, "link"},
		{clusterip.LackAddress, "address (not on the link)"},
		{clusterip.LackMAC, "cluster MAC (not joined on the link)"},
		{clusterip.LackNetdev, "rule: netdev ingress table"},
		{clusterip.LackARP, "rule: arp table"},
		{clusterip.LackBucketRules, "rule: bucket table/chain"},
		{clusterip.LackShape, "rule: a chain, set or rule of the VIP's tables"},
		{clusterip.LackSettings, "rule: built for other settings"},
	} {
		if l&x.bit != 0 {
			out = append(out, x.text)
		}
	}
	return strings.Join(out, ", ")
}
