/* coherence.S — shared-memory coherence torture for any number of vCPUs.
 *
 * Written to run unchanged on the test machine and on a cluster where the
 * vCPUs live in different processes and guest memory is kept coherent by a
 * page-granular distributed shared memory: every check is exact under
 * sequential consistency (and under x86-TSO: nothing here depends on a store
 * being seen before a later load of another location), iteration counts are
 * moderate because a remote page fault may cost a network round trip, and all
 * shared data sits in its own 4 KiB pages of .bss, away from the code, so code
 * pages are only ever read.
 *
 * Every vCPU runs the phases below; a sense-reversing barrier (LOCK XADD on an
 * arrival counter, the last arrival resets it and flips the sense word)
 * ends each phase; vCPU 0 then checks the phase's final state and prints one
 * line while the others wait at a second barrier.
 *   a. LOCK XADD +1 on cnt_a, N times each: the old values a vCPU gets back
 *      must strictly increase and stay below ncpus * N; total = ncpus * N.
 *   b. LOCK CMPXCHG retry loop +1 on cnt_b (another page), N times each: same
 *      checks on the old value of each successful CMPXCHG; total exact.
 *   c. false sharing: vCPU i owns qword i of ONE page and does K plain
 *      load / check (k-1) / store k / reload / check k on it, and reads its
 *      neighbour's qword, whose values must never go backwards (per-location
 *      coherence). Afterwards qwords 0..ncpus-1 must be K and the rest of the
 *      page 0 (no neighbour's store lost or smeared).
 *   d. message passing (skipped with 1 vCPU): vCPU i sends M messages to
 *      vCPU (i+1) % ncpus on channel i. The sender waits for ack == m-1,
 *      writes m into all 8 qwords of a 64-byte block (plain MOVs for odd m,
 *      REP STOSQ for even m), then stores flag = m; the receiver spins until
 *      flag == m, checks every qword == m (no stale data) and stores ack = m.
 *      Data, flag and ack are three different pages per channel. While
 *      spinning, flag must be m-1 and ack m-2 (nothing skipped or replayed).
 *   e. plain-store ring: a turn word passes through every vCPU in order
 *      (ncpus * R turns). At turn t (vCPU t % ncpus) the holder checks that
 *      the plain counter == t and that the last min(t, ncpus) history entries
 *      hold their turn numbers (so stores made by every other vCPU earlier in
 *      the chain are visible: transitivity), then writes hist[t] = t,
 *      counter = t + 1 and turn = t + 1 with plain MOVs. Counter, history
 *      and turn are on three pages.
 * A failed check prints the vCPU and step, then the usual CHECK line with the
 * expected and actual values, and exits 1 (only the first vCPU to fail
 * reports; the others halt).
 *
 * common.h parks vCPUs >= MAX_CPUS (4), so with more vCPUs only the first
 * MAX_CPUS take part; the shared data is laid out for up to 8. The counts
 * below can be overridden with -D (e.g. smaller ones for a slow cluster).
 *
 * # cpus: 4
 * # timeout: 120
 */
#define TEST_NAME "coherence"
#include "common.h"

#ifndef COH_N
#define COH_N 20000                     /* a, b: atomic increments per vCPU */
#endif
#ifndef COH_K
#define COH_K 20000                     /* c: stores per vCPU to its own qword */
#endif
#ifndef COH_M
#define COH_M 1000                      /* d: messages per channel */
#endif
#ifndef COH_R
#define COH_R 500                       /* e: ring turns per vCPU */
#endif
#define MAXV 8                          /* shared data laid out for up to 8 vCPUs */
#define MSG_QWORDS 8                    /* d: 64-byte messages */
#define HIST 512                        /* e: history entries (one page) */
#if MAX_CPUS > MAXV
#error "coherence.S lays out its shared pages for at most MAXV vCPUs"
#endif

/* BAD step, actual, expected, "what": report a failed check found by a hot
 * loop (which only jumps here when actual != expected) with vCPU and step. */
.macro BAD step, actual, expected, msg
    push %rdi
    mov \step, %rdi
    call where
    pop %rdi
    CHECK \actual, \expected, "\msg"
    FAIL "\msg (values changed while reporting)"
.endm
.macro BAD_RANGE step, actual, lo, hi, msg
    push %rdi
    mov \step, %rdi
    call where
    pop %rdi
    CHECK_RANGE \actual, \lo, \hi, "\msg"
    FAIL "\msg (values changed while reporting)"
.endm

test_main:
ap_main:
    /* rdi = vCPU index, rsi = vCPU count. Kept for the whole test:
     * r13 = index, r15 = vCPUs taking part, r14 = barrier sense. */
    mov %rdi, %r13
    mov %rsi, %r15
    cmp $MAX_CPUS, %r15
    jbe 1f
    mov $MAX_CPUS, %r15d
