#!/usr/bin/env python3
"""HTTP/2 PING and SETTINGS floods with a request stream held open (reliability matrix B6),
against the release binary, measuring its memory.

h2 answers every PING and SETTINGS frame and never ends a connection for them, so what ends
such a flood is the proxy's own limits: the held request's body timeout, then the idle GOAWAY.
For each flood this prints the frames sent before the connection ended, how it ended, the
seconds it took, and the balancer's RSS before and at its highest during the flood.

    scripts/h2-floods.py [--timeout 2] [--binary target/release/switchyard]
"""

import argparse
import socket
import struct
import threading
import time

from procstat import rss_kib, start_balancer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    # Literal header field without indexing, new name (RFC 7541 6.2.2); short strings only.
    return bytes([0, len(name)]) + name + bytes([len(value)]) + value


POST = b"".join(literal(n, v) for n, v in [
    (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/held"), (b":authority", b"held.test")])


def flood(port, pid, make):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(PREFACE + frame(4, 0, 0, b"") + frame(1, 4, 1, POST))  # HEADERS, no END_STREAM
    ended = {"goaway": None, "closed": False}

    def reader():
        buf = b""
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                ended["closed"] = True
                return
            buf += chunk
            while len(buf) >= 9:
                length = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + length:
                    break
                if buf[3] == 7 and length >= 8:
                    ended["goaway"] = int.from_bytes(buf[13:17], "big")
                buf = buf[9 + length:]

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    started, sent, peak = time.monotonic(), 0, rss_kib(pid)
    batch = b"".join(make(i) for i in range(1000))
    while not ended["closed"] and time.monotonic() - started < 120:
        try:
            sock.sendall(batch)
        except OSError:
            break
        sent += 1000
        if sent % 50000 == 0:
            peak = max(peak, rss_kib(pid))
    thread.join(10)
    sock.close()
    return sent, ended, time.monotonic() - started, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=2)
    parser.add_argument("--binary", default="target/release/switchyard")
    args = parser.parse_args()
    # A backend that accepts and reads, and never answers: the request waits on its body.
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(64)
    held = []
    threading.Thread(target=lambda: [held.append(backend.accept()) for _ in iter(int, 1)],
                     daemon=True).start()
    proc, http = start_balancer(
        args.binary, "held", backend.getsockname()[1],
        ["--header-timeout", str(args.timeout), "--client-body-timeout", str(args.timeout)])
    try:
        before = rss_kib(proc.pid)
        for name, make in [("PING", lambda i: frame(6, 0, 0, struct.pack(">Q", i))),
                           ("SETTINGS", lambda i: frame(4, 0, 0, b"\x00\x04\x00\x00\xff\xff"))]:
            sent, ended, took, peak = flood(http, proc.pid, make)
            how = f"GOAWAY({ended['goaway']})" if ended["goaway"] is not None else "no GOAWAY"
            how += ", closed" if ended["closed"] else ", NOT closed"
            print(f"{name:9} flood, a stream held open: {sent} frames sent, {how} after {took:.1f} s; "
                  f"RSS before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB "
                  f"(+{(peak - before) / 1024:.1f})")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
