package clusterip

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Plane programs VIPs into the kernel of one network namespace.
// Its methods are safe for concurrent use, also across processes: every
// change to a VIP runs under a per-VIP file lock.
type Plane struct {
	nsFd   int    // -1: the caller's namespace
	nsIno  uint64 // inode of the namespace, for lock names (0: caller's)
	runDir string
	want   Backend
	grace  time.Duration
	poll   time.Duration
	be     backendImpl // nil until chosen (WithRecordedBackend defers the probe); see impl
	why    string      // why BackendAuto chose xtcluster (BackendReason)
	beMu   sync.Mutex
	rec    *VIP      // WithRecordedBackend
	res    *Resolver // WithResolver
}

// Option configures a Plane.
type Option func(*Plane)

// WithNetNS binds the plane to the network namespace open as fd (e.g. a
// netns.NsHandle). The caller keeps fd open for the plane's life.
func WithNetNS(fd int) Option { return func(p *Plane) { p.nsFd = fd } }

// WithBackend chooses the backend (default BackendAuto).
func WithBackend(b Backend) Option { return func(p *Plane) { p.want = b } }

// WithRunDir sets the directory of the per-VIP lock files (default
// DefaultRunDir). All processes managing one node's VIPs must share it.
func WithRunDir(dir string) Option { return func(p *Plane) { p.runDir = dir } }

// WithDrainGrace sets how long Release of the last bucket waits for
// tracked connections to close before removing the address (default
// DefaultDrainGrace; 0 removes it at once).
func WithDrainGrace(d time.Duration) Option { return func(p *Plane) { p.grace = d } }

// WithRecordedBackend makes a BackendAuto plane take the backend that v's
// kernel objects record (the settings comment on its ingress rule) instead
// of probing the kernel with a commit (~10 ms), and only when a method
// first needs one (State never does); when v is not programmed, that
// method probes. Meant for monitors: New then reads and changes nothing.
func WithRecordedBackend(v VIP) Option { return func(p *Plane) { p.rec = &v } }

// New returns a Plane. With BackendAuto it probes the kernel once and picks
// nftables when it accepts the bucket objects, else xtcluster (see
// WithRecordedBackend for a plane that does not probe).
func New(opts ...Option) (*Plane, error) {
	p := &Plane{nsFd: -1, runDir: DefaultRunDir, grace: DefaultDrainGrace, poll: 100 * time.Millisecond}
	for _, o := range opts {
		o(p)
	}
	if _, ok := backendNames[p.want]; !ok {
		return nil, &FieldError{"backend", p.want.String(), "unknown backend"}
	}
	if p.nsFd >= 0 {
		var st unix.Stat_t
		if err := unix.Fstat(p.nsFd, &st); err != nil {
			return nil, fmt.Errorf("netns fd %d: %w", p.nsFd, err)
		}
		p.nsIno = st.Ino
	}
	if p.want == BackendAuto && p.rec != nil {
		return p, nil // impl chooses when first needed
	}
	if _, err := p.impl(); err != nil {
		return nil, err
	}
	return p, nil
}

// implOf is the implementation of backend b (false for BackendAuto or an
// unknown one).
func (p *Plane) implOf(b Backend) (backendImpl, bool) {
	switch b {
	case BackendNFTables:
		return nftBackend{p}, true
	case BackendXTCluster:
		return &xtBackend{p: p}, true
	}
	return nil, false
}

