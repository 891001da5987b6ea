#!/usr/bin/env bash
# Direct 3GPP enrollment, this tree's server against an earlier commit's,
# in one run: both built in release mode, each on its own PKI and SQLite
# store made by its own binary (same config, same factory devices), loadgen
# closed loop (lean client) alternating between them RUNS times. Prints the
# medians of throughput and server CPU per ir+certConf and their ratios.
# Env: BASE (default: the last commit with the old server core src/ra/),
# NEWREV (default: this tree as built; a revision is built like BASE),
# RUNS (5), DUR (6 s), THREADS (16), NDEV (1000), BUILD (build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build/release}
RUNS=${RUNS:-5}; DUR=${DUR:-6}; THREADS=${THREADS:-16}; NDEV=${NDEV:-1000}
BASE=${BASE:-$(git log --format=%H -1 -- src/ra/ra_handle.c)^}
BASE=$(git rev-parse --short "$BASE")
NEW=$ROOT/$BUILD/cmpca
LG=$ROOT/$BUILD/bench/loadgen
T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-ab.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    git worktree remove --force "$T/base-src" >/dev/null 2>&1 || true
    git worktree remove --force "$T/new-src" >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
log() { printf '[ab] %s\n' "$*" >&2; }

log "building $BASE"
git worktree add --detach -q "$T/base-src" "$BASE"
make -C "$T/base-src" -j2 BUILD=build/release build/release/cmpca >"$T/base-build.log" 2>&1 \
    || { tail -20 "$T/base-build.log"; exit 1; }
OLD=$T/base-src/build/release/cmpca
NEWNAME="this tree"
if [ -n "${NEWREV:-}" ]; then
    NEWNAME=$(git rev-parse --short "$NEWREV")
    log "building $NEWNAME"
    git worktree add --detach -q "$T/new-src" "$NEWREV"
    make -C "$T/new-src" -j2 BUILD=build/release build/release/cmpca >"$T/new-build.log" 2>&1 \
        || { tail -20 "$T/new-build.log"; exit 1; }
    NEW=$T/new-src/build/release/cmpca
fi

"$NEW" factory ca create --dir "$T/V" --name Acme >/dev/null
"$NEW" factory issue --dir "$T/V" --out "$T/DEVS" --count "$NDEV" --prefix SN- --quiet

# make_server DIR BINARY [extra [server] line]
make_server() {
    local d=$1 b=$2 extra=${3:-}
    mkdir -p "$d"
    cat >"$d/cmpca.conf" <<CONF
[server]
listen = 127.0.0.1:0
log_level = warn
$extra
[store]
path = cmpca.db
[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
allow_reenroll = yes
[profile device]
validity = 365d
subject = CN=\${vendor.serialNumber},O=Operator
CONF
    (cd "$d" && "$b" ca create --name root --subject "/O=Operator/CN=Root" --no-passphrase \
        --key-out "$d/root.key" >/dev/null \
     && "$b" ca create --name issuing --parent root --subject "/O=Operator/CN=Issuing" \
        --no-passphrase --key-out "$d/issuing.key" >/dev/null \
     && "$b" vendor add --name acme --ca "$T/V/vendor-chain.pem" >/dev/null \
     && "$b" device import --vendor acme "$T/DEVS/allowlist.csv" >/dev/null \
     && "$b" ca show root --pem >root.pem)
}
# start DIR BINARY: sets SPID SPORT
start() {
    local d=$1 b=$2 i
    rm -f "$d/port"
    (cd "$d" && exec "$b" serve --port-file port) >"$d/serve.log" 2>&1 &
    SPID=$!; PIDS+=("$SPID")
    for i in $(seq 300); do [ -s "$d/port" ] && break; sleep 0.1; done
    SPORT=$(cat "$d/port")
}
# a server that refuses to run as root without being told (it knows the
# key) is told; one that does not know it would refuse the key
root_line() {
    if [ "$(id -u)" = 0 ] && grep -q -a allow_root "$1"; then echo "allow_root = yes"; fi
}
# the devices re-enroll far more than the default per-requester limit
# allows (README "Limits"): off, where the binary knows it
limit_line() {
    if grep -q -a enroll_max_per_window "$1"; then echo "enroll_max_per_window = 0"; fi
}
make_server "$T/old" "$OLD" "$(root_line "$OLD"; limit_line "$OLD")"
make_server "$T/new" "$NEW" "$(root_line "$NEW"; limit_line "$NEW")"
start "$T/old" "$OLD"; OPID=$SPID OPORT=$SPORT
start "$T/new" "$NEW"; NPID=$SPID NPORT=$SPORT
run() {  # run NAME PID PORT DIR
    "$LG" --url "http://127.0.0.1:$3/.well-known/cmp/p/3gpp" --devices "$T/DEVS" \
        --trusted "$4/root.pem" --server-pid "$2" --warmup 1 --label "$1" --client lean \
        --threads "$THREADS" --duration "$DUR" --floor >>"$T/$1.log" 2>&1 \
        || { tail -20 "$T/$1.log" >&2; exit 1; }
    grep '^RESULT' "$T/$1.log" | tail -1 >>"$T/$1.res"
}
for r in $(seq "$RUNS"); do
    log "run $r/$RUNS: $BASE"; run old "$OPID" "$OPORT" "$T/old"
    log "run $r/$RUNS: $NEWNAME"; run new "$NPID" "$NPORT" "$T/new"
done
med() {
    grep -o " $2=[^ ]*" "$T/$1.res" | cut -d= -f2 | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
OT=$(med old tps); NT=$(med new tps); OC=$(med old server_cpu_ms); NC=$(med new server_cpu_ms)
echo "direct 3GPP ir+certConf, $THREADS connections, medians of $RUNS alternating runs of ${DUR}s:"
printf '  %-12s %8s tx/s  %7s ms server CPU per enrollment\n' "$BASE" "$OT" "$OC"
printf '  %-12s %8s tx/s  %7s ms server CPU per enrollment\n' "$NEWNAME" "$NT" "$NC"
awk -v a="$NT" -v b="$OT" -v c="$NC" -v d="$OC" \
    'BEGIN { printf "RESULT base_tps=%s new_tps=%s tps_ratio=%.3f base_cpu_ms=%s new_cpu_ms=%s cpu_ratio=%.3f\n", b, a, a / b, d, c, c / d }'
