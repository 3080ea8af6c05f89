#!/usr/bin/env bash
# Long hostile-client runs against the release binary (reliability matrix B1, B2, B3, B5):
# slowhttptest slow headers, slow body and slow read against Switchyard in front of nginx, then
# a connection flood against a second Switchyard limited to 256 file descriptors. Prints, per
# run: the second the last attack connection closed, the lowest service availability, the
# balancer's CPU %, admin health-check latency during the attack, and the RSS change.
#
# Needs: slowhttptest, nginx, curl, prlimit (apt: slowhttptest nginx-light curl util-linux).
# Usage: scripts/hostile.sh [seconds per run, default 30]
set -euo pipefail

cd "$(dirname "$0")/.."
LENGTH=${1:-30}
WORK=$(mktemp -d /tmp/switchyard-hostile.XXXXXX)
NGINX_PORT=18481 HTTP=18480 HTTPS=18483 APP_ID=18491 ADMIN=18490
PIDS=()
EXTRA_FLAGS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ -f $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

for tool in slowhttptest nginx curl prlimit; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

cargo build --release --locked --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/switchyard

# nginx: a static page (and the body of any POST thrown away) on $NGINX_PORT.
mkdir -p "$WORK/www"
head -c 4096 /dev/zero | tr '\0' 'x' >"$WORK/www/index.html"
# nginx workers run as an unprivileged user when started as root.
chmod 755 "$WORK" "$WORK/www" && chmod 644 "$WORK/www/index.html"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        error_page 405 =200 /index.html;
        # Reads the whole request body (proxy buffering) before answering, so that a slow
        # body reaches the balancer's body timeout instead of an early 405.
        location /upload { proxy_pass http://127.0.0.1:$NGINX_PORT/index.html; }
    }
}
CONF
nginx -c "$WORK/nginx.conf"

cat >"$WORK/apps.json" <<JSON
{"apps": [{"id": "/web", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "127.0.0.1"},
  "portDefinitions": [{"port": 10001}],
  "tasks": [{"id": "web.1", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [$NGINX_PORT]}]}]}
JSON

wait_port() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/_haproxy_health_check" && return 0
        sleep 0.1
    done
    echo "port $1 never answered" >&2
    exit 1
}

