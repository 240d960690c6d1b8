/* paging_pf.S — 4-level paging: translation, #PF with CR2 and error codes
 * (P/W/U/RSVD/I), accessed/dirty bits, CR0.WP, NX (EFER.NXE), U/S, 2 MiB and
 * 1 GiB pages, page-crossing accesses, INVLPG and CR3 reloads.
 *
 * Uses the test area (4 KiB PTEs at TEST_VA, set with set_pte) backed by
 * physical pages at PHYS_SCRATCH, which are also identity-mapped so ring 0 can
 * look at the same bytes through a second mapping.
 */
#define TEST_NAME "paging_pf"
#include "common.h"

#define TA(i)   (TEST_VA + (i) * 4096)
#define PHYS(i) (PHYS_SCRATCH + (i) * 4096)
#define PTE(i)  (pt_test + (i) * 8)
#define BIG_VA  (TEST_VA + 0x200000)     /* pd_test[1]: a 2 MiB page */
#define BIG_PHYS 0x1000000

/* MAP i, value: PTE i of the test area = value (a 32-bit constant), INVLPG.
 * Clobbers RDI and RSI. */
.macro MAP idx, val
    mov $\idx, %edi
    mov $(\val), %esi
    call set_pte
.endm

/* SET_BIG value: pd_test[1] = value (2 MiB page at BIG_VA), INVLPG */
.macro SET_BIG val
    movq $(\val), pd_test + 8(%rip)
    mov $BIG_VA, %eax
    invlpg (%rax)
.endm

test_main:
    LOG "CPUID"
    mov $0x80000001, %eax
    cpuid
    bt $20, %edx
    setc %al
    movzbl %al, %eax
    CHECK %rax, $1, "CPUID.80000001h:EDX.NX"
    mov $0x80000008, %eax
    cpuid
    movzbl %al, %eax
    mov %rax, maxphyaddr(%rip)
    CHECK_RANGE %rax, $36, $53, "CPUID.80000008h MAXPHYADDR"

    LOG "not-present pages"
    MAP 0, 0
    EXPECT VEC_PF, 1f
.Lnp_read:
    mov TA(0) + 0x123, %rax
1:  CHECK_FAULT VEC_PF, $0, $.Lnp_read, "read of a not-present page"
    CHECK exc_cr2(%rip), $(TA(0) + 0x123), "read of a not-present page: CR2"
    mov %cr2, %rax
    CHECK %rax, $(TA(0) + 0x123), "CR2 read back after the handler"
    EXPECT VEC_PF, 1f
.Lnp_write:
    movl $1, TA(0) + 0xffc
1:  CHECK_FAULT VEC_PF, $PF_W, $.Lnp_write, "write to a not-present page"
    CHECK exc_cr2(%rip), $(TA(0) + 0xffc), "write to a not-present page: CR2"
    /* not present at the PDE level: pd_test[3] is empty */
    EXPECT VEC_PF, 1f
.Lnp_pde:
    mov TEST_VA + 3 * 0x200000 + 8, %rax
