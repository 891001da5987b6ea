#!/usr/bin/env bash
# cmpca as the RA in front of a CA (mode = upstream), chained on loopback:
# the stock openssl cmp client as the device -> cmpca RA -> cmpca CA in ra
# mode (the RA registered with `cmpca ra add`). ir+certConf, kur+certConf,
# rr and genm in the nested and the re-protected form, answers relayed or
# re-protected; a device the RA refuses never reaches the CA; a refusal of
# the CA reaches the device protected; a CA that is down or silent gives a
# bounded systemUnavail (503); the RA restarted between ip and certConf;
# byte-identical repeats get the stored answer and no second certificate.
# shellcheck disable=SC2046
. "$(dirname "$0")/lib.sh"

# RA_PG=1: the RA's store in a throw-away PostgreSQL cluster
# (scripts/pg-test-server.sh) instead of SQLite.
RA_STORE="path = ra.db"
if [ "${RA_PG:-0}" = 1 ]; then
    PGS=$REPO/scripts/pg-test-server.sh
    pg_cleanup() {
        local s
        for s in $SERVERS; do srv_stop "$s"; done
        "$PGS" stop "$T/pg" >/dev/null 2>&1
        e2e_cleanup
    }
    trap pg_cleanup EXIT
    CI=$("$PGS" start "$T/pg" 2>"$T/pgstart.log") ||
        { echo "Bail out! PostgreSQL did not start"; diag "$T/pgstart.log"; exit 1; }
    RA_STORE="backend = postgresql
conninfo = $CI
password = file:$T/pg/password"
fi
e2e_pki 300s 24
cat >>"$T/cmpca.conf" <<EOF
[alias ra]
mode = ra
ca = issuing
profile = radev
vendors = acme
allow_ra_verified = yes
[alias rasetup]
mode = 3gpp
ca = issuing
profile = racert
vendors = acme
[profile radev]
validity = 30d
subject = CN=\${request.CN},O=Operator
key_usage = digitalSignature
ext_key_usage = clientAuth
[profile racert]
validity = 30d
subject = CN=RA \${vendor.serialNumber},O=Operator
key_usage = digitalSignature
ext_key_usage = 1.3.6.1.5.5.7.3.28,clientAuth
EOF
srv_start ca || exit 1
CA_PORT=$PORT

# The RA's certificate (id-kp-cmcRA) from the CA, registered there as an RA.
newkey ra.key
check "RA certificate from the CA" ocmp -path .well-known/cmp/p/rasetup -cmd ir \
    $(dev_args SN-000024) -trusted oproot.pem -newkey ra.key -subject /CN=RA -certout ra.pem
check "ra add upra (raVerified)" cli ra add --name upra --cert ra.pem --alias ra --ra-verified

