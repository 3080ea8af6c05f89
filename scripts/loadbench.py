#!/usr/bin/env python3
"""Side-by-side load benchmark: Switchyard against HAProxy (as Marathon-LB configures it, and
with a vhost map and backend keep-alive), nginx and a Pingora load balancer, on the same
backends and the same app set, over loopback, with the same CPU budget. Run through
scripts/loadbench.sh, which installs the tools and builds the release binary; this script
builds the TLS handshake client (benches/handshake_load.rs) and the Pingora peer.

The backends are nginx (`return 200`), not our code. Each case runs once per proxy per round,
proxies interleaved within a round, so drift in the machine's speed hits every proxy alike; the
figures printed are medians over the rounds and the ratios Switchyard / peer.
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from loadbench_idle import open_idle
from loadbench_report import print_report

HTTP_PORT, H2C_PORT, TCP_PORT, ADMIN_PORT = 18080, 18081, 18090, 18099
HTTPS_PORT = 18443
BACKEND_PORTS = [18001, 18002, 18003, 18004]
BULK_PORT = 18010
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


CERT_KEYS = {"ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
             "rsa": ["-newkey", "rsa:2048"]}


def site_certificate(work, kind="ecdsa"):
    """A certificate for `localhost` and every bench vhost as a real site has one (`ecdsa`: P-256;
    `rsa`: RSA 2048): {work}/{kind}.crt and .key, and both in {kind}.pem (HAProxy's `crt`, nginx
    and Switchyard read that; Pingora the two files)."""
    subprocess.run(["openssl", "req", "-x509", *CERT_KEYS[kind],
                    "-nodes", "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,DNS:*.bench.test",
                    "-keyout", f"{work}/{kind}.key", "-out", f"{work}/{kind}.crt"],
                   check=True, capture_output=True)
    with open(f"{work}/{kind}.pem", "w") as out:
        for part in (f"{kind}.crt", f"{kind}.key"):
            with open(f"{work}/{part}") as f:
                out.write(f.read())
    for part in ("crt", "key", "pem"):
        os.chmod(f"{work}/{kind}.{part}", 0o644)


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


def haproxy_conf(work, flavour, threads, cert="ecdsa"):
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
              f"  bind 127.0.0.1:{HTTPS_PORT} ssl crt {work}/{cert}.pem alpn h2,http/1.1", "  mode http"]
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


def nginx_conf(work, threads, cert="ecdsa"):
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
  ssl_certificate {work}/{cert}.pem;
  ssl_certificate_key {work}/{cert}.pem;
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
    p999 = re.search(r"^p99\.9 (\d+)$", out, re.M)  # printed by p999.lua, in microseconds
    return {"rps": rps, "requests": total, "p50": p50, "p99": p99, "errors": bad, "mib_s": mib_s,
            "p999": int(p999.group(1)) / 1000.0 if p999 else float("nan")}


# wrk's `done` hook: the 99.9th percentile, which --latency does not print.
WRK_P999_LUA = """done = function(summary, latency, requests)
  io.write(string.format("p99.9 %d\\n", latency:percentile(99.9)))
end
"""


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
    return {"rps": ok / secs, "requests": ok, "p50": pick(0.5), "p99": pick(0.99), "p999": pick(0.999),
            "errors": total - ok, "mib_s": 0.0}


def parse_handshakes(out):
    """benches/handshake_load.rs's JSON line: one request per connection, so req/s = handshakes/s."""
    got = json.loads(out.strip().splitlines()[-1])
    nan = lambda v: float("nan") if v is None else v
    return {"rps": got["per_s"], "requests": got["handshakes"], "p50": nan(got["p50_ms"]),
            "p99": nan(got["p99_ms"]), "p999": nan(got["p999_ms"]), "errors": got["errors"],
            "mib_s": 0.0, "full": got["full"], "resumed": got["resumed"], "hello_retries": got["hello_retries"]}


def failed_run(out):
    """A run whose tool printed no figures (the peer refused or broke the protocol): one error."""
    return {"rps": 0.0, "requests": 0, "p50": float("nan"), "p99": float("nan"), "p999": float("nan"),
            "errors": 1, "mib_s": 0.0}