1:  xor %r14d, %r14d
    test %r13, %r13
    jnz 2f
    PUTS "  vCPUs: "
    mov %r15, %rdi
    call putdec
    cmp %rsi, %r15
    je 3f
    PUTS " (of "
    mov %rsi, %rdi
    call putdec
    PUTS " started; common.h parks the others)"
3:  PUTS ", N="
    mov $COH_N, %edi
    call putdec
    PUTS " K="
    mov $COH_K, %edi
    call putdec
    PUTS " M="
    mov $COH_M, %edi
    call putdec
    PUTS " R="
    mov $COH_R, %edi
    call putdec
    PUTS "\n"
2:  call barrier

    /* ---------------- a: LOCK XADD ---------------- */
    imul $COH_N, %r15, %r9              /* r9 = ncpus * N: bound and total */
    xor %r12d, %r12d                    /* r12 = step */
    xor %r8d, %r8d                      /* r8 = lowest acceptable old value */
.La_loop:
    mov $1, %eax
    lock xadd %rax, cnt_a(%rip)
    cmp %r8, %rax
    jb .La_bad
    cmp %r9, %rax
    jae .La_bad
    lea 1(%rax), %r8
    inc %r12
    cmp $COH_N, %r12
    jb .La_loop
    call barrier
    test %r13, %r13
    jnz 1f
    CHECK cnt_a(%rip), %r9, "a: LOCK XADD counter = ncpus * N"
    PUTS "  a: LOCK XADD: counter "
    mov %r9, %rdi
    call putdec
    PUTS " = ncpus * N, old values increasing\n"
1:  call barrier                        /* nobody starts b before a is checked */

    /* ---------------- b: LOCK CMPXCHG loop ---------------- */
.Lb:
    xor %r12d, %r12d
    xor %r8d, %r8d
    xor %r10d, %r10d                    /* r10 = failed CMPXCHGs */
.Lb_loop:
    mov cnt_b(%rip), %rax
1:  lea 1(%rax), %rdx
    lock cmpxchg %rdx, cnt_b(%rip)      /* ZF=0: RAX = the current value, retry */
    jz 2f
    inc %r10
    jmp 1b
2:  cmp %r8, %rax                       /* RAX = the old value we replaced */
    jb .Lb_bad
    cmp %r9, %rax
    jae .Lb_bad
    lea 1(%rax), %r8
    inc %r12
    cmp $COH_N, %r12
    jb .Lb_loop
    lock add %r10, cnt_b_retries(%rip)
    call barrier
    test %r13, %r13
    jnz 1f
    CHECK cnt_b(%rip), %r9, "b: LOCK CMPXCHG counter = ncpus * N"
    PUTS "  b: LOCK CMPXCHG: counter "
    mov %r9, %rdi
    call putdec
    PUTS " = ncpus * N ("
    mov cnt_b_retries(%rip), %rdi
    call putdec
    PUTS " retries)\n"
1:  call barrier

    /* ---------------- c: false sharing, plain stores ---------------- */
.Lc:
    lea slots(, %r13, 8), %rbx          /* my qword */
    lea 1(%r13), %rax
    xor %edx, %edx
    div %r15
    lea slots(, %rdx, 8), %rbp          /* my neighbour's qword */
    xor %r8d, %r8d                      /* r8 = last value seen in the neighbour's */
    mov $1, %r12d                       /* r12 = k */
.Lc_loop:
    mov (%rbx), %rax
    lea -1(%r12), %rdx
    cmp %rdx, %rax
    jne .Lc_bad_before
    mov %r12, (%rbx)
    mov (%rbx), %rax
    cmp %r12, %rax
    jne .Lc_bad_after
    mov (%rbp), %rax
    cmp %r8, %rax
    jb .Lc_bad_neighbour
    cmp $COH_K, %rax
    ja .Lc_bad_neighbour
    mov %rax, %r8
    inc %r12
    cmp $COH_K, %r12
    jbe .Lc_loop
    call barrier
    test %r13, %r13
    jnz 2f
    xor %ecx, %ecx
1:  mov $COH_K, %eax
    xor %edx, %edx
    cmp %r15, %rcx
    cmovae %rdx, %rax                   /* qwords past the last vCPU stay 0 */
    cmp slots(, %rcx, 8), %rax
    jne .Lc_bad_final
    inc %ecx
    cmp $512, %ecx
    jb 1b
    PUTS "  c: false sharing: each vCPU's qword of one page = K, the rest 0\n"
2:  call barrier

    /* ---------------- d: message passing ---------------- */
.Ld:
    cmp $1, %r15
    jne 1f
    PUTS "  d: message passing: skipped (1 vCPU)\n"
    jmp .Le
