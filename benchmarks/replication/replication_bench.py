#!/usr/bin/env python3
"""Replication benchmark: a primary and one replica, over the secure channel and over plaintext, in the same run,
alternating rounds. Prints a markdown table.

- throughput: redis-benchmark writes N SETs into the primary as fast as it can; the figure is N divided by the time
  from the first write until the replica's offset equals the primary's (what the replica can absorb end to end).
- lag: a paced writer sends RATE SETs per second (batches every --interval-ms, 10 by default) for SECONDS; a probe key carries a sequence
  number in each batch and a reader polls it on the replica; lag = time the replica first shows sequence i minus the
  time batch i was sent (includes one loopback round trip). p50/p99 over all probes.

With --redis, a redis-server primary/replica pair runs the same rounds as a baseline (plaintext, redis's own
replication), so the lag figures can be read against what this machine and this probe give redis.

Usage: replication_bench.py [--node BIN] [--cachectl BIN] [--requests N] [--rate R] [--seconds S] [--rounds K] [--redis]
"""
import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchnet import free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(port, *args):
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *map(str, args)],
                          capture_output=True, text=True, check=True).stdout.strip()


def info(port, section):
    fields = {}
    for line in cli(port, "INFO", section).splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


class Node:
    def __init__(self, binary, args):
        self.process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", "0", "--save", "", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if "Ready to accept connections tcp on port" in line:
                self.port = int(line.rsplit(" ", 1)[1])
                break
        else:
            raise SystemExit("cache-node did not start")
        # Drain output in the background so the node never blocks on a full pipe.
        self.drain = subprocess.Popen(["cat"], stdin=self.process.stdout, stdout=subprocess.DEVNULL)

    def stop(self):
        self.process.terminate()
        self.process.wait()
        self.drain.wait()


class RedisServer:
    """A redis-server on a free loopback port, without persistence."""

    def __init__(self, args):
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if cli(self.port, "PING") == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait()


def start_pair(mode, binary, identities):
    if mode == "redis-server":
        primary = RedisServer([])
        replica = RedisServer(["--replicaof", "127.0.0.1", str(primary.port)])
    elif mode == "secure":
        rport = free_port()
        primary = Node(binary, ["--node-identity", f"{identities}/p.identity", "--cluster-authority",
                                f"{identities}/authority.pub", "--replication-port", str(rport)])
        replica = Node(binary, ["--node-identity", f"{identities}/r.identity", "--cluster-authority",
                                f"{identities}/authority.pub", "--replication-port", str(free_port()),
                                "--replicaof", "127.0.0.1", str(rport)])
    else:
        primary = Node(binary, ["--replication-plaintext", "yes"])
        replica = Node(binary, ["--replication-plaintext", "yes", "--replicaof", "127.0.0.1", str(primary.port)])
    wait_synced(primary.port, replica.port)
    return primary, replica


def wait_synced(primary, replica, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        target = info(primary, "replication").get("master_repl_offset")
        fields = info(replica, "replication")
        if fields.get("master_link_status") == "up" and fields.get("slave_repl_offset") == target:
            return
        time.sleep(0.002)
    raise SystemExit("replica did not catch up")


def throughput(primary, replica, requests):
    start = time.time()
    subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(primary), "-t", "set", "-n", str(requests),
                    "-r", "100000", "-d", "32", "-P", "16", "-c", "8", "-q"], capture_output=True, check=True)
    wait_synced(primary, replica)
    return requests / (time.time() - start)


def encode(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def paced_lag(primary, replica, rate, seconds, interval_ms):
    batches_per_second = 1000 / interval_ms
    batch = max(1, int(rate / batches_per_second))
    payload = b"".join(encode("SET", f"lag:{i}", "x" * 32) for i in range(batch - 1))
    wreader, wwriter = await asyncio.open_connection("127.0.0.1", primary)
    rreader, rwriter = await asyncio.open_connection("127.0.0.1", replica)
    sent_at = {}
    lags = []
    done = asyncio.Event()

    async def drain_replies():
        while not done.is_set():
            data = await wreader.read(1 << 20)
            if not data:
                return

    async def write():
        start = time.perf_counter()
        for seq in range(int(seconds * batches_per_second)):
            target = start + seq * interval_ms / 1000
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[seq] = time.perf_counter()
            wwriter.write(payload + encode("SET", "lagprobe", seq))
            await wwriter.drain()
        await asyncio.sleep(0.2)
        done.set()
        # Closing the write connection ends drain_replies' pending read.
        wwriter.close()

    async def poll():
        seen = -1
        request = encode("GET", "lagprobe")
        while not done.is_set():
            rwriter.write(request)
            await rwriter.drain()
            line = await rreader.readline()
            if line.startswith(b"$-1"):
                continue
            value = int((await rreader.readline()).strip())
            now = time.perf_counter()
            for seq in range(seen + 1, value + 1):
                if seq in sent_at:
                    lags.append((now - sent_at[seq]) * 1000)
            seen = max(seen, value)

    await asyncio.gather(write(), poll(), drain_replies(), return_exceptions=True)
    rwriter.close()
    lags.sort()
    achieved = int(batch * batches_per_second)
    return lags[len(lags) // 2], lags[int(len(lags) * 0.99) - 1], achieved


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", default=os.environ.get("CACHE_NODE_BIN", f"{ROOT}/.build/release/cache-node"))
    parser.add_argument("--cachectl", default=os.environ.get("CACHECTL_BIN", f"{ROOT}/.build/release/cachectl"))
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval-ms", type=float, default=10,
                        help="the paced writer sends one batch (rate × interval) every this many ms")
    parser.add_argument("--redis", action="store_true", help="also run a redis-server pair as a baseline")
    options = parser.parse_args()
    modes = ["plaintext", "secure"] + (["redis-server"] if options.redis else [])
    identities = tempfile.mkdtemp(prefix="repl-bench-")
    try:
        subprocess.run([options.cachectl, "identity", "init", "--directory", identities], check=True, capture_output=True)
        for node in ("p", "r"):
            subprocess.run([options.cachectl, "identity", "issue", "--authority-key", f"{identities}/authority.key",
                            "--node-id", node, "--role", "cache-node", "--out", f"{identities}/{node}.identity"],
                           check=True, capture_output=True)
        results = {mode: {"tput": [], "p50": [], "p99": []} for mode in modes}
        for _ in range(options.rounds):
            for mode in modes:
                primary, replica = start_pair(mode, options.node, identities)
                try:
                    results[mode]["tput"].append(throughput(primary.port, replica.port, options.requests))
                    p50, p99, rate = asyncio.run(
                        paced_lag(primary.port, replica.port, options.rate, options.seconds, options.interval_ms))
                    results[mode]["p50"].append(p50)
                    results[mode]["p99"].append(p99)
                finally:
                    replica.stop()
                    primary.stop()
        med = {mode: {k: statistics.median(v) for k, v in r.items()} for mode, r in results.items()}
        print(f"Replication benchmark: {options.rounds} rounds (medians), {options.requests} SETs for throughput, "
              f"{rate} SETs/s paced for lag in batches every {options.interval_ms:g} ms, {options.seconds} s")
        print()
        print("| link | replicated writes/s | ratio to plaintext | lag p50 ms | lag p99 ms |")
        print("|---|---:|---:|---:|---:|")
        for mode in modes:
            m = med[mode]
            print(f"| {mode} | {m['tput']:,.0f} | {m['tput'] / med['plaintext']['tput']:.2f} | {m['p50']:.2f} | {m['p99']:.2f} |")
    finally:
        shutil.rmtree(identities, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
