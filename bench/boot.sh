#!/usr/bin/env bash
# boot.sh — time from start to the guest's first command (the "unum-guest-ready"
# line of /init) for --cpus 1 and 2, unum beside QEMU's TCG with the same kernel,
# initrd and kernel command line; then the CPU benchmark inside the booted guest on
# both. Prints figures and ratios (best of BENCH_RUNS runs); never fails on timing.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
runs=${BENCH_RUNS:-3}
initrd=$BUILD/guest/initrd.cpio
cmdline="console=ttyS0 panic=-1 tsc=reliable no_timer_check cryptomgr.notests=1 quiet loglevel=3"

best() { sort -n | head -n 1; }

unum_ready() { # cpus
    for _ in $(seq "$runs"); do
        UNUM_TIMING=1 "$BUILD/unum" run --cpus "$1" --memory 512M -- true 2>&1 >/dev/null |
            sed -n 's/^unum: guest ready after \([0-9.]*\) s$/\1/p'
    done | best
}

qemu_ready() { # cpus
    for _ in $(seq "$runs"); do
        INITRD=$initrd UNUM_GUEST_CMDLINE="$cmdline" scripts/qemu-run.sh --timing --cpus "$1" \
            --memory 512M -- true 2>&1 >/dev/null | sed -n 's/^qemu-run: ready \([0-9.]*\) s.*/\1/p'
    done | best
}

# seconds the guest's `time cpubench` reports as real
guest_cpubench() { # runner...
    for _ in $(seq "$runs"); do
        "$@" -- 'time cpubench >/dev/null' 2>&1 | sed -n 's/^real[ \t]*\([0-9]*\)m \{0,1\}\([0-9.]*\)s$/\1 \2/p' |
            awk '{ print $1 * 60 + $2 }'
    done | best
}

have_qemu=0
command -v qemu-system-x86_64 >/dev/null && have_qemu=1
if [ "$have_qemu" = 0 ] && [ "$(id -u)" = 0 ] && [ -z "${BENCH_NO_INSTALL:-}" ]; then
    echo "installing the comparison peer (qemu-system-x86) ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends qemu-system-x86) >/dev/null 2>&1 && have_qemu=1
fi

echo "== boot to first command (best of $runs; same kernel, initrd and command line) =="
for cpus in 1 2; do
    u=$(unum_ready "$cpus")
    if [ "$have_qemu" = 1 ]; then
        q=$(qemu_ready "$cpus")
        printf 'cpus=%d  unum %6.2f s   qemu-tcg %6.2f s   unum/qemu %.2f\n' "$cpus" "$u" "$q" \
            "$(echo "$u / $q" | bc -l)"
    else
        printf 'cpus=%d  unum %6.2f s   (qemu-system-x86_64 not installed)\n' "$cpus" "$u"
    fi
done

echo "== CPU benchmark inside Linux (bench/cpubench.c in the guest, --cpus 1) =="
u=$(guest_cpubench "$BUILD/unum" run --memory 512M)
if [ "$have_qemu" = 1 ]; then
    q=$(INITRD=$initrd UNUM_GUEST_CMDLINE="$cmdline" guest_cpubench scripts/qemu-run.sh --memory 512M)
    printf 'unum %6.2f s   qemu-tcg %6.2f s   unum/qemu %.2f\n' "$u" "$q" "$(echo "$u / $q" | bc -l)"
else
    printf 'unum %6.2f s\n' "$u"
fi
