/* common.h — shared boot code, runtime and assertion macros for the test guests.
 *
 * A test guest is one .S file that does
 *
 *     #define TEST_NAME "name"
 *     #include "common.h"
 *     test_main:  ...64-bit ring-0 code...  ret
 *
 * and optionally `ap_main` (run by every vCPU other than 0). This header emits:
 *
 *   - _start (32-bit, first byte of the image): vCPU 0 builds page tables that
 *     identity-map the first 1 GiB with 2 MiB pages (U=1, W=1) plus a 4 KiB
 *     "test area" at TEST_VA whose PTEs tests set with set_pte; every vCPU loads
 *     the GDT, enables PAE + EFER.LME/NXE/SCE + CR0.PG/WP and far-jumps to
 *     64-bit code. vCPU 0 then fills the IDT (every vector -> a stub that
 *     records the exception and fails unless the test expected it) and one
 *     64-bit TSS per vCPU (RSP0, IST1, IST2), then lets the other vCPUs go.
 *   - a small runtime: puts/puthex/exit, CHECK/CHECK_RANGE assertions, the
 *     exception "expect + resume" mechanism, set_pte, set_gate and call_user
 *     (run a function at ring 3 via IRETQ, come back through a DPL3 gate).
 *
 * When test_main returns on vCPU 0 the guest prints "PASS: <name>" and exits 0.
 * Every failure prints "FAIL: ..." and exits with a non-zero status:
 * 1 = failed CHECK, 2 = unexpected exception.
 *
 * Registers: CHECK, CHECK_RANGE, LOG and PUTS preserve all general registers
 * (they clobber RFLAGS). Library routines preserve everything but RFLAGS
 * unless noted. */
#ifndef TEST_NAME
#error "define TEST_NAME before including common.h"
#endif

/* ---- machine ---- */
#define PORT_CONSOLE 0xe9
#define PORT_EXIT    0xf4
#define LOAD_ADDR    0x100000
#define MAX_CPUS     4

/* ---- GDT selectors (layout chosen so SYSCALL/SYSRET work: STAR = see below) ---- */
#define SEL_CODE32  0x08 /* ring-0 32-bit code (the selector the machine starts with) */
#define SEL_KCODE   0x10 /* ring-0 64-bit code */
#define SEL_KDATA   0x18 /* ring-0 data */
#define SEL_UCODE32 0x23 /* ring-3 32-bit code (SYSRET with 32-bit operand size) */
#define SEL_UDATA   0x2b /* ring-3 data */
#define SEL_UCODE   0x33 /* ring-3 64-bit code (SYSRETQ: STAR[63:48] + 16) */
#define SEL_TSS0    0x40 /* 16-byte TSS descriptors, one per vCPU */
/* STAR: SYSCALL loads CS = 0x10, SS = 0x18; SYSRETQ loads CS = 0x20+16|3, SS = 0x20+8|3 */
#define STAR_VALUE_HI ((0x20 << 16) | SEL_KCODE) /* EDX for WRMSR(STAR) */

/* ---- MSRs, CR bits ---- */
#define MSR_EFER   0xc0000080
#define MSR_STAR   0xc0000081
#define MSR_LSTAR  0xc0000082
#define MSR_CSTAR  0xc0000083
#define MSR_FMASK  0xc0000084
#define MSR_FSBASE 0xc0000100
#define MSR_GSBASE 0xc0000101
#define EFER_SCE 0x001
#define EFER_LME 0x100
#define EFER_LMA 0x400
#define EFER_NXE 0x800
#define CR0_PE 0x1
#define CR0_WP 0x10000
#define CR0_PG 0x80000000
#define CR4_PAE 0x20

