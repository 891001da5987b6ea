#!/bin/bash
# Throughput cost of the signer process, in one run: four identical P-256
# servers, keys in the network process (`signer = inprocess`), in the signer
# process over the default 4 channels, the same tied to CPUs, over 8 and
# over 1; closed-loop
# ir+certConf with the lean client, runs alternating between the servers so
# that load changes on the shared machine hit all alike. Writes
# bench/out/signer.md (also printed). Server CPU includes the signer
# process. Env: BUILD, RUNS (5), DUR (8), NDEV (2000), THREADS (16), KEEP=1,
# VARIANTS (default "inproc proc procaff proc8 proc1"; inproc and proc
# are needed; procaff: signer_affinity = yes; also procsync:
# signer_log_flush_ms = 0, and base: the signer process with the binary
# $BASE, to compare builds in one run).
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build/release}
B=$ROOT/$BUILD/cmpca
LG=$ROOT/$BUILD/bench/loadgen
RUNS=${RUNS:-5}; DUR=${DUR:-8}; NDEV=${NDEV:-2000}; THREADS=${THREADS:-16}
WARM=${WARM:-1}
OUT=$ROOT/bench/out
mkdir -p "$OUT"
for x in "$B" "$LG"; do
    [ -x "$x" ] || { echo "bench_signer.sh: $x missing (make $BUILD/...)" >&2; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-bsigner.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
START=$(date +%s)
log() { printf '[%4ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }

log "factory: $NDEV devices"
"$B" factory ca create --dir "$T/V" --name Acme >/dev/null
"$B" factory issue --dir "$T/V" --out "$T/DEVS" --count "$NDEV" --prefix SN- --quiet

# make_server DIR [extra [server] lines]
make_server() {
    local d=$1 extra=${2:-}
    mkdir -p "$d"
    cat > "$d/cmpca.conf" <<EOF
[server]
listen = 127.0.0.1:0
allow_root = yes
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
        --no-passphrase --key-out "$d/issuing.key" >/dev/null \
     && "$B" vendor add --name acme --ca "$T/V/vendor-chain.pem" >/dev/null \
     && "$B" device import --vendor acme "$T/DEVS/allowlist.csv" >/dev/null \
     && "$B" ca show root --pem > root.pem) 2>/dev/null
}

# start_server NAME: sets PID_NAME, PORT_NAME (variant "base" runs the
# binary $BASE, e.g. a build of an earlier commit)
start_server() {
    local d=$T/$1 i bin=$B
    [ "$1" = base ] && bin=$BASE
    (cd "$d" && exec "$bin" serve --port-file port) > "$d/serve.log" 2>&1 &
    PIDS+=("$!")
    eval "PID_$1=$!"
    for i in $(seq 100); do [ -s "$d/port" ] && break; sleep 0.1; done
    [ -s "$d/port" ] || { echo "bench_signer.sh: $1 did not start" >&2; cat "$d/serve.log" >&2; exit 1; }
    eval "PORT_$1=$(cat "$d/port")"
}

# lg NAME: one closed-loop run against server NAME, RESULT line to $T/NAME.res
lg() {
    local pid port
    eval "pid=\$PID_$1 port=\$PORT_$1"
    "$LG" --url "http://127.0.0.1:$port/.well-known/cmp/p/3gpp" --devices "$T/DEVS" \
        --trusted "$T/$1/root.pem" --server-pid "$pid" --warmup "$WARM" --label "signer_$1" \
        --client lean --threads "$THREADS" --duration "$DUR" >> "$OUT/signer_$1.log" 2>&1 \
        || { echo "bench_signer.sh: loadgen $1 failed" >&2; tail -20 "$OUT/signer_$1.log" >&2; exit 1; }
    grep '^RESULT' "$OUT/signer_$1.log" | tail -1 >> "$T/$1.res"
}
med() {
    grep -o " $2=[^ ]*" "$T/$1.res" | cut -d= -f2 | sort -g \
        | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# per-run ratios NAME/inproc (run r of NAME against run r of inproc)
ratios() {
    paste -d' ' <(grep -o " tps=[^ ]*" "$T/$1.res" | cut -d= -f2) \
        <(grep -o " tps=[^ ]*" "$T/inproc.res" | cut -d= -f2) \
        | awk '{ printf "%s%.3f", (NR > 1 ? " " : ""), $1 / $2 }'
}
cost() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.1f", (1 - a / b) * 100; else print "n/a" }'; }

rm -f "$OUT"/signer_*.log
VARIANTS=${VARIANTS:-inproc proc procaff proc8 proc1}
extra_of() {
    case $1 in
        inproc) echo "signer = inprocess" ;;
        proc|base) echo "" ;;
        procaff) echo "signer_affinity = yes" ;;
        procsync) echo "signer_log_flush_ms = 0" ;;
        proc*) echo "signer_channels = ${1#proc}" ;;
    esac
}
for s in $VARIANTS; do make_server "$T/$s" "$(extra_of "$s")"; start_server "$s"; done
for r in $(seq "$RUNS"); do
    for s in $VARIANTS; do
        log "run $r/$RUNS: $s"
        lg "$s"
    done
