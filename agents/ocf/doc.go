// Package ocf is the OCF resource-agent contract, written once: it reads
// argv and the OCF_RESKEY_* environment, validates parameters against their
// declarations, runs the action an Agent implements under the operation's
// timeout, logs the way Pacemaker's executor expects, and maps the returned
// error to the OCF exit code in one place. meta-data XML is generated from
// the same declarations that validation uses, so the two never disagree.
//
// Agents register themselves in init() (Register) and know nothing of exit
// codes, environment variables or XML. Each agent's binary (installed as
// /usr/lib/ocf/resource.d/<provider>/<agent>) imports its agent and calls
// Main with the agent's name. One binary per agent, not one for all:
// Pacemaker starts a process per action, and package initialisation and
// page faults grow with what a binary links (the whole CLI cost a
// clustervip monitor about a third of its time).
//
// The contract follows the OCF Resource Agent API as Pacemaker 2.1 runs it;
// the meta-data conforms to ra-api-1.dtd (Debian's resource-agents package),
// which ocf-tester checks.
package ocf
