#!/bin/bash
# Benchmark of `cmpca factory issue`: devices per second including P-256 key
# generation, certificate signing, PEM (or PKCS#12) file writes and the final
# syncfs. Usage: bench/bench_factory.sh [COUNT] [THREADS]  (BUILD=build/release)
set -eu
BUILD=${BUILD:-build/release}
CMPCA=$(realpath "$BUILD/cmpca")
COUNT=${1:-20000}
THREADS=${2:-$(nproc)}
T=$(mktemp -d "${TMPDIR:-/tmp}/bench_factory.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
"$CMPCA" factory ca create --dir vca --name "Bench Vendor" 2>/dev/null >/dev/null
echo "p12 secret" > p12.pass
run() {
    local label=$1 count=$2; shift 2
    local start end
    sync
    start=$(date +%s%N)
    "$CMPCA" factory issue --dir vca --count "$count" --threads "$THREADS" --quiet "$@"
    end=$(date +%s%N)
    awk -v l="$label" -v c="$count" -v ns=$((end - start)) -v t="$THREADS" \
        'BEGIN { printf "%-28s %7d devices  %6.2f s  %7.0f devices/s  (%d threads)\n", l, c, ns/1e9, c/(ns/1e9), t }'
}
run "PEM, ec:P-256 devices" "$COUNT" --out pem --prefix SN-
run "PEM, ed25519 devices" "$COUNT" --out ed --prefix ED- --key-type ed25519
run "PKCS#12, ec:P-256 devices" $((COUNT / 10)) --out p12 --prefix P- --format p12 \
    --p12-pass "file:$T/p12.pass"
echo "files: $(find pem -type f | wc -l) in pem/, $(du -sh pem | cut -f1)"