/* ---- paging ---- */
#define PTE_P  0x001
#define PTE_W  0x002
#define PTE_U  0x004
#define PTE_A  0x020
#define PTE_D  0x040
#define PTE_PS 0x080
#define PTE_NX_BIT 63
/* page-fault error code bits */
#define PF_P    0x01
#define PF_W    0x02
#define PF_U    0x04
#define PF_RSVD 0x08
#define PF_I    0x10
/* The test area: 512 4-KiB pages at TEST_VA (PD entry pd_test[0] -> pt_test), all
 * not present until a test maps them with set_pte. pd_test[1..511] map
 * TEST_VA + n*2MiB and are free for 2 MiB-page experiments. */
#define TEST_VA 0x40000000
/* Physical pages tests may use freely as backing for test-area mappings
 * (identity-mapped too, so ring 0 can also reach them at the same address). */
#define PHYS_SCRATCH 0x800000

/* ---- exceptions ---- */
#define VEC_DE 0
#define VEC_DB 1
#define VEC_BP 3
#define VEC_UD 6
#define VEC_DF 8
#define VEC_NP 11
#define VEC_SS 12
#define VEC_GP 13
#define VEC_PF 14
#define VEC_EXIT_USER 0xf0 /* DPL3 gate used by call_user to come back to ring 0 */

/* Saved-register frame handed to exception handlers (pointer in RDI). */
#define F_R15 0
#define F_R14 8
#define F_R13 16
#define F_R12 24
#define F_R11 32
#define F_R10 40
#define F_R9 48
#define F_R8 56
#define F_RBP 64
#define F_RDI 72
#define F_RSI 80
#define F_RDX 88
#define F_RCX 96
#define F_RBX 104
#define F_RAX 112
#define F_VEC 120
#define F_ERR 128
#define F_RIP 136 /* the hardware frame starts here (after the error code) */
#define F_CS 144
#define F_RFLAGS 152
#define F_RSP 160
#define F_SS 168

/* ---- per-vCPU stacks: one STACK_SET per vCPU at stacks + cpu * STACK_SET ---- */
#define STACK_SET      0xa000
#define OFF_KSTACK_TOP 0x4000 /* boot / test_main stack (16 KiB) */
#define OFF_RSP0_TOP   0x6000 /* TSS.RSP0: entries from ring 3 (8 KiB) */
#define OFF_IST1_TOP   0x7000 /* TSS.IST1 (4 KiB) */
#define OFF_IST2_TOP   0x8000 /* TSS.IST2 (4 KiB) */
#define OFF_SYS_TOP    0x9000 /* free for a SYSCALL handler (4 KiB) */
#define OFF_USTACK_TOP 0xa000 /* call_user's ring-3 stack (4 KiB) */
/* per-vCPU data, at GS base */
#define PC_SELF   0
#define PC_CPU    8
#define PC_KSAVE  16 /* kernel RSP saved by call_user */
#define PC_USTACK 24 /* ring-3 stack top */
#define PC_STACKS 32 /* this vCPU's STACK_SET */
#define PC_SCRATCH 40
#define PC_SIZE   64
/* TSS field offsets */
#define TSS_RSP0 4
#define TSS_IST1 0x24
#define TSS_IST2 0x2c
#define TSS_IST3 0x34
#define TSS_IOMAP 0x66
#define TSS_STRIDE 128

/* =========================== assertion macros =========================== */

/* CHECK actual, expected, "what": fails the test unless actual == expected
 * (64-bit compare). Operands are anything PUSHQ accepts: a register, a memory
 * operand such as exc_vec(%rip) or a sign-extended 32-bit immediate (load
 * larger constants into a register). Never pass %rsp: the macro pushes first. */
.macro CHECK actual, expected, msg
    .pushsection .rodata
.Lchk_msg\@: .asciz "\msg"
    .popsection
    pushq \expected
    pushq \actual
    pushq $.Lchk_msg\@
    call check_eq_stack
.endm

/* CHECK_RANGE actual, lo, hi, "what": fails unless lo <= actual < hi (unsigned) */
.macro CHECK_RANGE actual, lo, hi, msg
    .pushsection .rodata
.Lchk_msg\@: .asciz "\msg"
    .popsection
    pushq \hi
    pushq \lo
    pushq \actual
    pushq $.Lchk_msg\@
    call check_range_stack
