#!/bin/bash
# End-to-end test of the signer process: `cmpca serve` forks a signer that
# alone loads the CA and CMP signer keys (an env: passphrase, a PKCS#11 PIN);
# enrollment works through it; the network process's memory holds neither a
# private key nor a passphrase (scanned through /proc/PID/mem, and the same
# scan finds the key in an in-process server, so it can fail); env:
# passphrases leave both environments; killing either process stops the
# other cleanly. Prints TAP.
. "$(dirname "$0")/lib.sh"
trap e2e_cleanup EXIT
SCAN="python3 $REPO/tests/e2e/memscan.py"

e2e_pki 300s 8
export CMP_SIGNER_PASS=keyproc-passphrase-7f3a91c2
check "an encrypted CMP signer key" \
    cli ca signer --ca issuing --pass env:CMP_SIGNER_PASS --key-out "$T/signer.key"
# a file: passphrase for the memory scans (a sanitizer runtime keeps its own
# copy of the initial environment, out of cmpca's reach); env: further down
PASS=$CMP_SIGNER_PASS
unset CMP_SIGNER_PASS
(umask 077; echo "$PASS" >"$T/signer.pass")
printf '[ca issuing]\nsigner_key_pass = file:%s/signer.pass\n' "$T" >>"$T/cmpca.conf"

# privhex KEYFILE [passin]: the private scalar of an EC key, big-endian hex
privhex() {
    openssl pkey -in "$1" ${2:+-passin "$2"} -text -noout 2>/dev/null | python3 -c '
import re, sys
t = sys.stdin.read()
h = re.sub(r"[^0-9a-f]", "", re.search(r"priv:\s*\n((?:\s+[0-9a-f:]+\n)+)", t).group(1))
while h.startswith("00"):
    h = h[2:]
print(h)'
}
rev() { python3 -c 'import sys; print(bytes.fromhex(sys.argv[1])[::-1].hex())' "$1"; }
hexof() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
CAK=$(privhex "$T/issuing.key")
SGK=$(privhex "$T/signer.key" "file:$T/signer.pass")
# OpenSSL keeps a private scalar as a BIGNUM: little-endian words
PATS="ca_key=$CAK ca_key_le=$(rev "$CAK") signer_key=$SGK signer_key_le=$(rev "$SGK") passphrase=$(hexof "$PASS")"

# children PID: the pids of PID's child processes
children() { ps -o pid= --ppid "$1" | tr -d ' '; }
# gone PID [tenths]: waits (bounded) until PID has exited
gone() {
    local i
    for i in $(seq "${2:-50}"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

# ---- enrollment through the signer process ---------------------------------
srv_start a || exit 1
NET=$PID_a
SIG=$(children "$NET")
is "serve runs one signer process" "$(echo "$SIG" | wc -w)" 1
grep_ok "the network process says it holds no key" "this process holds no private key" "$T/a.log"
newkey k1.key
check "ir + certConf through the signer process" ocmp -cmd ir $(dev_args SN-000001) \
    -trusted oproot.pem -newkey k1.key -subject /CN=SN-000001 -certout op1.pem -rspout ip1.der,pc1.der
check "the certificate verifies" openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/opchain.pem" "$T/op1.pem"
is "ip protected by the CMP signer (its key only in the signer)" "$(field ip1.der protected)" ok
grep_ok "the signer logs the certificate signature" "signer: sign key=[0-9]* (CA issuing) bytes=" "$T/a.log"
grep_ok "the signer logs the response signature" "signer: sign key=[0-9]* (CMP signer of CA issuing)" "$T/a.log"
# the certificate and the ip in one request (SIGN_PAIR): the ip's line
# names the certificate's TBS, and the certificate in the ip is the one the
# CA key signed (openssl verify above, the ip's protection checked)
carried=$(sed -n 's/.*(CMP signer of CA issuing) .* ok (the message carrying sha256=\([0-9a-f]*\))$/\1/p' "$T/a.log" | head -1)
[ -n "$carried" ] && grep -q "(CA issuing) bytes=[0-9]* sha256=$carried us=[0-9]* ok" "$T/a.log" \
    && ok "certificate and ip signed in one round trip to the signer" \
    || nok "certificate and ip signed in one round trip to the signer ('$carried')"
check "rr (a CRL signed in the signer process)" ocmp -cmd rr -cert op1.pem -key k1.key \
    -trusted oproot.pem -oldcert op1.pem -revreason 1

# ---- no key material in the network process --------------------------------
$SCAN "$NET" $PATS >"$T/scan-net" 2>&1; rc=$?
if [ "$rc" = 1 ]; then ok "no private key and no passphrase in the network process's memory"
else nok "no key material in the network process (scan exit $rc)"; diag "$T/scan-net"; fi
$SCAN "$SIG" $PATS >"$T/scan-sig" 2>&1; rc=$?
case $rc in
    0) grep -q "found ca_key" "$T/scan-sig" && grep -q "found signer_key" "$T/scan-sig" \
           && ok "the same scan finds both keys in the signer process" \
           || { nok "the scan finds both keys in the signer process"; diag "$T/scan-sig"; } ;;
    2) ok "# SKIP the signer process is not readable here (not dumpable, no CAP_SYS_PTRACE)" ;;
    *) nok "the scan finds the keys in the signer process (exit $rc)"; diag "$T/scan-sig" ;;
