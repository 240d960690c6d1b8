/* exceptions.S — exception delivery in 64-bit mode: vector, error code and
 * pushed RIP for #DE, #DB (INT1), #BP, #UD, #GP and #SS, at CPL0 and CPL3.
 *
 * Also #NM (CR0.TS/EM), #UD for SSE without CR4.OSFXSR, interrupt vs trap
 * gates (IF), and the RFLAGS.TF single-step trap.
 *
 * Each case arms EXPECT (vector + resume label), runs one faulting instruction
 * and checks what the handler recorded. Faults push the RIP of the faulting
 * instruction, traps (INT3, INT n, INT1) the RIP after it.
 */
#define TEST_NAME "exceptions"
#include "common.h"

/* UD_CASE "name", bytes...: the bytes must raise #UD at their first byte */
.macro UD_CASE name, bytes:vararg
    EXPECT VEC_UD, .Lud_after\@
.Lud\@:
    .byte \bytes
.Lud_after\@:
    CHECK exc_vec(%rip), $VEC_UD, "\name: vector"
    CHECK exc_rip(%rip), $.Lud\@, "\name: pushed RIP"
.endm

/* SAVE_EXC slot: copy vector, error code, RIP of the last exception to slot */
.macro SAVE_EXC slot
    mov exc_vec(%rip), %rax
    mov %rax, \slot(%rip)
    mov exc_err(%rip), %rax
    mov %rax, \slot + 8(%rip)
    mov exc_rip(%rip), %rax
    mov %rax, \slot + 16(%rip)
.endm

test_main:
    LOG "#DE"
    mov $1, %eax
    xor %edx, %edx
    xor %ecx, %ecx
    EXPECT VEC_DE, 1f
.Lde_div0:
    div %ecx                        /* divide by zero */
1:  CHECK_FAULT VEC_DE, $0, $.Lde_div0, "DIV by zero"
    CHECK %rax, $1, "DIV by zero leaves RAX alone"
    CHECK exc_cs(%rip), $SEL_KCODE, "DIV by zero: pushed CS"

    movabs $0x8000000000000000, %rax
    cqo                             /* RDX:RAX = -2^63 */
    mov $-1, %rcx
    EXPECT VEC_DE, 1f
.Lde_idiv64:
    idiv %rcx                       /* -2^63 / -1 does not fit */
1:  CHECK_FAULT VEC_DE, $0, $.Lde_idiv64, "IDIV r64 overflow"

    mov $0x80000000, %eax
    cdq
    mov $-1, %ecx
    EXPECT VEC_DE, 1f
.Lde_idiv32:
    idiv %ecx
1:  CHECK_FAULT VEC_DE, $0, $.Lde_idiv32, "IDIV r32 overflow"

    mov $0x1000, %eax
    mov $2, %cl
    EXPECT VEC_DE, 1f
.Lde_div8:
    div %cl                         /* quotient 0x800 does not fit in AL */
1:  CHECK_FAULT VEC_DE, $0, $.Lde_div8, "DIV r8 quotient overflow"

    mov $5, %edx
    xor %eax, %eax
    mov $5, %ecx
    EXPECT VEC_DE, 1f
.Lde_div64:
    div %rcx                        /* RDX >= divisor */
1:  CHECK_FAULT VEC_DE, $0, $.Lde_div64, "DIV r64 quotient overflow"

    /* a non-faulting IDIV right after: the handler must not leave state behind */
    mov $-7, %rax
    cqo
    mov $2, %rcx
    idiv %rcx
    CHECK %rax, $-3, "IDIV -7/2 quotient"
    CHECK %rdx, $-1, "IDIV -7/2 remainder"

    LOG "#BP and INT1"
    mov $0x1234, %r12
    mov $0x5678, %r15
    EXPECT VEC_BP, 0                /* trap: the handler returns to the next insn */
    int3
.Lbp_after:
    CHECK exc_vec(%rip), $VEC_BP, "INT3: vector"
    CHECK exc_rip(%rip), $.Lbp_after, "INT3: pushed RIP is after INT3"
    CHECK exc_cs(%rip), $SEL_KCODE, "INT3: pushed CS"
    CHECK %r12, $0x1234, "INT3 handler preserved R12"
    CHECK %r15, $0x5678, "INT3 handler preserved R15"
    EXPECT VEC_BP, 0
    int $3                          /* CD 03: two bytes */
.Lint3_after:
    CHECK exc_rip(%rip), $.Lint3_after, "INT 3: pushed RIP"
    EXPECT VEC_DB, 0
    int1                            /* F1 */
