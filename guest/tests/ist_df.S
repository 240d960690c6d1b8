/* ist_df.S — interrupt stacks and double faults in 64-bit mode.
 *
 * Checks where the CPU puts the interrupt frame: the current stack aligned
 * down to 16 bytes (no IST, same CPL), TSS.IST1 (IST gates, also for faults
 * and from ring 3, overriding RSP0), and TSS.IST2 for #DF. Then double faults:
 * a #PF whose delivery faults (its IST stack is not mapped; its gate is not
 * present) and a #GP whose gate is not present -> #DF with error code 0 on
 * IST2; a benign #UD or a software INT with a not-present gate -> #NP with the
 * IDT error code instead.
 */
#define TEST_NAME "ist_df"
#include "common.h"

#define IST1_TOP (stacks + OFF_IST1_TOP)        /* vCPU 0 */
#define IST2_TOP (stacks + OFF_IST2_TOP)
#define RSP0_TOP (stacks + OFF_RSP0_TOP)
#define FRAME 40                                /* RIP CS RFLAGS RSP SS */
#define STACK_VA (TEST_VA + 20 * 4096)          /* never mapped */

/* GATE vector, ist, dpl: point vector at its default stub with this IST/DPL */
.macro GATE vec, ist, dpl
    mov $\vec, %edi
    mov $isr_stubs + 16 * \vec, %esi
    mov $\ist, %edx
    mov $\dpl, %ecx
    call set_gate
.endm

test_main:
    LOG "frame on the current stack"
    GATE 0x42, 0, 0
    sub $8, %rsp                    /* misalign: the CPU aligns RSP down to 16 */
    mov %rsp, %r12
    EXPECT 0x42, 0
    int $0x42
    mov %rsp, %rax
    add $8, %rsp
    CHECK %rax, %r12, "RSP restored by IRETQ"
    CHECK exc_rsp(%rip), %r12, "pushed RSP (no IST)"
    mov %r12, %rax
    and $~15, %rax
    sub $FRAME, %rax
    CHECK exc_frame(%rip), %rax, "frame at (RSP & ~15) - 40 (no IST)"
    CHECK exc_ss(%rip), $SEL_KDATA, "pushed SS"

    LOG "IST1 for INT n, #BP and #GP"
    GATE 0x41, 1, 0
    mov %rsp, %r12
    EXPECT 0x41, 0
    int $0x41
    CHECK exc_frame(%rip), $(IST1_TOP - FRAME), "INT 0x41 frame at the top of IST1"
    CHECK exc_rsp(%rip), %r12, "INT 0x41 on IST1: pushed RSP"
    GATE VEC_BP, 1, 0
    EXPECT VEC_BP, 0
    int3
    CHECK exc_frame(%rip), $(IST1_TOP - FRAME), "#BP frame at the top of IST1"
    GATE VEC_BP, 0, 0
    GATE VEC_GP, 1, 0
    movabs $0x8000000000000000, %rbx
    EXPECT VEC_GP, 1f
.Lgp_ist:
    mov (%rbx), %rax
1:  CHECK_FAULT VEC_GP, $0, $.Lgp_ist, "#GP on IST1"
    CHECK exc_frame(%rip), $(IST1_TOP - FRAME), "#GP frame (error code below it) on IST1"
    GATE VEC_GP, 0, 0

    LOG "IST1 vs RSP0 from ring 3"
    GATE 0x43, 1, 3                 /* DPL3, IST1 */
    GATE 0x44, 0, 3                 /* DPL3, no IST: RSP0 */
    mov $user_ist, %edi
    call call_user
    CHECK %rax, $3, "ring-3 part ran"
    CHECK save_ist_frame(%rip), $(IST1_TOP - FRAME), "from ring 3 the IST gate uses IST1, not RSP0"
    CHECK save_ist_ss(%rip), $SEL_UDATA, "from ring 3: pushed SS"
    CHECK save_rsp0_frame(%rip), $(RSP0_TOP - FRAME), "from ring 3 without IST: RSP0"
    CHECK save_rsp0_cs(%rip), $SEL_UCODE, "from ring 3: pushed CS"

    LOG "#DF: #PF while pushing the #PF frame"
    GATE VEC_DF, 2, 0
    mov $STACK_VA + 4096, %eax
    mov %rax, tss_area + TSS_IST3(%rip)
    GATE VEC_PF, 3, 0               /* #PF frames go to an unmapped page */
    mov $20, %edi
    xor %esi, %esi
    call set_pte
    mov $21, %edi
    call set_pte
    EXPECT VEC_DF, 1f
    mov TEST_VA + 21 * 4096, %rax   /* #PF -> its delivery #PFs -> #DF */
