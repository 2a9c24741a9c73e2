#!/usr/bin/env bash
# The one release build: `swift build -c release` with the flags every release binary of this repository is built
# with, so that setup, benchmarks and README commands share one build directory instead of rebuilding for each
# other's flags. Arguments are passed to swift build (e.g. --product cache-node, --show-bin-path).
#
# -enforce-exclusivity=unchecked: Swift checks exclusive memory access at run time by default, also in release
# builds. Our hot-path targets already turn the checks off (Package.swift), but a package cannot set that flag for
# its dependencies; this applies it to every module, SwiftNIO included, as SwiftNIO's own benchmarks do. Pinned
# redis-benchmark runs measured about 8% less user CPU per request in the server with it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift build -c release -Xswiftc -enforce-exclusivity=unchecked "$@"