done
SIGNS=$(grep -c "signer: sign " "$T/proc/serve.log" || true)

I=$(med inproc tps); P=$(med proc tps)
COST=$(cost "$P" "$I")
OTHERS=""
for s in $VARIANTS; do
    case $s in
        inproc|proc) ;;
        base|procsync|procaff) OTHERS="$OTHERS, $s: $(cost "$(med "$s" tps)" "$I")%" ;;
        *) OTHERS="$OTHERS, ${s#proc} channel(s): $(cost "$(med "$s" tps)" "$I")%" ;;
    esac
done
# CPU per transaction, the steadier measure on a shared machine
CI=$(med inproc server_cpu_ms); CP=$(med proc server_cpu_ms)
CPUCOST=$(awk -v a="$CP" -v b="$CI" 'BEGIN { if (b + 0 > 0) printf "%.1f", (a / b - 1) * 100; else print "n/a" }')
ok=$(awk -v c="$COST" 'BEGIN { exit !(c != "n/a" && c + 0 <= 5) }' && echo met || echo MISSED)
{
    echo "## Signer process vs in-process signing (same run)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); ir+certConf, P-256, closed loop, $THREADS conns, lean client; median of $RUNS alternating runs of ${DUR}s; server CPU includes the signer process."
    echo
    echo "| server | tx/s | txn ms p50/p99 | server CPU ms/tx | tx/s vs in-process, per run |"
    echo "|---|---|---|---|---|"
    for s in $VARIANTS; do
        case $s in
            inproc) what="keys in the network process (signer = inprocess)" ;;
            proc) what="signer process, 4 channels (default)" ;;
            procsync) what="signer process, one log write per line (signer_log_flush_ms = 0)" ;;
            procaff) what="signer process, channels tied to CPUs (signer_affinity = yes)" ;;
            base) what="signer process, binary $BASE" ;;
            *) what="signer process, ${s#proc} channel(s)" ;;
        esac
        echo "| $what | $(med "$s" tps) | $(med "$s" txn_p50)/$(med "$s" txn_p99) | $(med "$s" server_cpu_ms) | $([ "$s" = inproc ] && echo 1 || ratios "$s") |"
    done
    echo
    echo "| target | measured | goal | |"
    echo "|---|---|---|---|"
    echo "| throughput cost of the signer process (4 channels) | ${COST}% ($P vs $I tx/s$OTHERS) | <= 5% | $ok |"
    echo "| server CPU per transaction, signer process (4 channels) vs in-process | +${CPUCOST}% ($CP vs $CI ms) | (reported) | |"
    echo
    echo "The signer process logged $SIGNS signatures (one line each). Machine load (1/5/15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} > "$OUT/signer.md"
cat "$OUT/signer.md"
