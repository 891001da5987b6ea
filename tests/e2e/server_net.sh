#!/bin/bash
# The network-facing settings of `cmpca serve` (issue 16 points 7-8, issue 12
# point 5): root refused without [server] user, the drop to that user after
# binding, env: passphrases wiped from the environment, /health and /metrics
# on a separate listener (loopback-only otherwise), several listen
# addresses (IPv4 and IPv6), max_body above 64 KiB end to end, any number of
# trailing slashes, and TLS (openssl s_client, openssl cmp -tls_used, a
# listener that requires client certificates, the key file's mode).
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 20
cp "$T/cmpca.conf" "$T/base.conf"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# use_conf LINES...: cmpca.conf = base.conf with LINES added to [server]
use_conf() {
    local extra l del=""
    extra=$(printf '%s\\n' "$@")
    for l in "$@"; do del="$del;/^${l%% =*} = /d"; done
    sed "${del#;}" "$T/base.conf" | sed "s|^\[server\]\$|[server]\n${extra}|" >"$T/cmpca.conf"
}
enroll() {   # enroll SN [extra openssl cmp args]: ir+certConf against $PORT
    local sn=$1; shift
    newkey "n-$sn.key"
    ocmp -cmd ir $(dev_args "$sn") -trusted oproot.pem -newkey "n-$sn.key" \
        -subject "/CN=$sn" -certout "n-$sn.pem" "$@"
}
pid_of() { eval echo "\$PID_$1"; }

# ---- least privilege ----------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
    sed '/^user = /d' "$T/base.conf" >"$T/cmpca.conf"
    (cd "$T" && timeout 20 "$CMPCA" -c "$T/cmpca.conf" serve --port-file "$T/x.port" >"$T/root.out" 2>&1)
    rc=$?
    is "as root without [server] user: refused (exit 7)" "$rc" 7
    grep_ok "the refusal names [server] user and allow_root" "allow_root" "$T/root.out"
    [ ! -s "$T/x.port" ] && ok "nothing was bound" || nok "a port file was written"
    { sed '/^user = /d' "$T/base.conf" | sed 's|^\[server\]$|[server]\nallow_root = yes|'; } >"$T/cmpca.conf"
    srv_start ar && ok "allow_root = yes: serves as root" || nok "allow_root = yes"
    grep_ok "a warning says it runs as root" "running as root" "$T/ar.log"
    srv_stop ar
else
    ok "# SKIP root checks: not running as root"
fi

# env: passphrase of a second issuing CA, read and wiped
echo "enc-ca-secret-9f3a" >"$T/enc.pass"
cli ca create --name encca --parent root --subject "/O=Operator/CN=Encrypted CA" \
    --pass "file:$T/enc.pass" --key-out "$T/encca.key" >"$T/encca.log" 2>&1 \
    || { nok "create the encrypted CA"; diag "$T/encca.log"; }
