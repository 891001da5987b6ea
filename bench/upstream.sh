#!/usr/bin/env bash
# Enrollment through a cmpca RA (mode = upstream) versus directly at the CA,
# in one run: one CA (a 3gpp alias for the direct path, an ra alias for the
# RA), one RA with its own store, the same factory devices on both;
# loadgen closed loop (lean client, ir+certConf, re-enrolling devices)
# alternating direct / through the RA RUNS times. Prints the medians of
# enrollments/s and transaction latency, and the latency the RA adds.
# Env: RUNS (3), DUR (5 s), THREADS (8), NDEV (200), FORM (nested |
# reprotect), RESPONSE (relay | reprotect), REPEATS (answer_repeats on the
# CA's ra aliases: yes | no), BUILD (build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build/release}
RUNS=${RUNS:-3}; DUR=${DUR:-5}; THREADS=${THREADS:-8}; NDEV=${NDEV:-200}
FORM=${FORM:-nested}; RESPONSE=${RESPONSE:-relay}
B=$ROOT/$BUILD/cmpca
LG=$ROOT/$BUILD/bench/loadgen
T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-upbench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
log() { printf '[upstream] %s\n' "$*" >&2; }
root_line() { if [ "$(id -u)" = 0 ]; then echo "user = nobody"; fi; }
own() { if [ "$(id -u)" = 0 ]; then chown -R nobody "$@"; fi; }

