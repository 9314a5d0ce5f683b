// Package failbench measures failover and placement on the real lab
// (test/lab) at several bucket counts: a node is crashed, the time until
// the survivors' kernels own every bucket is taken by polling the kernels,
// and each phase of it (membership, fencing, scheduler, the starts) is read
// from the survivors' own Pacemaker logs (pacelog.go). BenchmarkFailover
// prints the table (`make bench`); nothing here asserts a time.
package failbench
