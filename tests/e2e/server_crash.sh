#!/bin/bash
# kill -9 under load on the SQLite store (issue 16, point 9): see
# lib_crash.sh for what is checked; then SQLite's integrity and foreign key
# checks. Bounded: 10 kills in about 30 s, about a minute in all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_crash.sh"
trap 'crash_stop_workers; e2e_cleanup' EXIT

crash_sql() { sqlite3 "$T/cmpca.db" "$1"; }

e2e_pki 4s 20
sed -i 's/^\[alias 3gpp\]$/[alias 3gpp]\nallow_reenroll = yes\nenroll_max_per_window = 0/' "$T/cmpca.conf"
crash_run
crash_check
is "SQLite integrity_check" "$(crash_sql 'PRAGMA integrity_check')" ok
is "SQLite foreign_key_check" "$(crash_sql 'PRAGMA foreign_key_check' | wc -l)" 0
e2e_done
