#!/usr/bin/env bash
# Installs what the test suite uses besides Rust, when it is missing: real clients the tests
# drive (curl, headless Chromium for the status page test, and Prometheus' promtool to check
# `/metrics`). Debian packages only; safe to run again.
set -euo pipefail

missing=()
command -v curl >/dev/null || missing+=(curl)
[[ -x /usr/bin/chromium ]] || command -v chromium >/dev/null || missing+=(chromium)
# promtool ships in the server's package; the server itself is not wanted running (below).
command -v promtool >/dev/null || missing+=(prometheus)

if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    # Where nothing stops packages from starting their services (container images do), stop
    # them for this install only: a Prometheus server would scrape loopback ports during tests.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
        trap '$sudo rm -f "$policy"' EXIT
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
