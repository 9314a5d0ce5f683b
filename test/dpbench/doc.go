// Package dpbench measures what the shared VIP costs a short request/response
// connection, against a client talking to one server directly, a client that
// spreads over the servers itself, and haproxy in TCP mode.
//
// The benchmark (BenchmarkDataPlane, run by `make bench`) and its harness test
// build a namespace lab of three servers and a client on one switch; they need
// root and the haproxy binary and skip, saying why, without them; the
// MariaDB parts also need mariadbd. This package holds the parts that need
// no lab (line server, MySQL exchange, load loop, statistics, report); the
// lab is in the _test.go files.
package dpbench
