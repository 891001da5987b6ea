#!/bin/bash
# End-to-end test of the device client `cmpenroll` against the stock
# `openssl cmp` mock server: 3GPP trust rules (pre-provisioned root, root
# from the ip, none), renewal, revocation, rejections, retries, write failures.
set -u
BUILD=${BUILD:-build/release}
E=$(realpath "$BUILD/cmpenroll")
T=$(mktemp -d "${TMPDIR:-/tmp}/client_mock.XXXXXX")
PIDS=""
MNT=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    chattr -R -i "$T" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
. "$(dirname "$0")/lib_tap.sh"
# expect DESC CODE CMD...: runs CMD, wants exit code CODE
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
# start_mock VAR ARGS...: starts `openssl cmp -port` with ARGS, sets VAR=URL
start_mock() {
    local var=$1 port; shift
    port=$(free_port)
    openssl cmp -port "$port" "$@" >"$T/mock_$var.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_port "$port" || { nok "mock server $var did not start"; sed 's/^/# /' "$T/mock_$var.log"; }
    printf -v "$var" 'http://127.0.0.1:%s/pkix/' "$port"
}

cd "$T"
# ---- a PKI from plain openssl commands --------------------------------------
cat > ext.cnf <<'EOF'
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[ee]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
root() { key "$1.key"; openssl req -x509 -new -key "$1.key" -subj "$2" -days 3650 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$1.pem" 2>/dev/null; }
# issue NAME SUBJECT CA SECTION DAYS
issue() { [ -f "$1.key" ] || key "$1.key"; openssl req -new -key "$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$3.pem" -CAkey "$3.key" -days "$5" -extfile ext.cnf \
    -extensions "$4" -out "$1.pem" 2>/dev/null; }
root oproot "/O=Operator/CN=Operator Root"
issue opca "/O=Operator/CN=Operator CA" oproot ca 3000
issue srv "/O=Operator/CN=CMP Signer" opca ee 3000
root vroot "/O=Acme/CN=Acme Root CA"
issue vca "/O=Acme/CN=Acme Issuing CA" vroot ca 3000
issue dev "/serialNumber=SN-1/CN=SN-1/O=Acme" vca ee 3000
cat vca.pem vroot.pem > devchain.pem
# the mock returns a fixed certificate: prepare it for the device's new key
issue new "/O=Operator/CN=SN-1" opca ee 365
root otherroot "/CN=Some Other Root"
cat opca.pem oproot.pem > op_extra.pem
cat oproot.pem vroot.pem > srv_trusted.pem
[ -s new.pem ] && [ -s dev.pem ] && ok "test PKI made with openssl" || nok "test PKI"

# ir server: root in extraCerts and caPubs (3GPP 9.5.4.3)
start_mock MOCK_IR -srv_cert srv.pem -srv_key srv.key -srv_trusted vroot.pem \
    -srv_untrusted vca.pem -rsp_cert new.pem -rsp_extracerts op_extra.pem -rsp_capubs oproot.pem
# ir server whose ip carries no root
start_mock MOCK_NOROOT -srv_cert srv.pem -srv_key srv.key -srv_trusted vroot.pem \
    -srv_untrusted vca.pem -rsp_cert new.pem -rsp_extracerts opca.pem
# kur/rr server: trusts the operator root
start_mock MOCK_OP -srv_cert srv.pem -srv_key srv.key -srv_trusted oproot.pem \
    -srv_untrusted opca.pem -rsp_cert new.pem -rsp_extracerts op_extra.pem
# rejecting server: notAuthorized (23)
start_mock MOCK_REJ -srv_cert srv.pem -srv_key srv.key -srv_trusted vroot.pem \
    -srv_untrusted vca.pem -rsp_cert new.pem -rsp_extracerts op_extra.pem -pkistatus 2 -failure 23 -statusstring "not on the allow-list"

VENDOR=(--vendor-key dev.key --vendor-cert dev.pem --vendor-chain devchain.pem)

# ---- enrollment with a pre-provisioned operator root ------------------------
expect "enroll with pre-provisioned root" 0 "$E" enroll -s "$MOCK_IR" -d st1 \
    --trusted oproot.pem "${VENDOR[@]}" --key new.key -v
grep_ok "verbose shows the ir" "-> ir transactionID=" "$T/.stderr"
grep_ok "verbose shows the ip" "<- ip" "$T/.stderr"
grep_ok "verbose shows certConf/pkiConf" "<- pkiconf" "$T/.stderr"
grep_ok "pre-provisioned root used" "pre-provisioned" "$T/.stdout"
cmp -s st1/cert.pem new.pem && ok "installed cert is the issued one" || nok "installed cert"
cmp -s st1/root.pem oproot.pem && ok "root.pem is the operator root" || nok "root.pem"
openssl x509 -in st1/chain.pem -noout -subject 2>/dev/null | grep -q "Operator CA" \
    && ok "chain.pem holds the operator CA" || nok "chain.pem"
[ "$(stat -L -c %a st1/key.pem)" = 600 ] && ok "key.pem mode 0600" || nok "key.pem mode $(stat -L -c %a st1/key.pem)"
expect "status of an enrolled device" 0 "$E" status -d st1
grep_ok "status says valid" "state: *valid" "$T/.stdout"
grep_ok "status shows expiry" "not after:" "$T/.stdout"

# ---- renewal -----------------------------------------------------------------
expect "renew --if-expiring-within 30d: not due, no network" 0 "$E" renew \
    -s http://127.0.0.1:1/ -d st1 --if-expiring-within 30d
grep_ok "renew says not due" "not due" "$T/.stdout"
expect "renew --if-expiring-within 400d renews (kur)" 0 "$E" renew -s "$MOCK_OP" \
    -d st1 --key new.key --if-expiring-within 400d -v
grep_ok "renewal used kur" "-> kur" "$T/.stderr"
[ "$(ls -d st1/.gen-* | wc -l)" = 1 ] && ok "old generation removed" || nok "generations: $(ls -a st1)"
expect "renew with a bad duration" 2 "$E" renew -s "$MOCK_OP" -d st1 --if-expiring-within 3x

# ---- revocation --------------------------------------------------------------
expect "revoke" 0 "$E" revoke -s "$MOCK_OP" -d st1 --reason 1 -v
grep_ok "revocation used rr" "-> rr" "$T/.stderr"
expect "status after revocation" 9 "$E" status -d st1
grep_ok "status says revoked" "revoked" "$T/.stdout"

# ---- 3GPP: root delivered in the ip -------------------------------------------
expect "enroll without root: root taken from the ip" 0 "$E" enroll -s "$MOCK_IR" \
    -d st2 "${VENDOR[@]}" --key new.key
grep_ok "reports the root came from the ip" "taken from the ip" "$T/.stdout"
cmp -s st2/root.pem oproot.pem && ok "delivered root installed" || nok "delivered root"
expect "renew trusts the installed root" 0 "$E" renew -s "$MOCK_OP" -d st2 --key new.key

expect "no root and an ip without root: abort" 6 "$E" enroll -s "$MOCK_NOROOT" \
    -d st3 "${VENDOR[@]}" --key new.key
grep_ok "clear error for missing root" "no operator root" "$T/.stderr"
[ ! -e st3/cert.pem ] && ok "nothing installed after abort" || nok "st3 has files"
expect "no root and --no-root-from-ip: abort before sending" 6 "$E" enroll \
    -s http://127.0.0.1:1/ -d st3 --no-root-from-ip "${VENDOR[@]}" --key new.key
expect "wrong pre-provisioned root: not trusted" 6 "$E" enroll -s "$MOCK_IR" \
    -d st3 --trusted otherroot.pem "${VENDOR[@]}" --key new.key
[ ! -e st3/cert.pem ] && ok "nothing installed when untrusted" || nok "st3 has files"
expect "issued cert for another key is rejected in certConf" 6 "$E" enroll \
    -s "$MOCK_IR" -d st3 --trusted oproot.pem "${VENDOR[@]}" --key-type ec:P-256
grep_ok "explains the key mismatch" "does not certify the key" "$T/.stderr"

# ---- rejection: never retried ------------------------------------------------
expect "server rejection gives exit code 5" 5 "$E" enroll -s "$MOCK_REJ" -d st4 \
    --trusted oproot.pem "${VENDOR[@]}" --key new.key --retries 4 --backoff 10 -v
grep_ok "rejection reason shown" "notAuthorized" "$T/.stderr"
[ "$(grep -c -- '-> ir' "$T/.stderr")" = 1 ] && ok "rejection not retried" \
    || nok "rejection retried $(grep -c -- '-> ir' "$T/.stderr") times"

# ---- network failures: bounded retries -----------------------------------------
DOWN=$(free_port)
start=$(date +%s%N)
expect "server down: exit code 4" 4 "$E" enroll -s "http://127.0.0.1:$DOWN/pkix/" -d st5 \
    --trusted oproot.pem "${VENDOR[@]}" --key new.key --retries 3 --backoff 100 -v
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(grep -c -- '-> ir' "$T/.stderr")" = 3 ] && ok "exactly 3 attempts" \
    || nok "attempts: $(grep -c -- '-> ir' "$T/.stderr")"
[ "$(grep -o 'transactionID=[0-9A-F]*' "$T/.stderr" | sort -u | wc -l)" = 3 ] \
    && ok "each retry of an unanswered ir is a new transaction" || nok "transaction IDs"
grep_ok "clear error: did not answer" "did not answer the enrollment (ir) after 3 attempts" "$T/.stderr"
[ "$ms" -ge 300 ] && [ "$ms" -lt 5000 ] && ok "backoff 100+200 ms respected ($ms ms)" \
    || nok "timing $ms ms"
# a server that accepts connections but never answers: the timeout applies
HANG=$(free_port)
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $HANG)); s.listen(16); time.sleep(60)" &
PIDS="$PIDS $!"
wait_port "$HANG"
start=$(date +%s)
expect "silent server: timeout, exit code 4" 4 "$E" enroll -s "http://127.0.0.1:$HANG/" \
    -d st5 --trusted oproot.pem "${VENDOR[@]}" --key new.key --timeout 1 --retries 2 --backoff 10
