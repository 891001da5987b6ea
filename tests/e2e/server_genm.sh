#!/bin/bash
# End-to-end general messages (RFC 9483 4.3) and root CA key rollover:
# caCerts, certReqTemplate (from the profile; certProfile), rootCaCert ->
# rootCaKeyUpdate before and after `cmpca ca rollover` (the link
# certificates verified with openssl), crlStatusList -> crls only when
# newer, unknown infoTypes; a device enrolled before the rollover keeps
# working. The stock openssl cmp 3.0 client where it can send the request,
# cmpcraft (re-signed variants of its genm) otherwise.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 4
# the device profile: key types and a CRL distribution point; a second
# profile offered on the alias for certReqTemplate
cat >>"$T/cmpca.conf" <<'EOF'
key_types = ec:P-256, rsa:3072
crl_url = http://crl.example/issuing.crl
[profile other]
validity = 30d
subject = CN=${request.CN},OU=Lab,O=Operator
key_usage = digitalSignature
key_types = ed25519
EOF
sed -i 's/^mode = 3gpp$/mode = 3gpp\nprofiles = other/' "$T/cmpca.conf"
# an alias naming a profile that does not exist does not start
sed 's/^profiles = other$/profiles = other, nosuch/' "$T/cmpca.conf" >"$T/bad.conf"
if (cd "$T" && timeout 30 "$CMPCA" -c "$T/bad.conf" serve --port-file "$T/bad.port" \
    >"$T/bad.log" 2>&1); then nok "profiles naming an unknown profile refused at start"
else
    grep -q "nosuch" "$T/bad.log" && ok "profiles naming an unknown profile refused at start" \
        || { nok "unknown profile message"; diag "$T/bad.log"; }
fi
srv_start main || { echo "Bail out! server did not start"; exit 1; }
is "/health answers 200" "$(health)" 200
DB=$T/cmpca.db
g() { grep -qx -- "$2" "$T/$1" && ok "${1%.txt}: $2" || { nok "${1%.txt}: wanted $2"; diag "$T/$1"; }; }
hexof() { openssl x509 -in "$T/$1" -outform DER | od -An -v -tx1 | tr -d ' \n'; }
asn1() { openssl asn1parse -inform DER -in "$T/$1" 2>&1; }

# ---- a device enrolled before any rollover ---------------------------------------
newkey k1.key
check "ir of SN-000001 before the rollover" ocmp -cmd ir $(dev_args SN-000001) \
    -trusted oproot.pem -newkey k1.key -subject /CN=SN-000001 -certout op1.pem
DEV="-cert op1.pem -key k1.key -extracerts opchain.pem -trusted oproot.pem"

# ---- caCerts -----------------------------------------------------------------------
check "genm caCerts (openssl cmp -infotype caCerts)" ocmp -cmd genm -infotype caCerts $DEV \
    -reqout genm.der -rspout genp17.der
inspect genp17.der --genpcertsout "$T/cacerts0.pem" >"$T/g17.txt"
g g17.txt "genp.0=1.3.6.1.5.5.7.4.17 value"
g g17.txt "genp.0.certs=2"
g g17.txt "protected=ok"

# ---- certReqTemplate ------------------------------------------------------------
check "genm certReqTemplate (openssl cmp -infotype certReqTemplate)" ocmp -cmd genm \
    -infotype certReqTemplate $DEV -rspout genp19.der
inspect genp19.der --genpvalueout "$T/tmpl.der" >"$T/g19.txt"
g g19.txt "genp.0=1.3.6.1.5.5.7.4.19 value"
asn1 tmpl.der >"$T/tmpl.txt"
grep -q "organizationName" "$T/tmpl.txt" && grep -q ":Operator" "$T/tmpl.txt" \
    && ok "template: subject O=Operator from the profile" || { nok "template subject O"; diag "$T/tmpl.txt"; }
