#!/usr/bin/env bash
# Reliability matrix E6: a huge Marathon app list (default 20,000 apps × 3 tasks, written the
# way Marathon writes /v2/apps?embed=apps.tasks, about 40 MB) read, parsed and built while the
# balancer serves. Prints the document size, the time from SIGHUP to the new table being served,
# the table build time (switchyard_routing_table_build_seconds), when the service-port
# listeners are all open, the process's peak RSS (VmHWM)
# and how the admin health check answered while the list was processed.
#
#   scripts/huge-apps.sh [APPS] [TASKS]      (builds target/release/switchyard first)
#   HEALTH_CHECKS=0 scripts/huge-apps.sh      apps without Marathon health checks (no active
#                                             checker per endpoint)
set -euo pipefail

APPS=${1:-20000}
TASKS=${2:-3}
cd "$(dirname "$0")/.."
cargo build --release --locked --bin switchyard >/dev/null
BIN=target/release/switchyard
# Each app has a service port, and the balancer listens on every one (as Marathon-LB's HAProxy
# does): 20,000 listeners need the descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
PID=
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$WORK" "$APPS" "$TASKS" "${HEALTH_CHECKS:-1}" <<'EOF'
import json, sys
work, n, tasks, checks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] != "0"

def app(i, tasks):
    app_id = f"/huge/group-{i // 100:03d}/app-{i:05d}"
    version = "2026-11-26T09:59:00.000Z"
    return {
        "id": app_id, "cmd": None, "args": None, "user": None,
        "env": {"JAVA_OPTS": "-Xmx512m -XX:+UseG1GC", "ENVIRONMENT": "production", "REGION": "eu-west-1"},
        "instances": tasks, "cpus": 0.5, "mem": 512, "disk": 0, "gpus": 0,
        "executor": "", "constraints": [["hostname", "UNIQUE"]], "uris": [], "fetch": [],
        "storeUrls": [], "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
        "container": {"type": "DOCKER", "volumes": [], "docker": {
            "image": f"registry.example.com/team/service-{i % 50}:1.{i % 7}.{i % 11}",
            "forcePullImage": False, "privileged": False, "parameters": []},
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "servicePort": 10000 + i % 50000,
                              "protocol": "tcp", "name": "http", "labels": {}}]},
        "healthChecks": [] if not checks else [{"gracePeriodSeconds": 300, "intervalSeconds": 60, "maxConsecutiveFailures": 3,
                          "portIndex": 0, "timeoutSeconds": 20, "delaySeconds": 15,
                          "protocol": "MESOS_HTTP", "path": "/health", "ipProtocol": "IPv4"}],
        "networks": [{"mode": "container/bridge"}],
        "readinessChecks": [], "dependencies": [],
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": f"app-{i}.huge.example.com",
                   "team": f"team-{i % 40}", "cost-center": f"cc-{i % 13}"},
        "ipAddress": None, "version": version, "residency": None, "secrets": {},
        "taskKillGracePeriodSeconds": None,
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "killSelection": "YOUNGEST_FIRST",
        "versionInfo": {"lastScalingAt": version, "lastConfigChangeAt": version},
        "tasksStaged": 0, "tasksRunning": tasks, "tasksHealthy": tasks, "tasksUnhealthy": 0,
        "deployments": [],
        "tasks": [{
            "ipAddresses": [{"ipAddress": f"172.17.{t}.{i % 250 + 1}", "protocol": "IPv4"}],
            "stagedAt": version, "state": "TASK_RUNNING",
            "ports": [20000 + (i * 3 + t) % 40000], "startedAt": version, "version": version,
            "id": f"huge_group-{i // 100:03d}_app-{i:05d}.instance-{t:08x}-0000-11ef-8000-0242ac110002._app.1",
            "appId": app_id, "slaveId": f"5c7e0c2f-0000-4000-8000-00000000{t:04d}-S{t}",
            "host": f"10.0.{t % 250}.{i % 250 + 1}",
            "healthCheckResults": [{"alive": True, "consecutiveFailures": 0,
                                    "firstSuccess": version, "lastFailure": None,
                                    "lastSuccess": version, "lastFailureCause": None,
                                    "instanceId": f"huge_group-{i // 100:03d}_app-{i:05d}.marathon-{t:08x}"}],
            "localVolumes": [],
        } for t in range(tasks)],
    }

