#!/bin/bash
# Negative end-to-end tests of `cmpca serve`: every refusal must come back
# as a signed error PKIMessage (verified against the operator root) with the
# right failInfo and HTTP status, change nothing in the store, and leave the
# server serving. Requests the openssl CLI cannot make come from cmpcraft.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 14
sed -i '/^\[server\]/a idle_timeout = 3s' "$T/cmpca.conf"
srv_start main || { echo "Bail out! server did not start"; exit 1; }

# A baseline enrollment whose saved ir is the template for crafted requests.
newkey k1.key
check "baseline ir+certConf (SN-000001)" ocmp -cmd ir $(dev_args SN-000001) \
    -trusted oproot.pem -newkey k1.key -subject /CN=SN-000001 -certout op1.pem \
    -reqout ir1.der,cc1.der -rspout ip1.der,pc1.der

# craft OUT SN [cmpcraft options]: the template ir re-targeted to device SN
# (its vendor certificate and key), fresh transactionID and nonce.
craft() {
    local out=$1 sn=$2; shift 2
    "$CRAFT" mutate --in "$T/ir1.der" --signer "$T/devs/$sn/cert.pem" \
        --chain "$T/devs/$sn/chain.pem" --key "$T/devs/$sn/key.pem" --new-tid \
        --out "$T/$out" "$@"
}

# neg DESC FILE HTTP FAILINFO [SN]: POST FILE and assert the refusal, that
# nothing was issued, SN's state is unchanged and /health still answers.
neg() {
    local d=$1 f=$2 want=$3 fi=$4 sn=${5:-} c0 s0 h
    c0=$(cert_count)
    [ -n "$sn" ] && s0=$(dev_state "$sn")
    h=$(post "$f" "$f.rsp")
    expect_error "$d" "$h" "$want" "$f.rsp" "$fi"
    is "$d: nothing issued" "$(cert_count)" "$c0"
    [ -n "$sn" ] && is "$d: $sn still $s0" "$(dev_state "$sn")" "$s0"
    is "$d: server still serves" "$(health)" 200
}
# negr DESC FILE BODY FAILINFO [SN]: as neg, for a refusal of the request's
# content (the response of its type with status rejection).
negr() {
    local d=$1 f=$2 body=$3 fi=$4 sn=${5:-} c0 s0 h
    c0=$(cert_count)
    [ -n "$sn" ] && s0=$(dev_state "$sn")
    h=$(post "$f" "$f.rsp")
    expect_rejection "$d" "$h" "$f.rsp" "$body" "$fi"
    is "$d: nothing issued" "$(cert_count)" "$c0"
    [ -n "$sn" ] && is "$d: $sn still $s0" "$(dev_state "$sn")" "$s0"
    is "$d: server still serves" "$(health)" 200
}

# ---- control: a crafted request is otherwise valid -------------------------------
craft ctl.der SN-000014
h=$(post ctl.der ctl.rsp)
is "control: crafted ir for SN-000014 is accepted (HTTP)" "$h" 200
is "control: crafted ir answered with ip" "$(field ctl.rsp body)" ip

# ---- who is asking --------------------------------------------------------------
cli factory issue --dir vendor --out unreg --count 1 --prefix UN- --quiet >/dev/null 2>&1
"$CRAFT" mutate --in "$T/ir1.der" --signer "$T/unreg/UN-000001/cert.pem" \
    --chain "$T/unreg/UN-000001/chain.pem" --key "$T/unreg/UN-000001/key.pem" \
    --new-tid --out "$T/unreg.der"
neg "unregistered device" unreg.der 200 notAuthorized
newkey kx.key
ocmp -cmd ir -cert unreg/UN-000001/cert.pem -key unreg/UN-000001/key.pem \
    -extracerts unreg/UN-000001/chain.pem -trusted oproot.pem -newkey kx.key \
    -subject /CN=UN-000001 -certout x.pem >"$T/o.out" 2>&1
