#!/bin/bash
# Delayed delivery with manual approval (RFC 9810 5.3.22, RFC 9483 4.4)
# against `cmpca serve` with the stock openssl cmp 3.0 client, which polls
# on its own: approval, rejection, a restart and a second server process
# between request and delivery (one SQLite store; a TCP switch sends the
# client's later connections elsewhere), expiry, and crafted pollReqs
# (unknown transaction, wrong nonce, wrong requester) refused with the
# failInfo of STANDARDS.md and nothing changed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_poll.sh"

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
[alias slow]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
approval = manual
check_after = 5s
EOF
srv_start a || { echo "Bail out! server did not start"; diag "$T/a.log"; exit 1; }
is "/health answers 200" "$(health)" 200
DB=$T/cmpca.db

# the client talks to the switch, which forwards each new connection to
# the server whose port is in $T/target
switch_start "$PORT_a"
trap 'kill $SW_PID 2>/dev/null; e2e_cleanup' EXIT
txn_state() { sqlite3 "$DB" "SELECT state FROM cmp_txn WHERE hex(tid)=upper('$1')"; }

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

# ---- kur and p10cr wait too --------------------------------------------------------
old1=$(serial_of m1.pem)
newkey m1b.key
rm -f "$T/kur.rc"
( mcmp manual -cmd kur -cert m1.pem -key m1.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey m1b.key -certout m1b.pem -rspout kup-w.der \
    >"$T/kur.out" 2>&1; echo $? >"$T/kur.rc" ) &
tidk=$(pending_tid manual SN-000001) && ok "kur held" || nok "kur not held"
is "held kur: type" "$(req_field "$tidk" type)" kur
is "kur: answered kup with status waiting" "$(sleep 0.5; field kup-w.der body)/$(field kup-w.der status)" kup/3
is "old certificate still valid while the kur waits" "$(cert_status "$old1")" valid
check "approve the kur" cli request approve "$tidk"
is "kur: client got the renewed certificate" "$(wait_rc kur)" 0
s1=$(openssl x509 -in "$T/m1.pem" -noout -subject -nameopt RFC2253)
s2=$(openssl x509 -in "$T/m1b.pem" -noout -subject -nameopt RFC2253)
is "kur: subject kept" "$s2" "$s1"
is "kur: the renewed certificate revoked after certConf" "$(cert_status "$old1")" revoked
newkey m1c.key
rm -f "$T/cr.rc"
( mcmp manual -cmd cr -cert m1b.pem -key m1b.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey m1c.key -subject /CN=SN-000001 -certout m1c.pem \
    >"$T/cr.out" 2>&1; echo $? >"$T/cr.rc" ) &
tidc=$(pending_tid manual SN-000001) && ok "cr held" || nok "cr not held"
is "held cr: type" "$(req_field "$tidc" type)" cr
check "approve the cr" cli request approve "$tidc"
is "cr: client got an additional certificate" "$(wait_rc cr)" 0
is "cr: the renewed certificate stays valid" "$(cert_status "$(serial_of m1b.pem)")" valid
newkey p10.key
openssl req -new -key "$T/p10.key" -subj /CN=SN-000008 -out "$T/p10.csr" 2>/dev/null
rm -f "$T/p10.rc"
( mcmp manual -cmd p10cr -csr p10.csr $(dev_args SN-000008) -trusted oproot.pem \
    -certout p10.pem >"$T/p10.out" 2>&1; echo $? >"$T/p10.rc" ) &
tidp=$(pending_tid manual SN-000008) && ok "p10cr held" || nok "p10cr not held"
is "held p10cr: type" "$(req_field "$tidp" type)" p10cr
check "approve the p10cr" cli request approve "$tidp"
is "p10cr: client got its certificate" "$(wait_rc p10)" 0
is "p10cr: device enrolled" "$(dev_state SN-000008)" enrolled
check "p10cr: certificate verifies" openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/p10.pem"

