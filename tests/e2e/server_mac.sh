#!/usr/bin/env bash
# MAC client mode end to end with the stock openssl cmp client: devices
# registered with a one-time secret (`cmpca device add --secret-file` /
# `--generate-secret`) enroll with `-secret pass:... -ref REF`; a wrong
# secret is refused (signed error, failure counted, audit row) and locks
# the reference after mac_max_failures; the secret is consumed by the
# certConf (reuse refused) and `device unlock` / `set-secret` work;
# implicitConfirm is granted on an alias that allows it (no certConf, the
# certificate final at once) and refused elsewhere; the secret is not in
# the database file in plaintext; every refusal changes nothing else.
# shellcheck disable=SC2046
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 4
openssl rand -hex 32 >"$T/kek.hex"
sed -i 's|^\[server\]$|[server]\nsecret_kek = file:kek.hex|' "$T/cmpca.conf"
cat >>"$T/cmpca.conf" <<EOF
[alias mac]
mode = mac
ca = issuing
profile = macdev
mac_max_failures = 3
mac_max_iterations = 20000
[alias macic]
mode = mac
ca = issuing
profile = macdev
implicit_confirm = yes
mac_response = sign
[alias macv]
mode = mac
ca = issuing
profile = macdev
vendors = othervendor
[alias raic]
mode = ra
ca = issuing
profile = macdev
implicit_confirm = yes
[alias rasetup]
mode = 3gpp
ca = issuing
profile = racert
vendors = acme
[profile racert]
validity = 30d
subject = CN=RA \${vendor.serialNumber},O=Operator
key_usage = digitalSignature
ext_key_usage = 1.3.6.1.5.5.7.3.28,clientAuth
[profile macdev]
validity = 30d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
EOF
serve_user_own "$T"
MAC_PATH=.well-known/cmp/p/mac
SECRET1=correct-horse-battery-1
printf '%s\n' "$SECRET1" >"$T/s1.txt"
check "device add with --secret-file" cli device add --vendor acme MAC-1 --secret-file s1.txt
cli device add --vendor acme MAC-2 --generate-secret --ref ref-two >"$T/gen.out" 2>&1
SECRET2=$(sed -n 's/^secret: //p' "$T/gen.out")
is "device add --generate-secret prints the secret once" "${#SECRET2}" 32
printf 'another-secret-3\n' >"$T/s3.txt"
check "device add MAC-3 (for implicitConfirm)" cli device add --vendor acme MAC-3 --secret-file s3.txt
printf 'another-secret-4\n' >"$T/s4.txt"
check "device add MAC-4 (implicitConfirm refused)" cli device add --vendor acme MAC-4 --secret-file s4.txt
expect "a reference of another device is refused" 4 \
    cli device set-secret --vendor acme MAC-4 --secret-file s4.txt --ref ref-two
printf 'identifier,secret,ref\n# comment\nIMP-1,imported-secret-1,imp-ref-1\nIMP-2, imported-secret-2\n' >"$T/imp.csv"
check "device import --with-secrets" cli device import --vendor acme imp.csv --with-secrets
printf 'IMP-3,imported-secret-3\nIMP-4,short\n' >"$T/imp-bad.csv"
expect "import --with-secrets with a short secret fails" 1 \
    cli device import --vendor acme imp-bad.csv --with-secrets
grep_ok "the failure names file:line" "imp-bad.csv:2: a secret of at least 8" "$T/.stderr"
is "all or nothing: IMP-3 not imported" \
    "$(sqlite3 "$T/cmpca.db" "SELECT count(*) FROM device WHERE identifier='IMP-3'")" 0
is "two imported secrets, references from the file or the identifier" \
    "$(sqlite3 "$T/cmpca.db" "SELECT group_concat(ref, ' ') FROM (SELECT ref FROM device_secret WHERE ref LIKE 'imp%' OR ref LIKE 'IMP%' ORDER BY ref)")" \
    "IMP-2 imp-ref-1"
if grep -a -q -e "$SECRET1" -e "$SECRET2" -e another-secret -e imported-secret "$T/cmpca.db"; then
    nok "the secrets are not in the database file in plaintext"
else
    ok "the secrets are not in the database file in plaintext"
fi
sed 's|^\[alias 3gpp\]$|[alias 3gpp]\nimplicit_confirm = yes|' "$T/cmpca.conf" >"$T/bad.conf"
if (cd "$T" && timeout 20 "$CMPCA" -c bad.conf serve --port-file bad.port >bad.out 2>&1); then
    nok "implicit_confirm on a 3gpp alias is a config error"
