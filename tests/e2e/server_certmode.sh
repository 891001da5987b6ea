#!/usr/bin/env bash
# Certificate client mode end to end: the stock openssl cmp client with a
# certificate from cmpca and one from an external CA uses every command
# (ir, cr, p10cr -csr, kur, rr with each reason, genm); certProfile chooses
# the profile (allowed, unknown, not offered, two values); cert_subjects
# own/any/allowlist; revoked, expired, untrusted and CRL-revoked signers
# are refused with signerNotTrusted, nothing changed, the server serving.
# shellcheck disable=SC2046
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 12

# ---- an external CA with a holder, an expired holder and a revoked one -------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Ext CA" \
    -keyout "$T/ext-ca.key" -out "$T/ext-ca.pem" -days 3650 \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -addext subjectKeyIdentifier=hash >/dev/null 2>&1
printf 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nkeyUsage=digitalSignature\n' \
    >"$T/ext.ext"
# ext_cert NAME SUBJECT [faketime]: NAME.pem/NAME.key issued by the external CA
ext_cert() {
    local ft=${3:-}
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" 2>/dev/null
    openssl req -new -key "$T/$1.key" -subj "$2" -out "$T/$1.csr" 2>/dev/null
    if [ -n "$ft" ]; then
        faketime "$ft" openssl x509 -req -in "$T/$1.csr" -CA "$T/ext-ca.pem" \
            -CAkey "$T/ext-ca.key" -CAcreateserial -days 2 -extfile "$T/ext.ext" \
            -out "$T/$1.pem" 2>/dev/null
    else
        openssl x509 -req -in "$T/$1.csr" -CA "$T/ext-ca.pem" -CAkey "$T/ext-ca.key" \
            -CAcreateserial -days 30 -extfile "$T/ext.ext" -out "$T/$1.pem" 2>/dev/null
    fi
}
ext_cert ext1 /CN=ext-1
ext_cert ext2 /CN=ext-2
ext_cert ext3 /CN=ext-3
ext_cert extexp /CN=ext-expired '2020-01-01 00:00:00'
ext_cert extrev /CN=ext-revoked
# a CRL of the external CA revoking extrev
mkdir -p "$T/extca"
: >"$T/extca/index.txt"
cat >"$T/extca/ca.cnf" <<EOF
[ca]
default_ca = ext
[ext]
database = $T/extca/index.txt
crlnumber = $T/extca/crlnumber
default_md = sha256
default_crl_days = 30
EOF
echo 01 >"$T/extca/crlnumber"
openssl ca -config "$T/extca/ca.cnf" -cert "$T/ext-ca.pem" -keyfile "$T/ext-ca.key" \
    -revoke "$T/extrev.pem" -crl_reason keyCompromise >/dev/null 2>&1
openssl ca -config "$T/extca/ca.cnf" -cert "$T/ext-ca.pem" -keyfile "$T/ext-ca.key" \
    -gencrl -out "$T/ext.crl" >/dev/null 2>&1
[ -s "$T/ext.crl" ] || { echo "Bail out! no external CRL"; exit 1; }
# a holder no configured CA vouches for
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=stranger" \
    -keyout "$T/stranger.key" -out "$T/stranger.pem" -days 30 \
    -addext subjectKeyIdentifier=hash >/dev/null 2>&1

cat >>"$T/cmpca.conf" <<EOF
[alias cert]
mode = cert
ca = issuing
profile = certdev
profiles = gold
cert_trust = issuing
cert_trust_file = ext-ca.pem
cert_crl_file = ext.crl
cert_subjects = own
allow_reenroll = yes
[alias certany]
mode = cert
ca = issuing
profile = certdev
cert_trust_file = ext-ca.pem
cert_subjects = any
implicit_confirm = yes
[alias certallow]
mode = cert
ca = issuing
profile = certallow
vendors = acme
cert_trust_file = ext-ca.pem
cert_subjects = allowlist
[alias certonce]
mode = cert
ca = issuing
profile = certdev
cert_trust = issuing
cert_trust_file = ext-ca.pem
[alias raprof]
mode = ra
ca = issuing
profile = certdev
profiles = gold, other
[profile certdev]
validity = 30d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
[profile gold]
validity = 10d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
[profile other]
validity = 5d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
[profile certallow]
validity = 30d
subject = CN=\${request.serialNumber},O=Operator
key_usage = digitalSignature
EOF
srv_start s || exit 1

