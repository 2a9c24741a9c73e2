#!/usr/bin/env bash
# One command from a fresh Debian 12 + Swift 6.3 machine to a running node: installs dependencies, builds in
# release mode, and starts cache-node on 127.0.0.1:6379 (or the port given as the first argument) in the
# foreground. Extra arguments are passed to cache-node (redis-server style flags).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build-release.sh --product cache-node
scripts/build-release.sh --product cachectl
port="${1:-6379}"
shift || true
echo "starting cache-node on 127.0.0.1:${port} (Ctrl-C to stop); try: redis-cli -p ${port} ping"
exec .build/release/cache-node --bind 127.0.0.1 --port "$port" --save '' "$@"