// impl returns the plane's backend, choosing it on first use: the one
// asked for, else (BackendAuto) the one recorded for WithRecordedBackend's
// VIP, else nftables when the kernel accepts its objects (a probe batch
// that adds and deletes a scratch table), else xtcluster.
func (p *Plane) impl() (backendImpl, error) {
	p.beMu.Lock()
	defer p.beMu.Unlock()
	if p.be != nil {
		return p.be, nil
	}
	if p.want == BackendAuto && p.rec != nil {
		// The nftables record first (netlink, no exec); else v's iptables
		// chain. Neither: probe below.
		if c, err := p.nftConn(); err == nil {
			if rs, err := ingressRules(c, *p.rec); err == nil {
				if be, ok := recordedBackend(rs, *p.rec); ok {
					if bi, ok := p.implOf(be); ok {
						p.be = bi
						return p.be, nil
					}
				}
			}
		}
		if p.xtRecorded(*p.rec) {
			p.be, _ = p.implOf(BackendXTCluster)
			return p.be, nil
		}
	}
	switch p.want {
	case BackendNFTables:
		p.be, _ = p.implOf(p.want)
	case BackendXTCluster:
		if err := xtTools(); err != nil {
			return nil, err
		}
		p.be, _ = p.implOf(p.want)
	default:
		err := p.probeNFT()
		if err == nil {
			p.be, _ = p.implOf(BackendNFTables)
			break
		}
		if terr := xtTools(); terr != nil {
			return nil, fmt.Errorf("choose backend: nftables unusable (%v) and %w", err, terr)
		}
		p.be, _ = p.implOf(BackendXTCluster)
		p.why = fmt.Sprintf("nftables unusable (%v): using the iptables cluster match (source address only, at most %d buckets, IPv4)", err, xtMaxBuckets)
	}
	return p.be, nil
}

// BackendReason says why a BackendAuto plane chose xtcluster (the
// nftables probe's error), for the caller to log; "" when it did not.
func (p *Plane) BackendReason() string {
	p.beMu.Lock()
	defer p.beMu.Unlock()
	return p.why
}

// Backend returns the backend the plane uses (choosing it first if
// WithRecordedBackend deferred that; BackendAuto if it cannot be chosen).
func (p *Plane) Backend() Backend {
	be, err := p.impl()
	if err != nil {
		return BackendAuto
	}
	return be.kind()
}

// Ensure creates or repairs everything v needs except the address and the
// cluster MAC, which come with the first owned bucket: the node sysctls,
// the link tables (pkttype fix, ARP/ND answers with the cluster MAC) and
// the backend's bucket objects, keeping buckets already owned. Idempotent:
// a second call is a no-op; after a crash it repairs partial state.
// A changed setting (buckets, seed, MAC…) rebuilds the objects in one
// batch, keeping owned buckets that are still in range.
func (p *Plane) Ensure(v VIP) error {
	_, unlock, err := p.begin(v, nil)
	if err != nil {
		return err
	}
	defer unlock()
	return p.ensureLocked(v)
}

// begin is the common start of every change to v: the backend, v and
// buckets bs validated for it, and v's lock held (release with unlock).
func (p *Plane) begin(v VIP, bs []Bucket) (be backendImpl, unlock func(), err error) {
	if be, err = p.impl(); err != nil {
		return nil, nil, err
	}
	if err := v.Validate(be.kind()); err != nil {
		return nil, nil, err
	}
	if err := v.checkBuckets(bs); err != nil {
		return nil, nil, err
	}
	if unlock, err = p.lock(v); err != nil {
		return nil, nil, err
	}
	return be, unlock, nil
}

func (p *Plane) ensureLocked(v VIP) error {
	be, err := p.impl()
	if err != nil {
		return err
	}
	h, err := p.netlink()
	if err != nil {
		return fmt.Errorf("ensure %s: %w", v, err)
	}
	defer h.Close()
	l, err := linkOf(h, v)
	if err != nil {
		return err
	}
	if be.kind() == BackendNFTables {
		if err := p.ensureNFT(v, be.kind()); err != nil {
			return fmt.Errorf("ensure %s: %w", v, err)
		}
	} else {
		// No nftables object with xtcluster: tables of v that an
		// nftables run left (or the link tables xtcluster once kept in
		// nftables) go, where nftables can be read at all.
		_ = p.removeNFT(v)
	}
	if err := be.ensure(v); err != nil {
		return fmt.Errorf("ensure %s: %w", v, err)
	}
	// After the tables: restoreSysctls reads them to see whether another
	// VIP still needs a sysctl (see there).
	if err := p.ensureSysctls(v); err != nil {
		return fmt.Errorf("ensure %s: %w", v, err)
	}
	owned, err := be.owned(v)
	if err != nil {
		return fmt.Errorf("ensure %s: %w", v, err)
	}
	if len(owned) > 0 {
		// Repair a crash between the owned-set change and the address.
		if err := bringUp(h, l, v); err != nil {
			return fmt.Errorf("ensure %s: %w", v, err)
		}
		return nil
	}
	// Nothing owned but the address or the cluster MAC is there: a Release
	// is draining, or one was killed mid-release (between takeDown's
	// address and MAC, too). Repair only the latter, and only when no
	// connection still needs the address (else the next Release drains).
	up, err := hasAddr(h, l, v)
	if err != nil {
		return err
	}
	if !up {
		if up, err = macJoined(h, l, v); err != nil || !up {
			return err
		}
	}
	unlockDrain, free, err := p.noDrainer(v)
	if err != nil || !free {
		return err
	}
	defer unlockDrain()
	if n, err := tracked(h, v); err != nil || n > 0 {
		return err
	}
	if err := takeDown(h, l, v); err != nil {
		return fmt.Errorf("ensure %s: %w", v, err)
	}
	return nil
}

