#!/bin/bash
# End-to-end on the PostgreSQL store: a throw-away PostgreSQL 15 cluster
# (scripts/pg-test-server.sh), `cmpca serve` with backend = postgresql and
# the stock openssl cmp client (ir+certConf, kur), then two server processes
# on the one database (ir on one, certConf on the other, concurrent ir).
. "$(dirname "$0")/lib.sh"

PGS=$REPO/scripts/pg-test-server.sh
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo "1..1"; echo "ok 1 # SKIP PostgreSQL 15 server binaries not installed"
    exit 0
fi
# servers first, then the cluster, then the temp dir
pg_cleanup() {
    local s
    for s in $SERVERS; do srv_stop "$s"; done
    "$PGS" stop "$T/pg" >/dev/null 2>&1
    e2e_cleanup
}
trap pg_cleanup EXIT

CI=$("$PGS" start "$T/pg" 2>"$T/pgstart.log") ||
    { echo "Bail out! PostgreSQL did not start"; diag "$T/pgstart.log"; exit 1; }
ok "PostgreSQL test cluster started ($CI)"
PASSFILE=$T/pg/password
psql_q() { PGPASSWORD=$(cat "$PASSFILE") psql "$CI" -qAt -c "$1"; }

# e2e_pki with the [store] section pointing at PostgreSQL
pki_src=$(declare -f e2e_pki | sed "s|^path = cmpca.db\$|backend = postgresql\\
conninfo = $CI\\
password = file:$PASSFILE|")
case $pki_src in
*"backend = postgresql"*) eval "$pki_src" ;;
*) echo "Bail out! could not rewrite the [store] section"; exit 1 ;;
esac
e2e_pki 300s 12
ok "PKI set up in PostgreSQL"
[ ! -e "$T/cmpca.db" ] && ok "no SQLite file was created" || nok "cmpca.db exists"
is "schema version in PostgreSQL" "$(psql_q 'SELECT max(version) FROM schema_version')" 11
is "devices imported into PostgreSQL" "$(psql_q 'SELECT count(*) FROM device')" 12
grep -q "$(cat "$PASSFILE")" "$T/cmpca.conf" "$T/pki.log" && nok "password leaked" || ok "password not in config or logs"

srv_start a || { echo "Bail out! server did not start"; diag "$T/a.log"; exit 1; }
is "/health answers 200" "$(health)" 200

# ---- ir + certConf, kur ---------------------------------------------------------
newkey k1.key
c0=$(cert_count)
check "ir+certConf with openssl cmp" ocmp -cmd ir $(dev_args SN-000001) \
    -trusted oproot.pem -newkey k1.key -subject /CN=SN-000001 -certout op1.pem
is "ir issued exactly one certificate" "$(cert_count)" $((c0 + 1))
is "device SN-000001 enrolled" "$(dev_state SN-000001)" enrolled
check "issued certificate verifies" \
    openssl verify -CAfile "$T/oproot.pem" -untrusted "$T/issuing.pem" "$T/op1.pem"
newkey k1b.key
check "kur with openssl cmp" ocmp -cmd kur -cert op1.pem -key k1.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey k1b.key -certout op1b.pem
is "kur issued one certificate" "$(cert_count)" $((c0 + 2))
is "old certificate revoked after kur" "$(cert_status "$(serial_of op1.pem)")" revoked
cur=$(cli device show --vendor acme SN-000001 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cert"]["serial"])')
is "device points at the renewed certificate" "$cur" "$(serial_of op1b.pem)"

# ---- two server processes on one database -----------------------------------------
srv_start b || { echo "Bail out! second server did not start"; diag "$T/b.log"; exit 1; }
two_server_checks SN-000002 k2.key 3
check "audit chain intact" cli audit verify
is "audit rows in PostgreSQL" "$(psql_q 'SELECT count(*) FROM audit')" "$(audit_count)"

# ---- root CA key rollover and genm rootCaKeyUpdate in PostgreSQL ------------------
check "genm caCerts (saved for cmpcraft)" ocmp -cmd genm -infotype caCerts -cert op1b.pem \
    -key k1b.key -extracerts opchain.pem -trusted oproot.pem -reqout genm.der
check "cmpca ca rollover root" cli ca rollover root --no-passphrase
is "ca_rollover row in PostgreSQL" "$(psql_q 'SELECT count(*) FROM ca_rollover')" 1
is "audit row ca.rollover" "$(psql_q "SELECT action FROM audit ORDER BY seq DESC LIMIT 1")" ca.rollover
"$CRAFT" mutate --in "$T/genm.der" --key "$T/k1b.key" --new-tid \
    --genm-oid 1.3.6.1.5.5.7.4.20 --out "$T/genm20.der"
h=$(post genm20.der genp20.der)
inspect genp20.der --rootupdout "$T/ru" >"$T/g20.txt"
is "genm rootCaCert on server A: rootCaKeyUpdate with the three certificates" \
    "$h/$(sed -n 's/^genp.0.rootupdate=//p' "$T/g20.txt")" 200/3
check "newWithOld verifies with the old root" openssl verify -CAfile "$T/oproot.pem" "$T/ru-nwo.pem"
check "oldWithNew verifies with newWithNew" openssl verify -CAfile "$T/ru-nwn.pem" "$T/ru-own.pem"

# ---- a wrong password: the server refuses to start --------------------------------
sed "s|^password = .*|password = env:CMPCA_PG_WRONG|" "$T/cmpca.conf" >"$T/bad.conf"
if (cd "$T" && CMPCA_PG_WRONG=nope timeout 30 "$CMPCA" -c "$T/bad.conf" serve \
    --port-file "$T/bad.port" >"$T/bad.log" 2>&1); then
    nok "serve with a wrong password failed"
else
    grep -q "password authentication failed" "$T/bad.log" &&
        ok "serve with a wrong password fails with the server's reason" ||
        { nok "wrong password message"; diag "$T/bad.log"; }
fi
grep -q nope "$T/bad.log" && nok "wrong password echoed in the log" || ok "password not echoed"

e2e_done
