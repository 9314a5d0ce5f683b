package nstest

import (
	"io"
	"net"
	"net/netip"
	"testing"
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
