/* smp_lock.S — two vCPUs updating shared memory with locked instructions.
 *
 * Every vCPU (run with --cpus 2; any count up to 4 works) meets the others at
 * a start barrier, then
 *   1. LOCK XADD +1 on `counter` N times, checking that the old values it gets
 *      back strictly increase (each increment is seen whole and in order);
 *   2. a LOCK CMPXCHG retry loop +1 on `counter2` N times;
 *   3. M increments of a plain (unlocked) counter inside an XCHG spinlock;
 *   4. cross-modifying code: vCPU 0 keeps calling a function (with CPUID in
 *      between, as the SDM's cross-modification protocol asks) until it sees
 *      the new immediate vCPU 1 stored into it;
 * and then LOCK XADDs `done`. The vCPU that finishes last checks that every
 * counter is exactly ncpus * N (or M) and exits 0; the others halt.
 *
 * # cpus: 2
 * # timeout: 120
 */
#define TEST_NAME "smp_lock"
#include "common.h"

#define N 1000000
#define M 100000
#define XMC_CODE PHYS_SCRATCH           /* "mov $imm32, %eax; ret" */

test_main:
    CHECK_RANGE %rsi, $2, $(MAX_CPUS + 1), "vCPU count (run with --cpus 2)"
    movb $0xb8, XMC_CODE            /* written before the others pass the barrier */
    movl $0, XMC_CODE + 1
    movb $0xc3, XMC_CODE + 5
    jmp worker
ap_main:
    jmp worker

worker:                             /* rdi = vCPU index, rsi = vCPU count */
    mov %rsi, %r15
    lock incq arrived(%rip)         /* start barrier: everyone runs the loops together */
1:  pause
    cmp arrived(%rip), %r15
    jne 1b

    /* 1: LOCK XADD */
    mov $N, %ecx
    xor %r8d, %r8d                  /* previous old value + 1 */
2:  mov $1, %eax
    lock xadd %rax, counter(%rip)
    lea 1(%rax), %rdx
    cmp %r8, %rdx
    jbe .Lnot_monotonic
    mov %rdx, %r8
    dec %ecx
    jnz 2b

    /* 2: LOCK CMPXCHG loop */
    mov $N, %ecx
3:  mov counter2(%rip), %rax
4:  lea 1(%rax), %rdx
    lock cmpxchg %rdx, counter2(%rip)   /* ZF=0: RAX = the current value, retry */
    jnz 4b
    dec %ecx
    jnz 3b

    /* 3: XCHG spinlock around a plain read-modify-write */
    mov $M, %ecx
5:  mov $1, %eax
    xchg %eax, spinlock(%rip)       /* implicitly locked */
    test %eax, %eax
    jz 7f
6:  pause                           /* spin on plain reads until it looks free */
    cmpl $0, spinlock(%rip)
    jne 6b
    jmp 5b
7:  mov plain(%rip), %rax           /* critical section: not atomic on its own */
    inc %rax
    mov %rax, plain(%rip)
    movl $0, spinlock(%rip)         /* release: a plain store is enough on x86 */
    dec %ecx
    jnz 5b

    /* 4: cross-modifying code */
    cmp $1, %rdi
    je 12f
    ja 13f
    xor %r9d, %r9d                  /* vCPU 0: run it until it returns 1 */
10: mov $XMC_CODE, %eax
    call *%rax
    test %eax, %eax
    jnz 13f
    movl $1, xmc_running(%rip)
    push %rdi
    push %rbx
    xor %eax, %eax
    cpuid                           /* serializing */
    pop %rbx
    pop %rdi
    inc %r9
    cmp $50000000, %r9
    jb 10b
    FAIL "vCPU 0 never executed the code vCPU 1 stored"
12: pause                           /* vCPU 1: wait until vCPU 0 runs the old code */
    cmpl $0, xmc_running(%rip)
    je 12b
    movl $1, XMC_CODE + 1
13:
    /* last one out checks */
    mov $1, %eax
    lock xadd %rax, done(%rip)
    inc %rax
    cmp %r15, %rax
    jne 9f
    imul $N, %r15, %rbx
    CHECK counter(%rip), %rbx, "LOCK XADD counter = ncpus * N"
    CHECK counter2(%rip), %rbx, "LOCK CMPXCHG counter = ncpus * N"
    imul $M, %r15, %rbx
    CHECK plain(%rip), %rbx, "spinlock-protected counter = ncpus * M"
    jmp pass
9:  cli
    hlt
    jmp 9b

.Lnot_monotonic:
    FAIL "LOCK XADD returned a value not above the previous one"

    .data
    .balign 64
counter:  .quad 0
    .balign 64                      /* separate cache lines */
counter2: .quad 0
    .balign 64
spinlock: .long 0
    .balign 64
plain:    .quad 0
    .balign 64
xmc_running: .long 0
    .balign 64
arrived:  .quad 0
done:     .quad 0
