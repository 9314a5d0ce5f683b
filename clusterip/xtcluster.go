package clusterip

import "fmt"

// xtMaxBuckets is XT_CLUSTER_NODES_MAX: the node mask is 32 bits.
const xtMaxBuckets = 32

// xtBackend is BackendXTCluster (filled in below).
type xtBackend struct{ p *Plane }

func (b *xtBackend) kind() Backend                          { return BackendXTCluster }
func (b *xtBackend) ensure(v VIP) error                     { return fmt.Errorf("xtcluster: %w", ErrUnsupported) }
func (b *xtBackend) remove(v VIP) error                     { return nil }
func (b *xtBackend) present(v VIP) (bool, error)            { return false, nil }
func (b *xtBackend) setOwned(v VIP, o, a, d []Bucket) error { return ErrUnsupported }
func (b *xtBackend) owned(v VIP) ([]Bucket, error)          { return nil, nil }
func (b *xtBackend) counters(v VIP) (map[Bucket]Counter, error) {
	return nil, fmt.Errorf("per-bucket counters: %w", ErrUnsupported)
}
