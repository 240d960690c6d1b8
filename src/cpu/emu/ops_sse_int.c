/* ops_sse_int.c — packed integer instructions in their MMX (no prefix, 64-bit
 * MMX registers) and SSE2 (66 prefix, XMM registers) forms: add/sub (wrapping
 * and saturating), compares, logic, multiplies, min/max/avg/SAD, unpacks, packs
 * and shifts. Each is computed by the equivalent host SSE2 operation; the MMX
 * forms run it on the low 64 bits (upper zero), which gives the same result for
 * every element-wise operation. */
#include "cpu/emu/sse_internal.h"

#define H(name) static void name(struct emu_cpu *c, const struct insn *in)

/* xmm, xmm/m128 (aligned) */
#define XOP(name, expr)                                                                            \
    H(name)                                                                                        \
    {                                                                                              \
        sse_enter(c, in);                                                                          \
        __m128i b = src128(c, in), a = xmm_get(c, in->reg);                                        \
        xmm_set(c, in->reg, (expr));                                                               \
    }

/* mm, mm/m64 */
#define MOP(name, expr)                                                                            \
    H(name)                                                                                        \
    {                                                                                              \
        mmx_enter(c, in);                                                                          \
        __m128i b = q2x(mmx_src(c, in)), a = q2x(mmx_get(c, in->reg));                             \
        mmx_set(c, in->reg, x2q(expr));                                                            \
    }

/* Both forms with one expression */
#define BOTH(base, expr) XOP(base##_x, expr) MOP(base##_m, expr)

/* ---- element-wise ---- */

BOTH(op_paddb, _mm_add_epi8(a, b))
BOTH(op_paddw, _mm_add_epi16(a, b))
BOTH(op_paddd, _mm_add_epi32(a, b))
BOTH(op_paddq, _mm_add_epi64(a, b))
BOTH(op_psubb, _mm_sub_epi8(a, b))
BOTH(op_psubw, _mm_sub_epi16(a, b))
BOTH(op_psubd, _mm_sub_epi32(a, b))
BOTH(op_psubq, _mm_sub_epi64(a, b))
BOTH(op_paddsb, _mm_adds_epi8(a, b))
BOTH(op_paddsw, _mm_adds_epi16(a, b))
BOTH(op_paddusb, _mm_adds_epu8(a, b))
BOTH(op_paddusw, _mm_adds_epu16(a, b))
BOTH(op_psubsb, _mm_subs_epi8(a, b))
BOTH(op_psubsw, _mm_subs_epi16(a, b))
BOTH(op_psubusb, _mm_subs_epu8(a, b))
BOTH(op_psubusw, _mm_subs_epu16(a, b))
BOTH(op_pcmpeqb, _mm_cmpeq_epi8(a, b))
BOTH(op_pcmpeqw, _mm_cmpeq_epi16(a, b))
BOTH(op_pcmpeqd, _mm_cmpeq_epi32(a, b))
BOTH(op_pcmpgtb, _mm_cmpgt_epi8(a, b))
BOTH(op_pcmpgtw, _mm_cmpgt_epi16(a, b))
BOTH(op_pcmpgtd, _mm_cmpgt_epi32(a, b))
BOTH(op_pand, _mm_and_si128(a, b))
BOTH(op_pandn, _mm_andnot_si128(a, b))
BOTH(op_por, _mm_or_si128(a, b))
BOTH(op_pxor, _mm_xor_si128(a, b))
BOTH(op_pmullw, _mm_mullo_epi16(a, b))
BOTH(op_pmulhw, _mm_mulhi_epi16(a, b))
BOTH(op_pmulhuw, _mm_mulhi_epu16(a, b))
BOTH(op_pmuludq, _mm_mul_epu32(a, b))
BOTH(op_pmaddwd, _mm_madd_epi16(a, b))
BOTH(op_pminub, _mm_min_epu8(a, b))
BOTH(op_pmaxub, _mm_max_epu8(a, b))
BOTH(op_pminsw, _mm_min_epi16(a, b))
BOTH(op_pmaxsw, _mm_max_epi16(a, b))
BOTH(op_pavgb, _mm_avg_epu8(a, b))
BOTH(op_pavgw, _mm_avg_epu16(a, b))
BOTH(op_psadbw, _mm_sad_epu8(a, b))
/* shifts by a 64-bit count in mm/m64 or the low quadword of xmm/m128 */
BOTH(op_psrlw, _mm_srl_epi16(a, b))
BOTH(op_psrld, _mm_srl_epi32(a, b))
BOTH(op_psrlq, _mm_srl_epi64(a, b))
BOTH(op_psraw, _mm_sra_epi16(a, b))
BOTH(op_psrad, _mm_sra_epi32(a, b))
BOTH(op_psllw, _mm_sll_epi16(a, b))
BOTH(op_pslld, _mm_sll_epi32(a, b))
BOTH(op_psllq, _mm_sll_epi64(a, b))

/* ---- unpacks and packs ---- */

