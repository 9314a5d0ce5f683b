package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/loadshare/loadshare/clusterip"
)

func init() {
	register(command{
		name:    "bucket",
		summary: "which bucket (and node) a client address:port lands on",
		run:     runBucket,
	})
}

const bucketUsage = `usage: loadshare bucket --buckets N --seed S [--hash MODE] [--owner NODE=BUCKETS]... CLIENT...

CLIENT is ADDRESS:PORT ([ADDR]:PORT for IPv6), or ADDRESS with --hash sourceip.
Prints one line per client: the bucket the kernel puts its connections in,
computed as the kernel does (jhash, seed, (h*N)>>32), and the node owning it
when --owner says (e.g. --owner n1=0-7 --owner n2=8,9,10-15).
The values must be the VIP's: clone-max (buckets), seed and hash mode.`

// ownerFlag collects NODE=BUCKETS.
type ownerFlag map[clusterip.Bucket]string

func (o ownerFlag) String() string { return "" }

func (o ownerFlag) Set(s string) error {
	node, list, ok := strings.Cut(s, "=")
	if !ok || node == "" || list == "" {
		return fmt.Errorf("owner %q: want NODE=BUCKETS (e.g. n1=0-3,8)", s)
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return fmt.Errorf("owner %q: bucket %q: not a number", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return fmt.Errorf("owner %q: range %q: want LOW-HIGH", s, part)
			}
		}
		for x := a; x <= b; x++ {
			if prev, dup := o[clusterip.Bucket(x)]; dup && prev != node {
				return fmt.Errorf("owner %q: bucket %d already owned by %s", s, x, prev)
			}
			o[clusterip.Bucket(x)] = node
		}
	}
	return nil
}

func runBucket(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bucket", bucketUsage, stderr)
	buckets := fs.Uint("buckets", 0, "number of buckets of the VIP (its clone-max)")
	seed := fs.String("seed", "", "the VIP's hash seed (decimal or 0x hex), non-zero")
	hash := fs.String("hash", "sourceip-sourceport", "hash mode: sourceip-sourceport or sourceip")
	owners := ownerFlag{}
	fs.Var(owners, "owner", "NODE=BUCKETS owning node, repeatable (e.g. n1=0-3,8)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	mode, err := clusterip.ParseHashMode(*hash)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *buckets == 0 || *buckets > clusterip.MaxBuckets {
		return fmt.Errorf("%w: buckets=%d: must be 1..%d", errUsage, *buckets, clusterip.MaxBuckets)
	}
	s, err := strconv.ParseUint(*seed, 0, 32)
	if err != nil || s == 0 {
		return fmt.Errorf("%w: seed=%q: must be a non-zero 32-bit number", errUsage, *seed)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no CLIENT given", errUsage)
	}
	v := clusterip.VIP{Buckets: uint16(*buckets), Seed: uint32(s), Hash: mode}
	for b := range owners {
		if uint16(b) >= v.Buckets {
			return fmt.Errorf("%w: owner bucket %d: out of range 0..%d", errUsage, b, v.Buckets-1)
		}
	}
	for _, arg := range fs.Args() {
		src, err := netip.ParseAddrPort(arg)
		if err != nil {
			a, aerr := netip.ParseAddr(arg)
			if aerr != nil || mode != clusterip.HashSourceIP {
				return fmt.Errorf("%w: client %q: want ADDRESS:PORT (or ADDRESS with --hash sourceip)", errUsage, arg)
			}
			src = netip.AddrPortFrom(a, 0)
		}
		b := v.BucketOf(src)
		fmt.Fprintf(stdout, "%s bucket=%d", arg, b)
		if len(owners) > 0 {
			node, ok := owners[b]
			if !ok {
				node = "none"
			}
			fmt.Fprintf(stdout, " node=%s", node)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}
