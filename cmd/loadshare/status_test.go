package main

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/loadshare/loadshare/clusterip"
	"github.com/loadshare/loadshare/test/buildbin"
	"github.com/loadshare/loadshare/test/nstest"
)

// TestStatusKernel: on a node without Pacemaker, `loadshare status` still
// shows the buckets the kernel owns (read by clusterip from nftables), and
// exits 1 saying Pacemaker could not be read.
func TestStatusKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not in PATH")
	}
	ns := nstest.New(t, "lsE-status")
	nl := ns.Netlink(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}
	if err := nl.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"eth0", "peer0"} {
		l, err := nl.LinkByName(name)
		if err == nil {
			err = nl.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	l, _ := nl.LinkByName("eth0")
	addr, _ := netlink.ParseAddr("10.205.99.2/24")
	if err := nl.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	plane, err := clusterip.New(clusterip.WithNetNS(int(ns.Handle)), clusterip.WithRunDir(t.TempDir()), clusterip.WithBackend(clusterip.BackendNFTables))
	if err != nil {
		t.Fatal(err)
	}
	v := clusterip.VIP{Addr: netip.MustParseAddr("10.205.99.100"), Prefix: 24, Link: "eth0", Buckets: 8, Seed: 7}
	if err := plane.Ensure(v); err != nil {
		t.Fatal(err)
	}
	if err := plane.Own(v, 1, 3); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	if err := buildbin.BuildAll(binDir); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "loadshare")
	// The status process takes the VIP's lock in the default run dir.
	t.Cleanup(func() {
		files, _ := filepath.Glob(filepath.Join(clusterip.DefaultRunDir, "loadshare-10_205_99_100.*"))
		for _, f := range files {
			os.Remove(f)
		}
		os.Remove(clusterip.DefaultRunDir) // only if empty: other VIPs' locks stay
	})
	cmd := ns.Command(bin, "status", "--output", "json")
	cmd.Env = append(cmd.Environ(), "PATH=/nonexistent") // no crm_mon: as on a node without Pacemaker
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("status without Pacemaker: %v, want exit status 1\n%s", err, out)
	}
	var got statusView
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("status --output json: %v\n%s", err, out)
	}
	if got.CrmErr == "" || len(got.Kernel) != 1 {
		t.Fatalf("status = %+v, want a pacemaker error and one kernel VIP", got)
	}
	k := got.Kernel[0]
	if k.VIP != "10.205.99.100" || k.Buckets != 8 || !reflect.DeepEqual(k.Owned, []int{1, 3}) {
		t.Errorf("kernel view = %+v, want 10.205.99.100 8 buckets owned [1 3]", k)
	}
}