XOP(op_punpcklbw_x, _mm_unpacklo_epi8(a, b))
XOP(op_punpcklwd_x, _mm_unpacklo_epi16(a, b))
XOP(op_punpckldq_x, _mm_unpacklo_epi32(a, b))
XOP(op_punpcklqdq_x, _mm_unpacklo_epi64(a, b))
XOP(op_punpckhbw_x, _mm_unpackhi_epi8(a, b))
XOP(op_punpckhwd_x, _mm_unpackhi_epi16(a, b))
XOP(op_punpckhdq_x, _mm_unpackhi_epi32(a, b))
XOP(op_punpckhqdq_x, _mm_unpackhi_epi64(a, b))
XOP(op_packsswb_x, _mm_packs_epi16(a, b))
XOP(op_packuswb_x, _mm_packus_epi16(a, b))
XOP(op_packssdw_x, _mm_packs_epi32(a, b))

/* MMX PUNPCKL*: the memory form reads only m32 */
#define MUNPCKL(name, expr)                                                                        \
    H(name)                                                                                        \
    {                                                                                              \
        mmx_enter(c, in);                                                                          \
        uint64_t s = in->mod == 3 ? mmx_get(c, in->rm) : vm_read(c, emu_ea(c, in), 4);             \
        __m128i b = q2x(s), a = q2x(mmx_get(c, in->reg));                                          \
        mmx_set(c, in->reg, x2q(expr));                                                            \
    }
MUNPCKL(op_punpcklbw_m, _mm_unpacklo_epi8(a, b))
MUNPCKL(op_punpcklwd_m, _mm_unpacklo_epi16(a, b))
MUNPCKL(op_punpckldq_m, _mm_unpacklo_epi32(a, b))

/* MMX PUNPCKH*: interleaving the two 64-bit values whole gives the low halves
 * in bytes 0..7 and the high halves in bytes 8..15 */
MOP(op_punpckhbw_m, _mm_srli_si128(_mm_unpacklo_epi8(a, b), 8))
MOP(op_punpckhwd_m, _mm_srli_si128(_mm_unpacklo_epi16(a, b), 8))
MOP(op_punpckhdq_m, _mm_srli_si128(_mm_unpacklo_epi32(a, b), 8))

/* MMX packs: the 128-bit pack leaves a's results in dword 0 and b's in dword 2 */
#define PACK64(x) _mm_shuffle_epi32((x), _MM_SHUFFLE(3, 3, 2, 0))
MOP(op_packsswb_m, PACK64(_mm_packs_epi16(a, b)))
MOP(op_packuswb_m, PACK64(_mm_packus_epi16(a, b)))
MOP(op_packssdw_m, PACK64(_mm_packs_epi32(a, b)))

/* ---- shifts by immediate: 0F 71/72/73 /r ib ---- */

/* Byte shifts of the whole register; counts above 15 clear it */
static __m128i bytes_srl(__m128i v, unsigned n)
{
    uint8_t buf[32] = {0};
    if (n > 16) n = 16;
    _mm_storeu_si128((__m128i *)buf, v);
    return _mm_loadu_si128((const __m128i *)(buf + n));
}

static __m128i bytes_sll(__m128i v, unsigned n)
{
    uint8_t buf[32] = {0};
    if (n > 16) n = 16;
    _mm_storeu_si128((__m128i *)(buf + 16), v);
    return _mm_loadu_si128((const __m128i *)(buf + 16 - n));
}

/* Shift selected by the opcode (71: words, 72: dwords, 73: qwords/bytes) and
 * ModRM.reg; returns false for an undefined combination. */
static bool shift_imm(int opc, int r, bool xmm, __m128i v, unsigned n, __m128i *out)
{
    __m128i cnt = _mm_cvtsi32_si128((int)n);
    switch ((opc & 3) << 3 | r) {
    case 1 << 3 | 2: *out = _mm_srl_epi16(v, cnt); return true;
    case 1 << 3 | 4: *out = _mm_sra_epi16(v, cnt); return true;
    case 1 << 3 | 6: *out = _mm_sll_epi16(v, cnt); return true;
    case 2 << 3 | 2: *out = _mm_srl_epi32(v, cnt); return true;
    case 2 << 3 | 4: *out = _mm_sra_epi32(v, cnt); return true;
    case 2 << 3 | 6: *out = _mm_sll_epi32(v, cnt); return true;
    case 3 << 3 | 2: *out = _mm_srl_epi64(v, cnt); return true;
    case 3 << 3 | 6: *out = _mm_sll_epi64(v, cnt); return true;
    case 3 << 3 | 3: *out = bytes_srl(v, n); return xmm;
    case 3 << 3 | 7: *out = bytes_sll(v, n); return xmm;
    default: return false;
    }
}

H(op_shift_imm_x)
{
    __m128i r;
    if (in->mod != 3 ||
        !shift_imm(in->opc, in->reg & 7, true, xmm_get(c, in->rm), in->imm & 0xff, &r))
        emu_ud(c);
    sse_enter(c, in);
    xmm_set(c, in->rm, r);
}

