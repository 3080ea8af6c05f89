#!/usr/bin/env bash
# Soak test: the release balancer under steady load for MINUTES while its routes churn and
# faults are injected. Needs nginx, wrk, curl and python3 (apt-get install -y nginx wrk curl).
#
#   scripts/soak.sh [MINUTES]        (default 10)
#
# Real parts only, all on 127.0.0.1 (ports from SOAK_BASE, default 23000):
#   backends   nginx `return 200`: a stable instance (4 ports) and a churn instance (3 ports),
#              plus a "victim" instance (1 port) that is killed and restarted
#   balancer   target/release/switchyard --apps-file, re-read on SIGHUP or /_mlb_signal/hup
#   load       wrk, one per vhost: stable1 (GET), stable2 (GET + 1 KiB POST, keep-alive and
#              not), churn and broken (GET)
#   churn      every ~1 s the apps file is rewritten and the balancer signalled: churn scales
#              1..4 and moves its endpoints, stable1 scales 2 <-> 3, a temp app (with its own
#              service-port listener) is added and removed
#   faults     the victim backend (a churn endpoint) killed for 10 s at 25 % and 60 %; the
#              broken app carries an invalid label (HAPROXY_0_PORT=notaport) 5 s in every 30;
#              the apps file is broken JSON for 3 s at 50 % and 75 %
# The stable vhosts must see 0 non-2xx and 0 socket errors; churn and broken are the vhosts
# broken on purpose and are reported separately. RSS of the balancer is sampled every 10 s.
# Exit status 1 if a stable vhost saw an error or the balancer died.
set -euo pipefail

minutes=${1:-10}
duration=$((minutes * 60))
base=${SOAK_BASE:-23000}
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in nginx wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is missing (apt-get install -y nginx wrk curl)" >&2; exit 2; }
done

http_port=$((base + 80)) https_port=$((base + 443)) admin_port=$((base + 90)) app_id_port=$((base + 91))
stable_ports=($((base + 101)) $((base + 102)) $((base + 103)) $((base + 104)))
churn_ports=($((base + 105)) $((base + 106)) $((base + 107)))
victim_port=$((base + 108))

