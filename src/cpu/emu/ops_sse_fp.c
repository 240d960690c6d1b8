/* ops_sse_fp.c — SSE/SSE2 floating point: arithmetic, SQRT/RCP/RSQRT, MIN/MAX,
 * compares (CMPxx, COMIS, UCOMIS) and conversions.
 *
 * Each guest instruction runs as the same host instruction under the guest's
 * MXCSR (rounding, DAZ, FTZ, masks), so results and exception flags match the
 * hardware bit for bit. With every exception masked that is the bare host
 * instruction: the host MXCSR already holds the guest's (see "lazy host MXCSR"
 * in sse_internal.h). When the guest unmasks an exception the host runs the
 * instruction with those masks too: a host SIMD trap (SIGFPE) is caught, its
 * MXCSR flags recorded and all exceptions masked so the instruction completes;
 * the guest then gets #XM with exactly the flags the hardware would set and an
 * unchanged destination. */
#include "cpu/emu/sse_internal.h"

#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#define H(name) static void name(struct emu_cpu *c, const struct insn *in)

/* ---- host operations ----
 * HOP_*(name, ...) defines fast_name (the bare instruction: the host MXCSR is
 * already the guest's, all exceptions masked) and host_name (for fp_exec_slow:
 * switches to the given MXCSR around the instruction). */

/* Prologue/epilogue around one host instruction: save host MXCSR, load the
 * guest's, run, read the resulting flags, restore. */
#define HOST_PRE  "stmxcsr %[save]\n\tldmxcsr %[csr]\n\t"
#define HOST_POST "\n\tstmxcsr %[out]\n\tldmxcsr %[save]"

/* insn xmm_s, xmm_d */
#define HOP_XX(name, text)                                                                         \
    SSE_INLINE void fast_##name(struct fpio *io)                                                   \
    {                                                                                              \
        __asm__ volatile(text " %[b], %[a]" : [a] "+x"(io->d) : [b] "x"(io->s));                   \
    }                                                                                              \
    static uint32_t host_##name(struct fpio *io, uint32_t csr)                                     \
    {                                                                                              \
        uint32_t save, out;                                                                        \
        __m128i a = io->d;                                                                         \
        __asm__ volatile(HOST_PRE text " %[b], %[a]" HOST_POST                                     \
                         : [a] "+x"(a), [save] "=m"(save), [out] "=m"(out)                         \
                         : [b] "x"(io->s), [csr] "m"(csr));                                        \
        io->d = a;                                                                                 \
        return out;                                                                                \
    }

