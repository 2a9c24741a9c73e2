#!/usr/bin/env python3
"""redis-py RedisCluster client for the framework resharding test: writes and reads continuously while shards are
added and removed, and checks afterwards that every acknowledged key is present exactly once.

run PORT STOPFILE OUTFILE MAXKEYS   Until STOPFILE exists: SET scale:<i> <i> for new i (up to MAXKEYS, then
                                    overwrites from the start with the same value) and GET of an earlier acknowledged
                                    key, whose value must match. redis-py follows MOVED/ASK itself; any exception that
                                    reaches this loop is counted as an error. Writes OUTFILE (JSON: acked key numbers,
                                    ops, errors, wrong reads, seconds) and prints "ran <ops> ops, <acked> keys, <errors>
                                    errors, <wrong> wrong reads".
verify PORT INFILE                  Every acknowledged key has its value through RedisCluster, and exactly one primary
                                    holds it (KEYS scale:* on every primary of CLUSTER NODES); prints
                                    "verified <n> missing <m> duplicated <d> stray <s>" and exits 1 on any problem.
"""
import json
import os
import random
import sys
import time

import redis
from redis.cluster import RedisCluster


def run(port, stop_file, out_file, max_keys):
    rc = RedisCluster(host="127.0.0.1", port=port)
    acked = []
    acked_set = set()
    errors = []
    library_retries = 0
    wrong = []
    ops = 0
    next_key = 0
    started = time.time()
    rng = random.Random(7)
    while not os.path.exists(stop_file):
        i = next_key % max_keys
        try:
            if rc.set(f"scale:{i}", str(i)):
                if i not in acked_set:
                    acked_set.add(i)
                    acked.append(i)
            ops += 1
            next_key += 1
            if acked:
                j = acked[rng.randrange(len(acked))]
                value = rc.get(f"scale:{j}")
                ops += 1
                if value != str(j).encode():
                    wrong.append([j, value.decode() if value is not None else None])
        except AttributeError as error:
            # redis-py's RedisCluster cannot follow an ASK to a node missing from its slot cache (a new primary that
            # owns no slot yet): `get_node` returns None and it fails on `.redis_connection`. A redirect the library
            # failed to follow, not a server error: the operation was not acknowledged and is retried after a refresh.
            if "redis_connection" not in str(error):
                errors.append(f"{type(error).__name__}: {error}")
            else:
                library_retries += 1
                rc.nodes_manager.initialize()
            time.sleep(0.05)
        except Exception as error:  # noqa: BLE001 - every failure is reported
            errors.append(f"{type(error).__name__}: {error}")
            time.sleep(0.05)
    seconds = time.time() - started
    with open(out_file, "w") as handle:
        json.dump({"acked": acked, "ops": ops, "errors": errors, "wrong": wrong, "seconds": seconds,
                   "library_retries": library_retries}, handle)
    print(f"ran {ops} ops, {len(acked)} keys, {len(errors)} errors, {len(wrong)} wrong reads in {seconds:.1f} s")


def verify(port, in_file):
    with open(in_file) as handle:
        result = json.load(handle)
    keys = [f"scale:{i}" for i in result["acked"]]
    rc = RedisCluster(host="127.0.0.1", port=port)
    missing = []
    for start in range(0, len(keys), 500):
        batch = keys[start:start + 500]
        pipe = rc.pipeline()
        for key in batch:
            pipe.get(key)
        for key, value in zip(batch, pipe.execute()):
            if value != key.split(":")[1].encode():
                missing.append(key)
    # Exactly once: count every key on every primary.
    nodes = redis.Redis(host="127.0.0.1", port=port).execute_command("CLUSTER", "NODES")
    if isinstance(nodes, bytes):
        nodes = nodes.decode()
    counts = {}
    for line in nodes.splitlines():
        fields = line.split()
        if len(fields) < 3 or "master" not in fields[2]:
            continue
        host, node_port = fields[1].split("@")[0].rsplit(":", 1)
        for key in redis.Redis(host=host, port=int(node_port)).keys("scale:*"):
            counts[key.decode()] = counts.get(key.decode(), 0) + 1
    duplicated = [key for key, count in counts.items() if count > 1]
    stray = [key for key in keys if counts.get(key, 0) == 0]
    print(f"verified {len(keys) - len(missing)} missing {len(missing)} duplicated {len(duplicated)} stray {len(stray)}"
          + (f" e.g. {(missing + duplicated + stray)[:5]}" if missing or duplicated or stray else ""))
    sys.exit(1 if missing or duplicated or stray else 0)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "run":
        run(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif command == "verify":
        verify(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(f"unknown command {command}")
