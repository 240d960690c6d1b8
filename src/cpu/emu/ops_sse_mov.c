/* ops_sse_mov.c — SSE/SSE2/MMX data movement: MOVUPS/MOVAPS/MOVSS/MOVSD and the
 * half-register moves, MOVD/MOVQ, MOVDQA/MOVDQU, non-temporal and masked stores,
 * MOVMSK*, PINSRW/PEXTRW, shuffles and unpacks of FP lanes, the bitwise FP
 * logic (which raises no FP exceptions) and EMMS. */
#include "cpu/emu/sse_internal.h"

#define H(name) static void name(struct emu_cpu *c, const struct insn *in)

/* GPR operand size of MOVD/MOVQ-style forms: REX.W selects 64 bits; a 66 prefix
 * is a mandatory prefix here, not an operand-size override. */
static inline int gpr_size(const struct insn *in)
{
    return (in->rex & 8) ? 8 : 4;
}

/* mod == 3 is #UD for memory-only forms (MOVLPS m64, MOVNT*, ...) */
static inline void need_mem(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3) emu_ud(c);
}
static inline void need_reg(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod != 3) emu_ud(c);
}

/* ---- whole-register moves ---- */

H(op_movu_load) /* MOVUPS, MOVUPD, MOVDQU xmm, xmm/m128 */
{
    sse_enter(c, in);
    xmm_set(c, in->reg, src128u(c, in));
}

H(op_mova_load) /* MOVAPS, MOVAPD, MOVDQA xmm, xmm/m128 */
{
    sse_enter(c, in);
    xmm_set(c, in->reg, src128(c, in));
}

H(op_movu_store) /* MOVUPS, MOVUPD, MOVDQU xmm/m128, xmm */
{
    sse_enter(c, in);
    __m128i v = xmm_get(c, in->reg);
    if (in->mod == 3)
        xmm_set(c, in->rm, v);
    else
        mem_write128(c, emu_ea(c, in), v);
}

H(op_mova_store) /* MOVAPS, MOVAPD, MOVDQA xmm/m128, xmm */
{
    sse_enter(c, in);
    __m128i v = xmm_get(c, in->reg);
    if (in->mod == 3) {
        xmm_set(c, in->rm, v);
        return;
    }
    uint64_t ea = emu_ea(c, in);
    check_align16(c, ea);
    mem_write128(c, ea, v);
}

H(op_movnt_store) /* MOVNTPS, MOVNTPD, MOVNTDQ m128, xmm */
{
    need_mem(c, in);
    sse_enter(c, in);
    uint64_t ea = emu_ea(c, in);
    check_align16(c, ea);
    mem_write128(c, ea, xmm_get(c, in->reg));
}

/* ---- scalar and half-register moves ---- */

H(op_movss_load)
{
    sse_enter(c, in);
    x86_xmm *d = &c->s.fpu.xmm[in->reg];
    if (in->mod == 3) {
        d->d[0] = c->s.fpu.xmm[in->rm].d[0];
        return;
    }
    uint32_t v = (uint32_t)vm_read(c, emu_ea(c, in), 4);
    xmm_set(c, in->reg, _mm_cvtsi32_si128((int)v));
}

H(op_movsd_load)
{
    sse_enter(c, in);
    x86_xmm *d = &c->s.fpu.xmm[in->reg];
    if (in->mod == 3) {
        d->q[0] = c->s.fpu.xmm[in->rm].q[0];
        return;
    }
    xmm_set(c, in->reg, q2x(vm_read(c, emu_ea(c, in), 8)));
}

H(op_movss_store)
{
    sse_enter(c, in);
    uint32_t v = c->s.fpu.xmm[in->reg].d[0];
    if (in->mod == 3)
        c->s.fpu.xmm[in->rm].d[0] = v;
    else
        vm_write(c, emu_ea(c, in), 4, v);
}

