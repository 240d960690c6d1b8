/* forms_sse.c — SSE/SSE2 and MMX forms.
 *
 * Every SSE case starts from random XMM registers (lanes biased by the form's
 * element type: ±0, ±inf, QNaN/SNaN, denormals, min/max normal, rounding ties,
 * integer-conversion limits) and a random MXCSR: any rounding mode, FTZ/DAZ,
 * sticky flags already set, and in 30% of cases random exception masks, so
 * unmasked exceptions raise #XM (vector 19) natively and must in the emulator.
 * 128-bit memory operands of legacy SSE instructions must be 16-byte aligned:
 * one case in ten is misaligned on purpose (#GP).
 *
 * Excluded: RCPPS/RCPSS/RSQRTPS/RSQRTSS (approximations differ between vendors). */
#include "difftest.h"

#include <stdio.h>
#include <string.h>

#define X   K_XMM
#define G32 K_G32
#define G64 K_G64
#define MM  K_MM
#define A   F_ALIGN

struct sx {
    const char *mn, *ops; /* mnemonic; operand pattern for the name ("x,x/m128") */
    uint8_t pfx, op;      /* mandatory prefix (0 = none), opcode after 0F */
    uint8_t w;            /* REX.W */
    int8_t ext;           /* /digit or -1 */
    uint8_t reg, rm;      /* ModRM.reg kind; rm register kind (0: memory only) */
    uint16_t mem;         /* memory operand size (0: register only) */
    uint8_t imm, lane;
    uint16_t fl;
    void (*setup)(struct dt_case *c);
};

/* Shift by register: bias the count (low 64 bits of the source) to boundaries. */
static void shift_count_setup(struct dt_case *c)
{
    if (dt_chance(c, 30)) return;
    uint64_t n = dt_count(c, 64);
    if (c->form->mem)
        dt_mem_set(c, c->addr, 8, n);
    else if (c->form->rm == X)
        c->in.fx.xmm[c->rm].q[0] = n;
    else
        memcpy(c->in.fx.st[(c->rm - dt_x87_top(c)) & 7], &n, 8);
}

/* Shift by immediate: counts around the element size matter most. */
static void shift_imm_setup(struct dt_case *c)
{
    if (dt_chance(c, 80)) dt_set_imm(c, dt_count(c, 64));
}

/* CMPPS & co.: legacy encodings define predicates 0..7 only. */
static void cmp_imm_setup(struct dt_case *c)
{
    dt_set_imm(c, c->imm & 7);
}

/* LDMXCSR: mostly a valid value; sometimes reserved bits (#GP). */
static void ldmxcsr_setup(struct dt_case *c)
{
    uint32_t v = (uint32_t)dt_rand(c) & 0xffff;
    if (dt_chance(c, 10)) v |= 1u << (18 + dt_below(c, 14));
    dt_mem_set(c, c->addr, 4, v);
}

static void maskmov_setup(struct dt_case *c)
{
    c->in.gpr[RDI] = DT_DATA_BASE + DT_MEM_LO + dt_below(c, DT_MEM_HI - DT_MEM_LO - 16);
}

/* FXSAVE: FOP/FIP/FDP are saved by AMD only while an exception is pending,
 * MXCSR_MASK is model-specific (Zen: 0x2ffff with MXCSR.MM), bytes 416..511 are
 * reserved or software-available: those bytes are not compared. */
static void fxsave_setup(struct dt_case *c)
{
    dt_ignore_mem(c, c->addr + 6, 18);
    dt_ignore_mem(c, c->addr + 28, 4);
    dt_ignore_mem(c, c->addr + 416, 96);
}

/* FXRSTOR: a random but valid image (a reserved MXCSR bit in 10%: #GP). */
static void fxrstor_setup(struct dt_case *c)
{
    struct dt_fx saved = c->in.fx, img;
    dt_x87_setup(c, (int)dt_below(c, 9));
    for (int i = 0; i < 16; i++)
        dt_fill_lane(c, &c->in.fx.xmm[i], 16, dt_chance(c, 50) ? L_F32 : L_F64);
    img = c->in.fx;
    c->in.fx = saved;
    img.mxcsr = (uint32_t)dt_rand(c) & 0xffff;
    if (dt_chance(c, 10)) img.mxcsr |= 1u << (18 + dt_below(c, 14));
    img.mxcsr_mask = 0;
    img.fop = (uint16_t)(dt_rand(c) & 0x7ff);
    img.fip = img.fdp = 0;
    uint64_t off = c->addr - DT_DATA_BASE;
    if (off + 512 <= DT_DATA_SIZE) memcpy(c->mem + off, &img, 416);
}

