#!/usr/bin/env bash
# The device policies of mode = upstream besides 3gpp, chained on
# loopback: the stock openssl cmp client -> cmpca RA (upstream,
# re-protected) -> cmpca CA in ra mode.
# device_mode = cert: a device signing with a certificate of an external
# CA (cert_trust_file) gets ir+certConf through the RA; a signer of
# another CA and a subject that is not the signer's are refused at the RA
# and never reach the CA.
# device_mode = mac: a device with its one-time secret (-secret -ref,
# registered in the RA's store) gets ir+certConf; the answers are
# MAC-protected with its secret; the secret is consumed at the RA once the
# CA's pkiConf came back; a wrong secret is refused at the RA (failure
# counted there, the CA's store unchanged), a consumed one too; genm
# under the MAC; a rejecting certConf leaves the secret; implicitConfirm
# granted upstream consumes it with the ip; with the CA down the device
# waits and polls (MAC-protected) until the CA is back.
# Configurations the RA refuses: mac with the nested form, cert without
# cert_trust_file, cert_* options under device_mode = 3gpp. RA_PG=1: the
# RA's store (secrets, failure counts, consumption) in PostgreSQL.
# shellcheck disable=SC2046
. "$(dirname "$0")/lib.sh"

# RA_PG=1: the RA's store in a throw-away PostgreSQL cluster
# (scripts/pg-test-server.sh) instead of SQLite.
RA_STORE="path = ra.db"
if [ "${RA_PG:-0}" = 1 ]; then
    PGS=$REPO/scripts/pg-test-server.sh
    pg_cleanup() {
        local s
        for s in $SERVERS; do srv_stop "$s"; done
        "$PGS" stop "$T/pg" >/dev/null 2>&1
        e2e_cleanup
    }
    trap pg_cleanup EXIT
    CI=$("$PGS" start "$T/pg" 2>"$T/pgstart.log") ||
        { echo "Bail out! PostgreSQL did not start"; diag "$T/pgstart.log"; exit 1; }
    RA_STORE="backend = postgresql
conninfo = $CI
password = file:$T/pg/password"
fi
e2e_pki 300s 24
cat >>"$T/cmpca.conf" <<EOF
[alias ra]
mode = ra
ca = issuing
profile = radev
vendors = acme
allow_ra_verified = yes
[alias raic]
mode = ra
ca = issuing
profile = radev
vendors = acme
allow_ra_verified = yes
implicit_confirm = yes
[alias rasetup]
mode = 3gpp
ca = issuing
profile = racert
vendors = acme
[profile radev]
validity = 30d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
[profile racert]
validity = 30d
subject = CN=RA \${vendor.serialNumber},O=Operator
key_usage = digitalSignature
ext_key_usage = 1.3.6.1.5.5.7.3.28,clientAuth
EOF
srv_start ca || exit 1
CA_PORT=$PORT

# The RA's certificate (id-kp-cmcRA) from the CA, registered there as an RA.
newkey ra.key
check "RA certificate from the CA" ocmp -path .well-known/cmp/p/rasetup -cmd ir \
    $(dev_args SN-000024) -trusted oproot.pem -newkey ra.key -subject /CN=RA -certout ra.pem
check "ra add upra (raVerified)" cli ra add --name upra --cert ra.pem --alias ra --alias raic --ra-verified

# An external CA with a device certificate, and another CA the RA does not
# trust.
extca() {   # NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$T/$1.key" -out "$T/$1.pem" -days 30 \
        -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature >/dev/null 2>&1
}
extcert() {  # CA NAME SUBJECT
    newkey "$2.key"
    openssl req -new -key "$T/$2.key" -subj "$3" -out "$T/$2.csr" 2>/dev/null
    printf 'keyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n' >"$T/$2.ext"
    openssl x509 -req -in "$T/$2.csr" -CA "$T/$1.pem" -CAkey "$T/$1.key" -CAcreateserial \
        -days 30 -extfile "$T/$2.ext" -out "$T/$2.pem" 2>/dev/null
}
extca ext "External Device CA"
extca other "Other CA"
extcert ext extdev /CN=extdev
extcert other baddev /CN=baddev

