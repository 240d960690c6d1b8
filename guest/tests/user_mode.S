/* user_mode.S — ring transitions in long mode: IRETQ to ring 3 (64-bit CS),
 * SYSCALL/SYSRET (64-bit and compatibility-mode user code), INT 0x80 through
 * a DPL3 gate and IRETQ back, and ring-3 access to a supervisor page.
 */
#define TEST_NAME "user_mode"
#include "common.h"

#define RSP0_TOP (stacks + OFF_RSP0_TOP)        /* vCPU 0 */
#define FMASK 0x47700                           /* AC IOPL DF IF TF cleared on SYSCALL */

test_main:
    /* SYSCALL: CS = STAR[47:32], SS = +8; SYSRETQ: CS = STAR[63:48]+16, SS = +8 */
    mov $MSR_STAR, %ecx
    xor %eax, %eax
    mov $STAR_VALUE_HI, %edx
    wrmsr
    mov $MSR_LSTAR, %ecx
    mov $lstar_entry, %eax
    xor %edx, %edx
    wrmsr
    mov $MSR_CSTAR, %ecx
    mov $cstar_entry, %eax
    wrmsr
    mov $MSR_FMASK, %ecx
    mov $FMASK, %eax
    wrmsr
    /* INT 0x80: DPL3 gate, handled by int80_handler */
    mov $0x80, %edi
    mov $isr_stubs + 16 * 0x80, %esi
    xor %edx, %edx
    mov $3, %ecx
    call set_gate
    SET_HANDLER 0x80, int80_handler
    /* a supervisor-only page at TEST_VA */
    xor %edi, %edi
    mov $PHYS_SCRATCH | PTE_P | PTE_W, %esi
    call set_pte

    LOG "IRETQ to ring 3"
    mov $user_basic, %edi
    call call_user
    CHECK %rax, $1, "ring-3 code ran and returned"
    mov %cs, %eax
    CHECK %rax, $SEL_KCODE, "back in ring 0: CS"
    /* IRETQ loads RFLAGS from the frame (IOPL=0 here, so no printing in ring 3) */
    mov $user_flags, %edi
    mov $0x8c3, %esi                /* OF SF ZF CF + bit 1 */
    call call_user_flags
    CHECK %rax, $0x8c3, "RFLAGS after IRETQ to ring 3"

    LOG "SYSCALL / SYSRETQ"
    mov $user_syscall, %edi
    call call_user
    CHECK %rax, $2, "SYSCALL checks ran"

    LOG "SYSRETL to compatibility mode, SYSCALL via CSTAR"
    mov $user_compat, %edi
    call call_user
    CHECK %rax, $3, "compat-mode SYSCALL checks ran"

    LOG "SYSCALL with EFER.SCE=0, SYSRET at CPL3"
    mov $MSR_EFER, %ecx
    rdmsr
    and $~EFER_SCE, %eax
    wrmsr
    EXPECT VEC_UD, 1f
.Lsyscall_ud:
    syscall
1:  mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_SCE, %eax
    wrmsr
    CHECK_FAULT VEC_UD, $0, $.Lsyscall_ud, "SYSCALL with EFER.SCE=0 -> #UD"
    mov $user_sysret, %edi
    call call_user
    CHECK %rax, $6, "SYSRET-at-CPL3 check ran"

    LOG "INT 0x80 through a DPL3 gate"
    mov $user_int80, %edi
    call call_user
    CHECK %rax, $4, "INT 0x80 checks ran"

    LOG "ring-3 access to a supervisor page"
    mov $user_supervisor, %edi
    call call_user
    CHECK %rax, $5, "supervisor-page checks ran"
    ret