rc=$?
[ $rc != 0 ] && grep -q "notAuthorized" "$T/o.out" && ok "openssl cmp reports notAuthorized (signed error accepted)" \
    || { nok "openssl cmp on unregistered device (rc $rc)"; diag "$T/o.out"; }

craft enrolled.der SN-000001
neg "device already enrolled" enrolled.der 200 notAuthorized SN-000001

cli factory ca create --dir evil --name Acme >/dev/null 2>&1
cli factory issue --dir evil --out evildevs --count 2 --prefix SN- --quiet >/dev/null 2>&1
"$CRAFT" mutate --in "$T/ir1.der" --signer "$T/evildevs/SN-000002/cert.pem" \
    --chain "$T/evildevs/SN-000002/chain.pem" --key "$T/evildevs/SN-000002/key.pem" \
    --new-tid --out "$T/evil.der"
neg "vendor cert from an untrusted CA" evil.der 200 signerNotTrusted SN-000002

# expired vendor certificate for a registered device (issued "in the past")
newkey exp.key
openssl req -new -key "$T/exp.key" -subj "/O=Acme/CN=SN-000003/serialNumber=SN-000003" \
    -out "$T/exp.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$T/exp.ext"
if command -v faketime >/dev/null; then   # Debian package faketime
    faketime '2020-01-01 00:00:00' openssl x509 -req -in "$T/exp.csr" -CA "$T/vendor/vendor-ca.pem" \
        -CAkey "$T/vendor/vendor-ca.key" -set_serial 777 -days 30 -extfile "$T/exp.ext" \
        -out "$T/exp.pem" 2>"$T/faketime.err"
else                                      # notAfter = yesterday
    openssl x509 -req -in "$T/exp.csr" -CA "$T/vendor/vendor-ca.pem" \
        -CAkey "$T/vendor/vendor-ca.key" -set_serial 777 -days -1 -extfile "$T/exp.ext" \
        -out "$T/exp.pem" 2>"$T/faketime.err"
fi
if openssl x509 -in "$T/exp.pem" -noout -checkend 0 >/dev/null 2>&1; then
    nok "could not make an expired vendor certificate"; diag "$T/faketime.err"
else
    "$CRAFT" mutate --in "$T/ir1.der" --signer "$T/exp.pem" --chain "$T/vendor/vendor-chain.pem" \
        --key "$T/exp.key" --new-tid --out "$T/expired.der"
    neg "expired vendor certificate" expired.der 200 signerNotTrusted SN-000003
fi

# ---- protection -----------------------------------------------------------------
craft tamper.der SN-000004
python3 - "$T/tamper.der" <<'EOF'
import sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
i = d.rfind(b'SN-000001')   # the certTemplate subject inside the signed body
d[i + 8] ^= 0x01
open(p, 'wb').write(d)
EOF
neg "tampered body byte" tamper.der 200 badMessageCheck SN-000004
craft tamperh.der SN-000004
nonce=$(inspect tamperh.der 2>/dev/null | sed -n 's/^senderNonce=//p')
python3 - "$T/tamperh.der" "$nonce" <<'EOF'
import sys
p, n = sys.argv[1], bytes.fromhex(sys.argv[2])
d = bytearray(open(p, 'rb').read())
i = d.find(n)
d[i] ^= 0x01
open(p, 'wb').write(d)
EOF
neg "tampered header byte (senderNonce)" tamperh.der 200 badMessageCheck SN-000004
craft unprot.der SN-000004 --unprotect
neg "unprotected ir" unprot.der 200 badMessageCheck SN-000004
craft kid.der SN-000004 --kid-random
neg "senderKID of no extraCert" kid.der 200 badMessageCheck SN-000004
craft sender.der SN-000004 --sender-from "$T/devs/SN-000011/cert.pem"
neg "sender is not the protecting certificate's subject" sender.der 200 badMessageCheck SN-000004
craft sender2.der SN-000004 --sender-from "$T/devs/SN-000011/cert.pem"
neg "sender is not the protecting certificate's subject (SN-000011 unchanged)" sender2.der 200 badMessageCheck SN-000011
craft sha1.der SN-000004 --md SHA1
neg "SHA-1 signature" sha1.der 200 badAlg SN-000004
craft mac.der SN-000004 --mac secret
neg "MAC-protected ir (cmpcraft)" mac.der 200 wrongIntegrity SN-000004
newkey km.key
ocmp -cmd ir -secret pass:secret -ref SN-000004 -trusted oproot.pem -newkey km.key \
    -subject /CN=SN-000004 -certout x.pem -reqout macir.der >"$T/o.out" 2>&1