R=$T/ra
mkdir -p "$R"
cat "$T/ra.pem" "$T/issuing.pem" >"$R/ra-chain.pem"
cp "$T/ra.key" "$R/ra.key"
openssl rand -hex 32 >"$R/kek.hex"
up_alias() {   # NAME DEVICE_MODE [FORM]
    cat <<EOF
[alias $1]
mode = upstream
device_mode = $2
upstream_url = http://127.0.0.1:$CA_PORT/.well-known/cmp/p/ra
upstream_trust = $T/oproot.pem
ra_cert = $R/ra-chain.pem
ra_key = $R/ra.key
upstream_form = ${3:-reprotect}
upstream_response = reprotect
upstream_timeout = 5s
EOF
}
{
    cat <<EOF
[server]
listen = 127.0.0.1:0
sweep_interval = 1s
secret_kek = file:$R/kek.hex
$(serve_user_line)
[store]
$RA_STORE
EOF
    up_alias cd cert
    echo "cert_trust_file = $T/ext.pem"
    up_alias md mac
    echo "vendors = acme"
    echo "mac_max_failures = 3"
    up_alias mdic mac | sed 's|/p/ra$|/p/raic|'
    echo "vendors = acme"
    up_alias mdw mac
    echo "upstream_unavailable = wait"
    echo "upstream_poll_after = 1s"
} >"$R/cmpca.conf"
rcli() { (cd "$R" && timeout 60 "$CMPCA" -c "$R/cmpca.conf" "$@"); }
SECRET=upstream-mac-secret-1
printf '%s\n' "$SECRET" >"$R/s1.txt"
printf 'upstream-mac-secret-2\n' >"$R/s2.txt"
{
    rcli vendor add --name acme --ca "$T/vendor/vendor-chain.pem" &&
    rcli device add --vendor acme MACDEV-1 --secret-file s1.txt &&
    rcli device add --vendor acme MACDEV-2 --secret-file s2.txt &&
    rcli device add --vendor acme MACDEV-4 --secret-file s2.txt --ref ref-four &&
    rcli device add --vendor acme MACDEV-5 --secret-file s2.txt --ref ref-five
} >"$T/rasetup.log" 2>&1 || { echo "Bail out! RA setup failed"; diag "$T/rasetup.log"; exit 1; }
serve_user_own "$R"
ra_start() {
    rm -f "$R/ra.port"
    (cd "$R" && exec "$CMPCA" -c "$R/cmpca.conf" serve --port-file "$R/ra.port" \
        >>"$T/ra.log" 2>&1) &
    PID_ra=$!
    SERVERS="$SERVERS ra"
    for i in $(seq 100); do [ -s "$R/ra.port" ] && break; sleep 0.1; done
    [ -s "$R/ra.port" ] || { diag "$T/ra.log"; return 1; }
    RA_PORT=$(cat "$R/ra.port")
}
# Configurations the RA refuses to start with, each with its reason.
bad_conf() {   # DESC EXPECTED-TEXT LINES...
    local d=$1 want=$2 out; shift 2
    { sed -n '1,/^\[alias cd\]/p' "$R/cmpca.conf" | sed '$d'
      echo "[alias bad]"; echo "mode = upstream"; printf '%s\n' "$@"; } >"$R/bad.conf"
    out=$(cd "$R" && timeout 20 "$CMPCA" -c "$R/bad.conf" serve --port-file "$R/bad.port" 2>&1)
    if [ $? -ne 0 ] && echo "$out" | grep -q "$want"; then ok "refused: $d"
    else nok "refused: $d (got: $(echo "$out" | tail -1))"; fi
}
base=("upstream_url = http://127.0.0.1:1/" "upstream_trust = $T/oproot.pem"
      "ra_cert = $R/ra-chain.pem" "ra_key = $R/ra.key")
bad_conf "device_mode = mac with the nested form" "device_mode = mac needs upstream_form = reprotect" \
    "${base[@]}" "device_mode = mac" "upstream_form = nested"
bad_conf "device_mode = cert without cert_trust_file" "device_mode = cert needs cert_trust_file" \
    "${base[@]}" "device_mode = cert" "upstream_form = reprotect"
bad_conf "device_mode = cert with cert_trust (store CAs)" "device_mode = cert needs cert_trust_file" \
    "${base[@]}" "device_mode = cert" "cert_trust = issuing" "cert_trust_file = $T/ext.pem"
bad_conf "cert_trust_file under device_mode = 3gpp" "are for mode = cert" \
    "${base[@]}" "cert_trust_file = $T/ext.pem"
bad_conf "mac_* options under device_mode = cert" "mac_\* options are for mode = mac" \
    "${base[@]}" "device_mode = cert" "cert_trust_file = $T/ext.pem" "mac_max_failures = 2"
bad_conf "an unknown device_mode" "device_mode must be 3gpp, cert or mac" \
    "${base[@]}" "device_mode = ra"
bad_conf "implicit_confirm on an upstream alias" "on mode = upstream the upstream CA decides" \
    "${base[@]}" "device_mode = mac" "upstream_form = reprotect" "implicit_confirm = yes"
