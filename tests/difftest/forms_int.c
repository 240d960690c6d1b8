/* forms_int.c — integer instruction forms: ALU, unary, shifts and rotates,
 * double shifts, multiply and divide, bit tests and scans, moves and extensions,
 * conditional moves and sets, exchanges, stack operations, flag operations, and
 * encodings that must fault.
 *
 * Flags compared per form follow what both the Intel SDM and the AMD APM define;
 * where either leaves a flag undefined it is masked (see README.md). */
#include "difftest.h"

static const char *const rname[9] = {[1] = "r8", [2] = "r16", [4] = "r32", [8] = "r64"};
static const char *const mname[9] = {[1] = "m8", [2] = "m16", [4] = "m32", [8] = "m64"};
static const char *const accname[9] = {[1] = "al", [2] = "ax", [4] = "eax", [8] = "rax"};
static const int sizes[4] = {1, 2, 4, 8};

static int kind_of(int size)
{
    return size == 1 ? K_G8 : size == 2 ? K_G16 : size == 4 ? K_G32 : K_G64;
}

/* A form skeleton for operand size `size` (66 for 16-bit, REX.W for 64-bit). */
static struct dt_form mk(int size, uint32_t flags)
{
    struct dt_form f = {.cat = CAT_INT, .ext = -1, .flags = flags};
    if (size == 2) f.pfx[f.npfx++] = 0x66;
    if (size == 8) f.rexw = 1;
    return f;
}

static void op1(struct dt_form *f, uint8_t a)
{
    f->nop = 1, f->op[0] = a;
}
static void op2(struct dt_form *f, uint8_t a, uint8_t b)
{
    f->nop = 2, f->op[0] = a, f->op[1] = b;
}

static int immsz(int size)
{
    return size == 1 ? 1 : size == 2 ? 2 : 4;
}

static const char *rm_name(int size, bool mem)
{
    return mem ? mname[size] : rname[size];
}

/* ---- ALU: add or adc sbb and sub xor cmp, all encodings ---- */
static const char *const alu_mn[8] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};

static void add_alu(void)
{
    for (int op = 0; op < 8; op++) {
        uint32_t fl = (op == 1 || op == 4 || op == 6) ? FLG_LOGIC : FLG_ALL;
        for (int si = 0; si < 4; si++) {
            int sz = sizes[si], k = kind_of(sz);
            uint8_t b = (uint8_t)(op * 8 + (sz != 1));
            for (int mem = 0; mem < 2; mem++) {
                struct dt_form f = mk(sz, fl);
                op1(&f, b);
                f.reg = f.rm = (uint8_t)k;
                f.mem = (uint8_t)(mem ? sz : 0);
                f.name = dt_strdup_printf("int/%s %s,%s [%02x]", alu_mn[op], rm_name(sz, mem),
                                          rname[sz], b);
                dt_add(&f);
                if (mem && op != 7) {
                    f.fl |= F_LOCK;
                    f.name = dt_strdup_printf("int/lock %s %s,%s [%02x]", alu_mn[op], mname[sz],
                                              rname[sz], b);
                    dt_add(&f);
                }
                f = mk(sz, fl);
                op1(&f, (uint8_t)(b + 2));
                f.reg = f.rm = (uint8_t)k;
                f.mem = (uint8_t)(mem ? sz : 0);
                f.name = dt_strdup_printf("int/%s %s,%s [%02x]", alu_mn[op], rname[sz],
                                          rm_name(sz, mem), b + 2);
                dt_add(&f);

                /* 80/81/83 /op */
                f = mk(sz, fl);
                op1(&f, sz == 1 ? 0x80 : 0x81);
                f.ext = (int8_t)op;
                f.rm = (uint8_t)k;
                f.mem = (uint8_t)(mem ? sz : 0);
                f.imm = (uint8_t)immsz(sz);
                f.name = dt_strdup_printf("int/%s %s,imm%d [%02x /%d]", alu_mn[op],
                                          rm_name(sz, mem), f.imm * 8, f.op[0], op);
                dt_add(&f);
                if (mem && op != 7 && sz == 4) {
                    f.fl |= F_LOCK;
                    f.name = dt_strdup_printf("int/lock %s m32,imm32 [81 /%d]", alu_mn[op], op);
                    dt_add(&f);
                }
                if (sz != 1) {
                    f = mk(sz, fl);
                    op1(&f, 0x83);
                    f.ext = (int8_t)op;
                    f.rm = (uint8_t)k;
                    f.mem = (uint8_t)(mem ? sz : 0);
                    f.imm = 1;
                    f.name = dt_strdup_printf("int/%s %s,imm8 [83 /%d]", alu_mn[op],
                                              rm_name(sz, mem), op);
                    dt_add(&f);
                }
            }
            struct dt_form f = mk(sz, fl);
            op1(&f, (uint8_t)(op * 8 + 4 + (sz != 1)));
            f.imm = (uint8_t)immsz(sz);
            f.implicit = 1u << RAX;
            f.name = dt_strdup_printf("int/%s %s,imm%d [%02x]", alu_mn[op], accname[sz], f.imm * 8,
                                      f.op[0]);
            dt_add(&f);
        }
    }
}

