package clusterip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	mnl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftSeen is what State reads of v's nftables objects (and, with the
// xtcluster backend, of its iptables rules): the pieces missing, the owned
// and held buckets. It does not depend on the bucket asked about, so every
// bucket's monitor of one VIP on a node reads the same.
type nftSeen struct {
	Lack     Lack    // LackNetdev, LackARP, LackBucketRules, LackShape, LackSettings
	Anything bool    // some object of v is there
	Backend  Backend // the backend the objects are for
	Owned    []Bucket
	Held     []Bucket // nftables: read when something is owned
}

// seenCache is the last nftSeen of a VIP with the ruleset generation it
// was read at. Every commit in a namespace (any table, set element or
// rule: ours, nft's, iptables-nft's) bumps the generation, so an entry
// whose generation is current describes the kernel as it is now; nft keys
// its own cache the same way. The namespace cookie tells namespaces apart
// (an inode may be reused by the next namespace, a cookie never within a
// boot), the key tells settings apart.
type seenCache struct {
	Cookie uint64
	Gen    uint32
	Key    string
	Seen   nftSeen
}

// The cache file is two lines of text, e.g.
//
//	seen/1 cookie=4096 gen=17 lack=0 anything=true backend=nftables owned=0,3 held=0,3,5
//	loadshare/1 addr=192.0.2.10 prefix=24 ... (the key: the settings fingerprint)
//
// read by a monitor of every bucket every few seconds: a format that
// parses in microseconds in a fresh process (a first json.Unmarshal
// builds its reflection caches, ~0.1 ms).
const seenVersion = "seen/1"

func (c seenCache) MarshalText() ([]byte, error) {
	s := c.Seen
	return fmt.Appendf(nil, "%s cookie=%d gen=%d lack=%d anything=%t backend=%s owned=%s held=%s\n%s\n",
		seenVersion, c.Cookie, c.Gen, s.Lack, s.Anything, s.Backend,
		formatBuckets(s.Owned), formatBuckets(s.Held), c.Key), nil
}

func (c *seenCache) UnmarshalText(b []byte) error {
	head, key, ok := strings.Cut(strings.TrimSuffix(string(b), "\n"), "\n")
	f := strings.Fields(head)
	if !ok || len(f) != 8 || f[0] != seenVersion {
		return fmt.Errorf("not a %s cache", seenVersion)
	}
	val := map[string]string{}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		val[k] = v
	}
	var errs [7]error
	var lack uint64
	c.Cookie, errs[0] = strconv.ParseUint(val["cookie"], 10, 64)
	gen, err := strconv.ParseUint(val["gen"], 10, 32)
	c.Gen, errs[1] = uint32(gen), err
	lack, errs[2] = strconv.ParseUint(val["lack"], 10, 16)
	c.Seen.Lack = Lack(lack)
	c.Seen.Anything, errs[3] = strconv.ParseBool(val["anything"])
	c.Seen.Backend, errs[4] = ParseBackend(val["backend"])
	c.Seen.Owned, errs[5] = parseBuckets(val["owned"])
	c.Seen.Held, errs[6] = parseBuckets(val["held"])
	c.Key = key
	return errors.Join(errs[:]...)
}

// formatBuckets writes bs as 0,3,5 ("-" when empty).
func formatBuckets(bs []Bucket) string {
	if len(bs) == 0 {
		return "-"
	}
	var sb strings.Builder
	for i, b := range bs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(b)))
	}
	return sb.String()
}

func parseBuckets(s string) ([]Bucket, error) {
	if s == "-" {
		return nil, nil
	}
	var out []Bucket
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bucket list %q: %w", s, err)
		}
		out = append(out, Bucket(n))
	}
	return out, nil
}

// seenNFT returns what is there of v's objects for backend use (BackendAuto:
// the one they record, else nftables). With nftables it first asks the
// kernel for the ruleset generation (one netlink request) and, when the
// cache in the run directory is of this generation, namespace and
// settings, takes it instead of six dumps: every bucket's monitor of a VIP
// checks the same tables, and they change only at a commit. The
// xtcluster backend's rules live outside nftables' generation: never cached.
func (p *Plane) seenNFT(v VIP, use Backend) (nftSeen, error) {
	if use == BackendXTCluster {
		return (&xtBackend{p: p}).seen(v)
	}
	key := fingerprint(v, use)
	path := p.seenPath(v)
	cookie, gen, genErr := p.rulesetGen()
	if genErr == nil {
		if s, ok := loadSeen(path, cookie, gen, key); ok {
			return s, nil
		}
	}
	s, err := p.readSeen(v, use)
	if err != nil || genErr != nil || s.Backend != BackendNFTables || !s.Anything {
		// Nothing of v here (a probe on a node that never ran it, a
		// monitor after the last stop): no file, which the last release
		// has just deleted.
		return s, err
	}
	storeSeen(path, seenCache{Cookie: cookie, Gen: gen, Key: key, Seen: s})
	if _, now, err := p.rulesetGen(); err != nil || now != gen {
		// A commit since the read, perhaps the last release removing
		// v's tables, then its run files: it may have deleted the file
		// before this store, so delete it here (the next State rewrites
		// it when v is still there).
		os.Remove(path)
	}
	return s, nil
}

