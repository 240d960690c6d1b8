/* flags.c — lazy arithmetic flags: compute CF/PF/AF/ZF/SF/OF from the last
 * flag-setting operation only when something reads them. */
#include "cpu/emu/emu.h"

static inline uint64_t parity(uint64_t res)
{
    return __builtin_parity((unsigned)(res & 0xff)) ? 0 : FL_PF;
}

static uint64_t cf_of(const struct emu_cpu *c, int op, int size)
{
    uint64_t m = szmask(size), s1 = c->lf_src1, s2 = c->lf_src2, r = c->lf_res;
    int bits = size * 8;
    switch (op) {
    case LF_ADD: return (r & m) < (s1 & m);
    case LF_ADC: return (r & m) < (s1 & m) || (c->lf_aux && (r & m) == (s1 & m));
    case LF_SUB: return (s1 & m) < (s2 & m);
    case LF_SBB:
        return (s1 & m) < (s2 & m) || (c->lf_aux && (s2 & m) == m) ||
               (c->lf_aux && (s1 & m) == (s2 & m));
    case LF_INC:
    case LF_DEC: return c->lf_aux & 1;
    case LF_SHL: return s2 <= (uint64_t)bits ? (s1 >> (bits - s2)) & 1 : 0;
    case LF_SHR: return (s1 >> (s2 - 1)) & 1;
    case LF_SAR: return ((int64_t)sext(s1, size) >> (s2 > 63 ? 63 : s2 - 1)) & 1;
    case LF_MUL: return c->lf_aux & 1;
    default: return 0;
    }
}

uint64_t emu_flags_arith(const struct emu_cpu *c)
{
    int op = c->lf_op >> 2, size = 1 << (c->lf_op & 3);
    uint64_t m = szmask(size), s1 = c->lf_src1, s2 = c->lf_src2, r = c->lf_res & m;
    uint64_t msb = 1ull << (size * 8 - 1);
    uint64_t f = parity(r) | (r == 0 ? FL_ZF : 0) | ((r & msb) ? FL_SF : 0);
    uint64_t cf = cf_of(c, op, size);
    f |= cf ? FL_CF : 0;
    switch (op) {
    case LF_ADD:
    case LF_ADC:
        f |= ((s1 ^ s2 ^ r) & 0x10) ? FL_AF : 0;
        f |= (((s1 ^ r) & (s2 ^ r)) & msb) ? FL_OF : 0;
        break;
    case LF_SUB:
    case LF_SBB:
        f |= ((s1 ^ s2 ^ r) & 0x10) ? FL_AF : 0;
        f |= (((s1 ^ s2) & (s1 ^ r)) & msb) ? FL_OF : 0;
        break;
    case LF_INC:
        f |= ((s1 ^ r) & 0x10) ? FL_AF : 0;
        f |= (r == msb) ? FL_OF : 0;
        break;
    case LF_DEC:
        f |= ((s1 ^ r) & 0x10) ? FL_AF : 0;
        f |= (r == msb - 1) ? FL_OF : 0;
        break;
    case LF_LOGIC: break;
    case LF_SHL: f |= ((!!(r & msb)) ^ cf) ? FL_OF : 0; break;
    case LF_SHR: f |= (s1 & msb) ? FL_OF : 0; break;
    case LF_SAR: break;
    case LF_MUL: f = (f & ~(uint64_t)FL_CF) | (cf ? FL_CF | FL_OF : 0); break;
    }
    return f;
}

bool emu_get_cf(const struct emu_cpu *c)
{
    if (c->lf_op == LF_NONE) return c->s.rflags & FL_CF;
    return cf_of(c, c->lf_op >> 2, 1 << (c->lf_op & 3));
}

bool emu_cond(struct emu_cpu *c, int cc)
{
    bool r;
    /* Fast paths for the common compare-and-branch pairs. */
    int op = c->lf_op >> 2;
    if (op == LF_SUB || op == LF_LOGIC) {
        int size = 1 << (c->lf_op & 3);
        uint64_t m = szmask(size);
        uint64_t res = c->lf_res & m;
        switch (cc >> 1) {
        case 2: r = res == 0; goto done;                    /* E */
        case 4: r = (res >> (size * 8 - 1)) & 1; goto done; /* S */
        }
        if (op == LF_SUB) {
            uint64_t a = c->lf_src1 & m, b = c->lf_src2 & m;
            switch (cc >> 1) {
            case 1: r = a < b; goto done;                                            /* B */
            case 3: r = a <= b; goto done;                                           /* BE */
            case 6: r = (int64_t)sext(a, size) < (int64_t)sext(b, size); goto done;  /* L */
            case 7: r = (int64_t)sext(a, size) <= (int64_t)sext(b, size); goto done; /* LE */
            }
        }
    }
    return emu_cond_of_flags(emu_rflags(c), cc);
done:
    return (cc & 1) ? !r : r;
}
