#!/bin/bash
# Throw-away PostgreSQL 15 cluster for tests: `start DIR` creates a cluster
# in a fresh temp dir (initdb, loopback on a free port, role and database
# cmpca with a password) and prints its conninfo; `stop DIR` stops it and
# removes the cluster. Works as root (the server runs as user postgres).
#
#   scripts/pg-test-server.sh start DIR   -> prints: host=127.0.0.1 port=N dbname=cmpca user=cmpca
#   scripts/pg-test-server.sh stop DIR
# DIR (the caller's, may be private) gets: password (role cmpca, 0600),
# pgdir (where the cluster lives), port, and env with
# shell assignments CMPCA_PG_CONNINFO, CMPCA_PG_PASSFILE, CMPCA_TEST_PG
# (the conninfo with the password, for unit tests only).
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

# run_pg CMD...: runs a server binary as the postgres user when we are root
run_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case $cmd in
start)
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    # the cluster lives in its own temp dir the postgres user can reach
    pgdir=$(mktemp -d "${TMPDIR:-/tmp}/cmpca-pg.XXXXXX")
    chmod 0700 "$pgdir"
    [ "$(id -u)" = 0 ] && chown postgres: "$pgdir"
    echo "$pgdir" >"$dir/pgdir"
    pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    umask 077
    printf '%s\n' "$pw" >"$dir/password"
    run_pg "$PGBIN/initdb" -D "$pgdir/data" -U postgres -A trust \
        --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    # loopback TCP needs the password of cmpca; the socket (in DIR) is trusted
    cat >"$pgdir/data/pg_hba.conf" <<HBA
local all postgres trust
host all cmpca 127.0.0.1/32 scram-sha-256
HBA
    [ "$(id -u)" = 0 ] && chown postgres: "$pgdir/data/pg_hba.conf"
    tries=0
    while :; do
        port=$(free_port)
        if run_pg "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
            -o "-k $pgdir -h 127.0.0.1 -p $port -c fsync=off -c max_connections=200" \
            start >/dev/null 2>&1; then
            break
        fi
        tries=$((tries + 1))
        if [ $tries -ge 3 ]; then cat "$pgdir/server.log" >&2; exit 1; fi
    done
    echo "$port" >"$dir/port"
    run_pg "$PGBIN/psql" -h "$pgdir" -p "$port" -U postgres -d postgres -qAt \
        -v ON_ERROR_STOP=1 -v pw="$pw" >/dev/null <<'SQL'
CREATE ROLE cmpca LOGIN PASSWORD :'pw';
CREATE DATABASE cmpca OWNER cmpca;
SQL
    conninfo="host=127.0.0.1 port=$port dbname=cmpca user=cmpca"
    cat >"$dir/env" <<ENV
CMPCA_PG_CONNINFO='$conninfo'
CMPCA_PG_PASSFILE='$dir/password'
CMPCA_TEST_PG='$conninfo password=$pw'
ENV
    echo "$conninfo"
    ;;
stop)
    [ -f "$dir/pgdir" ] || exit 0
    pgdir=$(cat "$dir/pgdir")
    case $pgdir in */cmpca-pg.*) ;; *) echo "$0: bad $dir/pgdir" >&2; exit 1 ;; esac
    if [ -d "$pgdir/data" ]; then
        run_pg "$PGBIN/pg_ctl" -D "$pgdir/data" -m immediate -w -t 30 stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$pgdir"
    rm -f "$dir/pgdir"
    ;;
*)
    usage
    ;;
esac