H(op_movsd_store)
{
    sse_enter(c, in);
    uint64_t v = c->s.fpu.xmm[in->reg].q[0];
    if (in->mod == 3)
        c->s.fpu.xmm[in->rm].q[0] = v;
    else
        vm_write(c, emu_ea(c, in), 8, v);
}

H(op_movlps_load) /* 0F 12: MOVLPS xmm, m64 / MOVHLPS xmm, xmm */
{
    sse_enter(c, in);
    uint64_t v = in->mod == 3 ? c->s.fpu.xmm[in->rm].q[1] : vm_read(c, emu_ea(c, in), 8);
    c->s.fpu.xmm[in->reg].q[0] = v;
}

H(op_movlpd_load) /* 66 0F 12: MOVLPD xmm, m64 */
{
    need_mem(c, in);
    sse_enter(c, in);
    c->s.fpu.xmm[in->reg].q[0] = vm_read(c, emu_ea(c, in), 8);
}

H(op_movhps_load) /* 0F 16: MOVHPS xmm, m64 / MOVLHPS xmm, xmm */
{
    sse_enter(c, in);
    uint64_t v = in->mod == 3 ? c->s.fpu.xmm[in->rm].q[0] : vm_read(c, emu_ea(c, in), 8);
    c->s.fpu.xmm[in->reg].q[1] = v;
}

H(op_movhpd_load) /* 66 0F 16: MOVHPD xmm, m64 */
{
    need_mem(c, in);
    sse_enter(c, in);
    c->s.fpu.xmm[in->reg].q[1] = vm_read(c, emu_ea(c, in), 8);
}

H(op_movlp_store) /* 0F 13 / 66 0F 13: MOVLPS/MOVLPD m64, xmm */
{
    need_mem(c, in);
    sse_enter(c, in);
    vm_write(c, emu_ea(c, in), 8, c->s.fpu.xmm[in->reg].q[0]);
}

H(op_movhp_store) /* 0F 17 / 66 0F 17: MOVHPS/MOVHPD m64, xmm */
{
    need_mem(c, in);
    sse_enter(c, in);
    vm_write(c, emu_ea(c, in), 8, c->s.fpu.xmm[in->reg].q[1]);
}

/* ---- MOVD / MOVQ ---- */

H(op_movd_x_rm) /* 66 0F 6E: MOVD/MOVQ xmm, r/m32/64 (zero-extended) */
{
    sse_enter(c, in);
    xmm_set(c, in->reg, q2x(rm_read(c, in, gpr_size(in))));
}

H(op_movd_rm_x) /* 66 0F 7E: MOVD/MOVQ r/m32/64, xmm */
{
    sse_enter(c, in);
    rm_write(c, in, gpr_size(in), c->s.fpu.xmm[in->reg].q[0]);
}

H(op_movq_x_xm) /* F3 0F 7E: MOVQ xmm, xmm/m64 (zero-extended) */
{
    sse_enter(c, in);
    __m128i v = in->mod == 3 ? xmm_get(c, in->rm) : q2x(vm_read(c, emu_ea(c, in), 8));
    xmm_set(c, in->reg, _mm_move_epi64(v));
}

H(op_movq_xm_x) /* 66 0F D6: MOVQ xmm/m64, xmm */
{
    sse_enter(c, in);
    __m128i v = xmm_get(c, in->reg);
    if (in->mod == 3)
        xmm_set(c, in->rm, _mm_move_epi64(v));
    else
        vm_write(c, emu_ea(c, in), 8, x2q(v));
}

H(op_movd_m_rm) /* 0F 6E: MOVD/MOVQ mm, r/m32/64 */
{
    mmx_enter(c, in);
    mmx_set(c, in->reg, rm_read(c, in, gpr_size(in)));
}

H(op_movd_rm_m) /* 0F 7E: MOVD/MOVQ r/m32/64, mm */
{
    mmx_enter(c, in);
    rm_write(c, in, gpr_size(in), mmx_get(c, in->reg));
    mmx_transition(c);
}

