#!/bin/bash
# Fleet end-to-end test: `cmpca factory` makes a vendor CA and 100 devices,
# cmpca imports the allow-list, every device enrolls with `cmpenroll` against
# `cmpca serve` (half with a pre-provisioned operator root, half taking it
# from the ip), renews, one revokes; plus refusals (not allow-listed, re-enroll).
set -u
BUILD=${BUILD:-build/release}
if ! "$BUILD/cmpca" serve --help >/dev/null 2>&1; then
    echo "ok 1 - # SKIP cmpca serve not available"
    echo "1..1"
    exit 0
fi
CMPCA=$(realpath "$BUILD/cmpca")
E=$(realpath "$BUILD/cmpenroll")
T=$(mktemp -d "${TMPDIR:-/tmp}/enroll_fleet.XXXXXX")
SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
. "$(dirname "$0")/lib_tap.sh"

# ---- cmpca configuration: the one place that knows the server's keys ----------
write_config() {
    cat > "$T/cmpca.conf" <<EOF
[store]
path = $T/cmpca.db
synchronous = normal

[server]
listen = 127.0.0.1:0
log_level = warn
$(serve_user_line)

[ca root]
key_pass = file:$T/op.pass

[ca issuing]
key_pass = file:$T/op.pass

[profile device]
validity = 30d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
key_types = ec:P-256,ec:P-384,ed25519,rsa:2048-4096

[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
EOF
}

cd "$T"
export CMPCA_CONFIG=$T/cmpca.conf
echo "operator secret" > op.pass
write_config

# ---- factory side -------------------------------------------------------------
expect "factory: vendor CA" 0 "$CMPCA" factory ca create --dir vendor --name "Acme"
expect "factory: 100 devices" 0 "$CMPCA" factory issue --dir vendor --out devices \
    --count 100 --prefix SN- --quiet
expect "factory: one device that is never allow-listed" 0 "$CMPCA" factory issue \
    --dir vendor --out rogue --count 1 --prefix ROGUE- --quiet

# ---- operator side --------------------------------------------------------------
expect "operator root CA" 0 "$CMPCA" ca create --name root --subject "/O=Operator/CN=Operator Root" \
    --pass "file:$T/op.pass"
expect "operator issuing CA" 0 "$CMPCA" ca create --name issuing --parent root \
    --subject "/O=Operator/CN=Operator Issuing CA" --pass "file:$T/op.pass" \
    --parent-pass "file:$T/op.pass"
"$CMPCA" ca show root --pem 2>/dev/null | awk '/BEGIN/{n++} n==1' > root.pem
openssl x509 -in root.pem -noout -subject 2>/dev/null | grep -q "Operator Root" \
    && ok "operator root exported" || nok "operator root exported"
expect "vendor add" 0 "$CMPCA" vendor add --name acme --ca vendor/vendor-ca.pem \
    --ca vendor/vendor-root.pem
expect "device import of the allow-list" 0 "$CMPCA" device import --vendor acme \
    devices/allowlist.csv
serve_user_own "$T"
"$CMPCA" serve --port-file port >serve.log 2>&1 &
SRV=$!
for i in $(seq 1 100); do [ -s port ] && break; sleep 0.05; done
if [ ! -s port ]; then
    nok "cmpca serve started"; sed 's/^/# /' serve.log
    echo "1..$n"; exit 1
fi
ok "cmpca serve started"
URL="http://127.0.0.1:$(cat port)/.well-known/cmp/p/3gpp"

# ---- the fleet: enroll (50 pre-provisioned root, 50 root from the ip), renew ------
enroll_one() {
    local sn=$1 i=$2 trust=()
    [ $((i % 2)) = 0 ] && trust=(--trusted "$T/root.pem")
    "$E" enroll -q -s "$URL" -d "st/$sn" "${trust[@]}" \
        --vendor-key "devices/$sn/key.pem" --vendor-cert "devices/$sn/cert.pem" \
        --vendor-chain "devices/$sn/chain.pem" >"log/$sn.enroll" 2>&1 || echo "$sn enroll $?"
    "$E" renew -q -s "$URL" -d "st/$sn" >"log/$sn.renew" 2>&1 || echo "$sn renew $?"
}
export -f enroll_one
export E URL T
mkdir -p st log
tail -n +2 devices/allowlist.csv | nl -w1 -s' ' | awk '{print $2, $1}' |
    xargs -P 4 -n 2 bash -c 'enroll_one "$0" "$1"' > fleet.failures
[ ! -s fleet.failures ] && ok "100 devices enrolled and renewed" \
    || { nok "fleet failures: $(wc -l < fleet.failures)"; head -5 fleet.failures | sed 's/^/# /';
         f=$(head -1 fleet.failures | cut -d' ' -f1); sed 's/^/# /' "log/$f".* | head -20; }
cnt=$(ls st/*/cert.pem 2>/dev/null | wc -l)
[ "$cnt" = 100 ] && ok "100 stores with a certificate" || nok "$cnt stores"
expect "device cert chains to the operator root" 0 openssl verify -CAfile root.pem \
    -untrusted st/SN-000001/chain.pem st/SN-000001/cert.pem
cmp -s st/SN-000001/root.pem root.pem && ok "root delivered in the ip installed (odd devices)" \
    || nok "SN-000001 root.pem"
cmp -s st/SN-000002/root.pem root.pem && ok "pre-provisioned root kept (even devices)" \
    || nok "SN-000002 root.pem"
expect "status after renewal" 0 "$E" status -d st/SN-000003
grep_ok "issued by the operator" "Operator Issuing CA" "$T/.stdout"

# ---- one device revokes ------------------------------------------------------------
expect "revoke one device" 0 "$E" revoke -s "$URL" -d st/SN-000004 --reason 1
expect "renewal of the revoked certificate is refused" 5 "$E" renew -s "$URL" -d st/SN-000004

# ---- refusals ------------------------------------------------------------------------
expect "device not on the allow-list is rejected (no retry)" 5 "$E" enroll -s "$URL" \
    -d st/rogue --trusted root.pem --vendor-key rogue/ROGUE-000001/key.pem \
    --vendor-cert rogue/ROGUE-000001/cert.pem --vendor-chain rogue/ROGUE-000001/chain.pem -v
[ "$(grep -c -- '-> ir' "$T/.stderr")" = 1 ] && ok "rejection not retried" || nok "rejection retried"
[ ! -e st/rogue/cert.pem ] && ok "rejected device has nothing installed" || nok "rogue installed"
expect "second enrollment of an enrolled device is rejected" 5 "$E" enroll -s "$URL" \
    -d st/again --trusted root.pem --vendor-key devices/SN-000005/key.pem \
    --vendor-cert devices/SN-000005/cert.pem --vendor-chain devices/SN-000005/chain.pem
expect "wrong pre-provisioned root: not trusted" 6 "$E" enroll -s "$URL" -d st/wrong \
    --trusted vendor/vendor-root.pem --vendor-key devices/SN-000006/key.pem \
    --vendor-cert devices/SN-000006/cert.pem --vendor-chain devices/SN-000006/chain.pem

kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
SRV=""
expect "server down: bounded retries, exit code 4" 4 "$E" renew -s "$URL" \
    -d st/SN-000007 --retries 2 --backoff 50

echo "1..$n"
exit $failed