# The RA: its own store with the vendor and the allow-list (without
# SN-000023: the RA refuses it), four aliases for the forms, one whose
# upstream never answers.
R=$T/ra
mkdir -p "$R"
cat "$T/ra.pem" "$T/issuing.pem" >"$R/ra-chain.pem"
cp "$T/ra.key" "$R/ra.key"
newkey x.key
grep -v SN-000023 "$T/devs/allowlist.csv" >"$R/allow.csv"
python3 -c 'import socket,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(64)
open("'"$T"'/silent.port","w").write(str(s.getsockname()[1])); time.sleep(600)' &
SILENT_PID=$!
for i in $(seq 50); do [ -s "$T/silent.port" ] && break; sleep 0.1; done
MOCK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOCK2_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "sesame-1234-upstream" >"$R/mac.secret"
chmod 600 "$R/mac.secret"
up_alias() {   # NAME FORM RESPONSE [URL] [TRUST]
    cat <<EOF
[alias $1]
mode = upstream
vendors = acme
upstream_url = ${4:-http://127.0.0.1:$CA_PORT/.well-known/cmp/p/ra}
upstream_trust = ${5:-$T/oproot.pem}
ra_cert = $R/ra-chain.pem
ra_key = $R/ra.key
upstream_form = $2
upstream_response = $3
upstream_timeout = 2s
upstream_retries = 1
EOF
}
{
    cat <<EOF
[server]
listen = 127.0.0.1:0
sweep_interval = 1s
$(serve_user_line)
[store]
$RA_STORE
EOF
    up_alias nr nested relay
    up_alias np nested reprotect
    up_alias rr reprotect relay
    up_alias rp reprotect reprotect
    up_alias silent nested relay "http://127.0.0.1:$(cat "$T/silent.port")/x"
    up_alias mock reprotect reprotect "http://127.0.0.1:$MOCK_PORT/" "$T/mock.pem"
    up_alias mockmac reprotect reprotect "http://127.0.0.1:$MOCK2_PORT/"
    echo "upstream_mac_secret = file:$R/mac.secret"
    up_alias wt nested reprotect
    echo "upstream_unavailable = wait"
    echo "upstream_poll_after = 1s"
    up_alias wr reprotect reprotect
    echo "upstream_unavailable = wait"
    echo "upstream_poll_after = 1s"
} >"$R/cmpca.conf"
# An independent upstream: the stock openssl cmp mock server with its own
# CA, which answers every ir with one fixed certificate (for key mk.key).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Mock CA" \
    -keyout "$T/mock.key" -out "$T/mock.pem" -days 30 \
    -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature >/dev/null 2>&1
newkey mk.key
openssl req -new -key "$T/mk.key" -subj /CN=mockdev -out "$T/mk.csr" 2>/dev/null
openssl x509 -req -in "$T/mk.csr" -CA "$T/mock.pem" -CAkey "$T/mock.key" -CAcreateserial \
    -days 30 -out "$T/mk.pem" 2>/dev/null
rcli() { (cd "$R" && timeout 60 "$CMPCA" -c "$R/cmpca.conf" "$@"); }
{
    rcli vendor add --name acme --ca "$T/vendor/vendor-chain.pem" &&
    rcli device import --vendor acme allow.csv
} >"$T/rasetup.log" 2>&1 || { echo "Bail out! RA setup failed"; diag "$T/rasetup.log"; exit 1; }
serve_user_own "$R"
ra_start() {
    rm -f "$R/ra.port"
    (cd "$R" && exec "$CMPCA" -c "$R/cmpca.conf" serve --port-file "$R/ra.port" \
        >>"$T/ra.log" 2>&1) &
    PID_ra=$!
    SERVERS="$SERVERS ra"
    for i in $(seq 100); do [ -s "$R/ra.port" ] && break; sleep 0.1; done
    [ -s "$R/ra.port" ] || { diag "$T/ra.log"; return 1; }
    RA_PORT=$(cat "$R/ra.port")
}
# Configurations the RA refuses to start with, each with its reason.
bad_conf() {   # DESC EXPECTED-TEXT LINES...
    local d=$1 want=$2 out; shift 2
    { sed -n '1,/^\[alias nr\]/p' "$R/cmpca.conf" | sed '$d'
      echo "[alias bad]"; echo "mode = upstream"; printf '%s\n' "$@"; } >"$R/bad.conf"
    out=$(cd "$R" && timeout 20 "$CMPCA" -c "$R/bad.conf" serve --port-file "$R/bad.port" 2>&1)
    if [ $? -ne 0 ] && echo "$out" | grep -q "$want"; then ok "refused: $d"
    else nok "refused: $d (got: $(echo "$out" | tail -1))"; fi
}
base=("upstream_url = http://127.0.0.1:1/" "upstream_trust = $T/oproot.pem"
      "ra_cert = $R/ra-chain.pem")
bad_conf "a profile on an upstream alias" "issues nothing itself" "${base[@]}" "ra_key = $R/ra.key" "profile = device"
bad_conf "no upstream_trust" "needs upstream_url and upstream_trust" \
    "upstream_url = http://127.0.0.1:1/" "ra_cert = $R/ra-chain.pem" "ra_key = $R/ra.key"
bad_conf "wait without re-protected answers" "needs upstream_response = reprotect" \
    "${base[@]}" "ra_key = $R/ra.key" "upstream_unavailable = wait"
bad_conf "an RA key that is not the certificate's" "does not belong to ra_cert" \
    "${base[@]}" "ra_key = $T/x.key"
bad_conf "an unknown form" "upstream_form must be nested or reprotect" \
    "${base[@]}" "ra_key = $R/ra.key" "upstream_form = tunnel"
check "RA starts (mode = upstream)" ra_start
PORT=$RA_PORT

# device SN ALIAS ARGS...: openssl cmp as device against RA alias ALIAS
device() {
    local a=$1; shift
    PORT=$RA_PORT ocmp -path ".well-known/cmp/p/$a" -trusted oproot.pem "$@"
}
ca_serial_status() { PORT=$CA_PORT cert_status "$(serial_of "$1")"; }
if [ "${RA_PG:-0}" = 1 ]; then
    ra_rows() { PGPASSWORD=$(cat "$T/pg/password") psql "$CI" -qAt \
        -c "SELECT count(*) FROM cmp_txn_reply WHERE upstream=1 $1"; }
else
    ra_rows() { sqlite3 "$R/ra.db" "SELECT count(*) FROM cmp_txn_reply WHERE upstream=1 $1"; }
fi

n_dev=1
for a in nr np rr rp; do
    sn=$(printf 'SN-%06d' $n_dev)
    n_dev=$((n_dev + 1))
    newkey "$a-1.key"
    check "$a: ir+certConf of $sn through the RA" device "$a" -cmd ir $(dev_args "$sn") \
        -newkey "$a-1.key" -subject "/CN=$sn" -certout "$a-1.pem"
    is "$a: the CA issued it (valid in the CA's store)" "$(ca_serial_status "$a-1.pem")" valid
    is "$a: issued by the operator CA" \
        "$(openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/$a-1.pem" 2>&1 | tail -1)" \
        "$T/$a-1.pem: OK"
    newkey "$a-2.key"
    check "$a: kur+certConf through the RA" device "$a" -cmd kur -cert "$a-1.pem" -key "$a-1.key" \
        -extracerts opchain.pem -newkey "$a-2.key" -certout "$a-2.pem"
    is "$a: the renewed certificate is valid" "$(ca_serial_status "$a-2.pem")" valid
    check "$a: genm caCerts through the RA" device "$a" -cmd genm -infotype caCerts \
        -cert "$a-2.pem" -key "$a-2.key" -extracerts opchain.pem
    check "$a: rr through the RA" device "$a" -cmd rr -cert "$a-2.pem" -key "$a-2.key" \
        -extracerts opchain.pem -oldcert "$a-2.pem" -revreason 1
    is "$a: revoked in the CA's store" "$(ca_serial_status "$a-2.pem")" revoked
