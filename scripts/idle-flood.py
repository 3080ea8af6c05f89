#!/usr/bin/env python3
"""Idle-connection run (reliability matrix B7) against the release binary.

Opens N client connections to Switchyard's HTTP port and leaves them idle: half are HTTP/1.1
keep-alive connections that made one request (an unrouted host, answered 503 by Switchyard
itself, so no backend is needed), half are HTTP/2 connections (prior knowledge) that exchanged
SETTINGS and opened no stream. Then it watches `switchyard_connections` on the admin port until
every connection is closed, and prints: connections open at the peak, seconds until all were
closed, the balancer's RSS idle / with the connections open / 5 s after, and its CPU while they sat
idle.

    scripts/idle-flood.py [--connections 10000] [--header-timeout 10] [--rounds 2]

The balancer gets `--max-connections-per-ip` above N (every connection comes from 127.0.0.1)
and the open-file limit this shell allows; the cap it fits to that limit is printed.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from procstat import cpu_seconds, free_port, rss_kib

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def open_connections(admin):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    match = re.search(r'^switchyard_connections\{listener="http",port="\d+"\} (\S+)', text, re.M)
    return int(float(match.group(1))) if match else 0


def read_some(sock):
    sock.settimeout(10)
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("closed before answering")
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--header-timeout", type=float, default=10)
    parser.add_argument("--binary", default="target/release/switchyard")
    parser.add_argument("--rounds", type=int, default=2, help="floods one after the other (RSS must not grow)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="switchyard-idle.")
    apps = os.path.join(work, "apps.json")
    with open(apps, "w") as f:
        f.write('{"apps": []}')
    http, admin, app_id = free_port(), free_port(), free_port()
    log = open(os.path.join(work, "switchyard.log"), "w")
    proc = subprocess.Popen(
        [args.binary, "--apps-file", apps, "--bind-address", "127.0.0.1",
         "--http-port", str(http), "--https-port", "0", "--app-id-port", str(app_id),
         "--admin-port", str(admin), "--header-timeout", str(args.header_timeout),
         "--max-connections-per-ip", str(args.connections * 2)],
        stderr=log,
    )
    try:
        for _ in range(200):
            try:
                open_connections(admin)
                break
            except OSError:
                time.sleep(0.05)
        idle_rss = rss_kib(proc.pid)

        ok = True
        for round_ in range(1, args.rounds + 1):
            print(f"-- round {round_}")
            socks, failed = [], 0
            started = time.monotonic()
            for i in range(args.connections):
                try:
                    s = socket.create_connection(("127.0.0.1", http), timeout=10)
                    if i % 2 == 0:
                        s.sendall(b"GET / HTTP/1.1\r\nHost: nobody.invalid\r\n\r\n")
                        if not read_some(s).startswith(b"HTTP/1.1 503"):
                            failed += 1
                    else:
                        s.sendall(PREFACE + EMPTY_SETTINGS)
                        read_some(s)  # the server's SETTINGS
                    socks.append(s)
                except OSError:
                    failed += 1
            opened = time.monotonic() - started
            peak = open_connections(admin)
            loaded_rss = rss_kib(proc.pid)
            cpu_before = cpu_seconds(proc.pid)
            idle_from = time.monotonic()

            closed_at = None
            while time.monotonic() - idle_from < 4 * args.header_timeout + 30:
                if open_connections(admin) == 0:
                    closed_at = time.monotonic() - idle_from
                    break
                time.sleep(0.25)
            cpu = cpu_seconds(proc.pid) - cpu_before
            waited = time.monotonic() - idle_from
            time.sleep(5)  # let the allocator hand freed memory back before reading RSS
            after_rss = rss_kib(proc.pid)
            # Did the server close them (EOF), as the gauge says?
            eof = 0
            for s in socks:
                s.settimeout(0.5)
                try:
                    while s.recv(65536):
                        pass
                    eof += 1
                except OSError:
                    pass
                s.close()

            with open(log.name) as f:
                lowered = [line.strip() for line in f if "lowered" in line]
            print(f"connections requested      {args.connections} (half HTTP/1.1 keep-alive, half HTTP/2 without streams)")
            print(f"connect/request failures   {failed}")
            print(f"opened in                  {opened:.1f} s")
            print(f"open at the peak           {peak}")
            if lowered:
                print(f"cap                        {lowered[0].split('max_connections=')[1].split()[0]} (fitted to the open-file limit)")
            print(f"all closed after           {closed_at:.1f} s idle (header timeout {args.header_timeout:g} s)" if closed_at is not None else "NOT all closed")
            print(f"closed by the server (EOF) {eof} of {len(socks)}")
            print(f"RSS idle, open, 5 s after {idle_rss / 1024:.1f} / {loaded_rss / 1024:.1f} / {after_rss / 1024:.1f} MiB")
            if peak:
                print(f"RSS per open connection    {(loaded_rss - idle_rss) / peak:.1f} KiB")
            print(f"CPU while idle             {cpu:.2f} s over {waited:.1f} s ({100 * cpu / waited:.1f} %)")
            ok = ok and closed_at is not None and failed == 0
        sys.exit(0 if ok else 1)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