/* MMX forms: the registers are the x87 mantissas; give them integer lanes. */
static void mmx_setup(struct dt_case *c)
{
    for (int i = 0; i < 8; i++) {
        dt_fill_lane(c, c->in.fx.st[i], 8, c->form->lane ? c->form->lane : L_I16);
        uint16_t se = dt_chance(c, 70) ? 0xffff : (uint16_t)dt_rand(c);
        memcpy(c->in.fx.st[i] + 8, &se, 2);
    }
}

static void mmx_shift_count_setup(struct dt_case *c)
{
    mmx_setup(c);
    shift_count_setup(c);
}

static void mmx_shift_imm_setup(struct dt_case *c)
{
    mmx_setup(c);
    shift_imm_setup(c);
}

static void mmx_maskmov_setup(struct dt_case *c)
{
    mmx_setup(c);
    maskmov_setup(c);
}

static const char *kname(int k, int memsz, bool mem)
{
    if (mem) {
        static const char *const m[] = {
            [1] = "m8", [2] = "m16", [4] = "m32", [8] = "m64", [16] = "m128"};
        if (memsz == 512) return "m512";
        return memsz <= 16 && m[memsz] ? m[memsz] : "m";
    }
    switch (k) {
    case X: return "xmm";
    case MM: return "mm";
    case G32: return "r32";
    case G64: return "r64";
    default: return "?";
    }
}

static void add_sx(const struct sx *x, enum dt_cat cat)
{
    for (int mem = 0; mem < 2; mem++) {
        if (mem ? !x->mem : !x->rm) continue;
        struct dt_form f = {.cat = cat, .ext = x->ext, .flags = FLG_ALL};
        if (x->pfx) f.pfx[f.npfx++] = x->pfx;
        f.rexw = x->w;
        f.nop = 2, f.op[0] = 0x0f, f.op[1] = x->op;
        f.reg = x->ext < 0 ? x->reg : 0;
        f.rm = x->rm;
        f.mem = mem ? x->mem : 0;
        f.imm = x->imm;
        f.lane = x->lane;
        f.fl = mem ? x->fl : 0;
        f.use = cat == CAT_MMX || x->mem == 512 ? (U_X87 | U_XMM) : U_XMM;
        if (x->lane == L_F32 || x->lane == L_F64)
            f.weight = 2; /* floating point: larger input space */
        f.setup = x->setup;
        if (cat == CAT_MMX && !f.setup) f.setup = mmx_setup;
        /* operand names: "reg,rm[,imm8]" with the reg operand omitted for /digit */
        const char *rmn = kname(x->rm, x->mem, mem);
        char ops[64];
        if (x->ops) {
            snprintf(ops, sizeof(ops), "%s", x->ops);
        } else if (x->ext >= 0) {
            snprintf(ops, sizeof(ops), "%s%s", rmn, x->imm ? ",imm8" : "");
        } else {
            snprintf(ops, sizeof(ops), "%s,%s%s", kname(x->reg, 0, false), rmn,
                     x->imm ? ",imm8" : "");
        }
        char enc[32];
        int n = 0;
        if (x->pfx) n += snprintf(enc + n, sizeof(enc) - (size_t)n, "%02x ", x->pfx);
        if (x->w) n += snprintf(enc + n, sizeof(enc) - (size_t)n, "rex.w ");
        n += snprintf(enc + n, sizeof(enc) - (size_t)n, "0f %02x", x->op);
        if (x->ext >= 0) snprintf(enc + n, sizeof(enc) - (size_t)n, " /%d", x->ext);
        f.name = dt_strdup_printf("%s/%s %s%s [%s]", dt_cat_name[cat], x->mn, ops,
                                  x->ops && mem && x->rm ? " (mem)" : "", enc);
        dt_add(&f);
    }
}

