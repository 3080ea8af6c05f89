#!/usr/bin/env python3
"""Writes the hand-made seed corpora under fuzz/corpus/<target>/ (run from the repo root).

Seeds are small realistic inputs: Marathon 1.4-1.11 app lists, real event-stream bodies, config
files and HTTP/1.1 and HTTP/2 connections, including smuggling-style requests. Crash inputs found
later are added next to them as crash-<hash> files by hand; this script never deletes files.
"""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


# ---------------------------------------------------------------- marathon_apps
def task(app, i, host="10.0.1.5", ports=(31000,), state="TASK_RUNNING", alive=None, ips=None):
    t = {"id": f"{app.strip('/').replace('/', '_')}.{i}", "appId": app, "host": host,
         "state": state, "ports": list(ports), "stagedAt": "2026-11-26T10:00:00.000Z",
         "startedAt": "2026-11-26T10:00:05.000Z", "version": "2026-11-26T09:59:00.000Z"}
    if alive is not None:
        t["healthCheckResults"] = [{"alive": alive, "consecutiveFailures": 0, "taskId": t["id"]}]
    if ips:
        t["ipAddresses"] = [{"ipAddress": ip, "protocol": "IPv4"} for ip in ips]
    return t


def apps_doc(*apps):
    return json.dumps({"apps": list(apps)}, indent=1)


for fixture in ["tests/fixtures/marathon-1.4-apps.json", "tests/fixtures/marathon-1.11-apps.json",
                "config/demo-apps.json"]:
    write("marathon_apps", pathlib.Path(fixture).name, (ROOT / fixture).read_bytes())

write("marathon_apps", "empty.json", '{"apps": []}')
write("marathon_apps", "one-malformed.json", apps_doc(
    {"id": "/ok", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "ok.example.test"},
     "portDefinitions": [{"port": 10010, "protocol": "tcp"}], "instances": 1,
     "tasks": [task("/ok", 1)]},
    {"id": "/bad", "instances": "many", "labels": {"HAPROXY_GROUP": "external"}},
    {"id": 5},
    {"labels": None, "tasks": None, "id": "/nulls", "portDefinitions": None}))
write("marathon_apps", "ip-per-task-1.4.json", apps_doc(
    {"id": "/dcos/web", "instances": 2, "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.test"},
     "ipAddress": {"networkName": "dcos", "discovery": {"ports": [{"number": 8080, "name": "http", "protocol": "tcp"}]}},
     "ports": [], "portDefinitions": [],
     "tasks": [task("/dcos/web", 1, ports=(), ips=["9.0.1.2"]), task("/dcos/web", 2, ports=(), ips=["9.0.1.3"])]}))
write("marathon_apps", "blue-green.json", apps_doc(
    *[{"id": f"/shop-{colour}", "instances": 2,
       "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.test",
                  "HAPROXY_DEPLOYMENT_GROUP": "shop", "HAPROXY_DEPLOYMENT_ALT_PORT": "10101",
                  "HAPROXY_DEPLOYMENT_COLOUR": colour, "HAPROXY_DEPLOYMENT_STARTED_AT": "2026-11-26T10:00:00.000Z",
                  "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "2"},
       "portDefinitions": [{"port": port}],
       "tasks": [task(f"/shop-{colour}", i, ports=(31000 + i + off,)) for i in range(2)]}
      for colour, port, off in [("blue", 10100, 0), ("green", 10101, 10)]]))
write("marathon_apps", "health-and-states.json", apps_doc(
    {"id": "/api/v1", "instances": 4,
     "labels": {"HAPROXY_GROUP": "external,internal", "HAPROXY_0_VHOST": "api.example.test,*.api.example.test",
                "HAPROXY_0_PATH": "/v1 /v1beta", "HAPROXY_0_BALANCE": "leastconn", "HAPROXY_0_STICKY": "true",
                "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/v1", "HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX": "1"},
     "portDefinitions": [{"port": 10030}, {"port": 10031}],
     "healthChecks": [{"protocol": "MARATHON_HTTP", "path": "/health", "portIndex": 0, "intervalSeconds": 10,
                       "timeoutSeconds": 5, "maxConsecutiveFailures": 3}],
     "tasks": [task("/api/v1", 1, ports=(31001, 31002), alive=True),
               task("/api/v1", 2, ports=(31003, 31004), alive=False),
               task("/api/v1", 3, ports=(31005, 31006), state="TASK_LOST"),
               task("/api/v1", 4, host="agent-7.invalid", ports=(31007, 31008), state="TASK_UNREACHABLE")]}))