[ -s "$T/macir.der" ] && neg "MAC-protected ir (openssl -secret)" macir.der 200 wrongIntegrity SN-000004 \
    || { nok "openssl -secret made no request"; diag "$T/o.out"; }
grep -q wrongIntegrity "$T/o.out" && ok "openssl cmp -secret sees wrongIntegrity" \
    || { nok "openssl cmp -secret output"; diag "$T/o.out"; }

# ---- request content ------------------------------------------------------------
craft pop.der SN-000004 --popo bad
negr "POPO signature over other data" pop.der ip badPOP SN-000004
craft rav.der SN-000004 --popo raverified
negr "POPO raVerified from a device" rav.der ip badPOP SN-000004
craft nopop.der SN-000004 --popo none
negr "no POPO" nopop.der ip badPOP SN-000004
craft crid.der SN-000004 --crm-id 1
negr "certReqId 1 in an ir" crid.der ip badRequest SN-000004
craft two.der SN-000004 --two-reqs
negr "two CertReqMsgs" two.der ip badRequest SN-000004

# ---- header ---------------------------------------------------------------------
craft pvno.der SN-000004 --pvno 5
neg "bad pvno" pvno.der 200 unsupportedVersion SN-000004
craft pvno3.der SN-000001 --pvno 3
post pvno3.der pvno3.rsp >/dev/null
is "pvno 3 request answered with pvno 3" "$(field pvno3.rsp pvno)" 3
craft nonce.der SN-000004 --drop-sender-nonce
neg "missing senderNonce" nonce.der 200 badSenderNonce SN-000004
craft nonce8.der SN-000004 --sender-nonce-len 8
neg "64-bit senderNonce" nonce8.der 200 badSenderNonce SN-000004
craft nonce65.der SN-000004 --sender-nonce-len 65
neg "520-bit senderNonce" nonce65.der 200 badSenderNonce SN-000004
craft tid65.der SN-000004 --tid "$(python3 -c 'print("61" * 65)')"
neg "65-octet transactionID" tid65.der 200 badDataFormat SN-000004
craft time.der SN-000004 --time-offset 7200
neg "messageTime 2 h ahead" time.der 200 badTime SN-000004
craft timep.der SN-000004 --time-offset -7200
neg "messageTime 2 h behind" timep.der 200 badTime SN-000004
post enrolled.der e.rsp >/dev/null
inspect e.rsp --req enrolled.der >"$T/e.txt"
grep -qx "echo=ok" "$T/e.txt" && ok "error echoes transactionID/recipNonce/pvno" || { nok "error echo"; diag "$T/e.txt"; }
grep -qx "recipient=O=Acme,CN=SN-000001,serialNumber=SN-000001" "$T/e.txt" \
    && ok "error recipient = request sender" || { nok "error recipient"; diag "$T/e.txt"; }

# ---- replays and confirmation -----------------------------------------------------
n0=$(audit_count)
h=$(post ir1.der replay.rsp)
expect_error "replayed ir (same bytes, transaction closed)" "$h" 200 replay.rsp transactionIdInUse
h=$(post cc1.der ccreplay.rsp)
is "replayed certConf after pkiConf: HTTP 200" "$h" 200
is "replayed certConf gets pkiConf again" "$(field ccreplay.rsp body)" pkiconf
is "replayed certConf: protected" "$(field ccreplay.rsp protected)" ok
is "replays changed no audit rows" "$(audit_count)" "$n0"
is "replays: SN-000001 still enrolled" "$(dev_state SN-000001)" enrolled