H(op_shift_imm_m)
{
    __m128i r;
    if (in->mod != 3 ||
        !shift_imm(in->opc, in->reg & 7, false, q2x(mmx_get(c, in->rm)), in->imm & 0xff, &r))
        emu_ud(c);
    mmx_enter(c, in);
    mmx_set(c, in->rm, x2q(r));
}

/* ---- registration ---- */

struct int_op {
    uint8_t opc;
    emu_handler mmx, xmm;
};

static const struct int_op int_ops[] = {
    {0x60, op_punpcklbw_m, op_punpcklbw_x},
    {0x61, op_punpcklwd_m, op_punpcklwd_x},
    {0x62, op_punpckldq_m, op_punpckldq_x},
    {0x63, op_packsswb_m, op_packsswb_x},
    {0x64, op_pcmpgtb_m, op_pcmpgtb_x},
    {0x65, op_pcmpgtw_m, op_pcmpgtw_x},
    {0x66, op_pcmpgtd_m, op_pcmpgtd_x},
    {0x67, op_packuswb_m, op_packuswb_x},
    {0x68, op_punpckhbw_m, op_punpckhbw_x},
    {0x69, op_punpckhwd_m, op_punpckhwd_x},
    {0x6a, op_punpckhdq_m, op_punpckhdq_x},
    {0x6b, op_packssdw_m, op_packssdw_x},
    {0x6c, NULL, op_punpcklqdq_x},
    {0x6d, NULL, op_punpckhqdq_x},
    {0x71, op_shift_imm_m, op_shift_imm_x},
    {0x72, op_shift_imm_m, op_shift_imm_x},
    {0x73, op_shift_imm_m, op_shift_imm_x},
    {0x74, op_pcmpeqb_m, op_pcmpeqb_x},
    {0x75, op_pcmpeqw_m, op_pcmpeqw_x},
    {0x76, op_pcmpeqd_m, op_pcmpeqd_x},
    {0xd1, op_psrlw_m, op_psrlw_x},
    {0xd2, op_psrld_m, op_psrld_x},
    {0xd3, op_psrlq_m, op_psrlq_x},
    {0xd4, op_paddq_m, op_paddq_x},
    {0xd5, op_pmullw_m, op_pmullw_x},
    {0xd8, op_psubusb_m, op_psubusb_x},
    {0xd9, op_psubusw_m, op_psubusw_x},
    {0xda, op_pminub_m, op_pminub_x},
    {0xdb, op_pand_m, op_pand_x},
    {0xdc, op_paddusb_m, op_paddusb_x},
    {0xdd, op_paddusw_m, op_paddusw_x},
    {0xde, op_pmaxub_m, op_pmaxub_x},
    {0xdf, op_pandn_m, op_pandn_x},
    {0xe0, op_pavgb_m, op_pavgb_x},
    {0xe1, op_psraw_m, op_psraw_x},
    {0xe2, op_psrad_m, op_psrad_x},
    {0xe3, op_pavgw_m, op_pavgw_x},
    {0xe4, op_pmulhuw_m, op_pmulhuw_x},
    {0xe5, op_pmulhw_m, op_pmulhw_x},
    {0xe8, op_psubsb_m, op_psubsb_x},
    {0xe9, op_psubsw_m, op_psubsw_x},
    {0xea, op_pminsw_m, op_pminsw_x},
    {0xeb, op_por_m, op_por_x},
    {0xec, op_paddsb_m, op_paddsb_x},
    {0xed, op_paddsw_m, op_paddsw_x},
    {0xee, op_pmaxsw_m, op_pmaxsw_x},
    {0xef, op_pxor_m, op_pxor_x},
    {0xf1, op_psllw_m, op_psllw_x},
    {0xf2, op_pslld_m, op_pslld_x},
    {0xf3, op_psllq_m, op_psllq_x},
    {0xf4, op_pmuludq_m, op_pmuludq_x},
    {0xf5, op_pmaddwd_m, op_pmaddwd_x},
    {0xf6, op_psadbw_m, op_psadbw_x},
    {0xf8, op_psubb_m, op_psubb_x},
    {0xf9, op_psubw_m, op_psubw_x},
    {0xfa, op_psubd_m, op_psubd_x},
    {0xfb, op_psubq_m, op_psubq_x},
    {0xfc, op_paddb_m, op_paddb_x},
    {0xfd, op_paddw_m, op_paddw_x},
    {0xfe, op_paddd_m, op_paddd_x},
};

void sse_int_init(void)
{
    for (size_t i = 0; i < sizeof(int_ops) / sizeof(int_ops[0]); i++) {
        const struct int_op *o = &int_ops[i];
        if (o->mmx) emu_register(MAP_0F, o->opc, MP_NONE, o->mmx);
        emu_register(MAP_0F, o->opc, MP_66, o->xmm);
    }
}
