package clusterip

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// BucketOf returns the bucket the nftables backend puts a connection from
// src in, for the default hash (source address . source port), as the
// kernel computes `jhash ip saddr . tcp sport mod n seed seed`.
func BucketOf(src netip.AddrPort, seed uint32, n uint16) Bucket {
	return bucketOf(src, seed, n, HashSourcePort)
}

// BucketOf returns the bucket a connection from src lands in for v, with
// v's hash mode. Both backends agree (xtcluster is IPv4 only): in
// HashSourceIP mode the nftables backend hashes exactly as the iptables
// cluster match does.
func (v VIP) BucketOf(src netip.AddrPort) Bucket {
	return bucketOf(src, v.Seed, v.Buckets, v.Hash)
}

func bucketOf(src netip.AddrPort, seed uint32, n uint16, mode HashMode) Bucket {
	a := src.Addr().Unmap()
	var key []byte
	switch {
	case mode == HashSourceIP:
		// xt_cluster: jhash_1word(saddr as stored, a __be32 read as a host
		// word), which equals jhash over the 4 address bytes, as nft's
		// `jhash ip saddr`; IPv6: jhash over the 16 bytes (nftables only).
		key = a.AsSlice()
	default:
		// nft loads saddr into one register and the 2-byte sport into the
		// next 32-bit register, zero-padded: saddr . sport . 00 00.
		key = append(a.AsSlice(), 0, 0, 0, 0)
		binary.BigEndian.PutUint16(key[len(key)-4:], src.Port())
	}
	return Bucket(scale(jhash(key, seed), n))
}

// scale maps h onto [0, n) as the kernel's reciprocal_scale: (h*n)>>32.
func scale(h uint32, n uint16) uint32 {
	return uint32((uint64(h) * uint64(n)) >> 32)
}

// jhash is the kernel's jhash() (Bob Jenkins' lookup3 hashlittle, words
// read little-endian as on x86), include/linux/jhash.h.
func jhash(k []byte, initval uint32) uint32 {
	const jhashInitval = 0xdeadbeef
	l := len(k)
	a := jhashInitval + uint32(l) + initval
	b, c := a, a
	for l > 12 {
		a += binary.LittleEndian.Uint32(k[0:])
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
		l -= 12
	}
	if l == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], k)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	return jhashFinal(a, b, c)
}

// jhashMix is the kernel's __jhash_mix: six steps of
// x -= z; x ^= rol32(z, r); z += y, over (x, y, z) = (a, b, c) and its
// rotations (b, c, a), (c, a, b), twice round.
func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	for _, r := range [...]int{4, 6, 8, 16, 19, 4} {
		a -= c
		a ^= bits.RotateLeft32(c, r)
		c += b
		a, b, c = b, c, a
	}
	return a, b, c
}

// jhashFinal is the kernel's __jhash_final: seven steps of
// z ^= y; z -= rol32(y, r), over (y, z) = (b, c), (c, a), (a, b), … The
// loop renames like jhashMix; after seven steps the kernel's c is b.
func jhashFinal(a, b, c uint32) uint32 {
	for _, r := range [...]int{14, 11, 25, 16, 4, 14, 24} {
		c ^= b
		c -= bits.RotateLeft32(b, r)
		a, b, c = b, c, a
	}
	return b
}
