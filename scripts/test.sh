#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this): installs what the tests need, builds every
# target (the integration tests start the built cache-node), then runs unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build --build-tests
# Two passes. The integration suites drive real processes with blocking calls, which hold swift-testing's
# cooperative threads (two on two cores) for minutes; the framework runtime and cachectl suites are async and
# time out if they share those threads, so they run in a second pass on their own.
async_suites='CacheFrameworkRuntimeTests|cachectlTests'
swift test --skip-build --skip "$async_suites"
swift test --skip-build --filter "$async_suites"
