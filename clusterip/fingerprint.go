package clusterip

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// fingerprint is the settings comment on the ingress rule.
func fingerprint(v VIP, b Backend) string {
	return fmt.Sprintf("loadshare/1 addr=%s prefix=%d link=%s buckets=%d seed=%#x hash=%s mac_mode=%s mac=%s backend=%s",
		v.Addr, v.prefixLen(), v.Link, v.Buckets, v.Seed, v.Hash, v.MACMode, v.ClusterMAC(), b)
}

// parseFingerprint reverses fingerprint.
func parseFingerprint(s string) (VIP, Backend, error) {
	f := strings.Fields(s)
	if len(f) == 0 || f[0] != "loadshare/1" {
		return VIP{}, 0, fmt.Errorf("not a loadshare comment: %q", s)
	}
	var v VIP
	var be Backend
	for _, kv := range f[1:] {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "addr":
			v.Addr, err = netip.ParseAddr(val)
		case "prefix":
			v.Prefix, err = strconv.Atoi(val)
		case "link":
			v.Link = val
		case "buckets":
			var n uint64
			n, err = strconv.ParseUint(val, 10, 16)
			v.Buckets = uint16(n)
		case "seed":
			var n uint64
			n, err = strconv.ParseUint(val, 0, 32)
			v.Seed = uint32(n)
		case "hash":
			v.Hash, err = ParseHashMode(val)
		case "mac_mode":
			v.MACMode, err = ParseMACMode(val)
		case "mac":
			v.MAC, err = net.ParseMAC(val)
		case "backend":
			be, err = ParseBackend(val)
		}
		if err != nil {
			return VIP{}, 0, fmt.Errorf("comment %q: %s: %w", s, k, err)
		}
	}
	if v.Prefix == v.Addr.BitLen() {
		v.Prefix = 0
	}
	if v.MAC.String() == DeriveMAC(v.Addr, v.MACMode).String() {
		v.MAC = nil
	}
	return v, be, nil
}