class Peer:
    """One proxy under test, on its own ports, serving the `cert` certificate (ecdsa or rsa).
    `switchyard-t1` is Switchyard with one thread, beside the two-thread one in variant 2."""

    def __init__(self, name, index, work, threads, cert="ecdsa"):
        self.name, self.work, self.threads, self.cert = name, work, threads, cert
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
        pem = f"{self.work}/{self.cert}.pem"
        if self.name.startswith("switchyard"):
            doc = json.dumps(apps_document(apps_count, tasks_per_app)).replace(f'"port": {TCP_PORT}', f'"port": {self.tcp}')
            path = f"{self.work}/{self.name}-apps.json"
            with open(path, "w") as f:
                f.write(doc)
            argv = [binary, "--apps-file", path, "--bind-address", "127.0.0.1",
                    "--http-port", str(self.http), "--https-port", str(self.https),
                    "--ssl-certs", pem,
                    "--admin-port", str(self.http + 99), "--app-id-port", str(self.http + 91),
                    "--log-level", "warn", "--threads", str(self.threads)]
            self.h2c = self.http  # HTTP/1.1 and h2c share the HTTP port
        elif self.name.startswith("haproxy"):
            path = self.config(haproxy_conf(self.work, self.name.split("-")[1], self.threads, self.cert), "cfg")
            argv = ["haproxy", "-db", "-f", path]
        elif self.name == "pingora":
            path = write(f"{self.work}/pingora-routes.txt", "".join(
                f"{vhost(i)} " + " ".join(f"127.0.0.1:{t['ports'][0]}" for t in app["tasks"]) + "\n"
                for i, app in enumerate(apps_document(apps_count, tasks_per_app)["apps"][:apps_count])))
            argv = [BUILT["pingora"], path, str(self.threads), f"127.0.0.1:{self.http}",
                    f"127.0.0.1:{self.https}", f"{self.work}/{self.cert}.crt", f"{self.work}/{self.cert}.key"]
            self.h2c = self.http  # h2c is told from HTTP/1.1 by its preface on the HTTP port
        else:
            path = self.config(nginx_conf(self.work, self.threads, self.cert), "conf")
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
        # The script only adds a `done` hook that prints p99.9 (requests stay wrk's static ones).
        argv = pin + ["wrk", f"-t{threads}", f"-c{case['conns']}", f"-d{duration}s", "--latency",
                      "-s", f"{peer.work}/p999.lua", "-H", f"Host: {host}"] + case.get("extra", []) + \
            [f"https://localhost:{peer.https}{case['path']}" if case.get("tls")
             else f"http://127.0.0.1:{peer.http}{case['path']}"]
    elif case["tool"] == "h2load":
        log_path = f"{peer.work}/h2load.log"
        argv = pin + ["h2load", "-t", str(threads), "-c", str(case["conns"]), "-m", "10",
                      "-D", str(duration), "--log-file", log_path, "-H", f":authority: {host}",
                      f"https://localhost:{peer.https}/" if case.get("tls") else f"http://127.0.0.1:{peer.h2c}/"]
    elif case["tool"] == "handshake":
        # Our own client (benches/handshake_load.rs): wrk resumes the last session on reconnect.
        argv = pin + [BUILT["handshake_load"], "--addr", f"127.0.0.1:{peer.https}", "--sni", "localhost",
                      "--host", host, "--conns", str(case["conns"]), "--seconds", str(duration),
                      "--threads", str(threads)] + (["--resume"] if case.get("resume") else [])
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
    tool0 = children_cpu_seconds()
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
    tool_cpu = children_cpu_seconds() - tool0
    try:
        if case["tool"] == "wrk":
            result = parse_wrk(out)
        elif case["tool"] == "h2load":
            result = parse_h2load(out, log_path)
        elif case["tool"] == "handshake":
            result = parse_handshakes(out)
        else:
            speed, size = out.split()
            result = {"rps": 0.0, "requests": 1, "p50": float("nan"), "p99": float("nan"), "p999": float("nan"),
                      "errors": 0 if int(float(size)) == BULK_BYTES else 1,
                      "mib_s": float(speed) / 2**20}
    except (AttributeError, ValueError, KeyError, IndexError, OSError):
        result = failed_run(out)
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
    # The load tool's own CPU per request (per handshake): what bounds a ratio where the load
    # core is full (the backends' share of that core is not in it).
    result["load_cpu_per_100k"] = tool_cpu / max(result["requests"], 1) * 100_000
    return result


