# The crash test shared by server_crash.sh (SQLite) and server_crash_pg.sh
# (PostgreSQL), sourced after lib.sh and e2e_pki (issue 16, point 9):
# four workers enroll devices with the stock openssl cmp client (every
# third ir without certConf) while the server is killed with SIGKILL
# CRASH_KILLS times at random 1.5-3.5 s intervals and restarted on the one
# store; then the sweeper runs and the store is checked:
#  - every certificate a client received is in the store;
#  - serials are unique;
#  - every certificate received without certConf ends revoked, and every
#    unrevoked certificate has a confirmed transaction, none waits;
#  - `cmpca audit verify` passes.
# The caller runs its backend's own integrity check. Needs: crash_sql SQL
# (prints the rows of a query, '|'-separated).
# shellcheck shell=bash

CRASH_KILLS=${CRASH_KILLS:-10}
WORKERS=""

crash_stop_workers() {
    local p
    touch "$T/stop"
    for p in $WORKERS; do wait "$p" 2>/dev/null; done
    WORKERS=""
}

# crash_worker W FIRST COUNT: enrolls devices SN-FIRST..SN-FIRST+COUNT-1 in
# turn until $T/stop exists; received certificates go to got/W-N.pem and
# are listed in got/confirmed or got/unconfirmed.
crash_worker() {
    local w=$1 first=$2 cnt=$3 n=0 sn port opt list
    while [ ! -e "$T/stop" ]; do
        sn=$(printf 'SN-%06d' $((first + n % cnt)))
        n=$((n + 1))
        port=$(cat "$T/main.port" 2>/dev/null)
        [ -n "$port" ] || { sleep 0.2; continue; }
        if [ $((n % 3)) = 0 ]; then opt=-disable_confirm list=unconfirmed
        else opt="" list=confirmed; fi
        newkey "w$w-$n.key"
        if (cd "$T" && timeout 10 openssl cmp -server "127.0.0.1:$port" -path "$ALIAS_PATH" \
                -cmd ir $opt $(dev_args "$sn") -trusted oproot.pem -newkey "w$w-$n.key" \
                -subject "/CN=$sn" -certout "got/$w-$n.pem" -msg_timeout 8 \
                >/dev/null 2>&1); then
            echo "got/$w-$n.pem" >>"$T/got/$list"
        else
            rm -f "$T/got/$w-$n.pem"
        fi
        rm -f "$T/w$w-$n.key"
    done
}

crash_run() {
    local i w pid t0
    mkdir -p "$T/got"
    : >"$T/got/confirmed"; : >"$T/got/unconfirmed"
    rm -f "$T/stop"
    srv_start main || { echo "Bail out! server did not start"; exit 1; }
    for w in 1 2 3 4; do
        crash_worker "$w" $(((w - 1) * 5 + 1)) 5 &
        WORKERS="$WORKERS $!"
    done
    t0=$(date +%s)
    for i in $(seq "$CRASH_KILLS"); do
        sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 1.5 + (r % 21) / 10 }')"
        eval "pid=\$PID_main"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        PID_main=
        rm -f "$T/main.port"
        srv_start main || { nok "restart $i after kill -9"; break; }
    done
    sleep 2
    crash_stop_workers
    ok "$CRASH_KILLS kill -9 under load in $(( $(date +%s) - t0 )) s, restarted each time"
    echo "# received: $(wc -l <"$T/got/confirmed") with certConf, $(wc -l <"$T/got/unconfirmed") without"
    if [ "$(wc -l <"$T/got/confirmed")" -ge 10 ] && [ "$(wc -l <"$T/got/unconfirmed")" -ge 3 ]; then
        ok "enrollments succeeded between the kills"
    else
        nok "too few enrollments succeeded"
    fi
    # the sweeper revokes what was not confirmed in time (confirm_wait_time)
    sleep "${CRASH_SWEEP_WAIT:-8}"
    is "/health after the kills" "$(health)" 200
    srv_stop main
    ! grep -q -E "AddressSanitizer|LeakSanitizer|runtime error:" "$T/main.log" \
        || nok "sanitizer report in main.log"
}

crash_check() {
    local c
    cli cert list --json >"$T/certs.json" || nok "cert list"
    for c in $(cat "$T/got/confirmed" "$T/got/unconfirmed"); do
        openssl x509 -in "$T/$c" -noout -serial | sed 's/serial=//'
    done >"$T/got/serials"
    cut -c1- "$T/got/unconfirmed" | while read -r c; do
        openssl x509 -in "$T/$c" -noout -serial | sed 's/serial=//'
    done >"$T/got/unconf-serials"
    python3 - "$T/certs.json" "$T/got/serials" "$T/got/unconf-serials" >"$T/check.out" <<'PY'
import json, sys
certs = json.load(open(sys.argv[1]))
norm = lambda s: s.lower().lstrip('0')
store = {}
for c in certs:
    store.setdefault(norm(c['serial']), []).append(c)
got = [norm(l.strip()) for l in open(sys.argv[2]) if l.strip()]
unconf = [norm(l.strip()) for l in open(sys.argv[3]) if l.strip()]
missing = [s for s in got if s not in store]
dups = [s for s, v in store.items() if len(v) > 1]
notrev = [s for s in unconf if s in store and store[s][0]['status'] != 'revoked']
print('received=%d missing=%d store=%d duplicate_serials=%d unconfirmed=%d unconfirmed_not_revoked=%d'
      % (len(got), len(missing), len(certs), len(dups), len(unconf), len(notrev)))
PY
    echo "# $(cat "$T/check.out")"
    grep -q " missing=0 " "$T/check.out" && ok "every certificate a client received is in the store" \
        || nok "certificates missing: $(cat "$T/check.out")"
    grep -q "duplicate_serials=0 " "$T/check.out" && ok "serials unique" || nok "duplicate serials"
    grep -q "unconfirmed_not_revoked=0$" "$T/check.out" \
        && ok "every certificate received without certConf is revoked" \
        || nok "unconfirmed certificates not revoked"
    is "no transaction awaits certConf after the sweep" \
        "$(crash_sql 'SELECT count(*) FROM cmp_txn WHERE state = 0')" 0
    # (device certificates: the issuing CA's own is in the table too)
    is "every unrevoked device certificate has a confirmed transaction" \
        "$(crash_sql 'SELECT count(*) FROM cert c WHERE c.device_id IS NOT NULL
            AND c.status = 0 AND NOT EXISTS
            (SELECT 1 FROM cmp_txn t WHERE t.cert_id = c.id AND t.state = 1)')" 0
    is "every device certificate has its issuance audit event" \
        "$(crash_sql "SELECT count(*) FROM cert WHERE device_id IS NOT NULL")" \
        "$(crash_sql "SELECT count(*) FROM audit WHERE action = 'cert.issue'")"
    check "cmpca audit verify" cli audit verify
}