1:  CHECK_FAULT VEC_PF, $0, $.Lnp_pde, "read through a not-present PDE"
    CHECK exc_cr2(%rip), $(TEST_VA + 3 * 0x200000 + 8), "not-present PDE: CR2"

    LOG "translation, accessed and dirty bits"
    movq $0x1111222233334444, %rax
    mov %rax, PHYS(0)
    mov %rax, PHYS(1)
    andq $~PTE_A, pd_test(%rip)     /* clear A in the PDE too (then flush it) */
    MAP 0, PHYS(0) | PTE_P | PTE_W
    mov TA(0), %rbx
    movq $0x1111222233334444, %rax
    CHECK %rbx, %rax, "read through a 4 KiB mapping"
    mov PTE(0), %rax
    and $(PTE_A | PTE_D), %eax
    CHECK %rax, $PTE_A, "read sets A, not D"
    mov pd_test(%rip), %rax
    and $PTE_A, %eax
    CHECK %rax, $PTE_A, "walk sets A in the PDE"
    movl $0xabcd, TA(0) + 8
    mov PTE(0), %rax
    and $(PTE_A | PTE_D), %eax
    CHECK %rax, $(PTE_A | PTE_D), "write sets D"
    mov PHYS(0) + 8, %eax
    CHECK %rax, $0xabcd, "write visible through the identity alias"
    /* a write hitting a TLB entry that was filled by a read must still set D */
    MAP 0, PHYS(0) | PTE_P | PTE_W
    mov TA(0), %rax
    movl $0x5678, TA(0) + 16
    mov PTE(0), %rax
    and $(PTE_A | PTE_D), %eax
    CHECK %rax, $(PTE_A | PTE_D), "write after a read sets D"
    /* remap to another frame: INVLPG (in set_pte) must drop the old one */
    MAP 0, PHYS(1) | PTE_P | PTE_W
    movl $0x77, TA(0) + 8
    mov PHYS(1) + 8, %eax
    CHECK %rax, $0x77, "after remap + INVLPG the new frame is used"

    LOG "reserved bits"
    mov maxphyaddr(%rip), %rcx
    mov $PHYS(1) | PTE_P | PTE_W, %esi
    bts %rcx, %rsi                  /* first physical-address bit the CPU lacks */
    mov $1, %edi
    call set_pte
    EXPECT VEC_PF, 1f
.Lrsvd_read:
    mov TA(1) + 0x10, %rax
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_RSVD), $.Lrsvd_read, "read with a reserved PTE bit"
    CHECK exc_cr2(%rip), $(TA(1) + 0x10), "reserved PTE bit: CR2"
    EXPECT VEC_PF, 1f
.Lrsvd_write:
    movb $1, TA(1) + 0x10
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_W | PF_RSVD), $.Lrsvd_write, "write with a reserved PTE bit"
    /* a 2 MiB PDE with bit 13 set (must be 0: the frame is 2 MiB aligned) */
    SET_BIG BIG_PHYS | PTE_P | PTE_W | PTE_PS | 0x2000
    EXPECT VEC_PF, 1f
.Lrsvd_pde:
    mov BIG_VA, %rax
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_RSVD), $.Lrsvd_pde, "2 MiB PDE with a reserved bit"
    /* with EFER.NXE = 0 the XD bit itself is reserved */
    mov $PHYS(1) | PTE_P | PTE_W, %esi
    bts $PTE_NX_BIT, %rsi
    mov $1, %edi
    call set_pte
    mov $MSR_EFER, %ecx
    rdmsr
    and $~EFER_NXE, %eax
    wrmsr
    EXPECT VEC_PF, 1f
.Lrsvd_nx:
    mov TA(1), %rax
1:  mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_NXE, %eax
    wrmsr
    CHECK_FAULT VEC_PF, $(PF_P | PF_RSVD), $.Lrsvd_nx, "XD bit set while EFER.NXE=0"
    mov TA(1), %rax                 /* with NXE=1 the same PTE is fine for reads */

    /* PS is reserved in a PML4E: pml4[1] covers 512 GiB .. 1 TiB */
    movq $pdpt + (PTE_P | PTE_W | PTE_PS), pml4 + 8(%rip)
    movabs $0x8000000000, %rbx
    invlpg (%rbx)
    EXPECT VEC_PF, 1f
.Lrsvd_pml4:
    mov (%rbx), %rax
1:  movq $0, pml4 + 8(%rip)
    CHECK_FAULT VEC_PF, $(PF_P | PF_RSVD), $.Lrsvd_pml4, "PML4E with PS set"
    CHECK exc_cr2(%rip), %rbx, "PML4E with PS set: CR2"

    LOG "read-only pages and CR0.WP"
    movl $0x1234, PHYS(2)
    MAP 2, PHYS(2) | PTE_P | PTE_U
    mov TA(2), %eax
    CHECK %rax, $0x1234, "read of a read-only page"
    EXPECT VEC_PF, 1f
