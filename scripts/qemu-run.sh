#!/usr/bin/env bash
# qemu-run.sh — boots the default guest (build/guest/, `make guest`) under QEMU's TCG
# emulator and runs one command in it, like `unum run` will: prints the command's output
# and exits with the command's exit status, read from the guest's
# "unum-exit-status: N" marker (guest/README.md). The comparison peer of the boot benchmark.
#
# Usage: scripts/qemu-run.sh [options] [--] [COMMAND...]
#   COMMAND         shell command run in the guest by /bin/sh -c (words are joined with
#                   spaces, as ssh does); none: an interactive shell on this terminal
#   -c, --cpus N    vCPUs [1]
#   -m, --memory M  guest RAM, QEMU syntax [512M]
#   -a, --append S  extra kernel command-line arguments (after the defaults)
#   -t, --timeout S wall-clock limit in seconds, 0 = none [600]
#   -v, --verbose   show the whole console (firmware, kernel, markers), unfiltered
#   -T, --timing    print "qemu-run: ready S.SSS s, exit S.SSS s" on stderr: seconds from
#                   starting QEMU to the "unum-guest-ready" line and to QEMU's exit
#   --accel A       QEMU accelerator [tcg]
#   --initrd FILE   initramfs [$INITRD]; e.g. $GUEST_DIR/initrd.cpio (not compressed)
# Environment: GUEST_DIR [build/guest], INITRD [$GUEST_DIR/initrd.cpio.gz], QEMU [qemu-system-x86_64],
#              UNUM_GUEST_CMDLINE (replaces the default kernel command line below).
# Exit status: the guest command's; 124 on timeout; 125 if the guest reported no status
# (crash, QEMU error) or init failed.
set -euo pipefail
cd "$(dirname "$0")/.."

GUEST_DIR=${GUEST_DIR:-build/guest}
QEMU=${QEMU:-qemu-system-x86_64}
# Default kernel command line: the same as unum's (src/machine/pc.c), so that the two
# boot the same way; see "Kernel command line" in guest/README.md.
CMDLINE=${UNUM_GUEST_CMDLINE:-"console=ttyS0 panic=-1 tsc=reliable no_timer_check cryptomgr.notests=1 quiet loglevel=3"}
cpus=1 mem=512M append="" timeout=600 verbose=0 timing=0 accel=tcg

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case $1 in
        -c | --cpus) cpus=$2; shift 2 ;;
        -m | --memory) mem=$2; shift 2 ;;
        -a | --append) append="$append $2"; shift 2 ;;
        -t | --timeout) timeout=$2; shift 2 ;;
        -v | --verbose) verbose=1; shift ;;
        -T | --timing) timing=1; shift ;;
        --accel) accel=$2; shift 2 ;;
        --initrd) INITRD=$2; shift 2 ;;
        -h | --help) usage 0 ;;
        --) shift; break ;;
        -*) echo "qemu-run: unknown option $1" >&2; usage 2 >&2 ;;
        *) break ;;
    esac
done

INITRD=${INITRD:-$GUEST_DIR/initrd.cpio.gz}
for f in "$GUEST_DIR/vmlinuz" "$INITRD"; do
    [ -f "$f" ] || { echo "qemu-run: $f missing: run make guest" >&2; exit 125; }
done
if ! command -v "$QEMU" >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "qemu-run: installing qemu-system-x86" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }
    else
        echo "qemu-run: $QEMU not found: apt-get install qemu-system-x86" >&2
        exit 125
    fi
fi

now_us() { echo "${EPOCHREALTIME/./}"; }      # wall clock in microseconds
secs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }

cmdline="$CMDLINE$append"
if [ $# -gt 0 ]; then
    # base64 keeps spaces, quotes and newlines out of the kernel's parameter parser.
    cmdline="$cmdline unum.cmd=$(printf '%s' "$*" | base64 -w0)"
fi
qemu=("$QEMU" -accel "$accel" -m "$mem" -smp "$cpus" -nographic -no-reboot
      -kernel "$GUEST_DIR/vmlinuz" -initrd "$INITRD" -append "$cmdline")
[ "$timeout" != 0 ] && qemu=(timeout --foreground -k 5 "$timeout" "${qemu[@]}")

# Interactive shell, or everything unfiltered: the terminal belongs to the guest; a copy
# of the console goes to a temporary file for the status marker.
if [ $# -eq 0 ] || [ $verbose = 1 ]; then
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    start=$(now_us)
    set +e
    "${qemu[@]}" | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    [ $timing = 1 ] && echo "qemu-run: exit $(secs $(($(now_us) - start))) s" >&2
    [ "$rc" = 124 ] && { echo "qemu-run: timed out after ${timeout}s" >&2; exit 124; }
    status=$(tr -d '\r' <"$log" | sed -n 's/.*unum-exit-status: \([0-9][0-9]*\)$/\1/p' | tail -n 1)
    [ -n "$status" ] || { echo "qemu-run: the guest reported no exit status" >&2; exit 125; }
    exit "$status"
fi

# Filtered: drop everything before "unum-guest-ready" (firmware and kernel output), pass
# the command's output through, and take the status from the last marker. A marker line
# is held back until it proves to be the last one: only kernel messages ("[ 12.3] ...",
# e.g. "reboot: Power down") may follow the real one.
status="" ready="" start=$(now_us)
held=() marker_re='^(.*)unum-exit-status: ([0-9]+)$' kmsg_re='^\[ *[0-9]+\.[0-9]+\] '
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    if [ -z "$ready" ]; then
        if [[ $line == *unum-guest-ready ]]; then
            ready=$(now_us)
        elif [[ $line == unum-init:* ]]; then
            printf '%s\n' "$line" >&2       # /init's own error messages
        fi
        continue
    fi
    if [[ $line =~ $marker_re ]]; then
        # A newer marker: whatever was held was command output after all.
        [ ${#held[@]} -gt 0 ] && printf '%s\n' "${held[@]}"
        # Text before the marker is output that did not end with a newline.
        [ -n "${BASH_REMATCH[1]}" ] && printf '%s\n' "${BASH_REMATCH[1]}"
        held=("unum-exit-status: ${BASH_REMATCH[2]}")
        status=${BASH_REMATCH[2]}
    elif [ ${#held[@]} -gt 0 ] && [[ $line =~ $kmsg_re ]]; then
        held+=("$line")
    else
        if [ ${#held[@]} -gt 0 ]; then printf '%s\n' "${held[@]}"; held=(); status=""; fi
        printf '%s\n' "$line"
    fi
done < <("${qemu[@]}" </dev/null)
end=$(now_us)
qrc=0
wait $! || qrc=$?   # QEMU's (or timeout's) exit status

if [ $timing = 1 ]; then
    r="?"
    [ -n "$ready" ] && r=$(secs $((ready - start)))
    echo "qemu-run: ready $r s, exit $(secs $((end - start))) s" >&2
fi
if [ $qrc = 124 ]; then
    echo "qemu-run: timed out after ${timeout}s" >&2
    exit 124
fi
if [ -z "$status" ]; then
    echo "qemu-run: the guest reported no exit status" >&2
    exit 125
fi
exit "$status"
