#!/bin/bash
# End-to-end test of `cmpca factory`: vendor CA creation, bulk issuance of
# device credentials (PEM and PKCS#12), serial lists, the allow-list, and
# refusals (existing CA or device, wrong passphrase, bad serials, bad output).
set -u
BUILD=${BUILD:-build/release}
CMPCA=$(realpath "$BUILD/cmpca")
T=$(mktemp -d "${TMPDIR:-/tmp}/factory.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib_tap.sh"

cd "$T"
echo "vendor secret" > ca.pass
echo "p12 secret" > p12.pass

# ---- vendor CA ----------------------------------------------------------------
expect "ca create" 0 "$CMPCA" factory ca create --dir vca --name "Acme Vendor" \
    --pass "file:$T/ca.pass"
for f in vendor-root.pem vendor-root.key vendor-ca.pem vendor-ca.key vendor-chain.pem; do
    [ -s "vca/$f" ] || nok "missing vca/$f"
done
[ "$(stat -c %a vca/vendor-ca.key)" = 600 ] && [ "$(stat -c %a vca/vendor-root.key)" = 600 ] \
    && ok "CA keys mode 0600" || nok "CA key modes"
grep -q "ENCRYPTED PRIVATE KEY" vca/vendor-ca.key && ok "CA key encrypted" || nok "CA key encrypted"
expect "issuing CA verifies against the root" 0 openssl verify -CAfile vca/vendor-root.pem vca/vendor-ca.pem
openssl x509 -in vca/vendor-ca.pem -noout -ext basicConstraints,keyUsage > ext.txt 2>&1
grep_ok "issuing CA is a CA with pathlen 0" "CA:TRUE, pathlen:0" ext.txt
grep_ok "issuing CA keyUsage keyCertSign" "Certificate Sign" ext.txt
cp vca/vendor-ca.pem ca.before
expect "ca create refuses to overwrite" 4 "$CMPCA" factory ca create --dir vca \
    --name "Other" --pass "file:$T/ca.pass"
cmp -s ca.before vca/vendor-ca.pem && ok "existing CA untouched" || nok "CA overwritten"
expect "ca create needs --name" 2 "$CMPCA" factory ca create --dir x
expect "ca create with RSA keys, unencrypted" 0 "$CMPCA" factory ca create --dir rca \
    --name "RSA Vendor" --key-type rsa:2048
grep_ok "warns about unencrypted keys" "not encrypted" "$T/.stderr"

# ---- bulk issuance ------------------------------------------------------------
expect "issue 100 devices" 0 "$CMPCA" factory issue --dir vca --out out \
    --count 100 --prefix SN- --pass "file:$T/ca.pass" --threads 2
grep_ok "reports the rate" "devices/s" "$T/.stderr"
[ "$(ls -d out/SN-* | wc -l)" = 100 ] && ok "100 device directories" || nok "device count"
[ -d out/SN-000001 ] && [ -d out/SN-000100 ] && ok "serials SN-000001..SN-000100" || nok "serial names"
[ "$(head -1 out/allowlist.csv)" = identifier ] && ok "allow-list header" || nok "allow-list header"
[ "$(wc -l < out/allowlist.csv)" = 101 ] && ok "allow-list has 100 devices" || nok "allow-list lines"
[ "$(stat -c %a out/SN-000042/key.pem)" = 600 ] && ok "device key mode 0600" || nok "device key mode"
expect "device cert verifies with its chain" 0 openssl verify -CAfile vca/vendor-root.pem \
    -untrusted out/SN-000042/chain.pem out/SN-000042/cert.pem
openssl x509 -in out/SN-000042/cert.pem -noout -subject -nameopt RFC2253 > subj.txt
grep_ok "subject serialNumber=SN-000042,CN,O=vendor" "O=Acme Vendor,CN=SN-000042,serialNumber=SN-000042" subj.txt
openssl x509 -in out/SN-000042/cert.pem -noout -ext keyUsage,basicConstraints > ext.txt 2>&1
grep_ok "device keyUsage digitalSignature" "Digital Signature" ext.txt
grep_ok "device is not a CA" "CA:FALSE" ext.txt
openssl x509 -in out/SN-000042/cert.pem -noout -enddate | grep -q "20[4-9][0-9] GMT" \
    && ok "long validity (about 20 years)" || nok "validity $(openssl x509 -in out/SN-000042/cert.pem -noout -enddate)"
a=$(openssl pkey -in out/SN-000042/key.pem -pubout 2>/dev/null | sha256sum)
b=$(openssl x509 -in out/SN-000042/cert.pem -noout -pubkey | sha256sum)
[ "$a" = "$b" ] && ok "key matches certificate" || nok "key/cert mismatch"
openssl pkey -in out/SN-000042/key.pem -noout -text 2>/dev/null | grep -q "P-256" \
    && ok "device key is P-256" || nok "device key type"
for d in out/SN-*; do openssl x509 -in "$d/cert.pem" -noout -serial; done | sort | uniq -d > dups
[ ! -s dups ] && ok "certificate serial numbers are unique" || nok "duplicate serials"

cp out/SN-000001/cert.pem c1.before
expect "re-issuing an existing device is refused" 4 "$CMPCA" factory issue --dir vca \
    --out out --count 5 --prefix SN- --pass "file:$T/ca.pass"
cmp -s c1.before out/SN-000001/cert.pem && ok "existing device untouched" || nok "device overwritten"
expect "wrong CA passphrase" 5 env BAD=nope "$CMPCA" factory issue --dir vca --out o2 \
    --count 1 --prefix X- --pass env:BAD
expect "passphrase on the command line is not accepted" 5 "$CMPCA" factory issue \
    --dir vca --out o2 --count 1 --prefix X- --pass "vendor secret"

# ---- serial lists ------------------------------------------------------------------
printf 'identifier\n# batch 7\nACME-0001\n\nACME-0002\n  ACME-0003  \n' > list.txt
expect "issue from a list" 0 "$CMPCA" factory issue --dir vca --out out --list list.txt \
    --pass "file:$T/ca.pass"
[ -f out/ACME-0003/cert.pem ] && ok "listed devices issued" || nok "listed devices"
[ "$(wc -l < out/allowlist.csv)" = 104 ] && ok "allow-list covers both batches" \
    || nok "allow-list lines $(wc -l < out/allowlist.csv)"
"$CMPCA" factory allowlist --out out > exported.csv
cmp -s exported.csv out/allowlist.csv && ok "factory allowlist = allowlist.csv" || nok "allowlist export"
printf 'A-1\nA-2\nA-1\n' > dup.txt
expect "duplicate serial in a list" 2 "$CMPCA" factory issue --dir vca --out out \
    --list dup.txt --pass "file:$T/ca.pass"
printf 'ok-1\nbad/serial\n' > bad.txt
expect "invalid serial in a list" 2 "$CMPCA" factory issue --dir vca --out out \
    --list bad.txt --pass "file:$T/ca.pass"
grep_ok "says which line" "bad.txt:2" "$T/.stderr"
expect "prefix with an invalid character" 2 "$CMPCA" factory issue --dir vca --out out \
    --count 1 --prefix "a b" --pass "file:$T/ca.pass"
expect "--count and --list together" 2 "$CMPCA" factory issue --dir vca --out out \
    --count 1 --prefix X --list list.txt --pass "file:$T/ca.pass"

# ---- PKCS#12 ---------------------------------------------------------------------
expect "issue PKCS#12" 0 "$CMPCA" factory issue --dir vca --out p12 --count 3 \
    --prefix P- --start 7 --digits 3 --format p12 --p12-pass "file:$T/p12.pass" \
    --pass "file:$T/ca.pass"
[ -f p12/P-007/device.p12 ] && [ -f p12/P-009/device.p12 ] && ok "P-007..P-009 written" || nok "p12 files"
[ "$(stat -c %a p12/P-008/device.p12)" = 600 ] && ok "p12 mode 0600" || nok "p12 mode"
openssl pkcs12 -in p12/P-008/device.p12 -passin "file:$T/p12.pass" -nodes 2>/dev/null > p12.txt
grep_ok "p12 holds the key" "PRIVATE KEY" p12.txt
[ "$(grep -c 'BEGIN CERTIFICATE' p12.txt)" = 3 ] && ok "p12 holds cert + chain" || nok "p12 certs"
expect "p12 without a passphrase" 2 "$CMPCA" factory issue --dir vca --out p12 \
    --count 1 --prefix Q- --format p12 --pass "file:$T/ca.pass"

# ---- other key types, failures -------------------------------------------------------
expect "ed25519 devices from an RSA CA" 0 "$CMPCA" factory issue --dir rca --out ed \
    --count 4 --prefix E- --key-type ed25519
expect "ed25519 device verifies" 0 openssl verify -CAfile rca/vendor-root.pem \
    -untrusted ed/E-000001/chain.pem ed/E-000001/cert.pem
expect "unknown key type" 1 "$CMPCA" factory issue --dir rca --out ed --count 1 \
    --prefix F- --key-type dsa:1024
touch afile
expect "output under a file fails cleanly" 1 "$CMPCA" factory issue --dir rca \
    --out afile/out --count 2 --prefix G-
expect "missing CA directory" 3 "$CMPCA" factory issue --dir nope --out x --count 1 --prefix G-
cp -r rca nokey && rm nokey/vendor-ca.key
expect "missing CA key: not found" 3 "$CMPCA" factory issue --dir nokey --out x \
    --count 1 --prefix G-
cp -r rca swapped && cp rca/vendor-root.key swapped/vendor-ca.key
expect "CA key not matching its certificate: exit 5" 5 "$CMPCA" factory issue \
    --dir swapped --out x --count 1 --prefix G-
grep_ok "says the key does not match" "does not match" "$T/.stderr"
cp -r rca badcert && echo garbage > badcert/vendor-ca.pem
expect "damaged CA certificate: exit 1" 1 "$CMPCA" factory issue --dir badcert --out x \
    --count 1 --prefix G-
[ ! -e x ] && ok "nothing issued after CA load failures" || nok "x was created"

# ---- a factory-made device enrolls with cmpenroll (openssl mock server) ----------------
E=$BUILD/cmpenroll
if [ -x "$E" ]; then
    E=$(realpath "$E")
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout op.key -subj "/CN=Operator Root" -days 365 -out op.pem 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out new.key 2>/dev/null
    openssl req -new -key new.key -subj "/CN=SN-000007" 2>/dev/null |
        openssl x509 -req -CA op.pem -CAkey op.key -days 30 -out new.pem 2>/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    openssl cmp -port "$port" -srv_cert op.pem -srv_key op.key -srv_trusted vca/vendor-root.pem \
        -rsp_cert new.pem -rsp_extracerts op.pem >mock.log 2>&1 &
    mock=$!
    for i in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    expect "factory device enrolls (3GPP root from the ip)" 0 "$E" enroll \
        -s "http://127.0.0.1:$port/" -d dev7 --vendor-key out/SN-000007/key.pem \
        --vendor-cert out/SN-000007/cert.pem --vendor-chain out/SN-000007/chain.pem --key new.key
    kill "$mock" 2>/dev/null
fi

echo "1..$n"
exit $failed
