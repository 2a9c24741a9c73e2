#!/usr/bin/env python3
"""Helpers for the replication integration tests (redis-py).

compare PORT PORT...      dump every key of every database (type-aware values, expiry present or not) from each
                          node and compare; prints "identical <keys>" and exits 0, or the first differences and 1.
acked-writes PORT N       SET ack:<i> i for i < N, WAIT 1 2000 after every 100; prints the highest i whose WAIT
                          reported one replica, as "acked <i>".
txn-writer PORT STOPFILE  non-idempotent writes until STOPFILE exists: transactions (MULTI INCR counter, RPUSH log i,
                          EXEC) between plain INCR/APPEND, so a replica that replays or skips one byte range ends
                          different; prints "wrote <transactions>".
"""
import os
import sys
import redis


def dump(port):
    client = redis.Redis(host="127.0.0.1", port=port, protocol=2, decode_responses=False)
    databases = int(client.config_get("databases")["databases"])
    data = {}
    fetch = {"string": lambda p, k: p.get(k), "hash": lambda p, k: p.hgetall(k), "list": lambda p, k: p.lrange(k, 0, -1),
             "set": lambda p, k: p.smembers(k), "zset": lambda p, k: p.zrange(k, 0, -1, withscores=True)}
    for db in range(databases):
        client.execute_command("SELECT", db)
        keys = list(client.scan_iter(count=5000))
        for start in range(0, len(keys), 2000):
            batch = keys[start:start + 2000]
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.type(key)
            kinds = [k.decode() for k in pipe.execute()]
            pipe = client.pipeline(transaction=False)
            for key, kind in zip(batch, kinds):
                fetch.get(kind, lambda p, k: p.type(k))(pipe, key)
                pipe.pttl(key)
            values = pipe.execute()
            for index, (key, kind) in enumerate(zip(batch, kinds)):
                value, ttl = values[2 * index], values[2 * index + 1]
                if isinstance(value, dict):
                    value = sorted(value.items())
                elif isinstance(value, set):
                    value = sorted(value)
                data[(db, key)] = (kind, value, ttl >= 0)
    return data


def compare(ports):
    dumps = [dump(port) for port in ports]
    first = dumps[0]
    for port, other in zip(ports[1:], dumps[1:]):
        if other != first:
            missing = [k for k in first if k not in other][:5]
            extra = [k for k in other if k not in first][:5]
            changed = [k for k in first if k in other and other[k] != first[k]][:5]
            print(f"differs from port {port}: {len(first)} vs {len(other)} keys; missing {missing} extra {extra} changed {changed}")
            return 1
    print(f"identical {len(first)}")
    return 0


def acked_writes(port, count):
    client = redis.Redis(host="127.0.0.1", port=port, protocol=2)
    acked = -1
    for i in range(count):
        client.set(f"ack:{i}", i)
        if i % 100 == 99:
            if client.execute_command("WAIT", 1, 2000) >= 1:
                acked = i
    print(f"acked {acked}")
    return 0


def txn_writer(port, stop_file):
    client = redis.Redis(host="127.0.0.1", port=port, protocol=2)
    count = 0
    while not os.path.exists(stop_file):
        for _ in range(50):
            pipe = client.pipeline(transaction=True)
            pipe.incr("txn:counter")
            pipe.rpush("txn:log", count)
            pipe.execute()
            client.incr("plain:counter")
            client.append("plain:appended", "x")
            count += 1
    print(f"wrote {count}")
    return 0


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "compare":
        sys.exit(compare([int(p) for p in sys.argv[2:]]))
    if command == "acked-writes":
        sys.exit(acked_writes(int(sys.argv[2]), int(sys.argv[3])))
    if command == "txn-writer":
        sys.exit(txn_writer(int(sys.argv[2]), sys.argv[3]))
    sys.exit(f"unknown command {command}")
