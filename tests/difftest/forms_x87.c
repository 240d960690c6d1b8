/* forms_x87.c — x87 forms: loads and stores (real, integer, extended), the six
 * arithmetic operations in every encoding (memory, ST(0)/ST(i), ST(i)/ST(0),
 * popping, integer memory), compares into FSW and EFLAGS, FXCH, FCHS, FABS,
 * constants, FRNDINT, FSCALE, FPREM/FPREM1, FSQRT, FXTRACT, stack and control
 * word operations, FCMOVcc, FNSTSW/FNSTCW/FLDCW.
 *
 * Inputs: random stack depth and TOP (sometimes too shallow: stack underflow;
 * full: overflow on loads), random precision and rounding control, sometimes
 * unmasked exceptions, and in 5% of cases a pending unmasked exception so a
 * waiting instruction takes #MF (vector 16). Register values are edge-biased
 * 80-bit encodings (no pseudo-NaN/pseudo-infinity/unnormal operands: their
 * handling differs across processor generations).
 *
 * FSW: C0/C2/C3 (and for some instructions C1) are undefined after most
 * instructions; each form declares the bits the manuals define (fsw_mask). By
 * default the whole FSW is compared anyway — the emulator reproduces what the
 * host does — and --arch-fsw restricts the comparison to the defined bits.
 * FOP, FIP, FDP are not compared (AMD saves them only while an exception is
 * pending). Transcendental instructions
 * (FSIN, FPTAN, F2XM1, FYL2X, ...) are excluded: their results are
 * implementation-specific. */
#include "difftest.h"

#include <string.h>

#define C0      0x0100
#define C1      0x0200
#define C2      0x0400
#define C3      0x4000
#define FSW_ALL 0xffff
#define FSW_C1  (0xffff & ~(C0 | C2 | C3))      /* C1 defined, C0 C2 C3 not */
#define FSW_NOC (0xffff & ~(C0 | C1 | C2 | C3)) /* no condition code defined */

static void add(const char *name, uint8_t b0, int ext, uint8_t rm_kind, uint16_t mem, uint8_t lane,
                uint16_t fsw_mask, uint8_t need, void (*setup)(struct dt_case *))
{
    struct dt_form f = {.cat = CAT_X87, .ext = (int8_t)ext, .flags = FLG_ALL};
    f.name = name;
    f.nop = 1, f.op[0] = b0;
    f.rm = rm_kind;
    f.mem = mem;
    f.lane = lane;
    f.use = U_X87;
    f.fsw_mask = fsw_mask;
    f.x87_need = need;
    f.setup = setup;
    f.weight = 2; /* floating point: larger input space */
    dt_add(&f);
}

/* Two-byte forms without ModRM operands (D9 E8 FLD1 ...). */
static void add2(const char *name, uint8_t b0, uint8_t b1, uint16_t fsw_mask, uint8_t need,
                 uint32_t flags)
{
    struct dt_form f = {.cat = CAT_X87, .ext = -1, .flags = flags};
    f.name = name;
    f.nop = 2, f.op[0] = b0, f.op[1] = b1;
    f.use = U_X87;
    f.fsw_mask = fsw_mask;
    f.x87_need = need;
    f.weight = 2;
    dt_add(&f);
}

/* FLDCW: valid control words (reserved bits behave differently across vendors). */
static void fldcw_setup(struct dt_case *c)
{
    static const uint16_t pc[3] = {0, 2, 3};
    uint16_t v = 0x40 | (uint16_t)(pc[dt_below(c, 3)] << 8) | (uint16_t)(dt_below(c, 4) << 10);
    v |= dt_chance(c, 70) ? 0x3f : (uint16_t)(dt_rand(c) & 0x3f);
    dt_mem_set(c, c->addr, 2, v);
}

/* FSCALE: a scale factor of moderate size in ST(1) most of the time (huge ones
 * only saturate). */