/* ---------------- ring 3 ---------------- */
user_basic:
    pushfq                          /* first: CHECK itself changes the flags */
    pop %r13
    mov %cs, %eax
    CHECK %rax, $SEL_UCODE, "CS after IRETQ"
    mov %ss, %eax
    CHECK %rax, $SEL_UDATA, "SS after IRETQ"
    mov %ds, %eax
    CHECK %rax, $0, "DS (DPL0) nulled by IRETQ to ring 3"
    mov %es, %eax
    CHECK %rax, $0, "ES (DPL0) nulled by IRETQ to ring 3"
    mov %rsp, %rax
    add $8, %rax                    /* call_user's trampoline CALLed us */
    CHECK %rax, %gs:PC_USTACK, "RSP after IRETQ"
    CHECK %r13, $0x3002, "RFLAGS after IRETQ"
    /* 64-bit code at ring 3: REX.W works */
    xor %eax, %eax
    .byte 0x48, 0xff, 0xc8
    CHECK %rax, $-1, "REX.W at ring 3"
    mov $1, %eax
    ret

user_flags:
    pushfq
    pop %rax
    ret

user_syscall:
    mov $0x1111, %ebx
    mov $0x2222, %ebp
    mov $0x3333, %r12d
    mov %rsp, %r15
    mov $-1, %rcx                   /* both overwritten by SYSCALL */
    mov $-1, %r11
    stc
    std                             /* DF must be masked by FMASK in the kernel */
    pushfq
    pop %r14                        /* the RFLAGS SYSCALL saves in R11 */
    mov $1, %eax
    syscall
.Lsys_ret:
    pushfq
    pop %r13
    cld
    CHECK %rax, $0x1234, "SYSCALL return value"
    CHECK %r13, %r14, "RFLAGS after SYSRETQ = R11"
    CHECK %rcx, $.Lsys_ret, "RCX after SYSRETQ"
    mov %cs, %eax
    CHECK %rax, $SEL_UCODE, "CS after SYSRETQ"
    mov %ss, %eax
    CHECK %rax, $SEL_UDATA, "SS after SYSRETQ"
    mov %rsp, %rax
    CHECK %rax, %r15, "RSP after SYSRETQ"
    CHECK %rbx, $0x1111, "RBX preserved"
    CHECK %rbp, $0x2222, "RBP preserved"
    CHECK %r12, $0x3333, "R12 preserved"
    /* what the kernel saw */
    CHECK sys_via(%rip), $1, "64-bit SYSCALL entered through LSTAR"
    CHECK sys_rcx(%rip), $.Lsys_ret, "RCX in the handler = RIP after SYSCALL"
    CHECK sys_r11(%rip), %r14, "R11 in the handler = user RFLAGS"
    mov %r14, %rax
    and $~FMASK, %rax
    CHECK sys_rflags(%rip), %rax, "handler RFLAGS = user RFLAGS & ~FMASK"
    CHECK sys_cs(%rip), $SEL_KCODE, "handler CS (CPL0)"
    CHECK sys_ss(%rip), $SEL_KDATA, "handler SS"
    CHECK sys_user_rsp(%rip), %r15, "SYSCALL does not switch RSP"
    mov $2, %eax
    ret

user_compat:
    mov $2, %eax                    /* kernel: SYSRETL to compat_code */
    syscall
    FAIL "SYSRETL returned to the 64-bit caller"
    .code32
compat_code:                        /* ring 3, 32-bit compatibility mode */
    xor %eax, %eax
    .byte 0x48                      /* DEC EAX in 32-bit code */
    dec %eax
    mov %eax, %ebx
    mov %cs, %edx
    mov $3, %eax                    /* kernel: SYSRETQ to compat_back */
    syscall
.Lcompat_sys_ret:
    hlt                             /* not reached */
    .code64
compat_back:
    mov $0xfffffffe, %eax
    CHECK %rbx, %rax, "compat mode decodes 0x48 as DEC"
    movzwl %dx, %edx
    CHECK %rdx, $SEL_UCODE32, "CS after SYSRETL"
    CHECK sys_via(%rip), $2, "compat-mode SYSCALL entered through CSTAR"
    CHECK sys_rcx(%rip), $.Lcompat_sys_ret, "RCX = EIP after the compat-mode SYSCALL"
    mov %cs, %eax
    CHECK %rax, $SEL_UCODE, "CS after SYSRETQ from the CSTAR handler"
    mov $3, %eax
    ret

