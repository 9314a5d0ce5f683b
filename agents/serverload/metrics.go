package serverload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/loadshare/loadshare/clusterip"
	kmetrics "github.com/loadshare/loadshare/clusterip/metrics"
	"github.com/loadshare/loadshare/crm"
	cmetrics "github.com/loadshare/loadshare/crm/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Known is the cluster as read once by this process: its status and this
// node's name.
type Known struct {
	Status *crm.Status
	Node   string
}

// TextfileName is the file metrics_textfile and `loadshare metrics
// --textfile` write in the textfile collector's directory.
const TextfileName = "loadshare.prom"

// Metrics returns a registry of this node's loadshare metrics: the
// kernel's VIPs (clusterip/metrics), this node in Pacemaker and the
// placer's record in the server_load state files under runDir
// (crm/metrics). Each scrape reads them afresh. The plane is bound to the
// nftables backend so that no scrape probes the kernel with a commit
// (which would move the ruleset generation and void every clustervip
// monitor's cache); it still reads the VIPs of the xtcluster backend
// (their chains' counters).
//
// known, when not nil, is the cluster as this process has just read it
// (the monitor's placer rounds did): the Pacemaker series come from it
// instead of another crm_mon and crm_node.
func Metrics(runDir string, known *Known) (*prometheus.Registry, error) {
	plane, err := clusterip.New(clusterip.WithBackend(clusterip.BackendNFTables))
	if err != nil {
		return nil, err
	}
	cluster := &cmetrics.Cluster{}
	if known != nil {
		cluster.Status = func(context.Context) (*crm.Status, error) { return known.Status, nil }
		cluster.Node = func(context.Context) (string, error) { return known.Node, nil }
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&kmetrics.Kernel{Plane: plane}, cluster,
		&cmetrics.Placer{Stats: func() (map[string]crm.PlacerStats, error) { return ReadPlacerStats(runDir) }})
	return reg, nil
}

// WriteTextfile writes the metrics (Metrics(runDir, known)) to dir/loadshare.prom
// for node_exporter's textfile collector: a temporary file in dir, then a
// rename, so the collector never reads a torn file.
func WriteTextfile(dir, runDir string, known *Known) error {
	reg, err := Metrics(runDir, known)
	if err != nil {
		return err
	}
	if err := prometheus.WriteToTextfile(filepath.Join(dir, TextfileName), reg); err != nil {
		// The temporary file's random name would make every failure
		// read as a new one: keep the errno, name the file.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return fmt.Errorf("write %s: %w", filepath.Join(dir, TextfileName), err)
	}
	return nil
}

// ReadPlacerStats reads the placer record of every server_load instance
// whose state file is in runDir (one per node, normally), by VIP. No
// state file (the agent not running here) is an empty record.
func ReadPlacerStats(runDir string) (map[string]crm.PlacerStats, error) {
	paths, err := filepath.Glob(filepath.Join(runDir, "loadshare-server_load*.state"))
	if err != nil {
		return nil, err
	}
	out := map[string]crm.PlacerStats{}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // stopped between the glob and the read
		}
		if err != nil {
			return nil, err
		}
		var st state
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		for vip, s := range st.Placer {
			if s != nil && (out[vip].Last.At.IsZero() || s.Last.At.After(out[vip].Last.At)) {
				out[vip] = *s
			}
		}
	}
	return out, nil
}