/* ---- the table ---- */
#define R(mn, pfx, op, reg, rm, mem, lane, fl)                                                     \
    {                                                                                              \
        mn, NULL, pfx, op, 0, -1, reg, rm, mem, 0, lane, fl, NULL                                  \
    }
#define RI(mn, pfx, op, reg, rm, mem, lane, fl, setup)                                             \
    {                                                                                              \
        mn, NULL, pfx, op, 0, -1, reg, rm, mem, 1, lane, fl, setup                                 \
    }
#define RW(mn, pfx, op, reg, rm, mem, lane)                                                        \
    {                                                                                              \
        mn, NULL, pfx, op, 1, -1, reg, rm, mem, 0, lane, 0, NULL                                   \
    }

static const struct sx sse_tab[] = {
    /* moves */
    R("movaps", 0, 0x28, X, X, 16, L_F32, A),
    R("movapd", 0x66, 0x28, X, X, 16, L_F64, A),
    R("movups", 0, 0x10, X, X, 16, L_F32, 0),
    R("movupd", 0x66, 0x10, X, X, 16, L_F64, 0),
    R("movdqa", 0x66, 0x6f, X, X, 16, L_I32, A),
    R("movdqu", 0xf3, 0x6f, X, X, 16, L_I8, 0),
    R("movss", 0xf3, 0x10, X, X, 4, L_F32, 0),
    R("movsd", 0xf2, 0x10, X, X, 8, L_F64, 0),
    {"movaps", "xmm/m128,xmm", 0, 0x29, 0, -1, X, X, 16, 0, L_F32, A, NULL},
    {"movapd", "xmm/m128,xmm", 0x66, 0x29, 0, -1, X, X, 16, 0, L_F64, A, NULL},
    {"movups", "xmm/m128,xmm", 0, 0x11, 0, -1, X, X, 16, 0, L_F32, 0, NULL},
    {"movupd", "xmm/m128,xmm", 0x66, 0x11, 0, -1, X, X, 16, 0, L_F64, 0, NULL},
    {"movdqa", "xmm/m128,xmm", 0x66, 0x7f, 0, -1, X, X, 16, 0, L_I32, A, NULL},
    {"movdqu", "xmm/m128,xmm", 0xf3, 0x7f, 0, -1, X, X, 16, 0, L_I8, 0, NULL},
    {"movss", "xmm/m32,xmm", 0xf3, 0x11, 0, -1, X, X, 4, 0, L_F32, 0, NULL},
    {"movsd", "xmm/m64,xmm", 0xf2, 0x11, 0, -1, X, X, 8, 0, L_F64, 0, NULL},
    R("movq", 0xf3, 0x7e, X, X, 8, L_I64, 0),
    {"movq", "xmm/m64,xmm", 0x66, 0xd6, 0, -1, X, X, 8, 0, L_I64, 0, NULL},
    R("movd", 0x66, 0x6e, X, G32, 4, L_I32, 0),
    RW("movq", 0x66, 0x6e, X, G64, 8, L_I64),
    {"movd", "r/m32,xmm", 0x66, 0x7e, 0, -1, X, G32, 4, 0, L_I32, 0, NULL},
    {"movq", "r/m64,xmm", 0x66, 0x7e, 1, -1, X, G64, 8, 0, L_I64, 0, NULL},
    R("movlps", 0, 0x12, X, 0, 8, L_F32, 0),
    R("movhlps", 0, 0x12, X, X, 0, L_F32, 0),
    R("movhps", 0, 0x16, X, 0, 8, L_F32, 0),
    R("movlhps", 0, 0x16, X, X, 0, L_F32, 0),
    {"movlps", "m64,xmm", 0, 0x13, 0, -1, X, 0, 8, 0, L_F32, 0, NULL},
    {"movhps", "m64,xmm", 0, 0x17, 0, -1, X, 0, 8, 0, L_F32, 0, NULL},
    R("movlpd", 0x66, 0x12, X, 0, 8, L_F64, 0),
    R("movhpd", 0x66, 0x16, X, 0, 8, L_F64, 0),
    {"movlpd", "m64,xmm", 0x66, 0x13, 0, -1, X, 0, 8, 0, L_F64, 0, NULL},
    {"movhpd", "m64,xmm", 0x66, 0x17, 0, -1, X, 0, 8, 0, L_F64, 0, NULL},
    R("movmskps", 0, 0x50, G32, X, 0, L_F32, 0),
    R("movmskpd", 0x66, 0x50, G32, X, 0, L_F64, 0),
    R("pmovmskb", 0x66, 0xd7, G32, X, 0, L_I8, 0),
    {"movntdq", "m128,xmm", 0x66, 0xe7, 0, -1, X, 0, 16, 0, L_I32, A, NULL},
    {"movntps", "m128,xmm", 0, 0x2b, 0, -1, X, 0, 16, 0, L_F32, A, NULL},
    {"movntpd", "m128,xmm", 0x66, 0x2b, 0, -1, X, 0, 16, 0, L_F64, A, NULL},
    {"movnti", "m32,r32", 0, 0xc3, 0, -1, G32, 0, 4, 0, L_I32, 0, NULL},
    {"movnti", "m64,r64", 0, 0xc3, 1, -1, G64, 0, 8, 0, L_I64, 0, NULL},
    {"maskmovdqu", "xmm,xmm", 0x66, 0xf7, 0, -1, X, X, 0, 0, L_I8, 0, maskmov_setup},
    RI("pextrw", 0x66, 0xc5, G32, X, 0, L_I16, 0, NULL),
    RI("pinsrw", 0x66, 0xc4, X, G32, 2, L_I16, 0, NULL),
    {"ldmxcsr", "m32", 0, 0xae, 0, 2, 0, 0, 4, 0, L_I32, 0, ldmxcsr_setup},
    {"stmxcsr", "m32", 0, 0xae, 0, 3, 0, 0, 4, 0, L_I32, 0, NULL},
    {"fxsave", "m512", 0, 0xae, 0, 0, 0, 0, 512, 0, L_I64, A, fxsave_setup},
    {"fxrstor", "m512", 0, 0xae, 0, 1, 0, 0, 512, 0, L_I64, A, fxrstor_setup},
    {"fxsave64", "m512", 0, 0xae, 1, 0, 0, 0, 512, 0, L_I64, A, fxsave_setup},
    {"fxrstor64", "m512", 0, 0xae, 1, 1, 0, 0, 512, 0, L_I64, A, fxrstor_setup},

    /* logic */
    R("pand", 0x66, 0xdb, X, X, 16, L_I64, A),
    R("pandn", 0x66, 0xdf, X, X, 16, L_I64, A),
    R("por", 0x66, 0xeb, X, X, 16, L_I64, A),
    R("pxor", 0x66, 0xef, X, X, 16, L_I64, A),
    R("andps", 0, 0x54, X, X, 16, L_F32, A),
    R("andnps", 0, 0x55, X, X, 16, L_F32, A),
    R("orps", 0, 0x56, X, X, 16, L_F32, A),
    R("xorps", 0, 0x57, X, X, 16, L_F32, A),
    R("andpd", 0x66, 0x54, X, X, 16, L_F64, A),
    R("andnpd", 0x66, 0x55, X, X, 16, L_F64, A),
    R("orpd", 0x66, 0x56, X, X, 16, L_F64, A),
    R("xorpd", 0x66, 0x57, X, X, 16, L_F64, A),

    /* integer compare and arithmetic */
    R("pcmpeqb", 0x66, 0x74, X, X, 16, L_I8, A),
    R("pcmpeqw", 0x66, 0x75, X, X, 16, L_I16, A),
    R("pcmpeqd", 0x66, 0x76, X, X, 16, L_I32, A),
    R("pcmpgtb", 0x66, 0x64, X, X, 16, L_I8, A),
    R("pcmpgtw", 0x66, 0x65, X, X, 16, L_I16, A),
    R("pcmpgtd", 0x66, 0x66, X, X, 16, L_I32, A),
    R("paddb", 0x66, 0xfc, X, X, 16, L_I8, A),
    R("paddw", 0x66, 0xfd, X, X, 16, L_I16, A),
    R("paddd", 0x66, 0xfe, X, X, 16, L_I32, A),
    R("paddq", 0x66, 0xd4, X, X, 16, L_I64, A),
    R("psubb", 0x66, 0xf8, X, X, 16, L_I8, A),
    R("psubw", 0x66, 0xf9, X, X, 16, L_I16, A),
    R("psubd", 0x66, 0xfa, X, X, 16, L_I32, A),
    R("psubq", 0x66, 0xfb, X, X, 16, L_I64, A),
    R("paddsb", 0x66, 0xec, X, X, 16, L_I8, A),
    R("paddsw", 0x66, 0xed, X, X, 16, L_I16, A),
    R("paddusb", 0x66, 0xdc, X, X, 16, L_I8, A),
    R("paddusw", 0x66, 0xdd, X, X, 16, L_I16, A),
    R("psubsb", 0x66, 0xe8, X, X, 16, L_I8, A),
    R("psubsw", 0x66, 0xe9, X, X, 16, L_I16, A),
    R("psubusb", 0x66, 0xd8, X, X, 16, L_I8, A),
    R("psubusw", 0x66, 0xd9, X, X, 16, L_I16, A),
    R("pmullw", 0x66, 0xd5, X, X, 16, L_I16, A),
    R("pmulhw", 0x66, 0xe5, X, X, 16, L_I16, A),
    R("pmulhuw", 0x66, 0xe4, X, X, 16, L_I16, A),
    R("pmuludq", 0x66, 0xf4, X, X, 16, L_I32, A),
    R("pmaddwd", 0x66, 0xf5, X, X, 16, L_I16, A),
    R("pavgb", 0x66, 0xe0, X, X, 16, L_I8, A),
    R("pavgw", 0x66, 0xe3, X, X, 16, L_I16, A),
    R("psadbw", 0x66, 0xf6, X, X, 16, L_I8, A),
    R("pminub", 0x66, 0xda, X, X, 16, L_I8, A),
    R("pmaxub", 0x66, 0xde, X, X, 16, L_I8, A),
    R("pminsw", 0x66, 0xea, X, X, 16, L_I16, A),
    R("pmaxsw", 0x66, 0xee, X, X, 16, L_I16, A),

    /* pack, unpack, shuffle */
    R("punpcklbw", 0x66, 0x60, X, X, 16, L_I8, A),
    R("punpcklwd", 0x66, 0x61, X, X, 16, L_I16, A),
    R("punpckldq", 0x66, 0x62, X, X, 16, L_I32, A),
    R("punpcklqdq", 0x66, 0x6c, X, X, 16, L_I64, A),
    R("punpckhbw", 0x66, 0x68, X, X, 16, L_I8, A),
    R("punpckhwd", 0x66, 0x69, X, X, 16, L_I16, A),
    R("punpckhdq", 0x66, 0x6a, X, X, 16, L_I32, A),
    R("punpckhqdq", 0x66, 0x6d, X, X, 16, L_I64, A),
    R("packsswb", 0x66, 0x63, X, X, 16, L_I16, A),
    R("packssdw", 0x66, 0x6b, X, X, 16, L_I32, A),
    R("packuswb", 0x66, 0x67, X, X, 16, L_I16, A),
    R("unpcklps", 0, 0x14, X, X, 16, L_F32, A),
    R("unpckhps", 0, 0x15, X, X, 16, L_F32, A),
    R("unpcklpd", 0x66, 0x14, X, X, 16, L_F64, A),
    R("unpckhpd", 0x66, 0x15, X, X, 16, L_F64, A),
    RI("pshufd", 0x66, 0x70, X, X, 16, L_I32, A, NULL),
    RI("pshuflw", 0xf2, 0x70, X, X, 16, L_I16, A, NULL),
    RI("pshufhw", 0xf3, 0x70, X, X, 16, L_I16, A, NULL),
    RI("shufps", 0, 0xc6, X, X, 16, L_F32, A, NULL),
    RI("shufpd", 0x66, 0xc6, X, X, 16, L_F64, A, NULL),

    /* shifts by xmm/m128 */
    {"psrlw", NULL, 0x66, 0xd1, 0, -1, X, X, 16, 0, L_I16, A, shift_count_setup},
    {"psrld", NULL, 0x66, 0xd2, 0, -1, X, X, 16, 0, L_I32, A, shift_count_setup},
    {"psrlq", NULL, 0x66, 0xd3, 0, -1, X, X, 16, 0, L_I64, A, shift_count_setup},
    {"psraw", NULL, 0x66, 0xe1, 0, -1, X, X, 16, 0, L_I16, A, shift_count_setup},
    {"psrad", NULL, 0x66, 0xe2, 0, -1, X, X, 16, 0, L_I32, A, shift_count_setup},
    {"psllw", NULL, 0x66, 0xf1, 0, -1, X, X, 16, 0, L_I16, A, shift_count_setup},
    {"pslld", NULL, 0x66, 0xf2, 0, -1, X, X, 16, 0, L_I32, A, shift_count_setup},
    {"psllq", NULL, 0x66, 0xf3, 0, -1, X, X, 16, 0, L_I64, A, shift_count_setup},
    /* shifts by imm8 */
    {"psrlw", NULL, 0x66, 0x71, 0, 2, 0, X, 0, 1, L_I16, 0, shift_imm_setup},
    {"psraw", NULL, 0x66, 0x71, 0, 4, 0, X, 0, 1, L_I16, 0, shift_imm_setup},
    {"psllw", NULL, 0x66, 0x71, 0, 6, 0, X, 0, 1, L_I16, 0, shift_imm_setup},
    {"psrld", NULL, 0x66, 0x72, 0, 2, 0, X, 0, 1, L_I32, 0, shift_imm_setup},
    {"psrad", NULL, 0x66, 0x72, 0, 4, 0, X, 0, 1, L_I32, 0, shift_imm_setup},
    {"pslld", NULL, 0x66, 0x72, 0, 6, 0, X, 0, 1, L_I32, 0, shift_imm_setup},
    {"psrlq", NULL, 0x66, 0x73, 0, 2, 0, X, 0, 1, L_I64, 0, shift_imm_setup},
    {"psrldq", NULL, 0x66, 0x73, 0, 3, 0, X, 0, 1, L_I8, 0, shift_imm_setup},
    {"psllq", NULL, 0x66, 0x73, 0, 6, 0, X, 0, 1, L_I64, 0, shift_imm_setup},
    {"pslldq", NULL, 0x66, 0x73, 0, 7, 0, X, 0, 1, L_I8, 0, shift_imm_setup},

    /* conversions */
    R("cvtsi2ss", 0xf3, 0x2a, X, G32, 4, L_F32, 0),
    RW("cvtsi2ss", 0xf3, 0x2a, X, G64, 8, L_F32),
    R("cvtsi2sd", 0xf2, 0x2a, X, G32, 4, L_F64, 0),
    RW("cvtsi2sd", 0xf2, 0x2a, X, G64, 8, L_F64),
    R("cvtss2si", 0xf3, 0x2d, G32, X, 4, L_F32, 0),
    RW("cvtss2si", 0xf3, 0x2d, G64, X, 4, L_F32),
    R("cvttss2si", 0xf3, 0x2c, G32, X, 4, L_F32, 0),
    RW("cvttss2si", 0xf3, 0x2c, G64, X, 4, L_F32),
    R("cvtsd2si", 0xf2, 0x2d, G32, X, 8, L_F64, 0),
    RW("cvtsd2si", 0xf2, 0x2d, G64, X, 8, L_F64),
    R("cvttsd2si", 0xf2, 0x2c, G32, X, 8, L_F64, 0),
    RW("cvttsd2si", 0xf2, 0x2c, G64, X, 8, L_F64),
    R("cvtss2sd", 0xf3, 0x5a, X, X, 4, L_F32, 0),
    R("cvtsd2ss", 0xf2, 0x5a, X, X, 8, L_F64, 0),
    R("cvtps2pd", 0, 0x5a, X, X, 8, L_F32, 0),
    R("cvtpd2ps", 0x66, 0x5a, X, X, 16, L_F64, A),
    R("cvtdq2ps", 0, 0x5b, X, X, 16, L_I32, A),
    R("cvtps2dq", 0x66, 0x5b, X, X, 16, L_F32, A),
    R("cvttps2dq", 0xf3, 0x5b, X, X, 16, L_F32, A),
    R("cvtdq2pd", 0xf3, 0xe6, X, X, 8, L_I32, 0),
    R("cvtpd2dq", 0xf2, 0xe6, X, X, 16, L_F64, A),
    R("cvttpd2dq", 0x66, 0xe6, X, X, 16, L_F64, A),

    /* compares (COMIS/UCOMIS define ZF PF CF and clear OF SF AF) */
    R("ucomiss", 0, 0x2e, X, X, 4, L_F32, 0),
    R("comiss", 0, 0x2f, X, X, 4, L_F32, 0),
    R("ucomisd", 0x66, 0x2e, X, X, 8, L_F64, 0),
    R("comisd", 0x66, 0x2f, X, X, 8, L_F64, 0),
    RI("cmpps", 0, 0xc2, X, X, 16, L_F32, A, cmp_imm_setup),
    RI("cmppd", 0x66, 0xc2, X, X, 16, L_F64, A, cmp_imm_setup),
    RI("cmpss", 0xf3, 0xc2, X, X, 4, L_F32, 0, cmp_imm_setup),
    RI("cmpsd", 0xf2, 0xc2, X, X, 8, L_F64, 0, cmp_imm_setup),
};

