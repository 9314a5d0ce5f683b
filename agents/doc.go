// Package agents holds loadshare's OCF resource agents, one file per agent,
// each registering itself with package ocf in init(): clustervip (one bucket
// of a shared VIP per clone instance, through package clusterip),
// mysql_monitor and server_load (node attributes from package loadmon).
// The agents only wire a data plane or probe to the OCF contract; argv,
// parameters, exit codes, logging and meta-data are package ocf's.
package agents