with open(f"{work}/small.json", "w") as f:
    json.dump({"apps": [app(0, 1)]}, f)
with open(f"{work}/huge.json", "w") as f:
    json.dump({"apps": [app(i, tasks) for i in range(n)]}, f)
EOF
SIZE=$(stat -c %s "$WORK/huge.json")
cp "$WORK/small.json" "$WORK/apps.json"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(free_port); APPID=$(free_port); ADMIN=$(free_port)
"$BIN" --apps-file "$WORK/apps.json" --apps-file-poll 3600 --bind-address 127.0.0.1 \
    --http-port "$HTTP" --https-port 0 --app-id-port "$APPID" --admin-port "$ADMIN" \
    --log-level warn 2>"$WORK/log" &
PID=$!
generation() { curl -s "http://127.0.0.1:$ADMIN/generation" 2>/dev/null || echo 0; }
until [[ "$(generation)" == "1" ]]; do sleep 0.05; done
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")

cp "$WORK/huge.json" "$WORK/apps.json.tmp" && mv "$WORK/apps.json.tmp" "$WORK/apps.json"
START=$(date +%s.%N)
kill -HUP "$PID"
# Health checks while the list is read, parsed and built: each one's time, until generation 2.
: >"$WORK/health"
while [[ "$(generation)" != "2" ]]; do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 \
        "http://127.0.0.1:$ADMIN/healthz" >>"$WORK/health"
done
END=$(date +%s.%N)
# The table is served before the service-port listeners are opened: wait until the process's
# descriptors stop changing (three looks 0.2 s apart).
last=-1 same=0
while (( same < 3 )); do
    now=$(ls "/proc/$PID/fd" | wc -l)
    if [[ "$now" == "$last" ]]; then same=$((same + 1)); else same=0; last=$now; fi
    sleep 0.2
done
LISTENING_END=$(date +%s.%N)
# At the open-file limit (listeners and health checks use descriptors) the admin port may not
# answer: report what can be read.
METRICS=$(curl -s -m 5 "http://127.0.0.1:$ADMIN/metrics" || true)
BUILD_SUM=$(awk '/^switchyard_routing_table_build_seconds_sum/ {print $2}' <<<"$METRICS")
ENDPOINTS=$(awk '/^switchyard_endpoints\{state="up"\}/ {print $2}' <<<"$METRICS")
LISTENERS=$(ls "/proc/$PID/fd" | wc -l)
echo "metric series in /metrics: $(grep -vc '^#' <<<"$METRICS")"
echo "log lines: $(wc -l <"$WORK/log"); the first ones:"; head -3 "$WORK/log" | cut -c1-240
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
RSS_AFTER=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")

python3 - "$SIZE" "$START" "$END" "$BUILD_SUM" "$HWM" "$RSS_BEFORE" "$RSS_AFTER" "$ENDPOINTS" "$WORK/health" "$APPS" "$TASKS" "$LISTENERS" "$LISTENING_END" <<'EOF'
import sys
size, start, end, build, hwm, before, after, endpoints, health, apps, tasks, fds, listening = sys.argv[1:]
checks = [line.split() for line in open(health) if line.strip()]
times = sorted(float(t) for _, t in checks)
bad = sum(1 for code, _ in checks if code != "200")
p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1e3 if times else float("nan")
print(f"document: {apps} apps x {tasks} tasks, {int(size) / 1e6:.1f} MB")
print(f"SIGHUP -> new table served: {float(end) - float(start):.2f} s "
      f"(model + table build: {float(build or 'nan'):.2f} s; file read, JSON parse and opening the "
      f"service-port listeners: the rest)")
print(f"endpoints up: {endpoints}; open file descriptors (listeners included): {fds}, "
      f"steady {float(listening) - float(start) - 0.6:.2f} s after SIGHUP (±0.2 s)")
print(f"peak RSS (VmHWM): {int(hwm) / 1024:.0f} MiB; RSS before {int(before) / 1024:.0f} MiB, "
      f"after {int(after) / 1024:.0f} MiB")
print(f"/healthz during processing: {len(checks)} checks, {bad} not 200, "
      f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {p(1.0):.1f} ms")
EOF
