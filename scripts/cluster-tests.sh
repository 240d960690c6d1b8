#!/usr/bin/env bash
# cluster-tests.sh — multi-node tests: one VM over several `unum` node processes
# (docs/CLUSTER.md). Each check prints PASS/FAIL with the evidence (SKIP when the
# environment cannot run it: counts as neither); exits non-zero if any fails.
#   a. the coherence test guest on 2 nodes / 2 vCPUs and 4 nodes / 4 vCPUs; the
#      remote-miss probe, whose answers waiting vCPUs serve (node 0: halted, node 1:
#      faulting) rather than the transport threads; in the coherence guest, running
#      vCPUs serve their node's network between blocks of guest code (also when only
#      their doorbell tells them to)
#   b. one Linux boot on `unum run --nodes 2 --cpus 2 --memory 512M`: vCPUs, NUMA
#      nodes, RAM, per-node CPU lists, clean dmesg, exact SMP atomics, a parallel sort
#      and a stencil that match the host; and (not with UNUM_QUICK=1) two 4-node boots (4 and 64 vCPUs)
#   c. a cluster file with unequal nodes, started with `unum node`
#   d. killing a non-platform node stops the VM quickly, naming the node
#   e. a node with the wrong secret is refused; the VM carries on (the c cluster)
#   f. bad cluster files and bad --nodes: status 2 and one line, nothing started
#   g. two nodes in two network namespaces over TCP (root only; SKIP otherwise)
# Environment: BUILD, UNUM as for the other scripts; CLUSTER_TEST_TIMEOUT (s) bounds
# every boot; UNUM_QUICK=1 skips the 4-node Linux boots.
# Usage: scripts/cluster-tests.sh [SECTION...]   (letters a..g, c and e run together; default all)
set -u
sections=("$@")
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
UNUM=${UNUM:-$BUILD/unum}
LIMIT=${CLUSTER_TEST_TIMEOUT:-240}
COHERENCE=$BUILD/guest-tests/coherence.bin
pass=0
fail=0
skip=0

ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() {
    fail=$((fail + 1)); echo "FAIL $1: $2"
    # the first lines (unum's own error comes first) and the last ones (a
    # sanitizer's report of a failing node can run to dozens of lines)
    [ -n "${3:-}" ] && printf '%s\n' "$3" | awk '{ l[NR] = $0 }
        END { for (i = 1; i <= NR; i++)
                  if (i <= 8 || i > NR - 20) print l[i]; else if (i == 9) print "[...]" }' |
        sed 's/^/    /'
}
skipped() { skip=$((skip + 1)); echo "SKIP $1"; }

nl=$'\n'
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for f in "$UNUM" "$COHERENCE" "$BUILD/guest/vmlinuz" "$BUILD/guest/initrd.cpio"; do
    if [ ! -e "$f" ]; then
        echo "FAIL cluster-tests: $f not built (run make)"
        echo "cluster tests: 0 passed, 1 failed"
        exit 1
    fi
done

