#!/bin/bash
# End-to-end test of the load generator's lean CMP client (bench/lib/lgcmp):
# ir and kur runs against `cmpca serve` and the `openssl cmp` mock server,
# cross-checked on the server side (certificates issued and confirmed), and
# runs that must end in errors, not successes: a device not on the
# allow-list, a wrong trust anchor, a tampered response protection, a
# certificate for another key and a certificate with a forged signature.
set -u
. tests/e2e/lib.sh
LG=$(realpath "$BUILD/bench/loadgen")
if [ ! -x "$LG" ]; then
    echo "Bail out! $LG missing (make $BUILD/bench/loadgen first)"
    exit 1
fi
MOCKS=""
mock_stop_all() {
    local p
    for p in $MOCKS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    MOCKS=""
}
trap 'mock_stop_all; e2e_cleanup' EXIT

free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
# wait_port PORT: until something listens on PORT (bounded)
wait_port() {
    python3 - "$1" <<'EOF'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

# lg NAME URL ARGS...: one bounded loadgen run in $T (report in
# $T/lg-NAME.log, checked for sanitizer reports at the end); sets RES, OK,
# ERR from its RESULT line.
lg() {
    local name=$1 url=$2; shift 2
    (cd "$T" && timeout 150 "$LG" --url "$url" --warmup 0 --duration 120 \
        --keys 8 --label "$name" "$@") >"$T/lg-$name.log" 2>&1
    RES=$(grep '^RESULT' "$T/lg-$name.log" | tail -1)
    OK=$(echo "$RES" | grep -o ' ok=[0-9]*' | cut -d= -f2)
    ERR=$(echo "$RES" | grep -o ' errors=[0-9]*' | cut -d= -f2)
    [ -n "$RES" ] || { echo "# loadgen $name printed no RESULT"; diag "$T/lg-$name.log" | tail -20; }
}
# expect_run DESC OK ERRORS [PATTERN]: the last run's counts (and a line of
# its report matching PATTERN)
expect_run() {
    local d=$1 want_ok=$2 want_err=$3 pat=${4:-}
    if [ "$OK/$ERR" = "$want_ok/$want_err" ] \
       && { [ -z "$pat" ] || grep -q -- "$pat" "$T/lg-$LAST.log"; }; then
        ok "$d: ok=$OK errors=$ERR"
    else
        nok "$d: ok=${OK:-?} errors=${ERR:-?}, wanted ok=$want_ok errors=$want_err${pat:+ and '$pat'}"
        diag "$T/lg-$LAST.log" | tail -12
    fi
}
run() { LAST=$1; lg "$@"; }

# server-side counters
audit_count_of() {   # audit_count_of ACTION [REQUEST]
    cli audit list --limit 0 --json | python3 -c '
import json, sys
n = 0
for e in json.load(sys.stdin):
    if e["action"] != sys.argv[1]:
        continue
    if len(sys.argv) > 2 and (e.get("details") or {}).get("request") != sys.argv[2]:
        continue
    n += 1
print(n)' "$@"
}
dev_states() {
    cli device list --limit 0 --json | python3 -c '
import collections, json, sys
c = collections.Counter(d["state"] for d in json.load(sys.stdin))
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))'
}

# ---- operator PKI, 24 allow-listed devices, re-enrollment allowed ----------
e2e_pki 300s 24
sed -i 's/^\[alias 3gpp\]$/[alias 3gpp]\nallow_reenroll = yes\nenroll_max_per_window = 0/' "$T/cmpca.conf"
srv_start a || { echo "Bail out! server did not start"; exit 1; }
URL=http://127.0.0.1:$PORT/$ALIAS_PATH
C0=$(cert_count)   # the issuing CA's certificate

# ---- cmpca: ir --------------------------------------------------------------
run ir "$URL" --devices devs --trusted oproot.pem --threads 2 --count 12
expect_run "lean ir x12 against cmpca" 12 0 "client=lean mode=ir"
is "server: 12 ir certificates issued" "$(audit_count_of cert.issue ir)" 12
is "server: 12 certificates confirmed" "$(audit_count_of cert.confirm)" 12
is "server: 12 devices enrolled, none pending" "$(dev_states)" "enrolled=12 registered=12"
is "server: 12 new certificates in the store" "$(cert_count)" $((C0 + 12))
if grep -q "lean client: [1-4] certificate path validation" "$T/lg-ir.log"; then
    ok "server certificates validated once per worker, not per transaction"
else
    nok "validations per worker"; grep "lean client" "$T/lg-ir.log" | diag /dev/stdin
fi

# ---- cmpca: kur (4 devices: one untimed ir each, then renewals) --------------
run kur "$URL" --devices devs --trusted oproot.pem --threads 2 --count 12 \
    --mode kur --max-devices 4
expect_run "lean kur x12 against cmpca" 12 0 "(0 ir, 12 kur)"
is "server: 12 kur certificates issued" "$(audit_count_of cert.issue kur)" 12
is "server: 16 ir in all (4 initial ones of the kur run)" "$(audit_count_of cert.issue ir)" 16
is "server: all 28 certificates confirmed" "$(audit_count_of cert.confirm)" 28
is "server: no device pending" "$(dev_states)" "enrolled=12 registered=12"

# ---- cmpca: the OpenSSL client engine on the same server (reference) ---------
run ossl "$URL" --devices devs --trusted oproot.pem --threads 2 --count 4 --client openssl
expect_run "openssl engine ir x4 against cmpca" 4 0 "client=openssl"
is "server: 32 certificates confirmed" "$(audit_count_of cert.confirm)" 32