check "RA starts (device_mode = cert and mac)" ra_start
PORT=$RA_PORT

if [ "${RA_PG:-0}" = 1 ]; then
    ra_sql() { PGPASSWORD=$(cat "$T/pg/password") psql "$CI" -qAt -c "$1"; }
else
    ra_sql() { sqlite3 "$R/ra.db" "$1"; }
fi
ra_rows() { ra_sql "SELECT count(*) FROM cmp_txn_reply WHERE upstream=1 $1"; }
sec_row() {     # failures|locked|consumed of a device's secret in the RA's store
    ra_sql "SELECT s.failures||'|'||s.locked||'|'||s.consumed FROM device_secret s
        JOIN device d ON d.id=s.device_id WHERE d.identifier='$1'"
}
ca_serial_status() { PORT=$CA_PORT cert_status "$(serial_of "$1")"; }
device() {     # ALIAS ARGS...: openssl cmp as the device against the RA
    local a=$1; shift
    PORT=$RA_PORT ocmp -path ".well-known/cmp/p/$a" "$@"
}

# ---- device_mode = cert ----------------------------------------------------
newkey cd-1.key
check "cert: ir+certConf with an external CA's certificate through the RA" \
    device cd -cmd ir -trusted oproot.pem -cert extdev.pem -key extdev.key \
    -newkey cd-1.key -subject /CN=extdev -certout cd-1.pem
is "cert: the CA issued it (valid in the CA's store)" "$(ca_serial_status cd-1.pem)" valid
is "cert: issued by the operator CA" \
    "$(openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/cd-1.pem" 2>&1 | tail -1)" \
    "$T/cd-1.pem: OK"
is "cert: ir and certConf relayed and recorded" "$(ra_rows "AND alias='cd'")" 2
grep -q 'alias=cd type=ir .*device="/CN=extdev" outcome=accepted' "$T/ra.log" \
    && ok "cert: the RA names the certificate holder" || nok "cert: the RA names the certificate holder"
is "cert: raVerified ir signed by the RA accepted at the CA" \
    "$(grep -c 'alias=ra type=ir .*ra="upra" outcome=accepted' "$T/ca.log")" 1

newkey cd-2.key
check "cert: kur+certConf with the CA's certificate through the RA" \
    device cd -cmd kur -trusted oproot.pem -cert cd-1.pem -key cd-1.key -extracerts opchain.pem \
    -newkey cd-2.key -certout cd-2.pem
is "cert: the renewed certificate is valid at the CA" "$(ca_serial_status cd-2.pem)" valid
c0=$(PORT=$CA_PORT cert_count); a0=$(PORT=$CA_PORT audit_count); r0=$(ra_rows "")
newkey x.key
device cd -cmd ir -trusted oproot.pem -cert baddev.pem -key baddev.key -newkey x.key \
    -subject /CN=baddev -certout x.pem -rspout cd-bad.rsp >"$T/o.out" 2>&1
expect_error "cert: a signer of another CA refused at the RA" 200 200 cd-bad.rsp signerNotTrusted
is "cert: signed by the RA" "$(field cd-bad.rsp sender)" "CN=RA SN-000024,O=Operator"
device cd -cmd ir -trusted oproot.pem -cert extdev.pem -key extdev.key -newkey x.key \
    -subject /CN=someone-else -certout x.pem -rspout cd-subj.rsp >"$T/o.out" 2>&1
expect_rejection "cert: another subject than the signer's refused at the RA" 200 cd-subj.rsp ip badCertTemplate
is "cert refusals: the CA issued nothing" "$(PORT=$CA_PORT cert_count)" "$c0"
is "cert refusals: no audit row at the CA" "$(PORT=$CA_PORT audit_count)" "$a0"
is "cert refusals: nothing relayed" "$(ra_rows "")" "$r0"

# ---- device_mode = mac -----------------------------------------------------
macir() {      # SECRET REF CN ARGS...
    local s=$1 ref=$2 cn=$3; shift 3
    device md -cmd ir -secret "pass:$s" -ref "$ref" -newkey "$cn.key" -subject "/CN=$cn" "$@"
}
c0=$(PORT=$CA_PORT cert_count); a0=$(PORT=$CA_PORT audit_count); r0=$(ra_rows "")
newkey MACDEV-1.key
macir wrong-secret-000 MACDEV-1 MACDEV-1 -certout bad.pem -rspout md-bad.rsp >"$T/o.out" 2>&1
expect_error "mac: a wrong secret refused at the RA" 200 200 md-bad.rsp badMessageCheck
is "mac: the failure counted in the RA's store" "$(sec_row MACDEV-1)" "1|0|0"
is "mac: wrong secret: the CA issued nothing" "$(PORT=$CA_PORT cert_count)" "$c0"
is "mac: wrong secret: no audit row at the CA" "$(PORT=$CA_PORT audit_count)" "$a0"
is "mac: wrong secret: nothing relayed" "$(ra_rows "")" "$r0"

