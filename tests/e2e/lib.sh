# Shared helpers for the cmpca server e2e scripts (sourced, not run): temp
# dir, TAP output, a PKI with vendor devices, `cmpca serve` start/stop via
# --port-file, bounded openssl cmp / curl calls and response assertions.
# shellcheck shell=bash

set -u
BUILD=${BUILD:-build/release}
REPO=$(pwd)
CMPCA=$(realpath "$BUILD/cmpca")
CRAFT=$(realpath "$BUILD/tools/cmpcraft")
INSPECT=$(realpath "$BUILD/tools/cmpinspect")
ALIAS_PATH=.well-known/cmp/p/3gpp
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

for f in "$CMPCA" "$CRAFT" "$INSPECT"; do
    if [ ! -x "$f" ]; then
        echo "Bail out! $f missing (make $BUILD/... first)"
        exit 1
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-e2e.XXXXXX")
SERVERS=""

. "$(dirname "${BASH_SOURCE[0]}")/lib_tap.sh"
diag() { sed 's/^/# /' "$@" 2>/dev/null; }
# check DESC CMD...: ok if CMD exits 0
check() {
    local d=$1; shift
    if "$@" >"$T/.out" 2>&1; then ok "$d"; else nok "$d"; diag "$T/.out"; fi
}
# is DESC GOT WANT
is() {
    if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', wanted '$3')"; fi
}

# srv_start NAME [extra serve args]: starts `cmpca serve` in $T, waits for
# its port file (bounded) and sets PORT and PORT_<NAME>.
srv_start() {
    local name=$1 i; shift
    rm -f "$T/$name.port"
    (cd "$T" && exec "$CMPCA" -c "$T/cmpca.conf" serve --port-file "$T/$name.port" "$@" \
        >>"$T/$name.log" 2>&1) &
    eval "PID_$name=$!"
    SERVERS="$SERVERS $name"
    for i in $(seq 100); do
        [ -s "$T/$name.port" ] && break
        sleep 0.1
    done
    if [ ! -s "$T/$name.port" ]; then
        echo "# server $name did not start"; diag "$T/$name.log"; return 1
    fi
    PORT=$(cat "$T/$name.port")
    eval "PORT_$name=$PORT"
    return 0
}

# srv_stop NAME: SIGTERM, wait (bounded), SIGKILL as a last resort.
# Returns the server's exit status.
srv_stop() {
    local name=$1 pid i rc=0
    eval "pid=\${PID_$name:-}"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "# server $name did not stop on SIGTERM; killing"
        kill -KILL "$pid" 2>/dev/null
        rc=137
    fi
    wait "$pid" 2>/dev/null || rc=$?
    eval "PID_$name="
    return $rc
}

