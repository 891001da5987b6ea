#!/bin/bash
# Enrollment churn is bounded (issue 16, point 3): one allow-listed device
# that never confirms gets at most enroll_max_per_window certificates; an
# enrolled device's cr requests without certConf stop at
# enroll_max_pending; both answered with a protected notAuthorized.
# Repeated identical refusals (3,000
# replays of one ir) write a bounded number of log lines, whose
# "suppressed" counts add up to the refusals. Bounded: well under a minute.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 4
# the alias sets a small window limit; max_pending stays at its default (4)
sed -i 's/^confirm_wait_time = .*/&\nenroll_max_per_window = 5/' "$T/cmpca.conf"
srv_start main || { echo "Bail out! server did not start"; exit 1; }
LOG=$T/main.log

# ---- one device that never confirms: 12 irs, at most 5 certificates --------
good=0; refused=0
for i in $(seq 12); do
    newkey "c$i.key"
    if ocmp -cmd ir -disable_confirm $(dev_args SN-000001) -trusted oproot.pem \
            -newkey "c$i.key" -subject /CN=SN-000001 -certout "c$i.pem" \
            -rspout "c$i.rsp" >"$T/c$i.out" 2>&1; then
        good=$((good + 1))
    elif inspect "c$i.rsp" | head -1 | grep -q "^body=error status=2 failInfo=[^ ]*notAuthorized[^ ]* protected=ok"; then
        refused=$((refused + 1))
    else
        diag "$T/c$i.out"
    fi
done
is "12 irs of one device without certConf: 5 certificates issued" "$good" 5
is "the other 7 refused with a protected notAuthorized error" "$refused" 7
n1=$(cli cert list --json | python3 -c 'import json,sys; print(sum("SN-000001" in (c.get("subject") or "") for c in json.load(sys.stdin)))')
is "the store holds 5 certificates of SN-000001" "$n1" 5
grep -q 'enrollments in the last 3600s (enroll_max_per_window = 5)' "$LOG" \
    && ok "the log names the limit" || nok "no limit in the log"
expect_error "the 12th ir" 200 200 c12.rsp notAuthorized

# ---- outstanding unconfirmed cr of an enrolled device: at most 4 -----------
newkey e.key
check "SN-000002 enrolls (ir + certConf)" ocmp -cmd ir $(dev_args SN-000002) -trusted oproot.pem \
    -newkey e.key -subject /CN=SN-000002 -certout e.pem
good=0; refused=0
for i in $(seq 6); do
    newkey "r$i.key"
    if ocmp -cmd cr -disable_confirm -cert e.pem -key e.key -extracerts opchain.pem \
            -trusted oproot.pem -newkey "r$i.key" -subject /CN=SN-000002 \
            -certout "r$i.pem" -rspout "r$i.rsp" >"$T/r$i.out" 2>&1; then
        good=$((good + 1))
    elif inspect "r$i.rsp" | head -1 | grep -q "failInfo=[^ ]*notAuthorized[^ ]* protected=ok"; then
        refused=$((refused + 1))
    else
        diag "$T/r$i.out"
    fi
done
is "6 cr without certConf: 4 issued (enroll_max_pending = 4)" "$good" 4
is "the 5th and 6th refused (notAuthorized)" "$refused" 2
grep -q 'enrollments await certConf.* (enroll_max_pending = 4)' "$LOG" \
    && ok "the log names enroll_max_pending" || nok "no enroll_max_pending in the log"

# ---- 3,000 identical refusals: the log stays small --------------------------
newkey k3.key
check "SN-000003 ir (saved)" ocmp -cmd ir $(dev_args SN-000003) -trusted oproot.pem \
    -newkey k3.key -subject /CN=SN-000003 -certout k3.pem -reqout ir3.der,cc3.der
before=$(wc -l <"$LOG")
t0=$(date +%s)
python3 - "$PORT" "$T/ir3.der" 3000 >"$T/replay.out" 2>&1 <<'PY'
import http.client, sys, collections
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
msg = open(path, 'rb').read()
st = collections.Counter()
conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
for i in range(n):
    conn.request('POST', '/.well-known/cmp/p/3gpp', body=msg,
                 headers={'Content-Type': 'application/pkixcmp'})
    r = conn.getresponse(); r.read(); st[r.status] += 1
    if r.getheader('Connection', '').lower() == 'close':
        conn.close(); conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
print(' '.join('%d:%d' % kv for kv in sorted(st.items())))
PY
secs=$(( $(date +%s) - t0 + 1 ))
is "3,000 replays of one ir answered (HTTP 200 each)" "$(cat "$T/replay.out")" "200:3000"
sleep 3                                  # the sweeper writes the last counts
tail -n +$((before + 1)) "$LOG" >"$T/replay.log"
lines=$(grep -c 'outcome=rejected failInfo=transactionIdInUse' "$T/replay.log")
summ=$(grep -c 'suppressed [0-9]* lines like: alias=3gpp failInfo=transactionIdInUse peer=127.0.0.1' "$T/replay.log")
held=$(grep -o 'suppressed=[0-9]*' "$T/replay.log" | cut -d= -f2 | paste -sd+ | bc)
held2=$(grep -o 'suppressed [0-9]* lines like: alias=3gpp failInfo=transactionIdInUse' "$T/replay.log" | awk '{ s += $2 } END { print s + 0 }')
echo "# 3,000 refusals in ${secs}s: $lines lines logged, $summ summary lines, suppressed ${held:-0} + $held2"
if [ "$lines" -le $((secs * 10 + 10)) ]; then
    ok "at most 10 refusal lines a second ($lines in ${secs}s)"
else
    nok "$lines refusal lines in ${secs}s"
fi
is "logged + suppressed = 3,000" "$((lines + ${held:-0} + held2))" 3000
is "/health" "$(health)" 200
e2e_done