grep -A1 "commonName" "$T/tmpl.txt" | grep -q "UTF8STRING *:$" \
    && ok "template: CN (from a variable) present with an empty value" || { nok "template CN"; diag "$T/tmpl.txt"; }
grep -q "X509v3 Extended Key Usage" "$T/tmpl.txt" && grep -q "X509v3 CRL Distribution Points" "$T/tmpl.txt" \
    && ok "template: the profile's extensions" || { nok "template extensions"; diag "$T/tmpl.txt"; }
grep -q ":1.3.6.1.5.5.7.5.1.11\|id-regCtrl-algId" "$T/tmpl.txt" && grep -q "prime256v1" "$T/tmpl.txt" \
    && ok "template: keySpec algId id-ecPublicKey P-256" || { nok "keySpec algId"; diag "$T/tmpl.txt"; }
grep -A1 "1.3.6.1.5.5.7.5.1.12\|id-regCtrl-rsaKeyLen" "$T/tmpl.txt" | grep -q "INTEGER *:0C00" \
    && ok "template: keySpec rsaKeyLen 3072" || { nok "keySpec rsaKeyLen"; diag "$T/tmpl.txt"; }
# genmx OID HEX OUT [cmpcraft options]: the saved genm with one ITAV of OID
# (DER value HEX, "" = absent), re-signed; prints the HTTP status
genmx() {
    local oid=$1 v=() out=$3; [ -n "$2" ] && v=(--genm-value "$2"); shift 3
    "$CRAFT" mutate --in "$T/genm.der" --key "$T/k1.key" --new-tid \
        --genm-oid "$oid" "${v[@]}" "$@" --out "$T/$out.der"
    post "$out.der" "$out"
}
utf8seq() {  # DER of SEQUENCE OF UTF8String for the arguments
    python3 - "$@" <<'EOF'
import sys
def tlv(t, b): return bytes([t, len(b)]) + b
print(tlv(0x30, b"".join(tlv(0x0c, a.encode()) for a in sys.argv[1:])).hex())
EOF
}
h=$(genmx 1.3.6.1.5.5.7.4.19 "" gp19o --general-info "1.3.6.1.5.5.7.4.21:$(utf8seq other)")
inspect gp19o --genpvalueout "$T/tmpl2.der" >"$T/g19o.txt"
is "certReqTemplate with certProfile other: genp" "$h/$(field gp19o genp.0)" "200/1.3.6.1.5.5.7.4.19 value"
asn1 tmpl2.der >"$T/tmpl2.txt"
grep -q ":Lab" "$T/tmpl2.txt" && grep -q "ED25519\|1.3.101.112" "$T/tmpl2.txt" \
    && ! grep -q "prime256v1" "$T/tmpl2.txt" \
    && ok "certProfile other: its subject (OU=Lab) and key type (Ed25519)" || { nok "profile other template"; diag "$T/tmpl2.txt"; }
h=$(genmx 1.3.6.1.5.5.7.4.19 "" gp19u --general-info "1.3.6.1.5.5.7.4.21:$(utf8seq nosuch)")
expect_error "certReqTemplate with an unknown certProfile" "$h" 200 gp19u badCertTemplate
h=$(genmx 1.3.6.1.5.5.7.4.19 "" gp19t --general-info "1.3.6.1.5.5.7.4.21:$(utf8seq device other)")
expect_error "certReqTemplate with two certProfile names" "$h" 200 gp19t badRequest

# ---- rootCaKeyUpdate before a rollover: absent ----------------------------------
# (OpenSSL 3.0 has no name for id-it-rootCaCert: cmpcraft sends it)
h=$(genmx 1.3.6.1.5.5.7.4.20 "" genp20a.der)
is "no rollover: rootCaKeyUpdate with absent value" "$h/$(field genp20a.der genp.0)" "200/1.3.6.1.5.5.7.4.18 absent"

