// Package loadmon measures a database node: a MySQL/MariaDB probe that reads
// what the attributes need in one round trip (mysql.go), and the load model
// that turns samples into one coarse, smoothed server_load (model.go). The
// host probe for CPU, load, iowait and memory pressure is package
// loadmon/hostprobe.
//
// It only measures and computes: it does not log and does not talk to
// Pacemaker (the agents publish the values through package crm). The MySQL
// probe needs a reachable server and credentials from a defaults file; the
// host probe reads /proc.
package loadmon