esac
if grep -q "passphrase" "$T/scan-sig"; then nok "the signer dropped the passphrase after loading"
else ok "the signer dropped the passphrase after loading"; fi

# ---- the network process dies: the signer follows ---------------------------
kill -KILL "$NET"
gone "$SIG" 30 && ok "kill -9 of the network process: the signer exits" \
    || { nok "kill -9 of the network process: the signer exits"; kill -KILL "$SIG"; }
wait "$NET" 2>/dev/null
PID_a=

# ---- the signer dies: the server stops, non-zero ---------------------------
srv_start b || exit 1
SIG=$(children "$PID_b")
kill -KILL "$SIG"
if gone "$PID_b" 100; then ok "kill -9 of the signer: the server stops"
else nok "kill -9 of the signer: the server stops"; fi
srv_stop b; rc=$?
[ "$rc" != 0 ] && ok "... with a non-zero exit status ($rc)" || nok "server exit status non-zero after the signer died"
grep_ok "... saying why" "the signer process ended: stopping" "$T/b.log"
[ "$(health)" = 000 ] && ok "... and no longer listens" || nok "the port is closed"

# ---- a graceful stop ends both ----------------------------------------------
srv_start c || exit 1
SIG=$(children "$PID_c")
newkey k2.key
check "ir after a restart" ocmp -cmd ir $(dev_args SN-000002) -trusted oproot.pem \
    -newkey k2.key -subject /CN=SN-000002 -certout op2.pem
srv_stop c; rc=$?
is "SIGTERM: the server exits 0" "$rc" 0
gone "$SIG" 30 && ok "SIGTERM: the signer exits with it" || nok "SIGTERM: the signer exits with it"
grep_ok "the signer saw its channels close" "network process closed the channels; exiting" "$T/c.log"

# ---- the buffered signer log survives SIGTERM and the server's death --------
# (lines written at most signer_log_flush_ms late; on SIGTERM - which
# PR_SET_PDEATHSIG sends when the server dies - and on EOF of its channels
# the signer writes them before it exits)
sed -i 's/^\[server\]$/[server]\nsigner_log_flush_ms = 1000/' "$T/cmpca.conf"
srv_start f || exit 1
SIG=$(children "$PID_f")
sleep 1.5   # the start-up signatures (CRLs) are written by then
n0=$(grep -c "signer: sign " "$T/f.log")
newkey k8.key
check "ir with a 1 s log flush interval" ocmp -cmd ir $(dev_args SN-000008) -trusted oproot.pem \
    -newkey k8.key -subject /CN=SN-000008 -certout op8.pem