# an open transaction (no certConf yet)
newkey k5.key
check "ir for SN-000005 without certConf (-disable_confirm)" ocmp -cmd ir -disable_confirm \
    $(dev_args SN-000005) -trusted oproot.pem -newkey k5.key -subject /CN=SN-000005 \
    -certout op5.pem -reqout ir5.der -rspout ip5.der
is "SN-000005 awaiting certConf" "$(dev_state SN-000005)" pending
c0=$(cert_count)
h=$(post ir5.der ir5replay.rsp)
expect_error "replayed ir while its transaction is open" "$h" 200 ir5replay.rsp transactionIdInUse
is "open replay issued nothing" "$(cert_count)" "$c0"
# A certConf from someone else changes nothing; one from the requester
# that is refused ends the transaction and revokes the certificate at once
# (a later correct certConf cannot revive it).
"$CRAFT" certconf --ip "$T/ip5.der" --req "$T/ir5.der" --key "$T/devs/SN-000006/key.pem" \
    --signer "$T/devs/SN-000006/cert.pem" --chain "$T/devs/SN-000006/chain.pem" --out "$T/cc5other.der"
neg "certConf signed by another device" cc5other.der 200 notAuthorized SN-000005
is "certConf signed by another device: certificate still valid" "$(cert_status "$(serial_of op5.pem)")" valid
# refuse_conf DESC CRAFT-OPTS FAILINFO: a fresh ir for SN-000005 without
# certConf, then a refused certConf with CRAFT-OPTS
refuse_conf() {
    local d=$1 opts=$2 fi=$3 h
    newkey k5r.key
    ocmp -cmd ir -disable_confirm $(dev_args SN-000005) -trusted oproot.pem -newkey k5r.key \
        -subject /CN=SN-000005 -certout op5r.pem -reqout ir5r.der -rspout ip5r.der >"$T/o.out" 2>&1
    # shellcheck disable=SC2086
    "$CRAFT" certconf --ip "$T/ip5r.der" --req "$T/ir5r.der" --key "$T/devs/SN-000005/key.pem" \
        $opts --out "$T/cc5r.der"
    h=$(post cc5r.der cc5r.rsp)
    expect_error "$d" "$h" 200 cc5r.rsp "$fi"
    is "$d: the certificate is revoked at once" "$(cert_status "$(serial_of op5r.pem)")" revoked
    is "$d: SN-000005 registered again" "$(dev_state SN-000005)" registered
    "$CRAFT" certconf --ip "$T/ip5r.der" --req "$T/ir5r.der" --key "$T/devs/SN-000005/key.pem" \
        --out "$T/cc5ok.der"
    h=$(post cc5ok.der cc5ok.rsp)
    expect_error "$d: a correct certConf afterwards" "$h" 200 cc5ok.rsp badRequest
    is "$d: still revoked" "$(cert_status "$(serial_of op5r.pem)")" revoked
}
"$CRAFT" certconf --ip "$T/ip5.der" --req "$T/ir5.der" --key "$T/devs/SN-000005/key.pem" \
    --bad-hash --out "$T/cc5hash.der"
h=$(post cc5hash.der cc5hash.rsp)
expect_error "certConf with a wrong certHash" "$h" 200 cc5hash.rsp badCertId
is "certConf with a wrong certHash: the certificate is revoked at once" "$(cert_status "$(serial_of op5.pem)")" revoked
is "certConf with a wrong certHash: SN-000005 registered again" "$(dev_state SN-000005)" registered
"$CRAFT" certconf --ip "$T/ip5.der" --req "$T/ir5.der" --key "$T/devs/SN-000005/key.pem" \
    --out "$T/cc5late.der"