write("marathon_apps", "conflicts-and-tcp.json", apps_doc(
    {"id": "/a", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "tcp", "HAPROXY_0_BIND_ADDR": "127.0.0.1"},
     "portDefinitions": [{"port": 10020}], "tasks": [task("/a", 1)]},
    {"id": "/b", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "10020"},
     "portDefinitions": [{"port": 10021}], "tasks": [task("/b", 1)]},
    {"id": "/c", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "80", "HAPROXY_0_VHOST": "c.example.test",
                            "HAPROXY_0_REDIRECT_TO_HTTPS": "true", "HAPROXY_0_USE_HSTS": "true"},
     "portDefinitions": [{"port": 10022}], "tasks": [task("/c", 1)]},
    {"id": "/internal", "labels": {"HAPROXY_GROUP": "internal"}, "portDefinitions": [{"port": 10023}],
     "tasks": [task("/internal", 1)]}))
write("marathon_apps", "bridge-1.5.json", apps_doc(
    {"id": "/bridge", "instances": 1, "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bridge.example.test",
                                                 "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8,192.168.1.0/24"},
     "networks": [{"mode": "container/bridge"}],
     "container": {"type": "MESOS", "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10040, "protocol": "tcp"}]},
     "tasks": [task("/bridge", 1, ports=(31040,))]},
    {"id": "/overlay", "instances": 1, "labels": {"HAPROXY_GROUP": "external"},
     "networks": [{"mode": "container", "name": "dcos"}],
     "container": {"type": "MESOS", "portMappings": [{"containerPort": 8080, "servicePort": 10041, "name": "web"}]},
     "tasks": [task("/overlay", 1, ports=(), ips=["9.0.2.7"])]}))

# ---------------------------------------------------------------- event_stream
def sse(events, crlf=False):
    out = ""
    for kind, data in events:
        if kind is None:
            out += data
            continue
        out += f"event: {kind}\ndata: {json.dumps(data)}\n\n"
    return out.replace("\n", "\r\n") if crlf else out


TS = "2026-11-26T10:00:00.000Z"
attached = ("event_stream_attached", {"remoteAddress": "10.0.0.9", "eventType": "event_stream_attached", "timestamp": TS})
status = ("status_update_event", {"slaveId": "agent-1", "taskId": "web.1", "taskStatus": "TASK_RUNNING", "message": "",
                                  "appId": "/web", "host": "10.0.1.5", "ipAddresses": [{"ipAddress": "10.0.1.5", "protocol": "IPv4"}],
                                  "ports": [31000], "version": TS, "eventType": "status_update_event", "timestamp": TS})
post = ("api_post_event", {"clientIp": "10.0.0.2", "uri": "/v2/apps/shop/web", "appDefinition": {"id": "/shop/web", "instances": 2,
        "labels": {"HAPROXY_GROUP": "external"}}, "eventType": "api_post_event", "timestamp": TS})
health = ("health_status_changed_event", {"appId": "/web", "taskId": "web.1", "instanceId": "web.marathon-1", "version": TS,
          "alive": False, "eventType": "health_status_changed_event", "timestamp": TS})
instance = ("instance_changed_event", {"instanceId": "web.marathon-1", "condition": "Running", "runSpecId": "/web",
            "agentId": "agent-1", "host": "10.0.1.5", "runSpecVersion": TS, "timestamp": TS, "eventType": "instance_changed_event"})
