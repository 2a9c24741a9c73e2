#!/usr/bin/env python3
"""redis-py clients for the framework heal tests and benchmark.

acked PORT COUNT OUTFILE    SET heal:<i> i for i < COUNT, each on its slot's primary (found with RedisCluster), then
                            WAIT 1 2000 on each primary's own connection; writes the keys whose WAIT reported a
                            replica to OUTFILE (JSON list) and prints "acked <n> of <COUNT>".
verify PORT INFILE          RedisCluster GET of every key in INFILE (value must be the key's number); prints
                            "verified <n> missing <m>" and exits 1 if any is missing or wrong.
"""
import json
import sys

import redis
from redis.cluster import RedisCluster


def acked(port, count, out_file):
    rc = RedisCluster(host="127.0.0.1", port=port)
    by_node = {}
    for i in range(count):
        key = f"heal:{i}"
        node = rc.get_node_from_key(key)
        by_node.setdefault((node.host, node.port), []).append((key, i))
    acked_keys = []
    for (host, node_port), items in by_node.items():
        client = redis.Redis(host=host, port=node_port, protocol=2)
        for start in range(0, len(items), 100):
            batch = items[start:start + 100]
            pipe = client.pipeline(transaction=False)
            for key, i in batch:
                pipe.set(key, str(i))
            if not all(pipe.execute()):
                print(f"FAIL a SET on {host}:{node_port} was not acknowledged")
                sys.exit(1)
            if client.execute_command("WAIT", 1, 2000) >= 1:
                acked_keys += [key for key, _ in batch]
    with open(out_file, "w") as handle:
        json.dump(acked_keys, handle)
    print(f"acked {len(acked_keys)} of {count}")


def verify(port, in_file):
    with open(in_file) as handle:
        keys = json.load(handle)
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
    print(f"verified {len(keys) - len(missing)} missing {len(missing)}" + (f" e.g. {missing[:5]}" if missing else ""))
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "acked":
        acked(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif command == "verify":
        verify(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(f"unknown command {command}")