.endm

/* FAIL "why": unconditional failure */
.macro FAIL msg
    .pushsection .rodata
.Lfail_msg\@: .asciz "\msg"
    .popsection
    movq $.Lfail_msg\@, %rdi
    jmp fail
.endm

/* PUTS "text": print a string (no newline added) */
.macro PUTS msg
    .pushsection .rodata
.Lputs_msg\@: .asciz "\msg"
    .popsection
    pushq %rdi
    movq $.Lputs_msg\@, %rdi
    call puts
    popq %rdi
.endm

/* LOG "text": print "  <text>\n" — marks progress so a failure is easy to place */
.macro LOG msg
    PUTS "  \msg\n"
.endm

/* EXPECT vector, resume: the next exception must be `vector`; the handler
 * records it in exc_* and, if resume is not 0, continues at `resume` (else
 * returns to the pushed RIP, e.g. after INT3). Any other vector fails. */
.macro EXPECT vec, resume
    movq $-1, exc_vec(%rip)
    movq $-1, exc_err(%rip)
    movq $0, exc_rip(%rip)
    movq $\resume, fixup_rip(%rip)
    movq $\vec, expect_vec(%rip)
.endm

/* CHECK_FAULT vector, errcode, rip, "what": after an EXPECTed fault */
.macro CHECK_FAULT vec, err, rip, msg
    CHECK exc_vec(%rip), $\vec, "\msg: vector"
    CHECK exc_err(%rip), \err, "\msg: error code"
    CHECK exc_rip(%rip), \rip, "\msg: pushed RIP"
.endm

/* SET_HANDLER vector, fn: fn(rdi = frame) is called for `vector` when no EXPECT
 * is pending; it may change the saved registers/RIP in the frame. */
.macro SET_HANDLER vec, fn
    movq $\fn, exc_handlers + 8 * (\vec)
.endm

/* ============================== boot code ============================== */
    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    cli
    cld
    mov %edi, %ebp                  /* vCPU index stays in EBP during boot */
    cmp $MAX_CPUS, %edi
    jae .Lpark                      /* no stacks/TSS for more vCPUs: stay out of the way */
    test %edi, %edi
    jnz .Lap_wait

    /* vCPU 0: clear .bss, then build the page tables */
    mov %esi, %ebx
    mov %edx, %esi
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb
    mov %ebx, boot_ncpus
    mov %esi, boot_mem

    movl $pdpt + (PTE_P | PTE_W | PTE_U), pml4
    movl $pd0 + (PTE_P | PTE_W | PTE_U), pdpt
    movl $pd_test + (PTE_P | PTE_W | PTE_U), pdpt + 8
    movl $pt_test + (PTE_P | PTE_W | PTE_U), pd_test
    xor %ecx, %ecx                  /* pd0[i] = i * 2 MiB | P W U PS */
1:  mov %ecx, %eax
    shl $21, %eax
    or $(PTE_P | PTE_W | PTE_U | PTE_PS), %eax
    mov %eax, pd0(, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jb 1b
    jmp .Lcommon32

.Lpark:
    hlt
    jmp .Lpark

.Lap_wait:                          /* other vCPUs: wait until vCPU 0 built everything */
    pause
    cmpl $0, boot_ready
    je .Lap_wait

.Lcommon32:
    /* Our own GDT: the machine starts us with CS=0x08/DS=0x10 but there is no
     * GDT in memory, so reload every segment register from ours. */
    lgdt gdt_desc
    ljmp $SEL_CODE32, $1f
1:  mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    imul $STACK_SET, %ebp, %esp
    add $stacks + OFF_KSTACK_TOP, %esp

    /* long mode: PAE, CR3, EFER.LME (+NXE for NX tests, +SCE for SYSCALL), PG */
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE | EFER_SCE), %eax
    wrmsr
    test %ebp, %ebp
    jnz 2f
    rdmsr                           /* vCPU 0 records the state for mode_switch */
    mov %eax, boot_efer_pre
