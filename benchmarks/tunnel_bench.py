#!/usr/bin/env python3
"""Tunnel benchmark: redis-benchmark against redis-server directly and through `cachectl tunnel connect` →
`cachectl tunnel listen` (ReplicationSec between the two tunnel ends), in the same run, alternating rounds.
Prints a markdown table with the tunnelled/plaintext ratio per test (issue 3's goal: ≥ 0.8), and the CPU time each
process spent per request (from /proc/<pid>/stat), which shows what the tunnel ends cost next to redis-server when all
four processes share this machine's cores.

Usage: tunnel_bench.py [--cachectl BIN] [--requests N] [--clients C] [--pipelines 1,16] [--rounds K]
"""
import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchnet import free_port, wait_listening  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ping(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True)
        if result.stdout.strip() == "PONG":
            return
        time.sleep(0.1)
    raise SystemExit(f"no PONG through port {port}")


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children_cpu_seconds():
    """User + system CPU seconds of the waited-for children (the redis-benchmark runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def redis_benchmark(port, requests, clients, pipeline):
    """ops/s per test name from redis-benchmark --csv."""
    result = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(requests), "-c", str(clients),
         "-P", str(pipeline), "-r", "100000", "-d", "32", "--csv"],
        capture_output=True, text=True, check=True)
    rates = {}
    for line in result.stdout.splitlines()[1:]:
        fields = [f.strip('"') for f in line.split(",")]
        if len(fields) >= 2:
            rates[fields[0]] = float(fields[1])
    return rates


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cachectl", default=os.path.join(ROOT, ".build/release/cachectl"))
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pipelines", default="1,16")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tunnel-bench-")
    processes = []
    try:
        ids = os.path.join(work, "ids")
        subprocess.run([args.cachectl, "identity", "init", "--directory", ids], check=True, capture_output=True)
        for node in ("server-end", "client-end"):
            subprocess.run([args.cachectl, "identity", "issue", "--authority-key", f"{ids}/authority.key",
                            "--node-id", node, "--role", "cache-node", "--out", f"{ids}/{node}.identity"],
                           check=True, capture_output=True)
        redis_port, secure_port, local_port = free_port(), free_port(), free_port()
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL))
        wait_listening(redis_port)
        authority = f"{ids}/authority.pub"
        processes.append(subprocess.Popen(
            [args.cachectl, "tunnel", "listen", "--listen", f"127.0.0.1:{secure_port}", "--target",
             f"127.0.0.1:{redis_port}", "--identity", f"{ids}/server-end.identity", "--authority", authority],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_listening(secure_port)
        processes.append(subprocess.Popen(
            [args.cachectl, "tunnel", "connect", "--local", f"127.0.0.1:{local_port}", "--remote",
             f"127.0.0.1:{secure_port}", "--identity", f"{ids}/client-end.identity", "--authority", authority],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_listening(local_port)
        ping(local_port)

        results = {}  # (pipeline, test, mode) -> [ops/s]
        cpu = {}  # (pipeline, mode) -> [[µs per request: redis-server, tunnel listen, tunnel connect, redis-benchmark]]
        for round_index in range(args.rounds):
            for pipeline in [int(p) for p in args.pipelines.split(",")]:
                order = [("plaintext", redis_port), ("tunnel", local_port)]
                if round_index % 2:
                    order.reverse()
                for mode, port in order:
                    before = [cpu_seconds(process.pid) for process in processes] + [children_cpu_seconds()]
                    rates = redis_benchmark(port, args.requests, args.clients, pipeline)
                    after = [cpu_seconds(process.pid) for process in processes] + [children_cpu_seconds()]
                    for test, rate in rates.items():
                        results.setdefault((pipeline, test, mode), []).append(rate)
                    # µs of CPU per request for each process (set + get requests)
                    per_request = [(a - b) * 1e6 / (args.requests * len(rates)) for a, b in zip(after, before)]
                    cpu.setdefault((pipeline, mode), []).append(per_request)
        load = os.getloadavg()[0]
        print(f"tunnel_bench: {args.rounds} rounds, -n {args.requests} -c {args.clients}, load average {load:.1f}")
        print()
        print("| test | pipeline | plaintext ops/s | tunnelled ops/s | ratio tunnel/plaintext |")
        print("|---|---:|---:|---:|---:|")
        for (pipeline, test, mode) in sorted(k for k in results if k[2] == "plaintext"):
            plain = statistics.median(results[(pipeline, test, "plaintext")])
            tunnel = statistics.median(results.get((pipeline, test, "tunnel"), [0]))
            print(f"| {test} | {pipeline} | {plain:,.0f} | {tunnel:,.0f} | {tunnel / plain:.2f} |")
        print()
        print("CPU per request (µs, user + system, median of rounds, SET and GET together):")
        print()
        print("| pipeline | mode | redis-benchmark | redis-server | tunnel listen end | tunnel connect end | total |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        for pipeline in sorted({key[0] for key in cpu}):
            for mode in ("plaintext", "tunnel"):
                columns = [statistics.median(sample[index] for sample in cpu[(pipeline, mode)]) for index in range(4)]
                client, server, listen, connect = columns[3], columns[0], columns[1], columns[2]
                ends = f"{listen:.1f} | {connect:.1f}" if mode == "tunnel" else "– | –"
                total = client + server + (listen + connect if mode == "tunnel" else 0)
                print(f"| {pipeline} | {mode} | {client:.1f} | {server:.1f} | {ends} | {total:.1f} |")
        print()
        print(f"This machine has {os.cpu_count()} cores for all of these processes: the throughput ratio is bounded "
              "by the ratio of the totals.")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
