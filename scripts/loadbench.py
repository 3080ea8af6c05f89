#!/usr/bin/env python3
"""Side-by-side load benchmark: Switchyard against HAProxy (as Marathon-LB configures it, and
with a vhost map and backend keep-alive) and nginx, on the same backends and the same app set,
over loopback, with the same CPU budget. Run through scripts/loadbench.sh, which installs the
tools and builds the release binary.

The backends are nginx (`return 200`), not our code. Each case runs once per proxy per round,
proxies interleaved within a round, so drift in the machine's speed hits every proxy alike; the
figures printed are medians over the rounds and the ratios Switchyard / peer.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HTTP_PORT, H2C_PORT, TCP_PORT, ADMIN_PORT = 18080, 18081, 18090, 18099
HTTPS_PORT = 18443
BACKEND_PORTS = [18001, 18002, 18003, 18004]
BULK_PORT = 18010
APPS = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def vhost(i):
    return f"app{i}.bench.test"


def apps_document(count, tasks_per_app=2):
    """The app set, as Marathon's /v2/apps?embed=apps.tasks answers it."""
    apps = []
    for i in range(count):
        ports = [BACKEND_PORTS[(i + k) % len(BACKEND_PORTS)] for k in range(tasks_per_app)]
        apps.append({
            "id": f"/bench/app{i}",
            "instances": tasks_per_app,
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": vhost(i)},
            "portDefinitions": [{"port": 30000 + i, "protocol": "tcp"}],
            "tasks": [{"id": f"bench_app{i}.{p}", "host": "127.0.0.1", "state": "TASK_RUNNING",
                       "ports": [p]} for p in ports],
        })
    apps.append({
        "id": "/bench/bulk",
        "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "tcp"},
        "portDefinitions": [{"port": TCP_PORT, "protocol": "tcp"}],
        "tasks": [{"id": "bench_bulk.1", "host": "127.0.0.1", "state": "TASK_RUNNING",
                   "ports": [BULK_PORT]}],
    })
    return {"apps": apps}


def site_certificate(work):
    """An ECDSA P-256 certificate for `localhost` and every bench vhost, with its key in the same
    PEM file (HAProxy's `crt`, nginx and Switchyard all read that)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,DNS:*.bench.test",
                    "-keyout", f"{work}/site.key", "-out", f"{work}/site.crt"],
                   check=True, capture_output=True)
    with open(f"{work}/site.pem", "w") as out:
        for part in ("site.crt", "site.key"):
            with open(f"{work}/{part}") as f:
                out.write(f.read())
    os.chmod(f"{work}/site.pem", 0o644)


def backend_nginx_conf(work):
    servers = "\n".join(
        f"""  server {{ listen 127.0.0.1:{p} backlog=4096; root {work}/www;
    location = / {{ return 200 "hello from {p}\\n"; }}
    location = /1k {{ return 200 "{'x' * 1023}\\n"; }}
    location = /1m {{ try_files /1m =404; }} }}"""
        for p in BACKEND_PORTS)
    return f"""worker_processes 1;
