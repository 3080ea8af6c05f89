#!/usr/bin/env python3
"""A backend that answers with interim responses without end (reliability matrix G1), against
the release binary, measuring its memory on both HTTP/1 paths.

The backend answers each request with `HTTP/1.1 100 Continue` over and over for `--seconds`,
then a 200. For each path (the native one, then hyper's with `--hyper-http1`) this prints the
status the client got, how long it took, the interim bytes the backend managed to send, and the
balancer's RSS before, at its highest during the flood, and after.

    scripts/interim-flood.py [--seconds 8] [--binary target/release/switchyard]
"""

import argparse
import socket
import threading
import time

from procstat import rss_kib, start_balancer

INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n" * 4096


def backend(listener, seconds, sent):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=answer, args=(conn, seconds, sent), daemon=True).start()


def answer(conn, seconds, sent):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            return
        buf += chunk
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            conn.sendall(INTERIM)
            sent[0] += len(INTERIM)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
    except OSError:
        pass  # the balancer gave up and closed: what it should do
    conn.close()


def run(binary, extra, seconds):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    sent = [0]
    threading.Thread(target=backend, args=(listener, seconds, sent), daemon=True).start()
    proc, http = start_balancer(binary, "flood", listener.getsockname()[1],
                                ["--server-timeout", str(seconds + 5)] + extra)
    try:
        before = peak = rss_kib(proc.pid)
        result = {}

        def client():
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", http)) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: flood.test\r\nConnection: close\r\n\r\n")
                reply = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            result["status"] = reply[9:12].decode() or "closed"
            result["took"] = time.monotonic() - started

        thread = threading.Thread(target=client)
        thread.start()
        while thread.is_alive():
            peak = max(peak, rss_kib(proc.pid))
            thread.join(0.05)
        after = rss_kib(proc.pid)
        return result, sent[0], before, peak, after
    finally:
        proc.terminate()
        proc.wait()
        listener.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--binary", default="target/release/switchyard")
    args = parser.parse_args()
    for name, extra in [("native", []), ("hyper", ["--hyper-http1"])]:
        result, sent, before, peak, after = run(args.binary, extra, args.seconds)
        print(f"{name:6}: status {result['status']} after {result['took']:.2f} s; backend sent "
              f"{sent / 2**20:.1f} MiB of interim responses; RSS before {before / 1024:.1f} MiB, "
              f"peak {peak / 1024:.1f} MiB, after {after / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
