package nstest

import (
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestSwitchCarriesTCP proves the helper's topology: two hosts on one switch
// reach each other, and a listener made inside Do lives in its namespace.
func TestSwitchCarriesTCP(t *testing.T) {
	sw := NewSwitch(t, "lsnt-sw")
	a := New(t, "lsnt-a")
	b := New(t, "lsnt-b")
	sw.Plug(t, a, "eth0", nil, netip.MustParsePrefix("10.231.0.1/24"), netip.MustParsePrefix("fd00:231::1/64"))
	sw.Plug(t, b, "eth0", nil, netip.MustParsePrefix("10.231.0.2/24"), netip.MustParsePrefix("fd00:231::2/64"))

	for _, addr := range []string{"10.231.0.1:7000", "[fd00:231::1]:7000"} {
		var ln net.Listener
		if err := a.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
			t.Fatalf("listen %s in %s: %v", addr, a.Name, err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte("hi"))
				c.Close()
			}
		}()
		var got []byte
		err := b.Do(func() error {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			got, err = io.ReadAll(c)
			return err
		})
		ln.Close()
		if err != nil || string(got) != "hi" {
			t.Fatalf("dial %s from %s: got %q, err %v", addr, b.Name, got, err)
		}
	}
	// The test's addresses exist only inside its namespaces (checked by
	// listing, never by sending traffic from the root namespace).
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok && (p.IP.String() == "10.231.0.1" || p.IP.String() == "fd00:231::1") {
			t.Fatalf("lab address %s leaked into the root namespace", p.IP)
		}
	}
}

// TestLifetime: Close removes a namespace made by Create, but neither Close
// on one opened by name nor Release removes it (a lab outlives the process
// that made it); Delete does, and absence is fine.
func TestLifetime(t *testing.T) {
	SkipUnlessRoot(t)
	const name = "lsnt-life"
	_ = Delete(name)
	ns, err := Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Delete(name) })
	ns.Release()
	if !Exists(name) {
		t.Fatalf("%s gone after Release", name)
	}
	opened, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := opened.Close(); err != nil || !Exists(name) {
		t.Fatalf("Close of an opened namespace: err %v, exists %v; want it kept", err, Exists(name))
	}
	if err := Delete(name); err != nil || Exists(name) {
		t.Fatalf("Delete: err %v, exists %v", err, Exists(name))
	}
	if err := Delete(name); err != nil {
		t.Fatalf("Delete of an absent namespace: %v", err)
	}
	if _, err := Open(name); err == nil {
		t.Fatal("Open of an absent namespace succeeded")
	}
	made, err := Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := made.Close(); err != nil || Exists(name) {
		t.Fatalf("Close of a created namespace: err %v, exists %v; want it removed", err, Exists(name))
	}
}

// TestNewOverBareFile: a file where a namespace's mount was (what CI found
// at /run/netns/lsmg-upg) is removed like a stale namespace, and New
// succeeds over it.
func TestNewOverBareFile(t *testing.T) {
	SkipUnlessRoot(t)
	const name = "lsnt-bare"
	_ = Delete(name)
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(Path(name), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(Path(name)) })
	ns := New(t, name)
	if err := ns.Do(func() error { return nil }); err != nil {
		t.Fatalf("namespace made over a bare file: %v", err)
	}
	ns.Close()
	if Exists(name) {
		t.Fatalf("%s left after Close", name)
	}
}

// TestNoMulticastSnooping: the option reaches the kernel's bridge, and the
// default keeps snooping on.
func TestNoMulticastSnooping(t *testing.T) {
	SkipUnlessRoot(t)
	for _, tc := range []struct {
		name string
		opts []SwitchOption
		want bool
	}{
		{"lsnt-snoop", nil, true},
		{"lsnt-flood", []SwitchOption{NoMulticastSnooping()}, false},
	} {
		_ = Delete(tc.name)
		sw, err := CreateSwitch(tc.name, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sw.NS.Close() })
		l, err := sw.NS.Netlink(t).LinkByName("br0")
		if err != nil {
			t.Fatal(err)
		}
		br, ok := l.(*netlink.Bridge)
		if !ok || br.MulticastSnooping == nil || *br.MulticastSnooping != tc.want {
			t.Fatalf("%s: br0 = %#v, want mcast_snooping %v", tc.name, l, tc.want)
		}
	}
}

// TestDirSharedMount: after Create, Dir is a shared mount point of its own
// (as `ip netns add` leaves it), so that a later `ip netns add` does not
// bind-mount Dir over itself and hide the namespaces mounted before.
func TestDirSharedMount(t *testing.T) {
	SkipUnlessRoot(t)
	New(t, "lsnt-dir")
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && f[4] == Dir && strings.Contains(line, " shared:") {
			return
		}
	}
	t.Errorf("%s is not a shared mount point after Create:\n%s", Dir, b)
}
