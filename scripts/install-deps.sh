#!/usr/bin/env bash
# Installs what building and testing need on Debian 12 with Swift 6.3: the hiredis/libevent headers, redis-server
# and redis-cli (for side-by-side tests and benchmarks), and the Python clients used as independent peers.
# Idempotent: does nothing that is already done.
set -euo pipefail

APT_PACKAGES=(redis-server redis-tools libhiredis-dev libevent-dev libssl-dev liblua5.1-0-dev lua-cjson-dev lua-bitop-dev pkg-config etcd-server etcd-client iproute2)
PIP_PACKAGES=("redis==8.1.0" "cryptography")

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing apt packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    # Debian's redis-server and etcd-server packages start services on 6379 and 2379/2380 where they can; tests never
    # use those ports (the etcd tests start their own members on free loopback ports with temporary data dirs).
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import redis, cryptography, sys; sys.exit(0 if redis.__version__.startswith("8.") else 1)' 2>/dev/null; then
    echo "installing pip packages: ${PIP_PACKAGES[*]}"
    python3 -m pip install -q --root-user-action=ignore "${PIP_PACKAGES[@]}"
fi
