// Package oneproc puts the Go scheduler on one P (GOMAXPROCS=1) before any
// other package of the program initialises. Each agent binary imports it
// for that side effect: an agent action is a short process running one
// sequence of blocking calls (netlink, one MySQL query, attrd_updater), and
// with a second P the runtime starts and wakes threads to run its own
// goroutines and every netpoll wake-up on another CPU.
//
// Why a package of its own: the Go specification initialises packages in
// the order of their import paths among those whose imports are done, and
// this one imports only the runtime, so its init runs before nearly all
// others (fmt, net, the netlink libraries...); the same call in main runs
// after all of them. Measured on a clustervip monitor, against the call in
// main: about 5 % faster. The GOMAXPROCS environment variable, which would
// act earlier still, cannot be set for an agent: pacemaker-execd builds the
// environment.
package oneproc

import "runtime"

func init() { runtime.GOMAXPROCS(1) }