kill -TERM "$SIG"
gone "$SIG" 30 && ok "SIGTERM to the signer: it exits" \
    || { nok "SIGTERM to the signer: it exits"; kill -KILL "$SIG"; }
gone "$PID_f" 100 && ok "... and the server stops" || nok "the server stops after the signer's SIGTERM"
wait "$PID_f" 2>/dev/null
PID_f=
is "SIGTERM: the signer wrote its buffered lines first (certificate, ip, pkiConf)" \
    "$(( $(grep -c "signer: sign " "$T/f.log") - n0 ))" 3
# the same after kill -9 of the server (EOF and SIGTERM at once)
srv_start g || exit 1
SIG=$(children "$PID_g")
sleep 1.5
n0=$(grep -c "signer: sign " "$T/g.log")
newkey k7.key
check "ir with a 1 s log flush interval, again" ocmp -cmd ir $(dev_args SN-000007) \
    -trusted oproot.pem -newkey k7.key -subject /CN=SN-000007 -certout op7.pem
kill -KILL "$PID_g"
gone "$SIG" 30 && ok "kill -9 of the network process: the signer exits" \
    || { nok "the signer exits"; kill -KILL "$SIG"; }
wait "$PID_g" 2>/dev/null
PID_g=
is "kill -9 of the server: the signer wrote its buffered lines" \
    "$(( $(grep -c "signer: sign " "$T/g.log") - n0 ))" 3
sed -i '/^signer_log_flush_ms = 1000$/d' "$T/cmpca.conf"

# ---- the scan can fail: an in-process server holds the keys -----------------
sed -i 's/^\[server\]$/[server]\nsigner = inprocess/' "$T/cmpca.conf"
srv_start d || exit 1
is "signer = inprocess: no signer process" "$(children "$PID_d" | wc -w)" 0
newkey k3.key
check "ir with in-process signing" ocmp -cmd ir $(dev_args SN-000003) -trusted oproot.pem \
    -newkey k3.key -subject /CN=SN-000003 -certout op3.pem
$SCAN "$PID_d" $PATS >"$T/scan-inproc" 2>&1; rc=$?
if [ "$rc" = 0 ] && grep -q "found ca_key" "$T/scan-inproc"; then
    ok "the scan finds the CA key in an in-process server (the check can fail)"
else nok "the scan finds the CA key in an in-process server (exit $rc)"; diag "$T/scan-inproc"; fi
srv_stop d
sed -i '/^signer = inprocess$/d' "$T/cmpca.conf"

# ---- a configuration error and a wrong passphrase are reported at start -----
sed -i 's/^\[server\]$/[server]\nsigner = elsewhere/' "$T/cmpca.conf"
expect "signer = elsewhere: exit 7" 7 cli serve --port-file "$T/x.port"
grep_ok "... with file:line" "cmpca.conf:[0-9]*: signer must be process or inprocess" "$T/.stderr"
sed -i '/^signer = elsewhere$/d' "$T/cmpca.conf"
echo wrong-passphrase >"$T/signer.pass"
expect "a wrong passphrase: exit 5, from the signer process" 5 cli serve --port-file "$T/x.port"
grep_ok "... naming the key" "CMP signer key of CA issuing" "$T/.stderr"
echo "$PASS" >"$T/signer.pass"
sed 's|^path = cmpca.db$|path = /nonexistent/cmpca.db|' "$T/cmpca.conf" >"$T/nostore.conf"
expect "a store the signer cannot open: exit 6" 6 "$CMPCA" -c "$T/nostore.conf" serve --port-file "$T/x.port"

# ---- env: passphrases leave the environment of both processes ---------------
sed -i "s|^signer_key_pass = file:.*|signer_key_pass = env:CMP_SIGNER_PASS|" "$T/cmpca.conf"
export CMP_SIGNER_PASS=$PASS
srv_start f || exit 1
SIG=$(children "$PID_f")
unset CMP_SIGNER_PASS
newkey k5.key
check "ir with an env: passphrase" ocmp -cmd ir $(dev_args SN-000005) -trusted oproot.pem \
    -newkey k5.key -subject /CN=SN-000005 -certout op5.pem
