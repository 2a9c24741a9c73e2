#!/usr/bin/env bash
# Side-by-side benchmark of cache-node against redis-server on loopback.
#
# Builds cache-node and cache-bench in release once (or takes prebuilt binaries), starts both servers on
# free 127.0.0.1 ports, and alternates between them (A, B, A, B, ... for --rounds rounds, medians reported):
#   - cache-bench -P 16 and -P 1, 1:10 set:get, 32-byte values, over a pre-populated key space (100% hits)
#   - redis-benchmark -t set,get -P 16 -c 50 and -P 1 -c 50, once on its default single key and once with
#     -r KEYS over the populated key space (the same key:%012d names cache-bench uses, so GETs hit)
#   - memory per key: populate keys with 8-byte values on fresh servers, INFO memory used_memory and
#     process RSS before and after, divided by the key count
# Every throughput run also records CPU: the server's user + system time per request (from /proc/PID/stat) and how
# busy the generator was (its user + system time over the run's wall time, in cores). A generator near 1.00 core is
# the bottleneck of that run, not the server.
# Writes a markdown table to benchmarks/results/latest.md (and stdout), raw samples to latest.jsonl.
#
# --pin SERVER_CPUS:CLIENT_CPUS runs both servers under `taskset -c SERVER_CPUS` and the generators under
# `taskset -c CLIENT_CPUS` (e.g. --pin 1:0), so neither takes the other's core; cache-node then runs one event loop
# per CPU it may use, as redis-server runs one main thread.
#
# --node-args "FLAGS" adds flags to cache-node's command line (e.g. "--threads 1": one event loop, as redis-server
# runs one main thread, instead of one per usable CPU).
#
# Usage: benchmarks/run.sh [--quick] [--rounds N] [--pin S:C] [--node-args FLAGS] [--node-binary PATH]
#                          [--bench-binary PATH] [--redis-binary PATH] [--output FILE]
# Environment: CACHE_NODE_BIN, CACHE_BENCH_BIN, REDIS_SERVER_BIN, REDIS_BENCHMARK_BIN, ROUNDS.
# Dry run without cache-node: benchmarks/run.sh --quick --node-binary /usr/bin/redis-server
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

invocation="benchmarks/run.sh"
[[ $# -gt 0 ]] && invocation+="$(printf ' %q' "$@")"
for var in CACHE_NODE_BIN CACHE_BENCH_BIN REDIS_SERVER_BIN REDIS_BENCHMARK_BIN ROUNDS; do
    [[ -n "${!var:-}" ]] && invocation="$var=${!var} $invocation"
done
quick=0
rounds="${ROUNDS:-}"
node_bin="${CACHE_NODE_BIN:-}"
bench_bin="${CACHE_BENCH_BIN:-}"
redis_bin="${REDIS_SERVER_BIN:-$(command -v redis-server || true)}"
redis_benchmark_bin="${REDIS_BENCHMARK_BIN:-$(command -v redis-benchmark || true)}"
output="$here/results/latest.md"
pin=""
node_args=""

usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --rounds) rounds="$2"; shift ;;
        --pin) pin="$2"; shift ;;
        --node-args) node_args="$2"; shift ;;
        --node-binary) node_bin="$2"; shift ;;
        --bench-binary) bench_bin="$2"; shift ;;
        --redis-binary) redis_bin="$2"; shift ;;
        --output) output="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done

if [[ $quick -eq 1 ]]; then
    rounds="${rounds:-1}"; keys=10000; cb_p16_n=100000; cb_p1_n=20000; rb_p16_n=50000; rb_p1_n=10000
    memory_keys=100000
else
    rounds="${rounds:-3}"; keys=100000; cb_p16_n=2000000; cb_p1_n=400000; rb_p16_n=1000000; rb_p1_n=200000
    memory_keys=1000000
fi
connections=50
data_size=32
memory_data_size=8

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }

[[ -x "$redis_bin" ]] || die "redis-server not found (apt-get install redis-server, or set REDIS_SERVER_BIN)"
[[ -x "$redis_benchmark_bin" ]] || die "redis-benchmark not found (apt-get install redis-tools, or set REDIS_BENCHMARK_BIN)"
command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install redis-tools)"
command -v python3 >/dev/null || die "python3 not found"

