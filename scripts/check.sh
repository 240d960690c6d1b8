#!/usr/bin/env bash
# Runs every test binary and prints one summary line: "N passed, N failed".
set -u
BUILD=${BUILD:-build}
pass=0
fail=0
failed=()
run() { # name, command...
    local name=$1; shift
    local log="$BUILD/logs/$name.log"
    mkdir -p "$BUILD/logs"
    if "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); echo "PASS $name"
    else
        fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (log: $log)"; tail -n 30 "$log" | sed 's/^/    /'
    fi
}
# a unit test that hangs fails after UNUM_TEST_TIMEOUT seconds instead of stalling the run
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run "$(basename "$t")" timeout -k 10 "${UNUM_TEST_TIMEOUT:-600}" "$t"
done
# --- difftest ---
if [ -x "$BUILD/difftest" ]; then
    run difftest "$BUILD/difftest"
    grep -h '^difftest:' "$BUILD/logs/difftest.log" || true
fi
# --- guest tests ---
if [ -x scripts/guest-tests.sh ]; then
    run guest-tests scripts/guest-tests.sh
fi
# --- Linux integration (the default guest on unum run) ---
if [ -x scripts/linux-tests.sh ]; then
    run linux-tests scripts/linux-tests.sh
    grep -h '^linux tests:' "$BUILD/logs/linux-tests.log" || true
fi
# --- one VM over several nodes (DSM, transport, routing, failure) ---
if [ -x scripts/cluster-tests.sh ]; then
    run cluster-tests scripts/cluster-tests.sh
    grep -h '^cluster tests:' "$BUILD/logs/cluster-tests.log" || true
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
