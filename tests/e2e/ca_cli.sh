#!/bin/bash
# End-to-end test of the CA admin commands with the real cmpca binary:
# CAs of every key type, issuance from a CSR, revocation, CRLs checked with
# openssl, CMP signer, import, PKCS#11 (SoftHSM2), and clean failures.
set -u
BUILD=${BUILD:-build/release}
CMPCA=$(realpath "$BUILD/cmpca")
T=$(mktemp -d "${TMPDIR:-/tmp}/ca_cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }
check() { local d=$1; shift; if "$@" >"$T/out" 2>&1; then ok "$d"; else nok "$d"; sed 's/^/# /' "$T/out"; fi; }
is() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', wanted '$3')"; fi; }
# expect_fail DESC CODE PATTERN CMD...: exit code CODE and PATTERN on stderr
expect_fail() {
    local d=$1 code=$2 pat=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ "$rc" = "$code" ] && grep -q -- "$pat" "$T/err"; then ok "$d"
    else nok "$d (exit $rc, wanted $code /$pat/)"; sed 's/^/# /' "$T/err"; fi
}
snapshot() { "$CMPCA" ca list --json; "$CMPCA" cert list --json; }

cd "$T"
export CMPCA_CONFIG=$T/cmpca.conf
echo "root secret" > root.pass
echo "issuing secret" > issuing.pass
export WRONG_PASS="not the secret"
types="ec:P-256 ec:P-384 rsa:2048 ed25519 ed448"
{
    echo "[store]"
    echo "path = cmpca.db"
    echo "synchronous = normal"
    for t in $types; do
        s=${t//:/_}; s=${s//-/}
        printf '[ca root_%s]\nkey_pass = file:%s/root.pass\n' "$s" "$T"
        printf '[ca iss_%s]\nkey_pass = file:%s/issuing.pass\ncrl_validity = 3d\n' "$s" "$T"
    done
    cat <<'EOC'
[ca hsm]
pkcs11_pin = env:HSM_PIN
[profile device]
validity = 30d
subject = CN=${request.CN},O=Operator
key_usage = digitalSignature,keyAgreement
ext_key_usage = clientAuth
crl_url = http://crl.example/ca.crl
key_types = ec:P-256,ec:P-384,rsa:2048-4096,ed25519
[profile bad]
validity = 30d
colour = blue
EOC
} > cmpca.conf

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout dev.key -subj "/CN=device-1" -out dev.csr 2>/dev/null

for t in $types; do
    s=${t//:/_}; s=${s//-/}
    check "$t: create root" "$CMPCA" ca create --name "root_$s" \
        --subject "/O=Operator/CN=Root $t" --key-type "$t" --pass "file:$T/root.pass"
    check "$t: create issuing CA" "$CMPCA" ca create --name "iss_$s" \
        --subject "CN=Issuing $t,O=Operator" --key-type "$t" --parent "root_$s" \
        --pass "file:$T/issuing.pass"
    "$CMPCA" ca show "root_$s" --pem > "root_$s.pem"
    "$CMPCA" ca show "iss_$s" --pem > "iss_$s.pem"
    m=$(stat -c %a "iss_$s.key.pem")
    [ "$m" = 600 ] && ok "$t: key file mode 0600" || nok "$t: key file mode $m"
    grep -q "ENCRYPTED PRIVATE KEY" "iss_$s.key.pem" && ok "$t: key encrypted" \
        || nok "$t: key encrypted"
    check "$t: issue from CSR" "$CMPCA" cert issue --ca "iss_$s" --profile device \
        --csr dev.csr -o "dev_$s.pem"
    check "$t: openssl verify" openssl verify -CAfile "root_$s.pem" \
        -untrusted "iss_$s.pem" "dev_$s.pem"
    serial=$(openssl x509 -in "dev_$s.pem" -noout -serial | cut -d= -f2)
    check "$t: revoke" "$CMPCA" cert revoke --ca "iss_$s" --serial "$serial" \
        --reason keyCompromise
    check "$t: crl" "$CMPCA" crl --ca "iss_$s" -o "iss_$s.crl"
    check "$t: root crl" "$CMPCA" crl --ca "root_$s" -o "root_$s.crl"
    check "$t: openssl crl -verify" openssl crl -in "iss_$s.crl" -noout -verify \
        -CAfile "iss_$s.pem"
    openssl verify -crl_check_all -CRLfile "iss_$s.crl" -CRLfile "root_$s.crl" \
        -CAfile "root_$s.pem" -untrusted "iss_$s.pem" "dev_$s.pem" > out 2>&1
    grep -q "certificate revoked" out && ok "$t: openssl verify -crl_check: revoked" \
        || { nok "$t: openssl verify -crl_check: revoked"; sed 's/^/# /' out; }
done

# CRL details: number increases, reason code present
openssl crl -in iss_ec_P256.crl -noout -text > crl.txt
grep -q "Key Compromise" crl.txt && ok "CRL carries the reason code" || nok "CRL reason"
grep -A1 "CRL Number" crl.txt | grep -q "^ *2$" && ok "CRL number 2 after revoke+crl" \
    || { nok "CRL number"; sed 's/^/# /' crl.txt; }
expect_fail "revoking twice: exit 4" 4 "already revoked" \
    "$CMPCA" cert revoke --ca iss_ec_P256 \
    --serial "$(openssl x509 -in dev_ec_P256.pem -noout -serial | cut -d= -f2)"
check "cert export" "$CMPCA" cert export --ca iss_ec_P256 -o exp.pem \
    --serial "$(openssl x509 -in dev_ec_P256.pem -noout -serial | cut -d= -f2)"
cmp -s exp.pem dev_ec_P256.pem && ok "exported certificate matches" || nok "export"
"$CMPCA" cert list --ca iss_ec_P256 --status revoked --json > list.json
grep -q '"status": "revoked"' list.json && ok "cert list --status revoked" \
    || nok "cert list"

# CMP signer
check "ca signer" "$CMPCA" ca signer --ca iss_ec_P256 --pass "file:$T/issuing.pass"
"$CMPCA" ca show iss_ec_P256 --json > show.json
grep -q '"subject": "CN=iss_ec_P256 CMP signer"' show.json && ok "CMP signer recorded" \
    || { nok "CMP signer recorded"; sed 's/^/# /' show.json; }
"$CMPCA" cert list --ca iss_ec_P256 --json | grep -q '"profile": "cmp-signer"' \
    && ok "CMP signer cert in the certificate table" || nok "CMP signer cert listed"

# import an OpenSSL-made CA
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ext_root.key -subj "/CN=Ext Root" -days 100 -out ext_root.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ext_sub.key -subj "/CN=Ext Sub" -out ext_sub.csr 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n' > ext.cnf
openssl x509 -req -in ext_sub.csr -CA ext_root.pem -CAkey ext_root.key -days 50 \
    -extfile ext.cnf -out ext_sub.pem 2>/dev/null
expect_fail "import: key does not match: exit 5" 5 "does not match" \
    "$CMPCA" ca import --name ext --cert ext_sub.pem --key ext_root.key --chain ext_root.pem
expect_fail "import: chain without root" 1 "self-signed root" \
    "$CMPCA" ca import --name ext --cert ext_sub.pem --key ext_sub.key
check "import with chain" "$CMPCA" ca import --name ext --cert ext_sub.pem \
    --key ext_sub.key --chain ext_root.pem
check "issue from the imported CA" "$CMPCA" cert issue --ca ext --profile device \
    --csr dev.csr -o dev_ext.pem
check "verify against the external root" openssl verify -CAfile ext_root.pem \
    -untrusted ext_sub.pem dev_ext.pem

# failures leave the store unchanged
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout dev2.key -subj "/CN=device-2" -out dev2.csr 2>/dev/null
openssl req -new -newkey rsa:1024 -nodes -keyout weak.key -subj "/CN=weak" \
    -out weak.csr 2>/dev/null
listing() { ls | grep -v -e '\.json$' -e '^files_'; }
snapshot > before.json
listing > files_before
expect_fail "wrong passphrase: exit 5" 5 "wrong passphrase" \
    "$CMPCA" cert issue --ca iss_ec_P256 --profile device --csr dev2.csr \
    --ca-pass env:WRONG_PASS
expect_fail "wrong parent passphrase: exit 5" 5 "wrong passphrase" \
    "$CMPCA" ca create --name newca --subject /CN=New --parent root_ec_P256 \
    --parent-pass env:WRONG_PASS --no-passphrase
mv iss_ec_P384.key.pem moved.key
expect_fail "unreadable key: exit 5" 5 "cannot read key" \
    "$CMPCA" crl --ca iss_ec_P384
mv moved.key iss_ec_P384.key.pem
expect_fail "bad profile: exit 7 with file:line" 7 "cmpca.conf:[0-9]*: unknown key 'colour'" \
    "$CMPCA" cert issue --ca iss_ec_P256 --profile bad --csr dev2.csr
expect_fail "passphrase on argv refused" 2 "file:PATH" \
    "$CMPCA" ca create --name x --subject /CN=x --pass secret
expect_fail "existing CA name: exit 4" 4 "exists" \
    "$CMPCA" ca create --name root_ec_P256 --subject /CN=x --no-passphrase
expect_fail "key type refused by the profile" 1 "not allowed" \
    "$CMPCA" cert issue --ca iss_ec_P256 --profile device --csr weak.csr
expect_fail "unknown CA: exit 3" 3 "no CA named" "$CMPCA" crl --ca nosuch
snapshot > after.json
listing > files_after
cmp -s before.json after.json && ok "store unchanged by the failures" \
    || { nok "store unchanged"; diff before.json after.json | head -20 | sed 's/^/# /'; }
cmp -s files_before files_after && ok "no key files left behind" \
    || { nok "no files left behind"; diff files_before files_after | sed 's/^/# /'; }

# PKCS#11 (SoftHSM2)
MOD=/usr/lib/softhsm/libsofthsm2.so
if [ -r "$MOD" ] && command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null; then
    mkdir tokens
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" > softhsm2.conf
    export SOFTHSM2_CONF=$T/softhsm2.conf
    softhsm2-util --init-token --free --label cmpca --pin 1234 --so-pin 5678 >/dev/null
    pkcs11-tool --module $MOD --token-label cmpca --keypairgen --key-type EC:prime256v1 \
        --id 01 --label ca --login --pin 1234 >/dev/null 2>&1
    URI="pkcs11:token=cmpca;object=ca;type=private"
    export HSM_PIN=9999
    expect_fail "pkcs11: wrong PIN: exit 5" 5 "PIN" \
        "$CMPCA" ca create --name hsm --subject "/CN=HSM Root" --pkcs11 "$URI"
    export HSM_PIN=1234
    check "pkcs11: create CA on the token" "$CMPCA" ca create --name hsm \
        --subject "/CN=HSM Root" --pkcs11 "$URI"
    "$CMPCA" ca show hsm --pem > hsm.pem
    check "pkcs11: issue" "$CMPCA" cert issue --ca hsm --profile device --csr dev2.csr -o dev_hsm.pem
    check "pkcs11: verify" openssl verify -CAfile hsm.pem dev_hsm.pem
    check "pkcs11: crl" "$CMPCA" crl --ca hsm -o hsm.crl
    check "pkcs11: crl verifies" openssl crl -in hsm.crl -noout -verify -CAfile hsm.pem
    # root CA key rollover to a second key on the token
    pkcs11-tool --module $MOD --token-label cmpca --keypairgen --key-type EC:prime256v1 \
        --id 02 --label ca2 --login --pin 1234 >/dev/null 2>&1
    URI2="pkcs11:token=cmpca;object=ca2;type=private"
    check "pkcs11: ca rollover to a second token key" "$CMPCA" ca rollover hsm --pkcs11 "$URI2"
    is "pkcs11: the CA refers to the new token key" \
        "$(sqlite3 cmpca.db "SELECT key_ref FROM ca WHERE name='hsm'")" "$URI2"
    sqlite3 cmpca.db "SELECT hex(new_with_old) FROM ca_rollover r JOIN ca c ON c.id=r.ca_id WHERE c.name='hsm'" |
        xxd -r -p | openssl x509 -inform DER -out hsm-nwo.pem
    check "pkcs11: newWithOld verifies with the old token key" openssl verify -CAfile hsm.pem hsm-nwo.pem
    "$CMPCA" ca show hsm --pem > hsm2.pem
    check "pkcs11: crl after the rollover" "$CMPCA" crl --ca hsm -o hsm2.crl
    check "pkcs11: it verifies with the new root" openssl crl -in hsm2.crl -noout -verify -CAfile hsm2.pem
else
    ok "# SKIP pkcs11: softhsm2/opensc not installed"
fi

echo "1..$n"
exit $failed
