package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadshare/loadshare/crm"

	"github.com/loadshare/loadshare/test/buildbin"
)

func TestCrmGenerate(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "4", "--nodes", "n1,n2,n3"}, &out, &errOut); code != 0 {
		t.Fatalf("crm generate: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"primitive vip_3 @vip-bucket params bucket=3\n", "location vip-own /^vip_([0-9]+)$/", "clone server_load-clone", "\nproperty load-threshold=0%\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("crm generate output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "4", "--format", "pcs"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "\npcs resource create vip_3 ocf:loadshare:clustervip ip=192.0.2.10 buckets=4 bucket=3 --no-default-ops") {
		t.Errorf("crm --format pcs: exit %d, stderr %q, output:\n%s", code, errOut.String(), out.String())
	}
	if !strings.Contains(out.String(), "\npcs property set load-threshold=0%\n") {
		t.Errorf("crm --format pcs: no load-threshold=0%% by default:\n%s", out.String())
	}
	out.Reset()
	if code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "4", "--load-threshold", ""}, &out, &errOut); code != 0 || strings.Contains(out.String(), "load-threshold") {
		t.Errorf(`crm --load-threshold "": exit %d, stderr %q, want the property left out:\n%s`, code, errOut.String(), out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "4", "--load-threshold", "none"}, &out, &errOut); code != 2 || out.Len() != 0 ||
		!strings.Contains(errOut.String(), `load-threshold="none": want a percentage`) {
		t.Errorf("crm --load-threshold none: exit %d, %d bytes printed, stderr %q", code, out.Len(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := cli([]string{"crm", "--ip", "nope", "--buckets", "4"}, &out, &errOut); code != 2 {
		t.Errorf("crm --ip nope: exit %d, want 2 (usage)", code)
	}
	if code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "0"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "buckets=0: must be 1–1024") {
		t.Errorf("crm --buckets 0: exit %d, stderr %q", code, errOut.String())
	}
}

func TestCrmCheckFile(t *testing.T) {
	if _, err := exec.LookPath("crm_verify"); err != nil {
		t.Skip("crm_verify not installed (Debian package pacemaker-cli-utils)")
	}
	var out, errOut bytes.Buffer
	if code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "4", "--format", "xml"}, &out, &errOut); code != 0 {
		t.Fatalf("crm --format xml: exit %d: %s", code, errOut.String())
	}
	f := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(f, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := cli([]string{"crm", "check", "--file", f}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "no fencing device is configured") {
		t.Errorf("crm check (no fencing): exit %d, stdout %q, want 1 and the fencing explained", code, out.String())
	}
}