// Own makes this node accept new connections of buckets bs (one atomic
// kernel transaction) and, with the first bucket, puts the address and
// the cluster MAC on the link. It ensures v first. Owning an owned bucket
// is a no-op. Equivalent to: nft add element ip loadshare-… owned { 3, 7 }
func (p *Plane) Own(v VIP, bs ...Bucket) error {
	be, unlock, err := p.begin(v, bs)
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.ensureLocked(v); err != nil {
		return err
	}
	cur, err := be.owned(v)
	if err != nil {
		return fmt.Errorf("own buckets %v of %s: %w", bs, v, err)
	}
	var add []Bucket
	for _, b := range sortedBuckets(bs) {
		if !slices.Contains(cur, b) {
			add = append(add, b)
		}
	}
	if len(add) > 0 {
		if err := be.setOwned(v, cur, add, nil); err != nil {
			return fmt.Errorf("own buckets %v of %s: %w", add, v, err)
		}
	}
	h, l, err := p.openLink(v, linkOf)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := bringUp(h, l, v); err != nil {
		return fmt.Errorf("own buckets of %s: %w", v, err)
	}
	// Ownership is complete; a failed prune only leaves held too large
	// (those buckets' frames reach the bucket chain, as without it).
	_ = p.pruneHeld(v, be, nil)
	return nil
}

// Release stops accepting new connections of buckets bs (one atomic
// transaction); connections this node already tracks keep being answered.
// Releasing a bucket not owned is a no-op.
//
// Releasing the node's last bucket would remove the address, and with it
// every connection still served. So the set is emptied at once (no new
// connections), the address, cluster MAC and established-connection rule
// stay, and Release waits until conntrack shows no open connection to the
// VIP or the drain grace (WithDrainGrace) ends; the lock is not held while
// waiting. Then, if no bucket was owned meanwhile, everything of v on the
// node goes (address, cluster MAC, tables, run files; the sysctls Ensure
// changed unless another VIP needs them): a stopped VIP leaves nothing
// that could drop the traffic of whatever serves the address next. Of
// several releases draining v at once (concurrent stops, or a bucket
// owned and released again during a drain), the last to end its wait
// removes, under v's lock; the others return without removing anything
// (nor cutting the connections the later drain waits for). An Own after
// the removal builds everything again. If connections were
// still open, the release is complete and the returned error is a
// *DrainError (errors.Is(err, ErrDrainCut)). Releasing a bucket of a VIP
// with nothing owned here (a stop after a failed start) cleans up too.
//
// Release is ReleaseOnly, then the Drain's Wait in this call.
func (p *Plane) Release(v VIP, bs ...Bucket) error {
	d, err := p.ReleaseOnly(v, bs...)
	if err != nil || d == nil {
		return err
	}
	return d.Wait()
}

