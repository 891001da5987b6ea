#!/bin/bash
# Transaction state of `cmpca serve` kept in the store: certConf after a
# server restart, ir and certConf on two server processes sharing one SQLite
# file, concurrent enrollments, replayed and unknown certConf, and the
# sweeper revoking certificates whose certConf never came.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 21

# ---- restart between ip and certConf ------------------------------------------------
srv_start a || { echo "Bail out! server did not start"; exit 1; }
check "ir (no certConf) on the first server" ir_open SN-000001 k1.key
is "SN-000001 pending" "$(dev_state SN-000001)" pending
srv_stop a
is "server exits 0 on SIGTERM" $? 0
srv_start a || { echo "Bail out! restart failed"; exit 1; }
certconf SN-000001 cc1.der
h=$(post cc1.der cc1.rsp)
is "certConf after a restart: HTTP 200" "$h" 200
is "certConf after a restart: pkiConf" "$(field cc1.rsp body)" pkiconf
is "certConf after a restart: protected" "$(field cc1.rsp protected)" ok
is "SN-000001 enrolled" "$(dev_state SN-000001)" enrolled
is "certificate valid" "$(cert_status "$(serial_of op-SN-000001.pem)")" valid

# ---- replay and unknown transaction -------------------------------------------------
n0=$(audit_count); c0=$(cert_count)
h=$(post cc1.der cc1b.rsp)
is "replayed certConf: pkiConf again" "$h/$(field cc1b.rsp body)" 200/pkiconf
is "replayed certConf: no audit row" "$(audit_count)" "$n0"
is "replayed certConf: no certificate" "$(cert_count)" "$c0"
certconf SN-000001 ccrej.der --reject
h=$(post ccrej.der ccrej.rsp)
expect_error "rejecting certConf after an accepting one" "$h" 200 ccrej.rsp badRequest
is "certificate still valid" "$(cert_status "$(serial_of op-SN-000001.pem)")" valid
certconf SN-000001 ccunk.der --new-tid
h=$(post ccunk.der ccunk.rsp)
expect_error "certConf for an unknown transaction" "$h" 200 ccunk.rsp badRequest
is "unknown certConf: no audit row" "$(audit_count)" "$n0"

# ---- the device rejects its certificate --------------------------------------------
check "ir (no certConf) for SN-000002" ir_open SN-000002 k2.key
certconf SN-000002 cc2rej.der --reject
h=$(post cc2rej.der cc2rej.rsp)
is "certConf with status rejection: pkiConf" "$h/$(field cc2rej.rsp body)" 200/pkiconf
is "rejected certificate revoked" "$(cert_status "$(serial_of op-SN-000002.pem)")" revoked
is "SN-000002 back to registered" "$(dev_state SN-000002)" registered
h=$(post cc2rej.der cc2rej2.rsp)
is "replayed rejection: pkiConf" "$h/$(field cc2rej2.rsp body)" 200/pkiconf
newkey k2b.key
check "SN-000002 can enroll again" ocmp -cmd ir $(dev_args SN-000002) -trusted oproot.pem \
    -newkey k2b.key -subject /CN=SN-000002 -certout op2b.pem

# ---- the client gives up with an error message ---------------------------------------
check "ir (no certConf) for SN-000014" ir_open SN-000014 k14.key
certconf SN-000014 err14.der --error-msg
h=$(post err14.der err14.rsp)
is "error message from the client: pkiConf" "$h/$(field err14.rsp body)" 200/pkiconf
is "error message: certificate revoked" "$(cert_status "$(serial_of op-SN-000014.pem)")" revoked
is "error message: SN-000014 back to registered" "$(dev_state SN-000014)" registered

# ---- two processes on one store -----------------------------------------------------
srv_start b || { echo "Bail out! second server did not start"; exit 1; }
two_server_checks SN-000003 k3.key 4