// threeNodes is crm's fixture of a three-node cluster (crm_mon -A XML).
func threeNodes(t *testing.T) *crm.Status {
	t.Helper()
	b, err := os.ReadFile("../../crm/testdata/crm_mon-3nodes.xml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := crm.ParseStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBuildStatus(t *testing.T) {
	st := threeNodes(t)
	v := buildStatus(st, "vip", crm.DefaultPolicy)
	if v.Buckets != 6 || len(v.Nodes) != 3 || len(v.Unowned) != 0 {
		t.Fatalf("buildStatus = %+v", v)
	}
	got := map[string]nodeView{}
	for _, n := range v.Nodes {
		got[n.Name] = n
	}
	// n2 is not writable: no target; n1 and n3 share by spare capacity.
	if got["n2"].Target != 0 || got["n1"].Target+got["n3"].Target != 6 || len(got["n3"].Owned) != 3 {
		t.Errorf("nodes = %+v", v.Nodes)
	}
	if _, err := json.Marshal(v); err != nil {
		t.Error(err)
	}
}

func TestRanges(t *testing.T) {
	if got := ranges([]int{7, 0, 1, 2, 5, 8}); got != "0-2,5,7-8" {
		t.Errorf("ranges = %q, want 0-2,5,7-8", got)
	}
	if got := ranges(nil); got != "-" {
		t.Errorf("ranges(nil) = %q", got)
	}
}

func TestCrmCheckDark(t *testing.T) {
	if _, err := exec.LookPath("crm_simulate"); err != nil {
		t.Skip("crm_simulate not installed")
	}
	b, err := os.ReadFile("../../crm/testdata/cib-lab-buckets.xml")
	if err != nil {
		t.Fatal(err)
	}
	ban := ""
	for _, n := range []string{"n1", "n2", "n3"} {
		ban += `<rsc_location id="ban-` + n + `" rsc="vip_3" node="` + n + `" score="-INFINITY"/>`
	}
	s := strings.Replace(string(b), "<constraints>", "<constraints>"+ban, 1)
	f := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := cli([]string{"crm", "check", "--file", f}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "error: 1 bucket(s) would run nowhere although a node is writable: vip_3") {
		t.Errorf("crm check (vip_3 banned everywhere): exit %d, stdout:\n%s", code, out.String())
	}
}

// TestCrmshLoadsGenerated loads the generated crmsh text with the real
// crmsh into a CIB file, with this build's agents (their meta-data) bound
// over /usr/lib/ocf/resource.d/loadshare in a private mount namespace.
func TestCrmshLoadsGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary and runs crmsh")
	}
	for _, tool := range []string{"crm", "unshare", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	if _, err := os.Stat(ocfDir); err != nil {
		t.Skipf("%s missing (Pacemaker's OCF tree): %v", ocfDir, err)
	}
	dir := t.TempDir()
	agents := buildbin.Dir(t)
	var out, errOut bytes.Buffer
	if code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "4", "--param", "mysql_monitor:user=mon itor", "--param", "clustervip:drain_grace=5"}, &out, &errOut); code != 0 {
		t.Fatalf("crm generate: %s", errOut.String())
	}
	conf := filepath.Join(dir, "vip.crm")
	cib := filepath.Join(dir, "cib.xml")
	if err := os.WriteFile(conf, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := `<cib validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>`
	if err := os.WriteFile(cib, []byte(empty), 0o644); err != nil {
		t.Fatal(err)
	}
	// -F: crmsh refuses to commit on warnings, and it warns that the N
	// primitives share ip while clustervip's meta-data marks ip unique.
	script := "mount --make-rprivate / && mount --bind " + agents + " " + ocfDir + " && crm -F configure load update " + conf + " && crm configure show"
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "CIB_file="+cib)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("crmsh load: %v\n%s", err, got)
	}
	for _, want := range []string{"primitive vip_3 @vip-bucket", "params bucket=3", "load-threshold=0%", "location vip-own /^vip_([0-9]+)$/", "rule 100: own_vip_%1 eq 1 and writable_monit eq 1", "clone server_load-clone server_load", `params user="mon itor"`, "drain_grace=5"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("crm configure show lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "no such resource agent") {
		t.Errorf("crmsh did not find the agents:\n%s", got)
	}

	// Adding a reader VIP: the whole configuration, both VIPs, loaded over
	// the first keeps the first VIP placed; the reader's alone would not,
	// and crm check says so.
	loadOver := func(args ...string) []crm.Problem {
		t.Helper()
		out.Reset()
		if code := cli(append([]string{"crm"}, args...), &out, &errOut); code != 0 {
			t.Fatalf("crm %v: %s", args, errOut.String())
		}
		if err := os.WriteFile(conf, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		script := "mount --make-rprivate / && mount --bind " + agents + " " + ocfDir + " && crm -F configure load update " + conf
		cmd := exec.Command("unshare", "-m", "sh", "-c", script)
		cmd.Env = append(os.Environ(), "CIB_file="+cib)
		if got, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("crmsh load update: %v\n%s", err, got)
		}
		b, err := os.ReadFile(cib)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := crm.Check(b)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	onlyRoles := func(ps []crm.Problem) (s []string) {
		for _, p := range ps {
			if p.Object == "vip" || p.Object == "ro" || p.Object == "server_load" {
				s = append(s, p.String())
			}
		}
		return s
	}
	if ps := onlyRoles(loadOver("--vip", "name=vip,ip=192.0.2.10,buckets=4,strict=true", "--vip", "name=ro,ip=192.0.2.11,buckets=2,require=readable_monit")); len(ps) != 0 {
		t.Errorf("both VIPs generated together and loaded: crm check says %q, want nothing", ps)
	}
	ps := onlyRoles(loadOver("--name", "ro", "--ip", "192.0.2.11", "--buckets", "2"))
	if len(ps) == 0 || !strings.Contains(strings.Join(ps, "\n"), "VIP vip is not in server_load's placer") {
		t.Errorf("the reader VIP's configuration alone loaded over the writer's: crm check says %q, want that vip is no longer placed", ps)
	}
}

// TestCrmParamChecked: --param values are checked against the agents'
// declarations, naming the parameter, before anything is printed.
func TestCrmParamChecked(t *testing.T) {
	tests := []struct {
		param string
		want  string // in stderr; "" for accepted
	}{
		{"clustervip:hash=md5", `--param clustervip:hash=md5: parameter hash="md5": unknown hash mode (want sourceip-sourceport or sourceip)`},
		{"clustervip:backend=ipvs", `parameter backend="ipvs"`},
		{"clustervip:hsh=sourceip", `parameter hsh="sourceip": not a parameter of clustervip (ip, bucket, buckets,`},
		{"clustervip:drain_grace=-1", `parameter drain_grace="-1": must be 0 or more`},
		{"mysql_monitor:max_lag=soon", `parameter max_lag="soon": not an integer`},
		{"mysql_monitor:port=70000", `parameter port="70000": not a TCP port (1..65535)`},
		{"server_load:probe_mysql=perhaps", `parameter probe_mysql="perhaps": not a boolean`},
		{"nosuch:x=1", `"nosuch": not an agent of loadshare (clustervip, mysql_monitor, server_load)`},
		{"clustervip:hash=sourceip", ""},
		{"mysql_monitor:replica_ok=yes", ""},
		{"server_load:half_life=60", ""},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := cli([]string{"crm", "--ip", "192.0.2.10", "--buckets", "2", "--param", tt.param}, &out, &errOut)
			if tt.want == "" {
				if code != 0 || !strings.Contains(out.String(), tt.param[strings.Index(tt.param, ":")+1:]) {
					t.Errorf("--param %s: exit %d, stderr %q; want it accepted and in the output:\n%s", tt.param, code, errOut.String(), out.String())
				}
				return
			}
			if code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("--param %s: exit %d, %d bytes printed, stderr %q; want exit 2, nothing printed, and %q", tt.param, code, out.Len(), errOut.String(), tt.want)
			}
		})
	}
}

