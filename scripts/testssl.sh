#!/usr/bin/env bash
# Audits Switchyard's TLS termination with testssl.sh (Debian's package): protocols, cipher
# categories, forward secrecy, server defaults, known vulnerabilities and HTTP headers.
#
# Not part of the fast test suite: it installs a package, builds the release binary when it
# is missing and takes a few minutes. Run from anywhere:  scripts/testssl.sh
#
# It starts the balancer with an empty apps file and a throwaway self-signed certificate for
# tls.example.com, prints every MEDIUM/HIGH/CRITICAL finding and every LOW/WARN one, and exits
# non-zero when a MEDIUM+ finding is about the server itself rather than about that
# certificate's trust, chain, hostname, revocation (OCSP/CRL), CT or expiry.
# Set TESTSSL_JSON=FILE to keep testssl's JSON findings (the temp dir is removed on exit).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# --- 1. Tools -------------------------------------------------------------------------------
missing=()
command -v testssl >/dev/null || missing+=(testssl.sh)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "Installing ${missing[*]}..." >&2
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bin=target/release/switchyard
if [[ ! -x $bin ]]; then
    echo "Building $bin..." >&2
    cargo build --release
fi

# --- 2. Throwaway certificate and apps file -------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-testssl.XXXXXX")
pid=""
cleanup() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=tls.example.com" -addext "subjectAltName=DNS:tls.example.com" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/tls.example.com.pem"
echo '{"apps": []}' >"$tmp/apps.json"

# --- 3. Start the balancer on free ports ----------------------------------------------------
# Ask the kernel for four distinct free ports (bound at once, then released).
read -r http_port https_port app_id_port admin_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

"$bin" --apps-file "$tmp/apps.json" --bind-address 127.0.0.1 \
    --http-port "$http_port" --https-port "$https_port" \
    --app-id-port "$app_id_port" --admin-port "$admin_port" \
    --ssl-certs "$tmp/tls.example.com.pem" >"$tmp/switchyard.log" 2>&1 &
pid=$!

# Wait (at most ~10 s) for the HTTPS port to complete a handshake.
for _ in $(seq 1 50); do
    if curl -sk --max-time 1 "https://127.0.0.1:$https_port/" -o /dev/null; then
        ready=1
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
if [[ -z ${ready:-} ]]; then
    echo "switchyard did not accept TLS on 127.0.0.1:$https_port; its log:" >&2
    cat "$tmp/switchyard.log" >&2
    exit 1
fi
echo "switchyard (pid $pid) serves TLS on 127.0.0.1:$https_port" >&2

# --- 4. Scan --------------------------------------------------------------------------------
# -p protocols, -s cipher categories, -f forward secrecy, -S server defaults/certificate,
# -U vulnerabilities, -h HTTP headers. testssl's exit status counts problems, so it is
# reported rather than fatal; the JSON decides.
json="$tmp/testssl.json"
start=$SECONDS
set +e
testssl --quiet --color 0 --warnings off -p -s -f -S -U -h \
    --jsonfile "$json" "127.0.0.1:$https_port"
testssl_rc=$?
set -e
echo
echo "testssl finished in $((SECONDS - start)) s (exit status $testssl_rc)"
if [[ ! -s $json ]]; then
    echo "testssl wrote no JSON ($json)" >&2
    exit 1
fi

if [[ -n ${TESTSSL_JSON:-} ]]; then
    cp "$json" "$TESTSSL_JSON"
fi

# --- 5. Summary -----------------------------------------------------------------------------
python3 - "$json" <<'EOF'
import json
import re
import sys

findings = json.load(open(sys.argv[1]))

# Findings expected for a throwaway self-signed certificate: trust, chain, self-signature,
# hostname, revocation (OCSP/CRL), Certificate Transparency, CAA, expiry warnings.
CERT_EXPECTED = re.compile(
    r"^(cert_chain_of_trust|cert_trust|cert_caIssuers|cert_ocspURL|cert_crlDistributionPoints"
    r"|cert_revocation|cert_mustStapleExtension|OCSP_stapling|ocsp_|cert_certificateTransparency"
    r"|cert_expirationStatus|cert_validityPeriod|cert_notAfter|cert_commonName"
    r"|cert_subjectAltName|DNS_CAArecord|cert_extlifeSpan)",
    re.IGNORECASE,
)

def show(title, rows):
    print(f"\n{title}: {len(rows)}")
    for f in rows:
        print(f"  {f['id']:<32} {f['severity']:<8} {f['finding']}")

serious = [f for f in findings if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL")]
minor = [f for f in findings if f.get("severity") in ("LOW", "WARN")]
unexpected = [f for f in serious if not CERT_EXPECTED.match(f["id"])]

show("MEDIUM/HIGH/CRITICAL findings", serious)
show("LOW/WARN findings", minor)
show("MEDIUM+ findings not explained by the self-signed certificate", unexpected)
sys.exit(1 if unexpected else 0)
EOF
