package clusterip

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := VIP{Addr: netip.MustParseAddr("10.0.0.100"), Link: "eth0", Buckets: 16, Seed: 1}
	with := func(f func(v *VIP)) VIP { v := ok; f(&v); return v }
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	tests := []struct {
		name    string
		v       VIP
		backend Backend
		field   string // "" = valid
		reason  string
	}{
		{"valid", ok, BackendAuto, "", ""},
		{"valid ipv6", with(func(v *VIP) { v.Addr = netip.MustParseAddr("fd00::100") }), BackendNFTables, "", ""},
		{"no address", with(func(v *VIP) { v.Addr = netip.Addr{} }), BackendAuto, "addr", "not an IP address"},
		{"multicast address", with(func(v *VIP) { v.Addr = netip.MustParseAddr("224.0.0.1") }), BackendAuto, "addr", "not a unicast"},
		{"mapped address", with(func(v *VIP) { v.Addr = netip.MustParseAddr("::ffff:10.0.0.1") }), BackendAuto, "addr", "IPv4-mapped"},
		{"prefix too long", with(func(v *VIP) { v.Prefix = 33 }), BackendAuto, "prefix", "0..32"},
		{"no link", with(func(v *VIP) { v.Link = "" }), BackendAuto, "link", "missing"},
		{"bad link", with(func(v *VIP) { v.Link = "a/b" }), BackendAuto, "link", "not a valid"},
		{"zero buckets", with(func(v *VIP) { v.Buckets = 0 }), BackendAuto, "buckets", "at least 1"},
		{"too many buckets", with(func(v *VIP) { v.Buckets = MaxBuckets + 1 }), BackendAuto, "buckets", "at most 4096"},
		{"1024 buckets", with(func(v *VIP) { v.Buckets = 1024 }), BackendNFTables, "", ""},
		{"zero seed", with(func(v *VIP) { v.Seed = 0 }), BackendAuto, "seed", "non-zero"},
		{"unknown hash", with(func(v *VIP) { v.Hash = 7 }), BackendAuto, "hash", "unknown"},
		{"unknown mac mode", with(func(v *VIP) { v.MACMode = 9 }), BackendAuto, "mac_mode", "unknown"},
		{"short mac", with(func(v *VIP) { v.MAC = net.HardwareAddr{1, 2} }), BackendAuto, "mac", "6-byte"},
		{"unicast mac in multicast mode", with(func(v *VIP) { v.MAC = mac("02:00:00:00:00:01") }), BackendAuto, "mac", "multicast mode"},
		{"multicast mac in unicast mode", with(func(v *VIP) { v.MACMode = MACUnicast; v.MAC = mac("01:00:5e:00:00:01") }), BackendAuto, "mac", "unicast mode"},
		{"operator multicast mac", with(func(v *VIP) { v.MAC = mac("03:00:00:00:00:01") }), BackendAuto, "", ""},
		{"derived mac is all-hosts", with(func(v *VIP) { v.Addr = netip.MustParseAddr("10.0.0.1") }), BackendAuto, "mac", "kernel joins"},
		{"derived mac is solicited-node", with(func(v *VIP) { v.Addr = netip.MustParseAddr("fd00::ff00:1") }), BackendAuto, "mac", "kernel joins"},
		{"given mac is mDNS", with(func(v *VIP) { v.MAC = mac("01:00:5e:00:00:fb") }), BackendAuto, "mac", "kernel joins"},
		{"unicast mode avoids the collision", with(func(v *VIP) { v.Addr = netip.MustParseAddr("10.0.0.1"); v.MACMode = MACUnicast }), BackendAuto, "", ""},
		{"xtcluster 33 buckets", with(func(v *VIP) { v.Buckets = 33; v.Hash = HashSourceIP }), BackendXTCluster, "buckets", "at most 32"},
		{"xtcluster port hash", ok, BackendXTCluster, "hash", "sourceip"},
		{"xtcluster ipv6", with(func(v *VIP) { v.Addr = netip.MustParseAddr("fd00::100"); v.Hash = HashSourceIP }), BackendXTCluster, "addr", "first 32 bits"},
		{"derived mac is all-nodes", with(func(v *VIP) { v.Addr = netip.MustParseAddr("fd00::1") }), BackendAuto, "mac", "kernel joins"},
		{"xtcluster valid", with(func(v *VIP) { v.Buckets = 32; v.Hash = HashSourceIP }), BackendXTCluster, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Validate(tt.backend)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate(%+v, %s) = %v, want nil", tt.v, tt.backend, err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("Validate(%+v, %s) = %v, want a FieldError on %s containing %q", tt.v, tt.backend, err, tt.field, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), tt.field+"=") {
				t.Errorf("error %q does not start with the field name", err)
			}
		})
	}
}