check "mac: ir+certConf with the device's secret through the RA" \
    macir "$SECRET" MACDEV-1 MACDEV-1 -certout md-1.pem -reqout md-ir.der -rspout md-ip.der
is "mac: the CA issued it (valid in the CA's store)" "$(ca_serial_status md-1.pem)" valid
is "mac: the certificate names the device" \
    "$(openssl x509 -in "$T/md-1.pem" -noout -subject -nameopt RFC2253)" "subject=CN=MACDEV-1,O=Operator"
is "mac: the secret is consumed at the RA after the CA's pkiConf (the wrong MAC still counted)" \
    "$(sec_row MACDEV-1)" "1|0|1"
is "mac: consumption audited at the RA" \
    "$(rcli audit list --limit 0 --json | python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin) if a["action"]=="device.secret.consume" and a["object"]=="MACDEV-1"))')" 1
is "mac: ir and certConf relayed and recorded" "$(ra_rows "AND alias='md'")" 2
s=$(inspect --secret "$SECRET" md-ip.der | head -1)
echo "$s" | grep -q "^body=ip status=0 .*protected=ok" \
    && ok "mac: the ip is accepted and MAC-protected with the device's secret" \
    || nok "mac: the ip is accepted and MAC-protected with the device's secret ($s)"
is "mac: the ip's protection is PasswordBasedMac" \
    "$(inspect --secret "$SECRET" md-ip.der | sed -n 's/^protectionAlg=//p')" "id-PasswordBasedMAC"
is "mac: the CA accepted the RA's raVerified ir" \
    "$(grep -c 'alias=ra type=ir .*ra="upra" outcome=accepted' "$T/ca.log")" 2

c0=$(PORT=$CA_PORT cert_count)
newkey MACDEV-1b.key
macir "$SECRET" MACDEV-1 MACDEV-1b -certout again.pem -rspout md-again.rsp >"$T/o.out" 2>&1
s=$(inspect --secret "$SECRET" md-again.rsp | head -1)
echo "$s" | grep -q "^body=error status=2 failInfo=[^ ]*notAuthorized[^ ]* protected=ok" \
    && ok "mac: the consumed secret refused at the RA (notAuthorized, MAC-protected)" \
    || nok "mac: the consumed secret refused at the RA (notAuthorized, MAC-protected): $s"
is "mac: consumed secret: the CA issued nothing" "$(PORT=$CA_PORT cert_count)" "$c0"
newkey MACDEV-3.key
macir upstream-mac-secret-2 MACDEV-2 MACDEV-3 -certout x2.pem -rspout md-subj.rsp >"$T/o.out" 2>&1
s=$(inspect --secret upstream-mac-secret-2 md-subj.rsp | head -1)
echo "$s" | grep -q "^body=ip status=2 failInfo=[^ ]*badCertTemplate[^ ]* protected=ok" \
    && ok "mac: a subject that is not the device's refused at the RA, MAC-protected with its secret" \
    || nok "mac: a subject that is not the device's refused at the RA, MAC-protected with its secret ($s)"
is "mac: subject refused: the CA issued nothing" "$(PORT=$CA_PORT cert_count)" "$c0"
is "mac: subject refused: MACDEV-2's secret not consumed" "$(sec_row MACDEV-2)" "0|0|0"

device md -cmd ir $(dev_args SN-000001) -newkey x.key -subject /CN=SN-000001 -certout x.pem \
    -trusted oproot.pem -rspout md-signed.rsp >"$T/o.out" 2>&1
expect_error "mac: a signed first enrollment refused at the RA" 200 200 md-signed.rsp notAuthorized
is "mac: signed ir: the CA issued nothing" "$(PORT=$CA_PORT cert_count)" "$c0"

# genm under the MAC: forwarded, the genp MAC-protected; the secret stays.
device md -cmd genm -infotype caCerts -secret pass:upstream-mac-secret-2 -ref MACDEV-2 \
    -rspout md-genp.der >"$T/o.out" 2>&1
s=$(inspect --secret upstream-mac-secret-2 md-genp.der | head -1)
echo "$s" | grep -q "^body=genp .*protected=ok" && ok "mac: genm answered with a MAC-protected genp" \
    || { nok "mac: genm answered with a MAC-protected genp ($s)"; diag "$T/o.out"; }