static const struct sx mmx_tab[] = {
    R("movq", 0, 0x6f, MM, MM, 8, L_I64, 0),
    {"movq", "mm/m64,mm", 0, 0x7f, 0, -1, MM, MM, 8, 0, L_I64, 0, NULL},
    R("movd", 0, 0x6e, MM, G32, 4, L_I32, 0),
    RW("movq", 0, 0x6e, MM, G64, 8, L_I64),
    {"movd", "r/m32,mm", 0, 0x7e, 0, -1, MM, G32, 4, 0, L_I32, 0, NULL},
    {"movq", "r/m64,mm", 0, 0x7e, 1, -1, MM, G64, 8, 0, L_I64, 0, NULL},
    R("paddb", 0, 0xfc, MM, MM, 8, L_I8, 0),
    R("paddw", 0, 0xfd, MM, MM, 8, L_I16, 0),
    R("paddd", 0, 0xfe, MM, MM, 8, L_I32, 0),
    R("paddq", 0, 0xd4, MM, MM, 8, L_I64, 0),
    R("psubsw", 0, 0xe9, MM, MM, 8, L_I16, 0),
    R("paddusb", 0, 0xdc, MM, MM, 8, L_I8, 0),
    R("pxor", 0, 0xef, MM, MM, 8, L_I64, 0),
    R("pandn", 0, 0xdf, MM, MM, 8, L_I64, 0),
    R("pcmpeqb", 0, 0x74, MM, MM, 8, L_I8, 0),
    R("pcmpgtw", 0, 0x65, MM, MM, 8, L_I16, 0),
    R("pmullw", 0, 0xd5, MM, MM, 8, L_I16, 0),
    R("pmulhw", 0, 0xe5, MM, MM, 8, L_I16, 0),
    R("pmaddwd", 0, 0xf5, MM, MM, 8, L_I16, 0),
    R("pmuludq", 0, 0xf4, MM, MM, 8, L_I32, 0),
    R("punpcklbw", 0, 0x60, MM, MM, 4, L_I8, 0),
    R("punpckhdq", 0, 0x6a, MM, MM, 8, L_I32, 0),
    R("packsswb", 0, 0x63, MM, MM, 8, L_I16, 0),
    R("packuswb", 0, 0x67, MM, MM, 8, L_I16, 0),
    R("pmaxub", 0, 0xde, MM, MM, 8, L_I8, 0),
    R("pminsw", 0, 0xea, MM, MM, 8, L_I16, 0),
    R("pavgb", 0, 0xe0, MM, MM, 8, L_I8, 0),
    R("psadbw", 0, 0xf6, MM, MM, 8, L_I8, 0),
    R("pmovmskb", 0, 0xd7, G32, MM, 0, L_I8, 0),
    RI("pshufw", 0, 0x70, MM, MM, 8, L_I16, 0, NULL),
    RI("pextrw", 0, 0xc5, G32, MM, 0, L_I16, 0, NULL),
    RI("pinsrw", 0, 0xc4, MM, G32, 2, L_I16, 0, NULL),
    {"psrlw", NULL, 0, 0xd1, 0, -1, MM, MM, 8, 0, L_I16, 0, mmx_shift_count_setup},
    {"psrad", NULL, 0, 0xe2, 0, -1, MM, MM, 8, 0, L_I32, 0, mmx_shift_count_setup},
    {"psllq", NULL, 0, 0xf3, 0, -1, MM, MM, 8, 0, L_I64, 0, mmx_shift_count_setup},
    {"psllw", NULL, 0, 0x71, 0, 6, 0, MM, 0, 1, L_I16, 0, mmx_shift_imm_setup},
    {"psrad", NULL, 0, 0x72, 0, 4, 0, MM, 0, 1, L_I32, 0, mmx_shift_imm_setup},
    {"psrlq", NULL, 0, 0x73, 0, 2, 0, MM, 0, 1, L_I64, 0, mmx_shift_imm_setup},
    {"movntq", "m64,mm", 0, 0xe7, 0, -1, MM, 0, 8, 0, L_I64, 0, NULL},
    {"maskmovq", "mm,mm", 0, 0xf7, 0, -1, MM, MM, 0, 0, L_I8, 0, mmx_maskmov_setup},
    R("cvtpi2ps", 0, 0x2a, X, MM, 8, L_I32, 0),
    R("cvtps2pi", 0, 0x2d, MM, X, 8, L_F32, 0),
    R("cvttps2pi", 0, 0x2c, MM, X, 8, L_F32, 0),
    R("cvtpi2pd", 0x66, 0x2a, X, MM, 8, L_I32, 0),
    R("cvtpd2pi", 0x66, 0x2d, MM, X, 16, L_F64, A),
    R("cvttpd2pi", 0x66, 0x2c, MM, X, 16, L_F64, A),
    R("movq2dq", 0xf3, 0xd6, X, MM, 0, L_I64, 0),
    R("movdq2q", 0xf2, 0xd6, MM, X, 0, L_I64, 0),
};

