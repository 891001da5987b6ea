# The audit-trail tampering cases of issue 16 point 5, shared by
# audit_sqlite.sh and audit_pg.sh (sourced, not run). The caller sources
# lib.sh, defines sql (runs SQL on the store's database), SQLKIND (sqlite or
# pg) and has set up the PKI (e2e_pki), then calls audit_cases. Every
# tampering case is one that passes the plain hash-chain check of the old
# `cmpca audit verify`; each must now be reported with a non-zero exit.
# shellcheck shell=bash

# rows_json: the audit rows as a JSON array (seq, time, actor, action,
# object, details) in seq order.
rows_json() {
    if [ "$SQLKIND" = pg ]; then
        sql "SELECT coalesce(json_agg(t ORDER BY seq), '[]') FROM (SELECT seq,time,actor,action,object,details FROM audit) t"
    else
        sql "SELECT json_group_array(json_object('seq',seq,'time',time,'actor',actor,'action',action,'object',object,'details',details)) FROM (SELECT * FROM audit ORDER BY seq)"
    fi
}

# rehash_sql FROM: SQL that rewrites the hash of every row from seq FROM on
# (and the head) so that the plain chain verifies again: what someone who
# can write the database does after changing or inserting rows.
rehash_sql() {
    rows_json | python3 -c '
import hashlib, json, struct, sys
start, kind = int(sys.argv[1]), sys.argv[2]
def s(v):
    if v is None: return b"\xff\xff\xff\xff"
    b = v.encode(); return struct.pack(">I", len(b)) + b
prev = bytes(32)
out = []
for r in json.load(sys.stdin):
    h = hashlib.sha256(prev + struct.pack(">Q", r["seq"]) + struct.pack(">q", r["time"])
        + s(r["actor"]) + s(r["action"]) + s(r["object"]) + s(r["details"])).digest()
    lit = ("decode(\x27%s\x27,\x27hex\x27)" if kind == "pg" else "X\x27%s\x27") % h.hex()
    if r["seq"] >= start:
        out.append("UPDATE audit SET hash=%s WHERE seq=%d;" % (lit, r["seq"]))
    last, prev = (r["seq"], lit), h
out.append("UPDATE audit_head SET seq=%d, hash=%s;" % last)
print("\n".join(out))' "$1" "$SQLKIND"
}

# The state every case starts from, kept in backup tables (ignored by
# cmpca) and restored after each case.
audit_backup() {
    sql "CREATE TABLE bak_audit AS SELECT * FROM audit; CREATE TABLE bak_head AS SELECT * FROM audit_head; CREATE TABLE bak_cert AS SELECT * FROM cert"
}
audit_restore() {
    sql "DELETE FROM audit; INSERT INTO audit SELECT * FROM bak_audit; DELETE FROM audit_head; INSERT INTO audit_head SELECT * FROM bak_head; UPDATE cert SET status=b.status, revoked_at=b.revoked_at, reason=b.reason FROM bak_cert b WHERE b.id=cert.id; INSERT INTO cert SELECT * FROM bak_cert b WHERE NOT EXISTS (SELECT 1 FROM cert c WHERE c.id=b.id)"
    expect "restored: verify --anchor passes again" 0 \
        cli audit verify --anchor "$T/anchors.txt" --pubkey "$T/audit.pub"
}

# The chain-only check (the old `audit verify`); AUDIT_PLAIN_ARGS= (empty)
# runs a cmpca that predates --no-status, to show the old check is fooled.
AUDIT_PLAIN_ARGS=${AUDIT_PLAIN_ARGS---no-status}

# tampered DESC: verify (plain) still passes - the old check is fooled -
# while verify against the checkpoints fails; then the state is restored.
# The message must match PATTERN.
tampered() {
    local d=$1 pat=$2
    expect "$d: the plain chain still verifies (the old check is fooled)" 0 cli audit verify $AUDIT_PLAIN_ARGS
    expect "$d: verify --anchor reports it" 1 \
        cli audit verify --anchor "$T/anchors.txt" --pubkey "$T/audit.pub"
    grep_ok "$d: the message says why" "$pat" "$T/.stderr"
    audit_restore
}

# status_tampered DESC PATTERN: the chain is untouched but certificate
# status disagrees with the events: verify (even without anchors) fails.
status_tampered() {
    local d=$1 pat=$2
    expect "$d: the plain chain still verifies (the old check is fooled)" 0 cli audit verify $AUDIT_PLAIN_ARGS
    expect "$d: verify reports it" 1 cli audit verify
    grep_ok "$d: the message says why" "$pat" "$T/.stderr"
    expect "$d: verify --anchor reports it too" 1 \
        cli audit verify --anchor "$T/anchors.txt" --pubkey "$T/audit.pub"
    audit_restore
}

