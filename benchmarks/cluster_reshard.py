#!/usr/bin/env python3
"""Live reshard benchmark: keys moved per second and client throughput before vs. during the move.

Starts 4 cache-node processes in cluster mode on free loopback ports, pushes a 3-primary topology (node 3 empty),
fills KEYS keys into node 0's slots (a third of the slot space), then moves all of node 0's slots to node 3 with
`redis-cli --cluster reshard` (IMPORTING/MIGRATING, GETKEYSINSLOT, MIGRATE … KEYS, SETSLOT NODE) while a redis-py
RedisCluster client runs pipelined SET/GET batches across the whole cluster. Prints a markdown table; checks that
no key was lost or stranded (exit status 1 otherwise).

Usage: benchmarks/cluster_reshard.py [--node-binary PATH] [--keys N] [--pipeline N] [--value-size N] [--redis] [--batched]
(--redis runs the same on redis-server 7 cluster nodes joined by MEET, for a side-by-side figure; --batched moves the
slots the way the framework's SlotMigrator does instead of redis-cli: rounds of 128 slots handed over with cache-node's
CLUSTER SETSLOTSRANGE, GETKEYSINSLOT and MIGRATE … KEYS pipelined per round, then SETSLOTSRANGE … NODE on the
target, the source and the other primary, which stands in for the framework's topology push).
Default binary: .build/release/cache-node if present, else .build/debug/cache-node (say which in reports).
"""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

import redis
from redis.cluster import RedisCluster

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def free_port():
    """A free port whose cluster bus port (+10000) is also valid."""
    import socket
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 55000:
            return port


