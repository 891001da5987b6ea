#!/bin/bash
# Delayed delivery, the edges: decisions nobody fetched (an approval lapses,
# a rejection closes, both purged after txn_retention; a lapsed approval
# polled before any sweep is refused too), held requests
# counted toward enroll_max_pending, held requests of an RA (RA-signed ir
# with the stock openssl cmp as the RA polling on its own; a device's
# nested ir polled by the RA's own pollReq), and the re-checks at delivery
# (vendor disabled, RA disabled or revoked, device disabled) refused with
# the failInfo a fresh request gets, nothing issued.
# shellcheck disable=SC2046
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_poll.sh"

NEST=$(realpath "$BUILD/tools/cmpnest")
e2e_pki 300s 16
sed -i 's/^sweep_interval = 1s$/sweep_interval = 1s\ntxn_retention = 4s/' "$T/cmpca.conf"
cat >>"$T/cmpca.conf" <<EOF
[alias lapse]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
approval = manual
check_after = 1s
approval_timeout = 3s
[alias lim]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
approval = manual
check_after = 1s
enroll_max_pending = 1
[alias manual]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
approval = manual
check_after = 1s
[alias vhold]
mode = 3gpp
ca = issuing
profile = device
vendors = beta
approval = manual
check_after = 1s
[alias rahold]
mode = ra
ca = issuing
profile = radev
vendors = acme
approval = manual
check_after = 1s
ra_trust = issuing
[alias rasetup]
mode = 3gpp
ca = issuing
profile = racert
vendors = acme
[profile radev]
validity = 30d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
[profile racert]
validity = 30d
subject = CN=RA \${vendor.serialNumber},O=Operator
key_usage = digitalSignature
ext_key_usage = 1.3.6.1.5.5.7.3.28,clientAuth
EOF
{
    cli factory ca create --dir vendor2 --name Beta &&
    cli factory issue --dir vendor2 --out devs2 --count 2 --prefix BT- --quiet &&
    cli vendor add --name beta --ca vendor2/vendor-chain.pem &&
    cli device import --vendor beta devs2/allowlist.csv
} >"$T/beta.log" 2>&1 || { echo "Bail out! second vendor"; diag "$T/beta.log"; exit 1; }
serve_user_own "$T"
srv_start a || { echo "Bail out! server did not start"; diag "$T/a.log"; exit 1; }
DB=$T/cmpca.db
switch_start "$PORT_a"
trap 'kill $SW_PID 2>/dev/null; e2e_cleanup' EXIT
txn_state() { sqlite3 "$DB" "SELECT state FROM cmp_txn WHERE hex(tid)=upper('$1')"; }
pend_rows() { sqlite3 "$DB" "SELECT count(*) FROM cmp_pending WHERE hex(tid)=upper('$1')"; }
# wait_for DESC EXPR WANT: polls (bounded, 15 s) until $(EXPR) is WANT
wait_for() {
    local i v
    for i in $(seq 150); do
        v=$(eval "$2"); [ "$v" = "$3" ] && break; sleep 0.1
    done
    is "$1" "$v" "$3"
}
# hold_bare NAME ALIAS SN: an ir of SN held on ALIAS whose client gave up
# at once (total timeout): the transaction is never polled again; prints
# the transactionID
hold_bare() {
    newkey "$1.key"
    (cd "$T" && timeout 30 openssl cmp -server "127.0.0.1:$PORT_a" \
        -path ".well-known/cmp/p/$2" -cmd ir $(dev_args "$3") -trusted oproot.pem \
        -newkey "$1.key" -subject "/CN=$3" -certout "$1.pem" -total_timeout 1 \
        -reqout "$1-ir.der" -rspout "$1-ip.der" >"$T/$1.out" 2>&1)
    field "$1-ip.der" tid
}