2:  mov %cr0, %eax
    or $(CR0_PG | CR0_WP), %eax
    mov %eax, %cr0
    /* now in compatibility mode (EFER.LMA=1, CS still 32-bit) */
    test %ebp, %ebp
    jnz 3f
    rdmsr
    mov %eax, boot_efer_compat
    /* 0x48 is DEC EAX here but a REX.W prefix in 64-bit mode: 0 - 1 - 1 = -2 */
    xor %eax, %eax
    .byte 0x48
    dec %eax
    mov %eax, boot_compat_probe
3:  ljmp $SEL_KCODE, $.Llong64

    .code64
.Llong64:
    mov %ebp, %ebp                  /* upper halves are undefined after the switch */
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    imul $STACK_SET, %rbp, %rsp
    add $stacks + OFF_KSTACK_TOP, %rsp
    test %ebp, %ebp
    jnz 4f
    call boot_tables64              /* vCPU 0: IDT, TSSs, then release the others */
    movl $1, boot_ready(%rip)
4:  lidt idt_desc(%rip)
    lea SEL_TSS0(, %rbp, 8), %eax   /* SEL_TSS0 + 16 * cpu */
    lea (%rax, %rbp, 8), %eax
    ltr %ax
    /* GS base -> this vCPU's percpu block */
    mov %rbp, %rax
    shl $6, %rax
    lea percpu(%rax), %rbx
    mov %rbx, PC_SELF(%rbx)
    mov %rbp, PC_CPU(%rbx)
    imul $STACK_SET, %rbp, %rax
    add $stacks, %rax
    mov %rax, PC_STACKS(%rbx)
    add $OFF_USTACK_TOP, %rax
    mov %rax, PC_USTACK(%rbx)
    mov $MSR_GSBASE, %ecx
    mov %ebx, %eax
    xor %edx, %edx
    wrmsr

    mov %rbp, %rdi
    mov boot_ncpus(%rip), %esi
    test %ebp, %ebp
    jnz 5f
    call test_main
    jmp pass
5:  .weak ap_main
    mov $ap_main, %eax
    test %eax, %eax
    jz 6f
    call *%rax
6:  cli
    hlt
    jmp 6b

/* vCPU 0, 64-bit: TSS descriptors and TSSs for every possible vCPU, the IDT */
boot_tables64:
    xor %ecx, %ecx
1:  imul $TSS_STRIDE, %rcx, %rbx
    add $tss_area, %rbx             /* rbx = this TSS */
    imul $STACK_SET, %rcx, %rax
    add $stacks, %rax               /* rax = this vCPU's stacks */
    lea OFF_RSP0_TOP(%rax), %rdx
    mov %rdx, TSS_RSP0(%rbx)
    lea OFF_IST1_TOP(%rax), %rdx
    mov %rdx, TSS_IST1(%rbx)
    lea OFF_IST2_TOP(%rax), %rdx
    mov %rdx, TSS_IST2(%rbx)
    movw $0x68, TSS_IOMAP(%rbx)     /* I/O bitmap beyond the limit: none */
    /* 16-byte available 64-bit TSS descriptor, limit 0x67 */
    mov %rcx, %rdx
    shl $4, %rdx
    lea gdt_tss(%rdx), %rdi
    mov %ebx, %eax
    shl $16, %eax
    or $0x67, %eax
    mov %eax, (%rdi)                /* limit 15:0, base 15:0 */
    mov %ebx, %eax
    shr $16, %eax
    and $0xff, %eax                 /* base 23:16 */
    or $0x8900, %eax                /* P=1, DPL0, type 9 */
    mov %ebx, %edx
    and $0xff000000, %edx           /* base 31:24 */
    or %edx, %eax
    mov %eax, 4(%rdi)
    mov %rbx, %rax
    shr $32, %rax
    mov %eax, 8(%rdi)               /* base 63:32 */
    movl $0, 12(%rdi)
    inc %ecx
    cmp $MAX_CPUS, %ecx
    jb 1b

    xor %edi, %edi                  /* every vector -> its stub, interrupt gate, DPL0 */
