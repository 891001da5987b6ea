#!/bin/bash
# One host cannot lock everyone out, nor grow the server before
# authentication (issue 16, points 1 and 2): 10,000 connections from
# 127.0.0.2 - held idle, dripping headers, dripping a body - while devices
# on 127.0.0.1 enroll with the stock openssl cmp client (each on a fresh
# connection; all must succeed, slowest under 1 s); then 6,000 requests with
# distinct 60 KB junk certificates in extraCerts, with the server's RSS
# checked before and after. Bounded: about 2 minutes.
. "$(dirname "$0")/lib.sh"

ATTACK=$(realpath "$BUILD/bench/conn_attack")
ATTACKERS=""
stop_attackers() { local p; for p in $ATTACKERS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; ATTACKERS=""; }
trap 'stop_attackers; e2e_cleanup' EXIT

e2e_pki 300s 60
srv_start main || { echo "Bail out! server did not start"; exit 1; }
LOG=$T/main.log

# enroll_batch N FIRST: N enrollments (ir+certConf, a fresh openssl cmp
# process and connection each) of SN-FIRST...; prints "ok max_ms" where ok
# counts the successes
enroll_batch() {
    local cnt=$1 first=$2 i s t0 t1 ms max=0 good=0
    for i in $(seq "$first" $((first + cnt - 1))); do
        s=$(printf 'SN-%06d' "$i")
        newkey "ab$i.key"
        t0=$(date +%s%N)
        if (cd "$T" && timeout 10 openssl cmp -server "127.0.0.1:$PORT" -path "$ALIAS_PATH" \
                -cmd ir $(dev_args "$s") -trusted oproot.pem -newkey "ab$i.key" \
                -subject "/CN=$s" -certout "ab$i.pem" -msg_timeout 8 >"$T/ab$i.out" 2>&1); then
            good=$((good + 1))
        else
            tail -2 "$T/ab$i.out" | sed 's/^/# /' >&2
        fi
        t1=$(date +%s%N)
        ms=$(((t1 - t0) / 1000000))
        [ "$ms" -gt "$max" ] && max=$ms
    done
    echo "$good $max"
}

# attack MODE: 10,000 connections from 127.0.0.2 (closed ones reopened
# after a second), 60 s at most; enrollments from 127.0.0.1 meanwhile
attack() {
    local mode=$1 first=$2 res good max
    "$ATTACK" --port "$PORT" --bind 127.0.0.2 --count 10000 --mode "$mode" \
        --drip-ms 1000 --duration 60 --reconnect-ms 1000 >"$T/attack-$mode.out" 2>&1 &
    ATTACKERS="$!"
    sleep 3                          # the flood is on
    read -r good max <<<"$(enroll_batch 12 "$first")"
    kill -TERM "$ATTACKERS" 2>/dev/null; wait "$ATTACKERS" 2>/dev/null; ATTACKERS=""
    is "10,000 $mode connections from 127.0.0.2: 12 of 12 enrollments from 127.0.0.1 succeed" "$good" 12
    if [ "$max" -lt 1000 ]; then
        ok "10,000 $mode connections: slowest enrollment ${max} ms (< 1 s)"
    else
        nok "10,000 $mode connections: slowest enrollment ${max} ms (>= 1 s)"
    fi
}
read -r good max <<<"$(enroll_batch 3 1)"
is "3 enrollments without attack" "$good" 3
echo "# without attack: slowest enrollment ${max} ms"
attack idle 10
attack headers 30
attack body 45
is "/health after the attacks" "$(health)" 200
lines=$(wc -l <"$LOG")
if [ "$lines" -lt 2000 ]; then ok "the log stayed small under the floods ($lines lines)"; else nok "log grew to $lines lines"; fi

# ---- cache fill: 6,000 requests with distinct 60 KB junk certificates -------
srv_stop main
# a small ASan quarantine, so that RSS shows what the server keeps
ASAN_OPTIONS="${ASAN_OPTIONS}:quarantine_size_mb=8:thread_local_quarantine_size_kb=64" \
    srv_start fill || { echo "Bail out! server did not start"; exit 1; }
newkey kf.key
check "an ir to serve as template" ocmp -cmd ir $(dev_args SN-000059) -trusted oproot.pem \
    -newkey kf.key -subject /CN=SN-000059 -reqout irf.der,ccf.der -certout opf.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/junk.key" \
    -subj /CN=junk -days 30 -addext "nsComment=$(head -c 60000 /dev/zero | tr '\0' a)" \
    -outform DER -out "$T/junk.der" 2>/dev/null
PID=$(eval echo "\$PID_fill")
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$PID/status"; }
python3 tests/tools/junk_certs.py "$PORT" "$T/irf.der" "$T/junk.der" 300 >"$T/warm.out" 2>&1
r0=$(rss)
if timeout 600 python3 tests/tools/junk_certs.py "$PORT" "$T/irf.der" "$T/junk.der" 6000 >"$T/fill.out" 2>&1; then
    ok "6,000 requests with junk certificates answered ($(cat "$T/fill.out"))"
else
    nok "junk requests"; diag "$T/fill.out"
fi
r1=$(rss)
echo "# server RSS ${r0} kB after 300 warm-up requests, ${r1} kB after 6,000 more (60 KB junk certificate each)"
if [ $((r1 - r0)) -lt 65536 ]; then
    ok "RSS grew by $(((r1 - r0) / 1024)) MB (< 64 MB; every junk certificate cached would be > 350 MB)"
else
    nok "RSS grew by $(((r1 - r0) / 1024)) MB"
fi
grep -q "statuses=200:6000" "$T/fill.out" && ok "each got a CMP answer (HTTP 200)" || nok "statuses: $(cat "$T/fill.out")"
is "/health after the junk" "$(health)" 200
e2e_done