.Lint1_after:
    CHECK exc_vec(%rip), $VEC_DB, "INT1: vector"
    CHECK exc_rip(%rip), $.Lint1_after, "INT1: pushed RIP"
    /* RFLAGS image: IF stays 0, bit 1 set */
    mov exc_rflags(%rip), %rax
    and $0x202, %eax
    CHECK %rax, $2, "INT1: pushed RFLAGS"

    LOG "#UD"
    UD_CASE "UD2", 0x0f, 0x0b
    UD_CASE "UD0", 0x0f, 0xff, 0xc0
    UD_CASE "UD1", 0x0f, 0xb9, 0xc0
    UD_CASE "PUSH ES in 64-bit mode", 0x06
    UD_CASE "POP DS in 64-bit mode", 0x1f
    UD_CASE "DAA in 64-bit mode", 0x27
    UD_CASE "AAA in 64-bit mode", 0x37
    UD_CASE "PUSHA in 64-bit mode", 0x60
    UD_CASE "INTO in 64-bit mode", 0xce
    UD_CASE "AAM in 64-bit mode", 0xd4, 0x0a
    UD_CASE "SALC in 64-bit mode", 0xd6
    UD_CASE "far CALL ptr16:32 in 64-bit mode", 0x9a, 0, 0, 0, 0, 0, 0
    UD_CASE "far JMP ptr16:32 in 64-bit mode", 0xea, 0, 0, 0, 0, 0, 0
    UD_CASE "LOCK ADD reg,reg", 0xf0, 0x01, 0xc0
    UD_CASE "LOCK NOP", 0xf0, 0x90
    UD_CASE "LOCK MOV [rbx],eax", 0xf0, 0x89, 0x03
    UD_CASE "MOV CS,ax", 0x8e, 0xc8
    UD_CASE "MOV CR1", 0x0f, 0x22, 0xc8
    UD_CASE "LEA with register operand", 0x8d, 0xc0

    LOG "#GP at CPL0"
    movabs $0x0000800000000000, %rbx    /* first non-canonical address */
    EXPECT VEC_GP, 1f
.Lgp_nc_read:
    mov (%rbx), %rax
1:  CHECK_FAULT VEC_GP, $0, $.Lgp_nc_read, "read at non-canonical address"
    movabs $0xffff7fffffffffff, %rbx    /* last non-canonical address */
    EXPECT VEC_GP, 1f
.Lgp_nc_write:
    movl $1, (%rbx)
1:  CHECK_FAULT VEC_GP, $0, $.Lgp_nc_write, "write at non-canonical address"

    mov $0x1f8, %eax                /* beyond the GDT limit */
    EXPECT VEC_GP, 1f
.Lgp_sel_limit:
    mov %eax, %ds
1:  CHECK_FAULT VEC_GP, $0x1f8, $.Lgp_sel_limit, "MOV DS, selector beyond GDT limit"
    mov $SEL_TSS0, %eax             /* a system descriptor */
    EXPECT VEC_GP, 1f
.Lgp_sel_sys:
    mov %eax, %es
1:  CHECK_FAULT VEC_GP, $SEL_TSS0, $.Lgp_sel_sys, "MOV ES, TSS selector"
    mov $SEL_UDATA, %eax            /* DPL3 data as SS at CPL0 */
    EXPECT VEC_GP, 1f
.Lgp_sel_ss:
    mov %eax, %ss
1:  CHECK_FAULT VEC_GP, $(SEL_UDATA & ~3), $.Lgp_sel_ss, "MOV SS, DPL3 selector at CPL0"
    mov %ss, %eax
    CHECK %rax, $SEL_KDATA, "SS unchanged after the failed load"
    mov %ds, %eax
    CHECK %rax, $SEL_KDATA, "DS unchanged after the failed load"
    mov $MSR_EFER + 0x1000, %ecx    /* an MSR that does not exist */
    EXPECT VEC_GP, 1f
.Lgp_rdmsr:
    rdmsr
1:  CHECK_FAULT VEC_GP, $0, $.Lgp_rdmsr, "RDMSR of an unknown MSR"

    LOG "#NM and SSE without CR4.OSFXSR"
    mov %cr0, %rax
    or $0x8, %eax                   /* CR0.TS */
    mov %rax, %cr0
    EXPECT 7, 1f
.Lnm_ts:
    fldz
1:  CHECK_FAULT 7, $0, $.Lnm_ts, "x87 instruction with CR0.TS=1 -> #NM"
    clts
    fninit                          /* fine again once TS is clear */
    mov %cr0, %rax
    or $0x4, %eax                   /* CR0.EM */
    mov %rax, %cr0
    EXPECT 7, 1f
