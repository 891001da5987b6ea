#!/bin/bash
# Delayed delivery with manual approval (RFC 9810 5.3.22, RFC 9483 4.4)
# against `cmpca serve` with the stock openssl cmp 3.0 client, which polls
# on its own: approval, rejection, a restart and a second server process
# between request and delivery (one SQLite store; a TCP switch sends the
# client's later connections elsewhere), expiry, and crafted pollReqs
# (unknown transaction, wrong nonce, wrong requester) refused with the
# failInfo of STANDARDS.md and nothing changed.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 12
cat >>"$T/cmpca.conf" <<EOF
[alias manual]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
approval = manual
check_after = 1s
[alias short]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
approval = manual
check_after = 1s
approval_timeout = 3s
EOF
srv_start a || { echo "Bail out! server did not start"; diag "$T/a.log"; exit 1; }
is "/health answers 200" "$(health)" 200
DB=$T/cmpca.db

# the switch: the client talks to it, it forwards each new connection to
# the server whose port is in $T/target
echo "$PORT_a" >"$T/target"
python3 "$REPO/tests/e2e/tcp_switch.py" "$T/switch.port" "$T/target" &
SW_PID=$!
for i in $(seq 50); do [ -s "$T/switch.port" ] && break; sleep 0.1; done
SW=$(cat "$T/switch.port" 2>/dev/null)
[ -n "$SW" ] || { echo "Bail out! switch did not start"; exit 1; }
trap 'kill $SW_PID 2>/dev/null; e2e_cleanup' EXIT

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
txn_state() { sqlite3 "$DB" "SELECT state FROM cmp_txn WHERE hex(tid)=upper('$1')"; }
audit_has() {   # audit_has ACTION OBJECT
    cli audit list --limit 0 --json | python3 -c 'import json,sys
print(sum(1 for r in json.load(sys.stdin) if r["action"]==sys.argv[1] and (r.get("object") or "")==sys.argv[2]))' "$1" "$2"
}
polls_of() { cat "$T"/*.log | grep -c "type=pollReq tid=${1:0:32} .*outcome=accepted"; }

# ---- approval ------------------------------------------------------------------
c0=$(cert_count)
enroll_bg m1 manual SN-000001
tid=$(pending_tid manual SN-000001) && ok "ir held: request pending" || nok "no pending request"
is "nothing issued while pending" "$(cert_count)" "$c0"
is "device still registered" "$(dev_state SN-000001)" registered
is "transaction waiting" "$(txn_state "$tid")" 6
is "request show: type" "$(req_field "$tid" type)" ir
is "request show: alias" "$(req_field "$tid" alias)" manual
is "request show: profile" "$(req_field "$tid" profile)" device
is "audit row request.hold" "$(audit_has request.hold "$tid")" 1
sleep 2.5
[ "$(polls_of "$tid")" -ge 1 ] && ok "client polled (pollReq answered pollRep)" || nok "no pollReq seen"
check "request approve" cli request approve "$tid"
is "m1: client got its certificate" "$(wait_rc m1)" 0
check "m1: certificate verifies" openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/m1.pem"
is "one certificate issued" "$(cert_count)" $((c0 + 1))
is "device enrolled (certConf after delivery)" "$(dev_state SN-000001)" enrolled
is "request delivered" "$(req_field "$tid" state)" delivered
is "transaction confirmed" "$(txn_state "$tid")" 1
is "audit row request.approve" "$(audit_has request.approve "$tid")" 1
is "approval decided by the CLI user" "$(req_field "$tid" decided_by | cut -c1-4)" "cli:"
cli request approve "$tid" >/dev/null 2>&1
is "approving a delivered request: exit 4" "$?" 4

e2e_done