.Lro_write:
    movl $0x99, TA(2)
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_W), $.Lro_write, "CPL0 write to a read-only page, WP=1"
    CHECK exc_cr2(%rip), $TA(2), "read-only write: CR2"
    mov PHYS(2), %eax
    CHECK %rax, $0x1234, "faulting write did not store"
    /* WP=0: supervisor writes ignore R/W */
    mov %cr0, %rax
    and $~CR0_WP, %eax
    mov %rax, %cr0
    mov $TA(2), %eax
    invlpg (%rax)
    movl $0x99, TA(2)
    mov PHYS(2), %eax
    CHECK %rax, $0x99, "CPL0 write to a read-only page with WP=0 stores"
    /* ... but user writes still fault */
    mov $user_ro_write, %edi
    call call_user
    CHECK %rax, $1, "user write to a read-only page ran"
    mov %cr0, %rax
    or $CR0_WP, %eax
    mov %rax, %cr0
    mov $TA(2), %eax
    invlpg (%rax)
    EXPECT VEC_PF, 1f
.Lro_write2:
    movl $0x98, TA(2)
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_W), $.Lro_write2, "read-only write faults again after WP=1"
    /* R/W=0 in a 2 MiB PDE */
    SET_BIG BIG_PHYS | PTE_P | PTE_PS
    EXPECT VEC_PF, 1f
.Lro_pde:
    movb $1, BIG_VA + 5
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_W), $.Lro_pde, "write to a read-only 2 MiB page"
    CHECK exc_cr2(%rip), $(BIG_VA + 5), "read-only 2 MiB page: CR2"

    LOG "user/supervisor"
    MAP 3, PHYS(3) | PTE_P | PTE_W               /* supervisor page */
    MAP 4, PHYS(4) | PTE_P | PTE_W | PTE_U       /* user page */
    movb $0xc3, PHYS(3)                          /* RET, for the fetch test */
    SET_BIG BIG_PHYS | PTE_P | PTE_W | PTE_PS    /* supervisor 2 MiB page */
    mov $user_us, %edi
    call call_user
    CHECK %rax, $2, "user/supervisor checks ran"

    LOG "NX"
    movb $0xc3, PHYS(5)                          /* RET */
    mov $PHYS(5) | PTE_P | PTE_W, %esi
    bts $PTE_NX_BIT, %rsi
    mov $5, %edi
    call set_pte
    movzbl TA(5), %eax
    CHECK %rax, $0xc3, "NX page is readable"
    mov $TA(5), %eax
    EXPECT VEC_PF, 1f
    jmp *%rax                       /* fetch from an NX page */
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_I), $TA(5), "fetch from an NX page"
    CHECK exc_cr2(%rip), $TA(5), "NX fetch: CR2"
    MAP 5, PHYS(5) | PTE_P | PTE_W               /* clear NX: now it runs */
    mov $TA(5), %eax
    call *%rax
    MAP 6, 0
    mov $TA(6) + 0x40, %eax
    EXPECT VEC_PF, 1f
    jmp *%rax                       /* fetch from a not-present page */
1:  CHECK_FAULT VEC_PF, $PF_I, $(TA(6) + 0x40), "fetch from a not-present page"
    CHECK exc_cr2(%rip), $(TA(6) + 0x40), "not-present fetch: CR2"
    /* NX in the 2 MiB PDE */
    movb $0xc3, BIG_PHYS
    movq $BIG_PHYS | PTE_P | PTE_W | PTE_PS, %rax
    bts $PTE_NX_BIT, %rax
    mov %rax, pd_test + 8(%rip)
    mov $BIG_VA, %eax
    invlpg (%rax)
    EXPECT VEC_PF, 1f
    jmp *%rax
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_I), $BIG_VA, "fetch from an NX 2 MiB page"

    LOG "accesses that cross a page boundary"
    MAP 7, PHYS(7) | PTE_P | PTE_W
    MAP 8, 0
    movq $0, PHYS(7) + 4088
    EXPECT VEC_PF, 1f
.Lsplit_read:
    mov TA(8) - 4, %rax             /* 4 bytes on a present page, 4 on a missing one */
1:  CHECK_FAULT VEC_PF, $0, $.Lsplit_read, "page-crossing read"
    CHECK exc_cr2(%rip), $TA(8), "page-crossing read: CR2 = first byte on the missing page"
    mov $-1, %rax
    EXPECT VEC_PF, 1f
