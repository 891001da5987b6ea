#!/bin/bash
# End-to-end enrollment against `cmpca serve` with the stock openssl cmp 3.0
# client (ir+certConf with and without keep-alive, kur, cr, p10cr, rr, genm)
# and OpenSSL's OSSL_CMP 3GPP mode (no pre-provisioned root), checking the
# ip content (extraCerts, caPubs, confirmWaitTime) with cmpinspect.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 8
srv_start main || { echo "Bail out! server did not start"; exit 1; }
is "/health answers 200" "$(health)" 200
LOG=$T/main.log

# peers_of TID: number of distinct client ports that carried TID
peers_of() { grep "tid=$1 " "$LOG" | sed -n 's/.* peer=\([^ ]*\).*/\1/p' | sort -u | wc -l; }

# ---- ir + certConf, keep-alive (default) --------------------------------------
newkey k1.key
c0=$(cert_count)
check "ir+certConf with openssl cmp (keep-alive)" ocmp -cmd ir $(dev_args SN-000001) \
    -trusted oproot.pem -newkey k1.key -subject /CN=SN-000001 -certout op1.pem \
    -reqout ir1.der,cc1.der -rspout ip1.der,pc1.der
is "ir issued exactly one certificate" "$(cert_count)" $((c0 + 1))
is "device SN-000001 enrolled" "$(dev_state SN-000001)" enrolled
check "issued certificate verifies (root + issuing)" \
    openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/op1.pem"