is "mac: genm does not consume the secret" "$(sec_row MACDEV-2)" "0|0|0"

# A certConf that rejects the certificate: relayed, pkiConf, the secret
# not consumed; the device enrolls again and confirms: consumed.
newkey MACDEV-2.key
macir upstream-mac-secret-2 MACDEV-2 MACDEV-2 -disable_confirm -certout md2.pem \
    -reqout md2-ir.der -rspout md2-ip.der >"$T/o.out" 2>&1
"$CRAFT" certconf --ip "$T/md2-ip.der" --req "$T/md2-ir.der" --mac upstream-mac-secret-2 \
    --mac-ref MACDEV-2 --reject --out "$T/md2-cc.der"
h=$(PORT=$RA_PORT post md2-cc.der md2-cc.rsp application/pkixcmp /.well-known/cmp/p/md)
is "mac: a rejecting certConf relayed: pkiConf, MAC-protected" "$h/$(inspect --secret upstream-mac-secret-2 md2-cc.rsp | head -1 | grep -o 'protected=[a-z]*' | sed "s/^/$(field md2-cc.rsp body) /")" \
    "200/pkiconf protected=ok"
is "mac: the rejected certificate is revoked at the CA" "$(ca_serial_status md2.pem)" revoked
is "mac: a rejecting certConf does not consume the secret" "$(sec_row MACDEV-2)" "0|0|0"
newkey MACDEV-2.key
check "mac: MACDEV-2 enrolls again and confirms" \
    macir upstream-mac-secret-2 MACDEV-2 MACDEV-2 -certout md2b.pem
is "mac: now MACDEV-2's secret is consumed" "$(sec_row MACDEV-2)" "0|0|1"

# implicitConfirm granted by the CA (alias raic): the secret is consumed
# with the ip, no certConf.
newkey MACDEV-4.key
device mdic -cmd ir -secret pass:upstream-mac-secret-2 -ref ref-four -newkey MACDEV-4.key \
    -subject /CN=MACDEV-4 -implicit_confirm -certout md4.pem -rspout md4-ip.der >"$T/o.out" 2>&1
is "mac: implicitConfirm granted upstream" \
    "$(inspect --secret upstream-mac-secret-2 md4-ip.der | sed -n 's/^implicitConfirm=//p')" 1
is "mac: implicitConfirm: the certificate is valid at the CA" "$(ca_serial_status md4.pem)" valid
is "mac: implicitConfirm: the secret consumed with the ip" "$(sec_row MACDEV-4)" "0|0|1"

# The CA down (upstream_unavailable = wait): the MAC device gets
# "waiting" and pollReps MAC-protected with its secret, its certificate
# once the CA is back on its port, and the secret is consumed then.
srv_stop ca
newkey MACDEV-5.key
(device mdw -cmd ir -secret pass:upstream-mac-secret-2 -ref ref-five -newkey MACDEV-5.key \
    -subject /CN=MACDEV-5 -certout md5.pem >"$T/w.out" 2>&1; echo $? >"$T/w.rc") &
WPID=$!
sleep 2.5
grep -q 'alias=mdw .*upstream unavailable: answered waiting' "$T/ra.log" \
    && ok "mac wait: the device was answered waiting" || nok "mac wait: the device was answered waiting"
grep -q 'alias=mdw type=pollReq .*outcome=accepted' "$T/ra.log" \
    && ok "mac wait: the device polls (MAC-protected pollReq), pollRep while the CA is down" \
    || nok "mac wait: the device polls (MAC-protected pollReq), pollRep while the CA is down"
is "mac wait: not consumed while waiting" "$(sec_row MACDEV-5)" "0|0|0"
sed -i "s/^listen = 127.0.0.1:0\$/listen = 127.0.0.1:$CA_PORT/" "$T/cmpca.conf"
srv_start ca || nok "CA restarted on its port"
wait "$WPID"
is "mac wait: the device's ir succeeded after the CA came back" "$(cat "$T/w.rc")" 0
[ "$(cat "$T/w.rc")" = 0 ] || diag "$T/w.out"
is "mac wait: the certificate is valid at the CA" "$(ca_serial_status md5.pem 2>/dev/null)" valid
is "mac wait: the secret consumed after the certConf" "$(sec_row MACDEV-5)" "0|0|1"

is "RA still serves" "$(PORT=$RA_PORT health)" 200
is "CA still serves" "$(PORT=$CA_PORT health)" 200
e2e_done