else
    grep_ok "implicit_confirm on a 3gpp alias is a config error" "implicit_confirm is never granted" "$T/bad.out"
fi
# conf_fails DESC PATTERN SED: `cmpca serve` refuses the configuration
# changed by SED, naming the problem
conf_fails() {
    sed "$3" "$T/cmpca.conf" >"$T/bad.conf"
    if (cd "$T" && timeout 20 "$CMPCA" -c bad.conf serve --port-file bad.port >bad.out 2>&1); then
        nok "$1"
    else
        grep_ok "$1" "$2" "$T/bad.out"
    fi
}
conf_fails "mode = mac without secret_kek is a config error" "needs \[server\] secret_kek" \
    '/^secret_kek = /d'
conf_fails "a KEK that is not 64 hex digits is refused" "64 hex digits" \
    's|^secret_kek = .*|secret_kek = env:HOME|'
conf_fails "mac_* options on another mode are a config error" "mac_\* options are for mode = mac" \
    's|^\[alias raic\]$|[alias raic]\nmac_max_failures = 2|'
conf_fails "mac_response must be mac or sign" "mac_response must be mac or sign" \
    's|^mac_response = sign$|mac_response = maybe|'
srv_start s || exit 1

sec_row() {     # sec_row IDENT: failures|locked|consumed of the device's secret
    sqlite3 "$T/cmpca.db" "SELECT s.failures||'|'||s.locked||'|'||s.consumed FROM device_secret s
        JOIN device d ON d.id=s.device_id WHERE d.identifier='$1'"
}
macir() {       # macir PATH SECRET REF SUBJECT_CN ARGS...
    local path=$1 secret=$2 ref=$3 cn=$4; shift 4
    ocmp -path "$path" -cmd ir -secret "pass:$secret" -ref "$ref" -newkey "$cn.key" \
        -subject "/CN=$cn" "$@"
}

# ---- right secret: ip + certConf, secret consumed --------------------------------------
newkey MAC-1.key
check "ir with the right secret (PasswordBasedMac, hmac-sha1) and certConf" \
    macir "$MAC_PATH" "$SECRET1" MAC-1 MAC-1 -certout mac1.pem
is "MAC-1 enrolled" "$(dev_state MAC-1)" enrolled
is "MAC-1 secret consumed after certConf" "$(sec_row MAC-1)" "0|0|1"
is "device show names the secret's state, not the secret" \
    "$(cli device show --vendor acme MAC-1 --json | python3 -c 'import json,sys; s=json.load(sys.stdin)["secret"]; print(s["ref"], s["failures"], s["locked"], s["consumed"], len(s))')" \
    "MAC-1 0 False True 4"
is "audit row for the consumption" \
    "$(cli audit list --limit 0 --json | python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin) if a["action"]=="device.secret.consume" and a["object"]=="MAC-1"))')" 1
grep -q 'alias=mac type=ir .*device="MAC-1" outcome=accepted' "$T/s.log" \
    && ok "log line names the device" || nok "log line names the device"
newkey IMP-1.key
check "ir of an imported device with the reference from the file" \
    macir "$MAC_PATH" imported-secret-1 imp-ref-1 IMP-1 -certout imp1.pem
newkey MAC-2.key
check "ir with a generated secret and reference ref-two" \
    macir "$MAC_PATH" "$SECRET2" ref-two MAC-2 -certout mac2.pem

# expect_mac DESC OUT BODY FAILINFO SECRET: a refusal MAC-protected with
# SECRET (verified), status rejection, the failInfo bit.
expect_mac() {
    local s
    s=$(inspect --secret "$5" "$2" | head -1)
    if echo "$s" | grep -q "^body=$3 status=2 failInfo=[^ ]*\b$4\b[^ ]* protected=ok"; then
        ok "$1: $3 MAC-protected with the secret, $4"
    else
        nok "$1: wanted $3 MAC-protected with the secret, $4; got: $s"
    fi
}
newkey MAC-1b.key
check "kur of MAC-1's certificate, signed with it (as in 3gpp mode)" \
    ocmp -path "$MAC_PATH" -cmd kur -cert mac1.pem -key MAC-1.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey MAC-1b.key -certout mac1b.pem
