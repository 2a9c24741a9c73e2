"""redis-py 8 against a running cache-node: default (RESP3, HELLO 3) and RESP2 clients, pipelines, transactions,
binary values, errors, streams. Exits non-zero with a message on the first mismatch. Usage: redis_py_client.py PORT"""
import sys
import threading
import time

import redis

port = int(sys.argv[1])


def check(label, actual, expected):
    if actual != expected:
        print(f"FAIL {label}: expected {expected!r}, got {actual!r}")
        sys.exit(1)
    print(f"ok {label}")


def stream_checks(r, tag, protocol):
    """Streams through redis-py's own parsers. XREAD and XREADGROUP come back as a list of [key, entries] on RESP2 and
    on the default client (RESP3 on the wire, read back into the legacy shape), and as a dict on protocol=3, whose
    values redis-py wraps in one more list."""

    def streams(key, entries):
        return {key: [entries]} if protocol == 3 else [[key, entries]]

    r.delete("events")
    check(f"{tag} xadd explicit id", r.xadd("events", {"kind": "a", "n": 1}, id="1-1"), b"1-1")
    check(f"{tag} xadd ms-*", r.xadd("events", {"kind": "b"}, id="1-*"), b"1-2")
    auto = r.xadd("events", {"kind": "c"})
    check(f"{tag} xadd *", int(auto.split(b"-")[0]) > 1, True)
    try:
        r.xadd("events", {"kind": "old"}, id="1-1")
        check(f"{tag} xadd smaller id", "no error", "ResponseError")
    except redis.ResponseError as error:
        check(f"{tag} xadd smaller id", "equal or smaller than the target stream top item" in str(error), True)
    check(f"{tag} xadd nomkstream", r.xadd("nostream", {"f": "v"}, nomkstream=True), None)
    check(f"{tag} type stream", r.type("events"), b"stream")
    check(f"{tag} xlen", r.xlen("events"), 3)
    check(f"{tag} xrange", r.xrange("events", "-", "+", count=2),
          [(b"1-1", {b"kind": b"a", b"n": b"1"}), (b"1-2", {b"kind": b"b"})])
    check(f"{tag} xrevrange exclusive", [entry_id for entry_id, _ in r.xrevrange("events", "+", "(1-1")], [auto, b"1-2"])
    check(f"{tag} xread", r.xread({"events": "1-1"}, count=1), streams(b"events", [(b"1-2", {b"kind": b"b"})]))
    check(f"{tag} xread timeout", r.xread({"events": "$"}, block=10), {} if protocol == 3 else [])

    check(f"{tag} xgroup_create", r.xgroup_create("events", "workers", id="0"), True)
    try:
        r.xgroup_create("events", "workers", id="$")
        check(f"{tag} xgroup_create busygroup", "no error", "ResponseError")
    except redis.ResponseError as error:
        check(f"{tag} xgroup_create busygroup", str(error), "BUSYGROUP Consumer Group name already exists")
    check(f"{tag} xreadgroup >", r.xreadgroup("workers", "alice", {"events": ">"}, count=2),
          streams(b"events", [(b"1-1", {b"kind": b"a", b"n": b"1"}), (b"1-2", {b"kind": b"b"})]))
    check(f"{tag} xreadgroup history", r.xreadgroup("workers", "alice", {"events": "0"}, count=1),
          streams(b"events", [(b"1-1", {b"kind": b"a", b"n": b"1"})]))
    check(f"{tag} xpending", r.xpending("events", "workers"),
          {"pending": 2, "min": b"1-1", "max": b"1-2", "consumers": [{"name": b"alice", "pending": 2}]})
    detail = r.xpending_range("events", "workers", min="-", max="+", count=10, consumername="alice")
    # Reading 1-1 again from the consumer's history counted as a second delivery.
    check(f"{tag} xpending_range", [(d["message_id"], d["consumer"], d["times_delivered"]) for d in detail],
          [(b"1-1", b"alice", 2), (b"1-2", b"alice", 1)])
    check(f"{tag} xpending_range idle", all(d["time_since_delivered"] >= 0 for d in detail), True)
    check(f"{tag} xack", r.xack("events", "workers", "1-1", "9-9"), 1)
    check(f"{tag} xack again", r.xack("events", "workers", "1-1"), 0)
    check(f"{tag} xpending after xack", r.xpending("events", "workers")["pending"], 1)
    info = r.xinfo_stream("events")
    check(f"{tag} xinfo_stream", {k: info[k] for k in ("length", "last-generated-id", "entries-added", "groups",
                                                        "first-entry", "last-entry")},
          {"length": 3, "last-generated-id": auto, "entries-added": 3, "groups": 1,
           "first-entry": (b"1-1", {b"kind": b"a", b"n": b"1"}), "last-entry": (auto, {b"kind": b"c"})})
    groups = r.xinfo_groups("events")
    check(f"{tag} xinfo_groups", [{k: g[k] for k in ("name", "consumers", "pending", "last-delivered-id",
                                                      "entries-read", "lag")} for g in groups],
          [{"name": b"workers", "consumers": 1, "pending": 1, "last-delivered-id": b"1-2", "entries-read": 2, "lag": 1}])
    r.delete("events")