def children_cpu_seconds():
    """User + system CPU of this script's reaped children (the load tool, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


BULK_BYTES = 1 << 30
# "v2": the case runs in variant 2 (two threads each) too. "cert": the certificate the peers
# serve (default ecdsa); cases on another one run after the others, the peers restarted with it.
CASES = [
    {"name": "keep-alive, 50 conns", "tool": "wrk", "conns": 50, "path": "/", "v2": True},
    {"name": "keep-alive, 1000 conns", "tool": "wrk", "conns": 1000, "path": "/"},
    {"name": "new connection per request", "tool": "wrk", "conns": 50, "path": "/",
     "extra": ["-H", "Connection: close"], "v2": True},
    {"name": "1 KiB responses", "tool": "wrk", "conns": 50, "path": "/1k"},
    {"name": "1 MiB responses", "tool": "wrk", "conns": 10, "path": "/1m", "unit": "MiB/s"},
    {"name": "HTTP/2 (h2load, 50 conns x 10 streams)", "tool": "h2load", "conns": 50, "v2": True},
    {"name": "TCP bulk, 1 GiB", "tool": "tcp", "unit": "MiB/s", "peers": ("switchyard", "haproxy-mlb")},
    # TLS 1.3, ECDSA P-256, SNI `localhost` (a name, not an address), as a site's certificate.
    {"name": "HTTPS keep-alive, 50 conns", "tool": "wrk", "conns": 50, "path": "/", "tls": True, "v2": True},
    # A new TLS connection per request (benches/handshake_load.rs, 50 loops): no session kept,
    # so every handshake is full; then with a session store, so each one resumes if the peer lets it.
    {"name": "HTTPS new TLS conn per request, full handshake", "tool": "handshake", "conns": 50,
     "unit": "handshakes/s"},
    {"name": "HTTPS new TLS conn per request, resumed", "tool": "handshake", "conns": 50, "resume": True,
     "unit": "handshakes/s"},
    {"name": "HTTP/2 over TLS (h2load, 50 conns x 10 streams)", "tool": "h2load", "conns": 50, "tls": True,
     "v2": True},
    {"name": "HTTPS new TLS conn per request, full handshake, RSA 2048", "tool": "handshake", "conns": 50,
     "unit": "handshakes/s", "cert": "rsa"},
    {"name": "HTTPS new TLS conn per request, resumed, RSA 2048", "tool": "handshake", "conns": 50,
     "unit": "handshakes/s", "resume": True, "cert": "rsa"},
]
# The peers, in variant 1; variant 2 adds Switchyard with one thread (`switchyard-t1`) beside the
# two-thread one, for CPU per request at --threads 2 against --threads 1 under the same load.
PEERS = ["switchyard", "haproxy-mlb", "haproxy-map", "nginx", "pingora"]
# What main() built: the handshake client, and the Pingora peer (None when it did not build).
BUILT = {"handshake_load": None, "pingora": None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="target/release/switchyard")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per run")
    ap.add_argument("--cores", default="1,2", help="variants: 1 = proxy on core 0, load and backends on core 1; 2 = two threads each, unpinned")
    ap.add_argument("--cases", default="", help="comma-separated case numbers (1-based); default all")
    ap.add_argument("--json", help="write every run's figures here")
    ap.add_argument("--no-pingora", action="store_true", help="leave the Pingora peer out (no build)")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory figures (per connection, 2,500 apps)")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    wanted = {int(c) for c in args.cases.split(",") if c}
    cases = [c for i, c in enumerate(CASES, 1) if not wanted or i in wanted]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "variants": []}
    if any(c["tool"] == "handshake" for c in cases):
        BUILT["handshake_load"] = build_handshake_client()
    report["pingora"] = {"error": "left out (--no-pingora)"} if args.no_pingora else build_pingora()
    BUILT["pingora"] = report["pingora"].get("binary")
    work = tempfile.mkdtemp(prefix="switchyard-loadbench-")
    os.chmod(work, 0o755)  # nginx's workers run as another user
    os.makedirs(f"{work}/www"), os.makedirs(f"{work}/tmp")
    for kind in CERT_KEYS:
        site_certificate(work, kind)
    write(f"{work}/p999.lua", WRK_P999_LUA)
    with open(f"{work}/www/1m", "wb") as f:
        f.write(b"x" * (1 << 20))
    with open(f"{work}/www/bulk", "wb") as f:
        f.truncate(BULK_BYTES)
    names = [n for n in PEERS if n != "pingora" or BUILT["pingora"]]
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
            variant_names = names + ([] if pinned else ["switchyard-t1"])
            if any(c["tool"] == "tcp" for c in cases):
                # The first read of the 1 GiB file fills the backend's page cache: done once
                # here, unmeasured, so that no proxy's first round pays for it.
                subprocess.run((["taskset", "-c", load_cpus] if load_cpus else []) +
                               ["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{BULK_PORT}/bulk"],
                               check=True)
            runs, idle = {}, {}
            # Variant 2 (both cores shared) runs the cases marked "v2".
            variant_cases = cases if pinned else [c for c in cases if c.get("v2")]
            # One group of cases per certificate: the peers start with it, serve every round of
            # those cases, and stop.
            for cert in dict.fromkeys(c.get("cert", "ecdsa") for c in variant_cases):
                group = [c for c in variant_cases if c.get("cert", "ecdsa") == cert]
                peers = [Peer(n, i, work, 1 if pinned or n == "switchyard-t1" else threads, cert)
                         for i, n in enumerate(variant_names)]
                for peer in peers:
                    peer.start(binary, proxy_cpus, APPS)
                idle = idle or {p.name: p.proc.rss_mib() for p in peers}
                for r in range(args.rounds):
                    for case in group:
                        order = peers[r % len(peers):] + peers[:r % len(peers)]
                        for peer in order:
                            if peer.name not in case.get("peers", [p.name for p in peers]):
                                continue
                            res = run_load(peer, case, args.duration, load_cpus, threads)
                            runs.setdefault((case["name"], peer.name), []).append(res)
                            print(f"  [{variant} core(s)] round {r + 1} {case['name']:<42} {peer.name:<13} "
                                  f"{fmt_main(case, res)}", file=sys.stderr, flush=True)
                for peer in peers:
                    peer.stop()
            if "rss_2500_apps_mib" not in report and not args.no_memory:
                report["rss_2500_apps_mib"] = rss_with_apps(binary, work, 2500)
            if pinned and "memory_per_connection" not in report and not args.no_memory:
                report["memory_per_connection"] = memory_per_connection(binary, work, proxy_cpus, load_cpus)
                report["memory_per_idle_tls"] = memory_per_idle_tls(binary, work, proxy_cpus)
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


def build_handshake_client():
    """Builds benches/handshake_load.rs (release) and returns its executable's path."""
    out = subprocess.run(["cargo", "build", "--release", "--locked", "--bench", "handshake_load",
                          "--message-format", "json-render-diagnostics"],
                         cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "handshake_load" \
                and msg.get("executable"):
            return msg["executable"]
    raise RuntimeError("cargo built no handshake_load executable")


# The Pingora peer's project: scripts/pingora-peer.rs as its main.rs, this manifest, and its own
# target directory under ours, kept between runs (the first build takes a while).
PINGORA_MANIFEST = """[package]
name = "pingora-peer"
version = "0.1.0"
edition = "2021"

[dependencies]
async-trait = "0.1"
pingora-core = { version = "0.9", features = ["rustls"] }
pingora-http = "0.9"
pingora-load-balancing = { version = "0.9", features = ["rustls"] }
pingora-proxy = { version = "0.9", features = ["rustls"] }

[profile.release]
debug = 0
"""
PINGORA_BUILD_TIMEOUT = 3600


def build_pingora():
    """Builds the Pingora peer; {"binary": path} or {"error": why}, the build's own words."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    root = os.path.abspath(os.path.join(target, "pingora-peer"))
    os.makedirs(f"{root}/src", exist_ok=True)
    with open(os.path.join(REPO, "scripts", "pingora-peer.rs")) as f:
        source = f.read()
    # Rewritten only when changed: cargo then finds nothing to do on later runs.
    for path, text in ((f"{root}/Cargo.toml", PINGORA_MANIFEST), (f"{root}/src/main.rs", source)):
        if not os.path.exists(path) or open(path).read() != text:
            write(path, text)
    print(f"building the Pingora peer in {root} (the first build takes many minutes)", file=sys.stderr, flush=True)
    env = dict(os.environ, CARGO_TARGET_DIR=f"{root}/target")
    try:
        with open(f"{root}/build.log", "w") as log:
            done = subprocess.run(["cargo", "build", "--release"], cwd=root, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=PINGORA_BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"the build took more than {PINGORA_BUILD_TIMEOUT} s ({root}/build.log)"}
    if done.returncode != 0:
        with open(f"{root}/build.log") as f:
            lines = f.read().splitlines()
        errors = [l for l in lines if l.startswith("error") or "panicked" in l or "is `" in l]
        return {"error": " / ".join((errors or lines)[-4:]) + f" ({root}/build.log)"}
    return {"binary": f"{root}/target/release/pingora-peer"}


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
    extra = f"  full/resumed {res['full']}/{res['resumed']}" if "full" in res else ""
    return f"{res['rps']:10.0f} {case.get('unit', 'req/s')}  p50 {res['p50']:.2f} ms  p99 {res['p99']:.2f} ms  errors {res['errors']}{extra}"


def summarise(variant, cases, peers, runs, idle):
    rows = []
    for case in cases:
        for peer in peers:
            got = runs.get((case["name"], peer.name))
            if not got:
                continue
            keys = dict.fromkeys(k for r in got for k in r)  # a failed run lacks some keys
            med = {k: statistics.median(r[k] for r in got if k in r) for k in keys}
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
    for i, name in enumerate(memory_peers()):
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


def memory_peers():
    return [n for n in ("switchyard", "haproxy-map", "nginx", "pingora") if n != "pingora" or BUILT["pingora"]]


IDLE_BASE, IDLE_MORE = 100, 800


def established_to(port):
    """Established TCP connections whose local port is `port`: the server's ends."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         check=True, capture_output=True, text=True).stdout
    return len(out.splitlines())


def memory_per_idle_tls(binary, work, proxy_cpus):
    """RSS per idle TLS connection (HTTP/1.1) and per idle HTTP/2 connection over TLS: each
    proxy started afresh, IDLE_BASE connections opened (one request each, which finishes the
    handshake and the first exchange), RSS read, IDLE_MORE more opened, RSS read again; the
    difference / IDLE_MORE. HTTP/2 needs Python's `h2` package (scripts/loadbench.sh installs it).
    Below Switchyard's 1,000 connections per client address, and quicker than any idle timeout."""
    result = {}
    for i, name in enumerate(memory_peers()):
        got = {}
        for proto in ("tls", "h2"):
            peer = Peer(name, 10 + i, work, 1)
            held = []
            try:
                peer.start(binary, proxy_cpus, APPS)
                held += open_idle(peer.https, IDLE_BASE, proto, vhost(50))
                base = peer.proc.rss_mib()
                held += open_idle(peer.https, IDLE_MORE, proto, vhost(50))
                more = peer.proc.rss_mib()
                # Every connection must still be open when RSS is read (none timed out idle).
                accepted = established_to(peer.https)
                if accepted < len(held):
                    raise RuntimeError(f"{accepted} connections open at the proxy, fewer than the {len(held)} held")
                got[proto] = {"rss_base": base, "rss_more": more, "kib_per_conn": (more - base) * 1024 / IDLE_MORE}
            except (OSError, RuntimeError, ImportError) as e:
                got[proto] = {"error": f"{type(e).__name__}: {e}"}
            finally:
                for sock in held:
                    sock.close()
                peer.stop()
        result[name] = got
    return result


if __name__ == "__main__":
    main()
