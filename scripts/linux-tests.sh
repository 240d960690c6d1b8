#!/usr/bin/env bash
# linux-tests.sh — Linux integration tests: boot the default guest (Debian's stock
# cloud kernel) on `unum run` and check what the guest reports. Each check prints
# PASS/FAIL with the evidence; exits non-zero if any fails.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
UNUM=${UNUM:-$BUILD/unum}
LIMIT=${LINUX_TEST_TIMEOUT:-300}
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() {
    fail=$((fail + 1)); echo "FAIL $1: $2"
    [ -n "${3:-}" ] && printf '%s\n' "$3" | tail -n 20 | sed 's/^/    /'
}

# run NAME EXPECTED_STATUS UNUM-ARGS... -- CMD: sets $out and $rc
run() {
    out=$(timeout "$LIMIT" "$UNUM" run "$@" 2>&1)
    rc=$?
}

# --- the acceptance command from the issue ---
run --cpus 2 --memory 256M -- 'nproc; grep MemTotal /proc/meminfo'
mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' <<<"$out")
if [ "$rc" -eq 0 ] && [ "$(head -n 1 <<<"$out")" = 2 ] && [ -n "$mem_kb" ] &&
    [ "$mem_kb" -gt 200000 ] && [ "$mem_kb" -le 262144 ]; then
    ok "2 vCPUs, 256M: nproc=2, MemTotal=${mem_kb} kB"
else
    bad "2 vCPUs, 256M" "rc=$rc" "$out"
fi

# --- /init brings CPUs held back at boot online only when asked (unum.late_cpus=1, which
#     unum passes over several nodes with maxcpus=1); a user's own maxcpus= stays ---
run --cpus 2 --memory 256M --append 'maxcpus=1 unum.late_cpus=1' -- 'nproc; cat /sys/devices/system/cpu/online'
[ "$rc" -eq 0 ] && [ "$out" = $'2\n0-1' ] && ok "maxcpus=1 unum.late_cpus=1: /init brought CPU 1 online (nproc=2, online 0-1)" ||
    bad "late CPUs" "rc=$rc, want '2' and '0-1'" "$out"
run --cpus 2 --memory 256M --append 'maxcpus=1' -- 'nproc'
[ "$rc" -eq 0 ] && [ "$out" = 1 ] && ok "a user's maxcpus=1 is kept: nproc=1" ||
    bad "user maxcpus" "rc=$rc, want nproc 1" "$out"

run --memory 256M -- 'exit 7'
[ "$rc" -eq 7 ] && [ -z "$out" ] && ok "exit status 7 passes through, no stray output" ||
    bad "exit 7" "rc=$rc" "$out"

# --- boots with 1, 2, 4 and 8 vCPUs: all online, dmesg clean ---
bad_dmesg='WARNING|BUG|Oops|Firmware Bug|BIOS bug|ACPI Error|TSC unstable'
for n in 1 2 4 8; do
    run --cpus "$n" --memory 512M -- \
        "cat /sys/devices/system/cpu/online; nproc; dmesg | grep -E '$bad_dmesg' || true"
    online=$(sed -n 1p <<<"$out")
    want=$([ "$n" -eq 1 ] && echo 0 || echo "0-$((n - 1))")
    if [ "$rc" -eq 0 ] && [ "$online" = "$want" ] && [ "$(sed -n 2p <<<"$out")" = "$n" ] &&
        [ "$(wc -l <<<"$out")" -eq 2 ]; then
        ok "$n vCPUs: online $online, dmesg clean"
    else
        bad "$n vCPUs" "rc=$rc online='$online' (want $want) or dmesg lines" "$out"
    fi
done

# --- SMP atomics: one thread per CPU, LOCK-prefixed and mutex counters exact ---
run --cpus 4 --memory 256M -- 'atomics 200000'
if [ "$rc" -eq 0 ] && grep -q 'atomic.*800000' <<<"$out"; then
    ok "atomics on 4 vCPUs: exact totals"
else
    bad "atomics on 4 vCPUs" "rc=$rc" "$out"
fi

# --- a shell pipeline gives the host's result ---
want=$(seq 1 100000 | sort -n | md5sum | cut -d' ' -f1)
run --cpus 2 --memory 256M -- 'seq 1 100000 | sort -n | md5sum'
got=$(cut -d' ' -f1 <<<"$out")
[ "$rc" -eq 0 ] && [ "$got" = "$want" ] && ok "seq | sort -n | md5sum = host ($want)" ||
    bad "pipeline" "rc=$rc got '$got' want '$want'" "$out"

# --- no terminal: stdin is the script ---
out=$(echo 'echo piped-$((6*7)); exit 4' | timeout "$LIMIT" "$UNUM" run --memory 256M 2>&1)
rc=$?
[ "$rc" -eq 4 ] && [ "$out" = piped-42 ] && ok "stdin as the script: output and status 4" ||
    bad "stdin as the script" "rc=$rc" "$out"

# --- interactive console in a pseudo-terminal ---
o=$(timeout "$LIMIT" python3 tests/linux/interactive.py "$UNUM" 2>&1)
grep -q '^PASS' <<<"$o" && ok "${o#PASS }" || bad "interactive console" "" "$o"

# --- bad input: one line, status 2, nothing started ---
check_bad() { # name, expected message part, args...
    local name=$1 msg=$2; shift 2
    local o r
    o=$(timeout 20 "$UNUM" run "$@" -- true 2>&1)
    r=$?
    if [ "$r" -eq 2 ] && [ "$(wc -l <<<"$o")" -eq 1 ] && grep -q -- "$msg" <<<"$o"; then
        ok "bad input: $name -> '$o'"
    else
        bad "bad input: $name" "rc=$r" "$o"
    fi
}
tmp=$(mktemp -d)
head -c 100000 /dev/urandom >"$tmp/garbage"
head -c 3000000 "$BUILD/guest/vmlinuz" >"$tmp/truncated"
gzip -c "$BUILD/guest/initrd.cpio" | head -c 500000 >"$tmp/broken.gz"
check_bad "missing kernel" "cannot open kernel" --kernel "$tmp/nope"
check_bad "garbage kernel" "not a Linux bzImage" --kernel "$tmp/garbage"
check_bad "missing initrd" "cannot open initrd" --initrd "$tmp/nope"
check_bad "corrupt initrd" "corrupt gzip" --initrd "$tmp/broken.gz"
check_bad "garbage initrd" "not an initramfs" --initrd "$tmp/garbage"
check_bad "memory too small" "below the kernel's needs" --memory 16M
check_bad "memory above the host" "more than this host" --memory 100000G
check_bad "cpus not a number" "--cpus" --cpus two
check_bad "cpus zero" "--cpus" --cpus 0
check_bad "bad memory size" "--memory" --memory 12Q
rm -rf "$tmp"

echo "linux tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