1:  mov %r13, %rax                      /* send on channel = my index */
    shl $12, %rax
    lea msg_data(%rax), %rbx
    lea msg_flag(%rax), %rbp
    lea msg_ack(%rax), %r8
    lea -1(%r13, %r15), %rax            /* receive on channel (index - 1) mod ncpus */
    xor %edx, %edx
    div %r15
    mov %rdx, %rax
    shl $12, %rax
    lea msg_data(%rax), %r9
    lea msg_flag(%rax), %r10
    lea msg_ack(%rax), %r11
    mov $1, %r12d                       /* r12 = message number m */
.Ld_loop:
    /* send m once the receiver acknowledged m - 1 */
    lea -1(%r12), %rdx
    lea -2(%r12), %rcx
1:  mov (%r8), %rax
    cmp %rdx, %rax
    je 2f
    cmp %rcx, %rax
    jne .Ld_bad_ack
    pause
    jmp 1b
2:  test $1, %r12b
    jz 3f
    xor %ecx, %ecx                      /* odd m: plain MOVs */
4:  mov %r12, (%rbx, %rcx, 8)
    inc %ecx
    cmp $MSG_QWORDS, %ecx
    jb 4b
    jmp 5f
3:  mov %rbx, %rdi                      /* even m: REP STOSQ */
    mov %r12, %rax
    mov $MSG_QWORDS, %ecx
    rep stosq
5:  mov %r12, (%rbp)                    /* flag = m */
    /* receive m from the previous vCPU */
    lea -1(%r12), %rdx
6:  mov (%r10), %rax
    cmp %r12, %rax
    je 7f
    cmp %rdx, %rax
    jne .Ld_bad_flag
    pause
    jmp 6b
7:  xor %ecx, %ecx
8:  mov (%r9, %rcx, 8), %rax
    cmp %r12, %rax
    jne .Ld_bad_data
    inc %ecx
    cmp $MSG_QWORDS, %ecx
    jb 8b
    mov %r12, (%r11)                    /* ack = m */
    inc %r12
    cmp $COH_M, %r12
    jbe .Ld_loop
    call barrier
    test %r13, %r13
    jnz 3f
    xor %ebx, %ebx                      /* every channel ends at M, acknowledged */
1:  mov %rbx, %rax
    shl $12, %rax
    CHECK msg_flag(%rax), $COH_M, "d: final flag"
    CHECK msg_ack(%rax), $COH_M, "d: final ack"
    xor %ecx, %ecx
2:  lea msg_data(%rax, %rcx, 8), %rdx
    CHECK (%rdx), $COH_M, "d: final data"
    inc %ecx
    cmp $MSG_QWORDS, %ecx
    jb 2b
    inc %ebx
    cmp %r15, %rbx
    jb 1b
    PUTS "  d: message passing: "
    mov $COH_M, %edi
    call putdec
    PUTS " messages on each of "
    mov %r15, %rdi
    call putdec
    PUTS " channels, no stale data\n"
3:  call barrier

    /* ---------------- e: plain-store ring ---------------- */
.Le:
    imul $COH_R, %r15, %rbx             /* rbx = turns in all */
    mov %r13, %r12                      /* r12 = my next turn t */
.Le_loop:
1:  mov ring_turn(%rip), %rax
    cmp %r12, %rax
    je 2f
    ja .Le_bad_turn                     /* the turn went past mine */
    pause
    jmp 1b
2:  mov ring_count(%rip), %rax
    cmp %r12, %rax
    jne .Le_bad_count
    mov $1, %ecx                        /* hist[t - j] == t - j for j = 1..min(t, ncpus) */
3:  cmp %r12, %rcx
    ja 4f
    cmp %r15, %rcx
    ja 4f
    mov %r12, %rdx
    sub %rcx, %rdx
    mov %edx, %eax
    and $(HIST - 1), %eax
    mov ring_hist(, %rax, 8), %rax
    cmp %rdx, %rax
    jne .Le_bad_hist
    inc %ecx
    jmp 3b
4:  mov %r12d, %eax
    and $(HIST - 1), %eax
    mov %r12, ring_hist(, %rax, 8)
    lea 1(%r12), %rax
    mov %rax, ring_count(%rip)
    mov %rax, ring_turn(%rip)           /* pass the turn on */
    add %r15, %r12
    cmp %rbx, %r12
    jb .Le_loop
    call barrier
    test %r13, %r13
    jnz 9f
    CHECK ring_count(%rip), %rbx, "e: ring counter = ncpus * R"
    CHECK ring_turn(%rip), %rbx, "e: ring turn = ncpus * R"
    PUTS "  e: plain-store ring: "
    mov %rbx, %rdi
    call putdec
    PUTS " turns, counter and history exact\n"
    ret                                 /* vCPU 0 -> PASS */
9:  ret                                 /* the others halt */