# ---- crlStatusList ----------------------------------------------------------------
# crl_status HEXNAME|dpn:URI [TIME]: a CRLStatus list with one source
crl_status() {
    python3 - "$1" "${2:-}" <<'EOF'
import sys
def tlv(t, b):
    n = len(b)
    l = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 255])
    return bytes([t]) + l + b
s = sys.argv[1]
if s.startswith("dpn:"):
    src = tlv(0xa0, tlv(0xa0, tlv(0x86, s[4:].encode())))
else:
    src = tlv(0xa1, tlv(0x30, tlv(0xa4, bytes.fromhex(s))))
st = src + (tlv(0x17, sys.argv[2].encode()) if sys.argv[2] else b"")
print(tlv(0x30, tlv(0x30, st)).hex())
EOF
}
# subject DER of a certificate (hex)
subj_hex() {
    openssl x509 -in "$T/$1" -noout -subject -nameopt RFC2253 >/dev/null
    python3 - "$T/$1" <<'EOF'
import base64, sys
def parse(d, i):
    t = d[i]; n = d[i + 1]; i += 2
    if n & 0x80:
        k = n & 0x7f; n = int.from_bytes(d[i:i + k], "big"); i += k
    return t, i, i + n
der = base64.b64decode("".join(open(sys.argv[1]).read().split("-----")[2].split()))
_, c, _ = parse(der, 0); _, i, _ = parse(der, c)
t, s, e = parse(der, i)
if t == 0xa0: i = e
for _ in range(4): i = parse(der, i)[2]
print(der[i:parse(der, i)[2]].hex())
EOF
}
ISS=$(subj_hex issuing.pem)
h=$(genmx 1.3.6.1.5.5.7.4.22 "$(crl_status "$ISS")" gp22a)
inspect gp22a --crlout "$T/crl22.pem" >"$T/g22a.txt"
is "crlStatusList by issuer, no thisUpdate: crls" "$h/$(field gp22a genp.0)" "200/1.3.6.1.5.5.7.4.23 value"
g g22a.txt "genp.0.crls=1"
check "that CRL is the issuing CA's" openssl crl -in "$T/crl22.pem" -CAfile "$T/issuing.pem" -noout
# the CRL's thisUpdate as UTCTime
tu=$(openssl crl -in "$T/crl22.pem" -noout -lastupdate | sed 's/lastUpdate=//')
TU=$(date -u -d "$tu" +%y%m%d%H%M%SZ)
OLD=$(date -u -d "$tu - 1 hour" +%y%m%d%H%M%SZ)
h=$(genmx 1.3.6.1.5.5.7.4.22 "$(crl_status "$ISS" "$TU")" gp22b)
is "crlStatusList with the CRL's own thisUpdate: crls absent" "$h/$(field gp22b genp.0)" "200/1.3.6.1.5.5.7.4.23 absent"
h=$(genmx 1.3.6.1.5.5.7.4.22 "$(crl_status "$ISS" "$OLD")" gp22c)
is "crlStatusList with an older thisUpdate: crls" "$h/$(field gp22c genp.0)" "200/1.3.6.1.5.5.7.4.23 value"
h=$(genmx 1.3.6.1.5.5.7.4.22 "$(crl_status dpn:http://crl.example/issuing.crl)" gp22d)
is "crlStatusList by the profile's distribution point: crls" "$h/$(field gp22d genp.0)" "200/1.3.6.1.5.5.7.4.23 value"
h=$(genmx 1.3.6.1.5.5.7.4.22 "$(crl_status dpn:http://elsewhere.example/x.crl)" gp22e)
is "crlStatusList naming a CRL not ours: crls absent" "$h/$(field gp22e genp.0)" "200/1.3.6.1.5.5.7.4.23 absent"
h=$(genmx 1.2.3.4.5 "" gpunk)
inspect gpunk >"$T/gunk.txt"
is "unknown infoType: a genp without it" "$h/$(field gpunk body)/$(grep -c '^genp\.' "$T/gunk.txt")" "200/genp/0"