work=$(mktemp -d /tmp/switchyard-soak.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/victim.pid" ] && kill "$(cat "$work/victim.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

echo "soak: building the release binary" >&2
(cd "$root" && cargo build --release --locked --bin switchyard >&2)
binary=${CARGO_TARGET_DIR:-$root/target}/release/switchyard

# --- backends -----------------------------------------------------------------------------
nginx_conf() { # name port...
    local name=$1; shift
    mkdir -p "$work/$name"
    {
        echo "daemon off; worker_processes 1; pid $work/$name/nginx.pid; error_log $work/$name/error.log warn;"
        echo "events { worker_connections 4096; }"
        echo "http { access_log off; client_body_temp_path $work/$name; proxy_temp_path $work/$name;"
        echo "  fastcgi_temp_path $work/$name; uwsgi_temp_path $work/$name; scgi_temp_path $work/$name;"
        echo "  keepalive_requests 100000;"
        for port in "$@"; do
            echo "  server { listen 127.0.0.1:$port; location / { return 200 \"$name $port\n\"; } }"
        done
        echo "}"
    } >"$work/$name.conf"
}
start_nginx() { # name
    nginx -c "$work/$1.conf" -e "$work/$1/error.log" >/dev/null 2>&1 &
    echo $!
}
wait_port() { # port what
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "soak: $2 (port $1) did not come up" >&2
    exit 1
}
nginx_conf stable "${stable_ports[@]}"
nginx_conf churn "${churn_ports[@]}"
nginx_conf victim "$victim_port"
pids+=("$(start_nginx stable)" "$(start_nginx churn)")
start_nginx victim >"$work/victim.pid"
for port in "${stable_ports[@]}" "${churn_ports[@]}" "$victim_port"; do wait_port "$port" nginx; done

# --- the apps file and its churn ----------------------------------------------------------
cat >"$work/churn.py" <<'PY'
"""Rewrites the apps file every ~1 s (atomically), signals the balancer, injects the faults."""
import json, os, signal, subprocess, sys, time, urllib.request

apps_file, pid_file, duration, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
work = os.path.dirname(apps_file)
stable, churn, victim = [base + 101, base + 102, base + 103, base + 104], [base + 105, base + 106, base + 107], base + 108
admin = f"http://127.0.0.1:{base + 90}/_mlb_signal/hup"
events = open(os.path.join(work, "events.log"), "a", buffering=1)


def app(name, service_port, ports, labels=None):
    labels = dict(labels or {}, HAPROXY_GROUP="external", HAPROXY_0_VHOST=f"{name}.soak.test")
    return {"id": f"/soak/{name}", "instances": len(ports), "labels": labels,
            "portDefinitions": [{"port": service_port, "protocol": "tcp"}],
            "tasks": [{"id": f"soak_{name}.{p}", "host": "127.0.0.1", "state": "TASK_RUNNING",
                       "ports": [p], "startedAt": "2026-11-26T10:00:00.000Z"} for p in ports]}


def document(tick, elapsed):
    churn_pool = churn + [victim]
    n = 1 + tick % 4                                   # scale 1..4
    moved = [churn_pool[(tick + i) % len(churn_pool)] for i in range(n)]  # endpoints move
    broken_label = (elapsed % 30) >= 25                # 5 s in every 30
    apps = [
        app("stable1", base + 201, stable[:2] + ([stable[3]] if tick % 2 else [])),
        app("stable2", base + 202, stable[2:4]),
        app("churn", base + 203, moved),
        app("broken", base + 204, stable[:1], {"HAPROXY_0_PORT": "notaport"} if broken_label else {}),
    ]
    if tick % 10 < 5:                                  # added for 5 ticks, removed for 5
        apps.append(app("temp", base + 205, churn[:1]))
    return apps, broken_label


def write(text):
    tmp = apps_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, apps_file)


def signal_balancer(tick):
    if tick % 2:
        os.kill(int(open(pid_file).read()), signal.SIGHUP)
    else:
        urllib.request.urlopen(admin, timeout=5).read()


def victim_control(action):
    if action == "kill":
        pid = int(open(os.path.join(work, "victim.pid")).read())
        os.kill(pid, signal.SIGTERM)
    else:
        proc = subprocess.Popen(["nginx", "-c", os.path.join(work, "victim.conf"), "-e",
                                 os.path.join(work, "victim", "error.log")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open(os.path.join(work, "victim.pid"), "w").write(str(proc.pid))
    events.write(f"{time.strftime('%H:%M:%S')} victim {action}\n")


start, tick, counts = time.monotonic(), 0, {"writes": 0, "broken_file": 0, "invalid_label": 0}
victim_down = set()
while (elapsed := time.monotonic() - start) < duration:
    frac = elapsed / duration
    for at in (0.25, 0.60):                            # victim down 10 s at 25 % and 60 %
        if at <= frac and (at, "kill") not in victim_down:
            victim_down.add((at, "kill")); victim_control("kill")
        if elapsed >= at * duration + 10 and (at, "start") not in victim_down:
            victim_down.add((at, "start")); victim_control("start")
    apps, broken_label = document(tick, int(elapsed))
    broken_file = any(at * duration <= elapsed < at * duration + 3 for at in (0.50, 0.75))
    if broken_file:
        write(json.dumps({"apps": apps})[:-7])         # truncated JSON
        counts["broken_file"] += 1
    else:
        write(json.dumps({"apps": apps}))
    counts["invalid_label"] += broken_label
    counts["writes"] += 1
    signal_balancer(tick)
    tick += 1
    time.sleep(1)
write(json.dumps({"apps": document(tick, 0)[0]}))
print(json.dumps(counts))
PY

apps_file=$work/apps.json
python3 - "$apps_file" "$base" <<'PY'
import json, sys
apps_file, base = sys.argv[1], int(sys.argv[2])
def app(name, service_port, ports):
    return {"id": f"/soak/{name}", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": f"{name}.soak.test"},
            "portDefinitions": [{"port": service_port}],
            "tasks": [{"id": f"soak_{name}.{p}", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [p]} for p in ports]}
json.dump({"apps": [app("stable1", base + 201, [base + 101, base + 102]), app("stable2", base + 202, [base + 103, base + 104]),
                    app("churn", base + 203, [base + 105]), app("broken", base + 204, [base + 101])]}, open(apps_file, "w"))
PY

# --- the balancer -------------------------------------------------------------------------
"$binary" --apps-file "$apps_file" --apps-file-poll 1 --bind-address 127.0.0.1 \
    --http-port "$http_port" --https-port "$https_port" --admin-port "$admin_port" \
    --app-id-port "$app_id_port" --log-level warn >"$work/switchyard.log" 2>&1 &
balancer=$!
pids+=("$balancer")
echo "$balancer" >"$work/switchyard.pid"
wait_port "$admin_port" "the balancer's admin port"
for vhost in stable1 stable2 churn broken; do
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $vhost.soak.test" "http://127.0.0.1:$http_port/")" = 200 ] && break
        sleep 0.1
    done
done
generation() { curl -s "http://127.0.0.1:$admin_port/metrics" | awk '/^switchyard_routing_table_generation /{print $2}'; }
first_generation=$(generation)

# --- load, churn, RSS ---------------------------------------------------------------------
cat >"$work/mixed.lua" <<'LUA'
local body = string.rep("x", 1024)
local n = 0
request = function()
    n = n + 1
    if n % 3 == 0 then
        return wrk.format("POST", "/upload", {["Content-Length"] = #body}, body)
    elseif n % 3 == 1 then
        return wrk.format("GET", "/a/path?q=" .. n)
    end
    return wrk.format("GET", "/", {["Connection"] = "close"})
end
LUA
url="http://127.0.0.1:$http_port/"
wrk -t1 -c16 -d"${duration}s" --timeout 5s -H "Host: stable1.soak.test" "$url" >"$work/wrk-stable1.txt" 2>&1 &
pids+=($!)
wrk -t1 -c16 -d"${duration}s" --timeout 5s -H "Host: stable2.soak.test" -s "$work/mixed.lua" "$url" >"$work/wrk-stable2.txt" 2>&1 &
pids+=($!)
wrk -t1 -c8 -d"${duration}s" --timeout 5s -H "Host: churn.soak.test" "$url" >"$work/wrk-churn.txt" 2>&1 &
pids+=($!)
wrk -t1 -c2 -d"${duration}s" --timeout 5s -H "Host: broken.soak.test" "$url" >"$work/wrk-broken.txt" 2>&1 &
pids+=($!)
python3 "$work/churn.py" "$apps_file" "$work/switchyard.pid" "$duration" "$base" >"$work/churn.json" 2>"$work/churn.err" &
churner=$!
pids+=("$churner")

rss() { awk '/^VmRSS/{print $2}' "/proc/$balancer/status" 2>/dev/null || echo 0; }
echo "soak: ${minutes} min, work dir $work" >&2
samples=()
started=$(date +%s)
while [ $(($(date +%s) - started)) -lt "$duration" ] && kill -0 "$balancer" 2>/dev/null; do
    samples+=("$(($(date +%s) - started)):$(rss)")
    echo "  t=${samples[-1]%%:*}s rss=${samples[-1]#*:} KiB" >&2
    sleep 10
done
alive=yes
kill -0 "$balancer" 2>/dev/null || alive=no
samples+=("$(($(date +%s) - started)):$(rss)")
wait "$churner" || true
for pid in "${pids[@]}"; do [ "$pid" = "$balancer" ] || wait "$pid" 2>/dev/null || true; done
last_generation=$(generation)

# --- report -------------------------------------------------------------------------------
wrk_figures() { # file -> "requests non2xx connect read write timeout"
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
requests = re.search(r"(\d+) requests in", text)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
print(requests.group(1) if requests else "?", non2xx.group(1) if non2xx else 0, *(sock.groups() if sock else (0, 0, 0, 0)))
PY
}
status=0
echo
echo "soak: ${minutes} min, $(date -u '+%Y-%m-%d %H:%M UTC'), balancer alive at the end: $alive"
echo "table generation: $first_generation -> $last_generation; churn: $(cat "$work/churn.json" 2>/dev/null)"
echo "fault log:"; sed 's/^/  /' "$work/events.log" 2>/dev/null || true
printf '%-10s %-11s %10s %8s %8s %6s %6s %8s\n' vhost kind requests non-2xx connect read write timeout
for vhost in stable1 stable2 churn broken; do
    read -r requests non2xx connect readerr writeerr timeout < <(wrk_figures "$work/wrk-$vhost.txt")
    kind="stable"
    case $vhost in churn | broken) kind="on-purpose" ;; esac
    printf '%-10s %-11s %10s %8s %8s %6s %6s %8s\n' "$vhost" "$kind" "$requests" "$non2xx" "$connect" "$readerr" "$writeerr" "$timeout"
    if [ "$kind" = stable ] && [ $((non2xx + connect + readerr + writeerr + timeout)) -ne 0 ]; then status=1; fi
done
first_rss=${samples[0]#*:}
last_rss=${samples[-1]#*:}
max_rss=0
for s in "${samples[@]}"; do [ "${s#*:}" -gt "$max_rss" ] && max_rss=${s#*:}; done
echo "RSS KiB: first $first_rss, last $last_rss, max $max_rss (samples: ${samples[*]})"
echo "balancer warnings/errors logged: $(grep -c -E 'WARN|ERROR' "$work/switchyard.log" || true) (log: $work/switchyard.log)"
[ "$alive" = yes ] || status=1
exit $status