1:  CHECK exc_vec(%rip), $VEC_DF, "#PF during #PF delivery: vector"
    CHECK exc_err(%rip), $0, "#DF error code"
    CHECK exc_frame(%rip), $(IST2_TOP - FRAME), "#DF frame on IST2"
    CHECK exc_cs(%rip), $SEL_KCODE, "#DF: pushed CS"
    CHECK_RANGE exc_cr2(%rip), $STACK_VA, $(STACK_VA + 4096), "#DF: CR2 = the unmapped IST3 stack"
    GATE VEC_PF, 0, 0
    EXPECT VEC_PF, 1f               /* #PF works normally again */
.Lpf_again:
    mov TEST_VA + 21 * 4096, %rax
1:  CHECK_FAULT VEC_PF, $0, $.Lpf_again, "#PF after the double fault"
    CHECK exc_cr2(%rip), $(TEST_VA + 21 * 4096), "#PF after the double fault: CR2"

    LOG "#DF: #PF with a not-present gate"
    andb $0x7f, idt + 16 * VEC_PF + 5(%rip)    /* clear P */
    EXPECT VEC_DF, 1f
    mov TEST_VA + 21 * 4096, %rax
1:  CHECK exc_vec(%rip), $VEC_DF, "#PF -> #NP on delivery: vector"
    CHECK exc_err(%rip), $0, "#PF -> #NP: #DF error code"
    CHECK exc_frame(%rip), $(IST2_TOP - FRAME), "#PF -> #NP: #DF frame on IST2"
    orb $0x80, idt + 16 * VEC_PF + 5(%rip)

    LOG "#DF: #GP with a not-present gate"
    andb $0x7f, idt + 16 * VEC_GP + 5(%rip)
    movabs $0x8000000000000000, %rbx
    EXPECT VEC_DF, 1f
    mov (%rbx), %rax
1:  CHECK exc_vec(%rip), $VEC_DF, "#GP -> #NP on delivery: vector"
    CHECK exc_err(%rip), $0, "#GP -> #NP: #DF error code"
    orb $0x80, idt + 16 * VEC_GP + 5(%rip)

    LOG "benign exception with a not-present gate: #NP, no #DF"
    andb $0x7f, idt + 16 * VEC_UD + 5(%rip)
    EXPECT VEC_NP, 1f
.Lud_np:
    ud2
1:  CHECK_FAULT VEC_NP, $(VEC_UD * 8 + 2 + 1), $.Lud_np, "#UD through a not-present gate -> #NP(IDT, EXT)"
    orb $0x80, idt + 16 * VEC_UD + 5(%rip)
    andb $0x7f, idt + 16 * 0x45 + 5(%rip)
    EXPECT VEC_NP, 1f
.Lint_np:
    int $0x45
1:  CHECK_FAULT VEC_NP, $(0x45 * 8 + 2), $.Lint_np, "INT 0x45 through a not-present gate -> #NP(IDT)"
    orb $0x80, idt + 16 * 0x45 + 5(%rip)
    ret

/* ring 3: INT through a DPL3 IST gate and a DPL3 non-IST gate */
user_ist:
    EXPECT 0x43, 0
    int $0x43
    mov exc_frame(%rip), %rax
    mov %rax, save_ist_frame(%rip)
    mov exc_ss(%rip), %rax
    mov %rax, save_ist_ss(%rip)
    EXPECT 0x44, 0
    int $0x44
    mov exc_frame(%rip), %rax
    mov %rax, save_rsp0_frame(%rip)
    mov exc_cs(%rip), %rax
    mov %rax, save_rsp0_cs(%rip)
    mov $3, %eax
    ret

    .data
save_ist_frame:  .quad 0
save_ist_ss:     .quad 0
save_rsp0_frame: .quad 0
save_rsp0_cs:    .quad 0