h=$(post cc5late.der cc5late.rsp)
expect_error "correct certConf after a refused one" "$h" 200 cc5late.rsp badRequest
is "correct certConf after a refused one: still revoked" "$(cert_status "$(serial_of op5.pem)")" revoked
refuse_conf "certConf with a wrong recipNonce" --recip-nonce-random badRecipientNonce
refuse_conf "certConf with a wrong certReqId" "--cert-req-id 7" badRequest
refuse_conf "certConf reusing the request's senderNonce" --reuse-req-nonce badSenderNonce
newkey k5.key
check "ir for SN-000005 again" ocmp -cmd ir -disable_confirm \
    $(dev_args SN-000005) -trusted oproot.pem -newkey k5.key -subject /CN=SN-000005 \
    -certout op5.pem -reqout ir5.der -rspout ip5.der
"$CRAFT" certconf --ip "$T/ip5.der" --req "$T/ir5.der" --key "$T/devs/SN-000005/key.pem" \
    --out "$T/cc5.der"
h=$(post cc5.der cc5.rsp)
is "correct certConf: pkiConf" "$h/$(field cc5.rsp body)" 200/pkiconf
is "SN-000005 enrolled" "$(dev_state SN-000005)" enrolled

# ---- kur refusals -----------------------------------------------------------------
newkey k6.key
check "enroll SN-000006" ocmp -cmd ir $(dev_args SN-000006) -trusted oproot.pem \
    -newkey k6.key -subject /CN=SN-000006 -certout op6.pem
newkey k6b.key
ocmp -cmd kur -cert op1.pem -key k1.key -extracerts opchain.pem -trusted oproot.pem \
    -newkey k1.key -certout x.pem -reqout kurreuse.der >"$T/o.out" 2>&1
grep -q badCertTemplate "$T/o.out" && ok "openssl cmp kur reusing the key sees badCertTemplate" \
    || { nok "kur key reuse via openssl"; diag "$T/o.out"; }
"$CRAFT" mutate --in "$T/kurreuse.der" --key "$T/k1.key" --new-tid --out "$T/kurreuse2.der"
negr "kur reusing the old key" kurreuse2.der kup badCertTemplate SN-000001
ocmp -cmd kur -cert op6.pem -key k6.key -extracerts opchain.pem -trusted oproot.pem \
    -newkey k6b.key -subject /CN=SN-000099,O=Operator -certout x.pem -reqout kursubj.der >"$T/o.out" 2>&1
grep -q badCertTemplate "$T/o.out" && ok "openssl cmp kur changing the subject sees badCertTemplate" \
    || { nok "kur subject change via openssl"; diag "$T/o.out"; }
"$CRAFT" mutate --in "$T/kursubj.der" --key "$T/k6.key" --new-tid --out "$T/kursubj2.der"
negr "kur changing the subject" kursubj2.der kup badCertTemplate SN-000006
check "rr of SN-000006's certificate" ocmp -cmd rr -oldcert op6.pem -cert op6.pem -key k6.key \
    -extracerts opchain.pem -trusted oproot.pem
ocmp -cmd kur -cert op6.pem -key k6.key -extracerts opchain.pem -trusted oproot.pem \
    -newkey k6b.key -certout x.pem -reqout kurrev.der >"$T/o.out" 2>&1
"$CRAFT" mutate --in "$T/kurrev.der" --key "$T/k6.key" --new-tid --out "$T/kurrev2.der"
negr "kur signed with a revoked certificate" kurrev2.der kup certRevoked SN-000006