2:  mov %rdi, %rsi
    shl $4, %rsi
    add $isr_stubs, %rsi
    xor %edx, %edx
    xor %ecx, %ecx
    call set_gate
    inc %edi
    cmp $256, %edi
    jb 2b
    mov $VEC_EXIT_USER, %edi
    mov $exit_user_isr, %esi
    xor %edx, %edx
    mov $3, %ecx
    call set_gate
    ret

/* ============================== runtime ============================== */
    .text
/* set_gate(rdi = vector, rsi = handler, rdx = IST index, rcx = DPL): present
 * 64-bit interrupt gate to SEL_KCODE:handler */
set_gate:
    push %rax
    push %rbx
    mov %rdi, %rbx
    shl $4, %rbx
    add $idt, %rbx
    mov %si, (%rbx)
    movw $SEL_KCODE, 2(%rbx)
    mov %dl, %al
    and $7, %al
    mov %al, 4(%rbx)
    mov %cl, %al
    shl $5, %al
    or $0x8e, %al
    mov %al, 5(%rbx)
    mov %rsi, %rax
    shr $16, %rax
    mov %ax, 6(%rbx)
    shr $16, %rax
    mov %eax, 8(%rbx)
    movl $0, 12(%rbx)
    pop %rbx
    pop %rax
    ret

/* set_pte(rdi = index in the test area, rsi = PTE value): maps
 * TEST_VA + index * 4096 and invalidates that page with INVLPG */
set_pte:
    push %rax
    mov %rsi, pt_test(, %rdi, 8)
    mov %rdi, %rax
    shl $12, %rax
    add $TEST_VA, %rax
    invlpg (%rax)
    pop %rax
    ret

/* putc(al) */
putc:
    outb %al, $PORT_CONSOLE
    ret

/* puts(rdi = NUL-terminated string) */
puts:
    push %rax
    push %rdi
1:  movb (%rdi), %al
    test %al, %al
    jz 2f
    outb %al, $PORT_CONSOLE
    inc %rdi
    jmp 1b
2:  pop %rdi
    pop %rax
    ret

/* puthex(rdi = value): "0x" and the hex digits without leading zeros */
puthex:
    push %rax
    push %rcx
    push %rdx
    mov $'0', %al
    outb %al, $PORT_CONSOLE
    mov $'x', %al
    outb %al, $PORT_CONSOLE
    mov $60, %ecx
    xor %edx, %edx                  /* edx != 0 once a digit was printed */
1:  mov %rdi, %rax
    shr %cl, %rax
    and $15, %eax
    test %edx, %edx
    jnz 2f
    test %eax, %eax
    jnz 2f
    test %ecx, %ecx
    jnz 3f
2:  mov $1, %edx
    movb hexdigits(%rax), %al
    outb %al, $PORT_CONSOLE
3:  sub $4, %ecx
    jns 1b
    pop %rdx
    pop %rcx
    pop %rax
    ret

/* exit(edi = status): stops the VM */
exit:
    mov %edi, %eax
    outl %eax, $PORT_EXIT
1:  pause                           /* the VM stops at the OUT; works at any CPL */
    jmp 1b

pass:
    PUTS "PASS: "
    mov $test_name, %edi
    call puts
    PUTS "\n"
    xor %edi, %edi
    jmp exit

/* fail(rdi = message): "FAIL: <name>: <message>", exit 1 */
fail:
    push %rdi
    PUTS "FAIL: "
    mov $test_name, %edi
    call puts
    PUTS ": "
    pop %rdi
    call puts
    PUTS "\n"
    mov $1, %edi
    jmp exit

/* CHECK: 8(%rsp) = message, 16 = actual, 24 = expected */
check_eq_stack:
    push %rax
    mov 24(%rsp), %rax
    cmp 32(%rsp), %rax
    pop %rax
    jne 1f
    ret $24