# Launch prefixes: empty, or taskset pinning servers and generators to their CPUs.
server_launch=()
client_launch=()
if [[ -n "$pin" ]]; then
    [[ "$pin" =~ ^([0-9,-]+):([0-9,-]+)$ ]] || die "--pin wants SERVER_CPUS:CLIENT_CPUS, e.g. 1:0 (got '$pin')"
    command -v taskset >/dev/null || die "taskset not found (apt-get install util-linux)"
    server_launch=(taskset -c "${BASH_REMATCH[1]}")
    client_launch=(taskset -c "${BASH_REMATCH[2]}")
fi

# --- build once, in release (scripts/build-release.sh: the flags every release build here uses) -------------
products=()
[[ -n "$node_bin" ]] || products+=(cache-node)
[[ -n "$bench_bin" ]] || products+=(cache-bench)
if [[ ${#products[@]} -gt 0 ]]; then
    # One product per invocation: swift build keeps only the last --product it is given.
    for product in "${products[@]}"; do
        log "scripts/build-release.sh --product $product"
        "$repo/scripts/build-release.sh" --product "$product" >&2
    done
    bin_dir="$("$repo/scripts/build-release.sh" --show-bin-path)"
    node_bin="${node_bin:-$bin_dir/cache-node}"
    bench_bin="${bench_bin:-$bin_dir/cache-bench}"
fi
[[ -x "$node_bin" ]] || die "cache-node binary $node_bin is not executable"
[[ -x "$bench_bin" ]] || die "cache-bench binary $bench_bin is not executable"
# Servers start in their scratch directories, so the binaries are named by absolute paths.
node_bin="$(realpath "$node_bin")"
bench_bin="$(realpath "$bench_bin")"

# --- servers ----------------------------------------------------------------------------------------
scratch="$(mktemp -d /tmp/cache-bench-run.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# server_args BINARY PORT: the flags each server gets.
server_args() {
    local binary="$1" port="$2"
    if [[ "$(basename "$binary")" == redis-server* ]]; then
        echo "--port $port --bind 127.0.0.1 --save '' --appendonly no"
    else
        echo "--port $port --bind 127.0.0.1 --save '' $node_args"
    fi
}

# start_server NAME BINARY: starts it in its own scratch dir; sets started_port and started_pid.
start_server() {
    local name="$1" binary="$2" port dir
    port="$(free_port)"
    dir="$scratch/$name"; mkdir -p "$dir"
    local args; args="$(server_args "$binary" "$port")"
    (cd "$dir" && eval "exec ${server_launch[*]} \"$binary\" $args" >"$dir/server.log" 2>&1) &
    started_pid=$!
    pids+=("$started_pid")
    for _ in $(seq 1 200); do
        if [[ "$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" == "PONG" ]]; then
            started_port="$port"
            log "$name: $binary $args (pid $started_pid)"
            return 0
        fi
        kill -0 "$started_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$dir/server.log" >&2
    die "$name ($binary) did not answer PING on 127.0.0.1:$port"
}

stop_server() {
    local pid="$1"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

used_memory() { redis-cli -h 127.0.0.1 -p "$1" INFO memory | tr -d '\r' | awk -F: '$1=="used_memory"{print $2}'; }
rss_bytes() { awk '/^VmRSS:/{print $2*1024}' "/proc/$1/status"; }
# cpu_seconds PID: user + system seconds the process (all its threads) has used.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# timed OUTPUT_VAR CPU_VAR COMMAND...: runs COMMAND, stores its stdout in OUTPUT_VAR and, in CPU_VAR, its
# "user+system wall" seconds (children included). Fails as COMMAND fails.
timed() {
    local __out_var="$1" __cpu_var="$2"; shift 2
    local __times="$scratch/times.$$" __status=0 __output
    __output="$( { TIMEFORMAT='%U %S %R'; time "$@" 2>/dev/null; } 2>"$__times" )" || __status=$?
    printf -v "$__out_var" '%s' "$__output"
    printf -v "$__cpu_var" '%s' "$(awk '{printf "%.3f %.3f", $1 + $2, $3}' "$__times")"
    return $__status
}

# cpu_fields SERVER_CPU_BEFORE SERVER_PID "GENERATOR_CPU WALL" REQUESTS: the JSON fields of one run's CPU use.
cpu_fields() {
    python3 -c '
import json, sys
before, after, generator, requests = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(), int(sys.argv[4])
cpu, wall = float(generator[0]), float(generator[1])
print(json.dumps({"server_us_per_op": (after - before) * 1e6 / requests, "server_cores": (after - before) / wall,
                  "generator_cores": cpu / wall}))
' "$1" "$(cpu_seconds "$2")" "$3" "$4"
}

samples="$scratch/samples.jsonl"
: >"$samples"

# record BENCH SERVER ROUND JSON-FIELDS: appends one sample line.
record() {
    python3 - "$@" >>"$samples" <<'PY'
import json, sys
bench, server, rnd, command = sys.argv[1:5]
fields = {}
for extra in sys.argv[5:]:
    fields.update(json.loads(extra))
fields.update(bench=bench, server=server, round=int(rnd), command=command)
print(json.dumps(fields))
PY
}

# run_cache_bench SERVER PORT ROUND PIPELINE N
run_cache_bench() {
    local server="$1" port="$2" rnd="$3" pipeline="$4" n="$5"
    local template="cache-bench -p \$PORT -c $connections -P $pipeline --keys $keys -d $data_size --ratio 1:10 -n $n --json"
    local out cpu before
    before="$(cpu_seconds "${pid_of[$server]}")"
    timed out cpu "${client_launch[@]}" "$bench_bin" -p "$port" -c "$connections" -P "$pipeline" --keys "$keys" \
        -d "$data_size" --ratio 1:10 -n "$n" --json || true
    local json; json="$(grep '^{' <<<"$out" | tail -n1 || true)"
    [[ -n "$json" ]] || { echo "$out" >&2; die "cache-bench produced no JSON against $server"; }
    record "cache-bench -P $pipeline (1:10 set:get, 100% hits)" "$server" "$rnd" "$template" \
        "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps({"ops":d["ops_per_sec"],"p50":d["p50_ms"],"p99":d["p99_ms"],"p999":d["p99_9_ms"],"errors":d["errors"],"misses":d["get_misses"],"first_error":d.get("first_error")}))' "$json")" \
        "$(cpu_fields "$before" "${pid_of[$server]}" "$cpu" "$n")"
}

# run_redis_benchmark SERVER PORT ROUND PIPELINE N [RANDOM_KEYS]: SET, then GET, one run each so each has its own
# CPU figures. Without RANDOM_KEYS every request uses redis-benchmark's one key (the GET reads what the SET wrote);
# with it, `-r RANDOM_KEYS` spreads them over that many keys (key:%012d, populated before the rounds).
run_redis_benchmark() {
    local server="$1" port="$2" rnd="$3" pipeline="$4" n="$5" random_keys="${6:-}"
    local test csv cpu before label spread=()
    if [[ -n "$random_keys" ]]; then
        spread=(-r "$random_keys")
        label="$random_keys random keys"
    else
        label="one key"
    fi
    for test in SET GET; do
        local lower; lower="$(tr 'A-Z' 'a-z' <<<"$test")"
        before="$(cpu_seconds "${pid_of[$server]}")"
        timed csv cpu "${client_launch[@]}" "$redis_benchmark_bin" -h 127.0.0.1 -p "$port" -t "$lower" -n "$n" \
            -P "$pipeline" -c "$connections" "${spread[@]}" --csv || die "redis-benchmark failed against $server"
        record "redis-benchmark $test -P $pipeline ($label)" "$server" "$rnd" \
            "redis-benchmark -p \$PORT -t $lower -n $n -P $pipeline -c $connections${spread:+ ${spread[*]}} --csv" \
            "$(python3 -c '
import csv, io, json, sys
rows = {r["test"]: r for r in csv.DictReader(io.StringIO(sys.argv[1]))}
r = rows[sys.argv[2]]
print(json.dumps({"ops": float(r["rps"]), "p50": float(r["p50_latency_ms"]), "p99": float(r["p99_latency_ms"]), "errors": 0}))
' "$csv" "$test")" \
            "$(cpu_fields "$before" "${pid_of[$server]}" "$cpu" "$n")"
    done
}

declare -A binary_of=([cache-node]="$node_bin" [redis-server]="$redis_bin")
order=(cache-node redis-server)

# --- memory per key, on fresh servers --------------------------------------------------------------
for server in "${order[@]}"; do
    start_server "$server" "${binary_of[$server]}"
    port="$started_port"; pid="$started_pid"
    before_used="$(used_memory "$port")"; before_rss="$(rss_bytes "$pid")"
    "$bench_bin" -p "$port" -c "$connections" -P 16 -d "$memory_data_size" --populate "$memory_keys" --json \
        >"$scratch/populate-$server.txt" 2>&1 || { cat "$scratch/populate-$server.txt" >&2; die "populate failed on $server"; }
    sleep 0.2
    after_used="$(used_memory "$port")"; after_rss="$(rss_bytes "$pid")"
    dbsize="$(redis-cli -h 127.0.0.1 -p "$port" DBSIZE)"
    if [[ "$dbsize" =~ ^[0-9]+$ ]]; then
        [[ "$dbsize" == "$memory_keys" ]] || die "$server holds $dbsize keys after populating $memory_keys"
    else
        log "warning: $server answered DBSIZE with '$dbsize'; key count not checked"
    fi
    template="cache-bench -p \$PORT -c $connections -P 16 -d $memory_data_size --populate $memory_keys; INFO memory"
    fields="$(python3 -c 'import json,sys; b,a,n=sys.argv[1:4]; print(json.dumps({"bytes_per_key": (int(a)-int(b))/int(n) if b and a else None}))' \
        "$before_used" "$after_used" "$memory_keys")"
    record "memory per key: used_memory ($memory_keys keys, $memory_data_size B values)" "$server" 1 "$template" "$fields"
    fields="$(python3 -c 'import json,sys; b,a,n=sys.argv[1:4]; print(json.dumps({"bytes_per_key": (int(a)-int(b))/int(n)}))' \
        "$before_rss" "$after_rss" "$memory_keys")"
    record "memory per key: process RSS ($memory_keys keys, $memory_data_size B values)" "$server" 1 \
        "${template%; INFO memory}; /proc/PID/status VmRSS" "$fields"
    stop_server "$pid"
done

# --- throughput and latency, alternating A, B per round -----------------------------------------------
declare -A port_of pid_of
for server in "${order[@]}"; do
    start_server "$server" "${binary_of[$server]}"
    port_of[$server]="$started_port"
    pid_of[$server]="$started_pid"
    "$bench_bin" -p "$started_port" -c "$connections" -P 16 -d "$data_size" --populate "$keys" >/dev/null \
        || die "populating $keys keys failed on $server"
done

for rnd in $(seq 1 "$rounds"); do
    log "round $rnd/$rounds"
    for pipeline in 16 1; do
        n=$([[ $pipeline -eq 16 ]] && echo "$cb_p16_n" || echo "$cb_p1_n")
        for server in "${order[@]}"; do run_cache_bench "$server" "${port_of[$server]}" "$rnd" "$pipeline" "$n"; done
    done
    for random_keys in "" "$keys"; do
        for pipeline in 16 1; do
            n=$([[ $pipeline -eq 16 ]] && echo "$rb_p16_n" || echo "$rb_p1_n")
            for server in "${order[@]}"; do
                run_redis_benchmark "$server" "${port_of[$server]}" "$rnd" "$pipeline" "$n" "$random_keys"
            done
        done
    done
done

# --- report ------------------------------------------------------------------------------------------
mkdir -p "$(dirname "$output")"
cp "$samples" "${output%.md}.jsonl"
python3 "$here/report.py" "$samples" \
    --node-binary "$node_bin" --redis-binary "$redis_bin" --bench-binary "$bench_bin" \
    --redis-version "$("$redis_bin" --version)" --rounds "$rounds" --quick "$quick" \
    --node-args "$(server_args "$node_bin" PORT)" --redis-args "$(server_args "$redis_bin" PORT)" \
    --command "$invocation" --raw-samples "${output%.md}.jsonl" \
    --pin "$pin" \
    | tee "$output"
log "wrote $output"
