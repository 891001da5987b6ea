#!/bin/bash
# Benchmark of the device allow-list import through the real CLI: makes a
# CSV of N identifiers (default 1,000,000), times `cmpca device import`
# (parsing + one transaction + audit row + durable commit) and prints the
# seconds and rows/s. Usage: bench/bench_import.sh [N]  (BUILD=build/release)
set -eu

N=${1:-1000000}
BUILD=${BUILD:-build/release}
CMPCA="$PWD/$BUILD/cmpca"
case "$BUILD" in /*) CMPCA="$BUILD/cmpca" ;; esac
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf '[store]\npath = cmpca.db\n' >"$TMP/cmpca.conf"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=Bench Vendor CA" -days 30 \
    -keyout "$TMP/v.key" -out "$TMP/v.pem" 2>/dev/null
"$CMPCA" -c "$TMP/cmpca.conf" vendor add --name bench --ca "$TMP/v.pem" >/dev/null

# Identifiers like a vendor's serial numbers, in random order (the unique
# index sees scattered inserts, the harder case), plus a second column.
python3 - "$N" "$TMP/devices.csv" <<'EOF'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
ids = list(range(n))
random.seed(1)
random.shuffle(ids)
with open(path, "w") as f:
    f.write("identifier,batch\n")
    for i in ids:
        f.write("SN%012d,lot-%d\n" % (i * 7919 % 10**12, i % 100))
EOF

start=$(date +%s.%N)
"$CMPCA" -c "$TMP/cmpca.conf" device import --vendor bench "$TMP/devices.csv" \
    </dev/null 2>"$TMP/err" >"$TMP/out" || { cat "$TMP/err"; exit 1; }
end=$(date +%s.%N)
cat "$TMP/out"
python3 -c "
s = $end - $start
print('import of %d identifiers: %.2f s, %.0f rows/s' % ($N, s, $N / s))"
ls -l "$TMP/cmpca.db" | awk '{print "database size: " $5 " bytes"}'

# A lookup after the import stays fast (uses the unique index).
start=$(date +%s.%N)
"$CMPCA" -c "$TMP/cmpca.conf" device show --vendor bench SN000000007919 >/dev/null
end=$(date +%s.%N)
python3 -c "print('device show after import: %.1f ms' % (($end - $start) * 1000))"