H(op_movq_m_mm) /* 0F 6F: MOVQ mm, mm/m64 */
{
    mmx_enter(c, in);
    mmx_set(c, in->reg, mmx_src(c, in));
}

H(op_movq_mm_m) /* 0F 7F: MOVQ mm/m64, mm */
{
    mmx_enter(c, in);
    uint64_t v = mmx_get(c, in->reg);
    if (in->mod == 3) {
        mmx_set(c, in->rm, v);
        return;
    }
    vm_write(c, emu_ea(c, in), 8, v);
    mmx_transition(c);
}

H(op_movntq) /* 0F E7: MOVNTQ m64, mm */
{
    need_mem(c, in);
    mmx_enter(c, in);
    vm_write(c, emu_ea(c, in), 8, mmx_get(c, in->reg));
    mmx_transition(c);
}

H(op_movq2dq) /* F3 0F D6: MOVQ2DQ xmm, mm */
{
    need_reg(c, in);
    sse_mmx_enter(c, in);
    xmm_set(c, in->reg, q2x(mmx_get(c, in->rm)));
    mmx_transition(c);
}

H(op_movdq2q) /* F2 0F D6: MOVDQ2Q mm, xmm */
{
    need_reg(c, in);
    sse_mmx_enter(c, in);
    mmx_set(c, in->reg, c->s.fpu.xmm[in->rm].q[0]);
}

H(op_movnti) /* 0F C3: MOVNTI m32/64, r32/64 (a GPR store: no SSE state checks) */
{
    need_mem(c, in);
    int size = gpr_size(in);
    vm_write(c, emu_ea(c, in), size, reg_read(c, in->reg, size, false));
}

/* ---- masked stores ---- */

/* Stores the bytes of v whose mask byte has its top bit set to seg:rDI. Both
 * ends of the selected range are checked first so a fault stores nothing. */
static void masked_store(struct emu_cpu *c, const struct insn *in, const uint8_t *v, unsigned mask,
                         int n)
{
    if (!mask) return;
    uint64_t lin = emu_lin(c, in->seg, c->s.gpr[RDI] & szmask(in->asz));
    int first = __builtin_ctz(mask), last = 31 - __builtin_clz(mask);
    uint64_t a = lin + (uint64_t)first, b = lin + (uint64_t)last;
    if (c->mode != MODE_LONG64) {
        a = (uint32_t)a;
        b = (uint32_t)b;
    }
    if ((a ^ b) >> 12) emu_translate(c, b, ACC_W, c->cpl == 3);
    for (int i = first; i < n; i++)
        if (mask & (1u << i)) {
            uint64_t p = lin + (uint64_t)i;
            vm_write(c, c->mode == MODE_LONG64 ? p : (uint32_t)p, 1, v[i]);
        }
}

H(op_maskmovdqu) /* 66 0F F7 */
{
    need_reg(c, in);
    sse_enter(c, in);
    __m128i v = xmm_get(c, in->reg);
    unsigned mask = (unsigned)_mm_movemask_epi8(xmm_get(c, in->rm));
    uint8_t b[16];
    _mm_storeu_si128((__m128i *)b, v);
    masked_store(c, in, b, mask, 16);
}

H(op_maskmovq) /* 0F F7 */
{
    need_reg(c, in);
    mmx_enter(c, in);
    uint64_t v = mmx_get(c, in->reg);
    unsigned mask = (unsigned)_mm_movemask_epi8(q2x(mmx_get(c, in->rm))) & 0xff;
    uint8_t b[8];
    memcpy(b, &v, 8);
    masked_store(c, in, b, mask, 8);
    mmx_transition(c);
}

/* ---- masks and word insert/extract ---- */

H(op_movmskps)
{
    need_reg(c, in);
    sse_enter(c, in);
    int m = _mm_movemask_ps(_mm_castsi128_ps(xmm_get(c, in->rm)));
    reg_write(c, in->reg, 4, false, (uint32_t)m);
}