# ---- cmpca: runs that must fail -----------------------------------------------
cli factory issue --dir vendor --out rogue --count 2 --prefix ROGUE- --quiet >/dev/null 2>&1
run rogue "$URL" --devices rogue --trusted oproot.pem --threads 1 --count 2
expect_run "device not on the allow-list: refused by the server" 0 2 "notAuthorized=2"
is "server: nothing issued for it" "$(audit_count_of cert.issue)" 32

run wrongroot "$URL" --devices devs --trusted vendor/vendor-root.pem --threads 1 --count 2
expect_run "wrong trust anchor: the responses are not trusted" 0 2 "client=2"
grep -q "certificate path" "$T/lg-wrongroot.log" \
    && ok "wrong trust anchor: reported as a certificate path error" \
    || nok "wrong trust anchor: no certificate path error"
is "server: issued but never confirmed" \
    "$(audit_count_of cert.issue)/$(audit_count_of cert.confirm)" 34/32

cat >"$T/tamper.py" <<'EOF'
# HTTP proxy flipping the last octet of every response's protection.
import socket, sys, threading
port_file, upstream = sys.argv[1], int(sys.argv[2])
def read_msg(f):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        ch = f.read(1)
        if not ch:
            return None, None
        head += ch
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    return head, f.read(n)
def tlv(b, i):
    t, l, j = b[i], b[i + 1], i + 2
    if l & 0x80:
        k = l & 0x7f
        l, j = int.from_bytes(b[j:j + k], "big"), j + k
    return t, j, j + l
def tamper(body):
    b = bytearray(body)
    _, i, end = tlv(b, 0)
    while i < end:
        t, s, e = tlv(b, i)
        if t == 0xa0:
            b[e - 1] ^= 1
        i = e
    return bytes(b)
def serve(c):
    up = socket.create_connection(("127.0.0.1", upstream))
    cf, uf = c.makefile("rb"), up.makefile("rb")
    while True:
        h, b = read_msg(cf)
        if h is None:
            break
        up.sendall(h + b)
        h, b = read_msg(uf)
        if h is None:
            break
        c.sendall(h + tamper(b))
    c.close()
    up.close()
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
with open(port_file, "w") as f:
    f.write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
python3 "$T/tamper.py" "$T/tamper.port" "$PORT" >"$T/tamper.out" 2>&1 &
MOCKS="$MOCKS $!"
for i in $(seq 50); do [ -s "$T/tamper.port" ] && break; sleep 0.1; done
run tamper "http://127.0.0.1:$(cat "$T/tamper.port")/$ALIAS_PATH" --devices devs \
    --trusted oproot.pem --threads 1 --count 2
expect_run "tampered response protection: rejected" 0 2 "protection does not verify"

# ---- the openssl cmp mock server ---------------------------------------------
# it answers every request with one fixed certificate, issued here by cmpca
newkey fixed.key
ocmp -cmd ir $(dev_args SN-000024) -trusted oproot.pem -newkey fixed.key \
    -certout fixed.pem >"$T/o.out" 2>&1 || { nok "fixed certificate for the mock"; diag "$T/o.out"; }
cat "$T/vendor/vendor-root.pem" "$T/opchain.pem" >"$T/mock-trusted.pem"
# a certificate for the fixed key under the issuing CA's name, signed by
# another key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/fake-ca.key" -out "$T/fake-ca.pem" -days 30 \
    -subj "/O=Operator/CN=Issuing CA" >/dev/null 2>&1
openssl req -new -key "$T/fixed.key" -subj "/CN=forged" -out "$T/forged.csr" 2>/dev/null
openssl x509 -req -in "$T/forged.csr" -CA "$T/fake-ca.pem" -CAkey "$T/fake-ca.key" \
    -CAcreateserial -days 30 -out "$T/forged.pem" >/dev/null 2>&1

# mock_start CERT: a fresh mock server returning CERT; sets MPORT
mock_start() {
    MPORT=$(free_port)
    (cd "$T" && exec openssl cmp -port "$MPORT" -srv_cert opchain.pem \
        -srv_key issuing.key -srv_trusted mock-trusted.pem -rsp_cert "$1" \
        -rsp_capubs oproot.pem) >>"$T/mock.out" 2>&1 &
    MOCKS="$MOCKS $!"
    wait_port "$MPORT" || nok "mock server started"
}

mock_start fixed.pem
run mock_ir "http://127.0.0.1:$MPORT/" --devices devs --trusted oproot.pem \
    --one-device --newkey fixed.key --threads 1 --count 5
expect_run "lean ir x5 against the openssl mock server" 5 0
run mock_badkey "http://127.0.0.1:$MPORT/" --devices devs --trusted oproot.pem \
    --one-device --threads 1 --count 2
expect_run "mock returns a certificate for another key: rejected" 0 2 \
    "not for the requested key"
grep -q "certificate rejected by client" "$T/mock.out" \
    && ok "the rejection reached the mock server in a certConf" \
    || nok "no certConf rejection seen by the mock"
mock_stop_all

# a fresh mock for kur (the 3.0 mock keeps one server context, and its
# OSSL_CMP_validate_msg misbehaves when signers alternate too often)
mock_start fixed.pem
run mock_kur "http://127.0.0.1:$MPORT/" --devices devs --trusted oproot.pem \
    --one-device --newkey fixed.key --threads 1 --count 5 --mode kur
expect_run "lean kur x5 against the openssl mock server" 5 0 "(0 ir, 5 kur)"
mock_stop_all

mock_start forged.pem
run mock_forged "http://127.0.0.1:$MPORT/" --devices devs --trusted oproot.pem \
    --one-device --newkey fixed.key --threads 1 --count 2
expect_run "certificate with a forged signature: rejected" 0 2 \
    "certificate signature does not verify"
mock_stop_all

e2e_done
