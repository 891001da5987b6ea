#!/bin/bash
# The audit-trail tampering cases of audit_sqlite.sh (lib_audit.sh) on the
# PostgreSQL store, with the database edited through psql, in a throw-away
# cluster (scripts/pg-test-server.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_audit.sh"

PGS=$REPO/scripts/pg-test-server.sh
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo "1..1"; echo "ok 1 # SKIP PostgreSQL 15 server binaries not installed"
    exit 0
fi
pg_cleanup() {
    local s
    for s in $SERVERS; do srv_stop "$s"; done
    "$PGS" stop "$T/pg" >/dev/null 2>&1
    e2e_cleanup
}
trap pg_cleanup EXIT

CI=$("$PGS" start "$T/pg" 2>"$T/pgstart.log") ||
    { echo "Bail out! PostgreSQL did not start"; diag "$T/pgstart.log"; exit 1; }
ok "PostgreSQL test cluster started"
PASSFILE=$T/pg/password
SQLKIND=pg
sql() { PGPASSWORD=$(cat "$PASSFILE") psql "$CI" -qAt -v ON_ERROR_STOP=1 -c "$1"; }

pki_src=$(declare -f e2e_pki | sed "s|^path = cmpca.db\$|backend = postgresql\\
conninfo = $CI\\
password = file:$PASSFILE|")
case $pki_src in
*"backend = postgresql"*) eval "$pki_src" ;;
*) echo "Bail out! could not rewrite the [store] section"; exit 1 ;;
esac
e2e_pki 300s 6
audit_cases
e2e_done