static void emms_encode(struct dt_case *c)
{
    dt_emit8(c, 0x0f);
    dt_emit8(c, 0x77);
}

void dt_forms_sse(void)
{
    for (size_t i = 0; i < sizeof(sse_tab) / sizeof(sse_tab[0]); i++)
        add_sx(&sse_tab[i], CAT_SSE);

    /* floating-point arithmetic: 7 operations x ps/pd/ss/sd */
    static const struct {
        const char *mn;
        uint8_t op;
    } ar[7] = {{"add", 0x58}, {"mul", 0x59}, {"sub", 0x5c}, {"min", 0x5d},
               {"div", 0x5e}, {"max", 0x5f}, {"sqrt", 0x51}};
    static const struct {
        const char *sfx;
        uint8_t pfx, mem, lane;
        uint16_t fl;
    } ty[4] = {{"ps", 0, 16, L_F32, A},
               {"pd", 0x66, 16, L_F64, A},
               {"ss", 0xf3, 4, L_F32, 0},
               {"sd", 0xf2, 8, L_F64, 0}};
    for (int i = 0; i < 7; i++)
        for (int t = 0; t < 4; t++) {
            char mn[16];
            snprintf(mn, sizeof(mn), "%s%s", ar[i].mn, ty[t].sfx);
            struct sx x = {mn, NULL,      ty[t].pfx, ar[i].op,   0,        -1,  X,
                           X,  ty[t].mem, 0,         ty[t].lane, ty[t].fl, NULL};
            add_sx(&x, CAT_SSE); /* the form name is built from a copy */
        }

    for (size_t i = 0; i < sizeof(mmx_tab) / sizeof(mmx_tab[0]); i++)
        add_sx(&mmx_tab[i], CAT_MMX);
    struct dt_form f = {.cat = CAT_MMX, .ext = -1, .flags = FLG_ALL, .use = U_X87 | U_XMM};
    f.name = "mmx/emms [0f 77]";
    f.encode = emms_encode;
    f.setup = mmx_setup;
    dt_add(&f);
}
