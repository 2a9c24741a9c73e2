#!/usr/bin/env bash
# Counts Swift reference-count operations (swift_retain / swift_release calls) per request in a running cache-node,
# with uprobes on libswiftCore: an exact count where CPU time is noisy. Needs perf (Debian: linux-perf) and root.
#
#   benchmarks/refcounts.sh .build/release/cache-node -t get -P 1
#   benchmarks/refcounts.sh .build/release/cache-node -t get -P 16
#
# The node is started pinned to CPU 1 on port 7790 (the single key redis-benchmark uses is populated first), and
# redis-benchmark sends N requests (default 50000) over 50 connections with the remaining arguments. Each probe hit
# traps into the kernel, so the run is slow; only the counts mean anything, and time-driven work (the active expiry
# cycle, ten times a second) is inflated by the slowdown: subtract its callers. With PERF_RECORD=1 the calls are also
# recorded with call chains (/tmp/refcounts.data) and the callers printed, per request.
set -euo pipefail
binary="$1"; shift
requests="${N:-50000}"
port=7790
core="$(ldd "$binary" | awk '/libswiftCore/ {print $3}')"
[[ -n "$core" ]] || { echo "refcounts.sh: $binary does not link libswiftCore dynamically" >&2; exit 1; }
perf probe -q -x "$core" -a swift_retain -a swift_release 2>/dev/null || true
taskset -c 1 "$binary" --port "$port" --save '' >/dev/null 2>&1 &
node=$!
trap 'kill $node 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" set 'key:__rand_int__' xxx >/dev/null
events=(-e probe_libswiftCore:swift_retain -e probe_libswiftCore:swift_release)
if [[ "${PERF_RECORD:-0}" == 1 ]]; then
    perf record -q "${events[@]}" --call-graph fp -p "$node" -o /tmp/refcounts.data -- \
        taskset -c 0 redis-benchmark -p "$port" -c 50 -n "$requests" -q "$@" >/dev/null 2>&1
    perf script -i /tmp/refcounts.data 2>/dev/null | awk -v n="$requests" '
        /probe_libswiftCore/ { kind = ($0 ~ /retain/) ? "retain " : "release"; getline; getline caller
                               split(caller, f, " "); sub(/\+0x[0-9a-f]+$/, "", f[2]); count[kind " " f[2]]++ }
        END { for (k in count) printf "%7.2f %s\n", count[k] / n, k }' | sort -rn | head -40
else
    perf stat -x, "${events[@]}" -p "$node" -o /tmp/refcounts.stat -- \
        taskset -c 0 redis-benchmark -p "$port" -c 50 -n "$requests" -q "$@" >/dev/null 2>&1
    awk -F, -v n="$requests" '/probe_libswiftCore/ { sub(/.*:/, "", $3); printf "%-14s %6.2f per request\n", $3, $1 / n }' /tmp/refcounts.stat
fi