ihealth = ("instance_health_changed_event", {"instanceId": "web.marathon-1", "runSpecId": "/web", "runSpecVersion": TS,
           "healthy": True, "timestamp": TS, "eventType": "instance_health_changed_event"})
terminated = ("app_terminated_event", {"appId": "/old", "timestamp": TS, "eventType": "app_terminated_event"})
deployment = ("deployment_success", {"id": "d-1", "plan": {"id": "d-1", "steps": [
    {"actions": [{"action": "ScaleApplication", "app": "/web"}, {"action": "StartPod", "pod": "/pod"}]},
    {"actions": [{"action": "RestartApplication", "app": "/shop/web"}]}], "version": TS},
    "eventType": "deployment_success", "timestamp": TS})
failed = ("deployment_failed", {"id": "d-2", "plan": {"id": "d-2", "steps": []}, "eventType": "deployment_failed", "timestamp": TS})

write("event_stream", "attached-and-status", b"\xff" + sse([attached, status]).encode())
write("event_stream", "all-routing-events", b"\x40" + sse([attached, post, status, health, instance, ihealth, terminated, deployment, failed]).encode())
write("event_stream", "crlf-split-3", b"\x03" + sse([status, post], crlf=True).encode())
write("event_stream", "keepalives-and-comments", b"\x01" + ("\r\n\r\n: comment\nid: 7\nretry: 1000\n" + sse([deployment])
      + "\r\n" + "event: status_update_event\ndata: {\"appId\":\n data: \"/web\"}\n\n").encode())
write("event_stream", "many-apps", b"\x80" + sse([("app_terminated_event", {"appId": f"/a{i}"}) for i in range(20)]).encode())
write("event_stream", "cr-only-and-unknown", b"\x10" + "event: group_change_success\rdata: {\"groupId\":\"/g\"}\r\revent: status_update_event\rdata: not json\r\r".encode())

# ---------------------------------------------------------------- config_file
shipped = (ROOT / "config" / "switchyard.toml").read_bytes()
write("config_file", "shipped", b"\x00" + shipped)
write("config_file", "small-with-flags", b"\x01" + b'http-port = 8081\nhttps-port = 8443\ngroup = ["external", "internal"]\nstrict-mode = true\nmax-connections = 1000\n')
write("config_file", "marathon", b"\x03" + b'marathon = ["http://m1:8080", "http://m2:8080"]\nmarathon-poll = 2.5\nauth-credentials = "user:pass"\nlog-level = "WARNING"\n')
write("config_file", "routes-subcommand", b"\x04" + b'min-serv-port-ip-per-task = 10050\nmax-serv-port-ip-per-task = 10100\nhealth-check = false\n')
write("config_file", "bad-type", b"\x02" + b'http-port = "eighty"\nconnect-timeout = [1, 2]\n')
write("config_file", "unknown-and-table", b"\x00" + b'htp-port = 80\n[table]\nx = 1\n')
write("config_file", "broken", b"\x00" + b'http-port = [\n')

# ---------------------------------------------------------------- http_connection
def h1(selector, text):
    return selector + text.replace("\n", "\r\n").encode()


write("http_connection", "get-live", h1(b"v", "GET / HTTP/1.1\nHost: live.example.test\nUser-Agent: curl/8.5\nAccept: */*\n\n"))
write("http_connection", "pipelined-keepalive", h1(b"v", "GET /api/x?y=1 HTTP/1.1\nHost: LIVE.example.test:80\n\n"
                                                    "GET / HTTP/1.1\nHost: x.wild.example.test\nConnection: close\n\n"))
write("http_connection", "post-chunked", h1(b"v", "POST /api/upload HTTP/1.1\nHost: live.example.test\nTransfer-Encoding: chunked\n\n"
                                             "5;ext=1\nhello\n0\nTrailer: x\n\n"))
write("http_connection", "cl-te", h1(b"v", "POST / HTTP/1.1\nHost: live.example.test\nContent-Length: 6\nTransfer-Encoding: chunked\n\n"
                                      "0\n\nG"))
