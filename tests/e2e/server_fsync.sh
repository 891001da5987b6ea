#!/bin/bash
# The store's fsync fails (issue 16, point 9): `cmpca serve` runs with the
# LD_PRELOAD shim tests/tools/preload/fsync_fail.c, which makes fsync(2)
# and fdatasync(2) return EIO while a trigger file exists. An ir while it
# exists is answered with a protected systemUnavail (HTTP 503) and leaves
# nothing half-written: no certificate, audit row or transaction, the device
# still registered; the server keeps serving (/health) and, once fsync
# works again, the same device enrolls. Then the server is restarted on the
# same store, which must not bring back what the failed commit wrote. Also
# a certConf whose commit fails: the certificate stays unconfirmed (no
# pkiConf). Bounded: a few seconds.
. "$(dirname "$0")/lib.sh"

SHIM=$(realpath "$BUILD/tools/fsync_fail.so" 2>/dev/null)
[ -f "$SHIM" ] || { echo "Bail out! $BUILD/tools/fsync_fail.so missing (make)"; exit 1; }
trap 'for s in $SERVERS; do srv_stop "$s"; done; e2e_cleanup' EXIT

e2e_pki 20s 5
FAIL=$T/fsync.fail
rm -f "$FAIL" "$FAIL.hits"
# the shim goes into an ASan binary after the sanitizer's runtime
export ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0"
start() {
    LD_PRELOAD=$SHIM CMPCA_FSYNC_FAIL=$FAIL srv_start "$1"
}
start main || { echo "Bail out! server did not start"; exit 1; }
sq() { sqlite3 "$T/cmpca.db" "$1"; }
hits() { [ -f "$FAIL.hits" ] && wc -c < "$FAIL.hits" | tr -d ' ' || echo 0; }

newkey k1.key
check "ir while fsync works" ocmp -cmd ir $(dev_args SN-000001) -trusted oproot.pem \
    -newkey k1.key -subject /CN=SN-000001 -certout op1.pem
is "no fsync failed yet" "$(hits)" 0
c0=$(sq 'SELECT count(*) FROM cert'); a0=$(sq 'SELECT count(*) FROM audit')
x0=$(sq 'SELECT count(*) FROM cmp_txn')

# fsync fails from now on
touch "$FAIL"; chmod 0644 "$FAIL"
newkey k2.key
ocmp -cmd ir $(dev_args SN-000002) -trusted oproot.pem -newkey k2.key \
    -subject /CN=SN-000002 -certout op2.pem -reqout ir2.der >"$T/o2.out" 2>&1
grep -q "503" "$T/o2.out" && ok "openssl cmp saw HTTP 503" \
    || { nok "no HTTP 503 for the ir while fsync fails"; diag "$T/o2.out"; }
[ ! -e "$T/op2.pem" ] && ok "no certificate delivered" || nok "a certificate was delivered"
# the same ir again, to read the answer (openssl cmp keeps no body of a 503)
h=$(post ir2.der ir2.rsp)
expect_error "ir while fsync fails" "$h" 503 ir2.rsp systemUnavail
h1=$(hits)
[ "$h1" -gt 0 ] && ok "the shim failed $h1 fsync call(s)" || nok "the shim never failed an fsync"
grep -q "store error" "$T/main.log" && ok "the server logged the store error" \
    || nok "no store error in the log"
is "/health while fsync fails" "$(health)" 200

rm -f "$FAIL"
is "nothing half-written: certificates" "$(sq 'SELECT count(*) FROM cert')" "$c0"
is "nothing half-written: audit rows" "$(sq 'SELECT count(*) FROM audit')" "$a0"
is "nothing half-written: transactions" "$(sq 'SELECT count(*) FROM cmp_txn')" "$x0"
is "SN-000002 still registered" "$(dev_state SN-000002)" registered

newkey k3.key
check "fsync works again: SN-000002 enrolls" ocmp -cmd ir $(dev_args SN-000002) \
    -trusted oproot.pem -newkey k3.key -subject /CN=SN-000002 -certout op3.pem
is "SN-000002 enrolled" "$(dev_state SN-000002)" enrolled

# a certConf whose commit fails: no pkiConf, the certificate stays
# unconfirmed; the retry (same transaction) once fsync works confirms it
check "ir of SN-000003 without certConf" ir_open SN-000003 k4.key
is "SN-000003 pending" "$(dev_state SN-000003)" pending
certconf SN-000003 cc3.der
touch "$FAIL"
h=$(post cc3.der cc3.rsp)
expect_error "certConf while fsync fails" "$h" 503 cc3.rsp systemUnavail
rm -f "$FAIL"
is "SN-000003 still pending" "$(dev_state SN-000003)" pending
h=$(post cc3.der cc3b.rsp)
is "certConf again with fsync working: pkiConf" "$h/$(field cc3b.rsp body)" 200/pkiconf
is "SN-000003 enrolled" "$(dev_state SN-000003)" enrolled

# restart on the same store: the failed commits stay undone
srv_stop main
start again || { echo "Bail out! server did not restart"; exit 1; }
is "after a restart: certificates" "$(sq 'SELECT count(*) FROM cert')" "$((c0 + 2))"
is "SQLite integrity_check" "$(sq 'PRAGMA integrity_check')" ok
check "cmpca audit verify" cli audit verify
is "/health after the restart" "$(health)" 200

# an ir fails in its commit, then the server is killed (-9): after a
# failed fsync SQLite cannot say whether the commit is durable, so WAL
# recovery may bring it back whole. Either way no certificate the client
# did not receive stays valid: the commit is undone, or its certificate is
# unconfirmed and the sweeper revokes it after confirm_wait_time (20 s).
newkey k5.key
touch "$FAIL"
ocmp -cmd ir $(dev_args SN-000004) -trusted oproot.pem -newkey k5.key \
    -subject /CN=SN-000004 -certout op4.pem >"$T/o4.out" 2>&1
[ ! -e "$T/op4.pem" ] && ok "SN-000004: no certificate while fsync fails" \
    || nok "SN-000004 got a certificate while fsync fails"
rm -f "$FAIL"
eval "kill -9 \$PID_again"
eval "wait \$PID_again" 2>/dev/null
SERVERS=""
sleep 0.5
start third || { echo "Bail out! server did not restart after kill -9"; exit 1; }
c4=$(sq "SELECT count(*) FROM cert WHERE subject LIKE '%SN-000004%'")
if [ "$c4" = 0 ]; then
    ok "after kill -9: the failed commit is undone"
else
    echo "# after kill -9: WAL recovery kept the failed commit ($c4 certificate)"
    for i in $(seq 40); do
        [ "$(sq "SELECT count(*) FROM cert WHERE subject LIKE '%SN-000004%' AND status = 0")" = 0 ] && break
        sleep 1
    done
    is "after kill -9: the sweeper revoked the certificate nobody received" \
        "$(sq "SELECT count(*) FROM cert WHERE subject LIKE '%SN-000004%' AND status = 0")" 0
fi
is "SN-000004 registered again" "$(dev_state SN-000004)" registered
check "SN-000004 enrolls" ocmp -cmd ir $(dev_args SN-000004) -trusted oproot.pem \
    -newkey k5.key -subject /CN=SN-000004 -certout op4b.pem
is "SQLite integrity_check after kill -9" "$(sq 'PRAGMA integrity_check')" ok
check "cmpca audit verify after kill -9" cli audit verify
e2e_done
