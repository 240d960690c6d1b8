/* gen.c — random input generation biased toward edge values, per-case state
 * initialisation and operand accessors for the forms' setup callbacks.
 *
 * Every case has its own seed, so a case is reproduced from (form, seed) alone. */
#include "difftest.h"

#include <string.h>

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t dt_rand(struct dt_case *c) /* xoshiro256** */
{
    uint64_t *s = c->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return r;
}

uint64_t dt_below(struct dt_case *c, uint64_t n)
{
    return n ? dt_rand(c) % n : 0;
}
bool dt_chance(struct dt_case *c, unsigned pct)
{
    return dt_below(c, 100) < pct;
}

static uint64_t mask_bits(int bits)
{
    return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

uint64_t dt_edge(struct dt_case *c, int bits)
{
    uint64_t m = mask_bits(bits), sign = 1ull << (bits - 1);
    static const uint8_t pat[] = {0x55, 0xaa, 0x0f, 0xf0, 0x80, 0x7f, 0x01, 0xfe};
    switch (dt_below(c, 16)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return m; /* -1 */
    case 3: return sign;
    case 4: return sign - 1;
    case 5: {
        const uint64_t v[4] = {2, m - 1, sign + 1, sign - 2};
        return v[dt_below(c, 4)] & m;
    }
    case 6: return 1ull << dt_below(c, (uint64_t)bits);
    case 7: return ((1ull << dt_below(c, (uint64_t)bits)) - 1) & m;
    case 8: return (0 - (1ull << dt_below(c, (uint64_t)bits))) & m;
    case 9: return dt_below(c, 17);
    case 10: return (0 - (dt_below(c, 16) + 1)) & m;
    case 11: return (pat[dt_below(c, 8)] * 0x0101010101010101ull) & m;
    default: return dt_rand(c) & m;
    }
}

uint64_t dt_gpr_value(struct dt_case *c)
{
    if (dt_chance(c, 25)) return dt_rand(c);
    static const int widths[4] = {8, 16, 32, 64};
    int w = widths[dt_below(c, 4)];
    uint64_t v = dt_edge(c, w);
    if (w == 64) return v;
    switch (dt_below(c, 3)) {
    case 0: return v; /* zero-extended */
    case 1: return (v & (1ull << (w - 1))) ? v | ~mask_bits(w) : v;
    default: return v | (dt_rand(c) & ~mask_bits(w));
    }
}

uint64_t dt_count(struct dt_case *c, int bits)
{
    if (dt_chance(c, 20)) return dt_rand(c) & 0xff;
    const uint64_t v[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65};
    if (dt_chance(c, 70)) return v[dt_below(c, 16)];
    return dt_below(c, (uint64_t)bits + 2);
}

/* ---- floating point ---- */

/* Edge values for a binary format with `mbits` fraction bits and `ebits` exponent. */
static uint64_t fp_edge(struct dt_case *c, int ebits, int mbits)
{
    uint64_t sign = dt_chance(c, 50) ? 1ull << (ebits + mbits) : 0;
    uint64_t emax = (1ull << ebits) - 1, bias = emax >> 1, mmask = mask_bits(mbits);
    uint64_t quiet = 1ull << (mbits - 1);
    uint64_t e, m;
    switch (dt_below(c, 22)) {
    case 0: e = 0, m = 0; break;                                                      /* ±0 */
    case 1: e = emax, m = 0; break;                                                   /* ±inf */
    case 2: e = emax, m = quiet | (dt_chance(c, 50) ? 0 : dt_rand(c) & mmask); break; /* QNaN */
    case 3: e = emax, m = (dt_rand(c) & (mmask >> 1)) | 1; break;                     /* SNaN */
    case 4: e = 0, m = 1; break;                                         /* min denormal */
    case 5: e = 0, m = mmask; break;                                     /* max denormal */
    case 6: e = 0, m = (dt_rand(c) & mmask) | 1; break;                  /* denormal */
    case 7: e = 1, m = dt_chance(c, 50) ? 0 : dt_rand(c) & mmask; break; /* tiny normal */
    case 8: e = emax - 1, m = dt_chance(c, 50) ? mmask : dt_rand(c) & mmask; break; /* huge */
    case 9: e = bias, m = 0; break;                                                 /* 1.0 */
    case 10: { /* small integer */
        double d = (double)(dt_below(c, 201)) - 100.0;
        if (ebits == 8) {
            float f = (float)d;
            uint32_t u;
            memcpy(&u, &f, 4);
            return u | sign;
        }
        uint64_t u;
        memcpy(&u, &d, 8);
        return u | sign;
    }
    case 11: /* around integer-conversion limits 2^15, 2^31, 2^32, 2^63, 2^64 */ {
        const int k[] = {15, 16, 31, 32, 52, 53, 63, 64};
        e = bias + (uint64_t)k[dt_below(c, 8)] - (dt_chance(c, 30) ? 1 : 0);
        m = dt_chance(c, 50) ? 0 : dt_chance(c, 50) ? mmask : dt_below(c, 4);
        break;
    }
    case 12: e = dt_below(c, emax - 1) + 1, m = 0; break; /* power of two */
    case 13:                                              /* x.5 and friends: rounding ties */
        e = bias + dt_below(c, 24);
        m = (dt_rand(c) & mmask) | (1ull << (mbits - 1 - (e - bias) % (uint64_t)mbits));
        m &= ~((1ull << (mbits - 1 - (e - bias) % (uint64_t)mbits)) - 1);
        break;
    case 14: /* near 1 */
        e = bias - 1 + dt_below(c, 2);
        m = dt_chance(c, 50) ? mmask - dt_below(c, 3) : dt_below(c, 3);
        break;
    case 15:
    case 16:
    case 17: /* moderate magnitudes */
        e = bias - 40 + dt_below(c, 80), m = dt_rand(c) & mmask;
        break;
    case 18: /* near the underflow / overflow thresholds */
        e = dt_chance(c, 50) ? 1 + dt_below(c, (uint64_t)mbits + 2)
                             : emax - 1 - dt_below(c, (uint64_t)mbits + 2);
        m = dt_rand(c) & mmask;
        break;
    default: e = dt_below(c, emax - 1) + 1, m = dt_rand(c) & mmask; break;
    }
    return sign | (e << mbits) | (m & mmask);
}

uint32_t dt_f32(struct dt_case *c)
{
    return (uint32_t)fp_edge(c, 8, 23);
}
uint64_t dt_f64(struct dt_case *c)
{
    return fp_edge(c, 11, 52);
}

/* 80-bit extended: supported encodings only (pseudo-NaNs, pseudo-infinities and
 * unnormals are handled differently across CPU generations and are excluded). */
void dt_f80(struct dt_case *c, uint8_t out[10])
{
    uint64_t mant;
    uint16_t se;
    int kind = (int)dt_below(c, 10);
    if (kind < 3) {
        /* a double widened exactly (common in real code; exercises conversions) */
        uint64_t d = dt_f64(c);
        int sign = (int)(d >> 63), e = (int)(d >> 52 & 0x7ff);
        uint64_t m = d & mask_bits(52);
        if (e == 0x7ff) {
            se = 0x7fff, mant = (1ull << 63) | (m << 11);
        } else if (e == 0 && m == 0) {
            se = 0, mant = 0;
        } else if (e == 0) { /* double denormal: normal in 80-bit */
            /* value = m * 2^-1074; normalise so the integer bit is bit 63 */
            int msb = 63 - __builtin_clzll(m);
            mant = m << (63 - msb);
            se = (uint16_t)(16383 + (msb - 1074));
        } else {
            se = (uint16_t)(e - 1023 + 16383), mant = (1ull << 63) | (m << 11);
        }
        se |= (uint16_t)(sign << 15);
    } else {
        uint16_t sign = dt_chance(c, 50) ? 0x8000 : 0;
        switch (dt_below(c, 14)) {
        case 0: se = 0, mant = 0; break;
        case 1: se = 0x7fff, mant = 1ull << 63; break;
        case 2: se = 0x7fff, mant = (3ull << 62) | (dt_chance(c, 50) ? 0 : dt_rand(c) >> 2); break;
        case 3: se = 0x7fff, mant = (1ull << 63) | (dt_rand(c) >> 2) | 1; break; /* SNaN */
        case 4: se = 0, mant = (dt_rand(c) >> 1) | 1; break;                     /* denormal */
        case 5: se = 1, mant = 1ull << 63; break;                                /* min normal */
        case 6: se = 0x7ffe, mant = ~0ull; break;                                /* max */
        case 7: se = 0x3fff, mant = 1ull << 63; break;                           /* 1.0 */
        case 8: { /* integer values (FRNDINT, FIST) */
            int k = (int)dt_below(c, 66);
            se = (uint16_t)(0x3fff + k), mant = (dt_rand(c) | (1ull << 63));
            if (k < 63) mant &= ~mask_bits(63 - k);
            break;
        }
        case 9: { /* half-integers: ties */
            int k = (int)dt_below(c, 62);
            se = (uint16_t)(0x3fff + k), mant = dt_rand(c) | (1ull << 63);
            mant &= ~mask_bits(62 - k);
            mant |= 1ull << (62 - k);
            break;
        }
        case 10:
            se = (uint16_t)(0x3fff - 64 + dt_below(c, 128)), mant = dt_rand(c) | (1ull << 63);
            break;
        case 11: /* close to double/float range limits (rounding on store) */ {
            const uint16_t lim[] = {0x3fff + 1023, 0x3fff - 1022, 0x3fff + 127,
                                    0x3fff - 126,  0x3fff - 1074, 0x3fff - 149};
            se = (uint16_t)(lim[dt_below(c, 6)] + dt_below(c, 5) - 2);
            mant = dt_rand(c) | (1ull << 63);
            break;
        }
        default: se = (uint16_t)(1 + dt_below(c, 0x7ffe)), mant = dt_rand(c) | (1ull << 63); break;
        }
        se |= sign;
    }
    memcpy(out, &mant, 8);
    memcpy(out + 8, &se, 2);
}

void dt_fill_lane(struct dt_case *c, void *dst, int bytes, int lane)
{
    uint8_t *p = dst;
    /* sometimes all lanes equal: catches lane-mixing bugs in a different way */
    bool same = dt_chance(c, 10);
    uint8_t first[10];
    int esz = lane == L_I8                       ? 1
              : lane == L_I16                    ? 2
              : (lane == L_I32 || lane == L_F32) ? 4
              : lane == L_F80                    ? 10
                                                 : 8;
    for (int off = 0; off + esz <= bytes; off += esz) {
        uint8_t v[10];
        if (same && off) {
            memcpy(v, first, (size_t)esz);
        } else if (lane == L_F32) {
            uint32_t f = dt_f32(c);
            memcpy(v, &f, 4);
        } else if (lane == L_F64) {
            uint64_t f = dt_f64(c);
            memcpy(v, &f, 8);
        } else if (lane == L_F80) {
            dt_f80(c, v);
        } else {
            uint64_t x = dt_edge(c, esz * 8);
            memcpy(v, &x, (size_t)esz);
        }
        if (!off) memcpy(first, v, (size_t)esz);
        memcpy(p + off, v, (size_t)esz);
    }
}

/* ---- per-run baselines ---- */
static uint8_t pool[65536 + DT_DATA_SIZE];
static struct dt_fx base_fx;

void dt_gen_init(uint64_t seed)
{
    struct dt_case tmp;
    uint64_t x = seed ^ 0x5eedull;
    for (int i = 0; i < 4; i++)
        tmp.rng[i] = splitmix(&x);
    for (size_t i = 0; i < sizeof(pool); i += 8) {
        uint64_t v = dt_gpr_value(&tmp);
        memcpy(pool + i, &v, 8);
    }
    memset(&base_fx, 0, sizeof(base_fx));
    base_fx.fcw = 0x37f;
    base_fx.mxcsr = 0x1f80;
    for (int i = 0; i < 8; i++)
        dt_f80(&tmp, base_fx.st[i]); /* empty registers keep some content */
    for (int i = 0; i < 16; i++)
        dt_fill_lane(&tmp, &base_fx.xmm[i], 16, L_I64);
}

static uint32_t rand_mxcsr(struct dt_case *c)
{
    uint32_t m = (uint32_t)dt_below(c, 4) << 13; /* RC */
    if (dt_chance(c, 25)) m |= 1u << 15;         /* FTZ */
    if (dt_chance(c, 25)) m |= 1u << 6;          /* DAZ */
    if (dt_chance(c, 70))
        m |= 0x3fu << 7;
    else
        m |= ((uint32_t)dt_rand(c) & 0x3f) << 7;
    if (dt_chance(c, 40)) m |= (uint32_t)dt_rand(c) & 0x3f; /* sticky flags already set */
    return m;
}

int dt_x87_top(const struct dt_case *c)
{
    return (c->in.fx.fsw >> 11) & 7;
}

void dt_x87_setup(struct dt_case *c, int depth)
{
    struct dt_fx *fx = &c->in.fx;
    static const uint16_t pc[4] = {0, 2, 3, 3};
    uint16_t fcw = 0x40 | (uint16_t)(pc[dt_below(c, 4)] << 8) | (uint16_t)(dt_below(c, 4) << 10);
    fcw |= dt_chance(c, 80) ? 0x3f : (uint16_t)(dt_rand(c) & 0x3f);
    int top = (int)dt_below(c, 8);
    uint16_t fsw = (uint16_t)(top << 11) | (uint16_t)(dt_rand(c) & 0x4700); /* C0..C3 */
    uint16_t masked = fcw & 0x3f, unmasked = ~fcw & 0x3f;
    if (dt_chance(c, 40)) fsw |= (uint16_t)(dt_rand(c) & masked);
    if (unmasked && dt_chance(c, 5))
        fsw |= (uint16_t)(1u << __builtin_ctz(unmasked)); /* pending: next FP insn takes #MF */
    if ((fsw & 1) && dt_chance(c, 50)) fsw |= 0x40;       /* SF accompanies IE */
    if (fsw & unmasked) fsw |= 0x8080;                    /* ES and B */
    fx->fcw = fcw;
    fx->fsw = fsw;
    fx->ftw = 0;
    for (int i = 0; i < 8; i++) {
        memset(fx->st[i], 0, 16);
        dt_f80(c, fx->st[i]);
        if (i < depth) fx->ftw |= (uint8_t)(1u << ((top + i) & 7));
    }
}

bool dt_arch_fsw;

void dt_case_init(struct dt_case *c, const struct dt_form *f, uint64_t case_seed)
{
    const size_t head = offsetof(struct dt_case, in);
    memset(c, 0, head);
    c->form = f;
    c->seed = case_seed;
    uint64_t x = case_seed;
    for (int i = 0; i < 4; i++)
        c->rng[i] = splitmix(&x);
    c->reg = c->rm = c->opreg = c->base = c->index = -1;

    for (int i = 0; i < 16; i++)
        c->in.gpr[i] = dt_gpr_value(c);
    c->in.gpr[RSP] =
        (DT_STACK_LO + dt_below(c, DT_STACK_HI - DT_STACK_LO)) & (dt_chance(c, 90) ? ~7ull : ~0ull);
    c->in.gpr[DT_DATA_REG] = DT_DATA_BASE;
    c->in.rflags = FL_1 | (dt_rand(c) & (FLG_ALL | FL_DF));

    c->in.fx = base_fx;
    if (f->use & U_XMM) {
        int lane = f->lane;
        if (lane == L_F80 || lane == L_AUTO) lane = L_I64;
        for (int i = 0; i < 16; i++)
            dt_fill_lane(c, &c->in.fx.xmm[i], 16, dt_chance(c, 90) ? lane : L_I64);
        c->in.fx.mxcsr = rand_mxcsr(c);
    }
    if (f->use & U_X87) {
        int need = f->x87_need;
        int depth =
            dt_chance(c, 90) ? need + (int)dt_below(c, (uint64_t)(9 - need)) : (int)dt_below(c, 9);
        dt_x87_setup(c, depth);
    }
    size_t off = dt_below(c, 65536 / 8) * 8;
    memcpy(c->mem, pool + off, DT_DATA_SIZE);

    c->flags_mask = f->flags;
    c->gpr_ignore = 0;
    c->nign = 0;
    /* FSW: everything is compared by default (the emulator must reproduce the
     * host exactly); --arch-fsw masks the condition bits the manuals leave
     * undefined, for hosts whose undefined bits differ */
    c->fsw_mask = dt_arch_fsw && f->fsw_mask ? f->fsw_mask : 0xffff;
}

/* ---- operand access ---- */

uint64_t dt_get_gpr(const struct dt_case *c, int r, int size)
{
    if (size == 1 && !c->rex && r >= 4 && r < 8) return (c->in.gpr[r - 4] >> 8) & 0xff;
    return c->in.gpr[r] & mask_bits(size * 8);
}

void dt_set_gpr(struct dt_case *c, int r, int size, uint64_t v)
{
    if (size == 1 && !c->rex && r >= 4 && r < 8) {
        c->in.gpr[r - 4] = (c->in.gpr[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
        return;
    }
    uint64_t m = mask_bits(size * 8);
    c->in.gpr[r] = (c->in.gpr[r] & ~m) | (v & m);
}

uint64_t dt_mem_get(const struct dt_case *c, uint64_t addr, int size)
{
    uint64_t v = 0;
    uint64_t off = addr - DT_DATA_BASE;
    if (off + (uint64_t)size <= DT_DATA_SIZE) memcpy(&v, c->mem + off, (size_t)size);
    return v;
}

void dt_mem_set(struct dt_case *c, uint64_t addr, int size, uint64_t v)
{
    uint64_t off = addr - DT_DATA_BASE;
    if (off + (uint64_t)size <= DT_DATA_SIZE) memcpy(c->mem + off, &v, (size_t)size);
}

void dt_ignore_mem(struct dt_case *c, uint64_t addr, uint32_t len)
{
    if (c->nign < DT_MAX_IGN) {
        c->ign_off[c->nign] = (uint32_t)(addr - DT_DATA_BASE);
        c->ign_len[c->nign++] = len;
    }
}

uint64_t dt_get_rm(const struct dt_case *c, int size)
{
    return c->form->mem ? dt_mem_get(c, c->addr, size) : dt_get_gpr(c, c->rm, size);
}

void dt_set_rm(struct dt_case *c, int size, uint64_t v)
{
    if (c->form->mem)
        dt_mem_set(c, c->addr, size, v);
    else
        dt_set_gpr(c, c->rm, size, v);
}

uint64_t dt_get_reg(const struct dt_case *c, int size)
{
    return dt_get_gpr(c, c->reg, size);
}
void dt_set_reg(struct dt_case *c, int size, uint64_t v)
{
    dt_set_gpr(c, c->reg, size, v);
}

static int kind_size(int k)
{
    switch (k) {
    case K_G8: return 1;
    case K_G16: return 2;
    case K_G32: return 4;
    case K_G64: return 8;
    default: return 0;
    }
}

int dt_opsize(const struct dt_case *c)
{
    const struct dt_form *f = c->form;
    int s = kind_size(f->rm);
    if (!s) s = kind_size(f->opreg);
    if (!s) s = kind_size(f->reg);
    return s ? s : 8;
}

void dt_set_imm(struct dt_case *c, uint64_t v)
{
    int n = c->form->imm;
    c->imm = n >= 8 ? v : v & mask_bits(n * 8);
}