.Lsplit_write:
    mov %rax, TA(8) - 4
1:  CHECK_FAULT VEC_PF, $PF_W, $.Lsplit_write, "page-crossing write"
    CHECK exc_cr2(%rip), $TA(8), "page-crossing write: CR2"
    mov PHYS(7) + 4088, %rax
    CHECK %rax, $0, "page-crossing write that faults stores nothing"

    LOG "PUSH and REP MOVSB that fault part-way"
    /* #PF on a push to a not-present stack page: the #PF frame goes to IST1 */
    mov $VEC_PF, %edi
    mov $isr_stubs + 16 * VEC_PF, %esi
    mov $1, %edx
    xor %ecx, %ecx
    call set_gate
    mov %rsp, %r12
    mov $TA(8) + 8, %esp            /* TA(8) is not present */
    EXPECT VEC_PF, 1f
.Lpush_np:
    push %r12
1:  mov %rsp, %rbx
    mov %r12, %rsp
    mov $VEC_PF, %edi               /* back to the normal #PF gate */
    mov $isr_stubs + 16 * VEC_PF, %esi
    xor %edx, %edx
    call set_gate
    CHECK_FAULT VEC_PF, $PF_W, $.Lpush_np, "PUSH to a not-present stack page"
    CHECK exc_cr2(%rip), $TA(8), "PUSH to a not-present stack page: CR2"
    CHECK exc_rsp(%rip), $(TA(8) + 8), "faulting PUSH leaves RSP alone"
    /* REP MOVSB runs into a not-present page after 8 bytes: the iterations done
     * stay done, RCX/RSI/RDI say where it stopped, RIP points at the REP MOVSB */
    movq $0, PHYS(7) + 4088
    mov $src16, %esi
    mov $TA(8) - 8, %edi
    mov $16, %ecx
    EXPECT VEC_PF, 1f
.Lrep_np:
    rep movsb
1:  CHECK_FAULT VEC_PF, $PF_W, $.Lrep_np, "REP MOVSB into a not-present page"
    CHECK exc_cr2(%rip), $TA(8), "REP MOVSB: CR2"
    CHECK %rcx, $8, "REP MOVSB: RCX = bytes left"
    CHECK %rdi, $TA(8), "REP MOVSB: RDI at the fault"
    CHECK %rsi, $(src16 + 8), "REP MOVSB: RSI at the fault"
    mov PHYS(7) + 4088, %rax
    CHECK %rax, src16(%rip), "REP MOVSB: the first 8 bytes were copied"
    push %rsi
    push %rdi
    MAP 8, PHYS(8) | PTE_P | PTE_W  /* map it and finish the copy */
    pop %rdi
    pop %rsi
    rep movsb
    CHECK %rcx, $0, "REP MOVSB restarted: RCX"
    mov PHYS(8), %rax
    CHECK %rax, src16 + 8(%rip), "REP MOVSB restarted: the rest was copied"

    LOG "two pages on one TLB entry"
    /* TA(12) and TA(259) share a TLB entry (TLB_INDEX: page + 9 * (page >> 8), so
     * here pages 247 apart), and each fill of one moves the other to the entry's
     * victim way. Whatever holds a translation must forget it on INVLPG and CR3
     * writes, and a read-filled one must not let a write skip setting D. */
    movl $0xc0c0, PHYS(12)
    movl $0xd0d0, PHYS(13)
    movl $0xe0e0, PHYS(14)
    movl $0xf0f0, PHYS(15)
    MAP 12, PHYS(12) | PTE_P | PTE_W
    MAP 259, PHYS(13) | PTE_P | PTE_W
    mov TA(12), %eax
    mov TA(259), %eax
    mov TA(12), %eax
    CHECK %rax, $0xc0c0, "a page read back after another on its TLB entry"
    mov TA(259), %eax
    CHECK %rax, $0xd0d0, "... and the other one again"
    MAP 12, PHYS(14) | PTE_P | PTE_W                /* INVLPG while displaced */
    mov TA(12), %eax
    CHECK %rax, $0xe0e0, "remap + INVLPG of a displaced page: the new frame"
    mov TA(259), %eax                               /* TA(12), read-filled, displaced */
    movl $0x5a, TA(12) + 4
    mov PTE(12), %rax
    and $(PTE_A | PTE_D), %eax
    CHECK %rax, $(PTE_A | PTE_D), "write to a displaced read-filled page sets D"
    mov PHYS(14) + 4, %eax
    CHECK %rax, $0x5a, "... and stores to its frame"
    mov TA(259), %eax                               /* TA(12) displaced again */
    movq $PHYS(15) | PTE_P | PTE_W, PTE(12)         /* no INVLPG ... */
    mov %cr3, %rax
    mov %rax, %cr3                                  /* ... a CR3 write drops it */
    mov TA(12), %eax
    CHECK %rax, $0xf0f0, "CR3 reload drops a displaced translation"

    LOG "CR3 reload and 1 GiB pages"
    movl $0xaaaa, PHYS(10)
    movl $0xbbbb, PHYS(11)
    MAP 9, PHYS(10) | PTE_P | PTE_W
    mov TA(9), %eax
    CHECK %rax, $0xaaaa, "read before the remap"
    movq $PHYS(11) | PTE_P | PTE_W, PTE(9)        /* no INVLPG ... */
    mov %cr3, %rax
    mov %rax, %cr3                                  /* ... a CR3 write flushes it */
    mov TA(9), %eax
    CHECK %rax, $0xbbbb, "CR3 reload drops the old translation"
    /* pdpt[2]: 1 GiB page at VA 2 GiB mapping physical 0 */
    movq $PTE_P | PTE_W | PTE_PS, pdpt + 16(%rip)
    mov $0x80000000 + PHYS(11), %eax
    mov (%rax), %ebx
    CHECK %rbx, $0xbbbb, "read through a 1 GiB page"
    movq $0, pdpt + 16(%rip)
    mov %cr3, %rax
    mov %rax, %cr3
    mov $0x80000000 + PHYS(11), %eax
    EXPECT VEC_PF, 1f