static void fscale_setup(struct dt_case *c)
{
    if (dt_chance(c, 60)) {
        int64_t k = (int64_t)dt_below(c, 200) - 100;
        uint64_t mant = (uint64_t)(k < 0 ? -k : k);
        uint8_t v[10] = {0};
        if (mant) {
            int msb = 63 - __builtin_clzll(mant);
            uint64_t m = mant << (63 - msb);
            if (dt_chance(c, 30))
                m |= dt_rand(c) >> (msb + 1); /* fractional part: truncated toward 0 */
            uint16_t se = (uint16_t)(0x3fff + msb) | (k < 0 ? 0x8000 : 0);
            memcpy(v, &m, 8);
            memcpy(v + 8, &se, 2);
        }
        memcpy(c->in.fx.st[1], v, 10);
    }
}

/* FPREM/FPREM1: exponent differences both below and above 64 (partial remainder). */
static void fprem_setup(struct dt_case *c)
{
    if (dt_chance(c, 50)) {
        uint16_t e0, e1;
        memcpy(&e0, c->in.fx.st[0] + 8, 2);
        memcpy(&e1, c->in.fx.st[1] + 8, 2);
        if ((e0 & 0x7fff) && (e0 & 0x7fff) != 0x7fff) {
            uint16_t d = (uint16_t)dt_below(c, 100);
            uint16_t ne = (uint16_t)(((e0 & 0x7fff) > d ? (e0 & 0x7fff) - d : 1) | (e1 & 0x8000));
            uint64_t m;
            memcpy(&m, c->in.fx.st[1], 8);
            m |= 1ull << 63;
            memcpy(c->in.fx.st[1], &m, 8);
            memcpy(c->in.fx.st[1] + 8, &ne, 2);
        }
    }
}

static const char *const ar_mn[8] = {"fadd", "fmul",  "fcom", "fcomp",
                                     "fsub", "fsubr", "fdiv", "fdivr"};