pid {work}/backend.pid;
error_log {work}/backend-error.log;
daemon off;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  client_body_temp_path {work}/tmp;
{servers}
  server {{ listen 127.0.0.1:{BULK_PORT}; root {work}/www; location / {{ }} }}
}}
"""


def haproxy_conf(work, flavour, threads):
    """flavour 'mlb': Marathon-LB's template (http-server-close, one ACL per vhost);
    'map': a vhost map and backend keep-alive (HAProxy's best case)."""
    lines = [
        "global",
        f"  nbthread {threads}",
        "  maxconn 4000",
        "  tune.bufsize 16384",
        "defaults",
        "  retries 3",
        "  backlog 10000",
        "  maxconn 4000",
        "  timeout connect 3s",
        "  timeout client 30s",
        "  timeout server 30s",
        "  timeout tunnel 3600s",
        "  timeout http-keep-alive 30s" if flavour == "map" else "  timeout http-keep-alive 1s",
        "  timeout http-request 15s",
        "  option redispatch",
    ]
    if flavour == "mlb":
        lines.append("  option http-server-close")
    lines += ["frontend http_in", f"  bind 127.0.0.1:{HTTP_PORT}",
              f"  bind 127.0.0.1:{H2C_PORT} proto h2",
              f"  bind 127.0.0.1:{HTTPS_PORT} ssl crt {work}/site.pem alpn h2,http/1.1", "  mode http"]
    if flavour == "mlb":
        for i in range(APPS):
            acl = f"host_app{i}"
            lines.append(f"  acl {acl} hdr(host) -i {vhost(i)}")
            lines.append(f"  use_backend app{i} if {acl}")
    else:
        with open(f"{work}/hosts.map", "w") as f:
            for i in range(APPS):
                f.write(f"{vhost(i)} app{i}\n")
        lines.append(f"  use_backend %[req.hdr(host),lower,map({work}/hosts.map)]")
    for i, app in enumerate(apps_document(APPS)["apps"][:APPS]):
        lines += [f"backend app{i}", "  balance roundrobin", "  mode http", "  option forwardfor",
                  "  http-request set-header X-Forwarded-Port %[dst_port]"]
        if flavour == "map":
            lines.append("  http-reuse always")
        for t in app["tasks"]:
            lines.append(f"  server s{t['ports'][0]} 127.0.0.1:{t['ports'][0]}")
    lines += ["listen bulk", f"  bind 127.0.0.1:{TCP_PORT}", "  mode tcp",
              "  option splice-response", "  option splice-request",
              f"  server bulk 127.0.0.1:{BULK_PORT}"]
    return "\n".join(lines) + "\n"


def nginx_conf(work, threads):
    upstreams, servers = [], []
    for i, app in enumerate(apps_document(APPS)["apps"][:APPS]):
        members = " ".join(f"server 127.0.0.1:{t['ports'][0]};" for t in app["tasks"])
        upstreams.append(f"  upstream app{i} {{ {members} keepalive 64; keepalive_requests 1000000; }}")
        servers.append(f"""  server {{ listen 127.0.0.1:{HTTP_PORT}; listen 127.0.0.1:{H2C_PORT} http2;
    listen 127.0.0.1:{HTTPS_PORT} ssl http2;
    server_name {vhost(i)};
    location / {{ proxy_pass http://app{i}; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }}""")
    return f"""worker_processes {threads};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
daemon off;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {work}/tmp;
  proxy_temp_path {work}/tmp;
  ssl_certificate {work}/site.pem;
  ssl_certificate_key {work}/site.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
{chr(10).join(upstreams)}
{chr(10).join(servers)}
}}
"""


class Proc:
    """A started process, its CPU and memory read from /proc (summed over its children)."""

    def __init__(self, argv, cpus, log):
        prefix = ["taskset", "-c", cpus] if cpus else []
        self.popen = subprocess.Popen(prefix + argv, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def pids(self):
        pids, todo = [], [self.popen.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return pids

    def cpu_seconds(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / CLK_TCK

    def rss_mib(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * PAGE
            except OSError:
                pass
        return total / (1 << 20)

    def stop(self):
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


def cpu_ticks(cpus):
    """(busy, total) clock ticks of the listed cores, from /proc/stat."""
    busy = total = 0
    wanted = {f"cpu{c}" for c in cpus.split(",")}
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields[0] in wanted:
                ticks = [int(x) for x in fields[1:]]
                busy += sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
                total += sum(ticks)
    return busy, total


def wait_port(port, host_header=None, deadline=60.0, alive=lambda: True):
    end = time.time() + deadline
    while time.time() < end and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if host_header is None:
                    return
                s.sendall(f"GET / HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not answer" + ("" if alive() else " (the process exited)"))


def parse_wrk(out):
    def dur(text):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
        if not m:
            return float("nan")
        value, unit = m.groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = dur(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))
    p99 = dur(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))
    bad = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)",
                    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        m = re.search(pattern, out)
        if m:
            bad += sum(int(g) for g in m.groups())
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    mib_s = float(transfer.group(1)) * {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}[transfer.group(2)]
    return {"rps": rps, "requests": total, "p50": p50, "p99": p99, "errors": bad, "mib_s": mib_s}


def parse_h2load(out, log_path):
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    total, _, ok = (int(g) for g in m.groups())
    secs = float(re.search(r"finished in ([\d.]+)s", out).group(1))
    times = []
    with open(log_path) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "200":
                times.append(int(parts[2]) / 1000.0)
    times.sort()
    pick = (lambda q: times[min(len(times) - 1, int(q * len(times)))]) if times else (lambda q: float("nan"))
    return {"rps": ok / secs, "requests": ok, "p50": pick(0.5), "p99": pick(0.99),
            "errors": total - ok, "mib_s": 0.0}


class Peer:
    """One proxy under test, on its own ports."""

    def __init__(self, name, index, work, threads):
        self.name, self.work, self.threads = name, work, threads
        offset = 1000 * (index + 1)
        self.http, self.h2c, self.tcp = HTTP_PORT + offset, H2C_PORT + offset, TCP_PORT + offset
        self.https = HTTPS_PORT + offset
        self.proc = None

    def config(self, text, suffix):
        # Each peer gets its own ports: rewrite the shared port numbers.
        for old, new in ((HTTP_PORT, self.http), (H2C_PORT, self.h2c), (TCP_PORT, self.tcp),
                         (HTTPS_PORT, self.https)):
            text = text.replace(f":{old}", f":{new}").replace(f'"port": {old}', f'"port": {new}')
        path = f"{self.work}/{self.name}.{suffix}"
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, binary, cpus, apps_count, tasks_per_app=2):
        log = open(f"{self.work}/{self.name}.log", "w")
        if self.name == "switchyard":
            doc = json.dumps(apps_document(apps_count, tasks_per_app)).replace(f'"port": {TCP_PORT}', f'"port": {self.tcp}')
            path = f"{self.work}/apps.json"
            with open(path, "w") as f:
                f.write(doc)
            argv = [binary, "--apps-file", path, "--bind-address", "127.0.0.1",
                    "--http-port", str(self.http), "--https-port", str(self.https),
                    "--ssl-certs", f"{self.work}/site.pem",
                    "--admin-port", str(self.http + 99), "--app-id-port", str(self.http + 91),
                    "--log-level", "warn", "--threads", str(self.threads)]
            self.h2c = self.http  # HTTP/1.1 and h2c share the HTTP port
        elif self.name.startswith("haproxy"):
            path = self.config(haproxy_conf(self.work, self.name.split("-")[1], self.threads), "cfg")
            argv = ["haproxy", "-db", "-f", path]
        else:
            path = self.config(nginx_conf(self.work, self.threads), "conf")
            argv = ["nginx", "-c", path, "-e", f"{self.work}/nginx-error.log"]
        self.proc = Proc(argv, cpus, log)
        try:
            wait_port(self.http, vhost(1), alive=lambda: self.proc.popen.poll() is None)
        except RuntimeError:
            with open(f"{self.work}/{self.name}.log") as f:
                sys.stderr.write(f.read()[-3000:])
            raise

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def run_load(peer, case, duration, load_cpus, threads):
    """One run of one case against one peer: the load's figures plus the proxy's CPU and RSS."""
    host = vhost(50)
    pin = ["taskset", "-c", load_cpus] if load_cpus else []
    log_path = None
    if case["tool"] == "wrk":
        argv = pin + ["wrk", f"-t{threads}", f"-c{case['conns']}", f"-d{duration}s", "--latency",
                      "-H", f"Host: {host}"] + case.get("extra", []) + \
            [f"https://localhost:{peer.https}{case['path']}" if case.get("tls")
             else f"http://127.0.0.1:{peer.http}{case['path']}"]
    elif case["tool"] == "h2load":
        log_path = f"{peer.work}/h2load.log"
        argv = pin + ["h2load", "-t", str(threads), "-c", str(case["conns"]), "-m", "10",
                      "-D", str(duration), "--log-file", log_path, "-H", f":authority: {host}",
                      f"http://127.0.0.1:{peer.h2c}/"]
    else:  # tcp: bulk download through the TCP-mode service port
        # One transfer straight from the backend first, unmeasured: whatever the previous run
        # left on the load core (the HTTP/2 case's connections closing) settles, and every
        # proxy's transfer starts from the same state. Without it the first proxy of a round
        # was the slow one (Switchyard, first in two of three rounds: 811-1,248 MiB/s there
        # against 1,364-1,817 when second).
        subprocess.run(pin + ["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{BULK_PORT}/bulk"],
                       check=True)
        argv = pin + ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}",
                      f"http://127.0.0.1:{peer.tcp}/bulk"]
    cpu0 = peer.proc.cpu_seconds()
    rss_before = peer.proc.rss_mib()
    load0 = cpu_ticks(load_cpus) if load_cpus else None
    t0 = time.time()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # RSS under load: sampled while the load runs.
    rss = 0.0
    while child.poll() is None:
        rss = max(rss, peer.proc.rss_mib())
        time.sleep(0.25)
    out = child.stdout.read()
    cpu = peer.proc.cpu_seconds() - cpu0
    elapsed = time.time() - t0
    load1 = cpu_ticks(load_cpus) if load_cpus else None
    if case["tool"] == "wrk":
        result = parse_wrk(out)
    elif case["tool"] == "h2load":
        result = parse_h2load(out, log_path)
    else:
        speed, size = out.split()
        result = {"rps": 0.0, "requests": 1, "p50": float("nan"), "p99": float("nan"),
                  "errors": 0 if int(float(size)) == BULK_BYTES else 1,
                  "mib_s": float(speed) / 2**20}
    if result["errors"]:
        sys.stderr.write(f"    {peer.name}: {' '.join(argv)}\n" + "".join(f"    | {l}\n" for l in out.splitlines()[-6:]))
    result["cpu_per_100k"] = cpu / max(result["requests"], 1) * 100_000
    moved_gib = result["mib_s"] * elapsed / 1024
    result["cpu_per_gib"] = cpu / moved_gib if moved_gib else float("nan")
    result["rss_load"] = rss
    result["rss_before"] = rss_before
    # How busy the load generator's core was: near 1.0, the figure is the load core's limit
    # as much as the proxy's.
    result["load_busy"] = (load1[0] - load0[0]) / max(load1[1] - load0[1], 1) if load0 else float("nan")
    return result