# ---- rejection -----------------------------------------------------------------
c0=$(cert_count); a0=$(audit_count)
enroll_bg m2 manual SN-000002
tid2=$(pending_tid manual SN-000002) && ok "m2 held" || nok "m2 not held"
check "request reject --reason" cli request reject "$tid2" --reason "unknown site"
rc=$(wait_rc m2)
[ "$rc" != 0 ] && [ "$rc" != none ] && ok "m2: client fails after the rejection (rc $rc)" || nok "m2: rc $rc"
grep -q "badRequest" "$T/m2.out" && ok "m2: client saw failInfo badRequest" || { nok "m2: no badRequest"; diag "$T/m2.out"; }
grep -q "unknown site" "$T/m2.out" && ok "m2: client saw the operator's reason" || nok "m2: no reason text"
is "m2: nothing issued" "$(cert_count)" "$c0"
is "m2: device still registered" "$(dev_state SN-000002)" registered
is "m2: request rejected" "$(req_field "$tid2" state)" rejected
is "m2: reason stored" "$(req_field "$tid2" reason)" "unknown site"
is "m2: transaction rejected" "$(txn_state "$tid2")" 2
is "m2: audit row request.reject" "$(audit_has request.reject "$tid2")" 1
is "m2: audit rows: hold and reject only" "$(audit_count)" $((a0 + 2))
is "server still serves" "$(health)" 200

# ---- the server restarts between request and approval -----------------------------
enroll_bg m3 slow SN-000003
tid3=$(pending_tid slow SN-000003) && ok "m3 held" || nok "m3 not held"
srv_stop a; ok "server stopped while the client waits (checkAfter 5s)"
srv_start a || { echo "Bail out! restart failed"; exit 1; }
echo "$PORT_a" >"$T/target"
check "approve m3 after the restart" cli request approve "$tid3"
is "m3: client got its certificate from the restarted server" "$(wait_rc m3)" 0
is "m3: device enrolled" "$(dev_state SN-000003)" enrolled
is "m3: transaction confirmed" "$(txn_state "$tid3")" 1

# ---- two processes on one database: request at A, poll at B ---------------------
srv_start b || { echo "Bail out! server b did not start"; exit 1; }
echo "$PORT_a" >"$T/target"
enroll_bg m4 manual SN-000004
tid4=$(pending_tid manual SN-000004) && ok "m4 held at A" || nok "m4 not held"
echo "$PORT_b" >"$T/target"
check "approve m4" cli request approve "$tid4"
is "m4: client got its certificate through B" "$(wait_rc m4)" 0
is "m4: device enrolled" "$(dev_state SN-000004)" enrolled
grep -q "type=ir tid=${tid4:0:32} .*outcome=accepted" "$T/a.log" && ok "m4: ir answered by A" || nok "m4: ir not at A"
grep -q "type=pollReq tid=${tid4:0:32} .*outcome=accepted" "$T/b.log" && ok "m4: pollReq answered by B" || nok "m4: no pollReq at B"
grep -q "type=certConf tid=${tid4:0:32} .*outcome=accepted" "$T/b.log" && ok "m4: certConf at B" || nok "m4: no certConf at B"
echo "$PORT_a" >"$T/target"
PORT=$PORT_a

# ---- expiry --------------------------------------------------------------------
c0=$(cert_count)
enroll_bg m5 short SN-000005
tid5=$(pending_tid short SN-000005) && ok "m5 held (approval_timeout 3s)" || nok "m5 not held"
rc=$(wait_rc m5)
[ "$rc" != 0 ] && [ "$rc" != none ] && ok "m5: client fails once the request expired (rc $rc)" || nok "m5: rc $rc"
grep -q "badRequest" "$T/m5.out" && ok "m5: failInfo badRequest" || { nok "m5: no badRequest"; diag "$T/m5.out"; }
grep -q "not decided within approval_timeout" "$T/m5.out" && ok "m5: client saw why" || { nok "m5: no reason"; diag "$T/m5.out"; }
is "m5: request expired" "$(req_field "$tid5" state)" expired
is "m5: transaction expired" "$(txn_state "$tid5")" 3
is "m5: audit row request.expire" "$(audit_has request.expire "$tid5")" 1
is "m5: nothing issued" "$(cert_count)" "$c0"
cli request approve "$tid5" >/dev/null 2>&1
is "approving an expired request: exit 4" "$?" 4