# ---- 1. decided, never polled again: closed after approval_timeout ---------------
c0=$(cert_count)
tid1=$(hold_bare l1 lapse SN-000001)
is "l1 held (waiting ip)" "$(field l1-ip.der body)/$(field l1-ip.der status)" ip/3
check "approve l1 (its client is gone)" cli request approve "$tid1"
tid2=$(hold_bare l2 lapse SN-000002)
check "reject l2 (its client is gone)" cli request reject "$tid2" --reason "not here"
is "l1 approved, transaction still waiting" "$(req_field "$tid1" state)/$(txn_state "$tid1")" approved/6
wait_for "l1: the approval lapsed (request expired)" "req_field $tid1 state 2>/dev/null" expired
is "l1: transaction expired" "$(txn_state "$tid1")" 3
is "l1: audit row request.lapse by the sweeper" "$(audit_has request.lapse "$tid1")" 1
wait_for "l2: transaction closed as rejected" "txn_state $tid2" 2
is "l2: request stays rejected" "$(req_field "$tid2" state)" rejected
is "l2: audit row request.close" "$(audit_has request.close "$tid2")" 1
is "nothing issued for l1 and l2" "$(cert_count)" "$c0"
is "SN-000001 still registered" "$(dev_state SN-000001)" registered
wait_for "l1: purged after txn_retention (transaction and held request)" \
    "echo \$(txn_state $tid1)/\$(pend_rows $tid1)" /0
wait_for "l2: purged after txn_retention" "echo \$(txn_state $tid2)/\$(pend_rows $tid2)" /0
is "server still serves" "$(health)" 200

# ---- 2. held requests count toward enroll_max_pending --------------------------------
tid3=$(hold_bare q3 lim SN-000003)
is "q3: first ir held" "$(field q3-ip.der status)" 3
"$CRAFT" mutate --in "$T/q3-ir.der" --new-tid --key "$T/devs/SN-000003/key.pem" \
    --out "$T/q3b-ir.der"
n0=$(sqlite3 "$DB" "SELECT count(*) FROM cmp_pending"); a0=$(audit_count)
h=$(post q3b-ir.der q3b-ip.der application/pkixcmp /.well-known/cmp/p/lim)
expect_error "a second held ir of the same device beyond enroll_max_pending = 1" \
    "$h" 200 q3b-ip.der notAuthorized
inspect q3b-ip.der | head -1 | grep -q "enroll_max_pending" && ok "the refusal names the limit" \
    || nok "the refusal does not name the limit"
is "nothing more held" "$(sqlite3 "$DB" "SELECT count(*) FROM cmp_pending")" "$n0"
is "no audit row" "$(audit_count)" "$a0"
tid4=$(hold_bare q4 lim SN-000004)
is "another device is held (the limit is per requester)" "$(field q4-ip.der status)" 3

# ---- 3. an RA's requests held: RA-signed ir, the stock client polls ---------------
ra_cert() {
    newkey "$2.key"
    (cd "$T" && timeout 30 openssl cmp -server "127.0.0.1:$PORT_a" \
        -path .well-known/cmp/p/rasetup -cmd ir $(dev_args "$1") -trusted oproot.pem \
        -newkey "$2.key" -subject "/CN=RA" -certout "$2.pem") >"$T/o.out" 2>&1
}
check "RA certificate ra1" ra_cert SN-000010 ra1
check "RA certificate ra2" ra_cert SN-000011 ra2
check "RA certificate ra3" ra_cert SN-000012 ra3
for r in ra1 ra2 ra3; do
    check "ra add $r" cli ra add --name "$r" --cert "$r.pem" --alias rahold
done
# ra_bg NAME RA CN: an RA-signed ir for CN in the background, through the
# switch (the client polls on its own); NAME.out, NAME.rc
ra_bg() {
    newkey "$1.key"
    rm -f "$T/$1.rc"
    ( mcmp rahold -cmd ir -cert "$2.pem" -key "$2.key" -extracerts opchain.pem \
        -trusted oproot.pem -newkey "$1.key" -subject "/CN=$3" -certout "$1.pem" \
        >"$T/$1.out" 2>&1; echo $? >"$T/$1.rc" ) &
}
c0=$(cert_count)
ra_bg r1 ra1 dev-1
tidr1=$(pending_tid rahold dev-1) && ok "RA ir held" || nok "RA ir not held"
is "held RA ir: requester names the RA" "$(req_field "$tidr1" requester)" "cmp:rahold:ra=ra1:dev-1"
is "nothing issued while pending" "$(cert_count)" "$c0"
sleep 1.5
[ "$(polls_of "$tidr1")" -ge 1 ] && ok "the RA polled (pollRep)" || nok "no pollReq of the RA seen"
check "approve the RA's request" cli request approve "$tidr1"
is "r1: the RA got the certificate" "$(wait_rc r1)" 0
is "r1: subject from the request" \
    "$(openssl x509 -in "$T/r1.pem" -noout -subject -nameopt RFC2253 2>/dev/null)" \
    "subject=CN=dev-1,O=Operator"
