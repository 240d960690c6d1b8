/* sse_internal.h — shared helpers of the SSE/SSE2/MMX modules (ops_sse*.c).
 *
 * XMM values travel as host __m128i: the emulator only runs on x86-64 hosts, so
 * the host's SSE2 instructions give the architectural results of the packed
 * integer forms directly, and floating-point forms run the very same host
 * instruction under the guest's MXCSR (see "lazy host MXCSR" and FP_EXEC). */
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
    if (unlikely((c->s.cr0 & (CR0_EM | CR0_TS)) || !(c->s.cr4 & CR4_OSFXSR))) sse_check_fail(c, in);
}

/* Instructions on MMX registers: CR0.EM -> #UD, CR0.TS -> #NM, pending x87
 * exception -> #MF (CR0.NE; with NE clear the legacy FERR# path is not modelled). */
SSE_INLINE void mmx_enter(struct emu_cpu *c, const struct insn *in)
{
    if (unlikely((c->s.cr0 & (CR0_EM | CR0_TS)) || (c->s.fpu.fsw & FSW_ES))) mmx_check_slow(c, in);
}

/* SSE instruction that also names an MMX register (CVTPI2PS, MOVQ2DQ, ...) */
SSE_INLINE void sse_mmx_enter(struct emu_cpu *c, const struct insn *in)
{
    sse_enter(c, in);
    if (unlikely(c->s.fpu.fsw & FSW_ES) && (c->s.cr0 & CR0_NE)) emu_raise(c, EXC_MF, 0, false);
}

/* Misaligned 16-byte operand of a legacy SSE instruction -> #GP(0) */
SSE_INLINE void check_align16(struct emu_cpu *c, uint64_t ea)
{
    if (unlikely(ea & 15)) emu_gp(c, 0);
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
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(ea)];
    if (likely(e->tag_r == (ea & ~0xfffull) && (ea & 0xfff) <= 0xff0))
        return _mm_loadu_si128((const __m128i *)(uintptr_t)(ea + e->addend));
    __m128i v;
    mem_read128_slow(c, ea, &v);
    return v;
}

SSE_INLINE void mem_write128(struct emu_cpu *c, uint64_t ea, __m128i v)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(ea)];
    if (likely(e->tag_w == (ea & ~0xfffull) && (ea & 0xfff) <= 0xff0 &&
               !(atomic_load_explicit(&c->v.mem->page_flags[e->gpa >> 12], memory_order_relaxed) &
                 MEM_PF_CODE))) {
        _mm_storeu_si128((__m128i *)(uintptr_t)(ea + e->addend), v);
        return;
    }
    mem_write128_slow(c, ea, &v);
}

/* 128-bit source operand: XMM register or m128, which src128 requires aligned
 * (#GP(0) otherwise, as every legacy-SSE m128 but the MOVU* forms) */
SSE_INLINE __m128i src128(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3) return xmm_get(c, in->rm);
    uint64_t ea = emu_ea(c, in);
    check_align16(c, ea);
    return mem_read128(c, ea);
}
SSE_INLINE __m128i src128u(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3) return xmm_get(c, in->rm);
    return mem_read128(c, emu_ea(c, in));
}
/* Scalar source: low 32 or 64 bits of an XMM register or m32/m64 (upper lanes of
 * a memory operand read as zero) */
SSE_INLINE __m128i src32(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3) return xmm_get(c, in->rm);
    return _mm_cvtsi32_si128((int)vm_read(c, emu_ea(c, in), 4));
}
SSE_INLINE __m128i src64(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3) return xmm_get(c, in->rm);
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
    if (unlikely(t & (t >> 1) & 0x5555)) mmx_tags_fill(c);
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
    if (in->mod == 3) return mmx_get(c, in->rm);
    return vm_read(c, emu_ea(c, in), 8);
}

SSE_INLINE __m128i q2x(uint64_t v)
{
    return _mm_cvtsi64_si128((long long)v);
}
SSE_INLINE uint64_t x2q(__m128i v)
{
    return (uint64_t)_mm_cvtsi128_si64(v);
}

/* ---- the guest MXCSR on the host ("lazy host MXCSR") ----
 * While a vCPU thread runs guest code the host MXCSR belongs to the guest: it
 * holds the guest's control bits (RC, DAZ, FTZ) with every exception masked, and
 * the exception flags guest instructions raise accumulate in it. So an SSE FP
 * instruction of a guest with all exceptions masked (the usual 0x1f80) is the
 * bare host instruction: no MXCSR switch, nothing to merge.
 *
 * Invariant while vCPU c owns the host MXCSR (mxcsr_owner == c):
 *   host MXCSR = (s.fpu.mxcsr & VALID) | MASKS, plus flags F_host;
 *   the guest's MXCSR is s.fpu.mxcsr | F_host.
 * s.fpu.mxcsr's control bits are always current (only LDMXCSR, FXRSTOR and
 * state resets change them, and those reload the host); its flags may lag
 * behind until the next sync, which ORs F_host in (flags are sticky; anything
 * that clears them reloads the host).
 *
 * Switch points: emu_run loads the guest's MXCSR on entry (and after its setjmp:
 * an exception may longjmp from a stretch run under the host's) and gives the
 * host its own back on return; device callbacks (port and MMIO accesses, the
 * interrupt acknowledge of the run loop) and CPUID (whose one-time TSC
 * calibration uses doubles) run under the host's. Host code that runs on the vCPU
 * thread between guest instructions must not do SSE floating point: the
 * emulator's own C code does none (integer SSE, as in memcpy, is fine), nor do
 * the platform MSR callbacks (local APIC), which are not switched. Signal
 * handlers start with a fresh FP state (Linux resets it on delivery). */
