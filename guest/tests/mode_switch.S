/* mode_switch.S — the 32 -> 64-bit switch done by common.h's boot code, and
 * 64-bit <-> compatibility-mode far transfers.
 *
 * Checks: EFER before/after CR0.PG (LME set, LMA only once paging is on),
 * compatibility mode still decodes 0x48 as DEC, 64-bit mode decodes it as REX.W
 * (result width), CS.L via LAR, CS/SS selectors, CR0/CR4/CR3, 8-byte pushes,
 * RIP-relative addressing, and a round trip 64 -> compat (LRETQ) -> 64 (LJMP).
 */
#define TEST_NAME "mode_switch"
#include "common.h"

test_main:
    LOG "EFER during boot"
    /* before CR0.PG: LME|NXE|SCE set, LMA clear */
    CHECK boot_efer_pre(%rip), $(EFER_LME | EFER_NXE | EFER_SCE), "EFER before CR0.PG"
    /* after CR0.PG, still in 32-bit CS: LMA set by the CPU */
    CHECK boot_efer_compat(%rip), $(EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE), "EFER in compat mode"
    /* 0x48 decoded as DEC EAX in compat mode: 0 - 2 (32-bit result) */
    mov $0xfffffffe, %eax           /* (PUSHQ immediates are sign-extended) */
    CHECK boot_compat_probe(%rip), %rax, "0x48 probe in compatibility mode"

    LOG "boot registers"
    CHECK boot_ncpus(%rip), $1, "ESI = vCPU count at entry"
    CHECK_RANGE boot_mem(%rip), $(4 << 20), $(1 << 30) + 1, "EDX = RAM size at entry"

    LOG "64-bit decoding"
    /* the same bytes in 64-bit mode: REX.W DEC -> RAX = 0 - 1 as a 64-bit value */
    xor %eax, %eax
    .byte 0x48, 0xff, 0xc8          /* dec %rax */
    CHECK %rax, $-1, "REX.W dec rax (64-bit operand size)"
    movabs $0x123456789abcdef0, %rax
    mov %rax, %rbx
    shr $36, %rbx
    CHECK %rbx, $0x1234567, "64-bit immediate and shift"
    /* R8-R15 exist only in 64-bit mode */
    mov $0x1111, %r8d
    mov $0x2222, %r15d
    lea (%r8, %r15, 2), %r9
    CHECK %r9, $0x5555, "R8/R15 addressing"
    /* PUSH is 8 bytes */
    mov %rsp, %rbx
    push %rax
    sub %rsp, %rbx
    pop %rax
    CHECK %rbx, $8, "push size"
    /* RIP-relative addressing */
    lea here(%rip), %rax
here:
    CHECK %rax, $here, "RIP-relative LEA"

    LOG "segments and control registers"
    mov %cs, %eax
    CHECK %rax, $SEL_KCODE, "CS selector"
    mov %ss, %eax
    CHECK %rax, $SEL_KDATA, "SS selector"
    /* LAR on CS: access rights; bit 21 = L, bit 22 = D (must be 0 with L) */
    mov $SEL_KCODE, %eax
    lar %eax, %ecx
    jnz 1f
    and $0x00f0ff00, %ecx
    CHECK %rcx, $0x00a09b00, "LAR(CS): P DPL0 code, accessed, L=1 D=0 G=1"
    mov $MSR_EFER, %ecx
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    CHECK %rax, $(EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE), "EFER in 64-bit mode"
    mov %cr0, %rax
    and $(CR0_PE | CR0_WP), %eax    /* PG is bit 31: checked separately */
    CHECK %rax, $(CR0_PE | CR0_WP), "CR0.PE and CR0.WP"
    mov %cr0, %rax
    bt $31, %rax
    setc %al
    movzbl %al, %eax
    CHECK %rax, $1, "CR0.PG"
    mov %cr4, %rax
    and $CR4_PAE, %eax
    CHECK %rax, $CR4_PAE, "CR4.PAE"
    mov %cr3, %rax
    CHECK %rax, $pml4, "CR3"

    LOG "64 -> compatibility mode -> 64"
    /* far return to the 32-bit ring-0 code segment (still in long mode) */
    pushq $SEL_CODE32
    pushq $compat_code
    lretq
    .code32
compat_code:
    xor %eax, %eax
    .byte 0x48                      /* DEC EAX here */
    dec %eax
    mov %eax, %ebx
    mov %cs, %ecx
    ljmp $SEL_KCODE, $back64
    .code64
back64:
    mov $0xfffffffe, %eax
    CHECK %rbx, %rax, "0x48 probe after LRETQ to compat mode"
    movzwl %cx, %ecx
    CHECK %rcx, $SEL_CODE32, "CS in compat mode"
    mov %cs, %eax
    CHECK %rax, $SEL_KCODE, "CS back in 64-bit mode"
    xor %eax, %eax
    .byte 0x48, 0xff, 0xc8
    CHECK %rax, $-1, "REX.W dec rax after returning to 64-bit mode"
    ret
1:  FAIL "LAR on CS reported ZF=0"