.Lnm_em:
    fldz
1:  CHECK_FAULT 7, $0, $.Lnm_em, "x87 instruction with CR0.EM=1 -> #NM"
    mov %cr0, %rax
    and $~0x4, %eax
    mov %rax, %cr0
    EXPECT VEC_UD, 1f               /* the boot code never sets CR4.OSFXSR */
.Lsse_ud:
    movaps %xmm0, %xmm1
1:  CHECK_FAULT VEC_UD, $0, $.Lsse_ud, "SSE instruction with CR4.OSFXSR=0 -> #UD"

    LOG "interrupt gate vs trap gate"
    mov $0x46, %edi
    mov $isr_stubs + 16 * 0x46, %esi
    xor %edx, %edx
    xor %ecx, %ecx
    call set_gate                   /* 0x46: interrupt gate (type 0xE) */
    mov $0x47, %edi
    mov $isr_stubs + 16 * 0x47, %esi
    call set_gate
    movb $0x8f, idt + 16 * 0x47 + 5 /* 0x47: trap gate (type 0xF) */
    SET_HANDLER 0x46, flags_handler
    SET_HANDLER 0x47, flags_handler
    sti                             /* nothing in this machine interrupts */
    int $0x46
    mov exc_rflags(%rip), %rax
    and $0x200, %eax
    CHECK %rax, $0x200, "interrupt gate: pushed RFLAGS.IF = 1"
    mov handler_rflags(%rip), %rax
    and $0x200, %eax
    CHECK %rax, $0, "interrupt gate clears IF"
    int $0x47
    mov handler_rflags(%rip), %rax
    and $0x200, %eax
    CHECK %rax, $0x200, "trap gate keeps IF"
    pushfq
    pop %rax
    and $0x200, %eax
    CHECK %rax, $0x200, "IRETQ restored IF"
    cli

    LOG "#GP at CPL3 (IOPL=3)"
    mov $user_priv, %edi
    call call_user
    CHECK %rax, $0x600d, "ring-3 privileged-instruction checks ran"

    LOG "#GP at CPL3 (IOPL=0)"
    mov $user_iopl0, %edi
    mov $0x2, %esi                  /* IOPL=0, IF=0 */
    call call_user_flags
    CHECK save_cli(%rip), $VEC_GP, "CLI at CPL3, IOPL=0: vector"
    CHECK save_cli + 8(%rip), $0, "CLI at CPL3, IOPL=0: error code"
    CHECK save_cli + 16(%rip), $.Lcli3, "CLI at CPL3, IOPL=0: pushed RIP"
    CHECK save_in(%rip), $VEC_GP, "IN at CPL3, IOPL=0, no I/O bitmap: vector"
    CHECK save_in + 8(%rip), $0, "IN at CPL3: error code"
    CHECK save_in + 16(%rip), $.Lin3, "IN at CPL3: pushed RIP"
    CHECK save_out(%rip), $VEC_GP, "OUT at CPL3, IOPL=0: vector"
    CHECK save_out + 16(%rip), $.Lout3, "OUT at CPL3: pushed RIP"

    /* corner cases last, so a failure here does not hide the basic checks */
    LOG "non-canonical branch target and stack reference"
    movabs $0x0000800000000000, %rbx
    mov %rsp, %r12
    EXPECT VEC_GP, 1f
.Lgp_nc_jmp:
    jmp *%rbx                       /* #GP(0) on the JMP itself (SDM: JMP, 64-bit mode) */
1:  CHECK_FAULT VEC_GP, $0, $.Lgp_nc_jmp, "JMP to a non-canonical address"
    EXPECT VEC_GP, 1f
.Lgp_nc_call:
    call *%rbx                      /* #GP(0) on the CALL, nothing pushed */
1:  CHECK_FAULT VEC_GP, $0, $.Lgp_nc_call, "CALL to a non-canonical address"
    mov %rsp, %rax                  /* (CHECK pushes, so never pass it %rsp) */
    mov %r12, %rsp                  /* keep the test going if the CALL pushed anyway */
    CHECK %rax, %r12, "RSP unchanged by the faulting CALL"
    mov %rbx, %rbp
    EXPECT VEC_SS, 1f
.Lss_nc:
    mov 8(%rbp), %rax               /* RBP-based: SS segment -> #SS(0), not #GP */
