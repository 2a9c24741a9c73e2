#!/usr/bin/env python3
"""Formats the samples of benchmarks/run.sh (one JSON object per line) as a markdown table.

Each benchmark row shows the median over rounds for cache-node and redis-server side by side and the
ratio cache-node/redis-server (for ops/s higher is better; for bytes per key lower is better), and where the CPU
went: the server's user + system µs per request, and how busy the generator was (cores; near 1.00 the single-threaded
generator, not the server, limited that run).
"""
import argparse
import datetime
import json
import statistics
import sys


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("samples")
    for name in ["node-binary", "redis-binary", "bench-binary", "redis-version", "rounds", "quick",
                 "node-args", "redis-args", "command", "raw-samples", "pin"]:
        parser.add_argument("--" + name, default="")
    args = parser.parse_args()

    samples = [json.loads(line) for line in open(args.samples) if line.strip()]
    benches = []
    for sample in samples:
        if sample["bench"] not in benches:
            benches.append(sample["bench"])

    def pick(bench, server):
        return [s for s in samples if s["bench"] == bench and s["server"] == server]

    out = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out.append(f"# cache-node vs redis-server ({now})")
    out.append("")
    out.append(f"- command: `{args.command}`{' (quick mode: small counts, smoke test only)' if args.quick == '1' else ''}")
    out.append(f"- cache-node: `{args.node_binary} {args.node_args}`")
    out.append(f"- redis-server: `{args.redis_binary} {args.redis_args}` ({args.redis_version.strip()})")
    out.append(f"- load generator: `{args.bench_binary}` (hiredis async + libevent, 1 thread) and redis-benchmark")
    if args.pin:
        server_cpus, client_cpus = args.pin.split(":")
        placement = (f" servers pinned to CPU {server_cpus} and generators to CPU {client_cpus} (taskset), so each has"
                     " its own core")
    else:
        placement = " client and servers share the machine's cores, so compare ratios, not absolute figures"
    out.append(f"- rounds: {args.rounds}, servers alternated A, B within each round; figures are medians over rounds;"
               + placement)
    if args.node_binary and args.node_binary == args.redis_binary:
        out.append("- **dry run**: both sides run the same redis-server binary, so every ratio's distance from 1.00"
                   " is run-to-run noise")
    out.append("")
    out.append("| benchmark | cache-node ops/s | redis-server ops/s | ratio node/redis "
               "| cache-node p50 / p99 ms | redis-server p50 / p99 ms | server CPU µs/op node / redis "
               "| generator busy (cores) node / redis | errors node / redis | generator and command |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for bench in benches:
        node, redis = pick(bench, "cache-node"), pick(bench, "redis-server")
        command = (node or redis)[0]["command"]
        errors = f"{sum(s.get('errors', 0) or 0 for s in node)} / {sum(s.get('errors', 0) or 0 for s in redis)}"
        if bench.startswith("memory"):
            n, r = median([s["bytes_per_key"] for s in node]), median([s["bytes_per_key"] for s in redis])
            ratio = f"{n / r:.2f}" if n is not None and r else "n/a"
            out.append(f"| {bench} | {fmt(n, 1)} B/key | {fmt(r, 1)} B/key | {ratio} | – | – | – | – | – | `{command}` |")
            continue
        n_ops, r_ops = median([s["ops"] for s in node]), median([s["ops"] for s in redis])
        ratio = f"{n_ops / r_ops:.2f}" if n_ops is not None and r_ops else "n/a"
        lat = lambda group: f"{fmt(median([s['p50'] for s in group]), 3)} / {fmt(median([s['p99'] for s in group]), 3)}"
        cpu = lambda field, digits: " / ".join(fmt(median([s.get(field) for s in group]), digits) for group in (node, redis))
        out.append(f"| {bench} | {fmt(n_ops)} | {fmt(r_ops)} | {ratio} | {lat(node)} | {lat(redis)} "
                   f"| {cpu('server_us_per_op', 2)} | {cpu('generator_cores', 2)} | {errors} | `{command}` |")

    misses = sum(s.get("misses", 0) or 0 for s in samples)
    first_errors = sorted({s["first_error"] for s in samples if s.get("first_error")})
    out.append("")
    out.append(f"cache-bench GET misses over all runs: {misses} (expected 0: the key space is populated first).")
    if first_errors:
        out.append("Errors seen: " + "; ".join(f"`{e}`" for e in first_errors))
    out.append("")
    out.append(f"Per-round samples: `{args.raw_samples or args.samples}`.")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