CP=.well-known/cmp/p/cert
subject_of() { openssl x509 -in "$T/$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
days_of() {
    python3 - "$T/$1" <<'PY'
import subprocess, sys, datetime
o = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", "-startdate", "-enddate"],
                   capture_output=True, text=True).stdout.split("\n")
f = lambda s: datetime.datetime.strptime(s.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
print(round((f(o[1]) - f(o[0])).total_seconds() / 86400))
PY
}
# holder NAME: credentials of holder NAME (a cmpca certificate: chain
# opchain.pem; an external one: ext-ca.pem)
holder() {
    case $1 in
        ext*) echo "-cert $1.pem -key $1.key -extracerts ext-ca.pem" ;;
        stranger) echo "-cert stranger.pem -key stranger.key -extracerts stranger.pem" ;;
        *) echo "-cert $1.pem -key $1.key -extracerts opchain.pem" ;;
    esac
}
# cocmp HOLDER ARGS...: openssl cmp as HOLDER on alias cert (or $CAP)
cocmp() {
    local h=$1; shift
    ocmp -path "${CAP:-$CP}" $(holder "$h") -trusted oproot.pem "$@"
}

# ---- a certificate from cmpca (3GPP enrollment of device SN-000001) ----------------
newkey h1.key
check "device SN-000001 enrolls on the 3gpp alias" ocmp -cmd ir $(dev_args SN-000001) \
    -trusted oproot.pem -newkey h1.key -subject /CN=SN-000001 -certout h1.pem
H1SUBJ=$(subject_of h1.pem)

# ---- every command with the cmpca certificate -------------------------------------
newkey a1.key
check "ir signed by a cmpca certificate" cocmp h1 -cmd ir -newkey a1.key -certout a1.pem
is "ir: the signer's own subject" "$(subject_of a1.pem)" "$H1SUBJ"
newkey a2.key
check "cr signed by a cmpca certificate" cocmp h1 -cmd cr -newkey a2.key -certout a2.pem
newkey a3.key
openssl req -new -key "$T/a3.key" -subj "/O=Operator/CN=SN-000001" -out "$T/a3.csr" 2>/dev/null
check "p10cr -csr signed by a cmpca certificate" cocmp h1 -cmd p10cr -csr a3.csr -certout a3.pem
is "p10cr: subject" "$(subject_of a3.pem)" "$H1SUBJ"
newkey a1b.key
check "kur of the ir's certificate" cocmp a1 -cmd kur -newkey a1b.key -certout a1b.pem
is "kur kept the subject" "$(subject_of a1b.pem)" "$H1SUBJ"
is "the renewed certificate is revoked on certConf" "$(cert_status "$(serial_of a1.pem)")" revoked
check "genm signed by a cmpca certificate" cocmp h1 -cmd genm
grep -q 'alias=cert type=genm .*outcome=accepted' "$T/s.log" \
    && ok "genm accepted in the log" || nok "genm accepted in the log"

# rr with each revocation reason: a certificate per reason (cr), revoked by
# an rr signed with itself
for r in 0 1 2 3 4 5 6 9 10; do
    newkey "r$r.key"
    cocmp h1 -cmd cr -newkey "r$r.key" -certout "r$r.pem" >"$T/o.out" 2>&1
    check "rr with reason $r" cocmp "r$r" -cmd rr -oldcert "r$r.pem" -revreason "$r"
    is "reason $r: revoked" "$(cert_status "$(serial_of "r$r.pem")")" revoked