is "renewed certificate revoked on certConf" "$(cert_status "$(serial_of mac1.pem)")" revoked
printf 'p10cr-secret-6\n' >"$T/s6.txt"
check "device add MAC-6 (p10cr)" cli device add --vendor acme MAC-6 --secret-file s6.txt
newkey MAC-6.key
check "genm with the MAC before the enrollment (answer MAC-protected)" \
    ocmp -path "$MAC_PATH" -cmd genm -secret pass:p10cr-secret-6 -ref MAC-6 -rspout genp.der
is "genp MAC-protected with the secret" \
    "$(inspect --secret p10cr-secret-6 genp.der | head -1 | grep -o 'protected=[a-z]*')" protected=ok
openssl req -new -key "$T/MAC-6.key" -subj /CN=MAC-6 -out "$T/mac6.csr" 2>/dev/null
check "p10cr with the MAC" ocmp -path "$MAC_PATH" -cmd p10cr -csr mac6.csr -secret pass:p10cr-secret-6 \
    -ref MAC-6 -certout mac6.pem
is "MAC-6 secret consumed" "$(sec_row MAC-6)" "0|0|1"

# neg DESC KIND(error|ip|mac:error|mac:ip) FAILINFO PATH SECRET REF CN ARGS...: refused; nothing issued,
# the device state unchanged, serving.
neg() {
    local d=$1 kind=$2 fi=$3 path=$4 secret=$5 ref=$6 cn=$7 c0 s0; shift 7
    c0=$(cert_count); s0=$(dev_state "$cn")
    rm -f "$T/neg.rsp"
    [ -f "$T/$cn.key" ] || newkey "$cn.key"
    macir "$path" "$secret" "$ref" "$cn" -rspout neg.rsp -certout neg.pem "$@" >"$T/o.out" 2>&1
    case $kind in
    error) expect_error "$d" 200 200 neg.rsp "$fi" ;;
    mac:*) expect_mac "$d" neg.rsp "${kind#mac:}" "$fi" "$secret" ;;
    *) expect_rejection "$d" 200 neg.rsp "$kind" "$fi" ;;
    esac
    is "$d: nothing issued" "$(cert_count)" "$c0"
    is "$d: device state unchanged" "$(dev_state "$cn")" "$s0"
    is "$d: server still serves" "$(health)" 200
}

# ---- reuse, wrong secret, lock, unlock ---------------------------------------------------
neg "reused secret after consumption" mac:error notAuthorized "$MAC_PATH" "$SECRET1" MAC-1 MAC-1
is "reuse counted no failure" "$(sec_row MAC-1)" "0|0|1"
neg "genm with a consumed secret" mac:error notAuthorized "$MAC_PATH" p10cr-secret-6 MAC-6 MAC-6 \
    -cmd genm
newkey MAC-4.key
a0=$(audit_count)
neg "wrong secret" error badMessageCheck "$MAC_PATH" wrong-secret-0 MAC-4 MAC-4
is "wrong secret counted" "$(sec_row MAC-4)" "1|0|0"
is "one audit row for the failure" "$(audit_count)" $((a0 + 1))
neg "unknown reference" error signerNotTrusted "$MAC_PATH" wrong-secret-0 no-such-ref MAC-4
neg "wrong secret (2)" error badMessageCheck "$MAC_PATH" wrong-secret-0 MAC-4 MAC-4
neg "wrong secret (3, locks)" error badMessageCheck "$MAC_PATH" wrong-secret-0 MAC-4 MAC-4
is "reference locked after mac_max_failures" "$(sec_row MAC-4)" "3|1|0"
neg "locked reference, right secret" error notAuthorized "$MAC_PATH" another-secret-4 MAC-4 MAC-4
is "locked: no further count" "$(sec_row MAC-4)" "3|1|0"
# the stock client has no iteration option: its request re-protected by cmpcraft
newkey MAC-3.key
macir "$MAC_PATH" x no-such-ref MAC-3 -reqout iter-ir.der -certout x.pem >"$T/o.out" 2>&1
"$CRAFT" mutate --in "$T/iter-ir.der" --out "$T/iter.der" --new-tid --mac another-secret-3 \
    --mac-ref MAC-3 --mac-iter 50000
c0=$(cert_count)
h=$(post iter.der iter.rsp application/pkixcmp "/$MAC_PATH")
expect_error "iteration count above mac_max_iterations" "$h" 200 iter.rsp badAlg
grep -q 'iteration count 50000 outside 100..20000' "$T/s.log" \
    && ok "the refusal names the limit" || nok "the refusal names the limit"