# ---- transport ------------------------------------------------------------------
head -c 70000 /dev/urandom >"$T/big.bin"
neg "oversized body" big.bin 413 badRequest
craft ct.der SN-000004
c0=$(cert_count)
h=$(post ct.der ct.rsp text/plain)
expect_error "wrong Content-Type" "$h" 415 ct.rsp badRequest
is "wrong Content-Type: nothing issued" "$(cert_count)" "$c0"
printf 'hello, this is not DER' >"$T/junk.bin"
neg "non-DER body" junk.bin 400 badDataFormat
cp "$T/ctl.der" "$T/trail.der"; printf '\0' >>"$T/trail.der"
neg "trailing byte after the PKIMessage" trail.der 400 badDataFormat
python3 - "$T/ctl.der" "$T/ber.der" <<'EOF'
import sys
d = open(sys.argv[1], 'rb').read()
# re-wrap the outer SEQUENCE with an indefinite length (BER, not DER)
assert d[0] == 0x30
l = d[1]; hl = 2 + (l & 0x7f if l & 0x80 else 0)
open(sys.argv[2], 'wb').write(b'\x30\x80' + d[hl:] + b'\x00\x00')
EOF
neg "BER (indefinite length) body" ber.der 400 badDataFormat
: >"$T/empty.bin"
neg "empty body" empty.bin 400 badDataFormat
h=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/$ALIAS_PATH")
is "GET on the CMP path: 405" "$h" 405
h=$(post ctl.der nope.rsp application/pkixcmp /.well-known/cmp/p/nope)
is "unknown alias: 404" "$h" 404

newkey k7.key
check "a valid enrollment after the transport refusals" ocmp -cmd ir $(dev_args SN-000007) \
    -trusted oproot.pem -newkey k7.key -subject /CN=SN-000007 -certout op7.pem