# Sanitizer findings in any server log are failures.
san_check() {
    local f
    for f in "$T"/*.log; do
        [ -f "$f" ] || continue
        if grep -q -E "AddressSanitizer|LeakSanitizer|runtime error:" "$f"; then
            nok "no sanitizer report in $(basename "$f")"
            grep -E -A15 "AddressSanitizer|LeakSanitizer|runtime error:" "$f" | head -40 | sed 's/^/# /'
        fi
    done
}

e2e_cleanup() {
    local s
    for s in $SERVERS; do srv_stop "$s"; done
    if [ "$failed" != 0 ] && [ -n "${KEEP:-}" ]; then
        echo "# kept $T"
    else
        rm -rf "$T"
    fi
}
trap e2e_cleanup EXIT
# a runner's timeout (SIGTERM) must not leave servers behind
trap 'exit 143' TERM INT HUP

# e2e_done: final checks and exit status.
e2e_done() {
    local s
    for s in $SERVERS; do srv_stop "$s"; done
    san_check
    echo "1..$n"
    exit $failed
}

# cmpca CLI in the test directory
cli() { (cd "$T" && timeout 60 "$CMPCA" -c "$T/cmpca.conf" "$@"); }

# e2e_pki [confirm_wait] [devices]: config, operator root + issuing CA, a
# vendor with devices SN-000001.., allow-list imported; oproot.pem and
# opchain.pem (issuing, root) in $T.
e2e_pki() {
    local cw=${1:-300s} count=${2:-12}
    cat >"$T/cmpca.conf" <<EOF
[server]
listen = 127.0.0.1:0
sweep_interval = 1s
$(serve_user_line)
[store]
path = cmpca.db
[alias 3gpp]
mode = 3gpp
ca = issuing
profile = device
vendors = acme
confirm_wait_time = $cw
time_tolerance = 600s
[profile device]
validity = 365d
subject = CN=\${vendor.serialNumber},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
EOF
    {
        cli ca create --name root --subject "/O=Operator/CN=Operator Root" \
            --no-passphrase --key-out "$T/root.key" &&
        cli ca create --name issuing --parent root --subject "/O=Operator/CN=Issuing CA" \
            --no-passphrase --key-out "$T/issuing.key" &&
        cli factory ca create --dir vendor --name Acme &&
        cli factory issue --dir vendor --out devs --count "$count" --prefix SN- --quiet &&
        cli vendor add --name acme --ca vendor/vendor-chain.pem &&
        cli device import --vendor acme devs/allowlist.csv &&
        cli ca show issuing --pem >"$T/opchain.pem" &&
        cli ca show root --pem >"$T/oproot.pem"
    } >"$T/pki.log" 2>&1 || { echo "Bail out! PKI setup failed"; diag "$T/pki.log"; exit 1; }
    serve_user_own "$T"         # the server runs as nobody after binding
    openssl x509 -in "$T/opchain.pem" -out "$T/issuing.pem"
}

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1" 2>/dev/null; }

# ocmp ARGS...: the stock openssl cmp client against $PORT (bounded).
ocmp() {
    (cd "$T" && timeout 30 openssl cmp -server "127.0.0.1:$PORT" -path "$ALIAS_PATH" "$@")
}

# dev_args SN: vendor credentials of device SN for openssl cmp
dev_args() { echo "-cert devs/$1/cert.pem -key devs/$1/key.pem -extracerts devs/$1/chain.pem"; }

# post FILE OUT [content-type] [path]: POSTs FILE, writes the body to OUT,
# prints the HTTP status.
post() {
    local ct=${3:-application/pkixcmp} path=${4:-/$ALIAS_PATH}
    curl -s --max-time 30 -o "$T/$2" -w '%{http_code}' -H "Content-Type: $ct" \
        --data-binary @"$T/$1" "http://127.0.0.1:$PORT$path"
}

# inspect OUT [args]: cmpinspect against the operator root.
inspect() { (cd "$T" && "$INSPECT" --trusted oproot.pem "$@"); }
# field OUT KEY: value of KEY= in cmpinspect output
field() { inspect "$1" | tail -n +2 | sed -n "s/^$2=//p" | head -1; }

# expect_error DESC HTTP_GOT HTTP_WANT OUT FAILINFO: the response is a
# signed error PKIMessage (verifies against the operator root) with the
# failInfo bit, sent with the expected HTTP status.
expect_error() {
    local d=$1 got=$2 want=$3 out=$4 fi=$5 s
    s=$(inspect "$out" | head -1)
    if [ "$got" = "$want" ] && echo "$s" | grep -q "^body=error status=2 failInfo=[^ ]*\b$fi\b[^ ]* protected=ok"; then
        ok "$d: HTTP $got, protected error, $fi"
    else
        nok "$d: wanted HTTP $want + protected error $fi; got HTTP $got: $s"
    fi
}

# expect_rejection DESC HTTP_GOT OUT BODY FAILINFO: a refusal of the
# request's content, answered (RFC 9483 3.6.4) in the response of its type
# BODY (ip/cp/kup/rp) with status rejection (2) and the failInfo bit,
# signed, with HTTP 200.
expect_rejection() {
    local d=$1 got=$2 out=$3 body=$4 fi=$5 s
    s=$(inspect "$out" | head -1)
    if [ "$got" = 200 ] && echo "$s" | grep -q "^body=$body status=2 failInfo=[^ ]*\b$fi\b[^ ]* protected=ok"; then
        ok "$d: HTTP 200, protected $body with status rejection, $fi"
    else
        nok "$d: wanted HTTP 200 + protected $body rejection $fi; got HTTP $got: $s"
    fi
}

# Counters of state for "nothing changed" assertions.
cert_count() { cli cert list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
dev_state() {
    cli device show --vendor acme "$1" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}
audit_count() { cli audit list --limit 0 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
cert_status() {   # cert_status SERIAL_HEX (lower case)
    cli cert list --json | python3 -c '
import json,sys
s=sys.argv[1].lower().lstrip("0")
for c in json.load(sys.stdin):
    if c["serial"].lower().lstrip("0")==s: print(c["status"]); break
else: print("none")' "$1"
}
serial_of() { openssl x509 -in "$T/$1" -noout -serial | sed 's/serial=//' | tr 'A-F' 'a-f'; }
health() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health"; }

# ir_open SN KEY: ir without certConf (saves ir-SN.der, ip-SN.der, op-SN.pem)
ir_open() {
    newkey "$2"
    ocmp -cmd ir -disable_confirm $(dev_args "$1") -trusted oproot.pem -newkey "$2" \
        -subject "/CN=$1" -certout "op-$1.pem" -reqout "ir-$1.der" -rspout "ip-$1.der" \
        >"$T/o.out" 2>&1
}
# certconf SN OUT [opts]: certConf for SN's open transaction (cmpcraft)
certconf() {
    local sn=$1 out=$2; shift 2
    "$CRAFT" certconf --ip "$T/ip-$sn.der" --req "$T/ir-$sn.der" \
        --key "$T/devs/$sn/key.pem" --out "$T/$out" "$@"
}

# two_server_checks SN KEY FIRST: with servers a and b on one store, the ir
# of SN on A is confirmed on B (and the replays answered alike), then eight
# devices FIRST..FIRST+7 enroll at once, alternating between A and B.
two_server_checks() {
    local sn=$1 key=$2 first=$3 i s h c0 good=0 pids=""
    PORT=$PORT_a
    check "ir (no certConf) on server A" ir_open "$sn" "$key"
    is "$sn pending after the ip" "$(dev_state "$sn")" pending
    PORT=$PORT_b
    certconf "$sn" "cc-$sn.der"
    h=$(post "cc-$sn.der" "cc-$sn.rsp")
    is "certConf on server B for A's transaction: pkiConf" "$h/$(field "cc-$sn.rsp" body)" 200/pkiconf
    is "$sn enrolled" "$(dev_state "$sn")" enrolled
    PORT=$PORT_a
    h=$(post "cc-$sn.der" "cc-$sn-a.rsp")
    is "the same certConf replayed on A: pkiConf" "$h/$(field "cc-$sn-a.rsp" body)" 200/pkiconf
    PORT=$PORT_b
    h=$(post "ir-$sn.der" "ir-$sn-b.rsp")
    expect_error "A's ir replayed on B" "$h" 200 "ir-$sn-b.rsp" transactionIdInUse
    c0=$(cert_count)
    for i in $(seq "$first" $((first + 7))); do
        s=$(printf 'SN-%06d' "$i")
        if [ $((i % 2)) = 0 ]; then PORT=$PORT_a; else PORT=$PORT_b; fi
        newkey "kc$i.key"
        ( ocmp -cmd ir $(dev_args "$s") -trusted oproot.pem -newkey "kc$i.key" -subject "/CN=$s" \
            -certout "opc$i.pem" >"$T/c$i.out" 2>&1; echo $? >"$T/c$i.rc" ) &
        pids="$pids $!"
    done
    wait $pids
    for i in $(seq "$first" $((first + 7))); do
        s=$(printf 'SN-%06d' "$i")
        if [ "$(cat "$T/c$i.rc")" = 0 ] && [ "$(dev_state "$s")" = enrolled ]; then
            good=$((good + 1))
        else
            diag "$T/c$i.out" | tail -3
        fi
    done
    is "8 concurrent enrollments on two servers succeed" "$good" 8
    is "8 certificates issued" "$(cert_count)" $((c0 + 8))
    if grep -h "outcome=error" "$T/a.log" "$T/b.log" >"$T/errs"; then
        nok "no store errors under concurrency"; diag "$T/errs"
    else
        ok "no store errors under concurrency"
    fi
}
