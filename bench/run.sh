#!/bin/bash
# Standard enrollment benchmark (`make bench`): throughput, latency, server
# CPU against the crypto floor, the openssl cmp mock server side by side,
# RSA CA, store scale, idle connections and the signer process's cost
# (bench/bench_signer.sh). Writes bench/out/results.md.
# Every scenario uses loadgen's lean client; `ir_ossl` repeats the closed-
# loop ir with OpenSSL's client for comparison.
# Env: BUILD (build/release), QUICK=1 (< 1 min), RUNS, DUR, SCALE_CERTS,
# IDLE_CONNS, THREADS, KEEP=1 (keep the temp dir).
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build/release}
B=$ROOT/$BUILD/cmpca
LG=$ROOT/$BUILD/bench/loadgen
SEED=$ROOT/$BUILD/bench/seed_certs
IDLE=$ROOT/$BUILD/bench/idle_conns
ATK=$ROOT/$BUILD/bench/conn_attack
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RUNS=${RUNS:-1}; DUR=${DUR:-2}; NDEV=${NDEV:-200}; WARM=${WARM:-0.5}
    SCALE_CERTS=${SCALE_CERTS:-100000}; IDLE_CONNS=${IDLE_CONNS:-1000}
    FLOOD_CONNS=${FLOOD_CONNS:-2000}
else
    RUNS=${RUNS:-3}; DUR=${DUR:-8}; NDEV=${NDEV:-2000}; WARM=${WARM:-1}
    SCALE_CERTS=${SCALE_CERTS:-10000000}; IDLE_CONNS=${IDLE_CONNS:-10000}
    FLOOD_CONNS=${FLOOD_CONNS:-10000}
