# Helpers of the delayed-delivery e2e scripts (sourced after lib.sh):
# a TCP switch in front of the servers, the stock client through it in
# the background, and lookups of held requests and audit rows.
# shellcheck shell=bash

# the switch: the client talks to it, it forwards each new connection to
# the server whose port is in $T/target
# (switch_start PORT; sets SW and SW_PID; the caller's EXIT trap should
# kill SW_PID)
switch_start() {
    local i
    echo "$1" >"$T/target"
    python3 "$REPO/tests/e2e/tcp_switch.py" "$T/switch.port" "$T/target" &
    SW_PID=$!
    for i in $(seq 50); do [ -s "$T/switch.port" ] && break; sleep 0.1; done
    SW=$(cat "$T/switch.port" 2>/dev/null)
    [ -n "$SW" ] || { echo "Bail out! switch did not start"; exit 1; }
}

# mcmp ALIAS ARGS...: openssl cmp through the switch, one connection per
# message (so that the switch can send a poll to another server)
mcmp() {
    local alias=$1; shift
    (cd "$T" && timeout 90 openssl cmp -server "127.0.0.1:$SW" \
        -path ".well-known/cmp/p/$alias" -keep_alive 0 "$@")
}
# enroll_bg NAME ALIAS SN [args]: an ir in the background; NAME.out, NAME.rc
enroll_bg() {
    local name=$1 alias=$2 sn=$3; shift 3
    newkey "$name.key"
    rm -f "$T/$name.rc"
    ( mcmp "$alias" -cmd ir $(dev_args "$sn") -trusted oproot.pem \
        -newkey "$name.key" -subject "/CN=$sn" -certout "$name.pem" "$@" \
        >"$T/$name.out" 2>&1; echo $? >"$T/$name.rc" ) &
}
# wait_rc NAME: waits (bounded) for the background client; prints its rc
wait_rc() {
    local i
    for i in $(seq 600); do [ -s "$T/$1.rc" ] && break; sleep 0.1; done
    cat "$T/$1.rc" 2>/dev/null || echo none
}
# pending_tid ALIAS SN: waits (bounded) for SN's pending request on ALIAS
# and prints its transactionID
pending_tid() {
    local i t
    for i in $(seq 200); do
        t=$(cli request list --alias "$1" --state pending --json 2>/dev/null |
            python3 -c 'import json,sys
for r in json.load(sys.stdin):
    if r["device"]==sys.argv[1]: print(r["transaction_id"]); break' "$2")
        [ -n "$t" ] && { echo "$t"; return 0; }
        sleep 0.1
    done
    return 1
}
req_field() {   # req_field TID KEY
    cli request show "$1" --json | python3 -c 'import json,sys
v=json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else v)' "$2"
}
audit_has() {   # audit_has ACTION OBJECT
    cli audit list --limit 0 --json | python3 -c 'import json,sys
print(sum(1 for r in json.load(sys.stdin) if r["action"]==sys.argv[1] and (r.get("object") or "")==sys.argv[2]))' "$1" "$2"
}
polls_of() { cat "$T"/*.log | grep -c "type=pollReq tid=${1:0:32} .*outcome=accepted"; }