1:  PUTS "FAIL: "
    mov $test_name, %edi
    call puts
    PUTS ": "
    mov 8(%rsp), %rdi
    call puts
    PUTS ": got "
    mov 16(%rsp), %rdi
    call puthex
    PUTS ", expected "
    mov 24(%rsp), %rdi
    call puthex
    PUTS " (check at "
    mov (%rsp), %rdi
    call puthex
    PUTS ")\n"
    mov $1, %edi
    jmp exit

/* CHECK_RANGE: 8(%rsp) = message, 16 = actual, 24 = lo, 32 = hi */
check_range_stack:
    push %rax
    mov 24(%rsp), %rax
    cmp 32(%rsp), %rax
    jb 1f
    cmp 40(%rsp), %rax
    jae 1f
    pop %rax
    ret $32
1:  pop %rax
    PUTS "FAIL: "
    mov $test_name, %edi
    call puts
    PUTS ": "
    mov 8(%rsp), %rdi
    call puts
    PUTS ": got "
    mov 16(%rsp), %rdi
    call puthex
    PUTS ", expected in ["
    mov 24(%rsp), %rdi
    call puthex
    PUTS ", "
    mov 32(%rsp), %rdi
    call puthex
    PUTS ") (check at "
    mov (%rsp), %rdi
    call puthex
    PUTS ")\n"
    mov $1, %edi
    jmp exit

/* ---- exceptions: 256 stubs of 16 bytes; vectors with a CPU error code do not
 * push the dummy 0 (a software INT n to those vectors would misalign the frame,
 * so tests do not do that) ---- */
    .balign 16
isr_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30
    .else
    pushq $0
    .endif
    pushq $vec
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call exc_dispatch
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                   /* vector, error code */
    iretq

/* exc_dispatch(rdi = frame): record, then resume / call the handler / fail */
exc_dispatch:
    mov F_VEC(%rdi), %rax
    mov %rax, exc_vec(%rip)
    mov F_ERR(%rdi), %rax
    mov %rax, exc_err(%rip)
    mov F_RIP(%rdi), %rax
    mov %rax, exc_rip(%rip)
    mov F_CS(%rdi), %rax
    mov %rax, exc_cs(%rip)
    mov F_RFLAGS(%rdi), %rax
    mov %rax, exc_rflags(%rip)
    mov F_RSP(%rdi), %rax
    mov %rax, exc_rsp(%rip)
    mov F_SS(%rdi), %rax
    mov %rax, exc_ss(%rip)
    mov %cr2, %rax
    mov %rax, exc_cr2(%rip)
    lea F_RIP(%rdi), %rax           /* where the CPU put the frame: IST/RSP0 checks */
    mov %rax, exc_frame(%rip)
    lock incq exc_count(%rip)
    mov F_VEC(%rdi), %rax
    cmp expect_vec(%rip), %rax
    jne 1f
    movq $-1, expect_vec(%rip)
    mov fixup_rip(%rip), %rdx
    test %rdx, %rdx
    jz 2f
    mov %rdx, F_RIP(%rdi)
    movq $0, fixup_rip(%rip)
2:  ret
1:  mov exc_handlers(, %rax, 8), %rdx
    test %rdx, %rdx
    jz 3f
    jmp *%rdx
3:  PUTS "FAIL: "
    push %rdi
    mov $test_name, %edi
    call puts
    pop %rdi
    PUTS ": unexpected exception vector="
    push %rdi
    mov exc_vec(%rip), %rdi
    call puthex
    PUTS " err="
    mov exc_err(%rip), %rdi
    call puthex
    PUTS " rip="
    mov exc_rip(%rip), %rdi
    call puthex
    PUTS " cs="
    mov exc_cs(%rip), %rdi
    call puthex
    PUTS " rsp="
    mov exc_rsp(%rip), %rdi
    call puthex
    PUTS " cr2="
    mov exc_cr2(%rip), %rdi
    call puthex
    PUTS " expected vector="
    mov expect_vec(%rip), %rdi
    call puthex
    PUTS "\n"
    mov $2, %edi
    jmp exit

