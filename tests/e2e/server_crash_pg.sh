#!/bin/bash
# kill -9 under load on the PostgreSQL store (issue 16, point 9): a
# throw-away PostgreSQL cluster (scripts/pg-test-server.sh, as in
# server_pg.sh), then what lib_crash.sh checks, then PostgreSQL's own
# checks (amcheck on the indexes where available, unique serials, foreign
# keys). Bounded: 10 kills in about 30 s, about a minute and a half in all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_crash.sh"

PGS=$REPO/scripts/pg-test-server.sh
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo "1..1"; echo "ok 1 # SKIP PostgreSQL 15 server binaries not installed"
    exit 0
fi
pg_cleanup() {
    local s
    crash_stop_workers
    for s in $SERVERS; do srv_stop "$s"; done
    "$PGS" stop "$T/pg" >/dev/null 2>&1
    e2e_cleanup
}
trap pg_cleanup EXIT

CI=$("$PGS" start "$T/pg" 2>"$T/pgstart.log") ||
    { echo "Bail out! PostgreSQL did not start"; diag "$T/pgstart.log"; exit 1; }
PASSFILE=$T/pg/password
crash_sql() { PGPASSWORD=$(cat "$PASSFILE") psql "$CI" -qAt -c "$1"; }

pki_src=$(declare -f e2e_pki | sed "s|^path = cmpca.db\$|backend = postgresql\\
conninfo = $CI\\
password = file:$PASSFILE|")
case $pki_src in
*"backend = postgresql"*) eval "$pki_src" ;;
*) echo "Bail out! could not rewrite the [store] section"; exit 1 ;;
esac
e2e_pki 4s 20
sed -i 's/^\[alias 3gpp\]$/[alias 3gpp]\nallow_reenroll = yes\nenroll_max_per_window = 0/' "$T/cmpca.conf"
crash_run
crash_check
is "no two certificates share (ca, serial)" \
    "$(crash_sql 'SELECT count(*) FROM (SELECT ca_id, serial FROM cert GROUP BY 1, 2 HAVING count(*) > 1) d')" 0
is "no certificate points to a missing device or CA" \
    "$(crash_sql 'SELECT count(*) FROM cert c WHERE NOT EXISTS (SELECT 1 FROM ca WHERE ca.id = c.ca_id)
        OR (c.device_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM device d WHERE d.id = c.device_id))')" 0
if crash_sql 'CREATE EXTENSION IF NOT EXISTS amcheck' >/dev/null 2>&1; then
    check "amcheck: every B-tree index of the store verifies" crash_sql \
        "SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.amname = 'btree' AND n.nspname = 'public'"
else
    echo "# amcheck not available to the test user: skipped"
fi
e2e_done