"$B" factory ca create --dir "$T/V" --name Acme >/dev/null
"$B" factory issue --dir "$T/V" --out "$T/DEVS" --count "$((NDEV + 1))" --prefix SN- --quiet
mkdir -p "$T/ca" "$T/ra"
cat >"$T/ca/cmpca.conf" <<CONF
[server]
listen = 127.0.0.1:0
log_level = warn
enroll_max_per_window = 0
$(root_line)
[store]
path = cmpca.db
[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
allow_reenroll = yes
[alias ra]
mode = ra
ca = issuing
profile = device
vendors = acme
allow_reenroll = yes
allow_ra_verified = yes
answer_repeats = ${REPEATS:-yes}
[alias rap]
mode = ra
ca = issuing
profile = radev
allow_ra_verified = yes
answer_repeats = ${REPEATS:-yes}
[alias rasetup]
mode = 3gpp
ca = issuing
profile = racert
vendors = acme
[profile device]
validity = 365d
subject = CN=\${vendor.serialNumber},O=Operator
[profile radev]
validity = 365d
subject = CN=ra-device,O=Operator
[profile racert]
validity = 30d
subject = CN=RA,O=Operator
ext_key_usage = 1.3.6.1.5.5.7.3.28
CONF
cd "$T/ca"
"$B" ca create --name root --subject "/O=Operator/CN=Root" --no-passphrase \
    --key-out "$T/ca/root.key" >/dev/null
"$B" ca create --name issuing --parent root --subject "/O=Operator/CN=Issuing" \
    --no-passphrase --key-out "$T/ca/issuing.key" >/dev/null
"$B" vendor add --name acme --ca "$T/V/vendor-chain.pem" >/dev/null
"$B" device import --vendor acme "$T/DEVS/allowlist.csv" >/dev/null
"$B" ca show root --pem >"$T/root.pem"
"$B" ca show issuing --pem | openssl x509 >"$T/issuing.pem"
own "$T"
# start DIR: sets SPID SPORT
start() {
    local d=$1 i
    rm -f "$d/port"
    (cd "$d" && exec "$B" -c "$d/cmpca.conf" serve --port-file port) >"$d/serve.log" 2>&1 &
    SPID=$!; PIDS+=("$SPID")
    for i in $(seq 300); do [ -s "$d/port" ] && break; sleep 0.1; done
    SPORT=$(cat "$d/port")
}
start "$T/ca"; CPID=$SPID CPORT=$SPORT
# the RA's certificate, from the CA, registered there
SN=$(printf 'SN-%06d' "$((NDEV + 1))")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ra/ra.key" 2>/dev/null
openssl cmp -server "127.0.0.1:$CPORT" -path .well-known/cmp/p/rasetup -cmd ir \
    -cert "$T/DEVS/$SN/cert.pem" -key "$T/DEVS/$SN/key.pem" -extracerts "$T/DEVS/$SN/chain.pem" \
    -trusted "$T/root.pem" -newkey "$T/ra/ra.key" -subject /CN=RA -certout "$T/ra/ra.pem" \
    >"$T/rasetup.log" 2>&1
(cd "$T/ca" && "$B" ra add --name upra --cert "$T/ra/ra.pem" --alias ra --alias rap \
    --ra-verified >/dev/null)
# nested: the CA checks the device again (3GPP, profile from the vendor
# certificate); re-protected: the RA vouches, a profile without vendor data
CA_ALIAS=ra
[ "$FORM" = reprotect ] && CA_ALIAS=rap
cat "$T/ra/ra.pem" "$T/issuing.pem" >"$T/ra/ra-chain.pem"
cat >"$T/ra/cmpca.conf" <<CONF
[server]
listen = 127.0.0.1:0
log_level = warn
$(root_line)
[store]
path = ra.db
[alias 3gpp]
mode = upstream
vendors = acme
allow_reenroll = yes
upstream_url = http://127.0.0.1:$CPORT/.well-known/cmp/p/$CA_ALIAS
upstream_trust = $T/root.pem
ra_cert = $T/ra/ra-chain.pem
ra_key = $T/ra/ra.key
upstream_form = $FORM
upstream_response = $RESPONSE
CONF
(cd "$T/ra" && "$B" vendor add --name acme --ca "$T/V/vendor-chain.pem" >/dev/null \
    && "$B" device import --vendor acme "$T/DEVS/allowlist.csv" >/dev/null)
own "$T"
start "$T/ra"; RPID=$SPID RPORT=$SPORT

run() {  # run NAME PORT PID
    "$LG" --url "http://127.0.0.1:$2/.well-known/cmp/p/3gpp" --devices "$T/DEVS" \
        --trusted "$T/root.pem" --server-pid "$3" --warmup 1 --label "$1" --client lean \
        --threads "$THREADS" --duration "$DUR" >>"$T/$1.log" 2>&1 \
        || { tail -20 "$T/$1.log" >&2; exit 1; }
    grep '^RESULT' "$T/$1.log" | tail -1 >>"$T/$1.res"
}
for r in $(seq "$RUNS"); do
    log "run $r/$RUNS: direct"; run direct "$CPORT" "$CPID"
    log "run $r/$RUNS: through the RA ($FORM, $RESPONSE)"; run ra "$RPORT" "$RPID"
done
med() {
    grep -o " $2=[^ ]*" "$T/$1.res" | cut -d= -f2 | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
errs() { grep -o " errors=[^ ]*" "$T/$1.res" | cut -d= -f2 | paste -sd+ | bc; }
DT=$(med direct tps); RT=$(med ra tps)
DP=$(med direct txn_p50); RP=$(med ra txn_p50); DQ=$(med direct txn_p99); RQ=$(med ra txn_p99)
DC=$(med direct server_cpu_ms); RC=$(med ra server_cpu_ms)
echo "ir+certConf, $THREADS connections, medians of $RUNS alternating runs of ${DUR}s ($FORM, $RESPONSE):"
printf '  %-16s %8s enrollments/s  txn p50 %7s ms  p99 %7s ms  errors %s  CA CPU %s ms/enrollment\n' \
    direct "$DT" "$DP" "$DQ" "$(errs direct)" "$DC"
printf '  %-16s %8s enrollments/s  txn p50 %7s ms  p99 %7s ms  errors %s  RA CPU %s ms/enrollment\n' \
    "through the RA" "$RT" "$RP" "$RQ" "$(errs ra)" "$RC"
echo "  (CPU: the network process of the server loadgen talks to; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v a="$RT" -v b="$DT" -v c="$RP" -v d="$DP" -v e="$DC" -v f="$RC" \
    'BEGIN { printf "RESULT direct_tps=%s ra_tps=%s tps_ratio=%.3f direct_p50_ms=%s ra_p50_ms=%s added_p50_ms=%.3f ca_cpu_ms=%s ra_cpu_ms=%s\n", b, a, a / b, d, c, c - d, e, f }'