done
sqlite3 "$T/cmpca.db" "SELECT reason FROM cert WHERE status=1 ORDER BY id" >"$T/reasons.txt" 2>/dev/null
for r in 0 1 2 3 4 5 6 9 10; do
    grep -qx "$r" "$T/reasons.txt" && ok "reason $r recorded" || nok "reason $r recorded"
done
check "rr with removeFromCRL releases the certificate on hold (signed by it)" \
    cocmp r6 -cmd rr -oldcert r6.pem -revreason 8
is "released: valid again" "$(cert_status "$(serial_of r6.pem)")" valid

# ---- an external certificate -------------------------------------------------------
newkey e1.key
check "ir signed by an external certificate" cocmp ext1 -cmd ir -newkey e1.key -certout e1.pem
is "ir: subject from the external holder" "$(subject_of e1.pem)" "CN=ext-1,O=Operator"
newkey e2.key
check "cr signed by an external certificate" cocmp ext1 -cmd cr -newkey e2.key -certout e2.pem
newkey e3.key
openssl req -new -key "$T/e3.key" -subj /CN=ext-1 -out "$T/e3.csr" 2>/dev/null
check "p10cr signed by an external certificate" cocmp ext1 -cmd p10cr -csr e3.csr -certout e3.pem
newkey e4.key
check "kur of the external certificate" cocmp ext1 -cmd kur -newkey e4.key -certout e4.pem \
    -oldcert ext1.pem
is "kur of an external certificate keeps its subject" "$(subject_of e4.pem)" "CN=ext-1"
check "genm signed by an external certificate" cocmp ext1 -cmd genm
check "rr of the certificate the external holder obtained, signed by it" \
    cocmp e2 -cmd rr -oldcert e2.pem -revreason 4
is "e2 revoked (superseded)" "$(cert_status "$(serial_of e2.pem)")" revoked

# ---- refusals: signed answer, failInfo, nothing changed, serving -------------------
# cneg DESC KIND FAILINFO HOLDER ARGS...
cneg() {
    local d=$1 kind=$2 fi=$3 h=$4 c0 a0 t0; shift 4
    c0=$(cert_count); a0=$(audit_count)
    t0=$(sqlite3 "$T/cmpca.db" "SELECT count(*) FROM device WHERE state<>0" 2>/dev/null)
    rm -f "$T/cneg.rsp"
    cocmp "$h" "$@" -certout cneg.pem -rspout cneg.rsp >"$T/o.out" 2>&1
    if [ "$kind" = error ]; then
        expect_error "$d" 200 200 cneg.rsp "$fi"
    else
        expect_rejection "$d" 200 cneg.rsp "$kind" "$fi"
    fi
    is "$d: nothing issued" "$(cert_count)" "$c0"
    is "$d: no audit row" "$(audit_count)" "$a0"
    is "$d: device states unchanged" \
        "$(sqlite3 "$T/cmpca.db" "SELECT count(*) FROM device WHERE state<>0" 2>/dev/null)" "$t0"
    is "$d: server still serves" "$(health)" 200
}
newkey x.key
cneg "another subject (cert_subjects = own)" ip badCertTemplate ext1 -cmd ir -newkey x.key \
    -subject /CN=someone-else
cneg "the signer's own key (key_update = new-key)" ip badCertTemplate ext2 -cmd ir \
    -newkey ext2.key
cneg "expired external signer" error signerNotTrusted extexp -cmd ir -newkey x.key
cneg "external signer revoked by its CA's CRL" error signerNotTrusted extrev -cmd ir \
    -newkey x.key
cneg "untrusted signer" error signerNotTrusted stranger -cmd ir -newkey x.key
cneg "rr of another subject's certificate" error notAuthorized ext1 -cmd rr -oldcert a2.pem \
    -revreason 1
cneg "raVerified in cert mode" ip badPOP ext1 -cmd ir -newkey x.key -popo 0
CAP=.well-known/cmp/p/certany cneg "cmpca certificate on an alias trusting only the external CA" \
    error signerNotTrusted h1 -cmd ir -newkey x.key
check "revoke the cmpca certificate a2" cli cert revoke --ca issuing --serial "$(serial_of a2.pem)" \
    --reason keyCompromise
