#!/usr/bin/env bash
# Server CPU per enrollment by the way a request arrives (direct 3GPP, RA-
# signed, nested by an RA), in process with bench_server, on a throw-away
# PKI and SQLite store. Prints bench_server's table and RESULT line.
# Knobs: ROUNDS (7), PER (100 enrollments per mode and round), NDEV (200),
# BUILD (build/release), KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
ROUNDS=${ROUNDS:-7}; PER=${PER:-100}; NDEV=${NDEV:-200}
CMPCA=$(realpath "$BUILD/cmpca")
T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-bsrv.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$T"' EXIT
cli() { (cd "$T" && "$CMPCA" -c "$T/cmpca.conf" "$@"); }
cat >"$T/cmpca.conf" <<CONF
[server]
listen = 127.0.0.1:0
log_level = error
allow_root = yes
[store]
path = cmpca.db
[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
allow_reenroll = yes
enroll_max_per_window = 0
[alias ra]
mode = ra
ca = issuing
profile = radev
vendors = acme
allow_reenroll = yes
enroll_max_per_window = 0
[alias rasetup]
mode = 3gpp
ca = issuing
profile = racert
vendors = acme
[profile device]
validity = 365d
subject = CN=\${vendor.serialNumber},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
[profile radev]
validity = 365d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
[profile racert]
validity = 30d
subject = CN=RA \${vendor.serialNumber},O=Operator
key_usage = digitalSignature
ext_key_usage = 1.3.6.1.5.5.7.3.28,clientAuth
CONF
{
    cli ca create --name root --subject "/O=Operator/CN=Operator Root" --no-passphrase \
        --key-out "$T/root.key"
    cli ca create --name issuing --parent root --subject "/O=Operator/CN=Issuing CA" \
        --no-passphrase --key-out "$T/issuing.key"
    cli ca signer --ca issuing --no-passphrase --key-out "$T/signer.key"
    cli factory ca create --dir vendor --name Acme
    cli factory issue --dir vendor --out devs --count "$NDEV" --prefix SN- --quiet
    cli vendor add --name acme --ca vendor/vendor-chain.pem
    cli device import --vendor acme devs/allowlist.csv
    cli ca show issuing --pem >"$T/opchain.pem"
    cli ca show root --pem >"$T/root.pem"
} >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; exit 1; }
# the RA's own certificate, enrolled like a device on the rasetup alias
mkdir -p "$T/radev"; mv "$T/devs/SN-000001" "$T/radev/"
(cd "$T" && "$CMPCA" -c cmpca.conf serve --port-file "$T/port" >"$T/serve.log" 2>&1) &
SPID=$!
for _ in $(seq 600); do [ -s "$T/port" ] && break; sleep 0.1; done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ra.key" 2>/dev/null
(cd "$T" && timeout 30 openssl cmp -server "127.0.0.1:$(cat "$T/port")" \
    -path .well-known/cmp/p/rasetup -cmd ir -cert radev/SN-000001/cert.pem \
    -key radev/SN-000001/key.pem -extracerts radev/SN-000001/chain.pem -trusted root.pem \
    -newkey ra.key -subject /CN=RA -certout ra.pem) >"$T/ra.log" 2>&1 || { cat "$T/ra.log"; exit 1; }
kill "$SPID"; wait "$SPID" 2>/dev/null || true
cli ra add --name bench-ra --cert ra.pem --alias ra >>"$T/setup.log" 2>&1
"$BUILD/bench/bench_server" -c "$T/cmpca.conf" --devices "$T/devs" --trusted "$T/root.pem" \
    --ra-cert "$T/ra.pem" --ra-key "$T/ra.key" --ra-chain "$T/opchain.pem" \
    --rounds "$ROUNDS" --per-round "$PER"