is "r1: delivered, confirmed by the RA" "$(req_field "$tidr1" state)/$(txn_state "$tidr1")" delivered/1

# ---- 3b. a device's nested ir held; the RA polls with its own pollReq ---------------
dev_req() {
    newkey "k$1.key"
    (cd "$T" && timeout 30 openssl cmp -server "127.0.0.1:$PORT_a" -path .well-known/cmp/p/nosuch \
        -cmd ir $(dev_args "$1") -trusted oproot.pem -newkey "k$1.key" -subject "/CN=$1" \
        -certout "x$1.pem" -reqout "$2") >/dev/null 2>&1
    [ -s "$T/$2" ]
}
rapost() { post "$1" "$2" application/pkixcmp /.well-known/cmp/p/rahold; }
check "device SN-000007's ir" dev_req SN-000007 n7.der
"$NEST" wrap --in "$T/n7.der" --out "$T/w7.der" --cert "$T/ra1.pem" --key "$T/ra1.key" \
    --chain "$T/opchain.pem"
PORT=$PORT_a
h=$(rapost w7.der w7.rsp)
is "nested ir held: inner ip waiting" "$h/$(field w7.rsp body)/$(field w7.rsp status)" 200/ip/3
tid7=$(field w7.rsp tid)
rapoll() {  # rapoll RA RSP OUT: the RA's own pollReq answering RSP
    "$CRAFT" pollreq --ip "$T/$2" --req "$T/n7.der" --key "$T/$1.key" --signer "$T/$1.pem" \
        --chain "$T/opchain.pem" --out "$T/$3"
}
rapoll ra2 w7.rsp p7x.der
h=$(rapost p7x.der p7x.rsp)
expect_error "pollReq of another RA of the alias" "$h" 200 p7x.rsp notAuthorized
rapoll ra1 w7.rsp p7a.der
h=$(rapost p7a.der p7a.rsp)
is "the forwarding RA's pollReq: pollRep" "$h/$(field p7a.rsp body)/$(field p7a.rsp protected)" 200/pollRep/ok
check "approve the nested request" cli request approve "$tid7"
rapoll ra1 p7a.rsp p7b.der
h=$(rapost p7b.der p7b.rsp)
is "the RA's next pollReq: ip with the certificate" "$h/$(field p7b.rsp body)/$(field p7b.rsp status)" 200/ip/0
"$CRAFT" certconf --ip "$T/p7b.rsp" --req "$T/n7.der" --key "$T/devs/SN-000007/key.pem" \
    --out "$T/cc7.der"
"$NEST" wrap --in "$T/cc7.der" --out "$T/wcc7.der" --cert "$T/ra1.pem" --key "$T/ra1.key" \
    --chain "$T/opchain.pem"
h=$(rapost wcc7.der wcc7.rsp)
is "the device's nested certConf: pkiConf" "$h/$(field wcc7.rsp body)" 200/pkiconf
is "SN-000007 enrolled through the RA" "$(dev_state SN-000007)" enrolled

# ---- 4. re-checks at delivery ----------------------------------------------------------
# ra_denied NAME RA CN FAILINFO WHAT CMD...: an RA's request held, CMD run,
# approved: the client is refused with FAILINFO, nothing issued
ra_denied() {
    local name=$1 ra=$2 cn=$3 fi=$4 what=$5 tid rc c0; shift 5
    c0=$(cert_count)
    ra_bg "$name" "$ra" "$cn"
    tid=$(pending_tid rahold "$cn") || { nok "$what: not held"; return; }
    "$@" >"$T/.out" 2>&1 || { nok "$what: $*"; diag "$T/.out"; }
    cli request approve "$tid" >/dev/null 2>&1
    rc=$(wait_rc "$name")
    [ "$rc" != 0 ] && [ "$rc" != none ] && grep -q "$fi" "$T/$name.out" \
        && ok "$what: the RA is refused, $fi (rc $rc)" || { nok "$what: rc $rc"; diag "$T/$name.out"; }
    is "$what: nothing issued" "$(cert_count)" "$c0"
    is "$what: the transaction still waits" "$(txn_state "$tid")" 6
}
ra_denied r2 ra2 dev-2 notAuthorized "RA disabled after the request" cli ra disable ra2
ra_denied r3 ra3 dev-3 signerNotTrusted "RA certificate revoked after the request" \
    cli cert revoke --ca issuing --serial "$(serial_of ra3.pem)" --reason keyCompromise