done
is "the RA recorded every relayed message (4 forms x ir,certConf,kur,certConf,genm,rr)" \
    "$(ra_rows "")" 24
is "the RA audited each relay" \
    "$(rcli audit list --limit 0 --json | python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin) if a["action"]=="upstream.relay"))')" 24
is "nested form: the CA logged nested inner messages" \
    "$(grep -c 'alias=ra type=ir .*ra="upra" nested=1 outcome=accepted' "$T/ca.log")" 2
is "reprotected form: raVerified ir signed by the RA at the CA" \
    "$(grep -c 'alias=ra type=ir .*ra="upra" outcome=accepted' "$T/ca.log")" 2

# A device the RA refuses (not on the RA's allow-list): protected by the
# RA, nothing sent upstream.
c0=$(PORT=$CA_PORT cert_count); a0=$(PORT=$CA_PORT audit_count); r0=$(ra_rows "")
newkey x.key
device nr -cmd ir $(dev_args SN-000023) -newkey x.key -subject /CN=x -certout x.pem -rspout refused.rsp \
    >"$T/o.out" 2>&1
expect_error "device not on the RA's allow-list" 200 200 refused.rsp notAuthorized
is "refused at the RA: the CA issued nothing" "$(PORT=$CA_PORT cert_count)" "$c0"
is "refused at the RA: no audit row at the CA" "$(PORT=$CA_PORT audit_count)" "$a0"
is "refused at the RA: nothing relayed" "$(ra_rows "")" "$r0"
is "refused at the RA: signed by the RA" "$(field refused.rsp sender)" "CN=RA SN-000024,O=Operator"

