#!/usr/bin/env bash
# RA mode end to end: the stock openssl cmp client plays a registration
# authority (its own certificate, registered with `cmpca ra add`) and asks
# for certificates on behalf of devices (ir, cr, p10cr, kur, rr, raVerified);
# every kind of RA that must be refused is refused with a signed answer and
# nothing changed; an RA forwards devices' own vendor-signed requests
# wrapped in nested messages (single and batch), which get every 3GPP check.
# shellcheck disable=SC2046
. "$(dirname "$0")/lib.sh"

NEST=$(realpath "$BUILD/tools/cmpnest")
e2e_pki 300s 16
cat >>"$T/cmpca.conf" <<EOF
[alias ra]
mode = ra
ca = issuing
profile = radev
vendors = acme
allow_ra_verified = yes
ra_trust = issuing
ra_trust_file = extra-ra-ca.pem
[alias ra2]
mode = ra
ca = issuing
profile = radev
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

# An RA hierarchy outside cmpca (for ra_trust_file) with an expired RA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Extra RA CA" \
    -keyout "$T/extra-ra-ca.key" -out "$T/extra-ra-ca.pem" -days 3650 \
    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
newkey raexp.key
openssl req -new -key "$T/raexp.key" -subj "/CN=Expired RA" -out "$T/raexp.csr" 2>/dev/null
printf 'extendedKeyUsage=1.3.6.1.5.5.7.3.28\nsubjectKeyIdentifier=hash\n' >"$T/raexp.ext"
faketime '2020-01-01 00:00:00' openssl x509 -req -in "$T/raexp.csr" -CA "$T/extra-ra-ca.pem" \
    -CAkey "$T/extra-ra-ca.key" -CAcreateserial -days 2 -extfile "$T/raexp.ext" \
    -out "$T/raexp.pem" 2>/dev/null
srv_start s || exit 1

RA_PATH=.well-known/cmp/p/ra
# ra_cert SN NAME: device SN enrolls an RA certificate (id-kp-cmcRA) on the
# rasetup alias: NAME.pem / NAME.key
ra_cert() {
    newkey "$2.key"
    ocmp -path .well-known/cmp/p/rasetup -cmd ir $(dev_args "$1") -trusted oproot.pem \
        -newkey "$2.key" -subject "/CN=RA" -certout "$2.pem" >"$T/o.out" 2>&1
}
check "RA certificate for ra1" ra_cert SN-000010 ra1
check "RA certificate for limited" ra_cert SN-000011 ralim
check "RA certificate for an unregistered RA" ra_cert SN-000012 raun
check "RA certificate for an RA to be revoked" ra_cert SN-000013 rarev
check "RA certificate never registered" ra_cert SN-000016 rauu
check "ra add ra1 (every operation, raVerified)" cli ra add --name ra1 --cert ra1.pem \
    --alias ra --alias ra2 --ra-verified
check "ra add limited (ir only, no raVerified)" cli ra add --name limited --cert ralim.pem \
    --alias ra --op ir
check "ra add revoked" cli ra add --name revoked --cert rarev.pem --alias ra
check "ra add expired" cli ra add --name expired --cert raexp.pem --alias ra
check "ra add elsewhere (alias ra2 only)" cli ra add --name elsewhere --cert raun.pem --alias ra2 \
    --op ir --profile otherprofile
cli ra disable elsewhere >/dev/null 2>&1 && cli ra enable elsewhere >/dev/null 2>&1
is "ra list shows five RAs" "$(cli ra list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 5