BULK_BYTES = 1 << 30
CASES = [
    {"name": "keep-alive, 50 conns", "tool": "wrk", "conns": 50, "path": "/"},
    {"name": "keep-alive, 1000 conns", "tool": "wrk", "conns": 1000, "path": "/"},
    {"name": "new connection per request", "tool": "wrk", "conns": 50, "path": "/",
     "extra": ["-H", "Connection: close"]},
    {"name": "1 KiB responses", "tool": "wrk", "conns": 50, "path": "/1k"},
    {"name": "1 MiB responses", "tool": "wrk", "conns": 10, "path": "/1m", "unit": "MiB/s"},
    {"name": "HTTP/2 (h2load, 50 conns x 10 streams)", "tool": "h2load", "conns": 50},
    {"name": "TCP bulk, 1 GiB", "tool": "tcp", "unit": "MiB/s", "peers": ("switchyard", "haproxy-mlb")},
    # TLS 1.3, ECDSA P-256, SNI `localhost` (a name, not an address), as a site's certificate.
    {"name": "HTTPS keep-alive, 50 conns", "tool": "wrk", "conns": 50, "path": "/", "tls": True},
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="target/release/switchyard")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per run")
    ap.add_argument("--cores", default="1,2", help="variants: 1 = proxy on core 0, load and backends on core 1; 2 = two threads each, unpinned")
    ap.add_argument("--cases", default="", help="comma-separated case numbers (1-based); default all")
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="switchyard-loadbench-")
    os.chmod(work, 0o755)  # nginx's workers run as another user
    os.makedirs(f"{work}/www"), os.makedirs(f"{work}/tmp")
    site_certificate(work)
    with open(f"{work}/www/1m", "wb") as f:
        f.write(b"x" * (1 << 20))
    with open(f"{work}/www/bulk", "wb") as f:
        f.truncate(BULK_BYTES)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "variants": []}
    wanted = {int(c) for c in args.cases.split(",") if c}
    cases = [c for i, c in enumerate(CASES, 1) if not wanted or i in wanted]
    backends, peers = None, []
    try:
        for variant in [int(v) for v in args.cores.split(",")]:
            pinned = variant == 1
            proxy_cpus, load_cpus = ("0", "1") if pinned else (None, None)
            threads = 1 if pinned else 2
            backends = Proc(["nginx", "-c", write(f"{work}/backends.conf", backend_nginx_conf(work)),
                             "-e", f"{work}/backend-error.log"], load_cpus, open(f"{work}/backends.log", "w"))
            for p in BACKEND_PORTS:
                # A backend that could not bind (the port taken) exits: say so, never measure
                # against whatever else listens there.
                wait_port(p, alive=lambda: backends.popen.poll() is None)
            peers = [Peer(n, i, work, threads) for i, n in enumerate(["switchyard", "haproxy-mlb", "haproxy-map", "nginx"])]
            for peer in peers:
                peer.start(binary, proxy_cpus, APPS)
            idle = {p.name: p.proc.rss_mib() for p in peers}
            if any(c["tool"] == "tcp" for c in cases):
                # The first read of the 1 GiB file fills the backend's page cache: done once
                # here, unmeasured, so that no proxy's first round pays for it.
                subprocess.run((["taskset", "-c", load_cpus] if load_cpus else []) +
                               ["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{BULK_PORT}/bulk"],
                               check=True)
            runs = {}
            # Variant 2 (both cores shared) runs the keep-alive and new-connection cases only.
            variant_cases = cases if pinned else [c for c in cases if c["name"].startswith(("keep-alive, 50", "new conn"))]
            for r in range(args.rounds):
                for case in variant_cases:
                    order = peers[r % len(peers):] + peers[:r % len(peers)]
                    for peer in order:
                        if peer.name not in case.get("peers", [p.name for p in peers]):
                            continue
                        res = run_load(peer, case, args.duration, load_cpus, threads)
                        runs.setdefault((case["name"], peer.name), []).append(res)
                        print(f"  [{variant} core(s)] round {r + 1} {case['name']:<42} {peer.name:<12} "
                              f"{fmt_main(case, res)}", file=sys.stderr, flush=True)
            for peer in peers:
                peer.stop()
            if "rss_2500_apps_mib" not in report:
                report["rss_2500_apps_mib"] = rss_with_apps(binary, work, 2500)
            if pinned and "memory_per_connection" not in report:
                report["memory_per_connection"] = memory_per_connection(binary, work, proxy_cpus, load_cpus)
            backends.stop()
            backends = None
            report["variants"].append(summarise(variant, variant_cases, peers, runs, idle))
        print_report(report)
        if args.json:
            write(args.json, json.dumps(report, indent=1))
    finally:
        for peer in peers:
            peer.stop()
        if backends:
            backends.stop()
        shutil.rmtree(work, ignore_errors=True)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, {os.uname().release}"