user_sysret:
    EXPECT VEC_GP, 1f
.Lsysret3:
    sysretq                         /* privileged */
1:  CHECK_FAULT VEC_GP, $0, $.Lsysret3, "SYSRET at CPL3 -> #GP(0)"
    mov $6, %eax
    ret

user_int80:
    mov %rsp, %r12
    mov $21, %eax
    int $0x80
.Lint80_ret:
    CHECK %rax, $42, "INT 0x80 result (handler doubled RAX)"
    CHECK exc_vec(%rip), $0x80, "INT 0x80 vector"
    CHECK exc_rip(%rip), $.Lint80_ret, "INT 0x80: pushed RIP"
    CHECK exc_cs(%rip), $SEL_UCODE, "INT 0x80: pushed CS"
    CHECK exc_ss(%rip), $SEL_UDATA, "INT 0x80: pushed SS"
    CHECK exc_rsp(%rip), %r12, "INT 0x80: pushed RSP"
    CHECK exc_frame(%rip), $(RSP0_TOP - 40), "INT 0x80 frame on TSS.RSP0"
    CHECK int80_cs(%rip), $SEL_KCODE, "INT 0x80 handler CS"
    mov %cs, %eax
    CHECK %rax, $SEL_UCODE, "CS after IRETQ from INT 0x80"
    mov %ss, %eax
    CHECK %rax, $SEL_UDATA, "SS after IRETQ from INT 0x80"
    mov %rsp, %rax
    CHECK %rax, %r12, "RSP after IRETQ from INT 0x80"
    mov $4, %eax
    ret

user_supervisor:
    EXPECT VEC_PF, 1f
.Lsup_read:
    mov TEST_VA + 8, %rax
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_U), $.Lsup_read, "ring-3 read of a supervisor page"
    CHECK exc_cr2(%rip), $(TEST_VA + 8), "ring-3 read of a supervisor page: CR2"
    CHECK exc_cs(%rip), $SEL_UCODE, "ring-3 read of a supervisor page: pushed CS"
    EXPECT VEC_PF, 1f
.Lsup_write:
    movq $0, TEST_VA + 16
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_W | PF_U), $.Lsup_write, "ring-3 write to a supervisor page"
    mov %cs, %eax
    CHECK %rax, $SEL_UCODE, "still in ring 3 after the fault"
    mov $5, %eax
    ret

/* ---------------- ring 0 ---------------- */
int80_handler:                      /* rdi = frame */
    mov %cs, %eax
    mov %rax, int80_cs(%rip)
    mov F_RAX(%rdi), %rax
    add %rax, %rax
    mov %rax, F_RAX(%rdi)
    ret

lstar_entry:
    movq $1, sys_via(%rip)
    jmp syscall_common
cstar_entry:
    movq $2, sys_via(%rip)
syscall_common:
    pushfq                          /* (on the user stack: it is mapped) */
    popq sys_rflags(%rip)
    mov %rsp, sys_user_rsp(%rip)
    mov %gs:PC_STACKS, %rsp
    add $OFF_SYS_TOP, %rsp
    mov %rcx, sys_rcx(%rip)
    mov %r11, sys_r11(%rip)
    mov %rax, sys_rax(%rip)
    mov %cs, %eax
    mov %rax, sys_cs(%rip)
    mov %ss, %eax
    mov %rax, sys_ss(%rip)
    mov sys_rax(%rip), %rax
    mov sys_user_rsp(%rip), %rsp
    cmp $2, %rax
    je 1f
    cmp $3, %rax
    je 2f
    mov $0x1234, %eax
    sysretq
1:  mov $compat_code, %ecx          /* to 32-bit ring-3 code */
    sysretl
2:  mov $compat_back, %ecx
    sysretq

    .data
sys_via:      .quad 0
sys_rcx:      .quad 0
sys_r11:      .quad 0
sys_rax:      .quad 0
sys_rflags:   .quad 0
sys_cs:       .quad 0
sys_ss:       .quad 0
sys_user_rsp: .quad 0
int80_cs:     .quad 0