# raocmp RA ARGS...: openssl cmp as RA NAME on alias ra (or $RAP)
raocmp() {
    local ra=$1; shift
    ocmp -path "${RAP:-$RA_PATH}" -cert "$ra.pem" -key "$ra.key" -extracerts opchain.pem \
        -trusted oproot.pem "$@"
}
subject_of() { openssl x509 -in "$T/$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }

# ---- requests on behalf of devices ------------------------------------------------
newkey d7.key
check "RA ir for dev-7" raocmp ra1 -cmd ir -newkey d7.key -subject /CN=dev-7 -certout dev7.pem
is "dev-7 certificate subject from the request" "$(subject_of dev7.pem)" "CN=dev-7,O=Operator"
cli audit list --limit 0 --json >"$T/audit.json"
is "issuance audit row names RA and device" \
    "$(python3 -c 'import json,sys; r=[a for a in json.load(open(sys.argv[1])) if a["action"]=="cert.issue"][-1]; d=r["details"]; print(d.get("ra"), d.get("device"), r["actor"])' "$T/audit.json")" \
    "ra1 dev-7 cmp:ra:ra=ra1:dev-7"
grep -q 'alias=ra type=ir .*device="dev-7" ra="ra1" outcome=accepted' "$T/s.log" \
    && ok "log line names RA and device" || nok "log line names RA and device"
newkey d8.key
check "RA cr for dev-8" raocmp ra1 -cmd cr -newkey d8.key -subject /CN=dev-8 -certout dev8.pem
newkey d9.key
openssl req -new -key "$T/d9.key" -subj /CN=dev-9 -out "$T/dev9.csr" 2>/dev/null
check "RA p10cr for dev-9" raocmp ra1 -cmd p10cr -csr dev9.csr -certout dev9.pem
is "dev-9 subject" "$(subject_of dev9.pem)" "CN=dev-9,O=Operator"
newkey d7b.key
check "RA kur of dev-7's certificate" raocmp ra1 -cmd kur -oldcert dev7.pem -newkey d7b.key \
    -certout dev7b.pem
is "kur kept the subject" "$(subject_of dev7b.pem)" "CN=dev-7,O=Operator"
is "renewed certificate revoked on certConf" "$(cert_status "$(serial_of dev7.pem)")" revoked
check "RA rr of dev-8's certificate" raocmp ra1 -cmd rr -oldcert dev8.pem -revreason 1
is "dev-8 certificate revoked" "$(cert_status "$(serial_of dev8.pem)")" revoked
newkey d10.key
check "raVerified from an RA allowed to assert it" raocmp ra1 -cmd ir -popo 0 -newkey d10.key \
    -subject /CN=dev-10 -certout dev10.pem

# rneg DESC KIND(error|ip|kup|cp|rp) FAILINFO RA ARGS...: a refused RA request:
# signed answer with the failInfo, nothing issued, no audit row, serving.
rneg() {
    local d=$1 kind=$2 fi=$3 ra=$4 c0 a0; shift 4
    c0=$(cert_count); a0=$(audit_count)
    rm -f "$T/rneg.rsp"
    raocmp "$ra" "$@" -certout rneg.pem -rspout rneg.rsp >"$T/o.out" 2>&1
    if [ "$kind" = error ]; then
        expect_error "$d" 200 200 rneg.rsp "$fi"
    else
        expect_rejection "$d" 200 rneg.rsp "$kind" "$fi"
    fi
    is "$d: nothing issued" "$(cert_count)" "$c0"
    is "$d: no audit row" "$(audit_count)" "$a0"
    is "$d: server still serves" "$(health)" 200
}
newkey dx.key
rneg "raVerified from an RA not allowed to assert it" ip badPOP ralim \
    -cmd ir -popo 0 -newkey dx.key -subject /CN=dev-x
RAP=.well-known/cmp/p/ra2 rneg "raVerified on an alias that does not accept it" ip badPOP ra1 \
    -cmd ir -popo 0 -newkey dx.key -subject /CN=dev-x
rneg "unregistered RA" error signerNotTrusted rauu -cmd ir -newkey dx.key -subject /CN=dev-x
rneg "RA outside its aliases" error notAuthorized raun -cmd ir -newkey dx.key -subject /CN=dev-x \
    -path .well-known/cmp/p/ra
RAP=.well-known/cmp/p/ra2 rneg "RA outside its profiles" error notAuthorized raun \
    -cmd ir -newkey dx.key -subject /CN=dev-x
rneg "RA outside its operations (cr)" error notAuthorized ralim -cmd cr -newkey dx.key \
    -subject /CN=dev-x
check "limited RA may ir" raocmp ralim -cmd ir -newkey dx.key -subject /CN=dev-11 -certout dev11.pem
check "ra disable limited" cli ra disable limited
rneg "disabled RA" error notAuthorized ralim -cmd ir -newkey dx.key -subject /CN=dev-x
check "revoke the RA certificate of 'revoked'" cli cert revoke --ca issuing \
    --serial "$(serial_of rarev.pem)" --reason keyCompromise
rneg "revoked RA" error signerNotTrusted rarev -cmd ir -newkey dx.key -subject /CN=dev-x
ALIAS_PATH=$RA_PATH rneg "expired RA" error signerNotTrusted raexp -cmd ir -newkey dx.key \
    -subject /CN=dev-x -extracerts extra-ra-ca.pem
rneg "RA kur of a revoked certificate" kup certRevoked ra1 -cmd kur -oldcert dev8.pem \
    -newkey dx.key
rneg "RA rr of a revoked certificate" rp certRevoked ra1 -cmd rr -oldcert dev8.pem
rneg "device signing on an RA alias itself" error signerNotTrusted ra1 -cmd ir \
    -cert devs/SN-000014/cert.pem -key devs/SN-000014/key.pem -extracerts devs/SN-000014/chain.pem \
    -newkey dx.key -subject /CN=dev-x

# ---- nested: an RA forwards devices' own requests ---------------------------------
# dev_req SN OUT: the vendor-signed ir of device SN as openssl cmp builds it
# (sent to a path that answers 404, so that nothing happens on the server)
dev_req() {
    newkey "k$1.key"
    (cd "$T" && timeout 30 openssl cmp -server "127.0.0.1:$PORT" -path .well-known/cmp/p/nosuch \
        -cmd ir $(dev_args "$1") -trusted oproot.pem -newkey "k$1.key" -subject "/CN=$1" \
        -certout "x$1.pem" -reqout "$2") >/dev/null 2>&1
    [ -s "$T/$2" ]
}
wrap() { "$NEST" wrap "$@" --cert "$T/ra1.pem" --key "$T/ra1.key" --chain "$T/opchain.pem"; }
check "device SN-000003's ir" dev_req SN-000003 n3.der
wrap --in "$T/n3.der" --out "$T/w3.der"
h=$(post w3.der w3.rsp "" "/$RA_PATH")
is "single nested ir: the plain inner response" "$h/$(field w3.rsp body)/$(field w3.rsp status)" 200/ip/0
is "single nested ir: protected" "$(field w3.rsp protected)" ok
is "SN-000003 pending" "$(dev_state SN-000003)" pending
"$CRAFT" certconf --ip "$T/w3.rsp" --req "$T/n3.der" --key "$T/devs/SN-000003/key.pem" --out "$T/cc3.der"
h=$(post cc3.der cc3.rsp "" "/$RA_PATH")
expect_error "the device's certConf sent past the RA" "$h" 200 cc3.rsp notAuthorized
wrap --in "$T/cc3.der" --out "$T/wcc3.der"
h=$(post wcc3.der wcc3.rsp "" "/$RA_PATH")
is "nested certConf: pkiConf" "$h/$(field wcc3.rsp body)" 200/pkiconf
is "SN-000003 enrolled through the RA" "$(dev_state SN-000003)" enrolled
check "nested 3GPP ir of an unregistered device" dev_req SN-000015 n15.der
cli device remove --vendor acme SN-000015 >/dev/null 2>&1 || \
    sqlite3 "$T/cmpca.db" "DELETE FROM device WHERE identifier='SN-000015'"
wrap --in "$T/n15.der" --out "$T/w15.der"
h=$(post w15.der w15.rsp "" "/$RA_PATH")
expect_error "nested ir of a device not on the allow-list: 3GPP checks apply" "$h" 200 w15.rsp notAuthorized

check "ir of SN-000004" dev_req SN-000004 n4.der
check "ir of SN-000005" dev_req SN-000005 n5.der
check "ir of SN-000006" dev_req SN-000006 n6.der
"$CRAFT" mutate --in "$T/n6.der" --key "$T/devs/SN-000007/key.pem" --out "$T/n6bad.der"
c0=$(cert_count)
wrap --batch --in "$T/n4.der" --in "$T/n5.der" --in "$T/n6bad.der" --out "$T/wb.der"
h=$(post wb.der wb.rsp "" "/$RA_PATH")
is "batch of three: a nested answer" "$h/$(field wb.rsp body)/$(field wb.rsp protected)" 200/nested/ok
is "batch: three inner answers" "$("$NEST" split --in "$T/wb.rsp" --prefix "$T/wb-")" 3
is "batch: first inner answer ip" "$(field wb-1.der body)/$(field wb-1.der status)/$(field wb-1.der protected)" ip/0/ok
is "batch: second inner answer ip" "$(field wb-2.der body)/$(field wb-2.der status)" ip/0
expect_error "batch: the tampered inner message" 200 200 wb-3.der badMessageCheck
is "batch: two certificates issued" "$(cert_count)" $((c0 + 2))
is "batch: SN-000006 still registered" "$(dev_state SN-000006)" registered

check "ir of SN-000007" dev_req SN-000007 n7.der
"$NEST" wrap --in "$T/n7.der" --cert "$T/raun.pem" --key "$T/raun.key" --chain "$T/opchain.pem" \
    --out "$T/w7.der"
h=$(post w7.der w7.rsp "" "/$RA_PATH")
expect_error "wrapper by an RA not registered for the alias" "$h" 200 w7.rsp notAuthorized
is "SN-000007 unchanged" "$(dev_state SN-000007)" registered
wrap --in "$T/w3.der" --out "$T/ww.der"
h=$(post ww.der ww.rsp "" "/$RA_PATH")
expect_error "nested inside nested (depth 2)" "$h" 200 ww.rsp badRequest
wrap --in "$T/n7.der" --out "$T/w7b.der"
h=$(post w7b.der w7b.rsp)
expect_error "nested on a 3gpp alias" "$h" 200 w7b.rsp badRequest
is "server still serves after the nested refusals" "$(health)" 200
check "audit chain intact" cli audit verify

# ---- finished transactions are purged after the retention -------------------------
newkey d12.key
check "RA ir for dev-12 without certConf" raocmp ra1 -cmd ir -disable_confirm -newkey d12.key \
    -subject /CN=dev-12 -certout dev12.pem
txns() { sqlite3 "$T/cmpca.db" "SELECT count(*) FROM cmp_txn WHERE $1"; }
f0=$(txns "state IN (1,2,3,4)"); w0=$(txns "state = 0")
[ "$f0" -gt 0 ] && ok "finished transactions recorded ($f0)" || nok "finished transactions recorded"
srv_stop s
sed -i 's/^\[server\]$/[server]\ntxn_retention = 1s/' "$T/cmpca.conf"
srv_start s || exit 1
sleep 4
is "finished transactions purged after txn_retention" "$(txns "state IN (1,2,3,4)")" 0
is "transactions awaiting their certConf stay" "$(txns "state = 0")" "$w0"
e2e_done