/* insn $imm, xmm_s, xmm_d */
#define HOP_XXI(name, text, imm)                                                                   \
    SSE_INLINE void fast_##name(struct fpio *io)                                                   \
    {                                                                                              \
        __asm__ volatile(text " $" #imm ", %[b], %[a]" : [a] "+x"(io->d) : [b] "x"(io->s));        \
    }                                                                                              \
    static uint32_t host_##name(struct fpio *io, uint32_t csr)                                     \
    {                                                                                              \
        uint32_t save, out;                                                                        \
        __m128i a = io->d;                                                                         \
        __asm__ volatile(HOST_PRE text " $" #imm ", %[b], %[a]" HOST_POST                          \
                         : [a] "+x"(a), [save] "=m"(save), [out] "=m"(out)                         \
                         : [b] "x"(io->s), [csr] "m"(csr));                                        \
        io->d = a;                                                                                 \
        return out;                                                                                \
    }

/* insn gpr, xmm_d (CVTSI2SS/SD); mod is "k" or "q" */
#define HOP_GX(name, text, mod)                                                                    \
    SSE_INLINE void fast_##name(struct fpio *io)                                                   \
    {                                                                                              \
        __asm__ volatile(text " %" mod "[g], %[a]" : [a] "+x"(io->d) : [g] "r"(io->g));            \
    }                                                                                              \
    static uint32_t host_##name(struct fpio *io, uint32_t csr)                                     \
    {                                                                                              \
        uint32_t save, out;                                                                        \
        __m128i a = io->d;                                                                         \
        __asm__ volatile(HOST_PRE text " %" mod "[g], %[a]" HOST_POST                              \
                         : [a] "+x"(a), [save] "=m"(save), [out] "=m"(out)                         \
                         : [g] "r"(io->g), [csr] "m"(csr));                                        \
        io->d = a;                                                                                 \
        return out;                                                                                \
    }

/* insn xmm_s, gpr (CVT[T]SS2SI/SD2SI); a 32-bit result is zero-extended (the
 * 32-bit register write does it) */
#define HOP_XG(name, text, mod)                                                                    \
    SSE_INLINE void fast_##name(struct fpio *io)                                                   \
    {                                                                                              \
        uint64_t g;                                                                                \
        __asm__ volatile(text " %[b], %" mod "[g]" : [g] "=r"(g) : [b] "x"(io->s));                \
        io->g = g;                                                                                 \
    }                                                                                              \
    static uint32_t host_##name(struct fpio *io, uint32_t csr)                                     \
    {                                                                                              \
        uint32_t save, out;                                                                        \
        uint64_t g = 0;                                                                            \
        __asm__ volatile(HOST_PRE text " %[b], %" mod "[g]" HOST_POST                              \
                         : [g] "+r"(g), [save] "=m"(save), [out] "=m"(out)                         \
                         : [b] "x"(io->s), [csr] "m"(csr));                                        \
        io->g = g;                                                                                 \
        return out;                                                                                \
    }

/* COMIS/UCOMIS: EFLAGS ZF, PF, CF */
#define CMPFL_SET(io) ((io)->flags = (zf ? FL_ZF : 0) | (pf ? FL_PF : 0) | (cf ? FL_CF : 0))
#define HOP_CMPFL(name, text)                                                                      \
    SSE_INLINE void fast_##name(struct fpio *io)                                                   \
    {                                                                                              \
        bool zf, pf, cf;                                                                           \
        __asm__ volatile(text " %[b], %[a]"                                                        \
                         : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf)                                   \
                         : [a] "x"(io->d), [b] "x"(io->s));                                        \
        CMPFL_SET(io);                                                                             \
    }                                                                                              \
    static uint32_t host_##name(struct fpio *io, uint32_t csr)                                     \
    {                                                                                              \
        uint32_t save, out;                                                                        \
        bool zf, pf, cf;                                                                           \
        __asm__ volatile(HOST_PRE text " %[b], %[a]" HOST_POST                                     \
                         : "=@ccz"(zf), "=@ccp"(pf),                                               \
                           "=@ccc"(cf), [save] "=m"(save), [out] "=m"(out)                         \
                         : [a] "x"(io->d), [b] "x"(io->s), [csr] "m"(csr));                        \
        CMPFL_SET(io);                                                                             \
        return out;                                                                                \
    }

/* ---- the unmasked-exception path ---- */

static pthread_mutex_t trap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction trap_prev;
static __thread volatile sig_atomic_t trap_armed, trap_hit;
static __thread volatile uint32_t trap_mxcsr;

/* SIGFPE from the host instruction of fp_exec_slow: records the MXCSR at the
 * fault and masks every exception in the interrupted context, so returning
 * re-executes the instruction to completion (its results are then discarded). */
static void trap_handler(int sig, siginfo_t *si, void *uctx)
{
    ucontext_t *uc = uctx;
    if (!trap_armed || !uc->uc_mcontext.fpregs) {
        /* not ours: reinstate the previous action; the fault repeats into it */
        sigaction(SIGFPE, &trap_prev, NULL);
        return;
    }
    trap_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
    trap_hit = 1;
    uc->uc_mcontext.fpregs->mxcsr |= MXCSR_MASKS;
}

/* Runs f with some exception unmasked. The handler is installed only around
 * the instruction (and serialised) so that neither the embedding program's nor
 * another vCPU's SIGFPE handling is disturbed; unmasked exceptions are rare. */