# ---- root CA key rollover ------------------------------------------------------------
a0=$(audit_count)
if cli ca rollover issuing --no-passphrase >"$T/ro0.out" 2>&1; then nok "rollover of an issuing CA refused"
else ok "rollover of an issuing CA refused (only roots)"; fi
is "nothing stored for the refused rollover" "$(sqlite3 "$DB" 'SELECT count(*) FROM ca_rollover')" 0
check "cmpca ca rollover root" cli ca rollover root --no-passphrase
is "one ca_rollover row" "$(sqlite3 "$DB" 'SELECT count(*) FROM ca_rollover')" 1
is "audit row ca.rollover" "$(sqlite3 "$DB" "SELECT action||' '||object FROM audit ORDER BY seq DESC LIMIT 1")" "ca.rollover root"
is "audit grew by one row" "$(audit_count)" $((a0 + 1))
is "link certificates recorded as issued by the root" \
    "$(sqlite3 "$DB" "SELECT count(*) FROM cert WHERE profile='rollover'")" 2
cli ca show root --pem >"$T/newroot.pem"
cmp -s "$T/newroot.pem" "$T/oproot.pem" && nok "root CA now holds the new root" || ok "root CA now holds the new root"
srv_stop main
srv_start main || { echo "Bail out! server did not restart after the rollover"; exit 1; }
is "server serves after the rollover and a restart" "$(health)" 200

# rootCaKeyUpdate: the three certificates
h=$(genmx 1.3.6.1.5.5.7.4.20 "" genp20b.der)
is "genm rootCaCert (no value) after the rollover: HTTP 200" "$h" 200
inspect genp20b.der --rootupdout "$T/ru" >"$T/g20b.txt"
g g20b.txt "genp.0=1.3.6.1.5.5.7.4.18 value"
g g20b.txt "genp.0.rootupdate=3"
g g20b.txt "protected=ok"
check "newWithNew is the root CA's new certificate" cmp -s "$T/ru-nwn.pem" "$T/newroot.pem"
check "newWithNew is self-signed (signature checked)" openssl verify -check_ss_sig -CAfile "$T/ru-nwn.pem" "$T/ru-nwn.pem"
check "newWithOld verifies with the old root key" openssl verify -CAfile "$T/oproot.pem" "$T/ru-nwo.pem"
check "oldWithNew verifies with the new root key" openssl verify -CAfile "$T/ru-nwn.pem" "$T/ru-own.pem"
if openssl verify -CAfile "$T/ru-nwn.pem" "$T/ru-nwo.pem" >/dev/null 2>&1; then
    nok "newWithOld must not verify with the new key"; else ok "newWithOld does not verify with the new key"; fi
if openssl verify -CAfile "$T/oproot.pem" "$T/ru-own.pem" >/dev/null 2>&1; then
    nok "oldWithNew must not verify with the old key"; else ok "oldWithNew does not verify with the old key"; fi
pk() { openssl x509 -in "$T/$1" -noout -pubkey; }
is "newWithOld carries the new key" "$(pk ru-nwo.pem)" "$(pk ru-nwn.pem)"
is "oldWithNew carries the old key" "$(pk ru-own.pem)" "$(pk oproot.pem)"
na() { openssl x509 -in "$T/$1" -noout -enddate; }
is "oldWithNew ends with the old root" "$(na ru-own.pem)" "$(na oproot.pem)"
h=$(genmx 1.3.6.1.5.5.7.4.20 "$(hexof oproot.pem)" gp20c)
inspect gp20c --rootupdout "$T/ruc" >"$T/g20c.txt"
is "rootCaCert = the old root: rootCaKeyUpdate" "$h/$(field gp20c genp.0)" "200/1.3.6.1.5.5.7.4.18 value"
g g20c.txt "genp.0.rootupdate=3"
h=$(genmx 1.3.6.1.5.5.7.4.20 "$(hexof newroot.pem)" gp20d)
is "rootCaCert = the new root: no update (absent)" "$h/$(field gp20d genp.0)" "200/1.3.6.1.5.5.7.4.18 absent"
h=$(genmx 1.3.6.1.5.5.7.4.20 "$(hexof issuing.pem)" gp20e)
is "rootCaCert = a certificate that is no root of ours: absent" "$h/$(field gp20e genp.0)" "200/1.3.6.1.5.5.7.4.18 absent"