serve_user_own "$T"
cat >>"$T/base.conf" <<EOC
[ca encca]
key_pass = env:CMPCA_E2E_ENC_PASS
[alias enc]
mode = 3gpp
ca = encca
profile = device
vendors = acme
EOC
sed -i 's|^\[server\]$|[server]\ndefault_alias = 3gpp|' "$T/base.conf"
MPORT=$(free_port)
P2=$(free_port)
use_conf "listen = 127.0.0.1:$P2, [::1]:$P2" "metrics_listen = 127.0.0.1:$MPORT" "max_body = 256k"
export CMPCA_E2E_ENC_PASS
CMPCA_E2E_ENC_PASS=$(cat "$T/enc.pass")
srv_start net || { echo "Bail out! server did not start"; exit 1; }
PID=$(pid_of net)
if [ "$(id -u)" = 0 ]; then
    uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$PID/status")
    is "after binding the server runs as nobody (real, effective, saved, fs uid)" "$uids" "65534 65534 65534 65534"
    gid=$(id -g nobody)
    is "... and nobody's group" "$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$PID/status")" "$gid $gid $gid $gid"
    grep_ok "the log says so" "running as user nobody" "$T/net.log"
    bad=0; nt=0
    for f in /proc/$PID/task/*/status; do
        nt=$((nt + 1))
        [ "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "$f")" = "65534 65534 65534 65534" ] || bad=$((bad + 1))
    done
    is "every one of the $nt threads (HTTP workers started before the drop too) runs as nobody" "$bad" 0
    groups=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$PID/status" | tr -s ' ' | sed 's/^ //; s/ $//')
    is "supplementary groups: nobody's own, none of root's" "$groups" "$(id -G nobody)"
fi
if tr '\0' '\n' <"/proc/$PID/environ" | grep -q "CMPCA_E2E_ENC_PASS\|enc-ca-secret"; then
    nok "the env: passphrase is still in /proc/PID/environ"
else
    ok "the env: passphrase is gone from /proc/PID/environ"
fi
newkey e1.key
check "enrollment through alias enc (key passphrase from env:)" \
    bash -c "cd '$T' && timeout 30 openssl cmp -server 127.0.0.1:$P2 -path .well-known/cmp/p/enc \
      $(dev_args SN-000001) -cmd ir -trusted oproot.pem -newkey e1.key -subject /CN=SN-000001 -certout e1.pem"

# separate /health and /metrics listener
h() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@"; }
is "/metrics on the metrics listener" "$(h "http://127.0.0.1:$MPORT/metrics")" 200
is "/health on the metrics listener" "$(h "http://127.0.0.1:$MPORT/health")" 200
is "no /metrics on the CMP listener" "$(h "http://127.0.0.1:$P2/metrics")" 404
is "no /health on the CMP listener" "$(h "http://127.0.0.1:$P2/health")" 404
curl -s --max-time 10 "http://127.0.0.1:$MPORT/metrics" | grep -q "cmpca_certificates_issued_total" \
    && ok "metrics text served" || nok "metrics text"
is "no CMP on the metrics listener" "$(h -H 'Content-Type: application/pkixcmp' --data-binary x "http://127.0.0.1:$MPORT/.well-known/cmp")" 404

# several listen addresses: IPv4 and IPv6, one process
PORT=$P2
check "enrollment over IPv4" enroll SN-000002
if curl -s --max-time 5 -o /dev/null "http://[::1]:$P2/" 2>/dev/null || [ $? != 7 ]; then
    newkey k6.key
    check "enrollment over IPv6 ([::1]:$P2, same process)" bash -c "cd '$T' && timeout 30 openssl cmp \
        -server '[::1]:$P2' -path $ALIAS_PATH $(dev_args SN-000003) -cmd ir -trusted oproot.pem \
        -newkey k6.key -subject /CN=SN-000003 -certout k6.pem"
else
    ok "# SKIP IPv6: no ::1 here"
fi

# trailing slashes route, paths stay case-sensitive
newkey ks.key
ocmp -cmd ir -disable_confirm $(dev_args SN-000004) -trusted oproot.pem -newkey ks.key \
    -subject /CN=SN-000004 -reqout irs.der -certout ks.pem >/dev/null 2>&1
newkey ks2.key
ocmp -cmd ir -disable_confirm $(dev_args SN-000005) -trusted oproot.pem -newkey ks2.key \
    -subject /CN=SN-000005 -reqout irs2.der -certout ks2.pem -server 127.0.0.1:1 >/dev/null 2>&1
code=$(post irs2.der slash.rsp application/pkixcmp "/$ALIAS_PATH/////")
is "POST .../p/3gpp///// routes: HTTP 200 and an ip" "$code/$(field slash.rsp body)" 200/ip
is ".../P/3gpp (case differs): 404" "$(post irs2.der case.rsp application/pkixcmp /.well-known/cmp/P/3gpp)" 404
is "/.well-known/CMP/p/3gpp: 404" "$(post irs2.der case2.rsp application/pkixcmp /.well-known/CMP/p/3gpp)" 404

# max_body above 64 KiB: a 100 KB ir (three 32 KB certificates in extraCerts)
for i in 1 2 3; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pad$i.key" \
        -subj "/CN=pad$i" -days 30 -addext "nsComment=$(head -c 32000 /dev/zero | tr '\0' b)" \
        -out "$T/pad$i.pem" 2>/dev/null
done
cat "$T/devs/SN-000006/chain.pem" "$T/pad1.pem" "$T/pad2.pem" "$T/pad3.pem" >"$T/bigchain.pem"
newkey kb.key
ocmp -cmd ir $(dev_args SN-000006 | sed 's|devs/SN-000006/chain.pem|bigchain.pem|') -trusted oproot.pem \
    -newkey kb.key -subject /CN=SN-000006 -certout kb.pem -reqout irb.der,ccb.der >"$T/big.out" 2>&1
rc=$?
size=$(stat -c %s "$T/irb.der" 2>/dev/null || echo 0)
[ "$size" -gt 98000 ] && ok "the ir is $size bytes" || nok "the ir is only $size bytes"
is "a $size-byte ir with max_body = 256k: enrolled" "$rc" 0
srv_stop net

use_conf "listen = 127.0.0.1:0" "max_body = 64k"
srv_start small || { echo "Bail out! server did not start"; exit 1; }
code=$(post irb.der big.rsp)
expect_error "the same ir with max_body = 64k" "$code" 413 big.rsp badRequest
srv_stop small

# ---- TLS ---------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 30 -out "$T/tls.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/cca.key" \
    -subj /CN=RA-CA -days 30 -out "$T/cca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ra.key" -subj /CN=ra1 \
    -out "$T/ra.csr" 2>/dev/null
openssl x509 -req -in "$T/ra.csr" -CA "$T/cca.pem" -CAkey "$T/cca.key" -CAcreateserial -days 30 \
    -out "$T/ra.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue.key" \
    -subj /CN=rogue -days 30 -out "$T/rogue.pem" 2>/dev/null
chmod 644 "$T/tls.key"
PT=$(free_port); PM=$(free_port)
use_conf "listen = 127.0.0.1:$PT tls, 127.0.0.1:$PM tls client-cert" "tls_cert = $T/tls.pem" \
    "tls_key = $T/tls.key" "tls_client_ca = $T/cca.pem"
(cd "$T" && timeout 20 "$CMPCA" -c "$T/cmpca.conf" serve >"$T/mode.out" 2>&1)
is "a TLS key file of mode 0644: refused (exit 7)" "$?" 7
grep_ok "... saying the key must be 0600" "mode 0600" "$T/mode.out"
chmod 600 "$T/tls.key"
srv_start tls || { echo "Bail out! TLS server did not start"; exit 1; }
PORT=$PT
echo | timeout 20 openssl s_client -connect "127.0.0.1:$PT" -CAfile "$T/tls.pem" -verify_return_error \
    -servername 127.0.0.1 >"$T/sc.out" 2>&1
grep_ok "openssl s_client: handshake, certificate verified" "Verify return code: 0 (ok)" "$T/sc.out"
newkey kt.key
check "openssl cmp -tls_used: ir+certConf over TLS" ocmp -cmd ir -tls_used -tls_trusted tls.pem \
    -tls_host 127.0.0.1 $(dev_args SN-000007) -trusted oproot.pem -newkey kt.key -subject /CN=SN-000007 -certout kt.pem
is "plain HTTP to the TLS listener gets no answer" "$(h -H 'Content-Type: application/pkixcmp' --data-binary x "http://127.0.0.1:$PT/.well-known/cmp")" 000
PORT=$PM
newkey km.key
check "client-cert listener: openssl cmp with an RA certificate" ocmp -cmd ir -tls_used -tls_trusted tls.pem \
    -tls_host 127.0.0.1 -tls_cert ra.pem -tls_key ra.key $(dev_args SN-000008) -trusted oproot.pem \
    -newkey km.key -subject /CN=SN-000008 -certout km.pem
c=$(cert_count)
newkey kn.key
ocmp -cmd ir -tls_used -tls_trusted tls.pem -tls_host 127.0.0.1 $(dev_args SN-000009) -trusted oproot.pem \
    -newkey kn.key -subject /CN=SN-000009 -certout kn.pem >"$T/nocert.out" 2>&1
[ $? != 0 ] && ok "client-cert listener without a client certificate: refused" || nok "no client cert accepted"
is "client-cert listener, curl without certificate: 403" \
    "$(h --cacert "$T/tls.pem" -H 'Content-Type: application/pkixcmp' --data-binary x "https://127.0.0.1:$PM/.well-known/cmp")" 403
is "client-cert listener, a certificate of another CA: not served" \
    "$(h --cacert "$T/tls.pem" --cert "$T/rogue.pem" --key "$T/rogue.key" -H 'Content-Type: application/pkixcmp' --data-binary x "https://127.0.0.1:$PM/.well-known/cmp")" 403
is "client-cert listener, the RA certificate: CMP answered" \
    "$(h --cacert "$T/tls.pem" --cert "$T/ra.pem" --key "$T/ra.key" -H 'Content-Type: application/pkixcmp' --data-binary x "https://127.0.0.1:$PM/.well-known/cmp")" 400
is "nothing issued for the refused ones" "$(cert_count)" "$c"
srv_stop tls

# an encrypted TLS key with tls_key_pass
echo "tls-key-pass-77" >"$T/tlskey.pass"
openssl pkcs8 -topk8 -in "$T/tls.key" -out "$T/tlsenc.key" -v2 aes-256-cbc \
    -passout "file:$T/tlskey.pass" 2>/dev/null
chmod 600 "$T/tlsenc.key"
PT=$(free_port)
use_conf "listen = 127.0.0.1:$PT tls" "tls_cert = $T/tls.pem" "tls_key = $T/tlsenc.key" \
    "tls_key_pass = file:$T/tlskey.pass"
srv_start tlsenc || { echo "Bail out! TLS server with an encrypted key did not start"; exit 1; }
PORT=$PT
newkey ke.key
check "encrypted TLS key (tls_key_pass): openssl cmp -tls_used" ocmp -cmd ir -tls_used \
    -tls_trusted tls.pem -tls_host 127.0.0.1 $(dev_args SN-000010) -trusted oproot.pem \
    -newkey ke.key -subject /CN=SN-000010 -certout ke.pem
srv_stop tlsenc
e2e_done