void fp_exec_slow(struct emu_cpu *c, fp_hostfn f, struct fpio *io)
{
    mxcsr_sync(c); /* f saves and restores the host MXCSR (the guest's, masked) */
    uint32_t csr = c->s.fpu.mxcsr;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = trap_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigset_t fpe, oldmask;
    sigemptyset(&fpe);
    sigaddset(&fpe, SIGFPE);

    pthread_mutex_lock(&trap_lock);
    sigaction(SIGFPE, &sa, &trap_prev);
    pthread_sigmask(SIG_UNBLOCK, &fpe, &oldmask);
    trap_hit = 0;
    trap_armed = 1;
    uint32_t out = f(io, csr & ~MXCSR_FLAGS);
    trap_armed = 0;
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    sigaction(SIGFPE, &trap_prev, NULL);
    pthread_mutex_unlock(&trap_lock);

    if (!trap_hit) {
        c->s.fpu.mxcsr = csr | (out & MXCSR_FLAGS);
        return;
    }
    c->s.fpu.mxcsr = csr | (trap_mxcsr & MXCSR_FLAGS);
    emu_raise(c, (c->s.cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, 0, false);
}

/* ---- arithmetic: xmm op= xmm/m ---- */

#define FP_ARITH(c, in, src, name)                                                                 \
    do {                                                                                           \
        struct fpio io = {.d = xmm_get(c, in->reg), .s = (src)};                                   \
        FP_EXEC(c, name, &io);                                                                     \
        xmm_set(c, in->reg, io.d);                                                                 \
    } while (0)

/* Handlers for the forms of one mnemonic: packed (m128, aligned), scalar (m32/m64) */
#define FP_PS(op, name)                                                                            \
    HOP_XX(name, #name)                                                                            \
    H(op)                                                                                          \
    {                                                                                              \
        sse_enter(c, in);                                                                          \
        FP_ARITH(c, in, src128(c, in), name);                                                      \
    }
#define FP_S32(op, name)                                                                           \
    HOP_XX(name, #name)                                                                            \
    H(op)                                                                                          \
    {                                                                                              \
        sse_enter(c, in);                                                                          \
        FP_ARITH(c, in, src32(c, in), name);                                                       \
    }
#define FP_S64(op, name)                                                                           \
    HOP_XX(name, #name)                                                                            \
    H(op)                                                                                          \
    {                                                                                              \
        sse_enter(c, in);                                                                          \
        FP_ARITH(c, in, src64(c, in), name);                                                       \
    }
#define FP_ALL4(m)                                                                                 \
    FP_PS(op_##m##ps, m##ps)                                                                       \
    FP_PS(op_##m##pd, m##pd)                                                                       \
    FP_S32(op_##m##ss, m##ss)                                                                      \
    FP_S64(op_##m##sd, m##sd)

FP_ALL4(add)
FP_ALL4(sub)
FP_ALL4(mul)
FP_ALL4(div)
FP_ALL4(min)
FP_ALL4(max)
FP_ALL4(sqrt)
FP_PS(op_rsqrtps, rsqrtps)
FP_S32(op_rsqrtss, rsqrtss)
FP_PS(op_rcpps, rcpps)
FP_S32(op_rcpss, rcpss)

/* conversions between FP formats and packed dwords, all xmm to xmm */
FP_S64(op_cvtps2pd, cvtps2pd)  /* 0F 5A: reads m64 */
FP_PS(op_cvtpd2ps, cvtpd2ps)   /* 66 0F 5A */
FP_S32(op_cvtss2sd, cvtss2sd)  /* F3 0F 5A */
FP_S64(op_cvtsd2ss, cvtsd2ss)  /* F2 0F 5A */
FP_PS(op_cvtdq2ps, cvtdq2ps)   /* 0F 5B */
FP_PS(op_cvtps2dq, cvtps2dq)   /* 66 0F 5B */
FP_PS(op_cvttps2dq, cvttps2dq) /* F3 0F 5B */
FP_PS(op_cvttpd2dq, cvttpd2dq) /* 66 0F E6 */
FP_S64(op_cvtdq2pd, cvtdq2pd)  /* F3 0F E6: reads m64 */
FP_PS(op_cvtpd2dq, cvtpd2dq)   /* F2 0F E6 */

/* ---- CMPPS/PD/SS/SD: predicate in imm8[2:0] ---- */

#define HOP_CMP8(form)                                                                             \
    HOP_XXI(cmp##form##0, "cmp" #form, 0)                                                          \
    HOP_XXI(cmp##form##1, "cmp" #form, 1)                                                          \
    HOP_XXI(cmp##form##2, "cmp" #form, 2)                                                          \
    HOP_XXI(cmp##form##3, "cmp" #form, 3)                                                          \
    HOP_XXI(cmp##form##4, "cmp" #form, 4)                                                          \
    HOP_XXI(cmp##form##5, "cmp" #form, 5)                                                          \
    HOP_XXI(cmp##form##6, "cmp" #form, 6)                                                          \
    HOP_XXI(cmp##form##7, "cmp" #form, 7)                                                          \
    static const fp_hostfn cmp_##form[8] = {                                                       \
        host_cmp##form##0, host_cmp##form##1, host_cmp##form##2, host_cmp##form##3,                \
        host_cmp##form##4, host_cmp##form##5, host_cmp##form##6, host_cmp##form##7};               \
    SSE_INLINE void fast_cmp##form(struct fpio *io, unsigned pred)                                 \
    {                                                                                              \
        switch (pred & 7) {                                                                        \
        case 0: fast_cmp##form##0(io); break;                                                      \
        case 1: fast_cmp##form##1(io); break;                                                      \
        case 2: fast_cmp##form##2(io); break;                                                      \
        case 3: fast_cmp##form##3(io); break;                                                      \
        case 4: fast_cmp##form##4(io); break;                                                      \
        case 5: fast_cmp##form##5(io); break;                                                      \
        case 6: fast_cmp##form##6(io); break;                                                      \
        default: fast_cmp##form##7(io); break;                                                     \
        }                                                                                          \
    }                                                                                              \
    H(op_cmp##form)                                                                                \
    {                                                                                              \
        sse_enter(c, in);                                                                          \
        struct fpio io = {.d = xmm_get(c, in->reg), .s = CMP_SRC_##form(c, in)};                   \
        if (likely(fp_masked(c)))                                                                  \
            fast_cmp##form(&io, (unsigned)in->imm);                                                \
        else                                                                                       \
            fp_exec_copy(c, cmp_##form[in->imm & 7], &io);                                         \
        xmm_set(c, in->reg, io.d);                                                                 \
    }

#define CMP_SRC_ps src128
#define CMP_SRC_pd src128
#define CMP_SRC_ss src32
#define CMP_SRC_sd src64

HOP_CMP8(ps)
HOP_CMP8(pd)
HOP_CMP8(ss)
HOP_CMP8(sd)

/* ---- COMISS/UCOMISS/COMISD/UCOMISD ---- */

HOP_CMPFL(comiss, "comiss")
HOP_CMPFL(ucomiss, "ucomiss")
HOP_CMPFL(comisd, "comisd")
HOP_CMPFL(ucomisd, "ucomisd")

#define FP_COMI(c, in, src, name)                                                                  \
    do {                                                                                           \
        struct fpio io = {.d = xmm_get(c, in->reg), .s = (src)};                                   \
        FP_EXEC(c, name, &io);                                                                     \
        emu_flags_sync(c);                                                                         \
        c->s.rflags = (c->s.rflags & ~(uint64_t)FL_ARITH) | io.flags;                              \
    } while (0)

H(op_comiss)
{
    sse_enter(c, in);
    FP_COMI(c, in, src32(c, in), comiss);
}
H(op_ucomiss)
{
    sse_enter(c, in);
    FP_COMI(c, in, src32(c, in), ucomiss);
}
H(op_comisd)
{
    sse_enter(c, in);
    FP_COMI(c, in, src64(c, in), comisd);
}
H(op_ucomisd)
{
    sse_enter(c, in);
    FP_COMI(c, in, src64(c, in), ucomisd);
}

/* ---- conversions with general-purpose registers ---- */

HOP_GX(cvtsi2ss32, "cvtsi2ssl", "k")
HOP_GX(cvtsi2ss64, "cvtsi2ssq", "q")
HOP_GX(cvtsi2sd32, "cvtsi2sdl", "k")
HOP_GX(cvtsi2sd64, "cvtsi2sdq", "q")

#define FP_FROM_GPR(c, in, name)                                                                   \
    do {                                                                                           \
        sse_enter(c, in);                                                                          \
        bool w = in->rex & 8;                                                                      \
        struct fpio io = {.d = xmm_get(c, in->reg), .g = rm_read(c, in, w ? 8 : 4)};               \
        if (w)                                                                                     \
            FP_EXEC(c, name##64, &io);                                                             \
        else                                                                                       \
            FP_EXEC(c, name##32, &io);                                                             \
        xmm_set(c, in->reg, io.d);                                                                 \
    } while (0)

H(op_cvtsi2ss)
{
    FP_FROM_GPR(c, in, cvtsi2ss);
}
H(op_cvtsi2sd)
{
    FP_FROM_GPR(c, in, cvtsi2sd);
}

HOP_XG(cvtss2si32, "cvtss2si", "k")
HOP_XG(cvtss2si64, "cvtss2si", "q")
HOP_XG(cvttss2si32, "cvttss2si", "k")
HOP_XG(cvttss2si64, "cvttss2si", "q")
HOP_XG(cvtsd2si32, "cvtsd2si", "k")
HOP_XG(cvtsd2si64, "cvtsd2si", "q")
HOP_XG(cvttsd2si32, "cvttsd2si", "k")
HOP_XG(cvttsd2si64, "cvttsd2si", "q")

#define FP_TO_GPR(c, in, src, name)                                                                \
    do {                                                                                           \
        sse_enter(c, in);                                                                          \
        bool w = in->rex & 8;                                                                      \
        struct fpio io = {.s = (src)};                                                             \
        if (w)                                                                                     \
            FP_EXEC(c, name##64, &io);                                                             \
        else                                                                                       \
            FP_EXEC(c, name##32, &io);                                                             \
        reg_write(c, in->reg, w ? 8 : 4, false, io.g);                                             \
    } while (0)

H(op_cvtss2si)
{
    FP_TO_GPR(c, in, src32(c, in), cvtss2si);
}
H(op_cvttss2si)
{
    FP_TO_GPR(c, in, src32(c, in), cvttss2si);
}
H(op_cvtsd2si)
{
    FP_TO_GPR(c, in, src64(c, in), cvtsd2si);
}
H(op_cvttsd2si)
{
    FP_TO_GPR(c, in, src64(c, in), cvttsd2si);
}

/* ---- conversions with MMX registers ---- */

/* CVTPI2PS/CVTPI2PD source: an MMX register (x87 -> MMX transition, #MF) or m64
 * (neither) */
static uint64_t pi_src(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3) {
        sse_mmx_enter(c, in);
        return mmx_get(c, in->rm);
    }
    sse_enter(c, in);
    return vm_read(c, emu_ea(c, in), 8);
}

/* The x87 -> MMX transition of these forms happens even when the conversion
 * then raises #XM (as the hardware shows). */
H(op_cvtpi2ps) /* 0F 2A: two dwords to the low two floats, upper half kept */
{
    uint64_t v = pi_src(c, in);
    if (in->mod == 3) mmx_transition(c);
    __m128i old = xmm_get(c, in->reg);
    struct fpio io = {.d = old, .s = q2x(v)}; /* zero upper lanes convert exactly */
    FP_EXEC(c, cvtdq2ps, &io);
    xmm_set(c, in->reg, _mm_unpacklo_epi64(io.d, _mm_unpackhi_epi64(old, old)));
}

H(op_cvtpi2pd) /* 66 0F 2A: exact, never raises */
{
    uint64_t v = pi_src(c, in);
    if (in->mod == 3) mmx_transition(c);
    struct fpio io = {.s = q2x(v)};
    FP_EXEC(c, cvtdq2pd, &io);
    xmm_set(c, in->reg, io.d);
}

/* Packed FP to two dwords in an MMX register; f works on all lanes, so the
 * unused source lanes are zero (which converts without flags). */
#define FP_TO_MMX(c, in, src, name)                                                                \
    do {                                                                                           \
        struct fpio io = {.s = (src)};                                                             \
        mmx_transition(c);                                                                         \
        FP_EXEC(c, name, &io);                                                                     \
        mmx_set(c, in->reg, x2q(io.d));                                                            \
    } while (0)

H(op_cvtps2pi)
{
    sse_mmx_enter(c, in);
    FP_TO_MMX(c, in, _mm_move_epi64(src64(c, in)), cvtps2dq);
}
H(op_cvttps2pi)
{
    sse_mmx_enter(c, in);
    FP_TO_MMX(c, in, _mm_move_epi64(src64(c, in)), cvttps2dq);
}
H(op_cvtpd2pi)
{
    sse_mmx_enter(c, in);
    FP_TO_MMX(c, in, src128(c, in), cvtpd2dq);
}
H(op_cvttpd2pi)
{
    sse_mmx_enter(c, in);
    FP_TO_MMX(c, in, src128(c, in), cvttpd2dq);
}

/* ---- registration ---- */

static void reg4(uint8_t opc, emu_handler none, emu_handler p66, emu_handler f3, emu_handler f2)
{
    if (none) emu_register(MAP_0F, opc, MP_NONE, none);
    if (p66) emu_register(MAP_0F, opc, MP_66, p66);
    if (f3) emu_register(MAP_0F, opc, MP_F3, f3);
    if (f2) emu_register(MAP_0F, opc, MP_F2, f2);
}

void sse_fp_init(void)
{
    reg4(0x2a, op_cvtpi2ps, op_cvtpi2pd, op_cvtsi2ss, op_cvtsi2sd);
    reg4(0x2c, op_cvttps2pi, op_cvttpd2pi, op_cvttss2si, op_cvttsd2si);
    reg4(0x2d, op_cvtps2pi, op_cvtpd2pi, op_cvtss2si, op_cvtsd2si);
    reg4(0x2e, op_ucomiss, op_ucomisd, NULL, NULL);
    reg4(0x2f, op_comiss, op_comisd, NULL, NULL);
    reg4(0x51, op_sqrtps, op_sqrtpd, op_sqrtss, op_sqrtsd);
    reg4(0x52, op_rsqrtps, NULL, op_rsqrtss, NULL);
    reg4(0x53, op_rcpps, NULL, op_rcpss, NULL);
    reg4(0x58, op_addps, op_addpd, op_addss, op_addsd);
    reg4(0x59, op_mulps, op_mulpd, op_mulss, op_mulsd);
    reg4(0x5a, op_cvtps2pd, op_cvtpd2ps, op_cvtss2sd, op_cvtsd2ss);
    reg4(0x5b, op_cvtdq2ps, op_cvtps2dq, op_cvttps2dq, NULL);
    reg4(0x5c, op_subps, op_subpd, op_subss, op_subsd);
    reg4(0x5d, op_minps, op_minpd, op_minss, op_minsd);
    reg4(0x5e, op_divps, op_divpd, op_divss, op_divsd);
    reg4(0x5f, op_maxps, op_maxpd, op_maxss, op_maxsd);
    reg4(0xc2, op_cmpps, op_cmppd, op_cmpss, op_cmpsd);
    reg4(0xe6, NULL, op_cvttpd2dq, op_cvtdq2pd, op_cvtpd2dq);
}