1:  CHECK_FAULT VEC_SS, $0, $.Lss_nc, "RBP-based non-canonical access"

    LOG "IDIV r32 of -2^63 by -1"
    mov $0x80000000, %edx           /* EDX:EAX = -2^63: an emulator doing the 64/32 */
    xor %eax, %eax                  /* division in int64_t traps on the host here */
    mov $-1, %ecx
    EXPECT VEC_DE, 1f
.Lde_idiv32_min:
    idiv %ecx
1:  CHECK_FAULT VEC_DE, $0, $.Lde_idiv32_min, "IDIV r32 with EDX:EAX = -2^63, divisor -1"

    LOG "single-step trap (RFLAGS.TF)"
    SET_HANDLER VEC_DB, db_handler
    movq $-1, exc_vec(%rip)
    pushfq
    orq $0x100, (%rsp)
    popfq                           /* TF=1: #DB after the instruction that follows */
    nop
.Lafter_step:
    CHECK exc_vec(%rip), $VEC_DB, "single-step (TF): vector"
    CHECK exc_rip(%rip), $.Lafter_step, "single-step (TF): pushed RIP"
    mov exc_rflags(%rip), %rax
    and $0x100, %eax
    CHECK %rax, $0x100, "single-step (TF): pushed RFLAGS.TF"
    mov handler_rflags(%rip), %rax
    and $0x100, %eax
    CHECK %rax, $0, "single-step (TF): handler runs with TF=0"
    ret

/* exception handlers (rdi = frame): record the handler's own RFLAGS */
flags_handler:
    pushfq
    popq handler_rflags(%rip)
    ret
db_handler:                         /* also clears TF in the frame: trap only once */
    pushfq
    popq handler_rflags(%rip)
    andq $~0x100, F_RFLAGS(%rdi)
    ret

/* ring 3, IOPL=3 (may print and CHECK) */
user_priv:
    mov %cs, %eax
    CHECK %rax, $SEL_UCODE, "CS at CPL3"
    EXPECT VEC_GP, 1f
.Lhlt3:
    hlt
1:  CHECK_FAULT VEC_GP, $0, $.Lhlt3, "HLT at CPL3"
    CHECK exc_cs(%rip), $SEL_UCODE, "HLT at CPL3: pushed CS"
    CHECK exc_ss(%rip), $SEL_UDATA, "HLT at CPL3: pushed SS"
    EXPECT VEC_GP, 1f
.Lmovcr3:
    mov %cr0, %rax
1:  CHECK_FAULT VEC_GP, $0, $.Lmovcr3, "MOV from CR0 at CPL3"
    mov $MSR_EFER, %ecx
    EXPECT VEC_GP, 1f
.Lrdmsr3:
    rdmsr
1:  CHECK_FAULT VEC_GP, $0, $.Lrdmsr3, "RDMSR at CPL3"
    EXPECT VEC_GP, 1f
.Llgdt3:
    lgdt gdt_desc(%rip)
1:  CHECK_FAULT VEC_GP, $0, $.Llgdt3, "LGDT at CPL3"
    EXPECT VEC_GP, 1f
.Lint3_dpl0:
    int3                            /* the #BP gate has DPL0 */
1:  CHECK_FAULT VEC_GP, $(VEC_BP * 8 + 2), $.Lint3_dpl0, "INT3 at CPL3 through a DPL0 gate"
    EXPECT VEC_GP, 1f
.Lint_dpl0:
    int $0x41
1:  CHECK_FAULT VEC_GP, $(0x41 * 8 + 2), $.Lint_dpl0, "INT 0x41 at CPL3 through a DPL0 gate"
    mov $SEL_KDATA, %eax
    EXPECT VEC_GP, 1f
.Lds3:
    mov %eax, %ds                   /* DPL0 data at CPL3 */
1:  CHECK_FAULT VEC_GP, $SEL_KDATA, $.Lds3, "MOV DS, DPL0 selector at CPL3"
    EXPECT VEC_UD, 1f
.Lud3:
    ud2
1:  CHECK_FAULT VEC_UD, $0, $.Lud3, "UD2 at CPL3"
    mov $0x600d, %eax
    ret

/* ring 3, IOPL=0: no console access here, results are saved for test_main */
user_iopl0:
    EXPECT VEC_GP, 1f
.Lcli3:
    cli
1:  SAVE_EXC save_cli
    EXPECT VEC_GP, 1f
.Lin3:
    inb $0x80, %al
1:  SAVE_EXC save_in
    EXPECT VEC_GP, 1f
.Lout3:
    outb %al, $0xe9
1:  SAVE_EXC save_out
    ret

    .data
handler_rflags: .quad 0
save_cli: .quad 0, 0, 0
save_in:  .quad 0, 0, 0
save_out: .quad 0, 0, 0