H(op_movmskpd)
{
    need_reg(c, in);
    sse_enter(c, in);
    int m = _mm_movemask_pd(_mm_castsi128_pd(xmm_get(c, in->rm)));
    reg_write(c, in->reg, 4, false, (uint32_t)m);
}

H(op_pmovmskb_x) /* 66 0F D7 */
{
    need_reg(c, in);
    sse_enter(c, in);
    reg_write(c, in->reg, 4, false, (uint32_t)_mm_movemask_epi8(xmm_get(c, in->rm)));
}

H(op_pmovmskb_m) /* 0F D7 */
{
    need_reg(c, in);
    mmx_enter(c, in);
    uint32_t m = (uint32_t)_mm_movemask_epi8(q2x(mmx_get(c, in->rm))) & 0xff;
    reg_write(c, in->reg, 4, false, m);
    mmx_transition(c);
}

/* PINSRW source: low word of a GPR or m16 */
static inline uint16_t pinsrw_src(struct emu_cpu *c, const struct insn *in)
{
    if (in->mod == 3) return (uint16_t)c->s.gpr[in->rm];
    return (uint16_t)vm_read(c, emu_ea(c, in), 2);
}

H(op_pinsrw_x)
{
    sse_enter(c, in);
    uint16_t w = pinsrw_src(c, in);
    c->s.fpu.xmm[in->reg].w[in->imm & 7] = w;
}

H(op_pinsrw_m)
{
    mmx_enter(c, in);
    uint16_t w = pinsrw_src(c, in);
    uint64_t v = mmx_get(c, in->reg);
    int sh = (int)(in->imm & 3) * 16;
    v = (v & ~(0xffffull << sh)) | ((uint64_t)w << sh);
    mmx_set(c, in->reg, v);
}

H(op_pextrw_x)
{
    need_reg(c, in);
    sse_enter(c, in);
    reg_write(c, in->reg, 4, false, c->s.fpu.xmm[in->rm].w[in->imm & 7]);
}

H(op_pextrw_m)
{
    need_reg(c, in);
    mmx_enter(c, in);
    uint64_t v = mmx_get(c, in->rm);
    reg_write(c, in->reg, 4, false, (v >> ((in->imm & 3) * 16)) & 0xffff);
    mmx_transition(c);
}

/* ---- shuffles and unpacks of FP lanes, FP logic ---- */

H(op_shufps)
{
    sse_enter(c, in);
    x86_xmm s, d, r;
    _mm_store_si128((__m128i *)&s, src128(c, in));
    d = c->s.fpu.xmm[in->reg];
    unsigned i = (unsigned)in->imm;
    r.d[0] = d.d[i & 3];
    r.d[1] = d.d[(i >> 2) & 3];
    r.d[2] = s.d[(i >> 4) & 3];
    r.d[3] = s.d[(i >> 6) & 3];
    c->s.fpu.xmm[in->reg] = r;
}

H(op_shufpd)
{
    sse_enter(c, in);
    x86_xmm s, r;
    _mm_store_si128((__m128i *)&s, src128(c, in));
    const x86_xmm *d = &c->s.fpu.xmm[in->reg];
    r.q[0] = d->q[in->imm & 1];
    r.q[1] = s.q[(in->imm >> 1) & 1];
    c->s.fpu.xmm[in->reg] = r;
}

/* Two-operand forms computed by one host SSE2 integer operation (bit-exact, no
 * MXCSR involvement) */
#define XOP(name, expr)                                                                            \
    H(name)                                                                                        \
    {                                                                                              \
        sse_enter(c, in);                                                                          \
        __m128i b = src128(c, in), a = xmm_get(c, in->reg);                                        \
        xmm_set(c, in->reg, (expr));                                                               \
    }

