#!/bin/bash
# End-to-end revocation services of `cmpca serve`: the OCSP responder with
# the stock `openssl ocsp` client (good, revoked, unknown, with and without
# nonce, CA-signed and delegated signer, the RFC 5019 GET form with curl),
# pre-produced responses from the cache (revoked by the CLI while cached:
# revoked at once; GET caching headers; cache metrics),
# malformed/truncated/oversized requests, CRL and CA certificate over HTTP
# (`openssl verify -crl_check`), and device decommissioning.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 9
cat >>"$T/cmpca.conf" <<EOF
[ocsp]
next_update = 1h
max_age = 60s
max_requests = 2
EOF
srv_start main || { echo "Bail out! server did not start"; exit 1; }
LOG=$T/main.log
URL=http://127.0.0.1:$PORT
openssl x509 -in "$T/oproot.pem" -out "$T/root.pem"

# enroll N: ir+certConf of SN-00000N, operator certificate opN.pem
enroll() {
    newkey "k$1.key"
    ocmp -cmd ir $(dev_args "SN-00000$1") -trusted oproot.pem -newkey "k$1.key" \
        -subject "/CN=SN-00000$1" -certout "op$1.pem" >"$T/enroll$1.out" 2>&1
}
# ocsp OUT ARGS...: openssl ocsp against the responder, output to OUT
ocsp() {
    local out=$1; shift
    (cd "$T" && timeout 30 openssl ocsp -url "$URL/ocsp" -issuer issuing.pem \
        -CAfile root.pem -verify_other issuing.pem "$@") >"$T/$out" 2>&1
}
# has DESC FILE REGEX
has() { if grep -Eq -- "$3" "$T/$2"; then ok "$1"; else nok "$1"; diag "$T/$2"; fi; }
hasnt() { if grep -Eq -- "$3" "$T/$2"; then nok "$1"; diag "$T/$2"; else ok "$1"; fi; }
# hexbody FILE: the file as hex
hexbody() { od -An -tx1 "$T/$1" | tr -d ' \n'; }

check "SN-000001 enrolled" enroll 1
check "SN-000002 enrolled" enroll 2

# ---- good, nonce, no nonce ------------------------------------------------
ocsp o1.txt -cert op1.pem -resp_text
has "openssl ocsp: fresh certificate is good" o1.txt "op1.pem: good"
has "openssl ocsp: response verifies (CA-signed)" o1.txt "Response verify OK"
has "nonce echoed" o1.txt "OCSP Nonce"
hasnt "no nonce warning" o1.txt "WARNING"
has "nextUpdate present" o1.txt "Next Update:"
has "responder id by key" o1.txt "Responder Id: [0-9A-F]{40}"
ocsp o2.txt -cert op1.pem -no_nonce -resp_text
has "without nonce: good" o2.txt "op1.pem: good"
hasnt "without nonce: no nonce in the response" o2.txt "OCSP Nonce"

# ---- revoked, unknown -----------------------------------------------------
s1=$(serial_of op1.pem)
check "cmpca cert revoke (keyCompromise)" cli cert revoke --ca issuing --serial "$s1" --reason keyCompromise
ocsp o3.txt -cert op1.pem
has "after revoke: revoked at once" o3.txt "op1.pem: revoked"
has "revocation reason" o3.txt "Reason: keyCompromise"
has "revocation time" o3.txt "Revocation Time:"
ocsp o4.txt -serial 0x1234567890abcdef
has "foreign serial: unknown" o4.txt ": unknown"
ocsp o5.txt -cert op1.pem -cert op2.pem
has "two CertIDs: first revoked" o5.txt "op1.pem: revoked"
has "two CertIDs: second good" o5.txt "op2.pem: good"