# A refusal of the CA reaches the device protected (SN-000001 is enrolled
# already: the CA's 3GPP check of the nested ir refuses it).
newkey y.key
device nr -cmd ir $(dev_args SN-000001) -newkey y.key -subject /CN=y -certout y.pem -rspout caref.rsp \
    >"$T/o.out" 2>&1
expect_error "the CA's refusal relayed" 200 200 caref.rsp notAuthorized
grep -q 'alias=ra type=nested\|alias=ra type=ir .*outcome=rejected' "$T/ca.log" \
    && ok "the refusal was the CA's" || nok "the refusal was the CA's"
is "the CA's refusal is signed by the CA" "$(field caref.rsp sender)" "CN=Issuing CA,O=Operator"

# The RA restarted between ip and certConf.
sn=SN-000010
newkey rs.key
device nr -cmd ir -disable_confirm $(dev_args $sn) -newkey rs.key -subject /CN=$sn \
    -certout rs.pem -reqout rs-ir.der -rspout rs-ip.der >"$T/o.out" 2>&1
is "ir without certConf: $sn pending at the CA" "$(PORT=$CA_PORT dev_state $sn)" pending
srv_stop ra
check "RA restarted" ra_start
PORT=$RA_PORT
"$CRAFT" certconf --ip "$T/rs-ip.der" --req "$T/rs-ir.der" --key "$T/devs/$sn/key.pem" \
    --out "$T/rs-cc.der"
h=$(post rs-cc.der rs-cc.rsp application/pkixcmp /.well-known/cmp/p/nr)
is "certConf after the RA's restart: pkiConf" "$h/$(field rs-cc.rsp body)" 200/pkiconf
is "$sn enrolled at the CA" "$(PORT=$CA_PORT dev_state $sn)" enrolled

# Repeats: the device's ir again at the RA gets the recorded ip (no second
# forward); an RA-signed ir repeated at the CA gets the same reply.
c0=$(PORT=$CA_PORT cert_count)
h=$(post rs-ir.der rs-ip2.der application/pkixcmp /.well-known/cmp/p/nr)
is "repeated ir at the RA: HTTP 200" "$h" 200
cmp -s "$T/rs-ip.der" "$T/rs-ip2.der" && ok "repeated ir at the RA: the same ip" \
    || nok "repeated ir at the RA: the same ip"
newkey rp.key
PORT=$CA_PORT ocmp -path .well-known/cmp/p/ra -cert ra.pem -key ra.key -extracerts opchain.pem \
    -trusted oproot.pem -cmd ir -disable_confirm -newkey rp.key -subject /CN=rep \
    -reqout rep-ir.der -rspout rep-ip.der -certout rep.pem >"$T/o.out" 2>&1
c1=$(PORT=$CA_PORT cert_count)
h=$(PORT=$CA_PORT post rep-ir.der rep-ip2.der application/pkixcmp /.well-known/cmp/p/ra)
is "byte-identical ir repeated at the CA: HTTP 200" "$h" 200
cmp -s "$T/rep-ip.der" "$T/rep-ip2.der" && ok "repeated ir at the CA: the same stored ip" \
    || nok "repeated ir at the CA: the same stored ip"
is "repeated ir at the CA: no second certificate" "$(PORT=$CA_PORT cert_count)" "$c1"
is "no certificate from the RA's repeat either" "$((c1 - c0))" 1

# device -> cmpca RA (re-protected, raVerified) -> openssl cmp mock server
# (trusts the operator root for the RA's signature, accepts raVerified);
# one transaction: ir and certConf.
(cd "$T" && exec timeout 60 openssl cmp -port "$MOCK_PORT" -srv_cert mock.pem -srv_key mock.key \
    -srv_trusted oproot.pem -srv_untrusted issuing.pem -rsp_cert mk.pem -rsp_capubs mock.pem \
    -accept_raverified -max_msgs 2 >"$T/mock.log" 2>&1) &