def fmt_main(case, res):
    if case.get("unit") == "MiB/s":
        return f"{res['mib_s']:10.1f} MiB/s  errors {res['errors']}"
    return f"{res['rps']:10.0f} req/s  p50 {res['p50']:.2f} ms  p99 {res['p99']:.2f} ms  errors {res['errors']}"


def summarise(variant, cases, peers, runs, idle):
    rows = []
    for case in cases:
        for peer in peers:
            got = runs.get((case["name"], peer.name))
            if not got:
                continue
            med = {k: statistics.median(r[k] for r in got) for k in got[0]}
            med["errors"] = sum(r["errors"] for r in got)
            med["rss_growth_max"] = max(r["rss_load"] - r["rss_before"] for r in got)
            # Switchyard / this peer round by round (the two measured within seconds of each
            # other), then the median: drift between rounds cancels out of it.
            ours = runs.get((case["name"], "switchyard"), [])
            key = "mib_s" if case.get("unit") == "MiB/s" else "rps"
            pairs = [a[key] / b[key] for a, b in zip(ours, got) if b[key]]
            med["paired_ratio"] = statistics.median(pairs) if pairs and peer.name != "switchyard" else float("nan")
            rows.append({"case": case["name"], "unit": case.get("unit", "req/s"), "peer": peer.name,
                         **med, "rounds": len(got)})
    return {"cores": variant, "idle_rss_mib": idle, "rows": rows}