# ---- crafted pollReqs ------------------------------------------------------------
# hold_only NAME SN: an ir of SN held on alias manual, with no client
# polling for it: the stock client's request (the client gives up at once,
# total timeout) is re-sent under a new transactionID, so that NAME-ir.der
# and its answer NAME-ip.der (status waiting) are the transaction's last
# messages
hold_only() {
    newkey "$1.key"
    mcmp manual -cmd ir $(dev_args "$2") -trusted oproot.pem -newkey "$1.key" \
        -subject "/CN=$2" -certout "$1.pem" -total_timeout 1 -reqout "$1-ir0.der" \
        >"$T/$1.out" 2>&1
    "$CRAFT" mutate --in "$T/$1-ir0.der" --new-tid --key "$T/devs/$2/key.pem" \
        --out "$T/$1-ir.der" || return 1
    [ "$(mpost "$1-ir.der" "$1-ip.der")" = 200 ] && [ -s "$T/$1-ip.der" ]
}
mpost() { post "$1" "$2" application/pkixcmp /.well-known/cmp/p/manual; }
PORT=$PORT_a
check "h6: held, client gone" hold_only h6 SN-000006
check "h7: held, client gone" hold_only h7 SN-000007
s=$(inspect h6-ip.der | head -1)
echo "$s" | grep -q "^body=ip status=3 .*protected=ok" && ok "waiting ip: status waiting, protected" || nok "waiting ip: $s"
tid6=$(field h6-ip.der tid)
pr() {  # pr OUT ARGS...: a pollReq answering h6's waiting ip, signed by SN-000006
    local out=$1; shift
    "$CRAFT" pollreq --ip "$T/h6-ip.der" --req "$T/h6-ir.der" \
        --key "$T/devs/SN-000006/key.pem" --out "$T/$out" "$@"
}
t0=$(sqlite3 "$DB" "SELECT count(*), sum(state) FROM cmp_txn"); a0=$(audit_count); c0=$(cert_count)
n0=$(sqlite3 "$DB" "SELECT hex(sender_nonce) FROM cmp_txn WHERE hex(tid)=upper('$tid6')")
pr p-nonce.der --recip-nonce-random
h=$(mpost p-nonce.der p-nonce.rsp)
expect_error "pollReq with a wrong recipNonce" "$h" 200 p-nonce.rsp badRecipientNonce
pr p-tid.der --new-tid
h=$(mpost p-tid.der p-tid.rsp)
expect_error "pollReq for an unknown transaction" "$h" 200 p-tid.rsp badRequest
pr p-crid.der --cert-req-id 5
h=$(mpost p-crid.der p-crid.rsp)
expect_error "pollReq with certReqId 5" "$h" 200 p-crid.rsp badRequest
"$CRAFT" pollreq --ip "$T/h6-ip.der" --req "$T/h7-ir.der" \
    --key "$T/devs/SN-000007/key.pem" --out "$T/p-who.der"
h=$(mpost p-who.der p-who.rsp)
expect_error "pollReq by another device" "$h" 200 p-who.rsp notAuthorized
"$CRAFT" pollreq --ip "$T/h6-ip.der" --req "$T/h6-ir.der" --no-resign \
    --key "$T/devs/SN-000006/key.pem" --out "$T/p-sig.der"