XOP(op_unpcklps, _mm_unpacklo_epi32(a, b))
XOP(op_unpckhps, _mm_unpackhi_epi32(a, b))
XOP(op_unpcklpd, _mm_unpacklo_epi64(a, b))
XOP(op_unpckhpd, _mm_unpackhi_epi64(a, b))
XOP(op_andps, _mm_and_si128(a, b))
XOP(op_andnps, _mm_andnot_si128(a, b))
XOP(op_orps, _mm_or_si128(a, b))
XOP(op_xorps, _mm_xor_si128(a, b))

/* ---- PSHUF* ---- */

H(op_pshufd)
{
    sse_enter(c, in);
    x86_xmm s, r;
    _mm_store_si128((__m128i *)&s, src128(c, in));
    for (int i = 0; i < 4; i++)
        r.d[i] = s.d[(in->imm >> (2 * i)) & 3];
    c->s.fpu.xmm[in->reg] = r;
}

H(op_pshufhw)
{
    sse_enter(c, in);
    x86_xmm s, r;
    _mm_store_si128((__m128i *)&s, src128(c, in));
    r.q[0] = s.q[0];
    for (int i = 0; i < 4; i++)
        r.w[4 + i] = s.w[4 + ((in->imm >> (2 * i)) & 3)];
    c->s.fpu.xmm[in->reg] = r;
}

H(op_pshuflw)
{
    sse_enter(c, in);
    x86_xmm s, r;
    _mm_store_si128((__m128i *)&s, src128(c, in));
    r.q[1] = s.q[1];
    for (int i = 0; i < 4; i++)
        r.w[i] = s.w[(in->imm >> (2 * i)) & 3];
    c->s.fpu.xmm[in->reg] = r;
}

H(op_pshufw)
{
    mmx_enter(c, in);
    uint64_t s = mmx_src(c, in), r = 0;
    for (int i = 0; i < 4; i++)
        r |= ((s >> (((in->imm >> (2 * i)) & 3) * 16)) & 0xffff) << (16 * i);
    mmx_set(c, in->reg, r);
}

/* ---- EMMS ---- */

H(op_emms) /* all registers empty and, like every MMX instruction, TOP = 0 */
{
    mmx_enter(c, in);
    c->s.fpu.fsw &= (uint16_t)~FSW_TOP;
    c->s.fpu.ftw = 0xffff;
}