/* call_user(rdi = function): runs the function at ring 3 (64-bit CS, IOPL=3 so
 * it may use the console/exit ports and CHECK) on this vCPU's user stack and
 * returns its RAX. call_user_flags(rdi = function, rsi = RFLAGS) picks RFLAGS.
 * The function returns with RET; the trampoline then comes back through the
 * DPL3 gate VEC_EXIT_USER. Clobbers RCX, RDX, RSI, RDI, R8-R11. */
call_user:
    mov $0x3002, %esi
call_user_flags:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %gs:PC_KSAVE
    pushq $SEL_UDATA                /* SS */
    pushq %gs:PC_USTACK             /* RSP */
    push %rsi                       /* RFLAGS */
    pushq $SEL_UCODE                /* CS */
    pushq $user_trampoline          /* RIP */
    iretq
user_trampoline:
    call *%rdi
    int $VEC_EXIT_USER
    FAIL "returned from the exit-user gate"
exit_user_isr:                      /* ring 0, on TSS.RSP0; RAX = the user's result */
    mov %gs:PC_KSAVE, %rsp
    mov $SEL_KDATA, %ecx
    mov %ecx, %ss
    mov %ecx, %ds
    mov %ecx, %es
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

/* ================================ data ================================ */
    .section .rodata
test_name: .asciz TEST_NAME
hexdigits: .ascii "0123456789abcdef"

    .data
    .balign 16
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08 ring-0 code, 32-bit */
    .quad 0x00af9a000000ffff        /* 0x10 ring-0 code, 64-bit (L=1) */
    .quad 0x00cf92000000ffff        /* 0x18 ring-0 data */
    .quad 0x00cffa000000ffff        /* 0x20 ring-3 code, 32-bit */
    .quad 0x00cff2000000ffff        /* 0x28 ring-3 data */
    .quad 0x00affa000000ffff        /* 0x30 ring-3 code, 64-bit */
    .quad 0                         /* 0x38 unused */
gdt_tss:
    .fill MAX_CPUS * 2, 8, 0        /* 0x40 + 16 * cpu: TSS descriptors */
gdt_end:
    .balign 8
    .word 0
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt
    .word 0
idt_desc:
    .word 256 * 16 - 1
    .quad idt

    .balign 8
expect_vec: .quad -1                /* EXPECT state */
fixup_rip:  .quad 0
boot_ready: .long 0                 /* set by vCPU 0 when the tables are built */
    .balign 8
boot_ncpus: .quad 0
boot_mem:   .quad 0
boot_efer_pre:     .quad 0          /* EFER before CR0.PG (vCPU 0) */
boot_efer_compat:  .quad 0          /* EFER in compatibility mode */
boot_compat_probe: .quad 0          /* the 0x48 probe in compatibility mode */

/* last exception, recorded by exc_dispatch */
exc_vec:    .quad -1
exc_err:    .quad -1
exc_rip:    .quad 0
exc_cs:     .quad 0
exc_rflags: .quad 0
exc_rsp:    .quad 0
exc_ss:     .quad 0
exc_cr2:    .quad 0
exc_frame:  .quad 0                 /* address of the pushed RIP on the handler stack */
exc_count:  .quad 0

    .bss
    .balign 4096
pml4:    .space 4096
pdpt:    .space 4096
pd0:     .space 4096                /* identity map of 0..1 GiB, 2 MiB pages */
pd_test: .space 4096                /* TEST_VA .. TEST_VA + 1 GiB */
pt_test: .space 4096                /* TEST_VA .. TEST_VA + 2 MiB, 4 KiB pages */
idt:     .space 4096
tss_area: .space MAX_CPUS * TSS_STRIDE
    .balign 64
percpu:  .space MAX_CPUS * PC_SIZE
exc_handlers: .space 256 * 8
    .balign 4096
stacks:  .space MAX_CPUS * STACK_SET

    .section .note.GNU-stack, "", @progbits
    .text
    .code64