openssl x509 -in "$T/op1.pem" -noout -subject -nameopt RFC2253 >"$T/s1" 2>&1
grep -q "CN=SN-000001,O=Operator" "$T/s1" && ok "subject from the profile" || { nok "subject"; diag "$T/s1"; }
inspect ip1.der --req ir1.der >"$T/ip1.txt"
g() { grep -qx -- "$2" "$T/$1" && ok "${1%.txt}: $2" || { nok "${1%.txt}: wanted $2"; diag "$T/$1"; }; }
g ip1.txt "body=ip"
g ip1.txt "protected=ok"
g ip1.txt "status=0"
g ip1.txt "echo=ok"
g ip1.txt "certReqId=0"
g ip1.txt "sender=CN=Issuing CA,O=Operator"
g ip1.txt "recipient=O=Acme,CN=SN-000001,serialNumber=SN-000001"
g ip1.txt "extraCert.0=CN=Issuing CA,O=Operator"
last=$(sed -n 's/^extraCerts=//p' "$T/ip1.txt")
g ip1.txt "extraCert.$((last - 1))=CN=Operator Root,O=Operator (self-signed)"
g ip1.txt "caPubs=1"
g ip1.txt "caPubs.0=CN=Operator Root,O=Operator"
g ip1.txt "implicitConfirm=0"
if grep -q "^confirmWaitTime=20" "$T/ip1.txt"; then ok "ip: confirmWaitTime in generalInfo"; else nok "ip: confirmWaitTime missing"; fi
nl=$(sed -n 's/^senderNonceLen=//p' "$T/ip1.txt")
[ "${nl:-0}" -ge 16 ] && ok "ip: senderNonce >= 128 bits" || nok "ip: senderNonce length $nl"
kid=$(sed -n 's/^senderKID=//p' "$T/ip1.txt")
ski=$(openssl x509 -in "$T/issuing.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr 'A-F' 'a-f')
is "ip: senderKID = SKI of the signer" "$kid" "$ski"
inspect pc1.der --req cc1.der >"$T/pc1.txt"
g pc1.txt "body=pkiconf"
g pc1.txt "protected=ok"
g pc1.txt "echo=ok"
tid1=$(sed -n 's/^tid=//p' "$T/ip1.txt")
is "ir and certConf used one kept-alive connection" "$(peers_of "$tid1")" 1
grep -q "type=certConf tid=$tid1 .*outcome=accepted" "$LOG" && ok "log line for certConf" || nok "log line for certConf"

# ---- ir + certConf without keep-alive -----------------------------------------
newkey k2.key
check "ir+certConf with -keep_alive 0" ocmp -cmd ir -keep_alive 0 $(dev_args SN-000002) \
    -trusted oproot.pem -newkey k2.key -subject /CN=SN-000002 -certout op2.pem \
    -rspout ip2.der,pc2.der
is "device SN-000002 enrolled" "$(dev_state SN-000002)" enrolled
tid2=$(field ip2.der tid)
is "ir and certConf on two connections" "$(peers_of "$tid2")" 2

# ---- implicitConfirm requested: never granted on 3GPP ---------------------------
newkey k3.key
check "ir with -implicit_confirm" ocmp -cmd ir -implicit_confirm $(dev_args SN-000003) \
    -trusted oproot.pem -newkey k3.key -subject /CN=SN-000003 -certout op3.pem \
    -reqout ir3.der,cc3.der -rspout ip3.der,pc3.der
is "implicitConfirm not granted (3GPP)" "$(field ip3.der implicitConfirm)" 0
[ -s "$T/cc3.der" ] && ok "client had to send certConf" || nok "no certConf sent"
is "device SN-000003 enrolled after certConf" "$(dev_state SN-000003)" enrolled

# ---- 3GPP: no pre-provisioned operator root (OSSL_CMP 3GPP mode) ----------------
newkey k4.key
check "ir without a trusted root (OSSL_CMP permitTAInExtraCertsForIR)" \
    "$CRAFT" ossl-ir --server "127.0.0.1:$PORT" --path "$ALIAS_PATH" \
    --signer "$T/devs/SN-000004/cert.pem" --chain "$T/devs/SN-000004/chain.pem" \
    --key "$T/devs/SN-000004/key.pem" --newkey "$T/k4.key" --out "$T/op4.pem" \
    --capubsout "$T/cap4.pem"
a=$(openssl x509 -in "$T/cap4.pem" -noout -fingerprint -sha256 2>/dev/null)
b=$(openssl x509 -in "$T/oproot.pem" -noout -fingerprint -sha256)
is "caPubs delivered the operator root" "$a" "$b"
check "certificate from the root-less ir verifies" \
    openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/op4.pem"
is "device SN-000004 enrolled" "$(dev_state SN-000004)" enrolled

# ---- kur ------------------------------------------------------------------------
newkey k1b.key
c0=$(cert_count)
check "kur with openssl cmp" ocmp -cmd kur -cert op1.pem -key k1.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey k1b.key -certout op1b.pem -reqout kur.der,kcc.der \
    -rspout kup.der,kpc.der
inspect kup.der --req kur.der >"$T/kup.txt"
g kup.txt "body=kup"
g kup.txt "protected=ok"
g kup.txt "echo=ok"
g kup.txt "caPubs=0"
g kup.txt "cert.subject=CN=SN-000001,O=Operator"
is "kur issued one certificate" "$(cert_count)" $((c0 + 1))
is "old certificate revoked after kur (revoke_on_kur)" "$(cert_status "$(serial_of op1.pem)")" revoked
cur=$(cli device show --vendor acme SN-000001 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cert"]["serial"])')
is "device points at the renewed certificate" "$cur" "$(serial_of op1b.pem)"
check "renewed certificate verifies" \
    openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/op1b.pem"
# the sweeper (every second here) issues a CRL that lists the replaced one
sleep 2.5
cli crl --ca issuing --last -o "$T/kurcrl.pem" >/dev/null 2>&1
check "CRL after the kur lists the replaced certificate" \
    sh -c "openssl crl -in '$T/kurcrl.pem' -noout -text | tr -d ' :' | tr 'A-F' 'a-f' \
           | grep -qi 'serialnumber$(serial_of op1.pem)'"

# ---- cr -------------------------------------------------------------------------
newkey k2c.key
c0=$(cert_count)
check "cr with openssl cmp" ocmp -cmd cr -cert op2.pem -key k2.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey k2c.key -subject /CN=SN-000002 -certout op2c.pem \
    -rspout cp.der,cpc.der
is "cp body" "$(field cp.der body)" cp
is "cp without caPubs" "$(field cp.der caPubs)" 0
is "cr issued one certificate" "$(cert_count)" $((c0 + 1))
is "cr leaves the first certificate valid" "$(cert_status "$(serial_of op2.pem)")" valid
newkey k2x.key; newkey k2d.key
check "a second cr certificate" ocmp -cmd cr -cert op2.pem -key k2.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey k2x.key -subject /CN=SN-000002 -certout op2x.pem
check "kur renews the cr-issued certificate" ocmp -cmd kur -cert op2x.pem -key k2x.key \
    -extracerts opchain.pem -trusted oproot.pem -newkey k2d.key -certout op2d.pem
is "the renewed cr certificate is revoked (superseded)" \
    "$(cert_status "$(serial_of op2x.pem)")" revoked
is "the device's main certificate is untouched" "$(cert_status "$(serial_of op2.pem)")" valid
check "the main certificate still renews" ocmp -cmd kur -cert op2.pem -key k2.key \
    -extracerts opchain.pem -trusted oproot.pem -newkey k2d.key -certout op2e.pem

# ---- p10cr (initial enrollment from a PKCS#10 CSR, vendor-signed) -----------------
newkey k5.key
openssl req -new -key "$T/k5.key" -subj /CN=SN-000005 -out "$T/p10.csr" 2>/dev/null
c0=$(cert_count)
check "p10cr with openssl cmp" ocmp -cmd p10cr -csr p10.csr $(dev_args SN-000005) \
    -trusted oproot.pem -certout op5.pem -reqout p10.der,p10cc.der -rspout p10cp.der,p10pc.der
is "p10cr answered with cp" "$(field p10cp.der body)" cp
is "p10cr: certReqId -1" "$(field p10cp.der certReqId)" -1
is "p10cr issued one certificate" "$(cert_count)" $((c0 + 1))
is "device SN-000005 enrolled" "$(dev_state SN-000005)" enrolled
check "p10cr certificate verifies" \
    openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/op5.pem"

# ---- rr -------------------------------------------------------------------------
check "rr of the cr certificate, signed by itself" ocmp -cmd rr -oldcert op2c.pem \
    -cert op2c.pem -key k2c.key -extracerts opchain.pem -trusted oproot.pem -revreason 1 \
    -rspout rp.der
is "rp: protected" "$(field rp.der protected)" ok
is "rp: status accepted" "$(field rp.der status)" 0
is "cert list shows it revoked" "$(cert_status "$(serial_of op2c.pem)")" revoked
is "the device's current certificate untouched" "$(dev_state SN-000002)" enrolled
check "cmpca crl" cli crl --ca issuing -o "$T/crl.pem"
if openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/oproot.pem" \
        -untrusted "$T/issuing.pem" "$T/op2c.pem" >"$T/v.out" 2>&1; then
    nok "openssl verify -crl_check accepts a revoked certificate"
else
    grep -q "certificate revoked" "$T/v.out" && ok "openssl verify -crl_check: certificate revoked" \
        || { nok "verify -crl_check error"; diag "$T/v.out"; }
fi
check "a valid certificate passes -crl_check" openssl verify -crl_check -CRLfile "$T/crl.pem" \
    -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/op1b.pem"
check "rr of the device's current certificate" ocmp -cmd rr -oldcert op3.pem -cert op3.pem \
    -key k3.key -extracerts opchain.pem -trusted oproot.pem
is "device SN-000003 revoked" "$(dev_state SN-000003)" revoked

# ---- genm -----------------------------------------------------------------------
check "genm caCerts with openssl cmp" ocmp -cmd genm -infotype caCerts -cert op1b.pem \
    -key k1b.key -extracerts opchain.pem -trusted oproot.pem -reqout genm.der -rspout genp.der
is "genp carries caCerts" "$(field genp.der genp.0)" "1.3.6.1.5.5.7.4.17 value"
is "genp protected" "$(field genp.der protected)" ok
"$CRAFT" mutate --in "$T/genm.der" --key "$T/k1b.key" --new-tid \
    --genm-oid 1.3.6.1.5.5.7.4.20 --out "$T/genm20.der"
h=$(post genm20.der genp20.der)
is "genm rootCaCert: HTTP 200" "$h" 200
is "genm rootCaCert -> rootCaKeyUpdate" "$(field genp20.der genp.0 | cut -d' ' -f1)" 1.3.6.1.5.5.7.4.18
# crl_status_hex [TIME] [dpn]: a CRLStatus list (RFC 9483 4.3.4) naming
# the issuing CA's CRL by its issuer name (or, with "dpn", by a
# distribution point URI the profile does not have), with thisUpdate TIME
# (UTCTime text) if given
crl_status_hex() {
    python3 - "${1:-}" "${2:-}" "$T/issuing.pem" <<'EOF'
import base64, sys
def tlv(t, b):
    n = len(b)
    if n < 128: l = bytes([n])
    elif n < 256: l = bytes([0x81, n])
    else: l = bytes([0x82, n >> 8, n & 255])
    return bytes([t]) + l + b
def parse(d, i):
    t = d[i]; n = d[i + 1]; i += 2
    if n & 0x80:
        k = n & 0x7f; n = int.from_bytes(d[i:i + k], "big"); i += k
    return t, i, i + n
pem = open(sys.argv[3]).read().split("-----")[2]
der = base64.b64decode("".join(pem.split()))
_, c, _ = parse(der, 0)                  # Certificate
_, i, _ = parse(der, c)                  # TBSCertificate content
t, s, e = parse(der, i)
if t == 0xa0:                            # version
    i = e
for _ in range(4):                       # serial, signature, issuer, validity
    i = parse(der, i)[2]
name = der[i:parse(der, i)[2]]           # subject
if sys.argv[2] == "dpn":
    src = tlv(0xa0, tlv(0xa0, tlv(0x86, b"http://crl.example/issuing.crl")))
else:
    src = tlv(0xa1, tlv(0x30, tlv(0xa4, name)))   # issuer [1] { dirName }
st = src + (tlv(0x17, sys.argv[1].encode()) if sys.argv[1] else b"")
print(tlv(0x30, tlv(0x30, st)).hex())
EOF
}
# genmv OID HEX OUT: a genm with one ITAV of OID and DER value HEX ("" =
# absent) posted; prints the HTTP status, the answer in OUT
genmv() {
    local v=()
    [ -n "$2" ] && v=(--genm-value "$2")
    "$CRAFT" mutate --in "$T/genm.der" --key "$T/k1b.key" --new-tid \
        --genm-oid "$1" "${v[@]}" --out "$T/$3.der"
    post "$3.der" "$3"
}
"$CRAFT" mutate --in "$T/genm.der" --key "$T/k1b.key" --new-tid \
    --genm-oid 1.3.6.1.5.5.7.4.22 --genm-value "$(crl_status_hex)" --out "$T/genm22.der"
h=$(post genm22.der genp22.der)
is "genm crlStatusList: HTTP 200" "$h" 200
is "genm crlStatusList -> crls with a value" "$(field genp22.der genp.0)" "1.3.6.1.5.5.7.4.23 value"
inspect genp22.der --crlout "$T/genp.crl" >/dev/null
check "the genp CRL is signed by the issuing CA" openssl crl -in "$T/genp.crl" -CAfile "$T/issuing.pem" -noout
openssl crl -in "$T/genp.crl" -noout -text >"$T/genpcrl.txt" 2>&1
s2c=$(serial_of op2c.pem | tr 'a-f' 'A-F')
grep -q "Serial Number: 0*$s2c" "$T/genpcrl.txt" && ok "the genp CRL lists the certificate revoked by rr" \
    || { nok "the genp CRL lacks $s2c"; diag "$T/genpcrl.txt"; }
h=$(genmv 1.3.6.1.5.5.7.4.22 "$(crl_status_hex 250101000000Z)" genp22t)
is "genm crlStatusList with thisUpdate -> crls" "$h/$(field genp22t genp.0)" \
    "200/1.3.6.1.5.5.7.4.23 value"
h=$(genmv 1.3.6.1.5.5.7.4.20 "$(openssl x509 -in "$T/oproot.pem" -outform DER | od -An -v -tx1 | tr -d ' \n')" genp20c)
is "genm rootCaCert with the root certificate -> rootCaKeyUpdate" \
    "$h/$(field genp20c genp.0 | cut -d' ' -f1)" 200/1.3.6.1.5.5.7.4.18
# a known infoType with a value RFC 9483 4.3 does not allow: badRequest
h=$(genmv 1.3.6.1.5.5.7.4.17 020101 genpv17)
expect_error "genm caCerts with a value" "$h" 200 genpv17 badRequest
h=$(genmv 1.3.6.1.5.5.7.4.19 0500 genpv19)
expect_error "genm certReqTemplate with a value" "$h" 200 genpv19 badRequest
h=$(genmv 1.3.6.1.5.5.7.4.20 020101 genpv20)
expect_error "genm rootCaCert with a value that is no certificate" "$h" 200 genpv20 badRequest
h=$(genmv 1.3.6.1.5.5.7.4.22 "" genpv22a)
expect_error "genm crlStatusList without a value" "$h" 200 genpv22a badRequest
h=$(genmv 1.3.6.1.5.5.7.4.22 3000 genpv22e)
expect_error "genm crlStatusList with an empty list" "$h" 200 genpv22e badRequest
h=$(genmv 1.3.6.1.5.5.7.4.22 30053003020101 genpv22i)
expect_error "genm crlStatusList whose CRLStatus has no CRLSource" "$h" 200 genpv22i badRequest
h=$(genmv 1.2.3.4 020101 genpunk)
is "genm with an unknown infoType and a value: genp without it" "$h/$(field genpunk body)" 200/genp
inspect genp.der --genpcertsout "$T/cacerts.pem" >/dev/null
grep -c "BEGIN CERTIFICATE" "$T/cacerts.pem" >"$T/ncacerts"
[ "$(cat "$T/ncacerts")" -ge 1 ] && ok "caCerts carries certificates ($(cat "$T/ncacerts"))" || nok "caCerts empty"
check "caCerts contains the issuing CA" grep -q "$(sed -n 2p "$T/issuing.pem")" "$T/cacerts.pem"
check "genm from a registered (not enrolled) device" ocmp -cmd genm -infotype caCerts \
    $(dev_args SN-000006) -trusted oproot.pem

# ---- key types: RSA, P-384, Ed25519 new keys; Ed25519/P-384 protection --------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/krsa.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/kp384.key" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$T/ked.key" 2>/dev/null
for kt in rsa p384 ed; do
    check "cr with a new $kt key" ocmp -cmd cr -cert op1b.pem -key k1b.key -extracerts opchain.pem \
        -trusted oproot.pem -newkey "k$kt.key" -subject /CN=SN-000001 -certout "op1$kt.pem"
done
# (the openssl 3.0 client cannot sign with Ed25519: cmpcraft does)
"$CRAFT" mutate --in "$T/genm.der" --key "$T/ked.key" --signer "$T/op1ed.pem" --chain "$T/opchain.pem" \
    --new-tid --out "$T/gened.der"
is "Ed25519-protected request built" "$(inspect gened.der 2>/dev/null | sed -n 's/^protectionAlg=//p')" ED25519
h=$(post gened.der gened.rsp)
is "genm protected with an Ed25519 operator certificate" "$h/$(field gened.rsp body)" 200/genp
check "genm protected with a P-384 operator certificate (SHA-384)" ocmp -cmd genm -infotype caCerts \
    -cert op1p384.pem -key kp384.key -extracerts opchain.pem -trusted oproot.pem -digest sha384
check "genm protected with an RSA operator certificate" ocmp -cmd genm -infotype caCerts \
    -cert op1rsa.pem -key krsa.key -extracerts opchain.pem -trusted oproot.pem
"$CRAFT" mutate --in "$T/genm.der" --key "$T/k1b.key" --signer "$T/op1b.pem" --chain "$T/opchain.pem" \
    --new-tid --signer-last --out "$T/genlast.der"
h=$(post genlast.der genlast.rsp)
is "signer certificate last in extraCerts is found" "$h/$(field genlast.rsp body)" 200/genp

# ---- housekeeping ---------------------------------------------------------------
m=$(curl -s --max-time 10 -o "$T/metrics.txt" -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
is "/metrics answers 200" "$m" 200
grep -q 3gpp "$T/metrics.txt" && ok "/metrics mentions the alias" || nok "/metrics content"
# every enrollment committed durably: the store's commit histogram counts them
c=$(sed -n 's/^cmpca_store_commit_seconds_count \([0-9]*\)$/\1/p' "$T/metrics.txt")
[ "${c:-0}" -gt 0 ] && ok "/metrics counts the store's commits ($c)" || nok "no cmpca_store_commit_seconds_count"
grep -q '^cmpca_store_commit_failures_total 0$' "$T/metrics.txt" \
    && ok "/metrics: no commit failed" || nok "commit failures reported"
check "audit trail intact" cli audit verify
srv_stop main
is "server stops with status 0 on SIGTERM" $? 0
e2e_done