// seenPath is v's cache file in the run directory.
func (p *Plane) seenPath(v VIP) string { return filepath.Join(p.runDir, v.name()+".seen") }

func loadSeen(path string, cookie uint64, gen uint32, key string) (nftSeen, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nftSeen{}, false
	}
	var c seenCache
	if c.UnmarshalText(b) != nil || c.Cookie != cookie || c.Gen != gen || c.Key != key {
		return nftSeen{}, false
	}
	return c.Seen, true
}

// storeSeen replaces the cache atomically (monitors of one VIP's buckets
// run concurrently); failing to write it only costs the next monitor the
// full read.
func storeSeen(path string, c seenCache) {
	b, _ := c.MarshalText()
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	tmp := path + "." + strconv.Itoa(os.Getpid())
	if os.WriteFile(tmp, b, 0o644) != nil || os.Rename(tmp, path) != nil {
		os.Remove(tmp)
	}
}

// rulesetGen returns the plane's namespace cookie (SO_NETNS_COOKIE) and
// its nftables ruleset generation (NFT_MSG_GETGEN; `nft list ruleset`
// shows it as "generation"), which google/nftables v0.3.0 has no call for.
func (p *Plane) rulesetGen() (cookie uint64, gen uint32, err error) {
	cfg := &mnl.Config{}
	if p.nsFd >= 0 {
		cfg.NetNS = p.nsFd
	}
	c, err := mnl.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("nftables generation: %w", err)
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, fmt.Errorf("nftables generation: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	}); err != nil || serr != nil {
		return 0, 0, fmt.Errorf("netns cookie: %w", errors.Join(err, serr))
	}
	msgs, err := c.Execute(mnl.Message{
		Header: mnl.Header{
			Type:  mnl.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: mnl.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, // struct nfgenmsg
	})
	if err != nil {
		return 0, 0, fmt.Errorf("nftables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := mnl.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, 0, fmt.Errorf("nftables generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return cookie, ad.Uint32(), nil
			}
		}
	}
	return 0, 0, errors.New("nftables generation: no NFTA_GEN_ID in the reply")
}

// readSeen reads v's objects: the nftables ones (readNFT, on one socket)
// and, with a backend whose bucket objects live elsewhere (xtcluster's
// iptables chain), those through the backend.
func (p *Plane) readSeen(v VIP, use Backend) (nftSeen, error) {
	c, err := p.nftLastingConn()
	if err != nil {
		return nftSeen{}, err
	}
	defer c.CloseLasting()
	o, err := readNFT(c, v, use, false)
	if err != nil {
		return nftSeen{}, err
	}
	s := nftSeen{Backend: o.backend, Owned: o.owned, Held: o.held}
	s.Lack, s.Anything = o.lack()
	if o.shape.hasSet(l3Family(v), setOwned) {
		return s, nil // the bucket objects are nftables'
	}
	bi, ok := p.implOf(o.backend)
	if !ok {
		return s, fmt.Errorf("unknown backend %s", o.backend)
	}
	present, err := bi.present(v)
	if err != nil {
		return s, err
	}
	if !present {
		s.Lack |= LackBucketRules
	} else if s.Owned, err = bi.owned(v); err != nil {
		return s, err
	}
	s.Anything = s.Anything || present
	return s, nil
}

// lackOf is what s says is missing for bucket b.
func (s nftSeen) lackOf(b Bucket) Lack {
	lack := s.Lack
	owned := slices.Contains(s.Owned, b)
	if !owned {
		lack |= LackBucket
	}
	// An owned bucket missing from held would be dropped at ingress.
	ingress := s.Lack&LackNetdev == 0
	if owned && s.Backend == BackendNFTables && ingress && !slices.Contains(s.Held, b) {
		lack |= LackShape
	}
	return lack
}