// ReleaseOnly is Release without the wait: when nothing of v is owned
// here any more it returns, holding v's drain marker, the Drain whose Wait
// drains and then removes everything of v (nil while other buckets of v
// stay owned). The caller runs its Wait, or hands its Marker to another
// process that adopts it (AdoptDrain) and closes its own; until then no
// Ensure takes the kept address for a crash's leftover.
func (p *Plane) ReleaseOnly(v VIP, bs ...Bucket) (*Drain, error) {
	be, unlock, err := p.begin(v, bs)
	if err != nil {
		return nil, err
	}
	present, err := be.present(v)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("release buckets %v of %s: %w", bs, v, err)
	}
	var cur []Bucket
	if present {
		if err := p.ensureLocked(v); err != nil {
			unlock()
			return nil, err
		}
		if cur, err = be.owned(v); err != nil {
			unlock()
			return nil, fmt.Errorf("release buckets %v of %s: %w", bs, v, err)
		}
		var del []Bucket
		for _, b := range sortedBuckets(bs) {
			if slices.Contains(cur, b) {
				del = append(del, b)
			}
		}
		if len(del) > 0 {
			if err := be.setOwned(v, cur, nil, del); err != nil {
				unlock()
				return nil, fmt.Errorf("release buckets %v of %s: %w", del, v, err)
			}
			cur = slices.DeleteFunc(cur, func(b Bucket) bool { return slices.Contains(del, b) })
		}
		// As in Own: best effort, held too large is only slower.
		_ = p.pruneHeld(v, be, del)
	}
	if len(cur) > 0 {
		unlock()
		return nil, nil
	}
	// Nothing owned here any more: drain, then remove everything of v.
	// The drain marker is taken before the lock is let go, so no Ensure
	// mistakes the kept address for a crash's leftover.
	marker, err := p.drainMarker(v)
	unlock()
	if err != nil {
		return nil, err
	}
	return &Drain{p: p, v: v, be: be, marker: marker}, nil
}

// drainAndDrop waits for v's tracked connections (up to the grace) while
// the address is up, then, unless a bucket was owned in the meantime or
// another release is still draining v, removes everything of v
// (dropLocked). The caller holds the drain marker; drainAndDrop lets it go.
func (p *Plane) drainAndDrop(v VIP, be backendImpl, unlockDrain func()) error {
	drained := false
	defer func() {
		if !drained {
			unlockDrain()
		}
	}()
	h, l, err := p.openLink(v, linkIfAny)
	if err != nil {
		return err
	}
	defer h.Close()
	start := time.Now()
	remaining := 0
	if l != nil {
		up, err := hasAddr(h, l, v)
		if err != nil {
			return err
		}
		for up {
			remaining, err = tracked(h, v)
			if err != nil {
				return fmt.Errorf("drain %s: %w", v, err)
			}
			if remaining == 0 || time.Since(start) >= p.grace {
				break
			}
			time.Sleep(p.poll)
		}
	}
	unlock, err := p.lock(v)
	if err != nil {
		return err
	}
	defer unlock()
	if present, err := be.present(v); err != nil {
		return err
	} else if present {
		if cur, err := be.owned(v); err != nil {
			return err
		} else if len(cur) > 0 {
			return nil // owned again while draining: everything stays
		}
	}
	unlockDrain()
	drained = true
	// The last drainer out removes: another one still waiting drains
	// connections accepted after ours began (a bucket owned and released
	// again meanwhile), up to its own grace, and removes at its end.
	if unlockOther, free, err := p.noDrainer(v); err != nil {
		return err
	} else if !free {
		return nil
	} else {
		unlockOther()
	}
	if err := p.dropLocked(h, l, v, be); err != nil {
		return fmt.Errorf("release last bucket of %s: %w", v, err)
	}
	if remaining > 0 {
		return &DrainError{VIP: v, Remaining: remaining, Grace: time.Since(start).Round(time.Millisecond)}
	}
	return nil
}