// TestStatusFlood: a node whose flood check says unreached (flood_vip=0)
// is named in the text and marked in the JSON; one with 1 is "reached".
func TestStatusFlood(t *testing.T) {
	st := threeNodes(t)
	for i := range st.Nodes {
		switch st.Nodes[i].Name {
		case "n1":
			st.Nodes[i].Attrs["flood_vip"] = "1"
		case "n3":
			st.Nodes[i].Attrs["flood_vip"] = "0"
		}
	}
	v := buildStatus(st, "vip", crm.DefaultPolicy)
	flood := map[string]string{}
	for _, n := range v.Nodes {
		flood[n.Name] = n.Flood
		if n.Name == "n3" && n.Target != 0 {
			t.Errorf("n3 unreached has target %d, want 0", n.Target)
		}
	}
	if flood["n1"] != "reached" || flood["n2"] != "" || flood["n3"] != "unreached" {
		t.Errorf("flood per node %v, want n1 reached, n2 unset, n3 unreached", flood)
	}
	var out strings.Builder
	printNodes(&out, v)
	if !strings.Contains(out.String(), "n3 does not receive vip's frames (flood_vip=0, flood check)") {
		t.Errorf("status text does not name n3:\n%s", out.String())
	}
}

// TestStatusFloodNone: the flood check runs on every node and none hears
// another: status says so (every node keeps serving).
func TestStatusFloodNone(t *testing.T) {
	st := threeNodes(t)
	for _, n := range []string{"n1", "n2", "n3"} {
		st.Resources = append(st.Resources, crm.Resource{ID: "vip-flood", Role: "Started", Clone: crm.FloodClone("vip"), Nodes: []string{n}})
	}
	v := buildStatus(st, "vip", crm.DefaultPolicy)
	var out strings.Builder
	printNodes(&out, v)
	if !v.FloodNone || !strings.Contains(out.String(), "flood check: no node hears another's probes") {
		t.Errorf("FloodNone=%v, status text:\n%s", v.FloodNone, out.String())
	}
	st.Nodes[0].Attrs["flood_vip"] = "1"
	if v := buildStatus(st, "vip", crm.DefaultPolicy); v.FloodNone {
		t.Errorf("n1 reached, yet FloodNone")
	}
}
