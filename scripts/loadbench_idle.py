"""Idle TLS connections for the load benchmark's memory figures (scripts/loadbench.py): HTTP/1.1
or HTTP/2 (ALPN h2, with the `h2` package), each after one complete request, left open."""

import re
import socket
import ssl


def open_idle(port, count, proto, host):
    """`count` TLS connections to `port` (SNI localhost), each after one complete request for
    `host`, left open."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"] if proto == "h2" else ["http/1.1"])
    socks = []
    try:
        for _ in range(count):
            sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                   server_hostname="localhost")
            socks.append(sock)
            if proto == "h2":
                if sock.selected_alpn_protocol() != "h2":
                    raise RuntimeError(f"ALPN chose {sock.selected_alpn_protocol()}, not h2")
                h2_request(sock, host)
            else:
                http1_request(sock, host)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def http1_request(sock, host):
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + content_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed before the response")
        data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"answer {data[:40]!r}")


def content_length(data):
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", data, re.I)
    return int(m.group(1)) if m else 0


def h2_request(sock, host):
    """One GET on stream 1 with the `h2` package, to the end of its response; SETTINGS acked."""
    import h2.config
    import h2.connection
    import h2.events
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", "/")],
                      end_stream=True)
    sock.sendall(conn.data_to_send())
    status = None
    while True:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("closed before the response")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(b":status")
            if isinstance(event, h2.events.StreamEnded):
                sock.sendall(conn.data_to_send())
                if status != b"200":
                    raise RuntimeError(f"status {status}")
                return
        sock.sendall(conn.data_to_send())
