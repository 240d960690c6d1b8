#!/usr/bin/env bash
# CPU benchmark: the same static program natively, under the unum emulator and,
# when installed, under QEMU's user-mode TCG (qemu-x86_64). Prints figures and
# ratios; never fails on timing.
set -u
BUILD=${BUILD:-build}
prog="$BUILD/bench/cpubench"
runs=${BENCH_RUNS:-3}

best_time() { # prints the best wall time (s) of $runs runs of "$@"
    local best=""
    for _ in $(seq "$runs"); do
        local t0 t1 t
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>"$BUILD/bench/last.err" || { cat "$BUILD/bench/last.err" >&2; echo "FAILED"; return; }
        t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
    done
    printf '%.4f\n' "$best"
}

expected=$("$prog")
emulated=$("$BUILD/bench/emurun" "$prog" 2>"$BUILD/bench/emurun.err")
if [ "$expected" != "$emulated" ]; then
    echo "cpubench: emulated output differs from native:"; diff <(echo "$expected") <(echo "$emulated")
    cat "$BUILD/bench/emurun.err"
    exit 1
fi
insns=$(sed -n 's/^emurun: \([0-9]*\) instructions.*/\1/p' "$BUILD/bench/emurun.err")

native=$(best_time "$prog")
emu=$(best_time "$BUILD/bench/emurun" "$prog")
echo "== CPU benchmark (bench/cpubench.c: sort, hashing, string, floating point) =="
printf 'guest instructions     %d\n' "$insns"
printf 'native                 %8.3f s  %8.0f MIPS\n' "$native" "$(echo "$insns / $native / 1000000" | bc -l)"
printf 'unum emulator          %8.3f s  %8.0f MIPS  slowdown %.1fx native\n' "$emu" \
    "$(echo "$insns / $emu / 1000000" | bc -l)" "$(echo "$emu / $native" | bc -l)"
if ! command -v qemu-x86_64 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && [ -z "${BENCH_NO_INSTALL:-}" ]; then
    echo "installing the comparison peer (qemu-user) ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >/dev/null 2>&1
fi
if command -v qemu-x86_64 >/dev/null 2>&1; then
    q=$(best_time qemu-x86_64 "$prog")
    printf 'qemu-x86_64 (TCG)      %8.3f s  %8.0f MIPS  slowdown %.1fx native; unum/qemu %.2f\n' "$q" \
        "$(echo "$insns / $q / 1000000" | bc -l)" "$(echo "$q / $native" | bc -l)" "$(echo "$emu / $q" | bc -l)"
else
    echo "qemu-x86_64 not installed (apt-get install qemu-user) — no QEMU column"
fi
