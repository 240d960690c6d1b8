/* smc.S — self-modifying code. x86 keeps instruction fetch coherent with
 * stores to code (SDM Vol. 3, 11.6): a store to an instruction that was already
 * decoded, cached, or is merely the next one in line, takes effect the next
 * time that instruction is executed. An emulator with a decoded-block cache
 * must notice stores to code pages — by any store instruction, through any
 * virtual alias — including stores into the block that is running.
 */
#define TEST_NAME "smc"
#include "common.h"

#define CODE_A PHYS_SCRATCH                     /* identity-mapped scratch pages */
#define CODE_B (PHYS_SCRATCH + 0x1000)
#define SPLIT  (PHYS_SCRATCH + 0x3000 - 2)      /* an instruction across a page boundary */

/* EMIT_RET_IMM addr, imm: write "mov $imm, %eax; ret" at addr (via %rdx) */
.macro EMIT_RET_IMM addr, imm
    mov $\addr, %edx
    movb $0xb8, (%rdx)
    movl $\imm, 1(%rdx)
    movb $0xc3, 5(%rdx)
.endm

test_main:
    LOG "new code in another page"
    EMIT_RET_IMM CODE_A, 0x1111
    mov $CODE_A, %eax
    call *%rax
    CHECK %rax, $0x1111, "freshly written function"
    /* it is now decoded and cached: patch the immediate and run it again */
    movl $0x2222, CODE_A + 1
    mov $CODE_A, %eax
    call *%rax
    CHECK %rax, $0x2222, "patched immediate in a cached block (other page)"
    /* replace the whole function: lea (%rdi,%rdi,2), %rax; ret */
    movl $0xc37f048d, CODE_A + 1    /* bytes 8d 04 7f c3 */
    movb $0x48, CODE_A
    mov $7, %edi
    mov $CODE_A, %eax
    call *%rax
    CHECK %rax, $21, "replaced instructions (other page)"
    /* the same page through a second virtual address (TEST_VA -> CODE_A) */
    xor %edi, %edi
    mov $CODE_A | PTE_P | PTE_W, %esi
    call set_pte
    EMIT_RET_IMM CODE_A, 0x3333
    mov $CODE_A, %eax
    call *%rax
    CHECK %rax, $0x3333, "before the alias write"
    movl $0x4444, TEST_VA + 1       /* store through the alias ... */
    mov $CODE_A, %eax
    call *%rax                      /* ... execute through the identity map */
    CHECK %rax, $0x4444, "store through a virtual alias"
    /* and execute through the alias after a store through the identity map */
    mov $TEST_VA, %eax
    call *%rax
    CHECK %rax, $0x4444, "execute through the alias"
    movl $0x5555, CODE_A + 1
    mov $TEST_VA, %eax
    call *%rax
    CHECK %rax, $0x5555, "store through identity, execute through alias"

    LOG "other store instructions"
    EMIT_RET_IMM CODE_B, 0
    mov $CODE_B, %eax
    call *%rax
    mov $CODE_B + 1, %edi           /* REP MOVSB */
    mov $new_imm, %esi
    mov $4, %ecx
    rep movsb
    mov $CODE_B, %eax
    call *%rax
    CHECK %rax, $0x6666, "patched by REP MOVSB"
    mov $0x1000, %ecx               /* LOCK XADD */
    lock xadd %ecx, CODE_B + 1
    mov $CODE_B, %eax
    call *%rax
    CHECK %rax, $0x7666, "patched by LOCK XADD"
    mov $0x8888, %ecx               /* XCHG (implicitly locked) */
    xchg %ecx, CODE_B + 1
    mov $CODE_B, %eax
    call *%rax
    CHECK %rax, $0x8888, "patched by XCHG"
    mov $0x8888, %eax               /* LOCK CMPXCHG */
    mov $0x9999, %ecx
    lock cmpxchg %ecx, CODE_B + 1
    mov $CODE_B, %eax
    call *%rax
    CHECK %rax, $0x9999, "patched by LOCK CMPXCHG"

    LOG "instruction across a page boundary"
    EMIT_RET_IMM SPLIT, 0xabcd      /* b8 | cd ab 00 00 c3 on the next page */
    mov $SPLIT, %eax
    call *%rax
    CHECK %rax, $0xabcd, "page-crossing instruction"
    movb $0x12, SPLIT + 2           /* second page */
    mov $SPLIT, %eax
    call *%rax
    CHECK %rax, $0x12cd, "patched second half of a page-crossing instruction"
    movb $0xb9, SPLIT               /* first page: opcode b8 -> b9 (mov $imm32, %ecx) */
    xor %ecx, %ecx
    mov $SPLIT, %eax
    call *%rax
    CHECK %rcx, $0x12cd, "patched first half of a page-crossing instruction"

    LOG "patch code, then jump to it (same page)"
    call local_fn                   /* decode and cache it */
    CHECK %rax, $1, "local function before the patch"
    movl $2, local_fn + 1(%rip)
    call local_fn
    CHECK %rax, $2, "patched local function (same page as the writer)"
    movb $0x02, .Ljmp_target + 1(%rip)   /* mov $1 -> mov $2 */
    jmp .Ljmp_target
.Ljmp_target:
    mov $1, %ebx
    CHECK %rbx, $2, "patched, then jumped to"

    LOG "a loop that patches its own immediate"
    xor %ebx, %ebx
    mov $10, %ecx
.Lloop1:
    .byte 0x81, 0xc3                /* add $imm32, %ebx */
.Lloop1_imm:
    .long 1
    incl .Lloop1_imm(%rip)          /* next iteration adds one more */
    dec %ecx
    jnz .Lloop1
    CHECK %rbx, $55, "1 + 2 + ... + 10 via a patched immediate"

    /* The writes below hit instructions of the block that is executing. */
    LOG "patch the next instruction (same block, no jump)"
    movl $0x12345678, .Lnext_imm(%rip)
    .byte 0xb8                      /* mov $imm32, %eax */
.Lnext_imm:
    .long 0
    mov $0x12345678, %ecx
    CHECK %rax, %rcx, "store to the immediately following instruction"
    xor %ebx, %ebx
    movw $0xc3ff, .Lnops(%rip)      /* two NOPs -> inc %ebx */
.Lnops:
    nop
    nop
    CHECK %rbx, $1, "NOPs replaced by INC just ahead"
    xor %ebx, %ebx
    mov $10, %ecx
.Lloop2:
    addl $1, .Lloop2_imm(%rip)      /* patch the ADD that follows (ADD, not INC: FF /0 ends
                                       an emulator block and would hide the bug) */
    .byte 0x81, 0xc3
.Lloop2_imm:
    .long 0
    dec %ecx
    jnz .Lloop2
    CHECK %rbx, $55, "loop patching the instruction just ahead"
    ret

local_fn:
    mov $1, %eax                    /* b8 01 00 00 00 */
    ret

    .section .rodata
new_imm: .long 0x6666