audit_cases() {
    local last s1 s3 id_rev id_val n0

    cat >>"$T/cmpca.conf" <<EOF
[audit]
checkpoint_file = anchors-serve.txt
checkpoint_interval = 1s
EOF
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/audit.key" 2>/dev/null
    openssl pkey -in "$T/audit.key" -pubout -out "$T/audit.pub"
    openssl genpkey -algorithm ed25519 -out "$T/other.key" 2>/dev/null
    openssl pkey -in "$T/other.key" -pubout -out "$T/other.pub"

    srv_start a || { echo "Bail out! server did not start"; diag "$T/a.log"; exit 1; }
    newkey k1.key; newkey k2.key; newkey k3.key; newkey k1b.key
    check "ir SN-000001" ocmp -cmd ir $(dev_args SN-000001) -trusted oproot.pem \
        -newkey k1.key -subject /CN=SN-000001 -certout op1.pem
    check "ir SN-000002" ocmp -cmd ir $(dev_args SN-000002) -trusted oproot.pem \
        -newkey k2.key -subject /CN=SN-000002 -certout op2.pem
    check "ir SN-000003" ocmp -cmd ir $(dev_args SN-000003) -trusted oproot.pem \
        -newkey k3.key -subject /CN=SN-000003 -certout op3.pem
    check "kur SN-000001 (revokes the old certificate)" ocmp -cmd kur -cert op1.pem -key k1.key \
        -extracerts opchain.pem -trusted oproot.pem -newkey k1b.key -certout op1b.pem
    check "rr SN-000003" ocmp -cmd rr -oldcert op3.pem -cert op3.pem -key k3.key \
        -extracerts opchain.pem -trusted oproot.pem
    kill -HUP "$PID_a"
    sleep 1.5
    expect "cmpca crl" 0 cli crl --ca issuing -o "$T/crl.pem"
    expect "verify: intact, status agrees" 0 cli audit verify
    grep_ok "verify cross-checked 2 revocations" "2 revoked certificates agree with 2 revocation events" "$T/.stdout"

    # ---- signed checkpoints ---------------------------------------------------------
    expect "checkpoint --key signs the head" 0 \
        cli audit checkpoint --key "$T/audit.key" --out "$T/anchors.txt"
    [ "$(grep -c '^cmpca-audit-checkpoint v1 seq=[0-9]* hash=[0-9a-f]\{64\} time=[0-9]* key=[0-9a-f]\{64\} sig=' "$T/anchors.txt")" = 1 ] \
        && ok "anchors.txt holds one signed checkpoint" || { nok "anchors.txt format"; diag "$T/anchors.txt"; }
    newkey k4.key
    check "ir SN-000004 after the checkpoint" ocmp -cmd ir $(dev_args SN-000004) -trusted oproot.pem \
        -newkey k4.key -subject /CN=SN-000004 -certout op4.pem
    expect "a second checkpoint (verified against the first)" 0 \
        cli audit checkpoint --key "$T/audit.key" --out "$T/anchors.txt"
    is "anchors.txt holds two checkpoints" "$(grep -c '^cmpca-audit' "$T/anchors.txt")" 2
    expect "verify --anchor --pubkey" 0 cli audit verify --anchor "$T/anchors.txt" --pubkey "$T/audit.pub"
    grep_ok "both checkpoints matched" "2 checkpoints matched" "$T/.stdout"
    expect "verify --anchor without --pubkey works and says so" 0 cli audit verify --anchor "$T/anchors.txt"
    grep_ok "signatures not checked is said" "signatures not checked" "$T/.stdout"
    expect "verify with the wrong public key fails" 1 \
        cli audit verify --anchor "$T/anchors.txt" --pubkey "$T/other.pub"
    grep_ok "names the line" "anchors.txt:1: checkpoint of seq .* not signed by the given key" "$T/.stderr"
    sed 's/ time=\([0-9]*\)/ time=1\1/' "$T/anchors.txt" >"$T/forged.txt"
    expect "a checkpoint line altered after signing fails" 1 \
        cli audit verify --anchor "$T/forged.txt" --pubkey "$T/audit.pub"
    grep -v '^#' "$T/anchors.txt" | sed 's/ key=.*//' >"$T/unsigned.txt"
    expect "an unsigned checkpoint fails with --pubkey" 1 \
        cli audit verify --anchor "$T/unsigned.txt" --pubkey "$T/audit.pub"
    expect "checkpoint with the other key refuses a file signed by another key" 1 \
        cli audit checkpoint --key "$T/other.key" --out "$T/anchors.txt"
    is "anchors.txt unchanged" "$(grep -c '^cmpca-audit' "$T/anchors.txt")" 2
    expect "a missing anchor file is an error" 1 cli audit verify --anchor "$T/nosuch.txt"
    expect "checkpoint --out - prints an unsigned checkpoint" 0 cli audit checkpoint --out -
    grep_ok "unsigned line printed" "^cmpca-audit-checkpoint v1 seq=[0-9]* hash=[0-9a-f]* time=[0-9]*$" "$T/.stdout"

    srv_stop a
    is "server exits 0" $? 0
    expect "verify against the server's own exports" 0 cli audit verify --anchor "$T/anchors-serve.txt"
    last=$(tail -1 "$T/anchors-serve.txt" | sed 's/.* seq=\([0-9]*\) .*/\1/')
    is "the server's last export covers its stop row" "$last" "$(audit_count)"
    if cli audit list --limit 0 --json | python3 -c '
import json, sys
acts = [r["action"] for r in json.load(sys.stdin)]
assert acts.count("server.start") == 1 and acts.count("server.stop") == 1, acts
assert acts.count("server.reload") == 1 and acts.count("crl.issue") == 1, acts
assert acts[-1] == "server.stop", acts'; then
        ok "server start, reload, stop and cmpca crl have audit rows"
    else
        nok "server start, reload, stop and cmpca crl have audit rows"
    fi
    # the last checkpoint covers the head now
    expect "a checkpoint of the final head" 0 \
        cli audit checkpoint --key "$T/audit.key" --out "$T/anchors.txt"
    last=$(audit_count)
    audit_backup

    # ---- 1. delete the newest rows and fix the head -----------------------------
    sql "DELETE FROM audit WHERE seq > $((last - 3)); UPDATE audit_head SET seq=$((last - 3)), hash=(SELECT hash FROM audit WHERE seq=$((last - 3)))"
    tampered "truncated chain (3 rows removed, head fixed)" "rows were removed (truncated)"
    sql "DELETE FROM audit WHERE seq > $((last - 3)); UPDATE audit_head SET seq=$((last - 3)), hash=(SELECT hash FROM audit WHERE seq=$((last - 3)))"
    expect "truncated chain: the server's exports catch it too" 1 cli audit verify --anchor "$T/anchors-serve.txt"
    audit_restore

    # ---- 2. change a row and rehash every row after it ---------------------------
    sql "UPDATE audit SET object='SN-999999' WHERE seq=(SELECT min(seq) FROM audit WHERE action='cert.issue')"
    sql "$(rehash_sql 1)"
    tampered "row changed and the whole chain rehashed" "differs from the checkpoint"
    sql "UPDATE audit SET object='SN-999999' WHERE seq=(SELECT min(seq) FROM audit WHERE action='cert.issue')"
    sql "$(rehash_sql 1)"
    n0=$(grep -c '^cmpca' "$T/anchors.txt")
    expect "checkpoint refuses to sign a rehashed chain" 1 \
        cli audit checkpoint --key "$T/audit.key" --out "$T/anchors.txt"
    is "no checkpoint was added" "$(grep -c '^cmpca' "$T/anchors.txt")" "$n0"
    audit_restore

    # ---- 3. a forged row appended before the anchor ------------------------------
    # the newest row replaced by a forged one with the same seq, correctly
    # chained, head fixed
    sql "UPDATE audit SET actor='cli:root', action='device.add', object='SN-666666', details=NULL WHERE seq=$last"
    sql "$(rehash_sql "$last")"
    tampered "forged row appended before the anchor" "differs from the checkpoint of seq $last"
    # a forged row inserted in the middle: later rows renumbered, rehashed
    sql "UPDATE audit SET seq=seq+1000000 WHERE seq > 3; UPDATE audit SET seq=seq-1000000+1 WHERE seq > 1000000; INSERT INTO audit(seq,time,actor,action,object,details,hash) SELECT 4,time,'cli:root','device.add','SN-666667',NULL,hash FROM audit WHERE seq=3"
    sql "$(rehash_sql 4)"
    tampered "forged row inserted in the middle, rest renumbered and rehashed" "differs from the checkpoint"

    # ---- 4. certificate status against the revocation events ---------------------
    s1=$(serial_of op1.pem)
    id_rev=$(sql "SELECT id FROM cert WHERE status=1 ORDER BY id LIMIT 1")
    sql "UPDATE cert SET status=0, revoked_at=NULL, reason=NULL WHERE id=$id_rev"
    is "un-revoked certificate shows as valid" "$(cert_status "$s1")" valid
    status_tampered "certificate un-revoked in the table" "but it is valid in the store"
    s3=$(serial_of op4.pem)
    id_val=$(sql "SELECT id FROM cert WHERE status=0 AND profile='device' ORDER BY id DESC LIMIT 1")
    sql "UPDATE cert SET status=1, revoked_at=1700000000, reason=1 WHERE id=$id_val"
    status_tampered "certificate revoked in the table without an event" "no audit event revoked it"
    sql "UPDATE cert SET reason=0 WHERE id=$id_rev"
    status_tampered "revocation reason changed in the table" "revocation reason 0 at"
    sql "DELETE FROM cert WHERE id=$id_rev"
    status_tampered "revoked certificate deleted from the table" "which is not in the store"
    sql "DROP TABLE bak_audit; DROP TABLE bak_head; DROP TABLE bak_cert"
    : "$s3"
}