is "iterations: nothing counted" "$(sec_row MAC-3)" "0|0|0"
is "iterations: nothing issued" "$(cert_count)" "$c0"
printf 'pbmac1-secret-5\n' >"$T/s5.txt"
check "device add MAC-5 (PBMAC1)" cli device add --vendor acme MAC-5 --secret-file s5.txt
newkey MAC-5.key
macir "$MAC_PATH" x no-such-ref MAC-5 -reqout p1-ir.der -certout x.pem >"$T/o.out" 2>&1
"$CRAFT" mutate --in "$T/p1-ir.der" --out "$T/p1bad.der" --new-tid --mac wrong-secret-5 \
    --mac-ref MAC-5 --pbmac1
h=$(post p1bad.der p1bad.rsp application/pkixcmp "/$MAC_PATH")
expect_error "PBMAC1 with a wrong secret" "$h" 200 p1bad.rsp badMessageCheck
is "PBMAC1 wrong secret counted" "$(sec_row MAC-5)" "1|0|0"
"$CRAFT" mutate --in "$T/p1-ir.der" --out "$T/p1.der" --new-tid --mac pbmac1-secret-5 \
    --mac-ref MAC-5 --pbmac1
h=$(post p1.der p1.rsp application/pkixcmp "/$MAC_PATH")
s=$(inspect --secret pbmac1-secret-5 p1.rsp | head -1)
case "$h $s" in
"200 body=ip status=0 "*"protected=ok"*) ok "PBMAC1 ir accepted, answer MAC-protected with the secret" ;;
*) nok "PBMAC1 ir accepted, answer MAC-protected with the secret: HTTP $h $s" ;;
esac
is "PBMAC1 answer uses PBMAC1" "$(field p1.rsp protectionAlg)" "PBMAC1"
is "MAC-5 pending after the ip" "$(dev_state MAC-5)" pending
# POPOSigningKeyInput with publicKeyMAC (RFC 4211 4.1): the template has no
# subject, the POP's authInfo is a MAC over the public key with the secret
printf 'pkmac-secret-8\n' >"$T/s8.txt"
check "device add MAC-8 (publicKeyMAC)" cli device add --vendor acme MAC-8 --secret-file s8.txt
newkey MAC-8.key
macir "$MAC_PATH" x no-such-ref MAC-8 -reqout pk-ir.der -certout x.pem >"$T/o.out" 2>&1
c0=$(cert_count)
"$CRAFT" mutate --in "$T/pk-ir.der" --out "$T/pkbad.der" --new-tid --newkey "$T/MAC-8.key" \
    --popo-input pkmac-bad --mac pkmac-secret-8 --mac-ref MAC-8
h=$(post pkbad.der pkbad.rsp application/pkixcmp "/$MAC_PATH")
s=$(inspect --secret pkmac-secret-8 pkbad.rsp | head -1)
case "$h $s" in
"200 body=ip status=2 "*badPOP*"protected=ok"*) ok "publicKeyMAC with another secret: ip rejection badPOP" ;;
*) nok "publicKeyMAC with another secret: ip rejection badPOP: HTTP $h $s" ;;
esac
is "publicKeyMAC refused: nothing issued" "$(cert_count)" "$c0"
"$CRAFT" mutate --in "$T/pk-ir.der" --out "$T/pkok.der" --new-tid --newkey "$T/MAC-8.key" \
    --popo-input pkmac --mac pkmac-secret-8 --mac-ref MAC-8
h=$(post pkok.der pkok.rsp application/pkixcmp "/$MAC_PATH")
s=$(inspect --secret pkmac-secret-8 pkok.rsp | head -1)
case "$h $s" in
"200 body=ip status=0 "*"protected=ok"*) ok "publicKeyMAC with the device's secret: accepted" ;;
*) nok "publicKeyMAC with the device's secret: accepted: HTTP $h $s" ;;
esac
is "publicKeyMAC: one certificate issued" "$(cert_count)" "$((c0 + 1))"
neg "subject not the device's" mac:ip badCertTemplate "$MAC_PATH" another-secret-3 MAC-3 MAC-3 \
    -subject /CN=someone-else
expect "an rr with MAC protection is refused" 1 \
    ocmp -path "$MAC_PATH" -cmd rr -secret pass:p10cr-secret-6 -ref MAC-6 -oldcert mac6.pem \
    -rspout rr.der
