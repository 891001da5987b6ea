#!/bin/bash
# End-to-end test of the quick start: `cmpca demo` creates the demo PKI,
# and the openssl cmp commands it prints (enroll, then renew) are run
# verbatim against the demo server. Also checks that a second `cmpca demo`
# reuses the directory, and that the CA keys are encrypted and 0600. TAP.
set -u
BUILD=${BUILD:-build/release}
CMPCA=$(realpath "$BUILD/cmpca")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-demo.XXXXXX")
n=0; failed=0; PID=""
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

cd "$T" || exit 1
if timeout 120 "$CMPCA" demo --port "$PORT" --no-serve > demo.out 2> demo.err; then
    ok "cmpca demo creates the demo PKI"
else
    nok "cmpca demo creates the demo PKI"; sed 's/^/# /' demo.err
fi
[ -f cmpca-demo/cmpca.conf ] && ok "demo configuration written" || nok "demo configuration written"
mode=$(stat -c %a cmpca-demo/secrets/operator-root.key.pem 2>/dev/null)
[ "$mode" = 600 ] && ok "CA key is mode 0600" || nok "CA key is mode 0600 (got $mode)"
grep -q "ENCRYPTED PRIVATE KEY" cmpca-demo/secrets/operator-issuing.key.pem \
    && ok "CA key is encrypted" || nok "CA key is encrypted"
for d in 1 2 3; do
    [ -f "cmpca-demo/devices/DEMO-00000$d/cert.pem" ] || { nok "device $d credentials"; continue; }
    ok "device $d credentials"
done

# the printed commands: the "openssl ..." lines with their continuations
python3 - demo.out > cmds.sh <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
out, cur = [], None
for l in lines:
    s = l.strip()
    if cur is not None:
        cur += " " + s.rstrip("\\").strip()
        if not s.endswith("\\"):
            out.append(cur); cur = None
    elif s.startswith("openssl "):
        if s.endswith("\\"):
            cur = s.rstrip("\\").strip()
        else:
            out.append(s)
for c in out:
    print(c)
PY
ncmd=$(wc -l < cmds.sh)
[ "$ncmd" = 3 ] && ok "demo prints enroll and renew commands" || nok "demo prints 3 commands (got $ncmd)"

("$CMPCA" demo --port "$PORT" > serve.out 2>&1) &
PID=$!
for i in $(seq 100); do
    curl -s --max-time 2 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done
grep -q "reusing the demo" serve.out && ok "second run reuses the demo" || nok "second run reuses the demo"
i=0
while read -r cmd; do
    i=$((i + 1))
    if timeout 60 bash -c "$cmd" > "cmd$i.out" 2>&1; then
        ok "printed command $i works verbatim"
    else
        nok "printed command $i works verbatim"; sed 's/^/# /' "cmd$i.out" | tail -5
    fi
done < cmds.sh
"$CMPCA" -c cmpca-demo/cmpca.conf ca show operator-issuing --pem > chain.pem 2>/dev/null
openssl verify -CAfile cmpca-demo/operator-root.pem -untrusted chain.pem \
    cmpca-demo/devices/DEMO-000001/operator-cert.pem > verify.out 2>&1 \
    && ok "operator certificate verifies to the operator root" \
    || { nok "operator certificate verifies"; sed 's/^/# /' verify.out; }
subj=$(openssl x509 -in cmpca-demo/devices/DEMO-000001/operator-cert.pem -noout -subject 2>/dev/null)
case "$subj" in
    *DEMO-000001*) ok "operator certificate names the device ($subj)" ;;
    *) nok "operator certificate names the device (got '$subj')" ;;
esac
state=$(cd "$T" && "$CMPCA" -c cmpca-demo/cmpca.conf device show --vendor demo-vendor DEMO-000001 --json 2>/dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null)
[ "$state" = enrolled ] && ok "device DEMO-000001 enrolled" || nok "device DEMO-000001 enrolled (got '$state')"
"$CMPCA" -c cmpca-demo/cmpca.conf audit verify > /dev/null 2>&1 && ok "audit trail intact" || nok "audit trail intact"
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""
grep -q "stopping" serve.out && ok "SIGTERM stops the demo server gracefully" || nok "graceful stop"
echo "1..$n"
exit $failed
