# TAP output for the e2e scripts (sourced, not run): the counters, ok/nok,
# expect (run a command, check its exit code, show its output on failure)
# and grep_ok. The sourcing script sets T (its temp dir) first.
# shellcheck shell=bash

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }
# expect DESC CODE CMD...: CMD exits with CODE; its output stays in
# $T/.stdout and $T/.stderr for later checks
expect() {
    local d=$1 code=$2; shift 2
    "$@" >"$T/.stdout" 2>"$T/.stderr"; local rc=$?
    if [ "$rc" = "$code" ]; then ok "$d"
    else nok "$d (exit $rc, wanted $code)"; sed 's/^/# /' "$T/.stdout" "$T/.stderr" | tail -20; fi
}
# grep_ok DESC PATTERN FILE
grep_ok() { if grep -q -- "$2" "$3"; then ok "$1"; else nok "$1"; sed 's/^/# /' "$3"; fi; }
# serve_user_line: "user = nobody" when the tests run as root (cmpca serve
# refuses to stay root without [server] user); serve_user_own PATH...: hands
# the files the server needs after dropping to that user.
serve_user_line() { if [ "$(id -u)" = 0 ]; then echo "user = nobody"; fi; }
serve_user_own() { if [ "$(id -u)" = 0 ]; then chown -R nobody "$@"; fi; }