# Starts the balancer (optionally under a prefix command such as prlimit); sets BAL_PID.
start_balancer() {
    "$@" "$BIN" --apps-file "$WORK/apps.json" --bind-address 127.0.0.1 \
        --http-port $HTTP --https-port $HTTPS --app-id-port $APP_ID --admin-port $ADMIN \
        --log-level warning "${EXTRA_FLAGS[@]}" >"$WORK/switchyard.log" 2>&1 &
    BAL_PID=$!
    PIDS+=("$BAL_PID")
    wait_port $ADMIN
    for _ in $(seq 100); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP/") == 200 ]] && return 0
        sleep 0.1
    done
    echo "balancer never routed to nginx" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Runs one slowhttptest attack while probing the admin health check; prints the figures.
attack() {
    local name=$1; shift
    local rss0 ticks0 start
    rss0=$(rss_kb "$BAL_PID")
    ticks0=$(cpu_ticks "$BAL_PID")
    start=$(date +%s.%N)
    : >"$WORK/$name-health.txt"
    (
        while kill -0 "$BAL_PID" 2>/dev/null; do
            curl -s -o /dev/null -m 3 -w '%{http_code} %{time_total}\n' \
                "http://127.0.0.1:$ADMIN/_haproxy_health_check" >>"$WORK/$name-health.txt" || true
            sleep 0.2
        done
    ) &
    local prober=$!
    slowhttptest "$@" -g -o "$WORK/$name" >"$WORK/$name.out" 2>&1 || true
    kill "$prober" 2>/dev/null || true
    wait "$prober" 2>/dev/null || true
    local elapsed ticks1 rss1 hz
    elapsed=$(echo "$(date +%s.%N) - $start" | bc)
    ticks1=$(cpu_ticks "$BAL_PID")
    rss1=$(rss_kb "$BAL_PID")
    hz=$(getconf CLK_TCK)
    # slowhttptest CSV: Seconds,Closed,Pending,Connected,Service Available
    local last_open min_avail
    last_open=$(awk -F, 'NR > 1 && ($3 + $4) > 0 {s = $1} END {print s + 0}' "$WORK/$name.csv")
    # slowhttptest writes the connection count while its probe succeeds, 0 when it fails.
    min_avail=$(awk -F, 'NR > 1 {n++; if ($5 == 0) down++} END {printf "%d of %d seconds unavailable", down, n}' "$WORK/$name.csv")
    local conns_max
    conns_max=$(awk -F, 'NR > 1 && $4 > m {m = $4} END {print m + 0}' "$WORK/$name.csv")
    echo "== $name: slowhttptest $*"
    echo "   attack connections open at most: $conns_max; last second with one open: $last_open (test length $LENGTH s)"
    echo "   service availability (slowhttptest probe): $min_avail"
    grep -E "Exit status|Test ended" "$WORK/$name.out" | sed 's/^/   slowhttptest: /' || true
    echo "   balancer CPU: $(echo "scale=1; 100 * ($ticks1 - $ticks0) / $hz / $elapsed" | bc) % of one core over ${elapsed%.*} s"
    sort -k2 -n "$WORK/$name-health.txt" | awk '
        {n++; t[n] = $2; if ($1 != 200) bad++}
        END {
            if (n == 0) {print "   admin health: no probes"; exit}
            p = int(n * 0.99); if (p < 1) p = 1
            printf "   admin health: %d probes, %d not 200, median %.1f ms, p99 %.1f ms, max %.1f ms\n",
                n, bad, 1000 * t[int((n + 1) / 2)], 1000 * t[p], 1000 * t[n]
        }'
    echo "   RSS: ${rss0} kB -> ${rss1} kB (delta $((rss1 - rss0)) kB)"
}

URL="http://127.0.0.1:$HTTP/"
# All attack connections come from 127.0.0.1: lift the per-IP cap (default 1000) so that the
# timeouts, not the cap, are what these runs measure (slowhttptest's probe is the 1001st).
EXTRA_FLAGS=(--max-connections-per-ip 100000)
start_balancer
attack b1_slow_headers -H -c 1000 -r 200 -i 3 -l "$LENGTH" -u "$URL" -p 3
attack b2_slow_body -B -c 500 -r 100 -i 2 -s 100000 -l "$LENGTH" -t POST -u "${URL}upload" -p 3
attack b3_slow_read -X -c 500 -r 100 -w 1 -y 2 -n 3 -z 1 -k 3 -l "$LENGTH" -u "$URL" -p 3
echo "   upstream/client timeouts: $(curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^switchyard_client_connections_closed_total' | tr '\n' ' ')"
kill "$BAL_PID"; wait "$BAL_PID" 2>/dev/null || true

# B5: 256 file descriptors and a flood of 2000 slow connections: accept fails with EMFILE and
# must back off, not spin; the admin port keeps answering as descriptors free up.
EXTRA_FLAGS=(--max-connections-per-ip 100000)
start_balancer prlimit --nofile=256:256
attack b5_emfile_flood -H -c 2000 -r 500 -i 3 -l "$LENGTH" -u "$URL" -p 3
echo "   accept failures logged: $(grep -c 'accept failed' "$WORK/switchyard.log" || true) warning line(s)"
echo "   still serving after the flood: $(curl -s -o /dev/null -w '%{http_code}' "$URL")"
kill "$BAL_PID"; wait "$BAL_PID" 2>/dev/null || true

# B5 as the matrix runs it: 1024 descriptors and a connection cap of 800 below them, so the
# cap (not EMFILE) stops accepting and descriptors stay free for the admin port.
EXTRA_FLAGS=(--max-connections-per-ip 100000 --max-connections 800)
start_balancer prlimit --nofile=1024:1024
attack b5_capped_flood -H -c 2000 -r 500 -i 3 -l "$LENGTH" -u "$URL" -p 3
echo "   accept failures logged: $(grep -c 'accept failed' "$WORK/switchyard.log" || true) warning line(s)"
echo "   still serving after the flood: $(curl -s -o /dev/null -w '%{http_code}' "$URL")"
echo "raw output: $WORK"
trap - EXIT
cleanup