/* ---- TEST, INC, DEC, NOT, NEG ---- */
static void add_unary(void)
{
    for (int si = 0; si < 4; si++) {
        int sz = sizes[si], k = kind_of(sz);
        for (int mem = 0; mem < 2; mem++) {
            struct dt_form f = mk(sz, FLG_LOGIC);
            op1(&f, sz == 1 ? 0x84 : 0x85);
            f.reg = f.rm = (uint8_t)k;
            f.mem = (uint8_t)(mem ? sz : 0);
            f.name =
                dt_strdup_printf("int/test %s,%s [%02x]", rm_name(sz, mem), rname[sz], f.op[0]);
            dt_add(&f);
            f = mk(sz, FLG_LOGIC);
            op1(&f, sz == 1 ? 0xf6 : 0xf7);
            f.ext = 0;
            f.rm = (uint8_t)k;
            f.mem = (uint8_t)(mem ? sz : 0);
            f.imm = (uint8_t)immsz(sz);
            f.name = dt_strdup_printf("int/test %s,imm%d [%02x /0]", rm_name(sz, mem), f.imm * 8,
                                      f.op[0]);
            dt_add(&f);
            static const struct {
                uint8_t op8, opv, ext;
                const char *mn;
            } u[4] = {{0xfe, 0xff, 0, "inc"},
                      {0xfe, 0xff, 1, "dec"},
                      {0xf6, 0xf7, 2, "not"},
                      {0xf6, 0xf7, 3, "neg"}};
            for (int i = 0; i < 4; i++) {
                f = mk(sz, FLG_ALL);
                op1(&f, sz == 1 ? u[i].op8 : u[i].opv);
                f.ext = (int8_t)u[i].ext;
                f.rm = (uint8_t)k;
                f.mem = (uint8_t)(mem ? sz : 0);
                f.name = dt_strdup_printf("int/%s %s [%02x /%d]", u[i].mn, rm_name(sz, mem),
                                          f.op[0], u[i].ext);
                dt_add(&f);
                if (mem) {
                    f.fl |= F_LOCK;
                    f.name = dt_strdup_printf("int/lock %s %s [%02x /%d]", u[i].mn, mname[sz],
                                              f.op[0], u[i].ext);
                    dt_add(&f);
                }
            }
        }
        struct dt_form f = mk(sz, FLG_LOGIC);
        op1(&f, sz == 1 ? 0xa8 : 0xa9);
        f.imm = (uint8_t)immsz(sz);
        f.implicit = 1u << RAX;
        f.name = dt_strdup_printf("int/test %s,imm%d [%02x]", accname[sz], f.imm * 8, f.op[0]);
        dt_add(&f);
    }
}

/* ---- shifts and rotates ---- */

/* Count for a shift form: 1, CL (randomised here, biased to boundaries) or imm8. */
static uint64_t shift_count(struct dt_case *c, int bits)
{
    uint8_t op = c->form->op[c->form->nop - 1];
    if (op == 0xd0 || op == 0xd1) return 1;
    if (op == 0xd2 || op == 0xd3 || op == 0xa5 || op == 0xad) {
        dt_set_gpr(c, RCX, 1, dt_count(c, bits));
        return dt_get_gpr(c, RCX, 1);
    }
    return c->imm;
}

static void shift_setup(struct dt_case *c)
{
    int size = dt_opsize(c), bits = size * 8;
    uint64_t mc = shift_count(c, bits) & (size == 8 ? 63 : 31);
    uint32_t m;
    if (!mc) {
        m = FLG_ALL; /* count 0: no flag changes */
    } else if (c->form->ext < 4) {
        /* rotates: CF defined, OF only for count 1, SF ZF AF PF untouched */
        m = FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | (mc == 1 ? FL_OF : 0);
    } else {
        /* shifts: AF undefined; OF only for count 1; CF undefined when the count
         * reaches the operand size (SDM: SHL/SHR; also masked for SAR) */
        m = FL_PF | FL_ZF | FL_SF | (mc < (uint64_t)bits ? FL_CF : 0) | (mc == 1 ? FL_OF : 0);
    }
    c->flags_mask = m;
}

static void add_shifts(void)
{
    static const char *const mn[8] = {"rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"};
    static const struct {
        uint8_t op8, opv, imm;
        const char *cnt;
    } kind[3] = {{0xd0, 0xd1, 0, "1"}, {0xd2, 0xd3, 0, "cl"}, {0xc0, 0xc1, 1, "imm8"}};
    for (int e = 0; e < 8; e++)
        for (int kd = 0; kd < 3; kd++)
            for (int si = 0; si < 4; si++)
                for (int mem = 0; mem < 2; mem++) {
                    int sz = sizes[si];
                    if (e == 6 && mem)
                        continue; /* /6 is an undocumented alias of /4: register forms only */
                    struct dt_form f = mk(sz, FLG_ALL);
                    op1(&f, sz == 1 ? kind[kd].op8 : kind[kd].opv);
                    f.ext = (int8_t)e;
                    f.rm = (uint8_t)kind_of(sz);
                    f.mem = (uint8_t)(mem ? sz : 0);
                    f.imm = kind[kd].imm;
                    f.fl = F_IMMEDGE;
                    f.implicit = kd == 1 ? 1u << RCX : 0;
                    f.setup = shift_setup;
                    f.name = dt_strdup_printf("int/%s %s,%s [%02x /%d]", mn[e], rm_name(sz, mem),
                                              kind[kd].cnt, f.op[0], e);
                    dt_add(&f);
                }
}

static void shld_setup(struct dt_case *c)
{
    int size = dt_opsize(c);
    uint64_t mc = shift_count(c, size * 8) & (size == 8 ? 63 : 31);
    if (!mc) {
        c->flags_mask = FLG_ALL;
        return;
    }
    c->flags_mask = FL_CF | FL_PF | FL_ZF | FL_SF | (mc == 1 ? FL_OF : 0);
    if (size == 2 && mc > 16) {
        /* result and flags undefined */
        c->flags_mask = 0;
        if (c->form->mem)
            dt_ignore_mem(c, c->addr, 2);
        else
            c->gpr_ignore |= (uint16_t)(1u << c->rm);
    }
}

static void add_shld(void)
{
    static const struct {
        uint8_t op;
        const char *mn, *cnt;
    } v[4] = {
        {0xa4, "shld", "imm8"}, {0xa5, "shld", "cl"}, {0xac, "shrd", "imm8"}, {0xad, "shrd", "cl"}};
    for (int i = 0; i < 4; i++)
        for (int si = 1; si < 4; si++)
            for (int mem = 0; mem < 2; mem++) {
                int sz = sizes[si];
                struct dt_form f = mk(sz, FLG_ALL);
                op2(&f, 0x0f, v[i].op);
                f.reg = f.rm = (uint8_t)kind_of(sz);
                f.mem = (uint8_t)(mem ? sz : 0);
                f.imm = (v[i].op & 1) ? 0 : 1;
                f.fl = F_IMMEDGE;
                f.implicit = (v[i].op & 1) ? 1u << RCX : 0;
                f.setup = shld_setup;
                f.name = dt_strdup_printf("int/%s %s,%s,%s [0f %02x]", v[i].mn, rm_name(sz, mem),
                                          rname[sz], v[i].cnt, v[i].op);
                dt_add(&f);
            }
}