fi
THREADS=${THREADS:-16}         # closed-loop workers (connections)
OPEN_THREADS=${OPEN_THREADS:-64}
RATE=${RATE:-1000}
RATE_LOW=${RATE_LOW:-500}      # a second open-loop rate below saturation
OUT=$ROOT/bench/out
mkdir -p "$OUT"
for x in "$B" "$LG" "$SEED" "$IDLE" "$ATK"; do
    [ -x "$x" ] || { echo "run.sh: $x missing (make $BUILD/...)" >&2; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
START=$(date +%s)
log() { printf '[%4ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }

free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# vendor factory: one vendor, NDEV devices (shared by every server below)
log "factory: $NDEV devices"
"$B" factory ca create --dir "$T/V" --name Acme >/dev/null
"$B" factory issue --dir "$T/V" --out "$T/DEVS" --count "$NDEV" --prefix SN- --quiet
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/fixed-newkey.pem" 2>/dev/null

# make_server DIR CA_KEY_TYPE [extra [server] lines]
make_server() {
    local d=$1 kt=$2 extra=${3:-}
    mkdir -p "$d"
    cat > "$d/cmpca.conf" <<EOF
[server]
listen = 127.0.0.1:0
$([ "$(id -u)" = 0 ] && echo "user = nobody")
$extra
[store]
path = cmpca.db
[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
allow_reenroll = yes
enroll_max_per_window = 0
[profile device]
validity = 365d
subject = CN=\${vendor.serialNumber},O=Operator
EOF
    (cd "$d" && "$B" ca create --name root --subject "/O=Operator/CN=Root" \
        --no-passphrase --key-out "$d/root.key" >/dev/null \
     && "$B" ca create --name issuing --parent root --subject "/O=Operator/CN=Issuing" \
        --no-passphrase --key-out "$d/issuing.key" --key-type "$kt" >/dev/null \
     && "$B" vendor add --name acme --ca "$T/V/vendor-chain.pem" >/dev/null \
     && "$B" device import --vendor acme "$T/DEVS/allowlist.csv" >/dev/null \
     && "$B" ca show root --pem > root.pem \
     && "$B" ca show issuing --pem > issuing-chain.pem)
    # the server drops to nobody after binding: its directory is nobody's
    if [ "$(id -u)" = 0 ]; then chmod 711 "$T"; chown -R nobody "$d"; fi
}

# start_server DIR: sets SPID, SPORT
start_server() {
    local d=$1 i
    rm -f "$d/port"
    (cd "$d" && ulimit -n "$(ulimit -Hn)" && exec "$B" serve --port-file port) \
        > "$d/serve.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    for i in $(seq 100); do
        [ -s "$d/port" ] && break
        sleep 0.1
    done
    [ -s "$d/port" ] || { echo "run.sh: server in $d did not start" >&2; cat "$d/serve.log" >&2; exit 1; }
    SPORT=$(cat "$d/port")
}

stop_server() {
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}

# lg NAME DIR ARGS...: one loadgen run (lean client unless ARGS say
# otherwise) against the server in DIR, RESULT line appended to
# $T/NAME.res, report to $OUT/NAME.log
lg() {
    local name=$1 d=$2; shift 2
    "$LG" --url "http://127.0.0.1:$SPORT${URLPATH:-/.well-known/cmp/p/3gpp}" \
        --devices "$T/DEVS" --trusted "$d/root.pem" --server-pid "$SPID" \
        --warmup "$WARM" --label "$name" --client lean "$@" >> "$OUT/$name.log" 2>&1 \
        || { echo "run.sh: loadgen $name failed:" >&2; tail -20 "$OUT/$name.log" >&2; exit 1; }
    grep '^RESULT' "$OUT/$name.log" | tail -1 >> "$T/$name.res"
}

# med NAME KEY: median of KEY over the runs of NAME
med() {
    grep -o " $2=[^ ]*" "$T/$1.res" | cut -d= -f2 | sort -g \
        | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }' && echo met || echo MISSED; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0 && a != "n/a") }' && echo met || echo MISSED; }

rm -f "$OUT"/*.log

# --- P-256 CA: closed loop ir, kur, mix; open loop -------------------------
log "P-256 server"
make_server "$T/p256" ec:P-256
start_server "$T/p256"
for r in $(seq "$RUNS"); do
    log "ir closed-loop run $r/$RUNS"
    lg ir "$T/p256" --threads "$THREADS" --duration "$DUR" --floor
done
log "ir closed-loop, OpenSSL's CMP client"
lg ir_ossl "$T/p256" --threads "$THREADS" --duration "$DUR" --floor --client openssl
log "kur closed-loop"
lg kur "$T/p256" --mode kur --threads "$THREADS" --duration "$DUR" --floor \
    --max-devices $((THREADS * 64))
log "mix (50% kur) closed-loop"
lg mix "$T/p256" --mode mix --threads "$THREADS" --duration "$DUR" --floor \
    --max-devices $((THREADS * 64))
for r in $(seq "$RUNS"); do
    log "ir open-loop $RATE/s run $r/$RUNS"
    lg open "$T/p256" --rate "$RATE" --threads "$OPEN_THREADS" --duration "$DUR"
    log "ir open-loop $RATE_LOW/s run $r/$RUNS"
    lg open_low "$T/p256" --rate "$RATE_LOW" --threads "$OPEN_THREADS" --duration "$DUR"
done
stop_server

# --- first enrollments: every device once, on a fresh server and store -----
# (no certificate of the request is in the server's decode cache yet, as in
# a real roll-out; the rows above enroll the same devices again and again)
log "first enrollment of each device"
make_server "$T/first" ec:P-256
start_server "$T/first"
lg first "$T/first" --warmup 0 --threads "$THREADS" --duration 120 \
    --count $((NDEV - NDEV / 10)) --floor
stop_server

# --- side by side with the openssl cmp mock server -------------------------
# one device identity, one connection, one thread, the same fixed new key
log "peer: single identity, single connection"
make_server "$T/single" ec:P-256
start_server "$T/single"
# one ir gives the certificate the mock server will hand out
openssl cmp -cmd ir -server "127.0.0.1:$SPORT" -path .well-known/cmp/p/3gpp \
    -cert "$T/DEVS/SN-000001/cert.pem" -key "$T/DEVS/SN-000001/key.pem" \
    -extracerts "$T/DEVS/SN-000001/chain.pem" -trusted "$T/single/root.pem" \
    -newkey "$T/fixed-newkey.pem" -certout "$T/single/fixed-cert.pem" >/dev/null 2>&1
CMPCA_SPID=$SPID CMPCA_SPORT=$SPORT
MPORT=$(free_port)
(cd "$T/single" && exec openssl cmp -port "$MPORT" -srv_cert issuing-chain.pem \
    -srv_key issuing.key -srv_trusted "$T/V/vendor-root.pem" \
    -rsp_cert fixed-cert.pem -rsp_capubs root.pem) > "$T/single/mock.log" 2>&1 &
MPID=$!
PIDS+=("$MPID")
sleep 0.5
for r in $(seq "$RUNS"); do
    log "peer run $r/$RUNS: cmpca"
    SPID=$CMPCA_SPID SPORT=$CMPCA_SPORT
    lg single_cmpca "$T/single" --one-device --newkey "$T/fixed-newkey.pem" \
        --threads 1 --duration "$DUR"
    log "peer run $r/$RUNS: openssl cmp mock server"
    SPID=$MPID SPORT=$MPORT
    URLPATH=/ lg single_mock "$T/single" --one-device --newkey "$T/fixed-newkey.pem" \
        --threads 1 --duration "$DUR"
done
kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null || true
SPID=$CMPCA_SPID
stop_server

# --- RSA-2048 CA key --------------------------------------------------------
log "RSA-2048 CA server"
make_server "$T/rsa" rsa:2048
start_server "$T/rsa"
for r in $(seq "$RUNS"); do
    log "RSA ir closed-loop run $r/$RUNS"
    lg rsa "$T/rsa" --threads "$THREADS" --duration "$DUR" --floor
done
stop_server

# the same RSA-2048 CA, with a P-256 CMP signer (id-kp-cmcRA) for the
# responses: one RSA signature per enrollment instead of three
log "RSA-2048 CA with a P-256 CMP signer"
make_server "$T/rsas" rsa:2048
(cd "$T/rsas" && "$B" ca signer --ca issuing --key-type ec:P-256 \
    --no-passphrase --key-out "$T/rsas/signer.key" >/dev/null)
start_server "$T/rsas"
for r in $(seq "$RUNS"); do
    log "RSA CA + P-256 signer ir closed-loop run $r/$RUNS"
    lg rsa_signer "$T/rsas" --threads "$THREADS" --duration "$DUR"
done
stop_server

# --- scale: empty store vs SCALE_CERTS certificates --------------------------
# two identical servers, one seeded; runs alternate so that changing load
# on the shared machine hits both alike
log "scale: seeding $SCALE_CERTS certificates"
make_server "$T/scale0" ec:P-256
make_server "$T/scaleN" ec:P-256
"$SEED" --db "$T/scaleN/cmpca.db" --ca issuing --count "$SCALE_CERTS" > "$OUT/seed.log" 2>&1
SEED_LINE=$(tail -1 "$OUT/seed.log")
DBSIZE=$(du -sh "$T/scaleN" | cut -f1)
start_server "$T/scale0"; S0PID=$SPID S0PORT=$SPORT
start_server "$T/scaleN"; SNPID=$SPID SNPORT=$SPORT
for r in $(seq "$RUNS"); do
    log "scale run $r/$RUNS: empty store, then $SCALE_CERTS certificates"
    SPID=$S0PID SPORT=$S0PORT
    lg scale0 "$T/scale0" --threads "$THREADS" --duration "$DUR"
    SPID=$SNPID SPORT=$SNPORT
    lg scaleN "$T/scaleN" --threads "$THREADS" --duration "$DUR"
done
SPID=$S0PID; stop_server
SPID=$SNPID; stop_server

# --- idle keep-alive connections -------------------------------------------
log "idle: $IDLE_CONNS keep-alive connections"
make_server "$T/idle" ec:P-256 "max_conns = $((IDLE_CONNS + 100))
per_ip_conns = 0
header_timeout = 120s
idle_timeout = 120s"
start_server "$T/idle"
(ulimit -n "$(ulimit -Hn)" && "$IDLE" --port "$SPORT" --server-pid "$SPID" \
    --count "$IDLE_CONNS" --hold 3) > "$OUT/idle.log" 2>&1 || true
stop_server
IDLE_RES=$(grep '^RESULT' "$OUT/idle.log" || echo "RESULT conns=0 rss0_kb=0 rss1_kb=0 per_conn_kb=0")
idle_get() { echo "$IDLE_RES" | grep -o " $1=[^ ]*" | cut -d= -f2; }

# --- one host floods: FLOOD_CONNS connections from 127.0.0.2 ----------------
# ir+certConf on a fresh connection per message (what a client arriving
# during the flood meets), without and with the attacker holding idle or
# header-dripping connections (those the server closes reopened after 1 s)
log "flood: $FLOOD_CONNS connections from 127.0.0.2"
make_server "$T/flood" ec:P-256
start_server "$T/flood"
for r in $(seq "$RUNS"); do
    lg flood_none "$T/flood" --threads 4 --duration "$DUR" --new-conn
    for mode in idle headers; do
        (ulimit -n "$(ulimit -Hn)" && exec "$ATK" --port "$SPORT" --bind 127.0.0.2 \
            --count "$FLOOD_CONNS" --mode "$mode" --drip-ms 1000 --reconnect-ms 1000 \
            --duration $((${DUR%.*} + 30))) >> "$OUT/flood_$mode.atk" 2>&1 &
        APID=$!
        sleep 3
        lg "flood_$mode" "$T/flood" --threads 4 --duration "$DUR" --new-conn
        kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null || true
    done
done
stop_server
# --- signer process vs in-process signing, same run (own servers) ------------
log "signer process vs in-process signing"
if ! RUNS=$RUNS DUR=$DUR NDEV=$NDEV THREADS=$THREADS BUILD=$BUILD WARM=$WARM \
        "$ROOT/bench/bench_signer.sh" > "$OUT/signer.out" 2>&1; then
    echo "run.sh: bench_signer.sh failed:" >&2; tail -20 "$OUT/signer.out" >&2
    echo "(bench_signer.sh failed: see bench/out/signer.out)" > "$OUT/signer.md"
fi

# --- results ------------------------------------------------------------------
IR_TPS=$(med ir tps); IR_RATIO=$(med ir ratio); IR_CPU=$(med ir server_cpu_ms)
FLOOR=$(med ir floor_ms); CLI_CPU=$(med ir client_cpu_ms)
CLI_FLOOR=$(med ir client_floor_ms); CLI_RATIO=$(med ir client_ratio)
OSSL_CPU=$(med ir_ossl client_cpu_ms); OSSL_TPS=$(med ir_ossl tps)
OPEN_P99=$(med open txn_p99); OPEN_TPS=$(med open tps)
S_CMPCA=$(med single_cmpca tps); S_MOCK=$(med single_mock tps)
PEER=$(ratio "$S_CMPCA" "$S_MOCK")
RSA_TPS=$(med rsa tps); RSA_RATIO=$(med rsa ratio); RSAS_TPS=$(med rsa_signer tps)
SC0=$(med scale0 tps); SCN=$(med scaleN tps)
SCALE=$(ratio "$SCN" "$SC0")
SCALE_CPU=$(ratio "$(med scale0 server_cpu_ms)" "$(med scaleN server_cpu_ms)")
SCALE_PCT=$(awk -v r="$SCALE" 'BEGIN { if (r == "n/a") print "n/a"; else printf "%.0f", r * 100 }')
row() {  # NAME: one latency/throughput row from the medians
    printf '| %s | %s | %s | %s/%s/%s | %s/%s | %s/%s | %s | %s | %s | %s |\n' "$2" \
        "$(med "$1" tps)" "$(med "$1" errors)" "$(med "$1" txn_p50)" \
        "$(med "$1" txn_p90)" "$(med "$1" txn_p99)" "$(med "$1" req_p50)" \
        "$(med "$1" req_p99)" "$(med "$1" conf_p50)" "$(med "$1" conf_p99)" \
        "$(med "$1" server_cpu_ms)" "$(med "$1" ratio)" \
        "$(med "$1" client_cpu_ms)" "$(med "$1" busy_pct) ($(med "$1" our_pct))"
}
{
    echo "# cmpca enrollment benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), OpenSSL $(openssl version | cut -d' ' -f2), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
    echo "Generator on the same machine; durable SQLite (synchronous=FULL); server threads: the default (4 per CPU); median of $RUNS run(s) of ${DUR}s; QUICK=$QUICK."
    echo
    echo "| run | tx/s | errors | txn ms p50/p90/p99 | request msg ms p50/p99 | certConf msg ms p50/p99 | server CPU ms/tx | CPU/floor | client CPU ms/tx | machine busy % (ours) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    row ir "ir+certConf, P-256, closed loop, $THREADS conns"
    row ir_ossl "the same with OpenSSL's CMP client (1 run)"
    row first "ir+certConf, first enrollment of each device (1 run)"
    row kur "kur+certConf, P-256, closed loop, $THREADS conns"
    row mix "50% kur / 50% ir, closed loop, $THREADS conns"
    row open "ir+certConf, open loop $RATE/s Poisson, $OPEN_THREADS conns"
    row open_low "ir+certConf, open loop $RATE_LOW/s Poisson, $OPEN_THREADS conns"
    row rsa "ir+certConf, RSA-2048 CA key, closed loop"
    row rsa_signer "the same CA, responses signed by a P-256 CMP signer"
    row single_cmpca "cmpca, one identity, 1 conn"
    row single_mock "openssl cmp mock server, one identity, 1 conn"
    row scale0 "scale: empty store"
    row scaleN "scale: $SCALE_CERTS certificates in the store"
    row flood_none "ir+certConf, a fresh connection per message, 4 conns"
    row flood_idle "the same, $FLOOD_CONNS idle connections from 127.0.0.2"
    row flood_headers "the same, $FLOOD_CONNS connections from 127.0.0.2 dripping headers"
    echo
    echo "Crypto floor per ir+certConf (server: 4 verifies + 3 signs, measured in-process): $FLOOR ms."
    echo "Client CPU per ir+certConf: lean client $CLI_CPU ms (its own floor, 3 signs + 3 verifies: $CLI_FLOOR ms, ratio $CLI_RATIO); OpenSSL's client $OSSL_CPU ms ($OSSL_TPS tx/s in the same closed loop). Every row but ir_ossl uses the lean client."
    echo "Derived capacity on this machine with nothing else running: 2 cores / (server + client CPU per ir) = $(awk -v s="$IR_CPU" -v c="$CLI_CPU" 'BEGIN { if (s + c > 0) printf "%.0f", 2000 / (s + c); else print "n/a" }') tx/s; with the generator elsewhere, 2 cores / server CPU = $(awk -v s="$IR_CPU" 'BEGIN { if (s > 0) printf "%.0f", 2000 / s; else print "n/a" }') tx/s. 'machine busy' is all processes; '(ours)' is server + generator: the difference is other load on the shared machine."
    echo "Open-loop latency counts from the scheduled arrival (queueing included)."
    echo "Seeding: $SEED_LINE; store directory $DBSIZE."
    echo "Idle connections: $(idle_get conns) open, server RSS $(idle_get rss0_kb) kB -> $(idle_get rss1_kb) kB ($(idle_get per_conn_kb) kB per connection; server fds $(idle_get server_fds); kernel socket memory is not in RSS)."
    echo
    echo "| target | measured | goal | |"
    echo "|---|---|---|---|"
    echo "| ir+certConf/s closed loop (P-256) | $IR_TPS | >= 2000 | $(ge "$IR_TPS" 2000) |"
    echo "| server CPU / crypto floor | $IR_RATIO ($IR_CPU / $FLOOR ms) | <= 1.3 | $(le "$IR_RATIO" 1.3) |"
    echo "| p99 at $RATE/s open loop | $OPEN_P99 ms ($OPEN_TPS tx/s done; at $RATE_LOW/s: $(med open_low txn_p99) ms) | <= 10 ms | $(le "$OPEN_P99" 10) |"
    echo "| vs openssl cmp mock (1 identity, 1 conn) | ${PEER}x ($S_CMPCA vs $S_MOCK tx/s) | >= 5x | $(ge "$PEER" 5) |"
    echo "| $SCALE_CERTS certs vs empty | ${SCALE_PCT}% ($SCN vs $SC0 tx/s; by server CPU per tx: $SCALE_CPU) | >= 90% | $(ge "$SCALE" 0.9) |"
    echo "| RSA-2048 CA key | $RSA_TPS tx/s (CPU/floor $RSA_RATIO); with a P-256 CMP signer $RSAS_TPS tx/s | >= 1000 | $(ge "$RSA_TPS" 1000) |"
    echo "| server RSS, $(idle_get conns) idle connections | $(idle_get rss1_kb) kB | (reported) | |"
    FP=$(awk -v a="$(med flood_idle txn_p99)" -v b="$(med flood_headers txn_p99)" 'BEGIN { print (a + 0 > b + 0 ? a : b) }')
    echo "| enrollment p99 under $FLOOD_CONNS connections from one address | $FP ms (idle $(med flood_idle txn_p99), dripping $(med flood_headers txn_p99); none $(med flood_none txn_p99)) | < 1000 ms | $(le "$FP" 1000) |"
    echo
    cat "$OUT/signer.md"
} > "$OUT/results.md"
log "done; per-run reports in $OUT/*.log"
cat "$OUT/results.md"
