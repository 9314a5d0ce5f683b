// Package agents holds loadshare's attribute agents, mysql_monitor and
// server_load: node attributes from package loadmon, published through
// attrd (package crm), each registering itself with package ocf in init().
// The VIP agent is package agents/clustervip; each agent is a binary of
// its own (cmd/<agent>). The agents only wire a probe or a data plane to
// the OCF contract; argv, parameters, exit codes, logging and meta-data
// are package ocf's.
package agents