/* ---- multiply and divide ---- */

/* Divide inputs: mostly a dividend whose quotient fits (so the result is
 * compared), sometimes a zero divisor or an overflowing quotient (#DE). */
static void div_setup(struct dt_case *c)
{
    int size = dt_opsize(c), bits = size * 8;
    bool sign = c->form->ext == 7;
    unsigned u = (unsigned)dt_below(c, 100);
    if (u < 6) {
        dt_set_rm(c, size, 0);
        return;
    }
    if (u < 20) return; /* random dividend: overflow is likely */
    uint64_t m = bits == 64 ? ~0ull : (1ull << bits) - 1;
    uint64_t d = dt_get_rm(c, size);
    if (!d) {
        d = 1 + dt_below(c, 7);
        dt_set_rm(c, size, d);
    }
    unsigned __int128 dividend;
    if (!sign) {
        uint64_t hi = dt_chance(c, 20) ? d - 1 : dt_rand(c) % d;
        uint64_t lo = dt_rand(c) & m;
        dividend = ((unsigned __int128)hi << bits) | lo;
    } else {
        __int128 sd = (int64_t)(bits == 64 ? d : (d & (1ull << (bits - 1)) ? d | ~m : d));
        __int128 qmax = ((__int128)1 << (bits - 1)) - 1, qmin = -qmax - 1;
        __int128 q = (int64_t)dt_edge(c, bits);
        if (bits < 64) q = (q & ((__int128)1 << (bits - 1))) ? (int64_t)(q | ~m) : (int64_t)q;
        if (q > qmax) q = qmax;
        if (q < qmin) q = qmin;
        __int128 ad = sd < 0 ? -sd : sd;
        __int128 r = (__int128)(dt_rand(c) % (uint64_t)ad);
        __int128 prod = q * sd;
        if (prod < 0 || (prod == 0 && dt_chance(c, 50))) r = -r;
        __int128 v = prod + r;
        /* the remainder may push the quotient out of range: keep it representable */
        if (v / sd > qmax || v / sd < qmin) v = prod;
        dividend = (unsigned __int128)v;
    }
    if (size == 1) {
        dt_set_gpr(c, RAX, 2, (uint64_t)dividend);
    } else {
        dt_set_gpr(c, RAX, size, (uint64_t)dividend & m);
        dt_set_gpr(c, RDX, size, (uint64_t)(dividend >> bits) & m);
    }
}

static void add_muldiv(void)
{
    static const char *const mn[4] = {"mul", "imul", "div", "idiv"};
    for (int e = 4; e < 8; e++)
        for (int si = 0; si < 4; si++)
            for (int mem = 0; mem < 2; mem++) {
                int sz = sizes[si];
                struct dt_form f = mk(sz, e < 6 ? FLG_CFOF : 0);
                op1(&f, sz == 1 ? 0xf6 : 0xf7);
                f.ext = (int8_t)e;
                f.rm = (uint8_t)kind_of(sz);
                f.mem = (uint8_t)(mem ? sz : 0);
                f.implicit = (1u << RAX) | (1u << RDX);
                f.setup = e >= 6 ? div_setup : NULL;
                f.name = dt_strdup_printf("int/%s %s [%02x /%d]", mn[e - 4], rm_name(sz, mem),
                                          f.op[0], e);
                dt_add(&f);
            }
    for (int si = 1; si < 4; si++)
        for (int mem = 0; mem < 2; mem++) {
            int sz = sizes[si];
            struct dt_form f = mk(sz, FLG_CFOF);
            op2(&f, 0x0f, 0xaf);
            f.reg = f.rm = (uint8_t)kind_of(sz);
            f.mem = (uint8_t)(mem ? sz : 0);
            f.name = dt_strdup_printf("int/imul %s,%s [0f af]", rname[sz], rm_name(sz, mem));
            dt_add(&f);
            for (int i8 = 0; i8 < 2; i8++) {
                f = mk(sz, FLG_CFOF);
                op1(&f, i8 ? 0x6b : 0x69);
                f.reg = f.rm = (uint8_t)kind_of(sz);
                f.mem = (uint8_t)(mem ? sz : 0);
                f.imm = (uint8_t)(i8 ? 1 : immsz(sz));
                f.name = dt_strdup_printf("int/imul %s,%s,imm%d [%02x]", rname[sz],
                                          rm_name(sz, mem), f.imm * 8, f.op[0]);
                dt_add(&f);
            }
        }
}

/* ---- bit test, bit scan ---- */

