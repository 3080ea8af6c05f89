#!/usr/bin/env bash
# Side-by-side load benchmark: Switchyard vs HAProxy (Marathon-LB's config and a vhost map with
# keep-alive) vs nginx, same backends, same app set, same CPU budget. Installs what it needs from
# Debian's packages, builds the release binary, then runs scripts/loadbench.py (its --help lists
# the knobs: rounds, seconds per run, variants, cases). Takes about 15 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for tool in haproxy:haproxy nginx:nginx wrk:wrk h2load:nghttp2-client curl:curl taskset:util-linux; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool##*:}")
done
if ((${#need[@]})); then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -q && $sudo apt-get install -y -q "${need[@]}"
fi
cargo build --release --locked
exec python3 scripts/loadbench.py "$@"