write("http_connection", "te-cl", h1(b"v", "POST / HTTP/1.1\nHost: live.example.test\nTransfer-Encoding: chunked\nContent-Length: 4\n\n"
                                      "5c\nGPOST / HTTP/1.1\nHost: down.example.test\nContent-Length: 15\n\nx=1\n0\n\n"))
write("http_connection", "dup-cl", h1(b"v", "POST / HTTP/1.1\nHost: live.example.test\nContent-Length: 3\nContent-Length: 5\n\nabcde"))
write("http_connection", "te-obfuscated", h1(b"v", "POST / HTTP/1.1\nHost: live.example.test\nTransfer-Encoding: xchunked\nTransfer-Encoding : chunked\n\n0\n\n"))
write("http_connection", "obs-fold", h1(b"v", "GET / HTTP/1.1\nHost: live.example.test\nX-Folded: a\n b\n\n"))
write("http_connection", "two-hosts", h1(b"v", "GET / HTTP/1.1\nHost: live.example.test\nHost: down.example.test\n\n"))
write("http_connection", "no-host", h1(b"v", "GET / HTTP/1.1\n\n"))
write("http_connection", "absolute-form", h1(b"v", "GET http://down.example.test/api HTTP/1.1\nHost: live.example.test\n\n"))
write("http_connection", "http10", h1(b"v", "GET / HTTP/1.0\n\n"))
write("http_connection", "upgrade-websocket", h1(b"v", "GET /ws HTTP/1.1\nHost: live.example.test\nConnection: Upgrade\nUpgrade: websocket\n"
                                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n"))
write("http_connection", "expect-continue", h1(b"v", "PUT /api/x HTTP/1.1\nHost: live.example.test\nExpect: 100-continue\nContent-Length: 3\n\nabc"))
write("http_connection", "down-backend", h1(b"v", "GET / HTTP/1.1\nHost: down.example.test\n\n"))
write("http_connection", "redirect-and-acl", h1(b"v", "GET /x HTTP/1.1\nHost: secure.example.test\n\nGET / HTTP/1.1\nHost: acl.example.test\n\n"))
write("http_connection", "connect", h1(b"v", "CONNECT live.example.test:443 HTTP/1.1\nHost: live.example.test:443\n\n"))
write("http_connection", "options-star", h1(b"v", "OPTIONS * HTTP/1.1\nHost: live.example.test\n\n"))
write("http_connection", "nul-and-bare-lf", b"v" + b"GET / HTTP/1.1\nHost: live.example.test\nX-A: a\x00b\n\n")
write("http_connection", "app-id", h1(b"a", "GET / HTTP/1.1\nHost: anything\nX-Marathon-App-Id: /live\n\n"))
write("http_connection", "service-port", h1(b"s", "GET /status HTTP/1.1\nHost: 10.0.0.1:10001\n\n"))
write("http_connection", "graceful-pipelined", h1(b"V", "GET / HTTP/1.1\nHost: live.example.test\n\nGET / HTTP/1.1\nHost: live.example.test\n\n"))


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = frame(4, 0, 0)
AUTH = b"\x41" + bytes([len(b"live.example.test")]) + b"live.example.test"
GET = b"\x82\x86\x84" + AUTH                     # :method GET, :scheme http, :path /, :authority
POST = b"\x83\x86\x84" + AUTH                    # :method POST
GOAWAY = frame(7, 0, 0, struct.pack(">II", 1, 0))
write("http_connection", "h2-get", b"v" + PREFACE + SETTINGS + frame(1, 0x05, 1, GET) + GOAWAY)
write("http_connection", "h2-post-data", b"v" + PREFACE + SETTINGS + frame(1, 0x04, 1, POST) + frame(0, 0x01, 1, b"hello") + GOAWAY)
write("http_connection", "h2-rst-and-ping", b"v" + PREFACE + SETTINGS + frame(1, 0x05, 1, GET) + frame(3, 0, 1, struct.pack(">I", 8))
      + frame(6, 0, 0, b"12345678") + frame(1, 0x05, 3, GET) + GOAWAY)