secs=$(( $(date +%s) - start ))
[ "$secs" -le 6 ] && ok "timeouts bound the run ($secs s)" || nok "took $secs s"
[ ! -e st5 ] || [ ! -e st5/cert.pem ] && ok "nothing installed on network failure" || nok "st5"

# ---- unwritable output: nothing half-written -------------------------------------
touch afile
expect "store path under a file: exit code 8" 8 "$E" enroll -s "$MOCK_IR" \
    -d afile/st --trusted oproot.pem "${VENDOR[@]}" --key new.key
grep_ok "says it could not store" "cannot store" "$T/.stderr"
cp -a st2 st2.before
if chattr +i st2 2>/dev/null; then
    expect "immutable store: renewal fails with exit code 8" 8 "$E" renew -s "$MOCK_OP" \
        -d st2 --key new.key
    chattr -i st2
    diff -r st2.before st2 >/dev/null && ok "old files intact, nothing half-written" \
        || nok "store changed: $(diff -r st2.before st2)"
else
    ok "# SKIP chattr not available"
fi
MNT=$T/mnt
mkdir -p "$MNT"
if mount -t tmpfs -o size=16k tmpfs "$MNT" 2>/dev/null; then
    expect "enroll into a small disk" 0 "$E" enroll -s "$MOCK_IR" -d "$MNT/st" \
        --trusted oproot.pem "${VENDOR[@]}" --key new.key
    cp -a "$MNT/st" st.full.before
    dd if=/dev/zero of="$MNT/filler" bs=1k count=64 2>/dev/null
    expect "disk full: renewal fails with exit code 8" 8 "$E" renew -s "$MOCK_OP" \
        -d "$MNT/st" --key new.key
    diff -r st.full.before "$MNT/st" >/dev/null && ok "disk full: old files intact" \
        || nok "disk full changed the store"
    [ "$(ls -a "$MNT/st" | grep -c '^\.gen-')" = 1 ] && ok "disk full: no temp generation left" \
        || nok "left: $(ls -a "$MNT/st")"
    umount "$MNT" && MNT=""
else
    ok "# SKIP cannot mount a tmpfs (not root)"
fi

# ---- usage errors -----------------------------------------------------------------
expect "enroll without vendor credentials: usage" 2 "$E" enroll -s "$MOCK_IR" -d st6
expect "status of an empty store: not enrolled" 10 "$E" status -d st6
expect "unknown command: usage" 2 "$E" frobnicate

echo "1..$n"
exit $failed