def rss_with_apps(binary, work, count):
    """Switchyard's RSS, idle, serving `count` apps x 3 tasks."""
    peer = Peer("switchyard", 7, work, 1)
    # The table is swapped in whole: once one route answers, all of it is built.
    try:
        peer.start(binary, None, count, tasks_per_app=3)
        return peer.proc.rss_mib()
    finally:
        peer.stop()


def memory_per_connection(binary, work, proxy_cpus, load_cpus):
    """RSS per extra active connection: each proxy started afresh (nothing earlier cases left in
    its heap), wrk keep-alive with 50 then 1,000 connections for 3 s each; the largest RSS
    sample of each, and (RSS at 1,000 - RSS at 50) / 950."""
    result = {}
    for i, name in enumerate(["switchyard", "haproxy-map", "nginx"]):
        peer = Peer(name, 10 + i, work, 1)
        try:
            peer.start(binary, proxy_cpus, APPS)
            rss = {conns: run_load(peer, {"tool": "wrk", "conns": conns, "path": "/"}, 3, load_cpus, 1)["rss_load"]
                   for conns in (50, 1000)}
            result[name] = {"rss_50": rss[50], "rss_1000": rss[1000],
                            "kib_per_conn": (rss[1000] - rss[50]) * 1024 / 950}
        finally:
            peer.stop()
    return result