def start_redis(directory):
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf", "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            redis.Redis(host="127.0.0.1", port=port).ping()
            return process, port
        except (redis.ConnectionError, redis.BusyLoadingError):
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def start_node(binary):
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", "0", "--save", "", "--cluster-enabled", "yes",
         "--cluster-config-file", "", "--replication-plaintext", "yes"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        match = re.search(r"Ready to accept connections tcp on port (\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, int(match.group(1))
    process.kill()
    raise RuntimeError("cache-node did not start")


class Load(threading.Thread):
    """Pipelined SET/GET batches through RedisCluster; counts completed operations per time window."""

    def __init__(self, port, batch=100):
        super().__init__(daemon=True)
        self.client = RedisCluster(host="127.0.0.1", port=port)
        self.batch = batch
        self.ops = 0
        self.errors = []
        self.stop = False
        self.written = 0
        self.library_retries = 0

    def run(self):
        i = 0
        while not self.stop:
            try:
                pipe = self.client.pipeline()
                for j in range(self.batch // 2):
                    pipe.set(f"load:{i + j}", "v")
                    pipe.get(f"load:{(i + j) // 2}")
                results = pipe.execute()
                self.ops += len(results)
                i += self.batch // 2
                self.written = i
            except AttributeError as error:
                # redis-py cannot follow an ASK to a node missing from its slot cache (the empty target before it
                # owns a slot): a redirect the library failed to follow, retried after a refresh (as scale_client.py).
                if "redis_connection" not in str(error):
                    self.errors.append(f"{type(error).__name__}: {error}")
                self.library_retries += 1
                self.client.nodes_manager.initialize()
            except Exception as error:  # anything redis-py did not handle itself
                self.errors.append(f"{type(error).__name__}: {error}")
                if len(self.errors) > 50:
                    return

    def rate(self, seconds):
        start_ops, start = self.ops, time.time()
        time.sleep(seconds)
        return (self.ops - start_ops) / (time.time() - start)


class Moved:
    """The outcome of batched_move, shaped like subprocess.run's."""

    def __init__(self, returncode, stdout):
        self.returncode = returncode
        self.stdout = stdout


def batched_move(clients, ids, ports, slots, keys_per_round, slots_per_round=128):
    """Moves `slots` from node 0 to node 3 as CacheFrameworkRuntime's SlotMigrator does."""
    source, target = clients[0], clients[3]
    others = [clients[1], clients[2]]
    slots = list(slots)
    try:
        for start in range(0, len(slots), slots_per_round):
            chunk = slots[start:start + slots_per_round]
            first, last = str(chunk[0]), str(chunk[-1])
            target.execute_command("CLUSTER", "SETSLOTSRANGE", first, last, "IMPORTING", ids[0])
            source.execute_command("CLUSTER", "SETSLOTSRANGE", first, last, "MIGRATING", ids[3])
            pending = chunk
            while pending:
                pipe = source.pipeline(transaction=False)
                for slot in pending:
                    pipe.execute_command("CLUSTER", "GETKEYSINSLOT", slot, keys_per_round)
                listed = pipe.execute()
                pipe = source.pipeline(transaction=False)
                batches = [(slot, keys) for slot, keys in zip(pending, listed) if keys]
                for slot, keys in batches:
                    pipe.execute_command("MIGRATE", "127.0.0.1", ports[3], "", 0, 5000, "KEYS", *keys)
                pipe.execute()
                pending = [slot for slot, keys in batches if len(keys) >= keys_per_round]
            for node in [target, source] + others:
                node.execute_command("CLUSTER", "SETSLOTSRANGE", first, last, "NODE", ids[3])
    except redis.RedisError as error:
        return Moved(1, f"batched move failed: {error}")
    return Moved(0, "")


def main():
    parser = argparse.ArgumentParser()
    release = os.path.join(REPO, ".build/release/cache-node")
    parser.add_argument("--node-binary", default=release if os.path.exists(release) else os.path.join(REPO, ".build/debug/cache-node"))
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--pipeline", type=int, default=1000, help="keys per GETKEYSINSLOT/MIGRATE batch")
    parser.add_argument("--value-size", type=int, default=32)
    parser.add_argument("--redis", action="store_true", help="run the same reshard on redis-server 7 (gossip) instead")
    parser.add_argument("--batched", action="store_true", help="move slots as the framework does (SETSLOTSRANGE rounds)")
    parser.add_argument("--slots", type=int, default=5461, help="move only node 0's first N slots (slow baselines)")
    args = parser.parse_args()

    import tempfile
    scratch = tempfile.mkdtemp(prefix="reshard-")
    nodes = [start_redis(scratch) if args.redis else start_node(args.node_binary) for _ in range(4)]
    ports = [port for _, port in nodes]
    try:
        clients = [redis.Redis(host="127.0.0.1", port=port) for port in ports]
        ids = [client.execute_command("CLUSTER", "MYID").decode() for client in clients]
        ranges = [" 0-5460", " 5461-10922", " 10923-16383", ""]
        if args.redis:
            # The redis way: slots and epochs per node, MEET, then wait for gossip to agree.
            for index, client in enumerate(clients):
                if ranges[index]:
                    low, high = ranges[index].strip().split("-")
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", str(index + 1))
            for port in ports[1:]:
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", str(port))
            deadline = time.time() + 60
            while time.time() < deadline:
                infos = [client.execute_command("CLUSTER", "INFO").decode() for client in clients]
                if all("cluster_state:ok" in info and "cluster_known_nodes:4" in info for info in infos):
                    break
                time.sleep(0.2)
            time.sleep(2)
        else:
            payload = "\n".join(
                f"{ids[i]} 127.0.0.1:{ports[i]}@{ports[i] + 10000} master - 0 0 {i + 1} connected{ranges[i]}" for i in range(4))
            for client in clients:
                client.execute_command("CLUSTER", "TOPOLOGY", "SET", "1", payload)

        # Fill node 0's slots directly (keys whose slot is below 5461).
        value = "x" * args.value_size
        pipe = clients[0].pipeline(transaction=False)
        filled, i = 0, 0
        while filled < args.keys:
            key = f"key:{i}"
            i += 1
            if crc16(key.encode()) % 16384 > 5460:
                continue
            pipe.set(key, value)
            filled += 1
            if filled % 5000 == 0:
                pipe.execute()
        pipe.execute()
        before_keys = clients[0].dbsize()

        load = Load(ports[1])
        load.start()
        time.sleep(1)
        ops_before = load.rate(5)

        during = []
        reshard_done = threading.Event()

        def sample():
            while not reshard_done.is_set():
                during.append(load.rate(1))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.time()
        if args.batched:
            result = batched_move(clients, ids, ports, range(0, args.slots), args.pipeline)
        else:
            result = subprocess.run(
                ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{ports[0]}", "--cluster-from", ids[0],
                 "--cluster-to", ids[3], "--cluster-slots", str(args.slots), "--cluster-yes",
                 "--cluster-pipeline", str(args.pipeline)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        elapsed = time.time() - started
        reshard_done.set()
        sampler.join()
        load.stop = True
        load.join()
        if result.returncode != 0:
            print(result.stdout[-3000:])
            raise SystemExit("reshard failed")

        # Keys of the moved slots left on node 0 (all of its keys when every slot moved).
        stranded = clients[0].dbsize() if args.slots >= 5461 else sum(
            clients[0].execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) for slot in range(args.slots))
        # Every key accounted for: fill keys on node 3 (and node 0's unmoved slots), load keys wherever they hash.
        fill_on_target = sum(1 for _ in clients[3].scan_iter(match="key:*", count=10000))
        fill_kept = 0 if args.slots >= 5461 else sum(1 for _ in clients[0].scan_iter(match="key:*", count=10000))
        load_total = sum(sum(1 for _ in clients[n].scan_iter(match="load:*", count=10000)) for n in range(4))
        lost = before_keys - fill_on_target - fill_kept
        ops_during = sum(during) / len(during) if during else 0.0
        binary_kind = "redis-server 7.0" if args.redis else ("release cache-node" if "/release/" in args.node_binary else "debug cache-node")
        print()
        print(f"| live reshard ({binary_kind}, 4 nodes + client + redis-cli on one 2-core machine) | value |")
        print("|---|---|")
        print(f"| keys moved (node 0's first {args.slots} slots; 5461 = all of them, 1/3 of the slot space) | {fill_on_target:,} |")
        mover = "SETSLOTSRANGE rounds of 128 slots" if args.batched else "redis-cli --cluster reshard"
        print(f"| reshard time ({mover}, pipeline {args.pipeline}) | {elapsed:.2f} s |")
        print(f"| keys moved per second | {fill_on_target / elapsed:,.0f} |")
        print(f"| client ops/s before (RedisCluster, pipelined SET+GET) | {ops_before:,.0f} |")
        print(f"| client ops/s during the reshard | {ops_during:,.0f} ({ops_during / ops_before:.0%} of before) |")
        print(f"| keys lost | {lost} |")
        print(f"| keys stranded on the old owner | {stranded} |")
        print(f"| client errors other than redirects (ASKs redis-py could not follow, retried) | {len(load.errors)} ({load.library_retries}) |")
        print(f"| load keys written / found | {load.written:,} / {load_total:,} |")
        if lost != 0 or stranded != 0 or load.errors or load_total != load.written:
            print("FAILED:", load.errors[:5])
            sys.exit(1)
    finally:
        for process, _ in nodes:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
