#!/usr/bin/env python3
"""gRPC load benchmark: Switchyard (`HAPROXY_0_BACKEND_PROTOCOL=h2`) against HAProxy 2.x (`proto
h2` on the server line) and nginx (`grpc_pass`), side by side in one run, the proxy on one core and
the load client and backends on the other. Run through `scripts/loadbench.sh grpc [options]`.

The backends are tonic servers (`benches/grpc_backend.rs`, the tests' echo service), two ports.
The load client is h2load: the call shapes are HTTP/2 POSTs with a gRPC body (a 5-byte frame
header and the message), `te: trailers`, 50 connections x 10 concurrent streams; it is the same
C client as the HTTP/2 case of scripts/loadbench.py and leaves the load core room for the
backends. It counts HTTP statuses, not gRPC ones: Switchyard's own `grpc_responses_total` is read
after each run to check that every call ended OK there.

Each case runs once per proxy per round, proxies interleaved; medians over the rounds.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadbench import Proc, cpu_ticks, machine, parse_h2load, wait_port  # noqa: E402

GRPC_BACKENDS = [18501, 18502]
HOST = "grpc.bench.test"
PEERS = ["switchyard", "haproxy", "nginx"]
# Ports per peer: the listener and (Switchyard) its admin port.
PORTS = {"switchyard": 18600, "haproxy": 18610, "nginx": 18620}
UNARY = "/test.Echo/Unary"
SERVER_STREAM = "/test.Echo/ServerStream"


def grpc_frame(message):
    """gRPC's length-prefixed message: not compressed, a 4-byte length, the bytes."""
    return struct.pack(">BI", 0, len(message)) + message


CASES = [
    # Small messages: 32 bytes each way.
    {"name": "gRPC unary, 50 conns x 10 calls", "path": UNARY, "conns": 50, "streams": 10,
     "body": grpc_frame(b"x" * 32)},
    # One call, 100 messages of 1 KiB back.
    {"name": "gRPC server stream (100 x 1 KiB), 10 conns x 10 calls", "path": SERVER_STREAM,
     "conns": 10, "streams": 10, "body": grpc_frame(struct.pack(">II", 100, 1024))},
]


def backend_binary(repo):
    """Builds the tonic backend (release) and returns its path."""
    out = subprocess.run(["cargo", "build", "--release", "--locked", "--bench", "grpc_backend",
                          "--message-format=json"], cwd=repo, check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "grpc_backend" \
                and msg.get("executable"):
            return msg["executable"]
    raise RuntimeError("cargo built no grpc_backend binary")


def switchyard_apps():
    return {"apps": [{
        "id": "/bench/grpc",
        "instances": len(GRPC_BACKENDS),
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": HOST,
                   "HAPROXY_0_BACKEND_PROTOCOL": "h2"},
        "portDefinitions": [{"port": 30500, "protocol": "tcp"}],
        "tasks": [{"id": f"bench_grpc.{p}", "host": "127.0.0.1", "state": "TASK_RUNNING",
                   "ports": [p]} for p in GRPC_BACKENDS],
    }]}


def haproxy_conf():
    servers = "\n".join(f"  server s{p} 127.0.0.1:{p} proto h2" for p in GRPC_BACKENDS)
    return f"""global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend grpc_in
  bind 127.0.0.1:{PORTS['haproxy']} proto h2
  use_backend grpc if {{ req.hdr(host) -i {HOST} }}
backend grpc
  balance roundrobin
  http-reuse always
{servers}
"""


def nginx_conf(work):
    servers = " ".join(f"server 127.0.0.1:{p};" for p in GRPC_BACKENDS)
    return f"""worker_processes 1;
pid {work}/nginx-grpc.pid;
error_log {work}/nginx-grpc-error.log;
daemon off;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp;
  upstream grpc_backends {{ {servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{PORTS['nginx']} http2;
    server_name {HOST};
    http2_max_concurrent_streams 128;
    location / {{ grpc_pass grpc://grpc_backends; }}
  }}
}}
"""


