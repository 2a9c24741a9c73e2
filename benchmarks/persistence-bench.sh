#!/usr/bin/env bash
# persistence-bench.sh — GET/SET latency on a 1M-key cache-node with and without a background save running,
# and how long a BGSAVE takes. Not a test: prints a table to compare within one run.
#
#   benchmarks/persistence-bench.sh                 # builds release binaries if missing; 1M keys, 10 s per phase
#   KEYS=200000 DURATION=5 benchmarks/persistence-bench.sh
#   CACHE_NODE_BIN=… CACHE_BENCH_BIN=… benchmarks/persistence-bench.sh
#   SERVER=redis benchmarks/persistence-bench.sh    # the same against redis-server (fork-based BGSAVE)
#
# Phases (same node, same keys): (1) cache-bench 1:10 SET:GET, 50 connections, -P 1, no save running;
# (2) the same load while BGSAVEs run back to back (a python redis-py loop starts the next one as soon as the
# previous ends, so the whole phase overlaps saves); the loop also times each BGSAVE from start to
# rdb_bgsave_in_progress:0 (polled every 10 ms). Both cores are shared by the node, its save thread and the load
# generator.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
DURATION=${DURATION:-10}
NODE_BIN=${CACHE_NODE_BIN:-.build/release/cache-node}
BENCH_BIN=${CACHE_BENCH_BIN:-.build/release/cache-bench}
if [[ ! -x $NODE_BIN ]]; then scripts/build-release.sh --product cache-node; fi
if [[ ! -x $BENCH_BIN ]]; then scripts/build-release.sh --product cache-bench; fi

work=$(mktemp -d ${WORK_PARENT:+-p "$WORK_PARENT"})
node_pid=""
cleanup() {
    if [[ -n $node_pid ]]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

SERVER=${SERVER:-cache-node}
if [[ $SERVER == redis ]]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$work" --dbfilename dump.cnsnap \
        > "$work/node.log" 2>&1 &
    node_pid=$!
    for _ in $(seq 1 100); do redis-cli -p "$port" PING > /dev/null 2>&1 && break; sleep 0.1; done
else
    "$NODE_BIN" --bind 127.0.0.1 --port 0 --save '' --dir "$work" ${NODE_ARGS:-} > "$work/node.log" 2>&1 &
    node_pid=$!
    port=""
    for _ in $(seq 1 300); do
        port=$(sed -n 's/.*Ready to accept connections tcp on port \([0-9]*\).*/\1/p' "$work/node.log" | head -1)
        [[ -n $port ]] && break
        sleep 0.1
    done
    [[ -n $port ]] || { echo "cache-node did not start:"; cat "$work/node.log"; exit 1; }
fi

echo "populating $KEYS keys (32-byte values) on port $port…" >&2
"$BENCH_BIN" -p "$port" --populate "$KEYS" -P 64 -d 32 > /dev/null

run_load() {
    "$BENCH_BIN" -p "$port" --keys "$KEYS" --duration "$DURATION" --ratio 1:10 -c 50 -P 1 -d 32 --json | tail -1
}

echo "phase 1: load without a save…" >&2
baseline=$(run_load)

echo "phase 2: load with back-to-back BGSAVEs…" >&2
python3 - "$port" "$DURATION" > "$work/saves.json" <<'PY' &
import json, sys, time
import redis
port, duration = int(sys.argv[1]), float(sys.argv[2])
r = redis.Redis(host="127.0.0.1", port=port)
durations = []
end = time.monotonic() + duration
while time.monotonic() < end:
    start = time.monotonic()
    r.bgsave()
    while int(r.info("persistence")["rdb_bgsave_in_progress"]) == 1:
        time.sleep(float(__import__("os").environ.get("POLL_SECONDS", "0.01")))
    durations.append((time.monotonic() - start) * 1000)
print(json.dumps({"durations_ms": durations, "status": r.info("persistence")["rdb_last_bgsave_status"]}))
PY
saver=$!
during=$(run_load)
wait "$saver"
size=$(stat -c %s "$work/dump.cnsnap")

python3 - "$baseline" "$during" "$work/saves.json" "$KEYS" "$size" "$SERVER" <<'PY'
import json, statistics, sys
baseline, during = json.loads(sys.argv[1]), json.loads(sys.argv[2])
saves = json.load(open(sys.argv[3]))
keys, size, server = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
print(f"| {server}, {keys} keys, cache-bench 1:10 -c 50 -P 1 | ops/s | p50 ms | p99 ms | p99.9 ms | max ms |")
print("|---|---|---|---|---|---|")
for name, r in (("no save running", baseline), ("BGSAVE running back to back", during)):
    print(f"| {name} | {r['ops_per_sec']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['p99_9_ms']:.3f} | {r['max_ms']:.3f} |")
d = sorted(saves["durations_ms"])
print()
print("| BGSAVE under load | value |")
print("|---|---|")
print(f"| saves completed during the phase | {len(d)} (last status: {saves['status']}) |")
print(f"| duration min / median / max | {d[0]:.0f} / {statistics.median(d):.0f} / {d[-1]:.0f} ms |")
print(f"| snapshot file | {size / 1e6:.1f} MB ({size / keys:.1f} B/key) |")
PY