# both roots over HTTP: /ca/root.crt the new root, /ca/root.p7c it and the links
h=$(curl -s --max-time 10 -o "$T/root.der" -w '%{http_code}' "http://127.0.0.1:$PORT/ca/root.crt")
openssl x509 -inform DER -in "$T/root.der" -out "$T/root-http.pem" 2>/dev/null
is "GET /ca/root.crt after the rollover: the new root" "$h/$(cmp -s "$T/root-http.pem" "$T/ru-nwn.pem" && echo same)" 200/same
h=$(curl -s --max-time 10 -D "$T/p7c.hdr" -o "$T/root.p7c" -w '%{http_code}' "http://127.0.0.1:$PORT/ca/root.p7c")
openssl pkcs7 -inform DER -in "$T/root.p7c" -print_certs -out "$T/p7c.pem" 2>"$T/p7c.err"
is "GET /ca/root.p7c: 200 with three certificates" "$h/$(grep -c 'BEGIN CERTIFICATE' "$T/p7c.pem")" 200/3
grep -qi "content-type: application/pkcs7-mime" "$T/p7c.hdr" && ok "p7c content type" || nok "p7c content type"
for f in ru-nwn.pem ru-nwo.pem ru-own.pem; do
    grep -q "$(sed -n 3p "$T/$f")" "$T/p7c.pem" && ok "p7c holds $f" || nok "p7c lacks $f"
done
h=$(curl -s --max-time 10 -o "$T/iss.p7c" -w '%{http_code}' "http://127.0.0.1:$PORT/ca/issuing.p7c")
openssl pkcs7 -inform DER -in "$T/iss.p7c" -print_certs -out "$T/iss-p7c.pem" 2>/dev/null
is "GET /ca/issuing.p7c: just the issuing CA" "$h/$(grep -c 'BEGIN CERTIFICATE' "$T/iss-p7c.pem")" 200/1
is "GET /ca/nosuch.p7c: 404" "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ca/nosuch.p7c")" 404

# caCerts now carry both roots and the links
check "genm caCerts after the rollover" ocmp -cmd genm -infotype caCerts $DEV -rspout genp17b.der
inspect genp17b.der --genpcertsout "$T/cacerts1.pem" >"$T/g17b.txt"
g g17b.txt "genp.0.certs=5"
for f in oproot.pem newroot.pem ru-nwo.pem ru-own.pem issuing.pem; do
    grep -q "$(sed -n 3p "$T/$f")" "$T/cacerts1.pem" && ok "caCerts holds $f" || nok "caCerts lacks $f"
done

# the root issues CRLs with the new key; crlStatusList per CRL source
ROOT=$(subj_hex oproot.pem)
h=$(genmx 1.3.6.1.5.5.7.4.22 "$(crl_status "$ROOT")" gp22r)
is "crlStatusList naming the root before it issued a CRL: absent" "$h/$(field gp22r genp.0)" "200/1.3.6.1.5.5.7.4.23 absent"
check "cmpca crl --ca root after the rollover" cli crl --ca root -o "$T/rootcrl.pem"
check "the root's new CRL verifies with the new root" openssl crl -in "$T/rootcrl.pem" -CAfile "$T/newroot.pem" -noout
h=$(genmx 1.3.6.1.5.5.7.4.22 "$(crl_status "$ROOT")" gp22s)
inspect gp22s --crlout "$T/crl22s.pem" >/dev/null
is "crlStatusList naming the root: its CRL" "$h/$(field gp22s genp.0)" "200/1.3.6.1.5.5.7.4.23 value"
check "the crls value is the root's CRL" cmp -s "$T/crl22s.pem" "$T/rootcrl.pem"

