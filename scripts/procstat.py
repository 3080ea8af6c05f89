"""Helpers the measuring scripts share: a free loopback port, a process's RSS and CPU time
read from /proc, and the balancer started in front of one backend."""

import os
import re
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_balancer(binary, name, backend_port, extra):
    """The release binary serving one app (`/<name>`, vhost `<name>.test`) whose one task is
    `backend_port`, from an apps file, with `extra` flags; returns (process, HTTP port) once its
    HTTP port accepts."""
    apps = os.path.join(tempfile.mkdtemp(prefix=f"switchyard-{name}."), "apps.json")
    with open(apps, "w") as f:
        f.write('{"apps": [{"id": "/%s", "labels": {"HAPROXY_GROUP": "external", '
                '"HAPROXY_0_VHOST": "%s.test"}, "portDefinitions": [{"port": %d}], '
                '"tasks": [{"id": "%s.1", "host": "127.0.0.1", "state": "TASK_RUNNING", '
                '"ports": [%d]}]}]}' % (name, name, free_port(), name, backend_port))
    http, admin, app_id = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "--apps-file", apps, "--bind-address", "127.0.0.1", "--http-port", str(http),
         "--https-port", "0", "--app-id-port", str(app_id), "--admin-port", str(admin)] + extra,
        stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", http)).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, http

