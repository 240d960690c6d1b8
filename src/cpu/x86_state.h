/* x86_state.h — the architectural state of one x86-64 vCPU as a plain struct.
 *
 * Owns nothing but layout: every CPU implementer (the emulator today, KVM later)
 * reads and writes a vCPU through this struct, so a vCPU can be saved, moved to
 * another node or handed to another implementer. No pointers, no host state. */
#ifndef UNUM_CPU_X86_STATE_H
#define UNUM_CPU_X86_STATE_H

#include <stdint.h>

enum x86_gpr { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
enum x86_sreg { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_NONE = 7 };

/* RFLAGS bits */
#define FL_CF    (1u << 0)
#define FL_1     (1u << 1)
#define FL_PF    (1u << 2)
#define FL_AF    (1u << 4)
#define FL_ZF    (1u << 6)
#define FL_SF    (1u << 7)
#define FL_TF    (1u << 8)
#define FL_IF    (1u << 9)
#define FL_DF    (1u << 10)
#define FL_OF    (1u << 11)
#define FL_IOPL  (3u << 12)
#define FL_NT    (1u << 14)
#define FL_RF    (1u << 16)
#define FL_VM    (1u << 17)
#define FL_AC    (1u << 18)
#define FL_VIF   (1u << 19)
#define FL_VIP   (1u << 20)
#define FL_ID    (1u << 21)
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

/* Segment attribute word: descriptor bits 40..47 in 0..7, bits 52..55 in 12..15
 * (same packing as VMX access rights), plus SEGA_UNUSABLE. */
#define SEGA_TYPE     0x000f
#define SEGA_S        0x0010
#define SEGA_DPL(a)   ((int)(((a) >> 5) & 3))
#define SEGA_P        0x0080
#define SEGA_AVL      0x1000
#define SEGA_L        0x2000
#define SEGA_DB       0x4000
#define SEGA_G        0x8000
#define SEGA_UNUSABLE 0x10000

struct x86_seg {
    uint64_t base;
    uint32_t limit; /* byte granular, already scaled by G */
    uint32_t attr;
    uint16_t sel;
};

struct x86_dtable {
    uint64_t base;
    uint16_t limit;
};

typedef union {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t d[4];
    uint64_t q[2];
    int8_t sb[16];
    int16_t sw[8];
    int32_t sd[4];
    int64_t sq[2];
    float f[4];
    double df[2];
} __attribute__((aligned(16))) x86_xmm;

/* x87 + SSE state. st[] holds the physical registers R0..R7 (not stack order);
 * each is an 80-bit extended real in the low 10 bytes. ftw is the full tag word
 * (2 bits per physical register: 0 valid, 1 zero, 2 special, 3 empty). */
struct x86_fpu {
    uint16_t fcw, fsw, ftw, fop;
    uint16_t fcs, fds;
    uint32_t mxcsr;
    uint64_t fip, fdp;
    uint8_t st[8][16];
    x86_xmm xmm[16];
};

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)

#define CR4_VME        (1ull << 0)
#define CR4_PVI        (1ull << 1)
#define CR4_TSD        (1ull << 2)
#define CR4_DE         (1ull << 3)
#define CR4_PSE        (1ull << 4)
#define CR4_PAE        (1ull << 5)
#define CR4_MCE        (1ull << 6)
#define CR4_PGE        (1ull << 7)
#define CR4_PCE        (1ull << 8)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_UMIP       (1ull << 11)

#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

struct x86_msrs {
    uint64_t efer, star, lstar, cstar, sfmask, kernel_gs_base, tsc_aux;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, apic_base, misc_enable, tsc_deadline;
    uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16]; /* base/mask pairs */
    int64_t tsc_offset; /* guest TSC = host-derived TSC + offset */
};

struct x86_state {
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags; /* fully materialised when read through the interface */
    struct x86_seg seg[6];
    struct x86_seg ldtr, tr;
    struct x86_dtable gdtr, idtr;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t dr[8];
    struct x86_msrs msr;
    struct x86_fpu fpu;
};

/* Exception vectors */
enum {
    EXC_DE = 0,
    EXC_DB = 1,
    EXC_NMI = 2,
    EXC_BP = 3,
    EXC_OF = 4,
    EXC_BR = 5,
    EXC_UD = 6,
    EXC_NM = 7,
    EXC_DF = 8,
    EXC_TS = 10,
    EXC_NP = 11,
    EXC_SS = 12,
    EXC_GP = 13,
    EXC_PF = 14,
    EXC_MF = 16,
    EXC_AC = 17,
    EXC_MC = 18,
    EXC_XM = 19,
};

/* Page-fault error code bits */
#define PFEC_P    (1u << 0)
#define PFEC_W    (1u << 1)
#define PFEC_U    (1u << 2)
#define PFEC_RSVD (1u << 3)
#define PFEC_I    (1u << 4)

#endif