def verdicts(report):
    """Issue 8's targets against this run (variant 1, one core each): (target, figure, met).
    A ratio target is met when both the ratio of medians and the median of paired rounds
    reach it."""
    v1 = next((v for v in report["variants"] if v["cores"] == 1), None)
    if not v1:
        return []
    rows = {(r["case"], r["peer"]): r for r in v1["rows"]}
    out = []

    def ratio(case, peer, target):
        ours, theirs = rows.get((case, "switchyard")), rows.get((case, peer))
        if not (ours and theirs):
            return None
        key = "mib_s" if ours["unit"] == "MiB/s" else "rps"
        medians = ours[key] / theirs[key]
        paired = theirs["paired_ratio"]
        return f"{medians:.2f}x / {paired:.2f}x", medians >= target and paired >= target

    case = "keep-alive, 50 conns"
    for peer in ("haproxy-map", "nginx"):
        got = ratio(case, peer, 1.1)
        if got:
            out.append((f"{case}: >= 1.1x {peer} (medians / paired)", *got))
    ours = rows.get((case, "switchyard"))
    if ours:
        worst = max(rows[(case, p)]["p99"] for p in ("haproxy-map", "nginx") if (case, p) in rows)
        best_peer = min(rows[(case, p)]["p99"] for p in ("haproxy-map", "nginx") if (case, p) in rows)
        out.append((f"{case}: p99 no worse than either", f"{ours['p99']:.2f} ms vs {best_peer:.2f}-{worst:.2f}",
                    ours["p99"] <= best_peer))
    got = ratio("new connection per request", "haproxy-map", 1.0)
    if got:
        out.append(("new connection per request: >= 1.0x HAProxy map", *got))
    got = ratio("TCP bulk, 1 GiB", "haproxy-mlb", 1.0)
    if got:
        out.append(("TCP bulk: >= 1.0x HAProxy mode tcp", *got))
    tcp = rows.get(("TCP bulk, 1 GiB", "switchyard"))
    if tcp:
        out.append(("RSS flat while streaming 1 GiB (largest growth, < 1 MiB)",
                    f"+{tcp['rss_growth_max']:.1f} MiB", tcp["rss_growth_max"] < 1.0))
    out.append(("idle RSS with 2,500 apps < 30 MiB", f"{report['rss_2500_apps_mib']:.1f} MiB",
                report["rss_2500_apps_mib"] < 30))
    per_conn = report.get("memory_per_connection", {}).get("switchyard")
    if per_conn:
        out.append(("<= 10 KiB per extra active connection", f"{per_conn['kib_per_conn']:.1f} KiB",
                    per_conn["kib_per_conn"] <= 10))
    return out


