#!/usr/bin/env bash
# guest-tests.sh — runs the freestanding test guests on the emulator's test machine.
#
# Builds nothing: runs every $BUILD/guest-tests/*.bin (make guest-tests) with
# `$BUILD/unum testguest` and prints PASS/FAIL per guest. A guest passes when unum
# exits 0 and the console output contains its marker. Per-guest settings come from
# comment lines in guest/tests/NAME.S (defaults in brackets):
#     # cpus: N        vCPUs [1]
#     # memory: SIZE   guest RAM [unum's default]
#     # timeout: SECS  wall-clock limit [60]
#     # expect: TEXT   console marker [PASS: NAME]
# Usage: scripts/guest-tests.sh [NAME...]   (default: all built guests)
# Exits non-zero if any guest fails or none is built.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
UNUM=${UNUM:-$BUILD/unum}
SRC_DIR=guest/tests

# meta FILE KEY: value of the first "KEY: value" comment line in FILE
meta() {
    [ -f "$1" ] || return 0
    sed -n "s/^[[:space:]#/*]*$2:[[:space:]]*//p" "$1" | head -n 1 | sed 's/[[:space:]]*$//'
}

if [ ! -x "$UNUM" ]; then
    echo "FAIL guest-tests: $UNUM not built (run make)"
    exit 1
fi
if [ $# -gt 0 ]; then
    bins=()
    for n in "$@"; do bins+=("$BUILD/guest-tests/$n.bin"); done
else
    bins=("$BUILD"/guest-tests/*.bin)
fi
if [ ! -e "${bins[0]}" ]; then
    echo "FAIL guest-tests: no guests in $BUILD/guest-tests (run make guest-tests)"
    exit 1
fi

pass=0
fail=0
for bin in "${bins[@]}"; do
    name=$(basename "$bin" .bin)
    src=$SRC_DIR/$name.S
    [ -f "$src" ] || src=$SRC_DIR/$name.c
    cpus=$(meta "$src" cpus)
    memory=$(meta "$src" memory)
    limit=$(meta "$src" timeout)
    expect=$(meta "$src" expect)
    args=(--cpus "${cpus:-1}")
    [ -n "$memory" ] && args+=(--memory "$memory")
    if [ ! -f "$bin" ]; then
        out="no such guest: $bin"
        rc=127
    else
        out=$(timeout "${limit:-60}" "$UNUM" testguest "${args[@]}" "$bin" 2>&1)
        rc=$?
    fi
    if [ "$rc" -eq 0 ] && grep -qF -- "${expect:-PASS: $name}" <<<"$out"; then
        pass=$((pass + 1))
        echo "PASS $name"
    else
        fail=$((fail + 1))
        case $rc in
        0) why="exit 0 but no '${expect:-PASS: $name}' on the console" ;;
        124) why="timed out after ${limit:-60}s" ;;
        125) why="triple fault or no exit status (125)" ;;
        *) why="exit status $rc" ;;
        esac
        echo "FAIL $name: $why (unum testguest ${args[*]} $bin)"
        tail -n 20 <<<"$out" | sed 's/^/    /'
    fi
done
echo "guest tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