def start_peer(name, binary, work, cpus):
    log = open(f"{work}/{name}-grpc.log", "w")
    port = PORTS[name]
    if name == "switchyard":
        path = f"{work}/grpc-apps.json"
        with open(path, "w") as f:
            json.dump(switchyard_apps(), f)
        argv = [binary, "--apps-file", path, "--bind-address", "127.0.0.1",
                "--http-port", str(port), "--https-port", str(port + 1),
                "--admin-port", str(port + 2), "--app-id-port", str(port + 3),
                "--log-level", "warn", "--threads", "1"]
    elif name == "haproxy":
        path = f"{work}/haproxy-grpc.cfg"
        with open(path, "w") as f:
            f.write(haproxy_conf())
        argv = ["haproxy", "-db", "-f", path]
    else:
        path = f"{work}/nginx-grpc.conf"
        with open(path, "w") as f:
            f.write(nginx_conf(work))
        argv = ["nginx", "-c", path, "-e", f"{work}/nginx-grpc-error.log"]
    proc = Proc(argv, cpus, log)
    wait_port(port, alive=lambda: proc.popen.poll() is None)
    return proc


def switchyard_grpc_ok():
    """Calls Switchyard answered with grpc-status OK (its metrics)."""
    url = f"http://127.0.0.1:{PORTS['switchyard'] + 2}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    m = re.search(r'^switchyard_grpc_responses_total\{backend="bench_grpc_30500",grpc_code="OK"\} (\d+)',
                  text, re.M)
    return int(m.group(1)) if m else 0


def run_case(name, proc, case, duration, load_cpus, work):
    body = f"{work}/grpc-body.bin"
    with open(body, "wb") as f:
        f.write(case["body"])
    log_path = f"{work}/h2load-grpc.log"
    pin = ["taskset", "-c", load_cpus] if load_cpus else []
    argv = pin + ["h2load", "-t", "1", "-c", str(case["conns"]), "-m", str(case["streams"]),
                  "-D", str(duration), "-d", body, "--log-file", log_path,
                  "-H", "content-type: application/grpc", "-H", "te: trailers",
                  "-H", f":authority: {HOST}", f"http://127.0.0.1:{PORTS[name]}{case['path']}"]
    ok_before = switchyard_grpc_ok() if name == "switchyard" else 0
    cpu0 = proc.cpu_seconds()
    load0 = cpu_ticks(load_cpus) if load_cpus else None
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    cpu = proc.cpu_seconds() - cpu0
    load1 = cpu_ticks(load_cpus) if load_cpus else None
    result = parse_h2load(out, log_path)
    if name == "switchyard":
        # Every call h2load saw end in 200 must have ended with grpc-status OK.
        not_ok = result["requests"] - (switchyard_grpc_ok() - ok_before)
        result["errors"] += max(not_ok, 0)
    result["cpu_us_per_call"] = cpu / max(result["requests"], 1) * 1e6
    result["load_busy"] = (load1[0] - load0[0]) / max(load1[1] - load0[1], 1) if load0 else float("nan")
    if result["errors"]:
        sys.stderr.write(f"    {name}: {' '.join(argv)}\n" + "".join(f"    | {l}\n" for l in out.splitlines()[-8:]))
    return result