expect_mac "rr with MAC" rr.der error wrongIntegrity p10cr-secret-6
is "rr refused: the certificate is valid" "$(cert_status "$(serial_of mac6.pem)")" valid
newkey IMP-2.key
neg "a device of a vendor the alias does not serve" mac:error notAuthorized .well-known/cmp/p/macv \
    imported-secret-2 IMP-2 IMP-2
is "vendor refusal: secret not consumed" "$(sec_row IMP-2)" "0|0|0"
check "device unlock" cli device unlock --vendor acme MAC-4
is "unlocked: count cleared" "$(sec_row MAC-4)" "0|0|0"

# ---- implicitConfirm ----------------------------------------------------------------------
check "ir -implicit_confirm on an alias without it (certConf required)" \
    macir "$MAC_PATH" another-secret-4 MAC-4 MAC-4 -implicit_confirm -disable_confirm \
    -certout mac4.pem -rspout ip4.der
is "implicitConfirm not echoed" "$(field ip4.der implicitConfirm)" 0
is "MAC-4 pending (certConf awaited)" "$(dev_state MAC-4)" pending
is "MAC-4 secret not consumed" "$(sec_row MAC-4)" "0|0|0"
newkey MAC-3.key
check "ir -implicit_confirm granted (alias macic, signed answers)" \
    macir .well-known/cmp/p/macic another-secret-3 MAC-3 MAC-3 -implicit_confirm \
    -trusted oproot.pem -certout mac3.pem -rspout ip3.der -disable_confirm
is "implicitConfirm echoed in generalInfo" "$(field ip3.der implicitConfirm)" 1
is "mac_response = sign: the ip is signed by the alias" \
    "$(inspect ip3.der | head -1 | grep -o 'protected=[a-z]*')" protected=ok
is "MAC-3 enrolled at once" "$(dev_state MAC-3)" enrolled
is "MAC-3 secret consumed at once" "$(sec_row MAC-3)" "0|0|1"
is "transaction confirmed without certConf" \
    "$(sqlite3 "$T/cmpca.db" "SELECT t.state FROM cmp_txn t JOIN device d ON d.id=t.device_id WHERE d.identifier='MAC-3'")" 1
is "the certificate is valid" "$(cert_status "$(serial_of mac3.pem)")" valid
check "set-secret gives a consumed device a new secret" \
    cli device set-secret --vendor acme MAC-1 --generate-secret
is "new secret: not consumed" "$(sec_row MAC-1)" "0|0|0"

# ---- implicitConfirm in ra mode --------------------------------------------------------------
newkey ra1.key
check "RA certificate (id-kp-cmcRA) from the 3gpp alias" \
    ocmp -cmd ir $(dev_args SN-000001) -trusted oproot.pem -newkey ra1.key -subject /CN=RA \
    -certout ra1.pem -path .well-known/cmp/p/rasetup
check "ra add ra1 for alias raic" cli ra add --name ra1 --cert ra1.pem --alias raic
newkey dic.key
check "RA ir -implicit_confirm granted (alias raic)" \
    ocmp -path .well-known/cmp/p/raic -cmd ir -cert ra1.pem -key ra1.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey dic.key -subject /CN=dev-ic -implicit_confirm -disable_confirm \
    -certout dic.pem -rspout dic.der
is "ra: implicitConfirm echoed" "$(field dic.der implicitConfirm)" 1
is "ra: transaction confirmed without certConf" \
    "$(sqlite3 "$T/cmpca.db" "SELECT count(*) FROM cmp_txn WHERE alias='raic' AND state=1")" 1
newkey dnc.key
check "RA ir without -implicit_confirm on the same alias" \
    ocmp -path .well-known/cmp/p/raic -cmd ir -cert ra1.pem -key ra1.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey dnc.key -subject /CN=dev-nc -disable_confirm -certout dnc.pem \
    -rspout dnc.der
is "ra: not asked, not granted" "$(field dnc.der implicitConfirm)" 0
is "ra: that transaction awaits its certConf" \
    "$(sqlite3 "$T/cmpca.db" "SELECT count(*) FROM cmp_txn WHERE alias='raic' AND state=0")" 1

check "the audit chain verifies" cli audit verify
is "failures, locks, consumptions and unlocks are audited" \
    "$(cli audit list --limit 0 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(*[sum(1 for a in r if a["action"]==x) for x in ("device.secret.fail","device.secret.lock","device.secret.consume","device.secret.unlock")])')" \
    "4 1 5 1"
grep -q -e "$SECRET1" -e imported-secret "$T"/s.log && nok "no secret in the server log" \
    || ok "no secret in the server log"

e2e_done
