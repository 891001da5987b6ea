#!/bin/bash
# Delayed delivery on the PostgreSQL store: two `cmpca serve` processes on
# one throw-away PostgreSQL 15 database; the stock openssl cmp client's ir
# is held at A, approved with `cmpca request approve`, polled and delivered
# at B; a second request is rejected, a third survives a restart of B.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_poll.sh"

PGS=$REPO/scripts/pg-test-server.sh
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo "1..1"; echo "ok 1 # SKIP PostgreSQL 15 server binaries not installed"
    exit 0
fi
SW_PID=
# servers and switch first, then the cluster, then the temp dir
pg_cleanup() {
    local s
    [ -n "$SW_PID" ] && kill "$SW_PID" 2>/dev/null
    for s in $SERVERS; do srv_stop "$s"; done
    "$PGS" stop "$T/pg" >/dev/null 2>&1
    e2e_cleanup
}
trap pg_cleanup EXIT

CI=$("$PGS" start "$T/pg" 2>"$T/pgstart.log") ||
    { echo "Bail out! PostgreSQL did not start"; diag "$T/pgstart.log"; exit 1; }
ok "PostgreSQL test cluster started"
PASSFILE=$T/pg/password
psql_q() { PGPASSWORD=$(cat "$PASSFILE") psql "$CI" -qAt -c "$1"; }

# e2e_pki with the [store] section pointing at PostgreSQL
pki_src=$(declare -f e2e_pki | sed "s|^path = cmpca.db\$|backend = postgresql\\
conninfo = $CI\\
password = file:$PASSFILE|")
case $pki_src in
*"backend = postgresql"*) eval "$pki_src" ;;
*) echo "Bail out! could not rewrite the [store] section"; exit 1 ;;
esac
e2e_pki 300s 6
cat >>"$T/cmpca.conf" <<EOF
[alias manual]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
approval = manual
check_after = 3s
EOF
srv_start a || { echo "Bail out! server a did not start"; diag "$T/a.log"; exit 1; }
srv_start b || { echo "Bail out! server b did not start"; diag "$T/b.log"; exit 1; }
switch_start "$PORT_a"
txn_state() { psql_q "SELECT state FROM cmp_txn WHERE tid='\\x$1'::bytea"; }
pend_state() { psql_q "SELECT state FROM cmp_pending WHERE tid='\\x$1'::bytea"; }

# ---- held at A, approved, delivered at B ------------------------------------------
c0=$(cert_count)
enroll_bg m1 manual SN-000001
tid=$(pending_tid manual SN-000001) && ok "ir held at A" || nok "ir not held"
is "cmp_pending row in PostgreSQL: pending" "$(pend_state "$tid")" 0
is "transaction waiting" "$(txn_state "$tid")" 6
echo "$PORT_b" >"$T/target"
check "request approve" cli request approve "$tid"
is "client got its certificate through B" "$(wait_rc m1)" 0
check "certificate verifies" openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/m1.pem"
is "one certificate issued" "$(cert_count)" $((c0 + 1))
is "device enrolled" "$(dev_state SN-000001)" enrolled
is "request delivered" "$(pend_state "$tid")" 4
is "transaction confirmed" "$(txn_state "$tid")" 1
grep -q "type=pollReq tid=${tid:0:32} .*outcome=accepted" "$T/b.log" && ok "pollReq answered by B" || nok "no pollReq at B"
is "audit: hold and approve" "$(audit_has request.hold "$tid")/$(audit_has request.approve "$tid")" 1/1

# ---- rejected -------------------------------------------------------------------
echo "$PORT_a" >"$T/target"
c0=$(cert_count)
enroll_bg m2 manual SN-000002
tid2=$(pending_tid manual SN-000002) && ok "second ir held" || nok "second ir not held"
check "request reject" cli request reject "$tid2" --reason "wrong site"
rc=$(wait_rc m2)
[ "$rc" != 0 ] && [ "$rc" != none ] && ok "client fails after the rejection" || nok "rc $rc"
grep -q "badRequest" "$T/m2.out" && grep -q "wrong site" "$T/m2.out" &&
    ok "client saw badRequest and the reason" || { nok "failInfo or reason missing"; diag "$T/m2.out"; }
is "nothing issued" "$(cert_count)" "$c0"
is "request rejected, transaction rejected" "$(pend_state "$tid2")/$(txn_state "$tid2")" 2/2

# ---- B restarts while the request waits -------------------------------------------
echo "$PORT_b" >"$T/target"
enroll_bg m3 manual SN-000003
tid3=$(pending_tid manual SN-000003) && ok "third ir held at B" || nok "third ir not held"
echo "$PORT_a" >"$T/target"
srv_stop b; ok "B stopped"
srv_start b || { echo "Bail out! restart failed"; exit 1; }
echo "$PORT_b" >"$T/target"
check "approve after the restart" cli request approve "$tid3"
is "client got its certificate from the restarted B" "$(wait_rc m3)" 0
is "device enrolled" "$(dev_state SN-000003)" enrolled
check "audit chain intact" cli audit verify
is "server still serves" "$(PORT=$PORT_b health)" 200

e2e_done