h=$(mpost p-sig.der p-sig.rsp)
expect_error "pollReq with a stale signature" "$h" 200 p-sig.rsp badMessageCheck
is "refusals changed no transaction" "$(sqlite3 "$DB" "SELECT count(*), sum(state) FROM cmp_txn")" "$t0"
is "refusals kept the nonce" "$(sqlite3 "$DB" "SELECT hex(sender_nonce) FROM cmp_txn WHERE hex(tid)=upper('$tid6')")" "$n0"
is "refusals wrote no audit row" "$(audit_count)" "$a0"
is "refusals issued nothing" "$(cert_count)" "$c0"
pr p-ok.der
h=$(mpost p-ok.der p-ok.rsp)
is "genuine pollReq: pollRep" "$h/$(field p-ok.rsp body)/$(field p-ok.rsp protected)" 200/pollRep/ok
is "pollRep: checkAfter" "$(field p-ok.rsp checkAfter)" 1
is "pollRep: certReqId 0" "$(field p-ok.rsp certReqId)" 0
is "pollRep answers the pollReq's nonce" "$(inspect p-ok.rsp --req p-ok.der | sed -n 's/^echo=//p')" ok
h=$(mpost p-ok.der p-ok2.rsp)
expect_error "the same pollReq replayed (nonce answered already)" "$h" 200 p-ok2.rsp badRecipientNonce
check "reject h6" cli request reject "$tid6" --reason "lab only"
"$CRAFT" pollreq --ip "$T/p-ok.rsp" --req "$T/h6-ir.der" \
    --key "$T/devs/SN-000006/key.pem" --out "$T/p-rej.der"
h=$(mpost p-rej.der p-rej.rsp)
expect_error "pollReq after the rejection" "$h" 200 p-rej.rsp badRequest
inspect p-rej.rsp | head -1 | grep -q "lab only" && ok "error carries the operator's reason" || nok "no reason in the error"
is "h6: transaction rejected" "$(txn_state "$tid6")" 2
h=$(mpost p-rej.der p-rej2.rsp)
expect_error "the same pollReq replayed: the same answer" "$h" 200 p-rej2.rsp badRequest
inspect p-rej2.rsp | head -1 | grep -q "lab only" && ok "replayed: the reason again" || nok "replayed: no reason"
is "replay changed nothing" "$(txn_state "$tid6")/$(req_field "$tid6" state)" 2/rejected
tid7=$(field h7-ip.der tid)
cli request list --state pending --json >"$T/pend.json"
is "request list --state pending --json: h7, not h6" "$(python3 -c 'import json,sys
t=[r["transaction_id"] for r in json.load(open(sys.argv[1]))]
print(sys.argv[2] in t, sys.argv[3] in t)' "$T/pend.json" "$tid7" "$tid6")" "True False"
cli request list --alias manual >"$T/list.txt" 2>&1
grep -q "^$tid7  pending" "$T/list.txt" && ok "request list (text)" || { nok "request list"; diag "$T/list.txt"; }
cli request show nothex >/dev/null 2>&1
is "request show with a bad TID: exit 2" "$?" 2
cli request show 00112233 >/dev/null 2>&1
is "request show of an unknown TID: exit 3" "$?" 3
is "server still serves" "$(health)" 200
kill $SW_PID 2>/dev/null

# ---- configuration errors --------------------------------------------------------
badconf() {   # badconf SED-EXPR: serve with the alias manual edited; exit + message
    sed "/^\[alias manual\]/,/^\[/ s/$1/" "$T/cmpca.conf" >"$T/bad.conf"
    (cd "$T" && timeout 20 "$CMPCA" -c "$T/bad.conf" serve >"$T/bad.out" 2>&1)
}
badconf "^approval = manual/approval = sometimes"
is "approval = sometimes: exit 7" "$?" 7
grep -q "approval must be auto or manual" "$T/bad.out" && ok "approval: message" || { nok "approval: message"; diag "$T/bad.out"; }
badconf "^check_after = 1s/check_after = 0s"
is "check_after = 0s: exit 7" "$?" 7
grep -q "check_after = 0s is outside" "$T/bad.out" && ok "check_after: message" || { nok "check_after: message"; diag "$T/bad.out"; }

e2e_done