cneg "revoked cmpca signer (ir)" error signerNotTrusted a2 -cmd ir -newkey x.key
cneg "revoked cmpca signer (kur)" error signerNotTrusted a2 -cmd kur -newkey x.key
cneg "revoked cmpca signer (genm)" error signerNotTrusted a2 -cmd genm
cneg "rr of an already revoked certificate" rp certRevoked a2 -cmd rr -oldcert a2.pem \
    -revreason 1

# ---- cert_subjects = any, implicitConfirm ------------------------------------------
newkey y.key
CAP=.well-known/cmp/p/certany check "any subject on certany" cocmp ext2 -cmd ir -newkey y.key \
    -subject /CN=anything -certout y.pem -implicit_confirm -rspout y.rsp
is "any: the requested subject" "$(subject_of y.pem)" "CN=anything,O=Operator"
is "implicitConfirm granted and echoed" "$(inspect y.rsp | grep -c implicitConfirm)" 1
is "implicitly confirmed transaction" \
    "$(sqlite3 "$T/cmpca.db" "SELECT group_concat(state) FROM cmp_txn WHERE alias='certany'")" 1

# ---- cert_subjects = allowlist -----------------------------------------------------
AP=.well-known/cmp/p/certallow
newkey z.key
CAP=$AP check "allow-listed device SN-000005" cocmp ext2 -cmd ir -newkey z.key \
    -subject "/CN=x/serialNumber=SN-000005" -certout z.pem
is "allowlist: certificate named after the device" "$(subject_of z.pem)" "CN=SN-000005,O=Operator"
is "SN-000005 enrolled" "$(dev_state SN-000005)" enrolled
CAP=$AP cneg "allowlist: device not registered" error notAuthorized ext2 -cmd ir -newkey x.key \
    -subject "/CN=x/serialNumber=SN-999999"
CAP=$AP cneg "allowlist: device already enrolled" error notAuthorized ext2 -cmd ir -newkey x.key \
    -subject "/CN=x/serialNumber=SN-000005"
CAP=$AP cneg "allowlist: subject without serialNumber" ip badCertTemplate ext2 -cmd ir \
    -newkey x.key -subject /CN=x

# ---- repeated enrollment (allow_reenroll off) --------------------------------------
newkey o1.key
CAP=.well-known/cmp/p/certonce check "first ir on certonce" cocmp ext3 -cmd ir -newkey o1.key \
    -certout o1.pem
CAP=.well-known/cmp/p/certonce cneg "second ir of the same holder" error notAuthorized ext3 \
    -cmd ir -newkey x.key
CAP=.well-known/cmp/p/certonce cneg "ir by a holder of a cmpca certificate" error notAuthorized \
    h1 -cmd ir -newkey x.key

# ---- certProfile (the 3.0 client has no -profile: cmpcraft adds it) ----------------
newkey p.key
cocmp ext1 -cmd ir -newkey p.key -disable_confirm -reqout p-ir.der -certout p0.pem \
    >"$T/o.out" 2>&1
# prof DESC OUT ARGS...: the saved ir with a new transactionID and certProfile
prof() {
    local out=$1; shift
    "$CRAFT" mutate --in "$T/p-ir.der" --out "$T/$out.der" --key "$T/ext1.key" --new-tid "$@"
    post "$out.der" "$out.rsp" "" "/$CP"
}
h=$(prof pgold --cert-profile gold)
is "certProfile gold: accepted" "$h/$(field pgold.rsp body)/$(field pgold.rsp status)" 200/ip/0
is "certProfile gold: issued with it" \
    "$(sqlite3 "$T/cmpca.db" "SELECT profile FROM cert ORDER BY id DESC LIMIT 1")" gold
h=$(prof pdef --cert-profile certdev)
is "certProfile naming the default profile: accepted" "$h/$(field pdef.rsp status)" 200/0
is "default profile recorded" \
    "$(sqlite3 "$T/cmpca.db" "SELECT profile FROM cert ORDER BY id DESC LIMIT 1")" certdev
