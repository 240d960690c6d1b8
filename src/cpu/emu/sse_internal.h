/* sse_internal.h — shared helpers of the SSE/SSE2/MMX modules (ops_sse*.c).
 *
 * XMM values travel as host __m128i: the emulator only runs on x86-64 hosts, so
 * the host's SSE2 instructions give the architectural results of the packed
 * integer forms directly, and floating-point forms run the very same host
 * instruction under the guest's MXCSR (see fp_exec). */
#ifndef UNUM_CPU_EMU_SSE_INTERNAL_H
#define UNUM_CPU_EMU_SSE_INTERNAL_H

#include <emmintrin.h>

#include "cpu/emu/emu.h"

#define SSE_INLINE static inline __attribute__((always_inline))

/* MXCSR fields */
#define MXCSR_FLAGS 0x003fu /* IE DE ZE OE UE PE */
#define MXCSR_MASKS 0x1f80u /* IM DM ZM OM UM PM */
#define MXCSR_VALID 0xffffu /* bits the guest may set (MXCSR_MASK, DAZ included) */

/* FSW bits used by the MMX transition */
#define FSW_ES  0x0080u
#define FSW_TOP 0x3800u
#define FSW_B   0x8000u

/* Module init functions (called from emu_ops_sse_init) */
void sse_mov_init(void);
void sse_int_init(void);
void sse_fp_init(void);

/* ---- exception checks ---- */

_Noreturn void sse_check_fail(struct emu_cpu *c, const struct insn *in);
void mmx_check_slow(struct emu_cpu *c, const struct insn *in); /* raises, or returns */

/* Every SSE instruction: CR0.EM or !CR4.OSFXSR -> #UD, CR0.TS -> #NM. (A LOCK
 * prefix never gets here: the decoder turns it into #UD for these opcodes.) */
SSE_INLINE void sse_enter(struct emu_cpu *c, const struct insn *in)
{
    if (unlikely((c->s.cr0 & (CR0_EM | CR0_TS)) || !(c->s.cr4 & CR4_OSFXSR)))
        sse_check_fail(c, in);
}

/* Instructions on MMX registers: CR0.EM -> #UD, CR0.TS -> #NM, pending x87
 * exception -> #MF (CR0.NE; with NE clear the legacy FERR# path is not modelled). */
SSE_INLINE void mmx_enter(struct emu_cpu *c, const struct insn *in)
{
    if (unlikely((c->s.cr0 & (CR0_EM | CR0_TS)) || (c->s.fpu.fsw & FSW_ES)))
        mmx_check_slow(c, in);
}

/* SSE instruction that also names an MMX register (CVTPI2PS, MOVQ2DQ, ...) */
SSE_INLINE void sse_mmx_enter(struct emu_cpu *c, const struct insn *in)
{
    sse_enter(c, in);
    if (unlikely(c->s.fpu.fsw & FSW_ES) && (c->s.cr0 & CR0_NE))
        emu_raise(c, EXC_MF, 0, false);
}

/* Misaligned 16-byte operand of a legacy SSE instruction -> #GP(0) */
SSE_INLINE void check_align16(struct emu_cpu *c, uint64_t ea)
{
    if (unlikely(ea & 15))
        emu_gp(c, 0);
}

/* ---- XMM registers ---- */

SSE_INLINE __m128i xmm_get(struct emu_cpu *c, int r)
{
    return _mm_load_si128((const __m128i *)&c->s.fpu.xmm[r]);
}
SSE_INLINE void xmm_set(struct emu_cpu *c, int r, __m128i v)
{
    _mm_store_si128((__m128i *)&c->s.fpu.xmm[r], v);
}

/* ---- 16-byte memory access ---- */

void mem_read128_slow(struct emu_cpu *c, uint64_t ea, void *dst);
void mem_write128_slow(struct emu_cpu *c, uint64_t ea, const void *src);

SSE_INLINE __m128i mem_read128(struct emu_cpu *c, uint64_t ea)
{
    struct tlb_entry *e = &c->tlb_cur[(ea >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_r == (ea & ~0xfffull) && (ea & 0xfff) <= 0xff0))
        return _mm_loadu_si128((const __m128i *)(uintptr_t)(ea + e->addend));
    __m128i v;
    mem_read128_slow(c, ea, &v);
    return v;
}

SSE_INLINE void mem_write128(struct emu_cpu *c, uint64_t ea, __m128i v)
{
    struct tlb_entry *e = &c->tlb_cur[(ea >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag_w == (ea & ~0xfffull) && (ea & 0xfff) <= 0xff0 &&
               !(atomic_load_explicit(&c->v.mem->page_flags[e->gpa >> 12],
                                      memory_order_relaxed) & MEM_PF_CODE))) {
        _mm_storeu_si128((__m128i *)(uintptr_t)(ea + e->addend), v);
        return;
    }
    mem_write128_slow(c, ea, &v);
}