h=$(curl -s --max-time 10 -D "$T/get.hdr" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/$ALIAS_PATH")
grep -qi "^Allow: *POST" "$T/get.hdr" && ok "405 carries Allow: POST" || { nok "405 without Allow: POST"; diag "$T/get.hdr"; }
head -c 70000 /dev/urandom >"$T/bigc.bin"
h=$(curl -s --max-time 30 -o "$T/bigc.rsp" -w '%{http_code}' -H 'Content-Type: application/pkixcmp' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$T/bigc.bin" "http://127.0.0.1:$PORT/$ALIAS_PATH")
expect_error "oversized chunked body" "$h" 413 bigc.rsp badRequest
ct=$(curl -s --max-time 10 -o /dev/null -w '%{content_type}' -H 'Content-Type: application/pkixcmp' \
    --data-binary @"$T/enrolled.der" "http://127.0.0.1:$PORT/$ALIAS_PATH")
is "responses are application/pkixcmp" "$ct" application/pkixcmp
for p in "/$ALIAS_PATH/" /.well-known/cmp /.well-known/cmp/ /ejbca/publicweb/cmp/3gpp; do
    h=$(post enrolled.der route.rsp application/pkixcmp "$p")
    expect_error "routed via $p" "$h" 200 route.rsp notAuthorized
done

# ---- stalled clients: idle connections time out and block nobody -----------------
python3 - "$PORT" "$T/stall.out" <<'EOF2' &
import socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
conns = []
for i in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2:
        s.sendall(b"POST /.well-known/cmp/p/3gpp HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/pkixcmp\r\nContent-Length: 1000\r\n\r\n" + b"0" * 10)
    else:
        s.sendall(b"POST /.well-known/cmp/p/3gpp HTTP/1.1\r\nHost: x\r\n")
    conns.append(s)
open(out + ".started", "w").close()
time.sleep(7)
closed = 0
for s in conns:
    s.settimeout(1)
    try:
        d = s.recv(4096)
        closed += d == b"" or d.startswith(b"HTTP/1.1 4") or d.startswith(b"HTTP/1.1 5")
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
open(out, "w").write("%d\n" % closed)
EOF2
stallpid=$!
for i in $(seq 50); do [ -f "$T/stall.out.started" ] && break; sleep 0.1; done
newkey k12.key
s0=$(date +%s)
check "enrollment while 20 clients stall" ocmp -cmd ir $(dev_args SN-000012) -trusted oproot.pem \
    -newkey k12.key -subject /CN=SN-000012 -certout op12.pem
[ $(( $(date +%s) - s0 )) -le 3 ] && ok "stalled clients did not delay it" || nok "enrollment took $(( $(date +%s) - s0 )) s"
wait $stallpid
is "stalled connections closed after idle_timeout (3 s)" "$(cat "$T/stall.out")" 20
is "server still serves after the stalls" "$(health)" 200

# ---- rr refusals ------------------------------------------------------------------
newkey k8.key; newkey k8b.key
check "enroll SN-000008 and get a second certificate (cr)" sh -c "
    cd '$T' && timeout 30 openssl cmp -server 127.0.0.1:$PORT -path $ALIAS_PATH -cmd ir \
        $(dev_args SN-000008) -trusted oproot.pem -newkey k8.key -subject /CN=SN-000008 \
        -certout op8.pem 2>&1 &&
    timeout 30 openssl cmp -server 127.0.0.1:$PORT -path $ALIAS_PATH -cmd cr -cert op8.pem \
        -key k8.key -extracerts opchain.pem -trusted oproot.pem -newkey k8b.key \
        -subject /CN=SN-000008 -certout op8b.pem 2>&1"
ocmp -cmd rr -oldcert op7.pem -cert op8.pem -key k8.key -extracerts opchain.pem \
    -trusted oproot.pem -reqout rrother.der >"$T/o.out" 2>&1
"$CRAFT" mutate --in "$T/rrother.der" --key "$T/k8.key" --new-tid --out "$T/rrother2.der"
neg "rr for another device's certificate" rrother2.der 200 notAuthorized SN-000007
is "other device's certificate still valid" "$(cert_status "$(serial_of op7.pem)")" valid
check "rr of SN-000008's second certificate" ocmp -cmd rr -oldcert op8b.pem -cert op8b.pem \
    -key k8b.key -extracerts opchain.pem -trusted oproot.pem
ocmp -cmd rr -oldcert op8b.pem -cert op8b.pem -key k8b.key -extracerts opchain.pem \
    -trusted oproot.pem -reqout rragain.der >"$T/o.out" 2>&1
"$CRAFT" mutate --in "$T/rragain.der" --key "$T/k8b.key" --new-tid --out "$T/rragain2.der"
negr "rr of an already revoked certificate (signed by it)" rragain2.der rp certRevoked SN-000008
ocmp -cmd rr -oldcert op8b.pem -cert op8.pem -key k8.key -extracerts opchain.pem \
    -trusted oproot.pem -reqout rrsib.der >"$T/o.out" 2>&1
"$CRAFT" mutate --in "$T/rrsib.der" --key "$T/k8.key" --new-tid --out "$T/rrsib2.der"
neg "rr signed by another certificate of the same device" rrsib2.der 200 notAuthorized SN-000008

# ---- genm reusing an open transactionID --------------------------------------------
newkey k9.key
check "ir for SN-000009 without certConf" ocmp -cmd ir -disable_confirm $(dev_args SN-000009) \
    -trusted oproot.pem -newkey k9.key -subject /CN=SN-000009 -certout op9.pem -rspout ip9.der
ocmp -cmd genm -infotype caCerts -cert op7.pem -key k7.key -extracerts opchain.pem \
    -trusted oproot.pem -reqout genm.der >"$T/o.out" 2>&1
"$CRAFT" mutate --in "$T/genm.der" --key "$T/k7.key" --tid "$(field ip9.der tid)" --out "$T/genmtid.der"
neg "genm reusing an open transactionID" genmtid.der 200 transactionIdInUse SN-000009

# ---- still serving ----------------------------------------------------------------
newkey k10.key
check "a valid enrollment after all refusals" ocmp -cmd ir $(dev_args SN-000010) \
    -trusted oproot.pem -newkey k10.key -subject /CN=SN-000010 -certout op10.pem
check "audit trail intact" cli audit verify
e2e_done