MOCK_PID=$!
for i in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $MOCK_PORT), 1)" 2>/dev/null && break
    sleep 0.1
done
check "ir+certConf through the RA to the openssl mock server" device mock -cmd ir \
    $(dev_args SN-000013) -newkey mk.key -subject /CN=mockdev -certout mock-dev.pem
cmp -s "$T/mk.pem" <(openssl x509 -in "$T/mock-dev.pem") && ok "the mock server's certificate arrived" \
    || nok "the mock server's certificate arrived"
wait "$MOCK_PID" 2>/dev/null
[ "$(grep -c "Received request" "$T/mock.log")" = 2 ] && ok "the mock server got two requests (ir, certConf)" \
    || { nok "the mock server got two requests (ir, certConf)"; diag "$T/mock.log"; }
is "mock: ir and certConf recorded by the RA" "$(ra_rows "AND alias='mock'")" 2

# The same with the upstream MAC secret instead of the RA's signature (the
# device's own POP kept; the mock server answers with PasswordBasedMac;
# the RA re-signs the answers for the device).
(cd "$T" && exec timeout 60 openssl cmp -port "$MOCK2_PORT" -srv_secret pass:sesame-1234-upstream \
    -srv_ref mockca -rsp_cert mk.pem -rsp_capubs mock.pem -max_msgs 2 >"$T/mock2.log" 2>&1) &
MOCK2_PID=$!
for i in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $MOCK2_PORT), 1)" 2>/dev/null && break
    sleep 0.1
done
check "MAC-protected forward: ir+certConf through the RA to the mock server" device mockmac \
    -cmd ir $(dev_args SN-000015) -newkey mk.key -subject /CN=mockdev -certout mock-mac.pem
cmp -s "$T/mk.pem" <(openssl x509 -in "$T/mock-mac.pem" 2>/dev/null) \
    && ok "MAC-protected forward: the certificate arrived" \
    || { nok "MAC-protected forward: the certificate arrived"; diag "$T/mock2.log"; }
wait "$MOCK2_PID" 2>/dev/null
is "MAC-protected forward: ir and certConf recorded" "$(ra_rows "AND alias='mockmac'")" 2

# The upstream silent or down: bounded systemUnavail, HTTP 503 (the
# timeout is 2 s, one retry: 4 s at most; openssl cmp does not keep a 503
# body, so its request is posted again with curl).
newkey z.key
t0=$(date +%s.%N)
PORT=$RA_PORT ocmp -path .well-known/cmp/p/silent -trusted oproot.pem -cmd ir \
    $(dev_args SN-000011) -newkey z.key -subject /CN=z -certout z.pem -reqout silent-ir.der \
    >"$T/o.out" 2>&1
t1=$(date +%s.%N)
ms=$(python3 -c "print(int(($t1-$t0)*1000))")
[ "$ms" -ge 3800 ] && [ "$ms" -le 5500 ] && ok "silent upstream: answered in ${ms} ms (bound 4 s)" \
    || nok "silent upstream: answered in ${ms} ms (bound 4 s)"
echo "# silent upstream: systemUnavail after $ms ms"
h=$(PORT=$RA_PORT post silent-ir.der silent.rsp application/pkixcmp /.well-known/cmp/p/silent)
expect_error "silent upstream" "$h" 503 silent.rsp systemUnavail
is "silent upstream: nothing recorded" "$(ra_rows "AND alias='silent'")" 0
srv_stop ca
t0=$(date +%s.%N)
device nr -cmd ir $(dev_args SN-000012) -newkey z.key -subject /CN=z -certout z.pem \
    -reqout down-ir.der >"$T/o.out" 2>&1