c0=$(cert_count)
h=$(prof punk --cert-profile nosuch)
expect_rejection "certProfile unknown" "$h" punk.rsp ip badCertTemplate
h=$(prof poth --cert-profile other)
expect_rejection "certProfile not offered on the alias" "$h" poth.rsp ip badCertTemplate
h=$(prof ptwo --cert-profile gold --cert-profile certdev)
expect_error "certProfile with two values" "$h" 200 ptwo.rsp badRequest
is "refused certProfiles: nothing issued" "$(cert_count)" "$c0"
is "server still serves" "$(health)" 200

# ---- POPOSigningKeyInput (RFC 4211 4.1: a template without subject) ---------------
newkey pk.key
cocmp h1 -cmd cr -newkey pk.key -disable_confirm -reqout pk-cr.der -certout pk0.pem \
    >"$T/o.out" 2>&1
# pski OUT ARGS...: the saved cr, subject dropped, POP over POPOSigningKeyInput
pski() {
    local out=$1; shift
    "$CRAFT" mutate --in "$T/pk-cr.der" --out "$T/$out.der" --key "$T/h1.key" --new-tid \
        --newkey "$T/pk.key" "$@"
    post "$out.der" "$out.rsp" "" "/$CP"
}
h=$(pski pski-ok --popo-input sender)
is "POPOSigningKeyInput naming the sender: accepted" \
    "$h/$(field pski-ok.rsp body)/$(field pski-ok.rsp status)" 200/cp/0
is "POPOSigningKeyInput: issued with the signer's subject (cert_subjects = own)" \
    "$(sqlite3 "$T/cmpca.db" "SELECT subject FROM cert ORDER BY id DESC LIMIT 1")" "$H1SUBJ"
c0=$(cert_count)
h=$(pski pski-s --popo-input othersender)
expect_rejection "POPOSigningKeyInput naming another sender" "$h" pski-s.rsp cp badPOP
h=$(pski pski-k --popo-input otherkey)
expect_rejection "POPOSigningKeyInput with another key than the template's" "$h" pski-k.rsp cp \
    badPOP
is "POPOSigningKeyInput refusals: nothing issued" "$(cert_count)" "$c0"
is "server still serves" "$(health)" 200

# ---- certProfile for an RA: its registered profiles apply --------------------------
check "ra add rp (profile gold only)" cli ra add --name rp --cert h1.pem --alias raprof \
    --profile gold
newkey rq.key
(cd "$T" && timeout 30 openssl cmp -server "127.0.0.1:$PORT" -path .well-known/cmp/p/raprof \
    -cert h1.pem -key h1.key -extracerts opchain.pem -trusted oproot.pem -cmd ir \
    -newkey rq.key -subject /CN=ra-dev -reqout ra-ir.der -rspout ra-ir.rsp -certout rq.pem) \
    >"$T/o.out" 2>&1
expect_error "RA without certProfile: the default profile is not the RA's" 200 200 ra-ir.rsp \
    notAuthorized
# rprof OUT ARGS...: the RA's saved ir with a new transactionID and certProfile
rprof() {
    local out=$1; shift
    "$CRAFT" mutate --in "$T/ra-ir.der" --out "$T/$out.der" --key "$T/h1.key" --new-tid "$@"
    post "$out.der" "$out.rsp" "" "/.well-known/cmp/p/raprof"
}
h=$(rprof rgold --cert-profile gold)
is "RA certProfile gold (registered for it): accepted" \
    "$h/$(field rgold.rsp body)/$(field rgold.rsp status)" 200/ip/0
is "RA certProfile gold: issued with it" \
    "$(sqlite3 "$T/cmpca.db" "SELECT profile FROM cert ORDER BY id DESC LIMIT 1")" gold
c0=$(cert_count)
h=$(rprof roth --cert-profile other)
expect_rejection "RA certProfile offered on the alias but not registered for the RA" "$h" \
    roth.rsp ip badCertTemplate
is "RA certProfile refusal: nothing issued" "$(cert_count)" "$c0"

e2e_done
