#!/bin/bash
# Interop: a vendor CA and a device made only with plain `openssl` commands
# (genpkey/req/x509) enroll, renew and revoke with the stock `openssl cmp`
# client against `cmpca serve`; and cmpenroll uses the same device files.
set -u
BUILD=${BUILD:-build/release}
if ! "$BUILD/cmpca" serve --help >/dev/null 2>&1; then
    echo "ok 1 - # SKIP cmpca serve not available"
    echo "1..1"
    exit 0
fi
CMPCA=$(realpath "$BUILD/cmpca")
E=$(realpath "$BUILD/cmpenroll")
T=$(mktemp -d "${TMPDIR:-/tmp}/plain_openssl.XXXXXX")
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
key_types = ec:P-256,ec:P-384,ed25519,rsa:2048-4096

[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = plain
EOF
}

cd "$T"
export CMPCA_CONFIG=$T/cmpca.conf
echo "operator secret" > op.pass
write_config

# ---- vendor CA and devices with plain openssl ----------------------------------------
cat > ext.cnf <<'EOF'
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[dev]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out vroot.key 2>/dev/null
openssl req -x509 -new -key vroot.key -subj "/O=Plain Vendor/CN=Plain Root" -days 3650 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out vroot.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out vca.key 2>/dev/null
openssl req -new -key vca.key -subj "/O=Plain Vendor/CN=Plain CA" 2>/dev/null |
    openssl x509 -req -CA vroot.pem -CAkey vroot.key -days 3000 -extfile ext.cnf \
    -extensions ca -out vca.pem 2>/dev/null
for sn in PLAIN-1 PLAIN-2; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$sn.key" 2>/dev/null
    openssl req -new -key "$sn.key" -subj "/serialNumber=$sn/CN=$sn/O=Plain Vendor" 2>/dev/null |
        openssl x509 -req -CA vca.pem -CAkey vca.key -days 3000 -extfile ext.cnf \
        -extensions dev -out "$sn.pem" 2>/dev/null
done
cat vca.pem vroot.pem > chain.pem
expect "device made with openssl verifies" 0 openssl verify -CAfile vroot.pem -untrusted vca.pem PLAIN-1.pem
printf 'identifier\nPLAIN-1\nPLAIN-2\n' > allow.csv

# ---- operator -----------------------------------------------------------------------
expect "operator root" 0 "$CMPCA" ca create --name root --subject "/O=Operator/CN=Operator Root" \
    --pass "file:$T/op.pass"
expect "operator issuing CA" 0 "$CMPCA" ca create --name issuing --parent root \
    --subject "/O=Operator/CN=Operator Issuing CA" --pass "file:$T/op.pass" \
    --parent-pass "file:$T/op.pass"
"$CMPCA" ca show root --pem 2>/dev/null | awk '/BEGIN/{n++} n==1' > root.pem
expect "vendor add" 0 "$CMPCA" vendor add --name plain --ca vca.pem --ca vroot.pem
expect "device import" 0 "$CMPCA" device import --vendor plain allow.csv
serve_user_own "$T"
"$CMPCA" serve --port-file port >serve.log 2>&1 &
SRV=$!
for i in $(seq 1 100); do [ -s port ] && break; sleep 0.05; done
[ -s port ] && ok "cmpca serve started" || { nok "cmpca serve started"; sed 's/^/# /' serve.log; echo "1..$n"; exit 1; }
PORT=$(cat port)

# ---- stock openssl cmp client: ir, kur, rr --------------------------------------------
CMP=(openssl cmp -server "127.0.0.1:$PORT" -path .well-known/cmp/p/3gpp -trusted root.pem)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec1.key 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec1b.key 2>/dev/null
expect "openssl cmp ir (vendor cert, new key)" 0 "${CMP[@]}" -cmd ir \
    -cert PLAIN-1.pem -key PLAIN-1.key -extracerts chain.pem \
    -newkey ec1.key -subject "/CN=PLAIN-1" -certout op1.pem
expect "issued certificate chains to the operator root" 0 openssl verify -CAfile root.pem \
    -untrusted <("$CMPCA" ca show issuing --pem 2>/dev/null) op1.pem
expect "openssl cmp kur (operator cert, new key)" 0 "${CMP[@]}" -cmd kur \
    -cert op1.pem -key ec1.key -newkey ec1b.key -certout op1b.pem
expect "openssl cmp rr" 0 "${CMP[@]}" -cmd rr -cert op1b.pem -key ec1b.key -oldcert op1b.pem
expect "openssl cmp ir signed by a non-vendor certificate is refused" 1 "${CMP[@]}" -cmd ir \
    -cert op1b.pem -key ec1b.key -newkey ec1.key -subject "/CN=x" -certout x.pem

# ---- cmpenroll with the same plain-openssl device files ------------------------------------
expect "cmpenroll enrolls the second openssl-made device" 0 "$E" enroll \
    -s "http://127.0.0.1:$PORT/.well-known/cmp/p/3gpp" -d st2 \
    --vendor-key PLAIN-2.key --vendor-cert PLAIN-2.pem --vendor-chain chain.pem
cmp -s st2/root.pem root.pem && ok "root taken from the ip is the operator root" || nok "root.pem"

echo "1..$n"
exit $failed
