#!/usr/bin/env python3
"""A bare replica speaking the replication handshake by hand, to check how a primary frames its full sync.

Usage: raw_replica.py PORT (eof|bulk) SLOW_MS MARKER_KEY
  eof:  announces `REPLCONF capa eof` and expects `$EOF:<40 chars>` ... <same 40 chars>
  bulk: announces no capability and expects `$<length>`
Reads the snapshot (sleeping SLOW_MS after every 64 KiB when > 0, to make the primary wait on a slow replica), checks
it starts with the snapshot magic, then reads the replication stream until MARKER_KEY appears in it.
Prints one JSON line: {"framing": ..., "snapshot_bytes": N, "marker_seen": bool}.
"""
import json
import socket
import sys
import time

port, mode, slow_ms, marker = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
sock = socket.create_connection(("127.0.0.1", port))
sock.settimeout(60)
buffer = b""


def read_line():
    global buffer
    while b"\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed while reading a line")
        buffer += chunk
    line, buffer = buffer.split(b"\r\n", 1)
    return line


def command(*words):
    payload = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
    sock.sendall(payload)


def expect_ok(what):
    reply = read_line()
    if not reply.startswith(b"+"):
        raise SystemExit(f"{what}: {reply!r}")


command(b"PING")
expect_ok("PING")
command(b"REPLCONF", b"listening-port", b"1")
expect_ok("REPLCONF listening-port")
if mode == "eof":
    command(b"REPLCONF", b"capa", b"eof", b"capa", b"psync2")
    expect_ok("REPLCONF capa")
command(b"PSYNC", b"?", b"-1")
fullresync = read_line()
if not fullresync.startswith(b"+FULLRESYNC"):
    raise SystemExit(f"PSYNC: {fullresync!r}")
# Keep-alive newlines may precede the payload header.
while buffer.startswith(b"\n"):
    buffer = buffer[1:]
header = read_line()


def receive_more():
    global buffer
    chunk = sock.recv(65536)
    if not chunk:
        raise SystemExit("connection closed during the snapshot")
    buffer += chunk
    if slow_ms > 0:
        time.sleep(slow_ms / 1000)


if header.startswith(b"$EOF:"):
    framing = "eof"
    mark = header[5:]
    assert len(mark) == 40, header
    while mark not in buffer:
        receive_more()
    at = buffer.index(mark)
    snapshot, buffer = buffer[:at], buffer[at + len(mark):]
else:
    framing = "bulk"
    length = int(header[1:])
    while len(buffer) < length:
        receive_more()
    snapshot, buffer = buffer[:length], buffer[length:]
if not snapshot.startswith(b"CNSNAP"):
    raise SystemExit(f"the snapshot does not start with the magic: {snapshot[:16]!r}")
print(json.dumps({"framing": framing, "snapshot_bytes": len(snapshot), "waiting_for_marker": True}), flush=True)
deadline = time.time() + 60
while marker not in buffer and time.time() < deadline:
    try:
        chunk = sock.recv(65536)
    except socket.timeout:
        break
    if not chunk:
        break
    buffer += chunk
print(json.dumps({"framing": framing, "snapshot_bytes": len(snapshot), "marker_seen": marker in buffer}), flush=True)