.Lgone:
    mov (%rax), %ebx
1:  CHECK_FAULT VEC_PF, $0, $.Lgone, "1 GiB page removed"
    ret

/* ring 3 while CR0.WP=0: user writes to a read-only page still fault */
user_ro_write:
    EXPECT VEC_PF, 1f
.Lro_user:
    movl $0x97, TA(2)
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_W | PF_U), $.Lro_user, "CPL3 write to a read-only page, WP=0"
    mov $1, %eax
    ret

/* ring 3: supervisor pages fault with U set, user pages work */
user_us:
    EXPECT VEC_PF, 1f
.Lus_read:
    mov TA(3), %rax
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_U), $.Lus_read, "CPL3 read of a supervisor page"
    CHECK exc_cr2(%rip), $TA(3), "CPL3 read of a supervisor page: CR2"
    CHECK exc_cs(%rip), $SEL_UCODE, "CPL3 read of a supervisor page: pushed CS"
    EXPECT VEC_PF, 1f
.Lus_write:
    movl $1, TA(3) + 4
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_W | PF_U), $.Lus_write, "CPL3 write to a supervisor page"
    mov $TA(3), %eax
    EXPECT VEC_PF, 1f
    call *%rax                      /* fetch: pushes the return address, then faults */
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_U | PF_I), $TA(3), "CPL3 fetch from a supervisor page"
    pop %rax                        /* the return address CALL pushed */
    EXPECT VEC_PF, 1f
.Lus_big:
    mov BIG_VA + 0x10, %rax
1:  CHECK_FAULT VEC_PF, $(PF_P | PF_U), $.Lus_big, "CPL3 read of a supervisor 2 MiB page"
    EXPECT VEC_PF, 1f
.Lus_np:
    mov TA(6), %rax
1:  CHECK_FAULT VEC_PF, $PF_U, $.Lus_np, "CPL3 read of a not-present page"
    movl $0x4444, TA(4)
    mov TA(4), %eax
    CHECK %rax, $0x4444, "CPL3 read/write of a user page"
    mov $2, %eax
    ret

    .data
maxphyaddr: .quad 0
src16: .quad 0x0807060504030201, 0x100f0e0d0c0b0a09