# --- background processes and namespaces: all cleaned up on exit ---
tmp=$(mktemp -d)
bg_pids=()
netns=()
links=()
cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${bg_pids[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for n in "${netns[@]}"; do ip netns del "$n" 2>/dev/null; done
    for n in "${links[@]}"; do ip link del "$n" 2>/dev/null; done # if never moved
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# bg OUT ERR CMD...: start CMD in the background (stdout to OUT, stderr to ERR); $bgpid
bg() {
    local o=$1 e=$2; shift 2
    "$@" >"$o" 2>"$e" &
    bgpid=$!
    bg_pids+=("$bgpid")
}
# wait_for FILE TEXT SECONDS PID: until FILE contains TEXT (0), or the time is up or
# process PID has ended (1)
wait_for() {
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        grep -qsF -- "$2" "$1" && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
# free_ports N: N distinct free TCP ports on 127.0.0.1 (held open together while chosen)
free_ports() {
    python3 -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}
head -c 32 /dev/urandom >"$tmp/cluster.key"
head -c 32 /dev/urandom >"$tmp/other.key"
chmod 600 "$tmp/cluster.key" "$tmp/other.key"
t_all=$(now)
# want X: section X selected (arguments: section letters; default all; c includes e)
want() { [ ${#sections[@]} -eq 0 ] || [[ " ${sections[*]} " == *" $1 "* ]]; }
# boot_prints NAME TIMEOUT WANT WHAT COMMAND RUN-ARGS...: `unum run RUN-ARGS -- COMMAND`
# must exit 0 printing the two lines of WANT (WHAT says them in the PASS line)
boot_prints() {
    local name=$1 limit=$2 want=$3 what=$4 command=$5 t0 out rc boot
    shift 5
    t0=$(now)
    out=$(timeout "$limit" "$UNUM" run "$@" -- "$command" 2>&1)
    rc=$?
    boot="unum run $*, rc=$rc, $(since "$t0") s"
    if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then
        ok "$name: $what ($boot)"
    else
        bad "$name" "want '${want%%"$nl"*}' and '${want#*"$nl"}' ($boot)" "$out"
    fi
}


# ===== a. the coherence test guest =====================================================
if want a; then
    for nc in "2 2" "4 4"; do
        set -- $nc
        t0=$(now)
        out=$(timeout "$LIMIT" "$UNUM" testguest --nodes "$1" --cpus "$2" "$COHERENCE" 2>"$tmp/a.err")
        rc=$?
        err=$(cat "$tmp/a.err")
        if [ "$rc" -eq 0 ] && grep -q '^PASS: coherence' <<<"$out"; then
            ok "coherence guest, --nodes $1 --cpus $2: exit 0, 'PASS: coherence' ($(since "$t0") s)${err:+; stderr: $err}"
        else
            bad "coherence guest, --nodes $1 --cpus $2" "rc=$rc ($(since "$t0") s)" "$out$nl$err"
        fi
    done
    out=$(UNUM_DSM_READAHEAD=0 timeout "$LIMIT" "$UNUM" testguest --nodes 2 --cpus 2 --memory 64M \
        --stats "$BUILD/guest-tests/dsm_read_miss.bin" 2>&1)
    rc=$?
    # "node K: messages handled by the transport thread A, by vCPUs B (halted vCPUs
    # served C events, running vCPUs D)"
    served() { sed -n "s/^node $1: messages handled by the transport thread [0-9]*, by vCPUs \([0-9]*\).*/\1/p" <<<"$out" | head -n 1; }
    by_running() { sed -n "s/^node $1: messages handled by .*, running vCPUs \([0-9]*\))$/\1/p" <<<"$out" | head -n 1; }
    s0=$(served 0); s1=$(served 1)
    if [ "$rc" -eq 0 ] && grep -q '^PASS: dsm_read_miss' <<<"$out" && [ "${s0:-0}" -gt 1000 ] && [ "${s1:-0}" -gt 1000 ]; then
        ok "remote-miss probe: messages served by waiting vCPUs: node 0 (halted) $s0, node 1 (faulting) $s1"
    else
        bad "remote-miss probe" "rc=$rc, served by waiting vCPUs: node 0 '${s0}', node 1 '${s1}' (want > 1000 each)" "$out"
    fi
    # coherence_2 [VAR=VALUE...]: the coherence guest on 2 nodes with that environment;
    # sets out, rc and r0/r1 (messages running vCPUs of node 0/1 served)
    coherence_2() {
        out=$(env "$@" timeout "$LIMIT" "$UNUM" testguest --nodes 2 --cpus 2 --stats "$COHERENCE" 2>&1)
        rc=$?
        r0=$(by_running 0); r1=$(by_running 1)
    }
    exact_and_served() { # exit 0, exact totals, running vCPUs of both nodes served > 100
        [ "$rc" -eq 0 ] && grep -q '^PASS: coherence' <<<"$out" && [ "${r0:-0}" -gt 100 ] && [ "${r1:-0}" -gt 100 ]
    }
    coherence_2
    if exact_and_served; then
        ok "coherence guest, 2 nodes: messages served by running vCPUs: node 0 $r0, node 1 $r1"
    else
        bad "coherence guest, 2 nodes: served by running vCPUs" "rc=$rc, node 0 '${r0}', node 1 '${r1}' (want > 100 each)" "$out"
    fi
    coherence_2 UNUM_VCPU_POLL_INSNS=0
    if [ "$rc" -eq 0 ] && grep -q '^PASS: coherence' <<<"$out" && [ "$r0" = 0 ] && [ "$r1" = 0 ]; then
        ok "coherence guest, 2 nodes, UNUM_VCPU_POLL_INSNS=0: exact, and no running vCPU polled"
    else
        bad "coherence guest, 2 nodes, UNUM_VCPU_POLL_INSNS=0" "rc=$rc, running vCPUs served: node 0 '${r0}', node 1 '${r1}' (want 0)" "$out"
    fi
    # the doorbells alone: with the regular poll pushed out of reach (2^32-1
    # instructions), running vCPUs still serve, because their bell says when
    coherence_2 UNUM_VCPU_POLL_INSNS=4294967295
    if exact_and_served; then
        ok "coherence guest, 2 nodes, polls only when the doorbell rang: running vCPUs served node 0 $r0, node 1 $r1"
    else
        bad "coherence guest, 2 nodes, doorbell-driven polls" "rc=$rc, running vCPUs served: node 0 '${r0}', node 1 '${r1}' (want > 100 each)" "$out"
    fi
fi

# ===== b. one Linux boot over 2 nodes (and one over 4) =================================
if want b; then
    bad_dmesg='WARNING|BUG|Oops|Firmware Bug|BIOS bug|ACPI Error|TSC unstable'
    script=$(cat <<'EOF'
echo NPROC=$(nproc)
echo NODES=$(cat /sys/devices/system/node/online)
echo MEMTOTAL_MB=$(free -m | awk '/^Mem:/ { print $2 }')
echo NODE0_CPUS=$(cat /sys/devices/system/node/node0/cpulist)
echo NODE1_CPUS=$(cat /sys/devices/system/node/node1/cpulist)
echo NODE_DIST=$(cat /sys/devices/system/node/node0/distance /sys/devices/system/node/node1/distance)
echo CMDLINE=$(cat /proc/cmdline)
echo RAMDISK=$(dmesg | sed -n 's/.*RAMDISK: \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\].*/\1 \2/p')
echo DMESG-BEGIN; dmesg | grep -E 'WARNING|BUG|Oops|Firmware Bug|BIOS bug|ACPI Error|TSC unstable'; echo DMESG-END
echo ATOMICS-BEGIN; atomics 20000; echo ATOMICS-STATUS=$?
echo PSORT-BEGIN; psort -n 200000; echo PSORT-STATUS=$?
echo SEQ-BEGIN; taskset -c 1 seq 1 3000; echo SEQ-END
echo PSORTP-BEGIN; psort -p -v -n 200000; echo PSORTP-STATUS=$?
echo STENCIL-BEGIN; pstencil -p -v -n 130 -i 40; echo STENCIL-STATUS=$?
echo STENCIL0-BEGIN; pstencil -s 0 -n 130 -i 40; echo STENCIL0-STATUS=$?
echo ALL-DONE
EOF
    )
    t0=$(now)
    out=$(timeout "$LIMIT" "$UNUM" run --nodes 2 --cpus 2 --memory 512M -- "$script" 2>"$tmp/b.err")
    rc=$?
    boot="unum run --nodes 2 --cpus 2 --memory 512M, rc=$rc, $(since "$t0") s"
    all="$out$nl$(cat "$tmp/b.err")"
    val() { sed -n "s/^$1=//p" <<<"$out" | head -n 1; }
    if [ "$rc" -eq 0 ] && grep -qx ALL-DONE <<<"$out"; then
        ok "2-node Linux boot: exit 0, script ran to the end ($boot)"
    else
        bad "2-node Linux boot" "$boot" "$all"
    fi
    v=$(val NPROC)
    [ "$v" = 2 ] && ok "2 nodes: nproc=2" || bad "2 nodes: nproc" "got '$v', want 2" "$all"
    v=$(val NODES)
    [ "$v" = 0-1 ] && ok "2 nodes: node/online=0-1" || bad "2 nodes: node/online" "got '$v', want 0-1" "$all"
    v=$(val MEMTOTAL_MB)
    if [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge 400 ] && [ "$v" -le 512 ]; then
        ok "2 nodes: free -m total ${v} MB (400..512)"
    else
        bad "2 nodes: free -m total" "got '$v', want 400..512" "$all"
    fi
    v0=$(val NODE0_CPUS)
    v1=$(val NODE1_CPUS)
    [ "$v0" = 0 ] && [ "$v1" = 1 ] && ok "2 nodes: node0/cpulist=0, node1/cpulist=1" ||
        bad "2 nodes: per-node CPU lists" "node0 '$v0' (want 0), node1 '$v1' (want 1)" "$all"
    # the SLIT: 20 for another node. Not more: above 30 Linux stops spreading forked
    # tasks over nodes, and its small-imbalance allowance then left both threads of
    # an unpinned 2-thread sort on one node for the whole run
    v=$(val NODE_DIST)
    [ "$v" = "10 20 20 10" ] && ok "2 nodes: NUMA distances $v" ||
        bad "2 nodes: NUMA distances" "got '$v', want '10 20 20 10'" "$all"
    v=$(val CMDLINE)
    if [[ " $v " == *" numa_balancing=disable "* && " $v " == *" initramfs_async=0 "* &&
        " $v " == *" nohz_full=1 "* && " $v " == *" maxcpus=1 noreplace-smp unum.late_cpus=1 "* &&
        " $v " == *" nokaslr "* ]]; then
        ok "2 nodes: the kernel command line has the cluster settings (numa_balancing=disable initramfs_async=0 nokaslr maxcpus=1 noreplace-smp unum.late_cpus=1 nohz_full=1; /init brought vCPU 1 online: nproc above)"
    else
        bad "2 nodes: cluster kernel command line" "got '$v'" "$all"
    fi
    # the platform node (node 0: the first 256 MiB) loaded the initrd into its own memory
    read -r rd_lo rd_hi <<<"$(val RAMDISK)"
    if [[ "$rd_lo" =~ ^0x[0-9a-f]+$ && "$rd_hi" =~ ^0x[0-9a-f]+$ ]] && ((rd_hi < 0x10000000)); then
        ok "2 nodes: the initrd lies in the platform node's memory ($rd_lo-$rd_hi)"
    else
        bad "2 nodes: initrd placement" "RAMDISK '$rd_lo-$rd_hi', want below 0x10000000" "$all"
    fi
    dm=$(sed -n '/^DMESG-BEGIN$/,/^DMESG-END$/p' <<<"$out")
    if [ "$dm" = "DMESG-BEGIN${nl}DMESG-END" ]; then
        ok "2 nodes: dmesg free of $bad_dmesg"
    else
        bad "2 nodes: dmesg" "unexpected lines (or none of the markers)" "${dm:-$all}"
    fi
    at=$(sed -n '/^ATOMICS-BEGIN$/,/^ATOMICS-STATUS/p' <<<"$out")
    if grep -qx 'atomic_fetch_add total: 40000 expected: 40000' <<<"$at" &&
        grep -qx 'mutex total: *40000 expected: 40000' <<<"$at" && grep -qx 'ATOMICS-STATUS=0' <<<"$at"; then
        ok "2 nodes: atomics 20000 x 2 threads: LOCK XADD and mutex totals exactly 40000"
    else
        bad "2 nodes: atomics" "totals not exact or status not 0" "${at:-$all}"
    fi
    # the same program natively: the checksum does not depend on the thread count
    gcc -O2 -static -pthread -o "$BUILD/psort-host" guest/programs/psort.c 2>"$tmp/gcc.err"
    want=$("$BUILD/psort-host" -n 200000 2>&1 | sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p')
    ps=$(sed -n '/^PSORT-BEGIN$/,/^PSORT-STATUS/p' <<<"$out")
    got=$(sed -n 's/^psort: n=200000 threads=2 checksum=\([0-9a-f]*\)$/\1/p' <<<"$ps")
    if [ -n "$want" ] && [ "$got" = "$want" ] && grep -qx 'PSORT-STATUS=0' <<<"$ps"; then
        ok "2 nodes: psort -n 200000 on 2 threads: checksum=$got = host"
    else
        bad "2 nodes: psort" "checksum '$got', host '$want'" "${ps:-$all}$nl$(cat "$tmp/gcc.err")"
    fi
    # console output written by vCPU 1 (node 1): its port writes to the platform's UART
    # are posted, and must still arrive whole and in order
    sq=$(sed -n '/^SEQ-BEGIN$/,/^SEQ-END$/p' <<<"$out" | sed '1d;$d' | tr -d '\r')
    if [ "$sq" = "$(seq 1 3000)" ]; then
        ok "2 nodes: 3000 console lines written on vCPU 1 arrive whole and in order"
    else
        bad "2 nodes: console output from vCPU 1" "$(wc -l <<<"$sq") lines, first difference: $(diff <(seq 1 3000) <(printf '%s\n' "$sq") | head -n 3 | tr '\n' ' ')" "$all"
    fi
    ps=$(sed -n '/^PSORTP-BEGIN$/,/^PSORTP-STATUS/p' <<<"$out")
    got=$(sed -n 's/^psort: n=200000 threads=2 checksum=\([0-9a-f]*\)$/\1/p' <<<"$ps")
    # -v names the CPU each thread generated its chunk on: the pinning took
    if [ -n "$want" ] && [ "$got" = "$want" ] && grep -qx 'PSORTP-STATUS=0' <<<"$ps" &&
        ! grep -q 'pinning' <<<"$ps" && grep -q '^psort: thread 0 on CPU 0:' <<<"$ps" &&
        grep -q '^psort: thread 1 on CPU 1:' <<<"$ps"; then
        ok "2 nodes: psort -p (threads ran on vCPUs 0 and 1): checksum=$got = host"
    else
        bad "2 nodes: psort -p" "checksum '$got', host '$want'" "${ps:-$all}"
    fi
    # the stencil: each thread's rows on its node, one halo row from the other per
    # sweep, a spinning barrier (and, with -s 0, one that sleeps at once: a futex wake-up
    # across nodes at every sweep); the host's checksum for any thread count
    gcc -O2 -static -pthread -o "$BUILD/pstencil-host" guest/programs/pstencil.c 2>"$tmp/gcc.err"
    want=$("$BUILD/pstencil-host" -t 1 -n 130 -i 40 2>&1 | sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p')
    for v in STENCIL STENCIL0; do
        st=$(sed -n "/^$v-BEGIN\$/,/^$v-STATUS/p" <<<"$out")
        got=$(sed -n 's/^pstencil: n=130 iterations=40 threads=2 checksum=\([0-9a-f]*\)$/\1/p' <<<"$st")
        what="pstencil -p (threads on vCPUs 0 and 1)"
        pinned=true
        if [ $v = STENCIL0 ]; then
            what="pstencil -s 0 (a sleeping barrier)"
        elif grep -q 'pinning' <<<"$st" || ! grep -q '^pstencil: thread 0 on CPU 0:' <<<"$st" ||
            ! grep -q '^pstencil: thread 1 on CPU 1:' <<<"$st"; then
            pinned=false
        fi
        if [ -n "$want" ] && [ "$got" = "$want" ] && grep -qx "$v-STATUS=0" <<<"$st" && $pinned; then
            ok "2 nodes: $what, 130x130, 40 sweeps: checksum=$got = host"
        else
            bad "2 nodes: $what" "checksum '$got', host '$want'" "${st:-$all}$nl$(cat "$tmp/gcc.err")"
        fi
    done

    if [ "${UNUM_QUICK:-0}" = 1 ]; then
        skipped "4-node Linux boots (UNUM_QUICK=1)"
    else
        boot_prints "4-node Linux boot" "$LIMIT" "4${nl}0-3" "nproc=4, node/online=0-3" \
            'nproc; cat /sys/devices/system/node/online' --nodes 4 --cpus 4 --memory 512M
        # the most vCPUs a VM may have, 32 vCPU threads per host core here: a node's
        # progress thread is held in handlers for seconds (an invalidation waits for
        # vCPU threads that hardly get a core); the heartbeat thread then progresses the
        # worker so that the node's sends and heartbeats go out (before it, 1 boot in 3
        # stopped with a false "no message for 2.0 s"). 50-80 s here.
        boot_prints "4 nodes x 16 vCPUs" $((LIMIT * 3)) "64${nl}48-63" "nproc=64, node3/cpulist=48-63" \
            'nproc; cat /sys/devices/system/node/node3/cpulist' --nodes 4 --cpus 64 --memory 1G
    fi
fi

# ===== c + e. unequal nodes from a cluster file; an intruder with the wrong secret =====
if want c || want e; then
    read -r p0 p1 p2 < <(free_ports 3)
    cat >"$tmp/unequal.conf" <<EOF
# two unequal nodes on this computer (cluster-tests.sh)
secret-file = cluster.key
node 0 address=127.0.0.1:$p0 cpus=2 memory=192M
node 1 address=127.0.0.1:$p1 cpus=2 memory=320M
EOF
    # the intruder: the same platform node, its own port (node 1's is taken), another secret
    sed -e 's/^secret-file = cluster.key/secret-file = other.key/' -e "s/:$p1 /:$p2 /" \
        "$tmp/unequal.conf" >"$tmp/intruder.conf"
    guest=$(cat <<'EOF'
grep -h MemTotal /sys/devices/system/node/node0/meminfo /sys/devices/system/node/node1/meminfo
echo NPROC=$(nproc)
echo CPULISTS=$(cat /sys/devices/system/node/node0/cpulist /sys/devices/system/node/node1/cpulist)
sleep 5; echo done
EOF
    )
    t0=$(now)
    bg "$tmp/c1.out" "$tmp/c1.err" timeout "$LIMIT" "$UNUM" node --cluster "$tmp/unequal.conf" --id 1
    n1=$bgpid
    UNUM_TIMING=1 bg "$tmp/c0.out" "$tmp/c0.err" timeout "$LIMIT" "$UNUM" node \
        --cluster "$tmp/unequal.conf" --id 0 -- "$guest"
    n0=$bgpid
    intruder_ran=0
    if wait_for "$tmp/c0.err" "guest ready" "$LIMIT" "$n0"; then
        ti=$(now)
        iout=$(timeout 30 "$UNUM" node --cluster "$tmp/intruder.conf" --id 1 2>&1)
        irc=$?
        idt=$(since "$ti")
        intruder_ran=1
    fi
    wait "$n0"; rc0=$?
    wait "$n1"; rc1=$?
    out=$(cat "$tmp/c0.out")
    all="node 0 (exit $rc0):$nl$out$nl$(cat "$tmp/c0.err")${nl}node 1 (exit $rc1):$nl$(cat "$tmp/c1.out" "$tmp/c1.err")"
    m0=$(sed -n 's/^Node 0 MemTotal: *\([0-9]*\) kB$/\1/p' <<<"$out")
    m1=$(sed -n 's/^Node 1 MemTotal: *\([0-9]*\) kB$/\1/p' <<<"$out")
    cpus=$(sed -n 's/^NPROC=//p' <<<"$out")
    cl=$(sed -n 's/^CPULISTS=//p' <<<"$out")
    if [ "$rc0" -eq 0 ] && [ "$rc1" -eq 0 ] && [ -n "$m0" ] && [ -n "$m1" ] &&
        [ "$m0" -gt 100000 ] && [ "$m0" -le 196608 ] && [ "$m1" -gt 200000 ] && [ "$m1" -le 327680 ] && [ "$m1" -gt "$m0" ] &&
        [ "$cpus" = 4 ] && [ "$cl" = "0-1 2-3" ]; then
        ok "unequal cluster file (node 0: 2 vCPUs 192M, node 1: 2 vCPUs 320M): both exit 0, MemTotal node0 $m0 kB < node1 $m1 kB, nproc=4, cpulists $cl ($(since "$t0") s)"
    else
        bad "unequal cluster file" "rc0=$rc0 rc1=$rc1 (want 0 0), node0 '$m0' kB (want 100000..196608), node1 '$m1' kB (want 200000..327680, more than node 0), nproc '$cpus' (want 4), cpulists '$cl' (want 0-1 2-3)" "$all"
    fi
    if [ "$intruder_ran" = 0 ]; then
        bad "wrong secret" "the guest never became ready: no intruder started" "$all"
    elif [ "$irc" -eq 2 ] && [ "$(wc -l <<<"$iout")" -eq 1 ] && grep -q secret <<<"$iout" &&
        [ "$rc0" -eq 0 ] && [ "$(tail -n 1 <<<"$out")" = done ]; then
        ok "wrong secret: intruder exit 2 after $idt s: '$iout'; the VM went on: exit 0, 'done'"
    else
        bad "wrong secret" "intruder rc=$irc (want 2, one line with 'secret'): '$iout'; VM rc=$rc0, last line '$(tail -n 1 <<<"$out")' (want 0, done)" "$all"
    fi
fi

# ===== d. killing a non-platform node ==================================================
if want d; then
    t0=$(now)
    UNUM_TIMING=1 bg "$tmp/d.out" "$tmp/d.err" timeout "$LIMIT" "$UNUM" run --nodes 2 --cpus 2 \
        --memory 256M -- 'sleep 60'
    tpid=$bgpid
    if wait_for "$tmp/d.err" "guest ready" "$LIMIT" "$tpid"; then
        launcher=$(pgrep -P "$tpid" | head -n 1)
        child=
        [ -n "$launcher" ] && child=$(pgrep -P "$launcher" | head -n 1)
        if [ -z "$child" ]; then
            bad "kill node 1" "no node process under the launcher (timeout $tpid, launcher '$launcher')"
        else
            sleep 1
            tk=$(now)
            kill -9 "$child"
            for _ in $(seq 50); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
            wait "$tpid"; rc=$?
            dt=$(since "$tk")
            err=$(grep -v -e 'guest ready' -e 'cluster assembled' "$tmp/d.err")
            if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && awk -v d="$dt" 'BEGIN { exit !(d < 5) }' &&
                grep -q 'node 1' <<<"$err"; then
                ok "kill -9 node 1 (pid $child): launcher exit $rc after $dt s: $err"
            else
                bad "kill node 1" "launcher rc=$rc after $dt s (want non-zero within 5 s, stderr naming node 1)" \
                    "$err$nl$(cat "$tmp/d.out")"
            fi
        fi
    else
        bad "kill node 1" "the guest never became ready ($(since "$t0") s)" "$(cat "$tmp/d.err" "$tmp/d.out")"
    fi
fi

# ===== f. bad cluster files: status 2, one line, nothing started =======================
if want f; then
    n0="node 0 address=127.0.0.1:7100 cpus=1 memory=64M"
    n1="node 1 address=127.0.0.1:7101 cpus=1 memory=64M"
    cp "$tmp/cluster.key" "$tmp/open.key"
    chmod 644 "$tmp/open.key"
    mkconf() { local f=$tmp/$1.conf; shift; printf '%s\n' "$@" >"$f"; }
    mkconf unknown-key "secret-file = cluster.key" "$n0" "$n1" "colour = blue"
    mkconf duplicate-id "secret-file = cluster.key" "$n0" "${n1/node 1/node 0}"
    mkconf duplicate-address "secret-file = cluster.key" "$n0" "${n1/:7101/:7100}"
    mkconf memory-not-4k "secret-file = cluster.key" "$n0" "${n1/memory=64M/memory=65537K}"
    mkconf zero-cpus "secret-file = cluster.key" "$n0" "${n1/cpus=1/cpus=0}"
    mkconf platform-missing "secret-file = cluster.key" "platform = 2" "$n0" "$n1"
    mkconf world-readable-secret "secret-file = open.key" "$n0" "$n1"
    mkconf good "secret-file = cluster.key" "$n0" "$n1"
    check_bad() { # name, expected message part, unum args...
        local name=$1 msg=$2; shift 2
        local o r
        o=$(timeout 20 "$UNUM" "$@" -- true 2>&1)
        r=$?
        if [ "$r" -eq 2 ] && [ "$(wc -l <<<"$o")" -eq 1 ] && grep -q -- "$msg" <<<"$o"; then
            ok "bad input: $name -> '$o'"
        else
            bad "bad input: $name" "rc=$r (want 2, one line with '$msg')" "$o"
        fi
    }
    check_bad "missing cluster file" "cannot read cluster file" node --cluster "$tmp/nope.conf" --id 0
    check_bad "unknown key" "unknown key 'colour'" node --cluster "$tmp/unknown-key.conf" --id 0
    check_bad "duplicate node id" "node 0 is defined twice" node --cluster "$tmp/duplicate-id.conf" --id 0
    check_bad "duplicate address" "same address as node 0" node --cluster "$tmp/duplicate-address.conf" --id 0
    check_bad "memory not a multiple of 4K" "65537K is not a multiple of the 4 KiB" \
        node --cluster "$tmp/memory-not-4k.conf" --id 0
    check_bad "zero cpus" "node 1 has zero vCPUs" node --cluster "$tmp/zero-cpus.conf" --id 0
    check_bad "platform node missing" "platform node 2 is not defined" \
        node --cluster "$tmp/platform-missing.conf" --id 0
    check_bad "world-readable secret file" "readable by other users" \
        node --cluster "$tmp/world-readable-secret.conf" --id 0
    check_bad "missing --id" "--id" node --cluster "$tmp/good.conf"
    check_bad "--id not in the file" "--id 2" node --cluster "$tmp/good.conf" --id 2
    check_bad "--nodes 4 --cpus 2" "fewer than --nodes 4" run --nodes 4 --cpus 2
fi

# ===== g. two network namespaces, TCP between distinct addresses =======================
if want g; then
    ns0=unum-ct0-$$
    ns1=unum-ct1-$$
    v0=uct0-$$
    v1=uct1-$$
    v0=${v0:0:15} v1=${v1:0:15} # interface names: at most 15 characters
    if [ "$(id -u)" != 0 ]; then
        skipped "netns: not root"
    elif ! command -v ip >/dev/null; then
        skipped "netns: no ip command (iproute2)"
    elif ! e=$(ip netns add "$ns0" 2>&1); then
        skipped "netns: ip netns add failed: $e"
    else
        netns+=("$ns0")
        netns+=("$ns1")
        links+=("$v0")
        if ! e=$({ ip netns add "$ns1" && ip link add "$v0" type veth peer name "$v1" &&
            ip link set "$v0" netns "$ns0" && ip link set "$v1" netns "$ns1" &&
            ip -n "$ns0" addr add 10.77.0.1/24 dev "$v0" && ip -n "$ns0" link set "$v0" up &&
            ip -n "$ns0" link set lo up &&
            ip -n "$ns1" addr add 10.77.0.2/24 dev "$v1" && ip -n "$ns1" link set "$v1" up &&
            ip -n "$ns1" link set lo up; } 2>&1); then
            skipped "netns: cannot set up the namespaces and veth pair: $e"
        else
            cat >"$tmp/netns.conf" <<EOF
secret-file = cluster.key
transport = tcp
node 0 address=10.77.0.1:7100 cpus=1 memory=128M
node 1 address=10.77.0.2:7100 cpus=1 memory=128M
EOF
            t0=$(now)
            bg "$tmp/g1.out" "$tmp/g1.err" timeout "$LIMIT" ip netns exec "$ns1" "$UNUM" node \
                --cluster "$tmp/netns.conf" --id 1
            n1=$bgpid
            out=$(timeout "$LIMIT" ip netns exec "$ns0" "$UNUM" node --cluster "$tmp/netns.conf" \
                --id 0 --stats -- 'nproc; cat /sys/devices/system/node/online' 2>"$tmp/g0.err")
            rc0=$?
            wait "$n1"; rc1=$?
            link=$(sed -n 's/^node 0 -> node 1 (\([^ )]*\).*/\1/p' "$tmp/g0.err" | head -n 1)
            if [ "$rc0" -eq 0 ] && [ "$rc1" -eq 0 ] && [ "$out" = "2${nl}0-1" ] && [[ "$link" == tcp/* ]]; then
                ok "netns: node 0 on 10.77.0.1 ($ns0), node 1 on 10.77.0.2 ($ns1), link $link: nproc=2, node/online=0-1, both exit 0 ($(since "$t0") s)"
            else
                bad "netns" "rc0=$rc0 rc1=$rc1 (want 0 0), link '$link' (want tcp/...), output (want 2, 0-1)" \
                    "$out$nl$(grep -v '^pio\|^mmio\|^space\|^\*' "$tmp/g0.err")${nl}node 1:$nl$(cat "$tmp/g1.out" "$tmp/g1.err")"
            fi
        fi
    fi
fi

# ===== nothing left behind =============================================================
sleep 0.5
stray=$(pgrep -af -- "$tmp/")
for p in "${bg_pids[@]}"; do
    kill -0 "$p" 2>/dev/null && stray+="$nl$(ps -o pid=,args= -p "$p")"
done
stray=$(sed '/^ *$/d' <<<"$stray")
[ -z "$stray" ] && ok "no node process left running" || bad "stray processes" "still running" "$stray"

echo "cluster tests: $skip skipped, $(since "$t_all") s"
echo "cluster tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