func TestCheckBuckets(t *testing.T) {
	v := VIP{Buckets: 4}
	if err := v.checkBuckets([]Bucket{0, 3}); err != nil {
		t.Errorf("checkBuckets(0,3) of 4 = %v", err)
	}
	err := v.checkBuckets([]Bucket{1, 4})
	if err == nil || err.Error() != `bucket="4": out of range 0..3` {
		t.Errorf("checkBuckets(1,4) of 4 = %v, want bucket=\"4\": out of range 0..3", err)
	}
}

func TestParse(t *testing.T) {
	if _, err := ParseHashMode("crc"); err == nil || !strings.HasPrefix(err.Error(), `hash="crc"`) {
		t.Errorf(`ParseHashMode("crc") = %v`, err)
	}
	for _, m := range []HashMode{HashSourcePort, HashSourceIP} {
		if got, err := ParseHashMode(m.String()); err != nil || got != m {
			t.Errorf("ParseHashMode(%q) = %v, %v", m, got, err)
		}
	}
	for _, b := range []Backend{BackendAuto, BackendNFTables, BackendXTCluster} {
		if got, err := ParseBackend(b.String()); err != nil || got != b {
			t.Errorf("ParseBackend(%q) = %v, %v", b, got, err)
		}
	}
	if _, err := ParseBackend("ipvs"); err == nil || !strings.HasPrefix(err.Error(), `backend="ipvs"`) {
		t.Errorf(`ParseBackend("ipvs") = %v`, err)
	}
	if _, err := ParseMACMode("anycast"); err == nil {
		t.Errorf(`ParseMACMode("anycast") = nil error`)
	}
}

func TestDeriveMAC(t *testing.T) {
	tests := []struct {
		addr string
		mode MACMode
		want string
	}{
		{"10.201.0.100", MACMulticast, "01:00:5e:49:00:64"}, // low 23 bits: 0xc9 & 0x7f = 0x49
		{"10.99.0.100", MACMulticast, "01:00:5e:63:00:64"},
		{"fd00:201::100", MACMulticast, "33:33:00:00:01:00"},
		{"fd00:201::1:2:3", MACMulticast, "33:33:00:02:00:03"},
		{"10.201.0.100", MACUnicast, "02:bf:0a:c9:00:64"},
		{"fd00:201::100", MACUnicast, "02:bf:00:00:01:00"},
	}
	for _, tt := range tests {
		if got := DeriveMAC(netip.MustParseAddr(tt.addr), tt.mode).String(); got != tt.want {
			t.Errorf("DeriveMAC(%s, %s) = %s, want %s", tt.addr, tt.mode, got, tt.want)
		}
	}
}

func TestFingerprintRoundTrip(t *testing.T) {
	for _, v := range []VIP{
		{Addr: netip.MustParseAddr("10.0.0.1"), Link: "eth0", Buckets: 16, Seed: 0x5eed},
		{Addr: netip.MustParseAddr("fd00::1"), Prefix: 64, Link: "bond0", Buckets: 1024, Seed: 0xffffffff, Hash: HashSourceIP,
			MACMode: MACUnicast, MAC: net.HardwareAddr{2, 1, 2, 3, 4, 5}},
	} {
		got, be, err := parseFingerprint(fingerprint(v, BackendXTCluster))
		if err != nil || be != BackendXTCluster || fingerprint(got, be) != fingerprint(v, BackendXTCluster) {
			t.Errorf("parseFingerprint(fingerprint(%+v)) = %+v, %s, %v", v, got, be, err)
		}
	}
}

func TestBucketOfSpread(t *testing.T) {
	// Not the kernel check (the namespace tests are): a sanity check that
	// 1024 buckets all get used by consecutive ports of one client.
	seen := map[Bucket]bool{}
	src := netip.MustParseAddr("10.201.0.50")
	for p := range 20000 {
		seen[BucketOf(netip.AddrPortFrom(src, uint16(p+1024)), 0xdeadbeef, 1024)] = true
	}
	if len(seen) != 1024 {
		t.Errorf("20000 ports hit %d of 1024 buckets", len(seen))
	}
}
