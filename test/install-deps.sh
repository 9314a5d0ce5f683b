#!/usr/bin/env bash
# install-deps.sh: installs, from Debian packages, everything loadshare's tests,
# lab and benchmarks run for real. Fast no-op when all are present.
# Needs root (apt-get); without it, prints what is missing and exits 0 so that
# `make test` still runs the tests that need nothing (the rest skip, saying why).
set -euo pipefail
pkgs=(
  pacemaker corosync pacemaker-cli-utils crmsh   # the cluster stack and its CLI
  resource-agents libxml2-utils                  # ocf-tester, ra-api-1.dtd; xmllint for both
  mariadb-server mariadb-client galera-4         # real MariaDB (standalone, replication, Galera)
  rsync                                          # Galera's state transfer (SST) method in the lab and tests
  nftables iptables conntrack iproute2 kmod      # data plane and its independent readers
  haproxy                                        # the benchmark's baseline
  prometheus-hacluster-exporter                  # a real consumer of our node attributes
  prometheus prometheus-node-exporter            # real scraper and textfile collector of the metrics
  pcs                                            # the other Pacemaker shell (pcs -f FILE)
  lintian rpm                                    # package checks (the .deb) and rpm -qlp
  groff-base                                     # renders the man pages in their test
  librsvg2-bin                                   # renders the demo's SVG timeline in its test
  procps psmisc
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: not root; missing Debian packages: ${missing[*]} (tests that need them will skip)" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Never start the system's own services: the tests and the lab start private
# instances. A policy-rc.d that refuses is put in place only if none exists.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
