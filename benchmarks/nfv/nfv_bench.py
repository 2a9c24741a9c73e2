#!/usr/bin/env python3
"""NFV benchmark (issue 8): drives `cachectl serve` and its API as the README example does, with chains of the sample
load balancer (`vnf-sample lb`) in front of a `vnf-sample echo` target.

For each link mode (secured links, the default, and `plaintextLinks: true`), alternating, `--rounds` times:
  - instantiate: wall time of `POST /api/v1/network_services` for a service of `--vnfs` VNFs (the API answers once
    every VNF is instantiated; the deployment instantiates them one after the other, last first);
  - throughput through that chain and through a `--short` VNF chain: one connection streaming `--chunk` bytes for
    `--seconds` s (MB/s echoed back, i.e. every byte crossed each hop twice), and request/response rate (`--size`
    bytes, next request once the answer is back) over 1 and over `--connections` connections;
  - a baseline straight to the echo target.
Medians over rounds; prints a markdown table. Not a test: no assertions.

Usage: nfv_bench.py [--bin-dir DIR] [--vnfs 10] [--short 3] [--rounds 3] [--seconds 3] [--size 64]
                    [--connections 8] [--chunk 65536]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchnet import free_port, wait_listening  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class API:
    def __init__(self, url, token):
        self.url = url
        self.token = token

    def call(self, method, path, body=None, timeout=300):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            sys.exit(f"{method} {path} failed: HTTP {error.code}: {error.read().decode(errors='replace')}")


def start_serve(bin_dir, data_dir, first_port):
    log = open(os.path.join(data_dir, "serve.log"), "w")
    process = subprocess.Popen(
        [os.path.join(bin_dir, "cachectl"), "serve", "--data-dir", data_dir, "--port", "0", "--agents", "2",
         "--agent-cpus", "4", "--agent-mem-mb", "2000", "--first-port", str(first_port), "--ports-per-agent", "200",
         "--bin-dir", bin_dir, "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT)
    endpoint_file = os.path.join(data_dir, "framework.json")
    deadline = time.time() + 60
    while not os.path.exists(endpoint_file):
        if process.poll() is not None or time.time() > deadline:
            raise SystemExit(f"cachectl serve did not start; see {data_dir}/serve.log")
        time.sleep(0.1)
    time.sleep(0.2)
    with open(endpoint_file) as f:
        endpoint = json.load(f)
    return process, API(endpoint["url"], endpoint.get("token"))


def lb_chain(count):
    """An NSD of `count` sample load balancers in a chain."""
    ids = [f"v{i}" for i in range(count)]
    lines = ["nsd:", f"  id: lb-chain-{count}", '  version: "1.0"', "  provider: nfv_bench", "  vnfs:"]
    lines += [f"    - {{id: {i}, vnfd: lb.yaml}}" for i in ids]
    lines += ["  forwarding_graph:", f"    chain: [{', '.join(ids)}]", "    ingress_link: ingress", "    egress_link: egress"]
    return "\n".join(lines) + "\n"


def deploy(api, name, count, echo, plaintext):
    with open(os.path.join(ROOT, "samples/nfv/lb.yaml")) as f:
        lb = f.read()
    body = {"name": name, "nsd": lb_chain(count), "vnfds": {"lb.yaml": lb}, "egress": [echo], "plaintextLinks": plaintext}
    start = time.monotonic()
    service = api.call("POST", "/api/v1/network_services", body)
    return service, time.monotonic() - start


def terminate(api, service):
    for instance in service["vnfInstanceIDs"]:
        op = api.call("POST", f"/vnflcm/v1/vnf_instances/{instance}/terminate", {"terminationType": "FORCEFUL"})
        deadline = time.time() + 60
        while time.time() < deadline:
            state = api.call("GET", f"/vnflcm/v1/vnf_lcm_op_occs/{op['id']}")["state"]
            if state in ("COMPLETED", "FAILED", "ROLLED_BACK", "FAILED_TEMP"):
                break
            time.sleep(0.1)
        api.call("DELETE", f"/vnflcm/v1/vnf_instances/{instance}")


def connect(endpoint):
    host, port = endpoint.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def stream(endpoint, seconds, chunk):
    """MB/s echoed back over one connection."""
    sock = connect(endpoint)
    payload = b"x" * chunk
    received = 0
    stop = threading.Event()

    def send():
        try:
            while not stop.is_set():
                sock.sendall(payload)
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    start = time.monotonic()
    sender.start()
    end = start + seconds
    while time.monotonic() < end:
        data = sock.recv(1 << 20)
        if not data:
            break
        received += len(data)
    elapsed = time.monotonic() - start
    stop.set()
    sock.close()
    sender.join(timeout=5)
    return received / elapsed / 1e6


def request_response(endpoint, seconds, size, connections):
    """Requests/s: each connection sends `size` bytes and waits for them to come back before the next."""
    counts = [0] * connections
    payload = b"r" * size

    def run(index):
        sock = connect(endpoint)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sock.sendall(payload)
            got = 0
            while got < size:
                data = sock.recv(size - got)
                if not data:
                    raise SystemExit(f"{endpoint} closed the connection")
                got += len(data)
            counts[index] += 1
        sock.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - start)


def measure(endpoint, args):
    return {
        "MB/s": stream(endpoint, args.seconds, args.chunk),
        "rr/s 1 conn": request_response(endpoint, args.seconds, args.size, 1),
        f"rr/s {args.connections} conns": request_response(endpoint, args.seconds, args.size, args.connections),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_bin = os.path.join(ROOT, ".build/release")
    if not os.path.exists(os.path.join(default_bin, "cachectl")):
        default_bin = os.path.join(ROOT, ".build/debug")
    parser.add_argument("--bin-dir", default=default_bin, help="where cachectl and vnf-sample are (release if built)")
    parser.add_argument("--vnfs", type=int, default=10)
    parser.add_argument("--short", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=65536)
    args = parser.parse_args()
    # Tasks start in their sandboxes, so the executables must be named by absolute paths.
    args.bin_dir = os.path.abspath(args.bin_dir)

    data_dir = tempfile.mkdtemp(prefix="nfv-bench-")
    echo_port = free_port()
    echo = subprocess.Popen([os.path.join(args.bin_dir, "vnf-sample"), "echo", "--port", str(echo_port)], stdout=subprocess.DEVNULL)
    serve = None
    try:
        wait_listening(echo_port)
        echo_endpoint = f"127.0.0.1:{echo_port}"
        serve, api = start_serve(args.bin_dir, data_dir, 20000 + (os.getpid() % 50) * 200)
        samples = {}  # (row, column) -> [values]

        def add(row, column, value):
            samples.setdefault((row, column), []).append(value)

        rows = []
        for round_index in range(args.rounds):
            for column, key in measure(echo_endpoint, args).items():
                add("direct to the echo target", column, key)
            for mode, plaintext in (("secured", False), ("plaintext", True)):
                long_row = f"{args.vnfs} VNFs, {mode} links"
                short_row = f"{args.short} VNFs, {mode} links"
                for row in (long_row, short_row):
                    if row not in rows:
                        rows.append(row)
                service, seconds = deploy(api, f"b{round_index}{mode[0]}{args.vnfs}", args.vnfs, echo_endpoint, plaintext)
                add(long_row, "instantiate s", seconds)
                for column, value in measure(service["ingress"][0], args).items():
                    add(long_row, column, value)
                terminate(api, service)
                service, seconds = deploy(api, f"b{round_index}{mode[0]}{args.short}", args.short, echo_endpoint, plaintext)
                add(short_row, "instantiate s", seconds)
                for column, value in measure(service["ingress"][0], args).items():
                    add(short_row, column, value)
                terminate(api, service)
            print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)

        columns = ["instantiate s", "MB/s", "rr/s 1 conn", f"rr/s {args.connections} conns"]
        build = "release" if args.bin_dir.rstrip("/").endswith("release") else "debug"
        print(f"nfv_bench ({build} build, {os.cpu_count()} cores, median of {args.rounds} rounds, {args.seconds:g} s each,"
              f" {args.size}-byte requests, {args.chunk}-byte stream writes)\n")
        print("| path | " + " | ".join(columns) + " |")
        print("|---|" + "---:|" * len(columns))
        for row in ["direct to the echo target"] + rows:
            cells = []
            for column in columns:
                values = samples.get((row, column))
                if not values:
                    cells.append("-")
                elif column == "instantiate s":
                    cells.append(f"{statistics.median(values):.2f}")
                elif column == "MB/s":
                    cells.append(f"{statistics.median(values):.1f}")
                else:
                    cells.append(f"{statistics.median(values):,.0f}")
            print(f"| {row} | " + " | ".join(cells) + " |")
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
        echo.terminate()
        echo.wait()
        if os.environ.get("NFV_BENCH_KEEP"):
            print(f"kept {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