void dt_forms_x87(void)
{
    /* loads */
    add("x87/fld m32 [d9 /0]", 0xd9, 0, 0, 4, L_F32, FSW_C1, 0, NULL);
    add("x87/fld m64 [dd /0]", 0xdd, 0, 0, 8, L_F64, FSW_C1, 0, NULL);
    add("x87/fld m80 [db /5]", 0xdb, 5, 0, 10, L_F80, FSW_C1, 0, NULL);
    add("x87/fld st(i) [d9 c0+i]", 0xd9, 0, K_ST, 0, 0, FSW_C1, 1, NULL);
    add("x87/fild m16 [df /0]", 0xdf, 0, 0, 2, L_I16, FSW_C1, 0, NULL);
    add("x87/fild m32 [db /0]", 0xdb, 0, 0, 4, L_I32, FSW_C1, 0, NULL);
    add("x87/fild m64 [df /5]", 0xdf, 5, 0, 8, L_I64, FSW_C1, 0, NULL);
    /* stores */
    add("x87/fst m32 [d9 /2]", 0xd9, 2, 0, 4, L_F32, FSW_C1, 1, NULL);
    add("x87/fst m64 [dd /2]", 0xdd, 2, 0, 8, L_F64, FSW_C1, 1, NULL);
    add("x87/fstp m32 [d9 /3]", 0xd9, 3, 0, 4, L_F32, FSW_C1, 1, NULL);
    add("x87/fstp m64 [dd /3]", 0xdd, 3, 0, 8, L_F64, FSW_C1, 1, NULL);
    add("x87/fstp m80 [db /7]", 0xdb, 7, 0, 10, L_F80, FSW_C1, 1, NULL);
    add("x87/fst st(i) [dd d0+i]", 0xdd, 2, K_ST, 0, 0, FSW_C1, 1, NULL);
    add("x87/fstp st(i) [dd d8+i]", 0xdd, 3, K_ST, 0, 0, FSW_C1, 1, NULL);
    add("x87/fist m16 [df /2]", 0xdf, 2, 0, 2, L_I16, FSW_C1, 1, NULL);
    add("x87/fist m32 [db /2]", 0xdb, 2, 0, 4, L_I32, FSW_C1, 1, NULL);
    add("x87/fistp m16 [df /3]", 0xdf, 3, 0, 2, L_I16, FSW_C1, 1, NULL);
    add("x87/fistp m32 [db /3]", 0xdb, 3, 0, 4, L_I32, FSW_C1, 1, NULL);
    add("x87/fistp m64 [df /7]", 0xdf, 7, 0, 8, L_I64, FSW_C1, 1, NULL);

    /* arithmetic and compares in every encoding */
    for (int e = 0; e < 8; e++) {
        bool cmp = e == 2 || e == 3;
        uint16_t m = cmp ? FSW_ALL : FSW_C1;
        add(dt_strdup_printf("x87/%s m32 [d8 /%d]", ar_mn[e], e), 0xd8, e, 0, 4, L_F32, m, 1, NULL);
        add(dt_strdup_printf("x87/%s m64 [dc /%d]", ar_mn[e], e), 0xdc, e, 0, 8, L_F64, m, 1, NULL);
        add(dt_strdup_printf("x87/%s st0,st(i) [d8 /%d]", ar_mn[e], e), 0xd8, e, K_ST, 0, 0, m, 2,
            NULL);
        add(dt_strdup_printf("x87/fi%s m16 [de /%d]", ar_mn[e] + 1, e), 0xde, e, 0, 2, L_I16, m, 1,
            NULL);
        add(dt_strdup_printf("x87/fi%s m32 [da /%d]", ar_mn[e] + 1, e), 0xda, e, 0, 4, L_I32, m, 1,
            NULL);
        if (cmp) continue;
        /* DC/DE register forms: the SUB/SUBR and DIV/DIVR digits are swapped */
        const char *mn = ar_mn[e >= 4 ? e ^ 1 : e];
        add(dt_strdup_printf("x87/%s st(i),st0 [dc /%d]", mn, e), 0xdc, e, K_ST, 0, 0, m, 2, NULL);
        add(dt_strdup_printf("x87/%sp st(i),st0 [de /%d]", mn, e), 0xde, e, K_ST, 0, 0, m, 2, NULL);
    }
    add2("x87/fcompp [de d9]", 0xde, 0xd9, FSW_ALL, 2, FLG_ALL);
    add("x87/fucom st(i) [dd e0+i]", 0xdd, 4, K_ST, 0, 0, FSW_ALL, 2, NULL);
    add("x87/fucomp st(i) [dd e8+i]", 0xdd, 5, K_ST, 0, 0, FSW_ALL, 2, NULL);
    add2("x87/fucompp [da e9]", 0xda, 0xe9, FSW_ALL, 2, FLG_ALL);
    add("x87/fcomi st0,st(i) [db f0+i]", 0xdb, 6, K_ST, 0, 0, FSW_ALL, 2, NULL);
    add("x87/fucomi st0,st(i) [db e8+i]", 0xdb, 5, K_ST, 0, 0, FSW_ALL, 2, NULL);
    add("x87/fcomip st0,st(i) [df f0+i]", 0xdf, 6, K_ST, 0, 0, FSW_ALL, 2, NULL);
    add("x87/fucomip st0,st(i) [df e8+i]", 0xdf, 5, K_ST, 0, 0, FSW_ALL, 2, NULL);
    add2("x87/ftst [d9 e4]", 0xd9, 0xe4, FSW_ALL, 1, FLG_ALL);
    add2("x87/fxam [d9 e5]", 0xd9, 0xe5, FSW_ALL, 1, FLG_ALL);

    /* FCMOVcc */
    static const char *const fcmov[8] = {"fcmovb",  "fcmove",  "fcmovbe",  "fcmovu",
                                         "fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu"};
    for (int i = 0; i < 8; i++)
        add(dt_strdup_printf("x87/%s st0,st(i) [%02x /%d]", fcmov[i], i < 4 ? 0xda : 0xdb, i & 3),
            i < 4 ? 0xda : 0xdb, i & 3, K_ST, 0, 0, FSW_C1, 2, NULL);

    /* stack, sign, rounding, scaling, remainders */
    add("x87/fxch st(i) [d9 c8+i]", 0xd9, 1, K_ST, 0, 0, FSW_C1, 2, NULL);
    add("x87/ffree st(i) [dd c0+i]", 0xdd, 0, K_ST, 0, 0, FSW_NOC, 1, NULL);
    add2("x87/fchs [d9 e0]", 0xd9, 0xe0, FSW_C1, 1, FLG_ALL);
    add2("x87/fabs [d9 e1]", 0xd9, 0xe1, FSW_C1, 1, FLG_ALL);
    add2("x87/fld1 [d9 e8]", 0xd9, 0xe8, FSW_C1, 0, FLG_ALL);
    add2("x87/fldl2t [d9 e9]", 0xd9, 0xe9, FSW_C1, 0, FLG_ALL);
    add2("x87/fldl2e [d9 ea]", 0xd9, 0xea, FSW_C1, 0, FLG_ALL);
    add2("x87/fldpi [d9 eb]", 0xd9, 0xeb, FSW_C1, 0, FLG_ALL);
    add2("x87/fldlg2 [d9 ec]", 0xd9, 0xec, FSW_C1, 0, FLG_ALL);
    add2("x87/fldln2 [d9 ed]", 0xd9, 0xed, FSW_C1, 0, FLG_ALL);
    add2("x87/fldz [d9 ee]", 0xd9, 0xee, FSW_C1, 0, FLG_ALL);
    add2("x87/frndint [d9 fc]", 0xd9, 0xfc, FSW_C1, 1, FLG_ALL);
    add2("x87/fsqrt [d9 fa]", 0xd9, 0xfa, FSW_C1, 1, FLG_ALL);
    add2("x87/fxtract [d9 f4]", 0xd9, 0xf4, FSW_C1, 1, FLG_ALL);
    add2("x87/fscale [d9 fd]", 0xd9, 0xfd, FSW_C1, 2, FLG_ALL);
    dt_forms[dt_nforms - 1].setup = fscale_setup;
    add2("x87/fprem [d9 f8]", 0xd9, 0xf8, FSW_ALL, 2, FLG_ALL);
    dt_forms[dt_nforms - 1].setup = fprem_setup;
    add2("x87/fprem1 [d9 f5]", 0xd9, 0xf5, FSW_ALL, 2, FLG_ALL);
    dt_forms[dt_nforms - 1].setup = fprem_setup;
    add2("x87/fincstp [d9 f7]", 0xd9, 0xf7, FSW_C1, 0, FLG_ALL);
    add2("x87/fdecstp [d9 f6]", 0xd9, 0xf6, FSW_C1, 0, FLG_ALL);
    add2("x87/fnop [d9 d0]", 0xd9, 0xd0, FSW_NOC, 0, FLG_ALL);

    /* control and status */
    add2("x87/fninit [db e3]", 0xdb, 0xe3, FSW_ALL, 0, FLG_ALL);
    add2("x87/fnclex [db e2]", 0xdb, 0xe2, FSW_NOC, 0, FLG_ALL);
    add2("x87/fnstsw ax [df e0]", 0xdf, 0xe0, FSW_ALL, 0, FLG_ALL);
    add("x87/fnstsw m16 [dd /7]", 0xdd, 7, 0, 2, L_I16, FSW_ALL, 0, NULL);
    add("x87/fnstcw m16 [d9 /7]", 0xd9, 7, 0, 2, L_I16, FSW_ALL, 0, NULL);
    add("x87/fldcw m16 [d9 /5]", 0xd9, 5, 0, 2, L_I16, FSW_NOC, 0, fldcw_setup);
    struct dt_form f = {.cat = CAT_X87, .ext = -1, .flags = FLG_ALL, .use = U_X87};
    f.name = "x87/fwait [9b]";
    f.nop = 1, f.op[0] = 0x9b;
    dt_add(&f);
}
