#!/usr/bin/env python3
"""Delayed-ACK check: a client with Nagle's algorithm on (no TCP_NODELAY) that writes each
request's head and body apart, six POSTs per keep-alive connection, through Switchyard and the
peers of scripts/loadbench.py on the same nginx backends. Prints each request's time in ms.

Linux delays the ACK of the head once a connection is in its request-answer rhythm, and the
client holds the body until that ACK: about 40 ms a request, unless the proxy acknowledges at
once when it waits for a body (HAProxy does; so does Switchyard, docs/behaviour.md "Accepting and
acknowledging").

    scripts/nagle-post.py [--binary target/release/switchyard] [--peers switchyard,haproxy-map,nginx]
"""

import argparse
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadbench as lb  # noqa: E402


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed before a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(4096)
    return head.split(b"\r\n")[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="target/release/switchyard")
    ap.add_argument("--peers", default="switchyard,haproxy-map,nginx")
    ap.add_argument("--requests", type=int, default=6)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="switchyard-nagle-")
    os.chmod(work, 0o755)
    os.makedirs(f"{work}/www"), os.makedirs(f"{work}/tmp")
    backends = lb.Proc(["nginx", "-c", lb.write(f"{work}/backends.conf", lb.backend_nginx_conf(work)),
                        "-e", f"{work}/backend-error.log"], None, open(f"{work}/backends.log", "w"))
    peers = []
    try:
        for p in lb.BACKEND_PORTS:
            lb.wait_port(p, alive=lambda: backends.popen.poll() is None)
        for i, name in enumerate(args.peers.split(",")):
            peer = lb.Peer(name, i, work, 1)
            peer.start(os.path.abspath(args.binary), None, lb.APPS)
            peers.append(peer)
        body = b"x" * 100
        head = (f"POST / HTTP/1.1\r\nHost: {lb.vhost(50)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        for peer in peers:
            for _ in range(2):
                with socket.create_connection(("127.0.0.1", peer.http)) as sock:
                    times = []
                    for _ in range(args.requests):
                        start = time.perf_counter()
                        sock.sendall(head)
                        sock.sendall(body)
                        status = read_response(sock)
                        assert status.startswith(b"HTTP/1.1 200"), status
                        times.append((time.perf_counter() - start) * 1000)
                print(f"{peer.name:<12} " + " ".join(f"{t:5.1f}" for t in times) + " ms")
    finally:
        for peer in peers:
            peer.stop()
        backends.stop()


if __name__ == "__main__":
    main()
