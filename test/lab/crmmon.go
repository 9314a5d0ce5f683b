package lab

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/loadshare/loadshare/crm"
)

// Cluster returns node's view of the cluster.
// Equivalent to: crm_mon --output-as=xml (inside node)
func (l *Lab) Cluster(ctx context.Context, node string) (*crm.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := l.Exec(ctx, node, "crm_mon", "--output-as=xml")
	if err != nil {
		return nil, err
	}
	return crm.ParseStatus(out)
}

// WaitOnline waits (up to 120 s) until every running node sees exactly the
// given nodes online, in a partition with quorum and with a DC.
func (l *Lab) WaitOnline(ctx context.Context, nodes ...string) error {
	want := slices.Clone(nodes)
	sort.Strings(want)
	var last string
	err := poll(ctx, 120*time.Second, func() (bool, error) {
		for _, n := range l.Nodes() {
			if !l.Running(n) {
				continue
			}
			c, err := l.Cluster(ctx, n)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = fmt.Sprintf("%s sees online %v, quorum %v, dc %q", n, c.Online(), c.Quorum, c.DC)
			if !c.Quorum || c.DC == "" || !slices.Equal(c.Online(), want) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %v online with quorum: %w (last: %s)", want, err, last)
	}
	return nil
}