// dropLocked removes everything of v from the node, in the reverse order
// of Own: the address and the cluster MAC (l nil: the link is gone), the
// backend's bucket objects, the nftables tables, the sysctls v set that no
// other VIP needs (restoreSysctls), and v's run files, its lock file last.
// The caller holds v's lock, and unlocks right after. Absent pieces are
// fine; a piece that fails to go stops it, and the next stop or start of
// any bucket of v on this node repairs or removes what is left.
func (p *Plane) dropLocked(h *netlink.Handle, l netlink.Link, v VIP, be backendImpl) error {
	if l != nil {
		// The flood check (flood.go) keeps receiving on the cluster MAC
		// while it runs, also on a node that owns no bucket.
		flood, err := p.FloodPresent(v)
		if err != nil && be.kind() == BackendNFTables {
			return err // xtcluster: nftables may be unusable, and then no flood check runs
		}
		if flood {
			err = delAddr(h, l, v)
		} else {
			err = takeDown(h, l, v)
		}
		if err != nil {
			return err
		}
	}
	if err := be.remove(v); err != nil {
		return err
	}
	if err := p.removeNFT(v); err != nil && be.kind() == BackendNFTables {
		return err // xtcluster: nftables may be unusable here, and has nothing of v
	}
	if err := p.restoreSysctls(v); err != nil {
		return err
	}
	p.removeRunFiles(v)
	p.removeLockFile(v)
	return nil
}

// Owned returns the buckets this node owns for v, sorted. The kernel is
// the truth: it reads the owned set (or the cluster rule), not a file.
// A VIP without kernel objects returns ErrNotEnsured (wrapped).
func (p *Plane) Owned(v VIP) ([]Bucket, error) {
	return readEnsured(p, v, "owned buckets", func(be backendImpl) ([]Bucket, error) { return be.owned(v) })
}

// readEnsured runs read on the backend holding v's kernel objects (see
// ensured), its error wrapped as what of v.
func readEnsured[T any](p *Plane, v VIP, what string, read func(backendImpl) (T, error)) (T, error) {
	var zero T
	be, err := p.ensured(v, what)
	if err != nil {
		return zero, err
	}
	x, err := read(be)
	if err != nil {
		return zero, fmt.Errorf("%s of %s: %w", what, v, err)
	}
	return x, nil
}

// ensured is the backend holding v's kernel objects, for the reads that
// need them (what names the read in errors); ErrNotEnsured (wrapped)
// when v has none.
func (p *Plane) ensured(v VIP, what string) (backendImpl, error) {
	be, err := p.impl()
	if err != nil {
		return nil, err
	}
	if err := v.Validate(be.kind()); err != nil {
		return nil, err
	}
	ok, err := be.present(v)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, v, err)
	}
	if !ok {
		// The other backend's objects, for the readers (Status, metrics)
		// that bind a plane to nftables so as never to probe, and read
		// every VIP here.
		other, _ := p.implOf(BackendNFTables)
		if be.kind() == BackendNFTables {
			other, _ = p.implOf(BackendXTCluster)
		}
		if ok, err := other.present(v); err == nil && ok {
			return other, nil
		}
		return nil, fmt.Errorf("%s of %s: %w", what, v, ErrNotEnsured)
	}
	return be, nil
}

// Counters returns per-bucket counters of traffic to v accepted on this
// node, for every bucket 0..N-1 (xtcluster: from the per-bucket rules'
// counters, which count only while the node holds the VIP).
func (p *Plane) Counters(v VIP) (map[Bucket]Counter, error) {
	return readEnsured(p, v, "counters", func(be backendImpl) (map[Bucket]Counter, error) { return be.counters(v) })
}

// Remove deletes everything Ensure and Own added for v: the address, the
// cluster MAC, the tables (or iptables chain), v's run files, and restores
// the sysctls Ensure changed unless another VIP still needs them. It does
// not wait for connections (Release the buckets first to drain); a
// Release draining v meanwhile finds nothing left to remove. Absent
// objects are fine.
func (p *Plane) Remove(v VIP) error {
	be, err := p.impl()
	if err != nil {
		return err
	}
	if err := v.Validate(be.kind()); err != nil {
		return err
	}
	unlock, err := p.lock(v)
	if err != nil {
		return err
	}
	defer unlock()
	h, l, err := p.openLink(v, linkIfAny)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := p.dropLocked(h, l, v, be); err != nil {
		return fmt.Errorf("remove %s: %w", v, err)
	}
	return nil
}