def memory_case(name, proc, backend, mib, load_cpus):
    """A server stream of `mib` MiB to a client that reads one 64 KiB message a millisecond:
    the proxy's RSS before and its largest sample meanwhile (flow control keeps it flat)."""
    pin = ["taskset", "-c", load_cpus] if load_cpus else []
    before = proc.rss_mib()
    child = subprocess.Popen(pin + [backend, "slow-read", f"127.0.0.1:{PORTS[name]}", HOST, str(mib)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    largest = before
    t0 = time.time()
    while child.poll() is None:
        largest = max(largest, proc.rss_mib())
        time.sleep(0.25)
    out = child.stdout.read().strip()
    ok = child.returncode == 0 and out.splitlines()[-1:] == [str(mib << 20)]
    return {"rss_before": before, "rss_max": largest, "seconds": time.time() - t0, "ok": ok,
            "output": out[-500:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="target/release/switchyard")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per run")
    ap.add_argument("--memory-mib", type=int, default=1024,
                    help="MiB streamed to a slow reader in the memory case (0: skip it)")
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.path.abspath(args.binary)
    backend = backend_binary(repo)
    work = tempfile.mkdtemp(prefix="switchyard-loadbench-grpc-")
    os.chmod(work, 0o755)
    os.makedirs(f"{work}/tmp")
    proxy_cpus, load_cpus = "0", "1"
    backends, procs = None, {}
    runs, memory = {}, {}
    try:
        backends = Proc([backend] + [str(p) for p in GRPC_BACKENDS], load_cpus,
                        open(f"{work}/grpc-backends.log", "w"))
        for p in GRPC_BACKENDS:
            wait_port(p, alive=lambda: backends.popen.poll() is None)
        for name in PEERS:
            procs[name] = start_peer(name, binary, work, proxy_cpus)
        for r in range(args.rounds):
            for case in CASES:
                order = PEERS[r % len(PEERS):] + PEERS[:r % len(PEERS)]
                for name in order:
                    res = run_case(name, procs[name], case, args.duration, load_cpus, work)
                    runs.setdefault((case["name"], name), []).append(res)
                    print(f"  round {r + 1} {case['name']:<52} {name:<10} {res['rps']:9.0f} calls/s  "
                          f"p50 {res['p50']:.2f} ms  p99 {res['p99']:.2f} ms  "
                          f"CPU {res['cpu_us_per_call']:.1f} us/call  errors {res['errors']}",
                          file=sys.stderr, flush=True)
        if args.memory_mib:
            for name in PEERS:
                memory[name] = memory_case(name, procs[name], backend, args.memory_mib, load_cpus)
                m = memory[name]
                print(f"  memory: {name:<10} {args.memory_mib} MiB to a slow reader in {m['seconds']:.0f} s: "
                      f"RSS {m['rss_before']:.1f} -> largest {m['rss_max']:.1f} MiB "
                      f"({'ok' if m['ok'] else 'FAILED: ' + m['output']})", file=sys.stderr, flush=True)
    finally:
        for proc in procs.values():
            proc.stop()
        if backends:
            backends.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nSwitchyard gRPC load benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}")
    print("proxy on 1 core (taskset), h2load + tonic backends on the other\n")
    print("| case | proxy | calls/s | p50 ms | p99 ms | proxy CPU us per call | load core busy | errors | Switchyard / this |")
    print("|---|---|---|---|---|---|---|---|---|")
    report = []
    for case in CASES:
        ours = None
        for name in PEERS:
            got = runs.get((case["name"], name), [])
            if not got:
                continue
            med = {k: statistics.median(r[k] for r in got) for k in ("rps", "p50", "p99", "cpu_us_per_call", "load_busy")}
            med["errors"] = sum(r["errors"] for r in got)
            if name == "switchyard":
                ours = med
            ratio = f"{ours['rps'] / med['rps']:.2f}x" if ours and name != "switchyard" and med["rps"] else ""
            print(f"| {case['name']} | {name} | {med['rps']:.0f} | {med['p50']:.2f} | {med['p99']:.2f} | "
                  f"{med['cpu_us_per_call']:.1f} | {med['load_busy']:.2f} | {med['errors']} | {ratio} |")
            report.append({"case": case["name"], "peer": name, **med, "rounds": len(got)})
    if memory:
        print(f"\n{args.memory_mib} MiB server stream to a client reading a 64 KiB message a millisecond (proxy RSS):\n")
        print("| proxy | RSS before MiB | largest RSS meanwhile MiB | growth MiB | stream whole |")
        print("|---|---|---|---|---|")
        for name, m in memory.items():
            print(f"| {name} | {m['rss_before']:.1f} | {m['rss_max']:.1f} | {m['rss_max'] - m['rss_before']:+.1f} | "
                  f"{'yes' if m['ok'] else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": report, "memory": memory}, f, indent=1)


if __name__ == "__main__":
    main()
