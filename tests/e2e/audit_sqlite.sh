#!/bin/bash
# The audit trail cannot be rewritten by whoever can write the SQLite file
# (issue 16 point 5): signed checkpoints, `audit verify --anchor`, the
# certificate status cross-check and the audited admin actions, with the
# database edited through the sqlite3 CLI (cases in lib_audit.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_audit.sh"

if ! command -v sqlite3 >/dev/null; then
    echo "1..1"; echo "ok 1 # SKIP sqlite3 CLI missing (apt-get install sqlite3)"
    exit 0
fi
SQLKIND=sqlite
sql() { sqlite3 "$T/cmpca.db" "$1"; }

e2e_pki 300s 6
audit_cases
e2e_done
