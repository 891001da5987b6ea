#!/bin/bash
# OCSP benchmark: signed OCSP responses/s and responder CPU per response,
# cmpca serve (store of OCSP_CERTS seeded certificates, 1 % revoked) against
# `openssl ocsp -index ... -port` on the same certificates (OCSP_INDEX rows
# of them; every request names one of those), alternating runs in one go,
# with requests carrying a nonce (every response signed afresh) and without
# (RFC 5019 clients: cmpca may serve pre-produced responses from its cache;
# the generator's REQS distinct requests are its working set).
# Knobs: OCSP_CERTS (1000000), OCSP_INDEX (= OCSP_CERTS), RUNS (3), DUR (8),
# THREADS (8 client connections), REQS (20000), MODES ("nonce nononce"),
# SIGNER (process: the keys in cmpca's signer process; or inprocess),
# SERVER_EXTRA (more [server] lines, e.g. "threads = 2"),
# BUILD (build/release), KEEP=1.
# Prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
N=${OCSP_CERTS:-1000000}
NIDX=${OCSP_INDEX:-$N}
RUNS=${RUNS:-3}
DUR=${DUR:-8}
THREADS=${THREADS:-8}
REQS=${REQS:-20000}
MODES=${MODES:-nonce nononce}
SIGNER=${SIGNER:-process}
CMPCA=$(realpath "$BUILD/cmpca")
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-ocsp.XXXXXX")
SPID=""; OPID=""
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
    [ -n "$OPID" ] && kill "$OPID" 2>/dev/null
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

cat >"$W/cmpca.conf" <<EOF
[server]
listen = 127.0.0.1:0
sweep_interval = 60s
log_level = warn
allow_root = yes
signer = $SIGNER
${SERVER_EXTRA:-}
[store]
path = cmpca.db
[ocsp]
cas = issuing
next_update = 1h
[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = *
[profile device]
validity = 365d
subject = CN=\${vendor.serialNumber},O=Operator
EOF
c() { (cd "$W" && "$CMPCA" -c "$W/cmpca.conf" "$@"); }
c ca create --name root --subject "/O=Operator/CN=Operator Root" --no-passphrase \
    --key-out "$W/root.key" >/dev/null
c ca create --name issuing --parent root --subject "/O=Operator/CN=Issuing CA" \
    --no-passphrase --key-out "$W/issuing.key" >/dev/null
c ca show issuing --pem | openssl x509 -out "$W/issuing.pem"
c ca show root --pem | openssl x509 -out "$W/root.pem"
"$BUILD/bench/seed_certs" --db "$W/cmpca.db" --ca issuing --count "$N"

# 1 % revoked (keyCompromise); the serial list and openssl's index
python3 - "$W" "$NIDX" <<'EOF'
import sqlite3, sys, time
w, nidx = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(w + "/cmpca.db")
now = int(time.time())
db.execute("UPDATE cert SET status=1, revoked_at=?, reason=1 WHERE id % 100 = 0 AND profile='seed'", (now,))
db.commit()
ut = lambda t: time.strftime("%y%m%d%H%M%SZ", time.gmtime(t))
with open(w + "/index.txt", "w") as ix, open(w + "/serials.txt", "w") as sl:
    for i, (ser, st, na, ra, subj) in enumerate(db.execute(
            "SELECT hex(serial), status, not_after, revoked_at, subject FROM cert "
            "WHERE profile='seed' ORDER BY id LIMIT ?", (nidx,))):
        dn = "/" + "/".join(reversed(subj.split(",")))
        if st == 1:
            ix.write("R\t%s\t%s,keyCompromise\t%s\tunknown\t%s\n" % (ut(na), ut(ra), ser, dn))
        else:
            ix.write("V\t%s\t\t%s\tunknown\t%s\n" % (ut(na), ser, dn))
        sl.write(ser + "\n")
EOF
echo "store: $N certificates ($(du -h "$W/cmpca.db" | cut -f1)), openssl index: $NIDX rows ($(du -h "$W/index.txt" | cut -f1))"

(cd "$W" && exec "$CMPCA" -c "$W/cmpca.conf" serve --port-file "$W/port" >"$W/serve.log" 2>&1) &
SPID=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
SPORT=$(cat "$W/port")

t0=$(date +%s.%N)
# a free port (another process may take it between the probe and the bind:
# retried)
for _try in 1 2 3 4 5; do
    OPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    (cd "$W" && exec openssl ocsp -index index.txt -port "$OPORT" -rsigner issuing.pem \
        -rkey issuing.key -CA issuing.pem -nmin 60 -resp_no_certs -resp_key_id \
        -ignore_err >"$W/openssl.log" 2>&1) &
    OPID=$!
    # ready when it answers
    for _ in $(seq 600); do
        kill -0 "$OPID" 2>/dev/null || break
        if openssl ocsp -url "http://127.0.0.1:$OPORT" -issuer "$W/issuing.pem" \
            -serial "0x$(head -1 "$W/serials.txt")" -noverify >/dev/null 2>&1; then break; fi
        sleep 0.2
    done
    kill -0 "$OPID" 2>/dev/null && break
    wait "$OPID" 2>/dev/null || true
    OPID=""
done
[ -n "$OPID" ] || { echo "openssl ocsp did not start" >&2; cat "$W/openssl.log" >&2; exit 1; }
t1=$(date +%s.%N)
echo "openssl ocsp ready after $(echo "$t1 - $t0" | bc) s, RSS $(ps -o rss= -p "$OPID") kB; cmpca serve RSS $(ps -o rss= -p "$SPID") kB"

run() {  # run LABEL PORT PID MODE
    local nn=""
    [ "$4" = nononce ] && nn=--no-nonce
    "$BUILD/bench/bench_ocsp" --port "$2" --pid "$3" --issuer "$W/issuing.pem" \
        --trust "$W/root.pem" --serials "$W/serials.txt" --threads "$THREADS" \
        --seconds "$DUR" --requests "$REQS" --label "$1_$4" $nn
}
for m in $MODES; do
    run warmup-cmpca "$SPORT" "$SPID" "$m" >/dev/null || true
    run warmup-openssl "$OPORT" "$OPID" "$m" >/dev/null || true
done
: >"$W/runs.txt"
for r in $(seq "$RUNS"); do
    for m in $MODES; do
        run cmpca "$SPORT" "$SPID" "$m" | tee -a "$W/runs.txt"
        run openssl "$OPORT" "$OPID" "$m" | tee -a "$W/runs.txt"
    done
done
curl -s "http://127.0.0.1:$SPORT/metrics" 2>/dev/null | grep '^cmpca_ocsp_cache' || true
python3 - "$W/runs.txt" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+): (\d+) responses/s.*p50 (\d+) p90 (\d+) p99 (\d+); server CPU ([\d.]+) us/response \(([\d.]+) cores\)", line)
    if m:
        rows.setdefault(m.group(1), []).append([float(x) for x in m.groups()[1:]])
med = {k: [statistics.median(c) for c in zip(*v)] for k, v in rows.items()}
for k, v in med.items():
    print("median %-16s %6.0f responses/s  p50/p90/p99 %.0f/%.0f/%.0f us  CPU %.1f us/response (%.2f cores)" % (k, *v))
for m in ("nonce", "nononce"):
    c, o = med.get("cmpca_" + m), med.get("openssl_" + m)
    if c and o:
        print("ratio %-8s: %.2fx the rate, %.2fx the CPU per response" % (
            m, c[0] / o[0], c[4] / o[4]))
EOF