# racing accept (on A) and reject (on B) of one transaction, four times
for i in 04 05 06 07; do
    sn=SN-0000$((10#$i + 11))
    PORT=$PORT_a; ir_open "$sn" "kr$i.key" || nok "ir for $sn"
    certconf "$sn" "ra$i.der"
    certconf "$sn" "rr$i.der" --reject
done
pids=""
for i in 04 05 06 07; do
    ( PORT=$PORT_a; post "ra$i.der" "ra$i.rsp" >"$T/ra$i.h" ) &
    pids="$pids $!"
    ( PORT=$PORT_b; post "rr$i.der" "rr$i.rsp" >"$T/rr$i.h" ) &
    pids="$pids $!"
done
wait $pids   # never a bare wait: the servers are children too
for i in 04 05 06 07; do
    sn=SN-0000$((10#$i + 11))
    a=$(cat "$T/ra$i.h")/$(field "ra$i.rsp" body); r=$(cat "$T/rr$i.h")/$(field "rr$i.rsp" body)
    st=$(dev_state "$sn"); cs=$(cert_status "$(serial_of "op-$sn.pem")")
    case "$a|$r|$st|$cs" in
    "200/pkiconf|200/error|enrolled|valid"|"200/error|200/pkiconf|registered|revoked")
        ok "race on $sn: one winner, consistent state ($a $r $st $cs)";;
    *)  nok "race on $sn: accept=$a reject=$r device=$st cert=$cs";;
    esac
done

# the same ir bytes on A and B at once, and two different irs of one device at once
c0=$(cert_count)
"$CRAFT" mutate --in "$T/ir-SN-000001.der" --signer "$T/devs/SN-000020/cert.pem" \
    --chain "$T/devs/SN-000020/chain.pem" --key "$T/devs/SN-000020/key.pem" --new-tid \
    --out "$T/dup.der"
( PORT=$PORT_a; post dup.der dupa.rsp >"$T/dupa.h" ) & p1=$!
( PORT=$PORT_b; post dup.der dupb.rsp >"$T/dupb.h" ) & p2=$!
wait $p1 $p2
bodies=$(printf '%s\n' "$(field dupa.rsp body)" "$(field dupb.rsp body)" | sort | tr '\n' ' ')
is "same ir on two servers at once: one ip, one error" "$bodies" "error ip "
is "same ir on two servers at once: one certificate" "$(cert_count)" $((c0 + 1))
for x in a b; do
    "$CRAFT" mutate --in "$T/ir-SN-000001.der" --signer "$T/devs/SN-000021/cert.pem" \
        --chain "$T/devs/SN-000021/chain.pem" --key "$T/devs/SN-000021/key.pem" --new-tid \
        --out "$T/two$x.der"
done
ok_before=$(cli cert list --json | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c.get("device_id") and c["status"]=="valid"))')
( PORT=$PORT_a; post twoa.der twoa.rsp >/dev/null ) & p1=$!
( PORT=$PORT_b; post twob.der twob.rsp >/dev/null ) & p2=$!
wait $p1 $p2
for x in a b; do [ "$(field two$x.rsp body)" = ip ] && inspect "two$x.rsp" --certout "$T/two$x.pem" >/dev/null; done
valid=0
for x in a b; do
    [ -f "$T/two$x.pem" ] && [ "$(cert_status "$(serial_of two$x.pem)")" = valid ] && valid=$((valid + 1))
done
is "two irs of SN-000021 at once: exactly one unconfirmed certificate stays valid" "$valid" 1
is "SN-000021 pending" "$(dev_state SN-000021)" pending
srv_stop b

# ---- kur rejected by the device: old certificate stays ------------------------------
PORT=$PORT_a
newkey k3b.key
ocmp -cmd kur -disable_confirm -cert op-SN-000003.pem -key k3.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey k3b.key -certout op3b.pem -reqout kur3.der -rspout kup3.der \
    >"$T/o.out" 2>&1
"$CRAFT" certconf --ip "$T/kup3.der" --req "$T/kur3.der" --key "$T/k3.key" --reject --out "$T/kcc3.der"
h=$(post kcc3.der kcc3.rsp)
is "kur certConf rejecting: pkiConf" "$h/$(field kcc3.rsp body)" 200/pkiconf
is "rejected kur certificate revoked" "$(cert_status "$(serial_of op3b.pem)")" revoked
is "old certificate still valid" "$(cert_status "$(serial_of op-SN-000003.pem)")" valid
is "SN-000003 still enrolled" "$(dev_state SN-000003)" enrolled

# ---- store locked by another process: 503 + protected systemUnavail ----------------
PORT=$PORT_a
"$CRAFT" mutate --in "$T/ir-SN-000001.der" --signer "$T/devs/SN-000019/cert.pem" \
    --chain "$T/devs/SN-000019/chain.pem" --key "$T/devs/SN-000019/key.pem" --new-tid \
    --out "$T/busy.der"
c0=$(cert_count)
rm -f "$T/locked"
python3 -c "
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute('BEGIN EXCLUSIVE'); c.execute('SELECT count(*) FROM sqlite_master').fetchall()
open(sys.argv[2], 'w').write('locked'); time.sleep(8); c.execute('ROLLBACK')" \
    "$T/cmpca.db" "$T/locked" 2>"$T/locker.err" &
lockpid=$!
# the server's own writers (sweeper, checkpointer) may hold the lock for a
# moment: wait until the helper really holds it, or say why not
for i in $(seq 300); do [ -f "$T/locked" ] && break; sleep 0.1; done
[ -f "$T/locked" ] && ok "a second process holds the store's write lock" \
    || nok "the lock holder never took the write lock: $(tail -1 "$T/locker.err")"
h=$(post busy.der busy.rsp)
expect_error "ir while another process holds the store's write lock" "$h" 503 busy.rsp systemUnavail
is "store locked: /health still answers" "$(health)" 200
wait $lockpid
is "store locked: nothing issued" "$(cert_count)" "$c0"
is "store locked: SN-000019 still registered" "$(dev_state SN-000019)" registered
h=$(post busy.der busy2.rsp)
is "the same ir retried after the lock: ip" "$h/$(field busy2.rsp body)" 200/ip
is "SN-000019 pending" "$(dev_state SN-000019)" pending

# ---- a new ir supersedes a pending one (lost ip) -------------------------------------
check "a new ir from the pending SN-000019 (ip lost)" ir_open SN-000019 k19.key
is "the unconfirmed certificate of the lost ip is revoked" \
    "$(cert_status "$(inspect busy2.rsp --certout "$T/busy2.pem" >/dev/null; serial_of busy2.pem)")" revoked
"$CRAFT" certconf --ip "$T/busy2.rsp" --req "$T/busy.der" --key "$T/devs/SN-000019/key.pem" \
    --out "$T/ccbusy.der"
h=$(post ccbusy.der ccbusy.rsp)
expect_error "certConf for the superseded transaction" "$h" 200 ccbusy.rsp badRequest
certconf SN-000019 cc19.der
h=$(post cc19.der cc19.rsp)
is "certConf for the new transaction: pkiConf" "$h/$(field cc19.rsp body)" 200/pkiconf
is "SN-000019 enrolled" "$(dev_state SN-000019)" enrolled

# ---- sweeper ------------------------------------------------------------------------
srv_stop a
sed -i 's/^confirm_wait_time = .*/confirm_wait_time = 2s/' "$T/cmpca.conf"
srv_start a || { echo "Bail out! restart failed"; exit 1; }
srv_start b || { echo "Bail out! second server did not start"; exit 1; }
PORT=$PORT_a
t0=$(date +%s.%N)
check "ir whose certConf never comes (SN-000012)" ir_open SN-000012 k12.key
is "SN-000012 pending" "$(dev_state SN-000012)" pending
cw=$(field ip-SN-000012.der confirmWaitTime)
[ -n "$cw" ] && ok "ip announces confirmWaitTime ($cw)" || nok "no confirmWaitTime"
na=$(audit_count)
for i in $(seq 80); do
    [ "$(dev_state SN-000012)" = registered ] && break
    sleep 0.1
done
st=$(dev_state SN-000012)
el=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
is "after the deadline the sweeper returns SN-000012 to registered (${el} s)" "$st" registered
python3 -c "import sys; sys.exit(0 if 1.9 <= $el <= 6 else 1)" \
    && ok "expiry between confirmWaitTime and confirmWaitTime + sweep_interval + slack ($el s)" \
    || nok "expiry after $el s (confirm_wait_time 2s, sweep_interval 1s)"
s12=$(serial_of op-SN-000012.pem)
is "unconfirmed certificate revoked" "$(cert_status "$s12")" revoked
cli cert show --serial "$s12" --json >"$T/show12.json" 2>&1
grep -q -i "cessation" "$T/show12.json" && ok "revocation reason cessationOfOperation" \
    || { nok "revocation reason"; diag "$T/show12.json"; }
sleep 2   # let both sweepers run again
nrev=$(cli audit list --limit 0 --json | python3 -c '
import json,sys
print(sum(1 for r in json.load(sys.stdin) if "revoke" in r["action"] and r.get("object","").lower().lstrip("0")==sys.argv[1].lstrip("0")))' "$s12")
is "two sweepers revoked it once (audit rows)" "$nrev" 1
c=$(grep -h "sweep: certificate" "$T/a.log" "$T/b.log" | wc -l)
is "exactly one sweep log line for it" "$c" 1
certconf SN-000012 cc12.der
h=$(post cc12.der cc12.rsp)
expect_error "certConf after the sweeper expired the transaction" "$h" 200 cc12.rsp badRequest
is "late certConf: SN-000012 still registered" "$(dev_state SN-000012)" registered
is "late certConf: certificate still revoked" "$(cert_status "$s12")" revoked
newkey k12b.key
check "SN-000012 can enroll again" ocmp -cmd ir $(dev_args SN-000012) -trusted oproot.pem \
    -newkey k12b.key -subject /CN=SN-000012 -certout op12b.pem
is "SN-000012 enrolled" "$(dev_state SN-000012)" enrolled

# a certConf just before the deadline still counts
check "ir (no certConf) for SN-000013" ir_open SN-000013 k13.key
certconf SN-000013 cc13.der
h=$(post cc13.der cc13.rsp)
is "certConf within confirmWaitTime: pkiConf" "$h/$(field cc13.rsp body)" 200/pkiconf
sleep 3
is "confirmed certificate survives the sweeper" "$(cert_status "$(serial_of op-SN-000013.pem)")" valid
is "SN-000013 stays enrolled" "$(dev_state SN-000013)" enrolled

check "audit trail intact" cli audit verify
e2e_done
