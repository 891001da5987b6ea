#!/bin/bash
# Store size per enrollment (issue 16, point 4): a SQLite store before and
# after a long closed-loop ir+certConf run, then after the transaction
# purge (the server restarted with a short txn_retention; the sweeper
# purges at its first pass). Size = pages in use (page_count -
# freelist_count) x page_size after a WAL checkpoint, i.e. what the rows
# take, not what the file has grown to. Writes bench/out/store_size.md.
# Env: BUILD (build/release), NDEV (500), SHORT (3 s), LONG (60 s),
# THREADS (8), KEEP=1.
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build/release}
B=$ROOT/$BUILD/cmpca
LG=$ROOT/$BUILD/bench/loadgen
NDEV=${NDEV:-500}; SHORT=${SHORT:-3}; LONG=${LONG:-60}; THREADS=${THREADS:-8}
OUT=$ROOT/bench/out
mkdir -p "$OUT"
for x in "$B" "$LG"; do [ -x "$x" ] || { echo "store_size.sh: $x missing" >&2; exit 1; }; done
command -v sqlite3 >/dev/null || { echo "store_size.sh: sqlite3 missing" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-bsize.XXXXXX")
SPID=""
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
D=$T/srv
mkdir -p "$D"
"$B" factory ca create --dir "$T/V" --name Acme >/dev/null
"$B" factory issue --dir "$T/V" --out "$T/DEVS" --count "$NDEV" --prefix SN- --quiet
conf() {    # conf RETENTION
    cat > "$D/cmpca.conf" <<CONF
[server]
listen = 127.0.0.1:0
log_level = warn
sweep_interval = 1s
txn_retention = $1
$([ "$(id -u)" = 0 ] && echo "user = nobody")
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
CONF
}
conf 7d
(cd "$D" && "$B" ca create --name root --subject "/O=Operator/CN=Root" \
    --no-passphrase --key-out "$D/root.key" >/dev/null \
 && "$B" ca create --name issuing --parent root --subject "/O=Operator/CN=Issuing" \
    --no-passphrase --key-out "$D/issuing.key" >/dev/null \
 && "$B" vendor add --name acme --ca "$T/V/vendor-chain.pem" >/dev/null \
 && "$B" device import --vendor acme "$T/DEVS/allowlist.csv" >/dev/null \
 && "$B" ca show root --pem > root.pem)
if [ "$(id -u)" = 0 ]; then chmod 711 "$T"; chown -R nobody "$D"; fi

start() {
    rm -f "$D/port"
    (cd "$D" && exec "$B" serve --port-file port) >> "$D/serve.log" 2>&1 &
    SPID=$!
    for _ in $(seq 100); do [ -s "$D/port" ] && break; sleep 0.1; done
    [ -s "$D/port" ] || { cat "$D/serve.log" >&2; exit 1; }
}
stop() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""; }
run() {     # run SECONDS
    "$LG" --url "http://127.0.0.1:$(cat "$D/port")/.well-known/cmp/p/3gpp" \
        --devices "$T/DEVS" --trusted "$D/root.pem" --client lean \
        --threads "$THREADS" --duration "$1" --warmup 0 >> "$T/lg.log" 2>&1
}
# measure LABEL: one row "label | certificates | transactions | bytes |
# bytes per certificate"
measure() {
    local db=$D/cmpca.db used certs txns audit
    sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
    used=$(sqlite3 "$db" 'SELECT (p.page_count - f.freelist_count) * s.page_size FROM pragma_page_count p, pragma_freelist_count f, pragma_page_size s')
    certs=$(sqlite3 "$db" 'SELECT count(*) FROM cert WHERE device_id IS NOT NULL')
    txns=$(sqlite3 "$db" 'SELECT count(*) FROM cmp_txn')
    audit=$(sqlite3 "$db" 'SELECT count(*) FROM audit')
    printf '| %s | %d | %d | %d | %d | %s |\n' "$1" "$certs" "$txns" "$audit" "$used" \
        "$(awk -v u="$used" -v c="$certs" 'BEGIN { if (c > 0) printf "%.0f", u / c; else print "n/a" }')"
}
{
    echo "# Store size per enrollment (SQLite, $(date -u +%Y-%m-%d), $NDEV devices, $THREADS workers)"
    echo
    echo "| point | certificates | cmp_txn rows | audit rows | bytes in use | bytes per certificate |"
    echo "|---|---|---|---|---|---|"
    start
    run "$SHORT"
    measure "after a ${SHORT} s run"
    run "$LONG"
    measure "after ${LONG} s more"
    stop
    conf 1s
    start
    sleep 4                       # the sweeper's first pass purges
    stop
    measure "after the purge (txn_retention = 1s)"
} > "$OUT/store_size.md"
cat "$OUT/store_size.md"
