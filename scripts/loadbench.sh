#!/usr/bin/env bash
# Side-by-side load benchmark: Switchyard vs HAProxy (Marathon-LB's config and a vhost map with
# keep-alive) vs nginx vs a Pingora load balancer, same backends, same app set, same CPU budget.
# Installs what it needs from Debian's packages (cmake builds Pingora's zlib-ng) and Python's `h2`
# from PyPI, builds the release binary, then runs scripts/loadbench.py, which builds the TLS
# handshake client (benches/handshake_load.rs) and the Pingora peer (scripts/pingora-peer.rs; its
# first build takes several minutes more). Its --help lists the knobs: rounds, seconds per run,
# variants, cases. Takes about 30 minutes with the defaults.
# `scripts/loadbench.sh grpc [--rounds N] [--duration S] [--memory-mib M]`: the gRPC cases
# instead (scripts/loadbench_grpc.py: against HAProxy `proto h2` and nginx `grpc_pass`).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for tool in haproxy:haproxy nginx:nginx wrk:wrk h2load:nghttp2-client curl:curl taskset:util-linux \
    cmake:cmake openssl:openssl ss:iproute2; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool##*:}")
done
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if ((${#need[@]})); then
    $sudo apt-get update -q && $sudo apt-get install -y -q "${need[@]}"
fi
# HTTP/2 idle connections for the memory figures: the `h2` package, for this python3.
if ! python3 -c 'import h2' 2>/dev/null; then
    python3 -m pip install -q --user h2 || $sudo apt-get install -y -q python3-h2
fi
cargo build --release --locked
if [ "${1:-}" = grpc ]; then
    shift
    exec python3 scripts/loadbench_grpc.py --binary "${CARGO_TARGET_DIR:-target}/release/switchyard" "$@"
fi
exec python3 scripts/loadbench.py --binary "${CARGO_TARGET_DIR:-target}/release/switchyard" "$@"