static int64_t div_floor(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* BT* m, r: the register is a signed bit offset that may leave the operand; keep
 * the addressed unit inside the data region (mostly near the operand). */
static void bt_setup(struct dt_case *c)
{
    if (!c->form->mem || c->form->imm) return;
    int size = dt_opsize(c), bits = size * 8;
    if (c->faulting) {
        /* stay on the deliberately faulting operand: an offset into memory that
         * only one side has mapped would compare the two address spaces */
        dt_set_reg(c, size, dt_below(c, (uint64_t)bits));
        return;
    }
    int64_t lo = (int64_t)DT_DATA_BASE - (int64_t)c->addr;
    int64_t hi = (int64_t)(DT_DATA_BASE + DT_DATA_SIZE - (uint64_t)size) - (int64_t)c->addr;
    int64_t kmin = -div_floor(-lo, size), kmax = div_floor(hi, size);
    if (size == 2) { /* the offset is a signed 16-bit value */
        if (kmin < -2048) kmin = -2048;
        if (kmax > 2047) kmax = 2047;
    }
    int64_t k;
    if (dt_chance(c, 60)) {
        k = (int64_t)dt_below(c, 5) - 2;
        if (k < kmin || k > kmax) k = 0;
    } else {
        k = kmin + (int64_t)dt_below(c, (uint64_t)(kmax - kmin + 1));
    }
    int64_t off = k * bits + (int64_t)dt_below(c, (uint64_t)bits);
    dt_set_reg(c, size, (uint64_t)off);
}

static void add_bittest(void)
{
    static const char *const mn[4] = {"bt", "bts", "btr", "btc"};
    static const uint8_t rop[4] = {0xa3, 0xab, 0xb3, 0xbb};
    for (int i = 0; i < 4; i++)
        for (int si = 1; si < 4; si++)
            for (int mem = 0; mem < 2; mem++) {
                int sz = sizes[si];
                struct dt_form f = mk(sz, FL_CF | FL_ZF);
                op2(&f, 0x0f, rop[i]);
                f.reg = f.rm = (uint8_t)kind_of(sz);
                f.mem = (uint8_t)(mem ? sz : 0);
                f.setup = bt_setup;
                f.name = dt_strdup_printf("int/%s %s,%s [0f %02x]", mn[i], rm_name(sz, mem),
                                          rname[sz], rop[i]);
                dt_add(&f);
                if (mem && i) {
                    f.fl |= F_LOCK;
                    f.name = dt_strdup_printf("int/lock %s %s,%s [0f %02x]", mn[i], mname[sz],
                                              rname[sz], rop[i]);
                    dt_add(&f);
                }
                f = mk(sz, FL_CF | FL_ZF);
                op2(&f, 0x0f, 0xba);
                f.ext = (int8_t)(4 + i);
                f.rm = (uint8_t)kind_of(sz);
                f.mem = (uint8_t)(mem ? sz : 0);
                f.imm = 1;
                f.name =
                    dt_strdup_printf("int/%s %s,imm8 [0f ba /%d]", mn[i], rm_name(sz, mem), 4 + i);
                dt_add(&f);
                if (mem && i && sz == 8) {
                    f.fl |= F_LOCK;
                    f.name = dt_strdup_printf("int/lock %s m64,imm8 [0f ba /%d]", mn[i], 4 + i);
                    dt_add(&f);
                }
            }
}

/* BSF/BSR: the destination is undefined for a zero source (Intel: undefined,
 * AMD: unchanged), so it is not compared then. Zero sources are made common. */
static void bsf_setup(struct dt_case *c)
{
    int size = dt_opsize(c);
    if (dt_chance(c, 15)) dt_set_rm(c, size, 0);
    if (dt_get_rm(c, size) == 0) c->gpr_ignore |= (uint16_t)(1u << c->reg);
}

static void add_bitscan(void)
{
    for (int i = 0; i < 2; i++)
        for (int si = 1; si < 4; si++)
            for (int mem = 0; mem < 2; mem++) {
                int sz = sizes[si];
                struct dt_form f = mk(sz, FL_ZF);
                op2(&f, 0x0f, i ? 0xbd : 0xbc);
                f.reg = f.rm = (uint8_t)kind_of(sz);
                f.mem = (uint8_t)(mem ? sz : 0);
                f.setup = bsf_setup;
                f.name = dt_strdup_printf("int/%s %s,%s [0f %02x]", i ? "bsr" : "bsf", rname[sz],
                                          rm_name(sz, mem), f.op[1]);
                dt_add(&f);
            }
}

/* ---- moves, extensions, conditionals, exchanges ---- */

static void add_moves(void)
{
    for (int si = 0; si < 4; si++) {
        int sz = sizes[si], k = kind_of(sz);
        for (int mem = 0; mem < 2; mem++) {
            for (int dir = 0; dir < 2; dir++) {
                struct dt_form f = mk(sz, FLG_ALL);
                uint8_t b = (uint8_t)(0x88 + (sz != 1) + 2 * dir);
                op1(&f, b);
                f.reg = f.rm = (uint8_t)k;
                f.mem = (uint8_t)(mem ? sz : 0);
                f.name =
                    dir ? dt_strdup_printf("int/mov %s,%s [%02x]", rname[sz], rm_name(sz, mem), b)
                        : dt_strdup_printf("int/mov %s,%s [%02x]", rm_name(sz, mem), rname[sz], b);
                dt_add(&f);
            }
            struct dt_form f = mk(sz, FLG_ALL);
            op1(&f, sz == 1 ? 0xc6 : 0xc7);
            f.ext = 0;
            f.rm = (uint8_t)k;
            f.mem = (uint8_t)(mem ? sz : 0);
            f.imm = (uint8_t)immsz(sz);
            f.name = dt_strdup_printf("int/mov %s,imm%d [%02x /0]", rm_name(sz, mem), f.imm * 8,
                                      f.op[0]);
            dt_add(&f);
        }
        struct dt_form f = mk(sz, FLG_ALL);
        op1(&f, sz == 1 ? 0xb0 : 0xb8);
        f.opreg = (uint8_t)k;
        f.imm = (uint8_t)(sz == 1 ? 1 : sz);
        f.name = dt_strdup_printf("int/mov %s,imm%d [%02x+r]", rname[sz], f.imm * 8, f.op[0]);
        dt_add(&f);
    }

    /* movzx / movsx / movsxd */
    static const struct {
        uint8_t op;
        int dst, src;
        const char *mn;
    } ext[] = {{0xb6, 2, 1, "movzx"},  {0xb6, 4, 1, "movzx"}, {0xb6, 8, 1, "movzx"},
               {0xb7, 2, 2, "movzx"},  {0xb7, 4, 2, "movzx"}, {0xb7, 8, 2, "movzx"},
               {0xbe, 2, 1, "movsx"},  {0xbe, 4, 1, "movsx"}, {0xbe, 8, 1, "movsx"},
               {0xbf, 2, 2, "movsx"},  {0xbf, 4, 2, "movsx"}, {0xbf, 8, 2, "movsx"},
               {0x63, 8, 4, "movsxd"}, {0x63, 4, 4, "movsxd"}};
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        for (int mem = 0; mem < 2; mem++) {
            struct dt_form f = mk(ext[i].dst, FLG_ALL);
            if (ext[i].op == 0x63)
                op1(&f, 0x63);
            else
                op2(&f, 0x0f, ext[i].op);
            f.reg = (uint8_t)kind_of(ext[i].dst);
            f.rm = (uint8_t)kind_of(ext[i].src);
            f.mem = (uint8_t)(mem ? ext[i].src : 0);
            f.name = dt_strdup_printf("int/%s %s,%s [%s%02x]", ext[i].mn, rname[ext[i].dst],
                                      rm_name(ext[i].src, mem), ext[i].op == 0x63 ? "" : "0f ",
                                      ext[i].op);
            dt_add(&f);
        }

    /* cbw cwde cdqe cwd cdq cqo */
    static const struct {
        uint8_t op;
        int sz;
        const char *mn;
    } cx[6] = {{0x98, 2, "cbw"}, {0x98, 4, "cwde"}, {0x98, 8, "cdqe"},
               {0x99, 2, "cwd"}, {0x99, 4, "cdq"},  {0x99, 8, "cqo"}};
    for (int i = 0; i < 6; i++) {
        struct dt_form f = mk(cx[i].sz, FLG_ALL);
        op1(&f, cx[i].op);
        f.name = dt_strdup_printf("int/%s [%s%02x]", cx[i].mn,
                                  cx[i].sz == 2   ? "66 "
                                  : cx[i].sz == 8 ? "48 "
                                                  : "",
                                  cx[i].op);
        dt_add(&f);
    }

    /* mov with a 64-bit (and, with 67, 32-bit) absolute offset */
    for (int a32 = 0; a32 < 2; a32++)
        for (int i = 0; i < 4; i++) {
            int sz = (i & 1) ? (a32 ? 4 : 8) : 1;
            struct dt_form f = mk(sz, FLG_ALL);
            if (a32) f.pfx[f.npfx++] = 0x67;
            op1(&f, (uint8_t)(0xa0 + i));
            f.imm = a32 ? 4 : 8;
            f.implicit = 1u << RAX;
            extern void dt_moffs_setup(struct dt_case * c);
            f.setup = dt_moffs_setup;
            f.name = dt_strdup_printf("int/mov %s%s [%s%02x]", i < 2 ? accname[sz] : "moffs,",
                                      i < 2 ? ",moffs" : accname[sz], a32 ? "67 " : "", 0xa0 + i);
            dt_add(&f);
        }
}

void dt_moffs_setup(struct dt_case *c)
{
    int size = c->form->op[0] & 1 ? (c->form->imm == 4 ? 4 : 8) : 1;
    uint64_t a = DT_DATA_BASE + DT_MEM_LO + dt_below(c, DT_MEM_HI - DT_MEM_LO - 8);
    if (dt_chance(c, 60)) a &= ~(uint64_t)(size - 1);
    c->addr = a;
    dt_set_imm(c, a);
}

static const char *const ccn[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a",
                                    "s", "ns", "p", "np", "l", "ge", "le", "g"};

static void add_cond(void)
{
    for (int cc = 0; cc < 16; cc++) {
        static const struct {
            int sz;
            bool mem;
        } v[4] = {{2, false}, {4, false}, {4, true}, {8, true}};
        for (int i = 0; i < 4; i++) {
            struct dt_form f = mk(v[i].sz, FLG_ALL);
            op2(&f, 0x0f, (uint8_t)(0x40 + cc));
            f.reg = f.rm = (uint8_t)kind_of(v[i].sz);
            f.mem = (uint8_t)(v[i].mem ? v[i].sz : 0);
            f.name = dt_strdup_printf("int/cmov%s %s,%s [0f %02x]", ccn[cc], rname[v[i].sz],
                                      rm_name(v[i].sz, v[i].mem), 0x40 + cc);
            dt_add(&f);
        }
        for (int mem = 0; mem < 2; mem++) {
            struct dt_form f = mk(1, FLG_ALL);
            op2(&f, 0x0f, (uint8_t)(0x90 + cc));
            f.ext = 0;
            f.rm = K_G8;
            f.mem = (uint8_t)(mem ? 1 : 0);
            f.name =
                dt_strdup_printf("int/set%s %s [0f %02x]", ccn[cc], rm_name(1, mem), 0x90 + cc);
            dt_add(&f);
        }
    }
}

/* CMPXCHG: half of the cases make the accumulator equal to the destination. */
static void cmpxchg_setup(struct dt_case *c)
{
    int size = dt_opsize(c);
    if (dt_chance(c, 50)) dt_set_gpr(c, RAX, size, dt_get_rm(c, size));
}

static void cmpxchg8b_setup(struct dt_case *c)
{
    int half = c->form->rexw ? 8 : 4;
    if (c->form->mem && dt_chance(c, 50)) {
        dt_set_gpr(c, RAX, half, dt_mem_get(c, c->addr, half));
        dt_set_gpr(c, RDX, half, dt_mem_get(c, c->addr + (uint64_t)half, half));
    }
}

static void add_xchg(void)
{
    for (int si = 0; si < 4; si++) {
        int sz = sizes[si], k = kind_of(sz);
        for (int mem = 0; mem < 2; mem++) {
            struct dt_form f = mk(sz, FLG_ALL);
            op1(&f, sz == 1 ? 0x86 : 0x87);
            f.reg = f.rm = (uint8_t)k;
            f.mem = (uint8_t)(mem ? sz : 0);
            f.name =
                dt_strdup_printf("int/xchg %s,%s [%02x]", rm_name(sz, mem), rname[sz], f.op[0]);
            dt_add(&f);

            f = mk(sz, FLG_ALL);
            op2(&f, 0x0f, sz == 1 ? 0xb0 : 0xb1);
            f.reg = f.rm = (uint8_t)k;
            f.mem = (uint8_t)(mem ? sz : 0);
            f.implicit = 1u << RAX;
            f.setup = cmpxchg_setup;
            f.name = dt_strdup_printf("int/cmpxchg %s,%s [0f %02x]", rm_name(sz, mem), rname[sz],
                                      f.op[1]);
            dt_add(&f);
            if (mem) {
                f.fl |= F_LOCK;
                f.name = dt_strdup_printf("int/lock cmpxchg %s,%s [0f %02x]", mname[sz], rname[sz],
                                          f.op[1]);
                dt_add(&f);
            }

            f = mk(sz, FLG_ALL);
            op2(&f, 0x0f, sz == 1 ? 0xc0 : 0xc1);
            f.reg = f.rm = (uint8_t)k;
            f.mem = (uint8_t)(mem ? sz : 0);
            f.name =
                dt_strdup_printf("int/xadd %s,%s [0f %02x]", rm_name(sz, mem), rname[sz], f.op[1]);
            dt_add(&f);
            if (mem) {
                f.fl |= F_LOCK;
                f.name = dt_strdup_printf("int/lock xadd %s,%s [0f %02x]", mname[sz], rname[sz],
                                          f.op[1]);
                dt_add(&f);
            }
        }
        if (sz != 1) {
            /* 90+r; 32-bit 90 itself is NOP and must not clear RAX[63:32] */
            struct dt_form f = mk(sz, FLG_ALL);
            op1(&f, 0x90);
            f.opreg = (uint8_t)k;
            f.implicit = 1u << RAX;
            f.name = dt_strdup_printf("int/xchg %s,%s [90+r]", accname[sz], rname[sz]);
            dt_add(&f);
        }
    }
    for (int w = 0; w < 2; w++)
        for (int lock = 0; lock < 2; lock++) {
            struct dt_form f = mk(w ? 8 : 4, FLG_ALL);
            op2(&f, 0x0f, 0xc7);
            f.ext = 1;
            f.mem = (uint8_t)(w ? 16 : 8);
            f.fl = (uint16_t)((w ? F_ALIGN : 0) | (lock ? F_LOCK : 0));
            f.implicit = (1u << RAX) | (1u << RDX) | (1u << RBX) | (1u << RCX);
            f.setup = cmpxchg8b_setup;
            f.name = dt_strdup_printf("int/%scmpxchg%s [%s0f c7 /1]", lock ? "lock " : "",
                                      w ? "16b m128" : "8b m64", w ? "48 " : "");
            dt_add(&f);
        }
    for (int w = 0; w < 2; w++) {
        struct dt_form f = mk(w ? 8 : 4, FLG_ALL);
        op2(&f, 0x0f, 0xc8);
        f.opreg = (uint8_t)(w ? K_G64 : K_G32);
        f.name = dt_strdup_printf("int/bswap %s [0f c8+r]", w ? "r64" : "r32");
        dt_add(&f);
    }
}

static void add_lea(void)
{
    /* hint NOPs and prefetches never access memory, whatever the address */
    static const struct {
        uint8_t op, ext;
        const char *n;
    } hint[5] = {{0x1f, 0, "int/nop m32 [0f 1f /0] any address"},
                 {0x18, 0, "int/prefetchnta m8 [0f 18 /0] any address"},
                 {0x18, 1, "int/prefetcht0 m8 [0f 18 /1] any address"},
                 {0x18, 3, "int/prefetcht2 m8 [0f 18 /3] any address"},
                 {0x0d, 1, "int/prefetchw m8 [0f 0d /1] any address"}};
    for (int i = 0; i < 5; i++) {
        struct dt_form f = mk(4, FLG_ALL);
        op2(&f, 0x0f, hint[i].op);
        f.ext = (int8_t)hint[i].ext;
        f.mem = 4;
        f.fl = F_NOADDR;
        f.name = hint[i].n;
        dt_add(&f);
    }
    for (int si = 1; si < 4; si++) {
        int sz = sizes[si];
        struct dt_form f = mk(sz, FLG_ALL);
        op1(&f, 0x8d);
        f.reg = (uint8_t)kind_of(sz);
        f.mem = 1;
        f.fl = F_NOADDR;
        f.name = dt_strdup_printf("int/lea %s,m [8d]", rname[sz]);
        dt_add(&f);
    }
}

/* ---- stack ---- */

static void popf_setup(struct dt_case *c)
{
    /* popped value: random arithmetic flags and DF; IF set as it is natively
     * (CPL 3 cannot change it, the guest at CPL 0 could); never TF/AC/NT */
    uint64_t v = 0x202 | (dt_rand(c) & (FLG_ALL | FL_DF));
    dt_mem_set(c, c->in.gpr[RSP], c->form->npfx ? 2 : 8, v);
}

static void leave_setup(struct dt_case *c)
{
    c->in.gpr[RBP] = (DT_STACK_LO + dt_below(c, DT_STACK_HI - DT_STACK_LO)) & ~7ull;
}

static void enter_setup(struct dt_case *c)
{
    uint64_t rsp = c->in.gpr[RSP];
    c->in.gpr[RBP] = (rsp + 8 * dt_below(c, 32)) & ~7ull;
}

static void enter_encode(struct dt_case *c)
{
    int lvl = c->form->imm == 1 ? (int)dt_below(c, 32) : c->form->op[1];
    uint16_t size = (uint16_t)(dt_chance(c, 30) ? 0 : dt_below(c, 0x300));
    dt_emit8(c, 0xc8);
    dt_emit_imm(c, size, 2);
    dt_emit8(c, (uint8_t)lvl);
}

static void add_stack(void)
{
    for (int w16 = 0; w16 < 2; w16++) {
        struct dt_form f = mk(w16 ? 2 : 4, FLG_ALL);
        op1(&f, 0x50);
        f.opreg = w16 ? K_G16 : K_G64;
        f.name = dt_strdup_printf("int/push %s [%s50+r]", w16 ? "r16" : "r64", w16 ? "66 " : "");
        dt_add(&f);
        f.op[0] = 0x58;
        f.name = dt_strdup_printf("int/pop %s [%s58+r]", w16 ? "r16" : "r64", w16 ? "66 " : "");
        dt_add(&f);
        for (int mem = 0; mem < 2; mem++) {
            f = mk(w16 ? 2 : 4, FLG_ALL);
            op1(&f, 0xff);
            f.ext = 6;
            f.rm = w16 ? K_G16 : K_G64;
            f.mem = (uint8_t)(mem ? (w16 ? 2 : 8) : 0);
            f.name = dt_strdup_printf("int/push %s [%sff /6]", rm_name(w16 ? 2 : 8, mem),
                                      w16 ? "66 " : "");
            dt_add(&f);
            f.op[0] = 0x8f;
            f.ext = 0;
            f.name = dt_strdup_printf("int/pop %s [%s8f /0]", rm_name(w16 ? 2 : 8, mem),
                                      w16 ? "66 " : "");
            dt_add(&f);
        }
    }
    static const struct {
        uint8_t op;
        int sz, imm;
        const char *n;
    } pi[3] = {{0x6a, 4, 1, "int/push imm8 [6a]"},
               {0x68, 4, 4, "int/push imm32 [68]"},
               {0x68, 2, 2, "int/push imm16 [66 68]"}};
    for (int i = 0; i < 3; i++) {
        struct dt_form f = mk(pi[i].sz, FLG_ALL);
        op1(&f, pi[i].op);
        f.imm = (uint8_t)pi[i].imm;
        f.name = pi[i].n;
        dt_add(&f);
    }
    for (int w16 = 0; w16 < 2; w16++) {
        struct dt_form f = mk(w16 ? 2 : 4, FLG_ALL);
        op1(&f, 0x9c);
        f.name = w16 ? "int/pushf [66 9c]" : "int/pushfq [9c]";
        dt_add(&f);
        f.op[0] = 0x9d;
        f.setup = popf_setup;
        f.name = w16 ? "int/popf [66 9d]" : "int/popfq [9d]";
        dt_add(&f);
    }
    struct dt_form f = mk(4, FLG_ALL);
    op1(&f, 0xc9);
    f.setup = leave_setup;
    f.name = "int/leave [c9]";
    dt_add(&f);
    for (int lvl = 0; lvl < 3; lvl++) {
        f = mk(4, FLG_ALL);
        op2(&f, 0xc8, (uint8_t)lvl); /* op[1]: nesting level (documentation) */
        f.imm = lvl == 2 ? 1 : 0;    /* marks "random level" for enter_encode */
        f.setup = enter_setup;
        f.encode = enter_encode;
        f.name = lvl == 2 ? "int/enter imm16,imm8 [c8] random level"
                          : dt_strdup_printf("int/enter imm16,%d [c8]", lvl);
        dt_add(&f);
    }
}

/* ---- flags, misc, faulting encodings ---- */

static void xlat_setup(struct dt_case *c)
{
    c->in.gpr[RBX] = DT_DATA_BASE + DT_MEM_LO + dt_below(c, DT_MEM_HI - DT_MEM_LO - 256);
}

/* Fixed byte strings (the ModRM-less one- and two-byte forms and faulting ones). */
struct fixed {
    const char *name;
    uint8_t n, b[16];
    uint32_t flags;
};

static void fixed_encode(struct dt_case *c)
{
    /* op[0] indexes the fixed table (see add_misc) */
    extern const struct fixed dt_fixed[];
    const struct fixed *x = &dt_fixed[c->form->op[0]];
    dt_emit(c, x->b, x->n);
}

const struct fixed dt_fixed[] = {
    {"int/clc [f8]", 1, {0xf8}, FLG_ALL},
    {"int/stc [f9]", 1, {0xf9}, FLG_ALL},
    {"int/cmc [f5]", 1, {0xf5}, FLG_ALL},
    {"int/cld [fc]", 1, {0xfc}, FLG_ALL},
    {"int/std [fd]", 1, {0xfd}, FLG_ALL},
    {"int/lahf [9f]", 1, {0x9f}, FLG_ALL},
    {"int/sahf [9e]", 1, {0x9e}, FLG_ALL},
    {"int/nop [90]", 1, {0x90}, FLG_ALL},
    {"int/pause [f3 90]", 2, {0xf3, 0x90}, FLG_ALL},
    {"int/nop r/m32 [0f 1f /0]", 3, {0x0f, 0x1f, 0xc0}, FLG_ALL},
    {"int/nop m [0f 1f 44 00 00]", 5, {0x0f, 0x1f, 0x44, 0x00, 0x00}, FLG_ALL},
    {"int/nop m [66 0f 1f 84 00 x4]", 9, {0x66, 0x0f, 0x1f, 0x84, 0x00, 1, 2, 3, 4}, FLG_ALL},
    {"int/xchg ax,ax [66 90]", 2, {0x66, 0x90}, FLG_ALL},
    {"int/lfence [0f ae e8]", 3, {0x0f, 0xae, 0xe8}, FLG_ALL},
    {"int/mfence [0f ae f0]", 3, {0x0f, 0xae, 0xf0}, FLG_ALL},
    {"int/sfence [0f ae f8]", 3, {0x0f, 0xae, 0xf8}, FLG_ALL},
    {"int/xlat [d7]", 1, {0xd7}, FLG_ALL},
    {"int/xlat rex.w [48 d7]", 2, {0x48, 0xd7}, FLG_ALL},
    /* decoder corner cases: a REX not immediately before the opcode is ignored,
     * REX.W beats 66, repeated and meaningless prefixes, the 15-byte limit */
    {"int/add r16,r16 rex before 66 ignored [48 66 01 c8]", 4, {0x48, 0x66, 0x01, 0xc8}, FLG_ALL},
    {"int/add r64,r64 66 then rex.w [66 48 01 c8]", 4, {0x66, 0x48, 0x01, 0xc8}, FLG_ALL},
    {"int/add r32,r32 rex.w then rex [48 40 01 c8]", 4, {0x48, 0x40, 0x01, 0xc8}, FLG_ALL},
    {"int/add r16,r16 66 66 [66 66 01 c8]", 4, {0x66, 0x66, 0x01, 0xc8}, FLG_ALL},
    {"int/add r32,r32 rep prefix ignored [f3 01 c8]", 3, {0xf3, 0x01, 0xc8}, FLG_ALL},
    {"int/add r32,r32 repne prefix ignored [f2 01 c8]", 3, {0xf2, 0x01, 0xc8}, FLG_ALL},
    {"int/add r32,r32 segment prefixes ignored [2e 3e 26 36 01 c8]",
     6,
     {0x2e, 0x3e, 0x26, 0x36, 0x01, 0xc8},
     FLG_ALL},
    {"int/mov r8,r8 spl with rex [40 88 e0]", 3, {0x40, 0x88, 0xe0}, FLG_ALL},
    {"int/mov r8,r8 ah without rex [88 e0]", 2, {0x88, 0xe0}, FLG_ALL},
    {"int/add r64,imm32 15 bytes [66 x8 48 81 c0]",
     15,
     {0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x48, 0x81, 0xc0, 0x78, 0x56, 0x34, 0x12},
     FLG_ALL},
    {"int/add r64,imm32 16 bytes [66 x9 48 81 c0] #GP",
     16,
     {0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x48, 0x81, 0xc0, 0x78, 0x56, 0x34,
      0x12},
     FLG_ALL},
    /* must fault: #UD in 64-bit mode or by definition, #BP */
    {"int/ud2 [0f 0b] #UD", 2, {0x0f, 0x0b}, FLG_ALL},
    {"int/lock add r32,r32 [f0 01 c8] #UD", 3, {0xf0, 0x01, 0xc8}, FLG_ALL},
    {"int/lock mov m32,r32 [f0 89] #UD", 4, {0xf0, 0x41, 0x89, 0x07}, FLG_ALL},
    {"int/lock cmp m32,r32 [f0 41 39] #UD", 4, {0xf0, 0x41, 0x39, 0x07}, FLG_ALL},
    {"int/lea r32,reg [8d c0] #UD", 2, {0x8d, 0xc0}, FLG_ALL},
    {"int/cmpxchg8b reg [0f c7 c8] #UD", 3, {0x0f, 0xc7, 0xc8}, FLG_ALL},
    {"int/push es [06] #UD", 1, {0x06}, FLG_ALL},
    {"int/pop es [07] #UD", 1, {0x07}, FLG_ALL},
    {"int/push cs [0e] #UD", 1, {0x0e}, FLG_ALL},
    {"int/push ss [16] #UD", 1, {0x16}, FLG_ALL},
    {"int/pop ss [17] #UD", 1, {0x17}, FLG_ALL},
    {"int/push ds [1e] #UD", 1, {0x1e}, FLG_ALL},
    {"int/pop ds [1f] #UD", 1, {0x1f}, FLG_ALL},
    {"int/daa [27] #UD", 1, {0x27}, FLG_ALL},
    {"int/das [2f] #UD", 1, {0x2f}, FLG_ALL},
    {"int/aaa [37] #UD", 1, {0x37}, FLG_ALL},
    {"int/aas [3f] #UD", 1, {0x3f}, FLG_ALL},
    {"int/pusha [60] #UD", 1, {0x60}, FLG_ALL},
    {"int/popa [61] #UD", 1, {0x61}, FLG_ALL},
    {"int/into [ce] #UD", 1, {0xce}, FLG_ALL},
    {"int/aam [d4 0a] #UD", 2, {0xd4, 0x0a}, FLG_ALL},
    {"int/aad [d5 0a] #UD", 2, {0xd5, 0x0a}, FLG_ALL},
    {"int/add r/m8,imm8 [82 /0] #UD", 3, {0x82, 0xc0, 0x01}, FLG_ALL},
    {"int/call far [9a] #UD", 7, {0x9a, 1, 2, 3, 4, 5, 6}, FLG_ALL},
    {"int/jmp far [ea] #UD", 7, {0xea, 1, 2, 3, 4, 5, 6}, FLG_ALL},
    {"int/int3 [cc] #BP", 1, {0xcc}, FLG_ALL},
    /* non-canonical and unmapped addresses (registers set in misc_setup) */
    {"int/add m32,r32 non-canonical [01 03] #GP", 2, {0x01, 0x03}, FLG_ALL},
    {"int/mov r32,[rbp+8] non-canonical [8b 45 08] #SS", 3, {0x8b, 0x45, 0x08}, FLG_ALL},
    {"int/mov r32,m32 unmapped [8b 03] #PF", 2, {0x8b, 0x03}, FLG_ALL},
    /* a read-modify-write crossing into an unmapped page faults before writing */
    {"int/add m32,r32 crossing into unmapped [41 01 87 fe 1f 00 00] #PF",
     7,
     {0x41, 0x01, 0x87, 0xfe, 0x1f, 0x00, 0x00},
     FLG_ALL},
    {"int/lock add m32,r32 crossing into unmapped [f0 41 01 87 fe 1f 00 00] #PF",
     8,
     {0xf0, 0x41, 0x01, 0x87, 0xfe, 0x1f, 0x00, 0x00},
     FLG_ALL},
    {"int/lock xadd m64,r64 crossing into unmapped [f0 49 0f c1 87 fc 1f 00 00] #PF",
     9,
     {0xf0, 0x49, 0x0f, 0xc1, 0x87, 0xfc, 0x1f, 0x00, 0x00},
     FLG_ALL},
    {NULL, 0, {0}, 0},
};

static void fixed_setup(struct dt_case *c)
{
    const char *n = c->form->name;
    uint64_t r = dt_rand(c);
    if (__builtin_strstr(n, "xlat")) xlat_setup(c);
    if (__builtin_strstr(n, "non-canonical")) {
        /* bits 63..47 not a sign extension */
        uint64_t v = (r & 0x00007fffffffffffull) | (0x0001ull << 48) << (r >> 60 & 7);
        c->in.gpr[RBX] = c->in.gpr[RBP] = v;
    } else if (__builtin_strstr(n, "unmapped")) {
        c->in.gpr[RBX] = DT_DATA_BASE + DT_DATA_SIZE + (r & 0xfff);
    }
}

static void add_misc(void)
{
    for (int i = 0; dt_fixed[i].name; i++) {
        struct dt_form f = {.cat = CAT_INT, .ext = -1, .flags = dt_fixed[i].flags};
        f.name = dt_fixed[i].name;
        f.nop = 1, f.op[0] = (uint8_t)i;
        f.encode = fixed_encode;
        f.setup = fixed_setup;
        if (__builtin_strstr(f.name, "#"))
            f.fl |= F_LAST; /* faulting forms run after the others (see F_LAST) */
        dt_add(&f);
    }
}

void dt_forms_int(void)
{
    add_alu();
    add_unary();
    add_shifts();
    add_shld();
    add_muldiv();
    add_bittest();
    add_bitscan();
    add_moves();
    add_cond();
    add_xchg();
    add_lea();
    add_stack();
    add_misc();
}
