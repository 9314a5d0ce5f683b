package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/loadshare/loadshare/clusterip"
)

// TestStatusKernel: on a node without Pacemaker, `loadshare status` still
// shows the buckets the kernel owns (read by clusterip from nftables), and
// exits 1 saying Pacemaker could not be read.
func TestStatusKernel(t *testing.T) {
	ns, _, bin := vipNode(t, "lsE-status", 99)
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