# ---- GET form (RFC 5019) with curl ------------------------------------------
(cd "$T" && openssl ocsp -issuer issuing.pem -cert op2.pem -no_nonce -reqout req2.der) >/dev/null 2>&1
b64=$(base64 -w0 "$T/req2.der" | python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
h=$(curl -s --max-time 10 -D "$T/get.hdr" -o "$T/get.der" -w '%{http_code}' "$URL/ocsp/$b64")
is "GET /ocsp/<base64>: 200" "$h" 200
has "GET: Content-Type application/ocsp-response" get.hdr "Content-Type: application/ocsp-response"
has "GET: Cache-Control max-age from the configuration" get.hdr "Cache-Control: max-age=60"
(cd "$T" && openssl ocsp -respin get.der -issuer issuing.pem -CAfile root.pem \
    -verify_other issuing.pem -cert op2.pem) >"$T/get.txt" 2>&1
has "GET: good and verified" get.txt "op2.pem: good"
h=$(curl -s --max-time 10 -o "$T/post.der" -w '%{http_code}' -H "Content-Type: application/ocsp-request" \
    --data-binary @"$T/req2.der" "$URL/ocsp")
is "POST with curl: 200" "$h" 200

# ---- pre-produced responses (cache), revocation by another process ---------
check "SN-000009 enrolled" enroll 9
(cd "$T" && openssl ocsp -issuer issuing.pem -cert op9.pem -no_nonce -reqout req9.der) >/dev/null 2>&1
# respin FILE OUT: openssl's verdict on the response FILE for op9.pem
respin() {
    (cd "$T" && openssl ocsp -respin "$1" -issuer issuing.pem -CAfile root.pem \
        -verify_other issuing.pem -cert op9.pem -no_nonce) >"$T/$2" 2>&1
}
h=$(post req9.der c1.rsp application/ocsp-request /ocsp)
h2=$(post req9.der c2.rsp application/ocsp-request /ocsp)
is "no nonce: two answers" "$h/$h2" 200/200
is "no nonce: the same pre-produced response twice" "$(hexbody c2.rsp)" "$(hexbody c1.rsp)"
respin c2.rsp c2.txt
has "cached response: good and verified" c2.txt "op9.pem: good"
ocsp n1.txt -cert op9.pem
has "with nonce: good, nonce echoed (never from the cache)" n1.txt "op9.pem: good"
hasnt "with nonce: no nonce warning" n1.txt "WARNING"
curl -s --max-time 10 "$URL/metrics" >"$T/cmetrics.txt"
has "metrics: cache hit counted" cmetrics.txt 'cmpca_ocsp_cache_total\{result="(hit|revalidated)"\} [1-9]'
has "metrics: cache miss counted" cmetrics.txt 'cmpca_ocsp_cache_total\{result="miss"\} [1-9]'
has "metrics: nonce bypass counted" cmetrics.txt 'cmpca_ocsp_cache_total\{result="bypass"\} [1-9]'
has "metrics: cache entries" cmetrics.txt 'cmpca_ocsp_cache_entries [1-9]'
# GET: RFC 5019 6.2 headers; a second GET gives the same ETag, and 304
(cd "$T" && openssl ocsp -issuer issuing.pem -cert op9.pem -no_nonce -reqout req9g.der) >/dev/null 2>&1
b64=$(base64 -w0 "$T/req9g.der" | python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
curl -s --max-time 10 -D "$T/g9.hdr" -o "$T/g9.der" "$URL/ocsp/$b64"
has "GET: Last-Modified (thisUpdate)" g9.hdr "Last-Modified: "
has "GET: Expires (nextUpdate)" g9.hdr "Expires: "
has "GET: ETag" g9.hdr 'ETag: "[0-9a-f]{32}"'
has "GET: max-age" g9.hdr "Cache-Control: max-age=(60|59|58), public"
etag=$(sed -n 's/^ETag: //Ip' "$T/g9.hdr" | tr -d '\r')
curl -s --max-time 10 -D "$T/g9b.hdr" -o /dev/null "$URL/ocsp/$b64"
is "GET again: the same ETag" "$(sed -n 's/^ETag: //Ip' "$T/g9b.hdr" | tr -d '\r')" "$etag"
h=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/ocsp/$b64")
is "GET with If-None-Match: 304" "$h" 304
# revoked by the CLI (another process on the database) while cached
s9=$(serial_of op9.pem)
check "cmpca cert revoke while a good response is cached" cli cert revoke --ca issuing --serial "$s9" --reason keyCompromise
h=$(post req9.der c3.rsp application/ocsp-request /ocsp)
respin c3.rsp c3.txt
has "same request after revoke by another process: revoked at once" c3.txt "op9.pem: revoked"
hasnt "not the cached good response" c3.txt "op9.pem: good"
h=$(post req9.der c4.rsp application/ocsp-request /ocsp)
is "revoked response cached in turn" "$(hexbody c4.rsp)" "$(hexbody c3.rsp)"
curl -s --max-time 10 -D "$T/g9c.hdr" -o "$T/g9c.der" "$URL/ocsp/$b64"
(cd "$T" && openssl ocsp -respin g9c.der -issuer issuing.pem -CAfile root.pem \
    -verify_other issuing.pem -cert op9.pem -no_nonce) >"$T/g9c.txt" 2>&1
has "GET after revoke: revoked" g9c.txt "op9.pem: revoked"
hasnt "GET after revoke: a new ETag" g9c.hdr "ETag: $etag"
curl -s --max-time 10 "$URL/metrics" >"$T/cmetrics2.txt"
has "metrics: cache still serving" cmetrics2.txt 'cmpca_ocsp_cache_total\{result="(hit|revalidated)"\} [1-9]'

# ---- malformed, truncated, oversized, wrong type ----------------------------
printf 'this is not DER' >"$T/junk.bin"
h=$(post junk.bin junk.rsp application/ocsp-request /ocsp)
is "garbage: HTTP 200" "$h" 200
is "garbage: malformedRequest" "$(hexbody junk.rsp)" 30030a0101
head -c 40 "$T/req2.der" >"$T/trunc.der"
h=$(post trunc.der trunc.rsp application/ocsp-request /ocsp)
is "truncated: malformedRequest" "$h/$(hexbody trunc.rsp)" 200/30030a0101
: >"$T/empty.der"
h=$(post empty.der empty.rsp application/ocsp-request /ocsp)
is "empty body: malformedRequest" "$h/$(hexbody empty.rsp)" 200/30030a0101
head -c 8000 /dev/zero >"$T/big.der"
h=$(post big.der big.rsp application/ocsp-request /ocsp)
is "over max_request: malformedRequest" "$h/$(hexbody big.rsp)" 200/30030a0101
head -c 200000 /dev/zero >"$T/huge.der"
h=$(post huge.der huge.rsp application/ocsp-request /ocsp)
is "over the HTTP body limit: 413 + malformedRequest" "$h/$(hexbody huge.rsp)" 413/30030a0101
h=$(post req2.der ct.rsp text/plain /ocsp)
is "wrong Content-Type: 415 + malformedRequest" "$h/$(hexbody ct.rsp)" 415/30030a0101
h=$(curl -s --max-time 10 -o "$T/g.rsp" -w '%{http_code}' "$URL/ocsp/!!!notbase64")
is "GET with bad base64: malformedRequest" "$h/$(hexbody g.rsp)" 200/30030a0101
h=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X PUT "$URL/ocsp")
is "PUT /ocsp: 405" "$h" 405
is "server still healthy" "$(health)" 200
ocsp o6.txt -cert op2.pem
has "still answering after bad requests" o6.txt "op2.pem: good"

# ---- CRL and CA certificate over HTTP ---------------------------------------
h=$(curl -s --max-time 10 -D "$T/crl.hdr" -o "$T/crl.der" -w '%{http_code}' "$URL/crl/issuing.crl")
is "GET /crl/issuing.crl: 200" "$h" 200
has "CRL: Content-Type application/pkix-crl" crl.hdr "Content-Type: application/pkix-crl"
has "CRL: ETag" crl.hdr "ETag: \"crl-"
has "CRL: Last-Modified" crl.hdr "Last-Modified: "
etag=$(sed -n 's/^ETag: *//Ip' "$T/crl.hdr" | tr -d '\r')
lm=$(sed -n 's/^Last-Modified: *//Ip' "$T/crl.hdr" | tr -d '\r')
h=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/crl/issuing.crl")
is "CRL: If-None-Match -> 304" "$h" 304
h=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lm" "$URL/crl/issuing.crl")
is "CRL: If-Modified-Since -> 304" "$h" 304
openssl crl -inform DER -in "$T/crl.der" -out "$T/crl.pem" 2>/dev/null
openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" \
    -CRLfile "$T/crl.pem" "$T/op1.pem" >"$T/v1.txt" 2>&1
has "openssl verify -crl_check: revoked device" v1.txt "certificate revoked"
check "openssl verify -crl_check: the other device is fine" openssl verify -crl_check \
    -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" -CRLfile "$T/crl.pem" "$T/op2.pem"
h=$(curl -s --max-time 10 -D "$T/ca.hdr" -o "$T/ca.der" -w '%{http_code}' "$URL/ca/issuing.crt")
is "GET /ca/issuing.crt: 200" "$h" 200
has "CA: Content-Type application/pkix-cert" ca.hdr "Content-Type: application/pkix-cert"
openssl x509 -in "$T/issuing.pem" -outform DER -out "$T/issuing.der"
check "CA certificate is the issuing CA's" cmp "$T/ca.der" "$T/issuing.der"
n3=$(curl -s --max-time 10 -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}' \
    "$URL/ca/issuing.crt" "$URL/ca/issuing.crt" "$URL/ca/issuing.crt")
is "max_requests = 2: three answers take two connections" "$n3" 101
h=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$URL/ca/nosuch.crt")
is "unknown CA: 404" "$h" 404
h=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$URL/crl/../x.crl")
is "bad CA name: 404" "$h" 404

# ---- metrics ---------------------------------------------------------------
curl -s --max-time 10 "$URL/metrics" >"$T/metrics.txt"
has "metrics: good responses counted" metrics.txt 'cmpca_ocsp_responses_total\{outcome="good"\} [1-9]'
has "metrics: malformed counted" metrics.txt 'cmpca_ocsp_responses_total\{outcome="malformed"\} [1-9]'
has "metrics: CRL downloads" metrics.txt 'cmpca_crl_downloads_total [1-9]'

# ---- delegated OCSP signer ---------------------------------------------------
cli ca ocsp-signer --ca issuing --no-passphrase >"$T/signer.txt" 2>&1
has "cmpca ca ocsp-signer" signer.txt "OCSP signer of CA issuing"
scert=$(sed -n 's/^  ocsp_signer_cert = //p' "$T/signer.txt")
skey=$(sed -n 's/^  ocsp_signer_key = //p' "$T/signer.txt")
openssl x509 -in "$scert" -noout -text >"$T/signer.pem.txt" 2>&1
has "signer: id-kp-OCSPSigning" signer.pem.txt "OCSP Signing"
has "signer: id-pkix-ocsp-nocheck" signer.pem.txt "OCSP No Check"
has "signer: SHA-256 signature" signer.pem.txt "ecdsa-with-SHA256"
key_mode=$(stat -c %a "$skey")
is "signer key file mode 0600" "$key_mode" 600
srv_stop main
printf '[ca issuing]\nocsp_signer_cert = %s\nocsp_signer_key = %s\n' "$scert" "$skey" >>"$T/cmpca.conf"
srv_start main || { echo "Bail out! server did not restart"; exit 1; }
URL=http://127.0.0.1:$PORT
ocsp o7.txt -cert op2.pem -resp_text
has "delegated signer: good" o7.txt "op2.pem: good"
has "delegated signer: response verifies" o7.txt "Response verify OK"
has "delegated signer: its certificate travels with the response" o7.txt "Subject: CN ?= ?issuing OCSP signer"
ocsp o8.txt -cert op1.pem
has "delegated signer: revoked" o8.txt "op1.pem: revoked"
grep -q "answering for CA issuing (signed by a delegated OCSP signer)" "$LOG" && ok "log names the delegated signer" || nok "log names the delegated signer"
grep -v '^ocsp_signer_key' "$T/cmpca.conf" >"$T/bad2.conf"
(cd "$T" && timeout 20 "$CMPCA" -c "$T/bad2.conf" serve --port-file "$T/bad.port") >"$T/bad.txt" 2>&1
has "ocsp_signer_cert without ocsp_signer_key: file:line error" bad.txt "bad2.conf:[0-9]+: ocsp_signer_cert and ocsp_signer_key go together"

# ---- device decommissioning -------------------------------------------------
check "SN-000003 enrolled" enroll 3
ocsp o9.txt -cert op3.pem
has "SN-000003: good before" o9.txt "op3.pem: good"
a0=$(audit_count)
cli device disable --vendor acme SN-000003 --reason superseded >"$T/dis.txt" 2>&1
has "device disable revokes its certificate" dis.txt "1 operator certificate revoked \(superseded\); new CRL issued"
is "SN-000003 disabled" "$(dev_state SN-000003)" disabled
is "audit: one revocation row and one device row" "$(audit_count)" $((a0 + 2))
cli audit list --limit 2 --json >"$T/aud.json"
has "audit: cert.revoke" aud.json '"action": "cert.revoke"'
has "audit: device.disable with the count" aud.json '"certs_revoked": 1'
ocsp o10.txt -cert op3.pem
has "disabled device: OCSP revoked" o10.txt "op3.pem: revoked"
has "disabled device: reason superseded" o10.txt "Reason: superseded"
curl -s --max-time 10 -o "$T/crl2.der" "$URL/crl/issuing.crl"
openssl crl -inform DER -in "$T/crl2.der" -out "$T/crl2.pem" 2>/dev/null
openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/issuing.pem" \
    -CRLfile "$T/crl2.pem" "$T/op3.pem" >"$T/v3.txt" 2>&1
has "disabled device: the served CRL lists it" v3.txt "certificate revoked"
newkey k3b.key
ocmp -cmd ir $(dev_args SN-000003) -trusted oproot.pem -newkey k3b.key \
    -subject /CN=SN-000003 -certout op3b.pem >"$T/ir3b.out" 2>&1
has "disabled device: a new ir is refused" ir3b.out "notAuthorized|rejection"
cli device show --vendor acme SN-000003 --json >"$T/show3.json"
has "device show lists its certificates" show3.json '"status": "revoked"'
has "device show names the vendor certificate field" show3.json '"vendor_cert"'
cli device show --vendor acme SN-000003 >"$T/show3.txt"
has "device show (text): issued against" show3.txt "issued against vendor certificate"
check "SN-000004 enrolled" enroll 4
cli device remove --vendor acme SN-000004 >"$T/rm4.txt" 2>&1
has "device remove revokes" rm4.txt "1 operator certificate revoked \(cessationOfOperation\)"
ocsp o11.txt -cert op4.pem
has "removed device: OCSP revoked" o11.txt "op4.pem: revoked"

# ---- vendor disable --revoke-all -------------------------------------------
check "SN-000005 enrolled" enroll 5
cli vendor disable acme --revoke-all --reason keyCompromise >"$T/vdis.txt" 2>&1
has "vendor disable --revoke-all" vdis.txt "operator certificates? revoked \(keyCompromise\)"
ocsp o12.txt -cert op5.pem -cert op2.pem
has "vendor revoke-all: SN-000005 revoked" o12.txt "op5.pem: revoked"
has "vendor revoke-all: SN-000002 revoked" o12.txt "op2.pem: revoked"
cli vendor show acme >"$T/vshow.txt"
has "vendor show: disabled" vshow.txt "disabled"
kill -HUP "$PID_main"; sleep 1
newkey k7x.key
ocmp -cmd ir $(dev_args SN-000007) -trusted oproot.pem -newkey k7x.key -subject /CN=SN-000007 \
    -certout op7x.pem -rspout ir7x.rsp >"$T/ir7x.out" 2>&1
expect_error "ir through a disabled vendor (after SIGHUP)" 200 200 ir7x.rsp signerNotTrusted
check "vendor enable" cli vendor enable acme
kill -HUP "$PID_main"; sleep 1

# ---- expiry in view ------------------------------------------------------------
check "SN-000006 enrolled" enroll 6
cli cert list --expiring-within 400d --json >"$T/exp.json"
has "cert list --expiring-within 400d: the valid one" exp.json "SN-000006"
hasnt "cert list --expiring-within: no revoked one" exp.json "SN-000003"
has "cert list --expiring-within --json: days_left" exp.json '"days_left": 36[45]'
cli cert list --expiring-within 30d --json >"$T/exp30.json"
hasnt "cert list --expiring-within 30d: a 365-day certificate is not listed" exp30.json "SN-000006"
srv_stop main
srv_start main || { echo "Bail out! server did not restart"; exit 1; }
URL=http://127.0.0.1:$PORT
curl -s --max-time 10 "$URL/metrics" >"$T/metrics2.txt"
has "expiry gauge: within 365 days" metrics2.txt 'cmpca_certificates_valid_expiring\{within_days="365"\} [1-9]'
has "expiry gauge: within 30 days" metrics2.txt 'cmpca_certificates_valid_expiring\{within_days="30"\} 0'
has "expiry gauge: expired" metrics2.txt 'cmpca_certificates_valid_expired 0'

# ---- vendor CRLs: the CLI ----------------------------------------------------
mkdir -p "$T/vca"
: >"$T/vca/index.txt"
echo 01 >"$T/vca/crlnumber"
cat >"$T/vca/ca.cnf" <<EOF2
[ca]
default_ca = d
[d]
database = $T/vca/index.txt
crlnumber = $T/vca/crlnumber
default_md = sha256
default_crl_days = 1
EOF2
(cd "$T" && openssl ca -config vca/ca.cnf -keyfile vendor/vendor-ca.key -cert vendor/vendor-ca.pem \
    -revoke devs/SN-000006/cert.pem -batch && openssl ca -config vca/ca.cnf -keyfile vendor/vendor-ca.key \
    -cert vendor/vendor-ca.pem -gencrl -out vca/v.crl -batch) >"$T/vca.log" 2>&1
check "cmpca vendor crl import" cli vendor crl import --vendor acme "$T/vca/v.crl"
cli vendor crl list --vendor acme --json >"$T/vcl.json"
has "vendor crl list shows it" vcl.json '"source": "import:'
(cd "$T" && openssl ca -config vca/ca.cnf -keyfile root.key -cert root.pem -gencrl -out vca/bad.crl -batch) >>"$T/vca.log" 2>&1
cli vendor crl import --vendor acme "$T/vca/bad.crl" >"$T/vbad.txt" 2>&1 && nok "a CRL of another CA is refused" || ok "a CRL of another CA is refused"
has "refusal says why" vbad.txt "not signed by a CA certificate of vendor acme"
cp "$T/cmpca.conf" "$T/vbad.conf"
printf '[vendor acme]\ncrl = maybe\n' >>"$T/vbad.conf"
(cd "$T" && timeout 20 "$CMPCA" -c "$T/vbad.conf" serve --port-file "$T/vbad.port") >"$T/vbadserve.txt" 2>&1
has "[vendor] crl policy checked at load with file:line" vbadserve.txt "vbad.conf:[0-9]+: crl must be off, soft or hard"
curl -s --max-time 10 "$URL/metrics" >"$T/metrics3.txt"
has "metrics: vendor CRL checks" metrics3.txt 'cmpca_vendor_crl_checks_total\{result="revoked"\} 0'

# ---- vendor CRLs at ir time --------------------------------------------------
# vcrl_serve POLICY: the server again, with [vendor acme] crl = POLICY
vcrl_serve() {
    srv_stop main
    sed -i '/^\[vendor acme\]$/,$d' "$T/cmpca.conf"
    printf '[vendor acme]\ncrl = %s\ncrl_fetch = no\n' "$1" >>"$T/cmpca.conf"
    srv_start main || { echo "Bail out! server did not restart"; exit 1; }
    URL=http://127.0.0.1:$PORT
}
# vir SN: an ir of device SN (response in irSN.rsp)
vir() {
    newkey "kv$1.key"
    ocmp -cmd ir $(dev_args "$1") -trusted oproot.pem -newkey "kv$1.key" -subject "/CN=$1" \
        -certout "opv$1.pem" -rspout "ir$1.rsp" >"$T/ir$1.out" 2>&1
}
vcrl_serve hard
vir SN-000006
expect_error "ir with a vendor certificate on the vendor's CRL" 200 200 irSN-000006.rsp signerNotTrusted
check "ir of a device whose vendor certificate is not on the CRL" vir SN-000007
srv_stop main
sqlite3 "$T/cmpca.db" "DELETE FROM vendor_crl" && chown -R --reference="$T" "$T" 2>/dev/null
vcrl_serve hard
vir SN-000008
expect_error "no current vendor CRL, hard-fail: refused" 200 200 irSN-000008.rsp signerNotTrusted
vcrl_serve soft
check "no current vendor CRL, soft-fail: accepted" vir SN-000008
curl -s --max-time 10 "$URL/metrics" >"$T/metrics4.txt"
has "soft-fail is counted" metrics4.txt 'cmpca_vendor_crl_checks_total\{result="unchecked"\} [1-9]'

e2e_done