# the vendor of a held device request is disabled before delivery
c0=$(cert_count)
newkey b1.key
rm -f "$T/b1.rc"
( mcmp vhold -cmd ir -cert devs2/BT-000001/cert.pem -key devs2/BT-000001/key.pem \
    -extracerts devs2/BT-000001/chain.pem -trusted oproot.pem -newkey b1.key \
    -subject /CN=BT-000001 -certout b1.pem >"$T/b1.out" 2>&1; echo $? >"$T/b1.rc" ) &
tidb=$(pending_tid vhold BT-000001) && ok "BT-000001 held" || nok "BT-000001 not held"
check "vendor disable beta" cli vendor disable beta
sleep 1.5                               # the sweeper reloads the vendors
check "approve BT-000001" cli request approve "$tidb"
rc=$(wait_rc b1)
[ "$rc" != 0 ] && [ "$rc" != none ] && grep -q signerNotTrusted "$T/b1.out" \
    && ok "vendor disabled: refused at delivery, signerNotTrusted (rc $rc)" \
    || { nok "vendor disabled: rc $rc"; diag "$T/b1.out"; }
is "vendor disabled: nothing issued" "$(cert_count)" "$c0"
is "BT-000001 still registered" "$(cli device show --vendor beta BT-000001 --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" registered

# a held device disabled before delivery (the check that existed)
c0=$(cert_count)
enroll_bg d6 manual SN-000006
tidd=$(pending_tid manual SN-000006) && ok "SN-000006 held" || nok "SN-000006 not held"
check "device disable SN-000006" cli device disable --vendor acme SN-000006
check "approve SN-000006" cli request approve "$tidd"
rc=$(wait_rc d6)
[ "$rc" != 0 ] && [ "$rc" != none ] && grep -q notAuthorized "$T/d6.out" \
    && ok "device disabled: refused at delivery, notAuthorized (rc $rc)" \
    || { nok "device disabled: rc $rc"; diag "$T/d6.out"; }
is "device disabled: nothing issued" "$(cert_count)" "$c0"
is "server still serves" "$(health)" 200
kill $SW_PID 2>/dev/null

# ---- 1b. the pollReq of a lapsed approval comes before any sweep ----------------------
c0=$(cert_count)
# the stock client may poll before it gives up: the ir again under a new
# transactionID, so that l8b-ip.der is the transaction's last answer
hold_bare l8 lapse SN-000008 >/dev/null
"$CRAFT" mutate --in "$T/l8-ir.der" --new-tid --key "$T/devs/SN-000008/key.pem" \
    --out "$T/l8b-ir.der"
h=$(post l8b-ir.der l8b-ip.der application/pkixcmp /.well-known/cmp/p/lapse)
is "l8 held (waiting ip)" "$h/$(field l8b-ip.der status)" 200/3
tid8=$(field l8b-ip.der tid)
check "approve l8" cli request approve "$tid8"
srv_stop a
sed -i 's/^sweep_interval = 1s$/sweep_interval = 3600s/' "$T/cmpca.conf"
# approval_timeout (3s) after the decision, counted in whole seconds: a
# decision at x.0 lapses after 4 s
sleep 4.5
srv_start a || { echo "Bail out! restart failed"; exit 1; }
"$CRAFT" pollreq --ip "$T/l8b-ip.der" --req "$T/l8b-ir.der" --key "$T/devs/SN-000008/key.pem" \
    --out "$T/p8.der"
h=$(post p8.der p8.rsp application/pkixcmp /.well-known/cmp/p/lapse)
expect_error "pollReq after the approval lapsed, before any sweep" "$h" 200 p8.rsp badRequest
inspect p8.rsp | head -1 | grep -q "approval lapsed" && ok "the error says the approval lapsed" \
    || nok "the error does not say the approval lapsed"
is "l8: request and transaction expired" "$(req_field "$tid8" state)/$(txn_state "$tid8")" expired/3
is "l8: audit row request.lapse" "$(audit_has request.lapse "$tid8")" 1
is "l8: nothing issued" "$(cert_count)" "$c0"
h=$(post p8.der p8b.rsp application/pkixcmp /.well-known/cmp/p/lapse)
expect_error "the same pollReq again: the same refusal" "$h" 200 p8b.rsp badRequest
is "server still serves" "$(health)" 200

e2e_done
