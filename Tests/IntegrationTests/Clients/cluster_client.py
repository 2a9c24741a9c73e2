"""redis-py 8 RedisCluster (default options) against a cache-node cluster.

Usage:
  cluster_client.py fill PORT COUNT            write COUNT keys (pipelined), read them all back, print "filled COUNT"
  cluster_client.py churn PORT STOPFILE OUTFILE
      until STOPFILE exists: SET churn:{i} i, and GET an earlier key checking its value; writes to OUTFILE a JSON
      object {"acked": n, "errors": [...], "reads": m}. Redirects (MOVED/ASK/TRYAGAIN) are followed by redis-py;
      anything that reaches this script is an error.
  cluster_client.py verify PORT PREFIX COUNT   every PREFIX{i} for i < COUNT holds str(i); prints "verified COUNT"
Exits non-zero with a message on the first mismatch."""
import json
import os
import sys
import time

from redis.cluster import RedisCluster


def client(port):
    return RedisCluster(host="127.0.0.1", port=int(port))


def fill(port, count):
    rc = client(port)
    batch = 1000
    for start in range(0, count, batch):
        pipe = rc.pipeline()
        for i in range(start, min(count, start + batch)):
            pipe.set(f"key:{i}", str(i))
        results = pipe.execute()
        if not all(results):
            print(f"FAIL fill: a SET in batch {start} was not acknowledged")
            sys.exit(1)
    for start in range(0, count, batch):
        pipe = rc.pipeline()
        for i in range(start, min(count, start + batch)):
            pipe.get(f"key:{i}")
        for offset, value in enumerate(pipe.execute()):
            if value != str(start + offset).encode():
                print(f"FAIL fill: key:{start + offset} read back {value!r}")
                sys.exit(1)
    print(f"filled {count}")


def following_unknown_ask_targets(call):
    """redis-py 8.1 cannot follow an ASK to a node missing from its node table (a node that owned no slot when the
    client read CLUSTER SLOTS, such as a reshard's new target): it raises AttributeError ('NoneType' object has no
    attribute 'redis_connection') without sending anything. Retry until the slot's migration ends and the MOVED that
    follows teaches it the node; any other error still counts."""
    for _ in range(500):
        try:
            return call()
        except AttributeError as error:
            if "redis_connection" not in str(error):
                raise
            time.sleep(0.01)
    return call()


def churn(port, stop_file, out_file):
    rc = client(port)
    acked = 0
    reads = 0
    errors = []
    i = 0
    while not os.path.exists(stop_file) and len(errors) < 20:
        try:
            if following_unknown_ask_targets(lambda: rc.set(f"churn:{i}", str(i))):
                acked = i + 1
            else:
                errors.append(f"SET churn:{i} not acknowledged")
            i += 1
            if i > 1:
                j = (i * 7919) % (i - 1)
                value = following_unknown_ask_targets(lambda: rc.get(f"churn:{j}"))
                reads += 1
                if value != str(j).encode():
                    errors.append(f"GET churn:{j} returned {value!r}")
        except Exception as error:  # anything redis-py did not handle itself
            errors.append(f"{type(error).__name__}: {error}")
            i += 1
    with open(out_file, "w") as handle:
        json.dump({"acked": acked, "errors": errors, "reads": reads}, handle)
    print(f"churn acked {acked} reads {reads} errors {len(errors)}")


def verify(port, prefix, count):
    rc = client(port)
    batch = 1000
    for start in range(0, count, batch):
        pipe = rc.pipeline()
        for i in range(start, min(count, start + batch)):
            pipe.get(f"{prefix}{i}")
        for offset, value in enumerate(pipe.execute()):
            if value != str(start + offset).encode():
                print(f"FAIL verify: {prefix}{start + offset} = {value!r}")
                sys.exit(1)
    print(f"verified {count}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "fill":
        fill(sys.argv[2], int(sys.argv[3]))
    elif mode == "churn":
        churn(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "verify":
        verify(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(f"unknown mode {mode}")
        sys.exit(2)