def print_report(report):
    print(f"\nSwitchyard load benchmark, {report['date']}; {report['machine']}")
    for v in report["variants"]:
        label = "proxy on 1 core (taskset), load + backends on the other" if v["cores"] == 1 \
            else "2 threads per proxy, all unpinned"
        print(f"\n## {label}\nidle RSS (MiB): " + ", ".join(f"{k} {x:.1f}" for k, x in v["idle_rss_mib"].items()))
        print(f"\n| case | proxy | throughput | p50 ms | p99 ms | proxy CPU s per 100k req (or per GiB) | RSS under load MiB | load core busy | errors | Switchyard / this (medians) | (paired rounds) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        by_case = {}
        for row in v["rows"]:
            by_case.setdefault(row["case"], []).append(row)
        for case, rows in by_case.items():
            ours = next((r for r in rows if r["peer"] == "switchyard"), None)
            for r in rows:
                key = "mib_s" if r["unit"] == "MiB/s" else "rps"
                ratio = f"{ours[key] / r[key]:.2f}x" if ours and r[key] and r["peer"] != "switchyard" else ""
                paired = f"{r['paired_ratio']:.2f}x" if r["paired_ratio"] == r["paired_ratio"] else ""
                busy = f"{r['load_busy']:.2f}" if r["load_busy"] == r["load_busy"] else ""
                thr = f"{r['mib_s']:.0f} MiB/s" if key == "mib_s" else f"{r['rps']:.0f} req/s"
                cpu = f"{r['cpu_per_gib']:.2f} s/GiB" if key == "mib_s" else f"{r['cpu_per_100k']:.2f}"
                print(f"| {case} | {r['peer']} | {thr} | {r['p50']:.2f} | {r['p99']:.2f} | {cpu} | "
                      f"{r['rss_load']:.1f} | {busy} | {r['errors']} | {ratio} | {paired} |")
    print(f"\nSwitchyard idle RSS with 2,500 apps x 3 tasks: {report['rss_2500_apps_mib']:.1f} MiB")
    if "memory_per_connection" in report:
        print("\nRSS per extra active keep-alive connection (each proxy fresh, one core; MiB at 50 and 1,000 connections):")
        for name, m in report["memory_per_connection"].items():
            print(f"  {name:<12} {m['rss_50']:.1f} -> {m['rss_1000']:.1f} MiB: {m['kib_per_conn']:.1f} KiB per connection")
    checks = verdicts(report)
    if checks:
        print("\nTargets (issue 8), this run; change -> routed is `cargo bench --bench reconfigure`:\n")
        print("| target | this run | met |\n|---|---|---|")
        for target, figure, met in checks:
            print(f"| {target} | {figure} | {'yes' if met else 'no'} |")


if __name__ == "__main__":
    main()