extern __thread struct emu_cpu *mxcsr_owner; /* vCPU whose MXCSR the host holds */
extern __thread uint32_t mxcsr_saved;        /* the host's own MXCSR meanwhile */

/* "memory": keeps the switch on its side of the calls into device code */
SSE_INLINE uint32_t host_stmxcsr(void)
{
    uint32_t v;
    __asm__ volatile("stmxcsr %0" : "=m"(v) : : "memory");
    return v;
}
SSE_INLINE void host_ldmxcsr(uint32_t v)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(v) : "memory");
}

/* The host MXCSR of the guest's MXCSR g */
SSE_INLINE uint32_t mxcsr_live(uint32_t g)
{
    return (g & MXCSR_VALID) | MXCSR_MASKS;
}

/* Hands the host MXCSR back to the host: s.fpu.mxcsr gets the accumulated flags.
 * Returns whether c held it (false: nothing done). */
SSE_INLINE bool emu_mxcsr_host(struct emu_cpu *c)
{
    if (mxcsr_owner != c) return false;
    c->s.fpu.mxcsr |= host_stmxcsr() & MXCSR_FLAGS;
    host_ldmxcsr(mxcsr_saved);
    mxcsr_owner = NULL;
    return true;
}

/* Gives the host MXCSR to c's guest (idempotent) */
SSE_INLINE void emu_mxcsr_guest(struct emu_cpu *c)
{
    if (mxcsr_owner == c) return;
    if (unlikely(mxcsr_owner))
        emu_mxcsr_host(mxcsr_owner); /* another vCPU on this thread: not expected */
    mxcsr_saved = host_stmxcsr();
    host_ldmxcsr(mxcsr_live(c->s.fpu.mxcsr));
    mxcsr_owner = c;
}

/* Brings s.fpu.mxcsr up to date (before reading it) */
SSE_INLINE void mxcsr_sync(struct emu_cpu *c)
{
    if (mxcsr_owner == c) c->s.fpu.mxcsr |= host_stmxcsr() & MXCSR_FLAGS;
}

/* After s.fpu.mxcsr was written: the host follows */
SSE_INLINE void mxcsr_reload(struct emu_cpu *c)
{
    if (mxcsr_owner == c) host_ldmxcsr(mxcsr_live(c->s.fpu.mxcsr));
}

/* The guest's MXCSR (STMXCSR) */
SSE_INLINE uint32_t emu_stmxcsr(struct emu_cpu *c)
{
    mxcsr_sync(c);
    return c->s.fpu.mxcsr;
}

/* ---- floating point on the host ----
 * Every FP instruction has two host forms. The fast one is the bare host
 * instruction, for a guest with all exceptions masked: the host MXCSR already
 * is the guest's (see above). The slow one, for a guest with some exception
 * unmasked, runs it with the guest's MXCSR itself loaded (flags cleared) and
 * returns the host MXCSR read right after it; it restores the host MXCSR
 * itself. All of it sits in one asm statement so the compiler cannot move the
 * arithmetic away from the MXCSR switch. */
struct fpio {
    __m128i d, s;   /* destination (in/out) and source */
    uint64_t g;     /* general-purpose operand (in or out) */
    uint32_t flags; /* EFLAGS result of COMIS/UCOMIS */
};
typedef uint32_t (*fp_hostfn)(struct fpio *io, uint32_t csr);

/* Runs slow form f for a guest with some exception unmasked, turning a host
 * trap into #XM (#UD without CR4.OSXMMEXCPT). Returns only when the caller must
 * write the results. */
void fp_exec_slow(struct emu_cpu *c, fp_hostfn f, struct fpio *io);

/* Every exception masked: the fast form applies */
SSE_INLINE bool fp_masked(const struct emu_cpu *c)
{
    return (c->s.fpu.mxcsr & MXCSR_MASKS) == MXCSR_MASKS;
}

/* fp_exec_slow on a copy, so the caller's fpio does not escape and can live in
 * registers on the fast path */
SSE_INLINE void fp_exec_copy(struct emu_cpu *c, fp_hostfn f, struct fpio *io)
{
    struct fpio t = *io;
    fp_exec_slow(c, f, &t);
    *io = t;
}

/* Runs host operation `name` (fast_name / host_name) for the guest */
#define FP_EXEC(c, name, io)                                                                       \
    do {                                                                                           \
        if (likely(fp_masked(c)))                                                                  \
            fast_##name(io);                                                                       \
        else                                                                                       \
            fp_exec_copy(c, host_##name, io);                                                      \
    } while (0)

#endif