/* 128-bit source operand: XMM register or m128, which src128 requires aligned
 * (#GP(0) otherwise, as every legacy-SSE m128 but the MOVU* forms) */
SSE_INLINE __m128i src128(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3)
        return xmm_get(c, in->rm);
    uint64_t ea = emu_ea(c, in);
    check_align16(c, ea);
    return mem_read128(c, ea);
}
SSE_INLINE __m128i src128u(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3)
        return xmm_get(c, in->rm);
    return mem_read128(c, emu_ea(c, in));
}
/* Scalar source: low 32 or 64 bits of an XMM register or m32/m64 (upper lanes of
 * a memory operand read as zero) */
SSE_INLINE __m128i src32(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3)
        return xmm_get(c, in->rm);
    return _mm_cvtsi32_si128((int)vm_read(c, emu_ea(c, in), 4));
}
SSE_INLINE __m128i src64(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3)
        return xmm_get(c, in->rm);
    return _mm_cvtsi64_si128((long long)vm_read(c, emu_ea(c, in), 8));
}

/* ---- MMX registers: MMi is the mantissa of physical x87 register Ri ---- */

SSE_INLINE uint64_t mmx_get(struct emu_cpu *c, int r)
{
    uint64_t v;
    memcpy(&v, c->s.fpu.st[r & 7], 8);
    return v;
}
void mmx_tags_fill(struct emu_cpu *c);

/* Every MMX instruction but EMMS: TOP = 0 and every register non-empty. The full
 * tag word (what FSTENV shows) then classifies each register by its contents;
 * tags of registers that were already non-empty are current, so only empty ones
 * need classifying (out of line: only the first MMX instruction after x87 code).
 * Done after the operands are read so a faulting instruction changes nothing. */
SSE_INLINE void mmx_transition(struct emu_cpu *c)
{
    uint16_t t = c->s.fpu.ftw;
    c->s.fpu.fsw &= (uint16_t)~FSW_TOP;
    if (unlikely(t & (t >> 1) & 0x5555))
        mmx_tags_fill(c);
}
/* Writes MMi with exponent/sign all ones, as hardware does: the register's class
 * becomes "special" (tag 2) */
SSE_INLINE void mmx_set(struct emu_cpu *c, int r, uint64_t v)
{
    uint8_t *p = c->s.fpu.st[r & 7];
    memcpy(p, &v, 8);
    p[8] = p[9] = 0xff;
    mmx_transition(c);
    int sh = 2 * (r & 7);
    c->s.fpu.ftw = (uint16_t)((c->s.fpu.ftw & ~(3u << sh)) | (2u << sh));
}
/* 64-bit MMX source operand: MMX register or m64 */
SSE_INLINE uint64_t mmx_src(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3)
        return mmx_get(c, in->rm);
    return vm_read(c, emu_ea(c, in), 8);
}

SSE_INLINE __m128i q2x(uint64_t v) { return _mm_cvtsi64_si128((long long)v); }
SSE_INLINE uint64_t x2q(__m128i v) { return (uint64_t)_mm_cvtsi128_si64(v); }

/* ---- floating point on the host ----
 * A host operation runs one SSE instruction with the guest's MXCSR loaded (flags
 * cleared) and returns the host MXCSR read right after it; it restores the host
 * MXCSR itself. All of it sits in one asm statement so the compiler cannot move
 * the arithmetic away from the MXCSR switch. */
struct fpio {
    __m128i d, s;   /* destination (in/out) and source */
    uint64_t g;     /* general-purpose operand (in or out) */
    uint32_t flags; /* EFLAGS result of COMIS/UCOMIS */
};
typedef uint32_t (*fp_hostfn)(struct fpio *io, uint32_t csr);

void fp_exec_slow(struct emu_cpu *c, fp_hostfn f, struct fpio *io);

/* Runs f for the guest. With every exception masked (the usual case) the host
 * cannot trap; otherwise the slow path runs it with the guest's masks and turns
 * a host trap into #XM (#UD without CR4.OSXMMEXCPT), leaving *io's outputs
 * meaningless. Returns only when the caller must write the results. */
SSE_INLINE void fp_exec(struct emu_cpu *c, fp_hostfn f, struct fpio *io)
{
    uint32_t csr = c->s.fpu.mxcsr;
    if (likely((csr & MXCSR_MASKS) == MXCSR_MASKS)) {
        uint32_t out = f(io, csr & ~MXCSR_FLAGS);
        c->s.fpu.mxcsr = csr | (out & MXCSR_FLAGS);
        return;
    }
    fp_exec_slow(c, f, io);
}

#endif