t1=$(date +%s.%N)
ms=$(python3 -c "print(int(($t1-$t0)*1000))")
echo "# CA stopped: systemUnavail after $ms ms"
h=$(PORT=$RA_PORT post down-ir.der down.rsp application/pkixcmp /.well-known/cmp/p/nr)
expect_error "CA stopped" "$h" 503 down.rsp systemUnavail
[ "$ms" -le 4500 ] && ok "CA stopped: answered in ${ms} ms" || nok "CA stopped: answered in ${ms} ms"
# upstream_unavailable = wait: with the CA down the device gets "waiting",
# polls, and gets its certificate once the CA is back (same port). The CA
# comes back with time_tolerance = 3s after an outage of about 5 s: the
# kept request, sent again byte for byte, is refused as badTime, and the
# RA sends it once more with its own messageTime and protection renewed
# (the CA checks the time of an RA's nested wrapper, not of the held
# device message inside it).
newkey w.key
newkey wr.key
(device wt -cmd ir $(dev_args SN-000014) -newkey w.key -subject /CN=SN-000014 \
    -certout w.pem >"$T/w.out" 2>&1; echo $? >"$T/w.rc") &
WPID=$!
(device wr -cmd ir $(dev_args SN-000016) -newkey wr.key -subject /CN=SN-000016 \
    -certout wr.pem >"$T/wr.out" 2>&1; echo $? >"$T/wr.rc") &
WRPID=$!
sleep 2.5
for a in wt wr; do
    grep -q "alias=$a .*upstream unavailable: answered waiting" "$T/ra.log" \
        && ok "wait ($a): the device was answered waiting" \
        || nok "wait ($a): the device was answered waiting"
    grep -q "alias=$a type=pollReq .*outcome=accepted" "$T/ra.log" \
        && ok "wait ($a): the device polls, pollRep while the CA is down" \
        || nok "wait ($a): the device polls, pollRep while the CA is down"
done
sleep 2.5
sed -i "s/^listen = 127.0.0.1:0\$/listen = 127.0.0.1:$CA_PORT/" "$T/cmpca.conf"
sed -i 's/^\[alias ra\]$/[alias ra]\ntime_tolerance = 3s/' "$T/cmpca.conf"
srv_start ca || nok "CA restarted on its port"
wait "$WPID" "$WRPID"
is "wait (nested): the device's ir succeeded after the CA came back" "$(cat "$T/w.rc")" 0
[ "$(cat "$T/w.rc")" = 0 ] || diag "$T/w.out"
is "wait (nested): the certificate is valid at the CA" "$(ca_serial_status w.pem 2>/dev/null)" valid
is "wait (nested): SN-000014 enrolled (certConf reached the CA)" "$(PORT=$CA_PORT dev_state SN-000014)" enrolled
is "wait (re-protected): the device's ir succeeded after the CA came back" "$(cat "$T/wr.rc")" 0
[ "$(cat "$T/wr.rc")" = 0 ] || diag "$T/wr.out"
is "wait (re-protected): the certificate is valid at the CA" "$(ca_serial_status wr.pem 2>/dev/null)" valid
for a in wt wr; do
    grep -q "alias=$a .*refused the kept request as too old (badTime): sent again renewed" \
        "$T/ra.log" && ok "wait ($a): the kept request, too old for the CA, sent again renewed" \
        || nok "wait ($a): the kept request, too old for the CA, sent again renewed"
done
is "RA still serves" "$(PORT=$RA_PORT health)" 200
curl -s --max-time 10 "http://127.0.0.1:$RA_PORT/metrics" >"$T/ra-metrics.txt"
grep -Eq 'cmpca_upstream_requests_total\{alias="nr"\} [1-9]' "$T/ra-metrics.txt" \
    && ok "metrics: upstream requests of alias nr counted" \
    || { nok "metrics: upstream requests of alias nr counted"; grep upstream "$T/ra-metrics.txt" | head -5 | diag /dev/stdin; }
grep -Eq 'cmpca_upstream_errors_total\{alias="silent",kind="timeout"\} [1-9]' "$T/ra-metrics.txt" \
    && ok "metrics: the silent upstream's timeouts counted" \
    || { nok "metrics: the silent upstream's timeouts counted"; grep upstream_errors "$T/ra-metrics.txt" | head -8 | diag /dev/stdin; }
kill "$SILENT_PID" 2>/dev/null
wait "$SILENT_PID" 2>/dev/null
e2e_done