for p in "$PID_f" "$SIG"; do
    if tr '\0' '\n' <"/proc/$p/environ" | grep -q "$PASS"; then
        nok "the env: passphrase is wiped from the environment of $p"
    else ok "the env: passphrase is wiped from the environment of $p"; fi
done
if ldd "$CMPCA" | grep -q libasan; then
    ok "# SKIP memory scan for an env: passphrase under ASan (its runtime copies the environment)"
else
    $SCAN "$PID_f" "passphrase=$(hexof "$PASS")" >"$T/scan-env" 2>&1; rc=$?
    [ "$rc" = 1 ] && ok "no env: passphrase anywhere in the network process's memory" \
        || { nok "no env: passphrase in the network process's memory (exit $rc)"; diag "$T/scan-env"; }
fi
srv_stop f
sed -i "s|^signer_key_pass = env:.*|signer_key_pass = file:$T/signer.pass|" "$T/cmpca.conf"

# ---- PKCS#11 (SoftHSM2) through the signer process ---------------------------
MOD=/usr/lib/softhsm/libsofthsm2.so
if [ -r "$MOD" ] && command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null; then
    mkdir -p "$T/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >"$T/softhsm2.conf"
    export SOFTHSM2_CONF=$T/softhsm2.conf
    export HSM_PIN=keyproc-pin-27182818
    softhsm2-util --init-token --free --label cmpca --pin "$HSM_PIN" --so-pin 56781234 >/dev/null
    pkcs11-tool --module $MOD --token-label cmpca --keypairgen --key-type EC:prime256v1 \
        --id 01 --label hsmca --login --pin "$HSM_PIN" >/dev/null 2>&1
    check "pkcs11: a CA on the token" cli ca create --name hsm --subject "/O=Operator/CN=HSM CA" \
        --pkcs11 "pkcs11:token=cmpca;object=hsmca;type=private" --pin env:HSM_PIN
    cli ca show hsm --pem >"$T/hsm.pem"
    (umask 077; echo "$HSM_PIN" >"$T/hsm.pin")
    cat >>"$T/cmpca.conf" <<EOF
[ca hsm]
pkcs11_pin = file:$T/hsm.pin
pkcs11_module = $MOD
[alias hsm]
mode = 3gpp
ca = hsm
profile = device
vendors = acme
EOF
    PIN=$HSM_PIN
    unset HSM_PIN
    srv_start e || exit 1
    SIG=$(children "$PID_e")
    newkey k4.key
    ALIAS_PATH=.well-known/cmp/p/hsm check "pkcs11: ir through the signer process" ocmp -cmd ir \
        $(dev_args SN-000004) -trusted hsm.pem -newkey k4.key -subject /CN=SN-000004 -certout op4.pem
    check "pkcs11: the certificate verifies" openssl verify -CAfile "$T/hsm.pem" "$T/op4.pem"
    grep -q softhsm "/proc/$SIG/maps" && ok "pkcs11: the signer process has the token module" \
        || nok "pkcs11: the signer process has the token module"
    grep -q softhsm "/proc/$PID_e/maps" && nok "pkcs11: the network process never loads the module" \
        || ok "pkcs11: the network process never loads the module"
    $SCAN "$PID_e" "pin=$(hexof "$PIN")" $PATS >"$T/scan-hsm" 2>&1; rc=$?
    [ "$rc" = 1 ] && ok "pkcs11: no PIN and no key in the network process" \
        || { nok "pkcs11: no PIN and no key in the network process (exit $rc)"; diag "$T/scan-hsm"; }
    srv_stop e
else
    ok "# SKIP pkcs11: softhsm2/opensc not installed"
fi
e2e_done