# ---- devices across the rollover ------------------------------------------------------
newkey k1b.key
check "kur of the device enrolled before the rollover" ocmp -cmd kur -cert op1.pem -key k1.key \
    -extracerts opchain.pem -trusted oproot.pem -newkey k1b.key -certout op1b.pem
is "SN-000001 still enrolled" "$(dev_state SN-000001)" enrolled
newkey k2.key
check "ir of SN-000002 after the rollover" ocmp -cmd ir $(dev_args SN-000002) \
    -trusted oproot.pem -newkey k2.key -subject /CN=SN-000002 -certout op2.pem
check "new certificate verifies under the old root" openssl verify -CAfile "$T/oproot.pem" \
    -untrusted "$T/issuing.pem" "$T/op2.pem"
cat "$T/issuing.pem" "$T/ru-own.pem" >"$T/linkchain.pem"
check "and under the new root through oldWithNew" openssl verify -CAfile "$T/ru-nwn.pem" \
    -untrusted "$T/linkchain.pem" "$T/op2.pem"
check "genm with the renewed certificate" ocmp -cmd genm -infotype caCerts -cert op1b.pem \
    -key k1b.key -extracerts opchain.pem -trusted oproot.pem
# ---- the CLI: an encrypted root, refusals -------------------------------------------
export GENM_OLD_PASS=old-root-pass GENM_NEW_PASS=new-root-pass
check "create an encrypted root" cli ca create --name root2 --subject "/O=Operator/CN=Root 2" \
    --pass env:GENM_OLD_PASS --key-out "$T/root2.key"
n0=$(sqlite3 "$DB" 'SELECT count(*) FROM ca_rollover')
if cli ca rollover root2 --pass env:GENM_NEW_PASS --key-out "$T/root2-new.key" \
    --ca-pass env:GENM_NOPE >"$T/r2.out" 2>&1; then nok "rollover without the old key's passphrase refused"
else ok "rollover without the old key's passphrase refused"; fi
[ ! -e "$T/root2-new.key" ] && ok "no new key file left behind" || nok "new key file left behind"
if cli ca rollover nosuch --no-passphrase >"$T/r3.out" 2>&1; then nok "rollover of an unknown CA refused"
else ok "rollover of an unknown CA refused"; fi
is "nothing stored for the refused rollovers" "$(sqlite3 "$DB" 'SELECT count(*) FROM ca_rollover')" "$n0"
check "rollover of the encrypted root (--pass, --ca-pass)" cli ca rollover root2 \
    --pass env:GENM_NEW_PASS --key-out "$T/root2-new.key" --ca-pass env:GENM_OLD_PASS
grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$T/root2-new.key" && ok "the new root key is encrypted" || nok "new key not encrypted"
is "the new key file is mode 600" "$(stat -c %a "$T/root2-new.key")" 600
check "the new key opens with the new passphrase" openssl pkey -in "$T/root2-new.key" \
    -passin env:GENM_NEW_PASS -noout
is "root2 refers to the new key" "$(sqlite3 "$DB" "SELECT key_ref FROM ca WHERE name='root2'")" "$T/root2-new.key"
check "root2 signs with the new key" cli crl --ca root2 --ca-pass env:GENM_NEW_PASS -o "$T/root2.crl"
cli ca show root2 --pem >"$T/root2.pem"
check "its CRL verifies with its new certificate" openssl crl -in "$T/root2.crl" -CAfile "$T/root2.pem" -noout
is "server still serves" "$(health)" 200
e2e_done
