#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this): installs what the tests need, builds every
# target (the integration tests start the built cache-node), then runs unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
