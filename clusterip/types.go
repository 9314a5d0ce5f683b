package clusterip

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Backend is the kernel mechanism that makes the bucket decision.
type Backend int

const (
	// BackendAuto picks BackendNFTables when the kernel accepts its
	// objects, else BackendXTCluster.
	BackendAuto Backend = iota
	// BackendNFTables: jhash + set lookup in an ip/ip6 prerouting chain.
	BackendNFTables
	// BackendXTCluster: the iptables cluster match (source address only,
	// at most 32 buckets), for hosts where the nftables path is not usable.
	BackendXTCluster
)

var backendNames = map[Backend]string{BackendAuto: "auto", BackendNFTables: "nftables", BackendXTCluster: "xtcluster"}

// String returns "auto", "nftables" or "xtcluster".
func (b Backend) String() string {
	if s, ok := backendNames[b]; ok {
		return s
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// ParseBackend reads "auto" (also ""), "nftables" or "xtcluster".
func ParseBackend(s string) (Backend, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return BackendAuto, nil
	case "nftables", "nft":
		return BackendNFTables, nil
	case "xtcluster", "xt_cluster", "iptables":
		return BackendXTCluster, nil
	}
	return 0, &FieldError{Field: "backend", Value: s, Reason: "unknown backend (want auto, nftables or xtcluster)"}
}

// Counter counts one bucket's traffic to the VIP accepted on this node
// (client to VIP direction).
type Counter struct {
	Packets  uint64 // packets accepted: new connections' SYNs and established/related packets
	Bytes    uint64 // bytes of those packets (IP header included)
	NewConns uint64 // SYNs accepted because this node owned the bucket
}

// ServeState is how far this node serves a VIP bucket; agents' monitor
// actions map it to OCF codes.
type ServeState int

const (
	NotServed    ServeState = iota // no kernel objects (tables, address) for the VIP on this node
	PartlyServed                   // some present, something Lack names missing
	FullyServed                    // bucket owned, address on the link, cluster MAC joined, all tables as built
)

func (s ServeState) String() string {
	switch s {
	case NotServed:
		return "not-served"
	case PartlyServed:
		return "partly-served"
	case FullyServed:
		return "fully-served"
	}
	return fmt.Sprintf("ServeState(%d)", int(s))
}

// Lack is the set of pieces State found missing for a bucket to be served;
// zero means nothing is missing.
type Lack uint16

const (
	LackBucket      Lack = 1 << iota // the bucket is not in the owned set (the cluster rule)
	LackAddress                      // the address is not on the link
	LackMAC                          // the link does not listen to the cluster MAC
	LackLink                         // the link does not exist
	LackNetdev                       // netdev table: no ingress rule (pkttype fix, settings comment)
	LackARP                          // arp table (IPv4): no ARP answers with the cluster MAC
	LackBucketRules                  // ip/ip6 table (nftables) or iptables chain (xtcluster) missing
	LackShape                        // a table is there but a chain, set or rule of it is not as built
	LackSettings                     // built for other settings (buckets, seed, hash, MAC, backend)
)

var lackNames = []string{"bucket", "address", "mac", "link", "netdev-table", "arp-table", "bucket-rules", "rule-shape", "settings"}

// String lists the missing pieces, e.g. "address,mac" ("" when none).
func (l Lack) String() string {
	var out []string
	for i, n := range lackNames {
		if l&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// Rules reports whether any kernel table, chain, set or rule is missing or
// differs (the pieces Ensure rebuilds), as opposed to bucket, address, MAC.
func (l Lack) Rules() bool {
	return l&(LackNetdev|LackARP|LackBucketRules|LackShape|LackSettings) != 0
}

// Status is what the kernel holds for one VIP on this node.
type Status struct {
	VIP       VIP // as read back from the kernel objects
	Backend   Backend
	MAC       net.HardwareAddr // the cluster MAC in the ARP/ND answers
	Owned     []Bucket         // sorted
	Address   bool             // the address is on the link
	MACJoined bool             // the link listens to the cluster MAC
	Tracked   int              // conntrack entries to the VIP still open (not TIME_WAIT/CLOSE)
}

// ErrNotEnsured is returned (wrapped) when a VIP has no kernel objects.
var ErrNotEnsured = errors.New("VIP not set up on this node")

// ErrUnsupported is returned (wrapped) for a feature the backend lacks.
var ErrUnsupported = errors.New("not supported by this backend")

// ErrDrainCut is matched (errors.Is) by the *DrainError Release returns
// when the grace period ended with connections still tracked.
var ErrDrainCut = errors.New("grace period ended with connections still open")

// DrainError says that Release removed the address of a VIP while
// connections to it were still tracked. The release itself is complete:
// callers log it as a warning; it is not a failed release.
type DrainError struct {
	VIP       VIP
	Remaining int           // connections still tracked when the address went
	Grace     time.Duration // how long Release waited
}

func (e *DrainError) Error() string {
	return fmt.Sprintf("release last bucket of %s: address removed after %s with %d connection(s) still open", e.VIP, e.Grace, e.Remaining)
}

// Is makes errors.Is(err, ErrDrainCut) true.
func (e *DrainError) Is(target error) bool { return target == ErrDrainCut }

// backendImpl makes the bucket decision for one Backend. The nftables
// backend's link-level part (pkttype fix, ARP/ND answers with the cluster
// MAC, the early drop) is built in nftbuild.go (addLinkObjects, through
// Plane.ensureNFT); xtcluster builds its own (xtcluster.go, in ensure).
type backendImpl interface {
	kind() Backend
	// ensure creates or repairs v's bucket objects, keeping owned buckets.
	ensure(v VIP) error
	// remove deletes v's bucket objects; absent is fine.
	remove(v VIP) error
	// present reports whether v's bucket objects exist.
	present(v VIP) (bool, error)
	// setOwned adds and deletes buckets in one atomic kernel transaction.
	// Callers pass only changes: add not owned yet, del owned now.
	setOwned(v VIP, owned, add, del []Bucket) error
	owned(v VIP) ([]Bucket, error)
	counters(v VIP) (map[Bucket]Counter, error)
}

func sortedBuckets(bs []Bucket) []Bucket {
	out := slices.Clone(bs)
	slices.Sort(out)
	return slices.Compact(out)
}