void sse_mov_init(void)
{
    emu_register(MAP_0F, 0x10, MP_NONE, op_movu_load);
    emu_register(MAP_0F, 0x10, MP_66, op_movu_load);
    emu_register(MAP_0F, 0x10, MP_F3, op_movss_load);
    emu_register(MAP_0F, 0x10, MP_F2, op_movsd_load);
    emu_register(MAP_0F, 0x11, MP_NONE, op_movu_store);
    emu_register(MAP_0F, 0x11, MP_66, op_movu_store);
    emu_register(MAP_0F, 0x11, MP_F3, op_movss_store);
    emu_register(MAP_0F, 0x11, MP_F2, op_movsd_store);
    emu_register(MAP_0F, 0x12, MP_NONE, op_movlps_load);
    emu_register(MAP_0F, 0x12, MP_66, op_movlpd_load);
    emu_register(MAP_0F, 0x13, MP_NONE, op_movlp_store);
    emu_register(MAP_0F, 0x13, MP_66, op_movlp_store);
    emu_register(MAP_0F, 0x14, MP_NONE, op_unpcklps);
    emu_register(MAP_0F, 0x14, MP_66, op_unpcklpd);
    emu_register(MAP_0F, 0x15, MP_NONE, op_unpckhps);
    emu_register(MAP_0F, 0x15, MP_66, op_unpckhpd);
    emu_register(MAP_0F, 0x16, MP_NONE, op_movhps_load);
    emu_register(MAP_0F, 0x16, MP_66, op_movhpd_load);
    emu_register(MAP_0F, 0x17, MP_NONE, op_movhp_store);
    emu_register(MAP_0F, 0x17, MP_66, op_movhp_store);
    emu_register(MAP_0F, 0x28, MP_NONE, op_mova_load);
    emu_register(MAP_0F, 0x28, MP_66, op_mova_load);
    emu_register(MAP_0F, 0x29, MP_NONE, op_mova_store);
    emu_register(MAP_0F, 0x29, MP_66, op_mova_store);
    emu_register(MAP_0F, 0x2b, MP_NONE, op_movnt_store);
    emu_register(MAP_0F, 0x2b, MP_66, op_movnt_store);
    emu_register(MAP_0F, 0x50, MP_NONE, op_movmskps);
    emu_register(MAP_0F, 0x50, MP_66, op_movmskpd);
    emu_register(MAP_0F, 0x54, MP_NONE, op_andps);
    emu_register(MAP_0F, 0x54, MP_66, op_andps);
    emu_register(MAP_0F, 0x55, MP_NONE, op_andnps);
    emu_register(MAP_0F, 0x55, MP_66, op_andnps);
    emu_register(MAP_0F, 0x56, MP_NONE, op_orps);
    emu_register(MAP_0F, 0x56, MP_66, op_orps);
    emu_register(MAP_0F, 0x57, MP_NONE, op_xorps);
    emu_register(MAP_0F, 0x57, MP_66, op_xorps);
    emu_register(MAP_0F, 0x6e, MP_NONE, op_movd_m_rm);
    emu_register(MAP_0F, 0x6e, MP_66, op_movd_x_rm);
    emu_register(MAP_0F, 0x6f, MP_NONE, op_movq_m_mm);
    emu_register(MAP_0F, 0x6f, MP_66, op_mova_load);
    emu_register(MAP_0F, 0x6f, MP_F3, op_movu_load);
    emu_register(MAP_0F, 0x70, MP_NONE, op_pshufw);
    emu_register(MAP_0F, 0x70, MP_66, op_pshufd);
    emu_register(MAP_0F, 0x70, MP_F3, op_pshufhw);
    emu_register(MAP_0F, 0x70, MP_F2, op_pshuflw);
    emu_register(MAP_0F, 0x77, MP_NONE, op_emms);
    emu_register(MAP_0F, 0x7e, MP_NONE, op_movd_rm_m);
    emu_register(MAP_0F, 0x7e, MP_66, op_movd_rm_x);
    emu_register(MAP_0F, 0x7e, MP_F3, op_movq_x_xm);
    emu_register(MAP_0F, 0x7f, MP_NONE, op_movq_mm_m);
    emu_register(MAP_0F, 0x7f, MP_66, op_mova_store);
    emu_register(MAP_0F, 0x7f, MP_F3, op_movu_store);
    emu_register(MAP_0F, 0xc3, MP_NONE, op_movnti);
    emu_register(MAP_0F, 0xc4, MP_NONE, op_pinsrw_m);
    emu_register(MAP_0F, 0xc4, MP_66, op_pinsrw_x);
    emu_register(MAP_0F, 0xc5, MP_NONE, op_pextrw_m);
    emu_register(MAP_0F, 0xc5, MP_66, op_pextrw_x);
    emu_register(MAP_0F, 0xc6, MP_NONE, op_shufps);
    emu_register(MAP_0F, 0xc6, MP_66, op_shufpd);
    emu_register(MAP_0F, 0xd6, MP_66, op_movq_xm_x);
    emu_register(MAP_0F, 0xd6, MP_F3, op_movq2dq);
    emu_register(MAP_0F, 0xd6, MP_F2, op_movdq2q);
    emu_register(MAP_0F, 0xd7, MP_NONE, op_pmovmskb_m);
    emu_register(MAP_0F, 0xd7, MP_66, op_pmovmskb_x);
    emu_register(MAP_0F, 0xe7, MP_NONE, op_movntq);
    emu_register(MAP_0F, 0xe7, MP_66, op_movnt_store);
    emu_register(MAP_0F, 0xf7, MP_NONE, op_maskmovq);
    emu_register(MAP_0F, 0xf7, MP_66, op_maskmovdqu);
}
