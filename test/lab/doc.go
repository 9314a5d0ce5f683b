// Package lab runs a real Pacemaker + Corosync + MariaDB cluster on one
// machine: each node is its own network + mount + UTS namespace (hostname
// n1, n2, …) joined to a bridge that lives in a namespace of its own, with
// private /etc/corosync, /var/lib/{corosync,pacemaker,mysql},
// /var/log/{cluster,pacemaker}, /run and /dev/shm, and a client namespace on
// the same bridge. The daemons are Debian's corosync, pacemakerd and
// mariadbd, started by the lab and known to it by pid.
//
// A lab outlives the process that made it (the `loadshare lab` CLI starts it
// in one call and stops it in another): its configuration and pid files live
// under Config.StateDir. Teardown signals only processes that are inside the
// lab's own network namespaces, and a lab left behind by a crashed run is
// found and removed by the next Up.
//
// The lab fences as production must: with the fence agent (Config.Fence,
// cmd/fence_loadshare_lab) it keeps Pacemaker's defaults stonith-enabled=true
// and no-quorum-policy=stop, with stonith-action=off, and a stonith resource
// whose "off" is the lab's Crash (every process of the node killed by pid,
// its link cut) and "on" its Start, done by a power server on the host
// (fence.go). A lab without the fence agent sets stonith-enabled=false.
//
// It needs root (namespaces, mounts) and the Debian packages corosync,
// pacemaker, mariadb-server and util-linux (unshare, nsenter).
package lab
