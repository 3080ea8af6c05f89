#!/usr/bin/env bash
# Installs what the test suite uses besides Rust, when it is missing: real clients the tests
# drive (curl, and headless Chromium for the status page test). Debian packages only; safe to
# run again.
set -euo pipefail

missing=()
command -v curl >/dev/null || missing+=(curl)
[[ -x /usr/bin/chromium ]] || command -v chromium >/dev/null || missing+=(chromium)

if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
