// Package dpbench measures what the shared VIP costs a short request/response
// connection, against a client talking to one server directly, a client that
// spreads over the servers itself, and haproxy in TCP mode.
//
// Run builds a namespace lab of three servers and a client on one switch
// (named namespaces with the prefix "lsdb-" by default, 10.202.0.0/24),
// measures the variants in interleaved rounds, writes a table with the
// issue's target verdicts and removes the lab, also when its context is
// cancelled. It needs root and the haproxy binary, and mariadbd for the
// MariaDB protocol (ErrPrerequisite otherwise). BenchmarkDataPlane (`make
// bench`), TestHarness and `loadshare bench` all run on it. The line server,
// MySQL exchange, load loop and statistics need no lab.
package dpbench