/* ---- failure reports (only reached when the compared values differ) ---- */
.La_bad:
    BAD_RANGE %r12, %rax, %r8, %r9, "a: LOCK XADD old value (above the previous and below ncpus * N)"
.Lb_bad:
    BAD_RANGE %r12, %rax, %r8, %r9, "b: LOCK CMPXCHG old value (above the previous and below ncpus * N)"
.Lc_bad_before:
    BAD %r12, %rax, %rdx, "c: own qword before the store (lost update)"
.Lc_bad_after:
    BAD %r12, %rax, %r12, "c: own qword re-read after the store"
.Lc_bad_neighbour:
    mov $COH_K + 1, %ecx
    BAD_RANGE %r12, %rax, %r8, %rcx, "c: neighbour's qword (must not go backwards or exceed K)"
.Lc_bad_final:
    mov slots(, %rcx, 8), %rdx
    BAD %rcx, %rdx, %rax, "c: final qword (step = qword index)"
.Ld_bad_ack:
    BAD %r12, %rax, %rdx, "d: ack while waiting to send (m-2 or m-1)"
.Ld_bad_flag:
    BAD %r12, %rax, %rdx, "d: flag while waiting to receive (m-1 or m)"
.Ld_bad_data:
    BAD %r12, %rax, %r12, "d: message data after flag == m (stale read)"
.Le_bad_turn:
    BAD %r12, %rax, %r12, "e: ring turn went past this vCPU's turn"
.Le_bad_count:
    BAD %r12, %rax, %r12, "e: ring counter at the start of the turn"
.Le_bad_hist:
    BAD %r12, %rax, %rdx, "e: ring history entry of an earlier turn"

/* barrier: sense-reversing; uses r15 = vCPUs, r14 = this vCPU's sense.
 * Clobbers RAX. */
barrier:
    xor $1, %r14
    mov $1, %eax
    lock xadd %rax, bar_count(%rip)
    inc %rax
    cmp %r15, %rax
    ja .Lbar_bad
    jb 1f
    movq $0, bar_count(%rip)            /* last one: reset, then release */
    mov %r14, bar_sense(%rip)
    ret
1:  pause
    cmp bar_sense(%rip), %r14
    jne 1b
    ret
.Lbar_bad:
    CHECK %rax, %r15, "barrier: arrivals at most ncpus"

/* where(rdi = step): "  vCPU <r13>, step <rdi>:\n" before a failure. Only
 * the first vCPU to fail reports; any other one halts here. */
where:
    push %rax
    mov $1, %eax
    xchg %eax, fail_lock(%rip)
    test %eax, %eax
    pop %rax
    jz 1f
2:  cli
    hlt
    jmp 2b
1:
    PUTS "  vCPU "
    push %rdi
    mov %r13, %rdi
    call putdec
    pop %rdi
    PUTS ", step "
    call putdec
    PUTS ":\n"
    ret

/* putdec(rdi = value): decimal */
putdec:
    push %rax
    push %rcx
    push %rdx
    push %rdi
    sub $32, %rsp
    mov %rdi, %rax
    lea 31(%rsp), %rdi
    movb $0, (%rdi)
    mov $10, %ecx
1:  xor %edx, %edx
    div %rcx
    add $'0', %dl
    dec %rdi
    mov %dl, (%rdi)
    test %rax, %rax
    jnz 1b
    call puts
    add $32, %rsp
    pop %rdi
    pop %rdx
    pop %rcx
    pop %rax
    ret

/* ---- shared data: every group on its own 4 KiB page(s) ---- */
    .bss
    .balign 4096
bar_count:  .space 64                   /* barrier */
bar_sense:  .space 4096 - 64
    .balign 4096
cnt_a:      .space 4096                 /* a */
cnt_b:      .space 4096                 /* b */
cnt_b_retries: .space 4096
slots:      .space 4096                 /* c: qword per vCPU */
/* d: a page per channel each for data, flag and ack. A channel's data and flag
 * pages share an entry of the emulator's TLB (TLB_INDEX: page + 9 * (page >> 8)
 * mod 256; here 247 pages apart across a 1 MiB boundary), so the receiver's
 * reads keep moving one of them to the entry's victim way, where the sender's
 * next write must still reach it: the invalidation drops both ways. */
    .balign 1048576
            .space 16 * 4096
msg_data:   .space MAXV * 4096          /* pages 16 .. 23 of a 1 MiB block */
            .space (263 - 16 - MAXV) * 4096
msg_flag:   .space MAXV * 4096          /* pages 263 .. 270: data + 247 */
msg_ack:    .space MAXV * 4096
ring_turn:  .space 4096                 /* e */
ring_count: .space 4096
ring_hist:  .space 4096
fail_lock:  .space 4096                 /* first failing vCPU reports */
