"""A client that pipelines many large replies without reading them: the node must stop reading from it (bounded
memory) and then deliver every reply in order once the client reads. Usage: backpressure_client.py PORT"""
import socket
import sys
import time

port = int(sys.argv[1])
value_size = 16 * 1024
requests = 20000  # 320 MiB of replies if the node buffered them all

admin = socket.create_connection(("127.0.0.1", port))


def command(sock, *args):
    sock.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    data = b""
    while not data.endswith(b"\r\n"):
        data += sock.recv(65536)
    return data


def rss(sock):
    sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n")
    data = b""
    while b"mem_allocator" not in data:
        data += sock.recv(65536)
    for line in data.split(b"\r\n"):
        if line.startswith(b"used_memory_rss:"):
            return int(line.split(b":")[1])
    raise SystemExit("no used_memory_rss in INFO")


command(admin, b"SET", b"big", b"x" * value_size)
baseline = rss(admin)

reader = socket.create_connection(("127.0.0.1", port))
reader.setblocking(False)
request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"
pending = request * requests
sent = 0
deadline = time.time() + 5
while sent < len(pending) and time.time() < deadline:
    try:
        sent += reader.send(pending[sent:sent + 65536])
    except BlockingIOError:
        time.sleep(0.01)
time.sleep(0.5)
during = rss(admin)
growth = during - baseline
print(f"sent {sent // len(request)} requests without reading; node RSS grew by {growth // 1024} KiB")
if growth > 16 * 1024 * 1024:
    print("FAIL: the node buffered replies for a client that does not read")
    sys.exit(1)

# Now read everything: every reply must arrive, complete and in order, while the rest of the requests go out.
reader.setblocking(True)
reader.settimeout(30)
expected_reply = b"$%d\r\n" % value_size + b"x" * value_size + b"\r\n"
received = bytearray()
total_expected = len(expected_reply) * requests
while sent < len(pending) or len(received) < total_expected:
    if sent < len(pending):
        reader.setblocking(False)
        try:
            sent += reader.send(pending[sent:sent + 65536])
        except BlockingIOError:
            pass
        reader.setblocking(True)
        reader.settimeout(30)
    chunk = reader.recv(1 << 20)
    if not chunk:
        print("FAIL: connection closed early")
        sys.exit(1)
    received += chunk
if bytes(received[: len(expected_reply)]) != expected_reply or len(received) != total_expected:
    print(f"FAIL: got {len(received)} bytes, expected {total_expected}")
    sys.exit(1)
print(f"backpressure: all {requests} replies received in order")
