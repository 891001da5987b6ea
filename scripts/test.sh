#!/usr/bin/env bash
# Runs the whole cmpca test suite: installs dependencies, builds the release,
# ASan/UBSan and fuzz variants, runs unit tests (both builds), end-to-end
# tests (ASan build), fuzz targets for a bounded time, and ends with the line
# "N passed, N failed". Exit status is non-zero if anything failed.
#
# A fuzz target with a seed generator tests/tools/gen_<name>_seeds.c gets
# its seeds (and the world they are valid in) generated before it runs.
#
# Environment: FUZZ_SECONDS (per target, default 20), E2E_BUILD (default
# build/asan), SKIP_INSTALL=1 to skip the package check, ONLY=pattern to run
# only matching test names.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
E2E_BUILD=${E2E_BUILD:-build/asan}
LOGDIR=build/test-logs
JOBS=$(nproc 2>/dev/null || echo 2)

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    ./scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
fi

pass=0; fail=0; skip=0
failed_names=()

note_fail() { fail=$((fail + 1)); failed_names+=("$1"); }

build() {
    echo "== build: $*"
    if ! make -j"$JOBS" "$@" > "$LOGDIR/build-$1.log" 2>&1; then
        tail -40 "$LOGDIR/build-$1.log"
        return 1
    fi
}

# Counts TAP lines of one test program's output file; a crash or non-zero
# exit without a "not ok" line counts as one failure.
count_tap() {
    local name=$1 out=$2 rc=$3 p f s
    # cmocka reports a skip() as "not ok N # SKIP name": a skip, not a failure
    p=$(grep -Ec '^ok [0-9]+' "$out" | tr -d ' ')
    s=$(grep -Ec '^(not )?ok [0-9]+.*# (SKIP|skip)' "$out" | tr -d ' ')
    f=$(grep -E '^not ok [0-9]+' "$out" | grep -Evc '# (SKIP|skip)' | tr -d ' ')
    p=$((p - $(grep -Ec '^ok [0-9]+.*# (SKIP|skip)' "$out")))
    pass=$((pass + p)); skip=$((skip + s))
    if [ "$f" -gt 0 ]; then
        fail=$((fail + f))
        failed_names+=("$name: $(grep -E '^not ok' "$out" | grep -Ev '# (SKIP|skip)' | head -5 | tr '\n' ';')")
    elif [ "$rc" -ne 0 ]; then
        note_fail "$name (exit $rc)"
    elif [ "$p" -eq 0 ] && [ "$s" -eq 0 ]; then
        note_fail "$name (ran no test)"
    fi
    if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ]; then
        echo "---- $name output (tail) ----"; tail -30 "$out"; echo "----"
    fi
    printf '%-48s %3d ok %3d failed %3d skipped (rc %d)\n' "$name" "$p" "$f" "$s" "$rc"
}

selected() { [ -z "${ONLY:-}" ] || [[ "$1" == *"$ONLY"* ]]; }

mkdir -p "$LOGDIR"
build all || note_fail "build release"
build asan || note_fail "build asan"
if command -v clang-14 >/dev/null || command -v clang >/dev/null; then
    build fuzz || note_fail "build fuzz"
fi

# A throw-away PostgreSQL cluster for the PostgreSQL store tests (the e2e
# script server_pg.sh starts its own).
PGT=$(mktemp -d)
if ./scripts/pg-test-server.sh start "$PGT/pg" >/dev/null 2>"$LOGDIR/pg-start.log"; then
    . "$PGT/pg/env"; export CMPCA_TEST_PG
else
    note_fail "postgresql test cluster (see $LOGDIR/pg-start.log)"
fi
trap './scripts/pg-test-server.sh stop "$PGT/pg" >/dev/null 2>&1; rm -rf "$PGT"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CMOCKA_MESSAGE_OUTPUT=TAP

for variant in build/release build/asan; do
    for t in "$variant"/tests/test_*; do
        [ -x "$t" ] || continue
        name="unit:${variant#build/}:$(basename "$t")"
        selected "$name" || continue
        out="$LOGDIR/$(echo "$name" | tr ':/' '__').out"
        timeout 600 "$t" > "$out" 2>&1; rc=$?
        count_tap "$name" "$out" "$rc"
    done
done

for s in tests/e2e/*.sh; do
    [ -f "$s" ] || continue
    case "$(basename "$s")" in lib*.sh) continue ;; esac  # sourced helpers
    name="e2e:$(basename "$s" .sh)"
    selected "$name" || continue
    out="$LOGDIR/$(echo "$name" | tr ':/' '__').out"
    BUILD="$E2E_BUILD" timeout 900 bash "$s" > "$out" 2>&1; rc=$?
    count_tap "$name" "$out" "$rc"
done

for f in build/fuzz/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name="fuzz:$(basename "$f")"
    selected "$name" || continue
    base=$(basename "$f")
    corpus="tests/fuzz/corpus/$base"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
    out="$LOGDIR/$(echo "$name" | tr ':/' '__').out"
    # A target with a seed generator (tests/tools/gen_<name>_seeds.c, e.g.
    # fuzz_server) gets its seeds, and the world they are valid in, made
    # now (nothing generated is committed); the target finds the world in
    # $CMPCA_FUZZ_WORLD and keeps its temporary files in it.
    gen="build/release/tools/gen_${base#fuzz_}_seeds"
    world=""
    if [ -x "$gen" ]; then
        world=$(mktemp -d)
        if ! "$gen" "$world" "$work" > "$out" 2>&1; then
            echo "not ok 1 - $name: seed generator failed" >> "$out"
            rm -rf "$work" "$world"
            count_tap "$name" "$out" 1
            continue
        fi
    fi
    (cd "$work" && CMPCA_FUZZ_WORLD="$world" TMPDIR="${world:-${TMPDIR:-/tmp}}" \
        timeout $((FUZZ_SECONDS + 120)) "$OLDPWD/$f" -max_total_time="$FUZZ_SECONDS" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 .) >> "$out" 2>&1; rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "ok 1 - $name ran ${FUZZ_SECONDS}s without findings" >> "$out"
    else
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$LOGDIR"/ 2>/dev/null
        # the world the crash happened in, to run the crash file again
        [ -n "$world" ] && rm -rf "$LOGDIR/$base-world" && cp -r "$world" "$LOGDIR/$base-world"
        echo "not ok 1 - $name found a crash (see $LOGDIR)" >> "$out"
    fi
    rm -rf "$work" ${world:+"$world"}
    count_tap "$name" "$out" "$rc"
done

if [ "${#failed_names[@]}" -gt 0 ]; then
    echo "Failures:"
    printf '  %s\n' "${failed_names[@]}"
fi
if [ "$skip" -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
