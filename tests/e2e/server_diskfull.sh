#!/bin/bash
# The store's commit fails (issue 16, point 9): the SQLite store lives on a
# small tmpfs the test mounts (root only; skipped otherwise) which is then
# filled to the last byte. An ir is answered with a protected systemUnavail
# (HTTP 503) and leaves nothing half-written: no certificate, no audit row,
# no transaction, the device still registered. With space again the same
# device enrolls. Bounded: a few seconds.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "1..1"; echo "ok 1 # SKIP mounting a tmpfs needs root"; exit 0
fi
SMALL=$T/small
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=8m tmpfs "$SMALL" 2>"$T/mount.err"; then
    echo "1..1"; echo "ok 1 # SKIP cannot mount a tmpfs: $(cat "$T/mount.err")"; exit 0
fi
df_cleanup() {
    local s
    for s in $SERVERS; do srv_stop "$s"; done
    umount "$SMALL" 2>/dev/null
    e2e_cleanup
}
trap df_cleanup EXIT

pki_src=$(declare -f e2e_pki | sed "s|^path = cmpca.db\$|path = $SMALL/cmpca.db|")
case $pki_src in
*"$SMALL/cmpca.db"*) eval "$pki_src" ;;
*) echo "Bail out! could not rewrite the [store] section"; exit 1 ;;
esac
e2e_pki 300s 4
srv_start main || { echo "Bail out! server did not start"; exit 1; }
sq() { sqlite3 "$SMALL/cmpca.db" "$1"; }

newkey k1.key
check "ir with space left" ocmp -cmd ir $(dev_args SN-000001) -trusted oproot.pem \
    -newkey k1.key -subject /CN=SN-000001 -certout op1.pem
c0=$(sq 'SELECT count(*) FROM cert'); a0=$(sq 'SELECT count(*) FROM audit')
x0=$(sq 'SELECT count(*) FROM cmp_txn')

# fill the file system to the last byte (the filler belongs to root: the
# server, running as nobody, cannot free it)
dd if=/dev/zero of="$SMALL/filler" bs=64k >/dev/null 2>&1
dd if=/dev/zero of="$SMALL/filler2" bs=1 >/dev/null 2>&1
is "the file system is full" "$(df --output=avail "$SMALL" | tail -1 | tr -d ' ')" 0

newkey k2.key
ocmp -cmd ir $(dev_args SN-000002) -trusted oproot.pem -newkey k2.key \
    -subject /CN=SN-000002 -certout op2.pem -reqout ir2.der >"$T/o2.out" 2>&1
grep -q "HTTP.*503\|503" "$T/o2.out" && ok "openssl cmp saw HTTP 503" \
    || { nok "no HTTP 503 for the ir on a full disk"; diag "$T/o2.out"; }
# the same ir again, to read the answer (openssl cmp keeps no body of a 503)
h=$(post ir2.der ir2.rsp)
expect_error "ir on a full disk" "$h" 503 ir2.rsp systemUnavail
[ ! -e "$T/op2.pem" ] && ok "no certificate delivered" || nok "a certificate was delivered"
grep -q "store error in commit\|store error" "$T/main.log" && ok "the server logged the store error" \
    || nok "no store error in the log"

rm -f "$SMALL/filler" "$SMALL/filler2"
is "nothing half-written: certificates" "$(sq 'SELECT count(*) FROM cert')" "$c0"
is "nothing half-written: audit rows" "$(sq 'SELECT count(*) FROM audit')" "$a0"
is "nothing half-written: transactions" "$(sq 'SELECT count(*) FROM cmp_txn')" "$x0"
is "SN-000002 still registered" "$(dev_state SN-000002)" registered
is "SQLite integrity_check" "$(sq 'PRAGMA integrity_check')" ok
check "cmpca audit verify" cli audit verify

newkey k3.key
check "with space again, SN-000002 enrolls" ocmp -cmd ir $(dev_args SN-000002) \
    -trusted oproot.pem -newkey k3.key -subject /CN=SN-000002 -certout op3.pem
is "SN-000002 enrolled" "$(dev_state SN-000002)" enrolled
is "/health" "$(health)" 200
e2e_done