for protocol in (None, 3, 2):
    kwargs = {} if protocol is None else {"protocol": protocol}
    r = redis.Redis(host="127.0.0.1", port=port, **kwargs)
    tag = f"proto={protocol or 'default'}"
    r.flushdb()
    check(f"{tag} ping", r.ping(), True)
    check(f"{tag} set", r.set("k", "v"), True)
    check(f"{tag} get", r.get("k"), b"v")
    check(f"{tag} set nx", r.set("k", "w", nx=True), None)
    check(f"{tag} set ex get", r.set("k", "w", ex=100, get=True), b"v")
    check(f"{tag} ttl", r.ttl("k"), 100)
    check(f"{tag} incr", r.incr("n"), 1)
    check(f"{tag} incrbyfloat", r.incrbyfloat("f", 2.5), 2.5)
    check(f"{tag} mset", r.mset({"a": 1, "b": 2}), True)
    check(f"{tag} mget", r.mget("a", "b", "missing"), [b"1", b"2", None])
    binary = bytes(range(256))
    r.set(b"bin\x00key", binary)
    check(f"{tag} binary", r.get(b"bin\x00key"), binary)
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"p{i}", i)
    pipe.get("p42")
    check(f"{tag} pipeline", pipe.execute()[-1], b"42")
    tx = r.pipeline(transaction=True)
    tx.incr("tx").incr("tx").get("tx")
    check(f"{tag} multi/exec", tx.execute(), [1, 2, b"2"])
    check(f"{tag} exists", r.exists("a", "b", "zz"), 2)
    check(f"{tag} type", r.type("a"), b"string")
    check(f"{tag} scan", sorted(r.scan_iter(match="p1*", count=7))[:3], [b"p1", b"p10", b"p11"])
    check(f"{tag} dbsize", r.dbsize(), 107)
    check(f"{tag} client setname", r.client_setname("py"), True)
    check(f"{tag} client getname", r.client_getname() in ("py", b"py"), True)
    check(f"{tag} config get", r.config_get("databases"), {"databases": "16"})
    info = r.info()
    check(f"{tag} info redis_version", "redis_version" in info, True)
    check(f"{tag} info used_memory", isinstance(info.get("used_memory"), int), True)
    try:
        r.incr("k")
        check(f"{tag} error raised", False, True)
    except redis.ResponseError as error:
        check(f"{tag} error text", "not an integer" in str(error), True)
    # MONITOR through redis-py's parser: another client's commands, with their database and arguments.
    with r.monitor() as monitor:
        other = redis.Redis(host="127.0.0.1", port=port, db=5, **kwargs)
        other.set("watched key", "a \"quoted\" value")
        seen = None
        for event in monitor.listen():
            if event["command"].startswith("SET "):
                seen = event
                break
        other.close()
    check(f"{tag} monitor command", seen["command"], 'SET watched key a "quoted" value')
    check(f"{tag} monitor db", seen["db"], 5)
    check(f"{tag} monitor time", abs(seen["time"] - time.time()) < 60, True)
    # Keyspace notifications through redis-py's pub/sub: a write's event, then an expiry found by the active cycle
    # (nobody reads the key) and reported on its keyevent channel.
    check(f"{tag} notify-keyspace-events", r.config_set("notify-keyspace-events", "KEA"), True)
    listener = r.pubsub()
    listener.psubscribe("__keyevent@0__:*")
    listener.subscribe("__keyspace@0__:session")
    subscriptions = 0
    while subscriptions < 2:
        message = listener.get_message(timeout=5)
        if message is None:
            break
        subscriptions += message["type"] in ("psubscribe", "subscribe")
    check(f"{tag} keyspace subscriptions", subscriptions, 2)
    r.set("session", "token", px=200)
    events = []
    deadline = time.time() + 10
    while time.time() < deadline and (b"expired", b"session") not in events:
        message = listener.get_message(timeout=1)
        if message and message["type"] in ("message", "pmessage"):
            channel = message["channel"]
            if channel.startswith(b"__keyevent@0__:"):
                events.append((channel[len(b"__keyevent@0__:"):], message["data"]))
            else:
                events.append((b"keyspace", message["data"]))
    # Each event on the key's keyspace channel first, then on the event's keyevent channel, as redis publishes them.
    check(f"{tag} keyspace events", events, [(b"keyspace", b"set"), (b"set", b"session"), (b"keyspace", b"expire"),
                                             (b"expire", b"session"), (b"keyspace", b"expired"),
                                             (b"expired", b"session")])
    listener.close()
    r.config_set("notify-keyspace-events", "")

    # Lua scripting as redis-py uses it: register_script (EVALSHA, falling back to EVAL on NOSCRIPT) and its Lock,
    # whose release and extend are scripts.
    r.script_flush()
    incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    r.delete("counter")
    check(f"{tag} register_script", [incr_by(keys=["counter"], args=[5]), incr_by(keys=["counter"], args=[2])], [5, 7])
    check(f"{tag} script_exists", r.script_exists(incr_by.sha), [True])
    check(f"{tag} eval table", r.eval("return {1, 'two', {3}}", 0), [1, b"two", [3]])
    try:
        r.eval("return redis.call('nosuchcommand')", 0)
        check(f"{tag} eval error", "no error", "ResponseError")
    except redis.exceptions.ResponseError as error:
        check(f"{tag} eval error", "Unknown Redis command called from script" in str(error), True)
    lock = r.lock("resource", timeout=10)
    check(f"{tag} lock acquire", lock.acquire(blocking=False), True)
    check(f"{tag} lock held elsewhere", r.lock("resource", timeout=10).acquire(blocking=False), False)
    check(f"{tag} lock extend", lock.extend(5), True)
    check(f"{tag} lock ttl extended", r.pttl("resource") > 10000, True)
    lock.release()
    check(f"{tag} lock released", r.exists("resource"), 0)
    # The slow log through redis-py's parser (entries as dicts, the command joined with spaces).
    r.config_set("slowlog-log-slower-than", 0)
    r.client_setname(f"slow-{tag}")
    r.slowlog_reset()
    r.set("slow", "v")
    newest = r.slowlog_get(1)
    check(f"{tag} slowlog_get command", [entry["command"] for entry in newest], [b"SET slow v"])
    check(f"{tag} slowlog_get client", newest[0]["client_name"], f"slow-{tag}".encode())
    check(f"{tag} slowlog_get duration", isinstance(newest[0]["duration"], int) and newest[0]["duration"] >= 0, True)
    check(f"{tag} slowlog_len", r.slowlog_len(), 3)  # RESET, SET, SLOWLOG GET
    r.config_set("slowlog-log-slower-than", 10000)

    # CLIENT PAUSE WRITE through redis-py: a write from another connection (on whichever event loop) waits until
    # client_unpause, a read does not.
    writer = redis.Redis(host="127.0.0.1", port=port, **kwargs)
    r.set("paused", "before")
    check(f"{tag} client_pause", r.client_pause(60000, all=False), True)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(set=writer.set("paused", "after")))
    thread.start()
    thread.join(0.3)
    check(f"{tag} write held during pause", (thread.is_alive(), r.get("paused")), (True, b"before"))
    check(f"{tag} client_unpause", r.client_unpause(), b"OK")  # redis-py returns the raw reply here
    thread.join(5)
    check(f"{tag} write ran after unpause", (thread.is_alive(), outcome.get("set"), r.get("paused")), (False, True, b"after"))
    writer.close()

    # Functions through redis-py: function_load, fcall, fcall_ro, function_list, dump and restore.
    r.function_flush()
    library = ("#!lua name=pylib\n"
               "redis.register_function('py_incr', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)\n"
               "redis.register_function{function_name='py_get', callback=function(keys) return redis.call('get', keys[1]) end, "
               "flags={'no-writes'}}")
    check(f"{tag} function_load", r.function_load(library), b"pylib")
    check(f"{tag} fcall", r.fcall("py_incr", 1, "fn-counter", 4), 4)
    check(f"{tag} fcall_ro", r.fcall_ro("py_get", 1, "fn-counter"), b"4")
    listed = r.function_list(library="pylib")
    # A map under RESP3, a flat key/value list under RESP2.
    as_dict = lambda value: value if isinstance(value, dict) else dict(zip(value[::2], value[1::2]))
    names = sorted(as_dict(f)[b"name"] for lib in listed for f in as_dict(lib)[b"functions"])
    check(f"{tag} function_list", names, [b"py_get", b"py_incr"])
    payload = r.function_dump()
    r.function_delete("pylib")
    try:
        r.fcall("py_incr", 1, "fn-counter", 1)
        check(f"{tag} fcall after delete", "no error", "an error")
    except redis.exceptions.ResponseError as error:
        check(f"{tag} fcall after delete", "Function not found" in str(error), True)
    check(f"{tag} function_restore", r.function_restore(payload), True)
    check(f"{tag} fcall after restore", r.fcall("py_incr", 1, "fn-counter", 1), 5)
    r.function_flush()

    # ACL users through redis-py: acl_setuser, a connection as that user, NOPERM as redis-py's NoPermissionError.
    user = f"py-{tag}".replace("=", "")
    check(f"{tag} acl_setuser", r.acl_setuser(user, enabled=True, passwords=["+secret"], keys=["app:*"],
                                              commands=["+get", "+set", "+acl|whoami"]), True)
    limited = redis.Redis(host="127.0.0.1", port=port, username=user, password="secret", **kwargs)
    check(f"{tag} acl whoami", limited.acl_whoami() in (user, user.encode()), True)
    check(f"{tag} acl allowed", (limited.set("app:1", "v"), limited.get("app:1")), (True, b"v"))
    for label, call in [("key", lambda: limited.get("other")), ("command", lambda: limited.delete("app:1"))]:
        try:
            call()
            check(f"{tag} acl denied {label}", "no error", "NoPermissionError")
        except redis.exceptions.NoPermissionError as error:
            check(f"{tag} acl denied {label}", "NOPERM" in str(error) or "permission" in str(error).lower(), True)
    check(f"{tag} acl_log", any(entry[b"username" if b"username" in entry else "username"] in (user, user.encode())
                                for entry in r.acl_log()), True)
    try:
        redis.Redis(host="127.0.0.1", port=port, username=user, password="wrong", **kwargs).ping()
        check(f"{tag} acl wrong password", "no error", "AuthenticationError")
    except redis.exceptions.AuthenticationError:
        check(f"{tag} acl wrong password", True, True)
    limited.close()
    check(f"{tag} acl_deluser", r.acl_deluser(user), 1)
    stream_checks(r, tag, protocol)
    r.close()

print("redis-py: all checks passed")
