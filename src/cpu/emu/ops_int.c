/* ops_int.c — general-purpose integer instructions: ALU, shifts and rotates,
 * multiply/divide, bit operations, data movement, stack, control transfer,
 * compare-exchange and the LOCK-prefixed forms (host atomics). */
#include "cpu/emu/emu.h"

#include <pthread.h>

static pthread_mutex_t split_lock = PTHREAD_MUTEX_INITIALIZER;

/* Locked accesses that split pages (or hit MMIO) serialise on one lock. Both pages
 * are translated for writing first: a fault must not leave the lock held. */
static void split_lock_take(struct emu_cpu *c, uint64_t ea, int size)
{
    emu_probe_write(c, ea, size);
    pthread_mutex_lock(&split_lock);
}

#define OSZ(in) ((in)->osz)
/* byte forms have an even opcode in the classic ALU/MOV/TEST/XCHG layout */
#define BSZ(in) (((in)->opc & 1) ? (in)->osz : 1)

/* ---- flag helpers ---- */

/* Sets the arithmetic flags directly (for instructions whose flags do not fit the
 * lazy model). */
static void flags_direct(struct emu_cpu *c, uint64_t set, uint64_t mask)
{
    emu_flags_sync(c);
    c->s.rflags = (c->s.rflags & ~mask) | (set & mask);
}

static uint64_t pzs(uint64_t r, int size)
{
    r &= szmask(size);
    return (__builtin_parity((unsigned)(r & 0xff)) ? 0 : FL_PF) | (r ? 0 : FL_ZF) |
           ((r >> (size * 8 - 1)) & 1 ? FL_SF : 0);
}

/* ---- ALU ---- */

#define alu emu_alu

static uint64_t cas(void *p, int size, uint64_t *expected, uint64_t desired)
{
    switch (size) {
    case 1: {
        uint8_t e = (uint8_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 2: {
        uint16_t e = (uint16_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 4: {
        uint32_t e = (uint32_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    default:
        return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false,
                                           __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}

/* Generic locked read-modify-write: calls fn(old) -> new until the update lands.
 * Returns the old value. */
typedef uint64_t (*rmw_fn)(struct emu_cpu *c, uint64_t old, const void *arg);

static uint64_t locked_rmw(struct emu_cpu *c, uint64_t ea, int size, rmw_fn fn, const void *arg)
{
    void *p = emu_ptr_rmw(c, ea, size);
    if (p) {
        uint64_t old = load_host(p, size);
        for (;;) {
            uint64_t nv = fn(c, old, arg);
            if (cas(p, size, &old, nv)) return old;
        }
    }
    /* split or MMIO: serialise against other split locks */
    split_lock_take(c, ea, size);
    uint64_t old = vm_read(c, ea, size);
    uint64_t nv = fn(c, old, arg);
    vm_write(c, ea, size, nv);
    pthread_mutex_unlock(&split_lock);
    return old;
}

struct alu_arg {
    int op, size;
    uint64_t b;
};
static uint64_t alu_rmw(struct emu_cpu *c, uint64_t old, const void *a)
{
    const struct alu_arg *x = a;
    return alu(c, x->op, x->size, old, x->b);
}

/* Applies ALU op to the ModRM destination with source b. */
static void alu_rm(struct emu_cpu *c, const struct insn *in, int op, int size, uint64_t b)
{
    if (in->mod == 3) {
        uint64_t a = reg_read(c, in->rm, size, in->pfx & PFX_REX);
        uint64_t r = alu(c, op, size, a, b);
        if (op != 7) reg_write(c, in->rm, size, in->pfx & PFX_REX, r);
        return;
    }
    uint64_t ea = emu_ea(c, in);
    if (in->pfx & PFX_LOCK) {
        struct alu_arg x = {op, size, b};
        locked_rmw(c, ea, size, alu_rmw, &x);
        return;
    }
    uint64_t a = vm_read(c, ea, size);
    uint64_t r = alu(c, op, size, a, b);
    if (op != 7) vm_write(c, ea, size, r);
}

static void op_alu_rm_r(struct emu_cpu *c, const struct insn *in) /* 00,01,08,09.. */
{
    int size = BSZ(in);
    alu_rm(c, in, in->opc >> 3, size, greg_read(c, in, size));
}

static void op_alu_r_rm(struct emu_cpu *c, const struct insn *in) /* 02,03,0A,0B.. */
{
    int size = BSZ(in), op = in->opc >> 3;
    uint64_t r = alu(c, op, size, greg_read(c, in, size), rm_read(c, in, size));
    if (op != 7) greg_write(c, in, size, r);
}

static void op_alu_acc_imm(struct emu_cpu *c, const struct insn *in) /* 04,05,0C,0D.. */
{
    int size = BSZ(in), op = in->opc >> 3;
    uint64_t r = alu(c, op, size, reg_read(c, RAX, size, false), in->imm);
    if (op != 7) reg_write(c, RAX, size, false, r);
}

static void op_grp1(struct emu_cpu *c, const struct insn *in) /* 80,81,83 */
{
    int size = in->opc == 0x80 ? 1 : in->osz;
    alu_rm(c, in, in->reg & 7, size, in->imm);
}

static void op_test_rm_r(struct emu_cpu *c, const struct insn *in)
{
    int size = BSZ(in);
    alu(c, 4, size, rm_read(c, in, size), greg_read(c, in, size));
}

static void op_test_acc_imm(struct emu_cpu *c, const struct insn *in)
{
    int size = in->opc == 0xa8 ? 1 : in->osz;
    alu(c, 4, size, reg_read(c, RAX, size, false), in->imm);
}

/* ---- INC/DEC ---- */

static uint64_t incdec(struct emu_cpu *c, int size, uint64_t a, bool dec)
{
    uint32_t cf = emu_get_cf(c);
    uint64_t r = (dec ? a - 1 : a + 1) & szmask(size);
    emu_set_lazy(c, dec ? LF_DEC : LF_INC, szidx(size), r, a, 1);
    c->lf_aux = cf;
    return r;
}

static uint64_t inc_rmw(struct emu_cpu *c, uint64_t old, const void *a)
{
    const int *x = a;
    return incdec(c, x[0], old, x[1]);
}

static void incdec_rm(struct emu_cpu *c, const struct insn *in, int size, bool dec)
{
    if (in->mod == 3) {
        uint64_t v = reg_read(c, in->rm, size, in->pfx & PFX_REX);
        reg_write(c, in->rm, size, in->pfx & PFX_REX, incdec(c, size, v, dec));
        return;
    }
    uint64_t ea = emu_ea(c, in);
    if (in->pfx & PFX_LOCK) {
        int x[2] = {size, dec};
        locked_rmw(c, ea, size, inc_rmw, x);
        return;
    }
    vm_write(c, ea, size, incdec(c, size, vm_read(c, ea, size), dec));
}

static void op_incdec_r(struct emu_cpu *c, const struct insn *in) /* 40-4F outside 64-bit */
{
    int r = in->opc & 7;
    reg_write(c, r, in->osz, false,
              incdec(c, in->osz, reg_read(c, r, in->osz, false), in->opc & 8));
}

/* ---- NOT/NEG ---- */
static uint64_t not_rmw(struct emu_cpu *c, uint64_t old, const void *a)
{
    return ~old & szmask(*(const int *)a);
}
static uint64_t neg_rmw(struct emu_cpu *c, uint64_t old, const void *a)
{
    int size = *(const int *)a;
    uint64_t r = (0 - old) & szmask(size);
    emu_set_lazy(c, LF_SUB, szidx(size), r, 0, old);
    return r;
}

/* ---- multiply / divide ---- */

static void mul1(struct emu_cpu *c, int size, uint64_t src, bool sign)
{
    uint64_t a = reg_read(c, RAX, size, false), lo, hi;
    bool ovf;
    if (size == 8) {
        if (sign) {
            __int128 p = (__int128)(int64_t)a * (int64_t)src;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            ovf = p != (__int128)(int64_t)lo;
        } else {
            unsigned __int128 p = (unsigned __int128)a * src;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            ovf = hi != 0;
        }
    } else {
        int bits = size * 8;
        uint64_t p;
        if (sign) {
            int64_t sp = (int64_t)sext(a, size) * (int64_t)sext(src, size);
            p = (uint64_t)sp;
            ovf = sp != (int64_t)sext(p & szmask(size), size);
        } else {
            p = a * src;
            ovf = (p >> bits) != 0;
        }
        lo = p & szmask(size);
        hi = (p >> bits) & szmask(size);
    }
    if (size == 1) {
        reg_write(c, RAX, 2, false, lo | (hi << 8));
    } else {
        reg_write(c, RAX, size, false, lo);
        reg_write(c, RDX, size, false, hi);
    }
    emu_set_lazy(c, LF_MUL, szidx(size), lo, 0, 0);
    c->lf_aux = ovf;
}

static void div1(struct emu_cpu *c, int size, uint64_t src, bool sign)
{
    src &= szmask(size);
    if (!src) emu_raise(c, EXC_DE, 0, false);
    uint64_t q, r;
    if (size == 8) {
        unsigned __int128 n = ((unsigned __int128)c->s.gpr[RDX] << 64) | c->s.gpr[RAX];
        if (sign) {
            __int128 sn = (__int128)n, sd = (int64_t)src;
            /* -2^127 / -1 overflows (and would trap on the host): #DE */
            if (sd == -1 && n == (unsigned __int128)1 << 127) emu_raise(c, EXC_DE, 0, false);
            __int128 sq = sn / sd, sr = sn % sd;
            if (sq > INT64_MAX || sq < INT64_MIN) emu_raise(c, EXC_DE, 0, false);
            q = (uint64_t)sq;
            r = (uint64_t)sr;
        } else {
            unsigned __int128 uq = n / src;
            if (uq >> 64) emu_raise(c, EXC_DE, 0, false);
            q = (uint64_t)uq;
            r = (uint64_t)(n % src);
        }
    } else {
        int bits = size * 8;
        uint64_t n = size == 1
                         ? reg_read(c, RAX, 2, false)
                         : (reg_read(c, RDX, size, false) << bits) | reg_read(c, RAX, size, false);
        if (sign) {
            int64_t sn = (int64_t)(n << (64 - 2 * bits)) >> (64 - 2 * bits);
            int64_t sd = (int64_t)sext(src, size);
            /* 128-bit so that INT64_MIN / -1 (EDX:EAX = 2^63, divisor -1) cannot trap */
            __int128 sq = (__int128)sn / sd, sr = (__int128)sn % sd;
            int64_t lim = (int64_t)1 << (bits - 1);
            if (sq >= lim || sq < -lim) emu_raise(c, EXC_DE, 0, false);
            q = (uint64_t)sq & szmask(size);
            r = (uint64_t)sr & szmask(size);
        } else {
            uint64_t uq = n / src;
            if (uq >> bits) emu_raise(c, EXC_DE, 0, false);
            q = uq;
            r = n % src;
        }
    }
    if (size == 1) {
        reg_write(c, RAX, 2, false, (q & 0xff) | ((r & 0xff) << 8));
    } else {
        reg_write(c, RAX, size, false, q);
        reg_write(c, RDX, size, false, r);
    }
}

static void op_grp3(struct emu_cpu *c, const struct insn *in) /* F6, F7 */
{
    int size = in->opc == 0xf6 ? 1 : in->osz;
    switch (in->reg & 7) {
    case 0:
    case 1: alu(c, 4, size, rm_read(c, in, size), in->imm); break;
    case 2:
    case 3: {
        bool neg = (in->reg & 7) == 3;
        if (in->mod != 3 && (in->pfx & PFX_LOCK)) {
            locked_rmw(c, emu_ea(c, in), size, neg ? neg_rmw : not_rmw, &size);
        } else {
            uint64_t v = rm_read(c, in, size);
            rm_write(c, in, size, neg ? neg_rmw(c, v, &size) : not_rmw(c, v, &size));
        }
        break;
    }
    case 4: mul1(c, size, rm_read(c, in, size), false); break;
    case 5: mul1(c, size, rm_read(c, in, size), true); break;
    case 6: div1(c, size, rm_read(c, in, size), false); break;
    case 7: div1(c, size, rm_read(c, in, size), true); break;
    }
}

#define imul2 emu_imul2

static void op_imul_r_rm(struct emu_cpu *c, const struct insn *in) /* 0F AF */
{
    greg_write(c, in, in->osz,
               imul2(c, in->osz, greg_read(c, in, in->osz), rm_read(c, in, in->osz)));
}

static void op_imul_r_rm_imm(struct emu_cpu *c, const struct insn *in) /* 69, 6B */
{
    greg_write(c, in, in->osz, imul2(c, in->osz, rm_read(c, in, in->osz), in->imm));
}

/* ---- shifts and rotates ---- */

static uint64_t rotate(struct emu_cpu *c, int op, int size, uint64_t a, unsigned cnt)
{
    int bits = size * 8;
    uint64_t m = szmask(size), r = a, msb = 1ull << (bits - 1);
    cnt &= size == 8 ? 63 : 31;
    if (!cnt) return a;
    uint64_t f = emu_rflags(c), cf = f & FL_CF, of;
    switch (op) {
    case 0: { /* ROL */
        unsigned n = cnt % bits;
        r = n ? ((a << n) | (a >> (bits - n))) & m : a;
        cf = r & 1;
        of = ((r & msb) != 0) ^ cf;
        break;
    }
    case 1: { /* ROR */
        unsigned n = cnt % bits;
        r = n ? ((a >> n) | (a << (bits - n))) & m : a;
        cf = (r & msb) != 0;
        of = ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1;
        break;
    }
    case 2: { /* RCL */
        unsigned n = size == 1 ? cnt % 9 : size == 2 ? cnt % 17 : cnt;
        for (unsigned i = 0; i < n; i++) {
            uint64_t out = (r & msb) != 0;
            r = ((r << 1) | cf) & m;
            cf = out;
        }
        of = ((r & msb) != 0) ^ cf;
        break;
    }
    default: { /* RCR */
        unsigned n = size == 1 ? cnt % 9 : size == 2 ? cnt % 17 : cnt;
        of = ((a & msb) != 0) ^ (cf != 0);
        for (unsigned i = 0; i < n; i++) {
            uint64_t out = r & 1;
            r = (r >> 1) | (cf ? msb : 0);
            cf = out;
        }
        break;
    }
    }
    flags_direct(c, (cf ? FL_CF : 0) | (of ? FL_OF : 0), FL_CF | FL_OF);
    return r;
}

static uint64_t shift(struct emu_cpu *c, int op, int size, uint64_t a, unsigned cnt)
{
    if (op < 4) return rotate(c, op, size, a, cnt);
    return emu_shift(c, op, size, a, cnt);
}

static void op_shift(struct emu_cpu *c, const struct insn *in) /* C0 C1 D0-D3 */
{
    int size = (in->opc & 1) ? in->osz : 1;
    unsigned cnt = in->opc <= 0xc1   ? (unsigned)in->imm
                   : in->opc <= 0xd1 ? 1
                                     : (unsigned)c->s.gpr[RCX] & 0xff;
    if (in->mod == 3) {
        uint64_t a = reg_read(c, in->rm, size, in->pfx & PFX_REX);
        reg_write(c, in->rm, size, in->pfx & PFX_REX, shift(c, in->reg & 7, size, a, cnt));
        return;
    }
    uint64_t ea = emu_ea(c, in);
    uint64_t a = vm_read(c, ea, size);
    vm_write(c, ea, size, shift(c, in->reg & 7, size, a, cnt));
}

static void op_shld_shrd(struct emu_cpu *c, const struct insn *in) /* 0F A4 A5 AC AD */
{
    int size = in->osz, bits = size * 8;
    unsigned cnt = (in->opc & 1) ? (unsigned)c->s.gpr[RCX] : (unsigned)in->imm;
    cnt &= size == 8 ? 63 : 31;
    uint64_t ea = in->mod == 3 ? 0 : emu_ea(c, in);
    uint64_t a = in->mod == 3 ? reg_read(c, in->rm, size, false) : vm_read(c, ea, size);
    if (!cnt) {
        if (in->mod == 3 && size == 4) /* a 32-bit destination is written all the same */
            reg_write(c, in->rm, 4, false, a);
        return;
    }
    uint64_t b = greg_read(c, in, size), m = szmask(size), r, cf;
    bool left = in->opc < 0xa8;
    if (left) {
        /* 16-bit counts above 16 are undefined; behave as a 32-bit funnel */
        unsigned __int128 w = ((unsigned __int128)a << bits) | b;
        unsigned __int128 x = w << cnt;
        r = (uint64_t)(x >> bits) & m;
        cf = (uint64_t)(w >> (2 * bits - cnt)) & 1;
    } else {
        unsigned __int128 w = ((unsigned __int128)b << bits) | a;
        r = (uint64_t)(w >> cnt) & m;
        cf = (uint64_t)(w >> (cnt - 1)) & 1;
    }
    uint64_t of = ((r ^ a) >> (bits - 1)) & 1;
    flags_direct(c, pzs(r, size) | (cf ? FL_CF : 0) | (of ? FL_OF : 0), FL_ARITH);
    if (in->mod == 3)
        reg_write(c, in->rm, size, false, r);
    else
        vm_write(c, ea, size, r);
}

/* ---- bit tests ---- */

struct bt_arg {
    int op;
    uint64_t mask;
};
static uint64_t bt_rmw(struct emu_cpu *c, uint64_t old, const void *a)
{
    const struct bt_arg *x = a;
    switch (x->op) {
    case 1: return old | x->mask;
    case 2: return old & ~x->mask;
    case 3: return old ^ x->mask;
    default: return old;
    }
}

static void bit_op(struct emu_cpu *c, const struct insn *in, int op, uint64_t off, bool imm)
{
    int size = in->osz, bits = size * 8;
    uint64_t old;
    struct bt_arg x;
    if (in->mod == 3) {
        unsigned bit = off & (bits - 1);
        x = (struct bt_arg){op, 1ull << bit};
        old = reg_read(c, in->rm, size, false);
        if (op) reg_write(c, in->rm, size, false, bt_rmw(c, old, &x));
    } else {
        uint64_t ea = emu_ea(c, in);
        int64_t soff = imm ? (int64_t)(off & (bits - 1)) : (int64_t)sext(off, size);
        int64_t word = soff >> (size == 2 ? 4 : size == 4 ? 5 : 6);
        unsigned bit = (unsigned)(soff & (bits - 1));
        ea += (uint64_t)(word * size);
        if (in->asz == 4 && c->mode != MODE_LONG64) ea = (uint32_t)ea;
        if (c->mode == MODE_LONG64 && in->seg == SEG_SS && !canonical(ea))
            emu_raise(c, EXC_SS, 0, true); /* the offset moved a stack reference out */
        x = (struct bt_arg){op, 1ull << bit};
        if (!op)
            old = vm_read(c, ea, size);
        else if (in->pfx & PFX_LOCK)
            old = locked_rmw(c, ea, size, bt_rmw, &x);
        else {
            old = vm_read(c, ea, size);
            vm_write(c, ea, size, bt_rmw(c, old, &x));
        }
    }
    flags_direct(c, (old & x.mask) ? FL_CF : 0, FL_CF);
}

static void op_bt_r(struct emu_cpu *c, const struct insn *in) /* 0F A3 AB B3 BB */
{
    static const int ops[4] = {0, 1, 2, 3}; /* A3 BT, AB BTS, B3 BTR, BB BTC */
    bit_op(c, in, ops[(in->opc >> 3) & 3], greg_read(c, in, in->osz), false);
}

static void op_grp8(struct emu_cpu *c, const struct insn *in) /* 0F BA */
{
    int r = in->reg & 7;
    if (r < 4) emu_ud(c);
    bit_op(c, in, r - 4, in->imm & 0xff, true);
}

static void op_bsf_bsr(struct emu_cpu *c, const struct insn *in) /* 0F BC BD */
{
    int size = in->osz;
    uint64_t v = rm_read(c, in, size);
    if (!v) {
        flags_direct(c, FL_ZF, FL_ZF);
        return;
    }
    int idx = in->opc == 0xbc ? __builtin_ctzll(v) : 63 - __builtin_clzll(v);
    greg_write(c, in, size, (uint64_t)idx);
    flags_direct(c, 0, FL_ZF);
}

/* ---- data movement ---- */

static void op_mov_rm_r(struct emu_cpu *c, const struct insn *in) /* 88 89 */
{
    int size = BSZ(in);
    rm_write(c, in, size, greg_read(c, in, size));
}

static void op_mov_r_rm(struct emu_cpu *c, const struct insn *in) /* 8A 8B */
{
    int size = BSZ(in);
    greg_write(c, in, size, rm_read(c, in, size));
}

static void op_mov_rm_imm(struct emu_cpu *c, const struct insn *in) /* C6 C7 */
{
    if (in->reg & 7) emu_ud(c);
    rm_write(c, in, in->opc == 0xc6 ? 1 : in->osz, in->imm);
}

static void op_mov_r_imm(struct emu_cpu *c, const struct insn *in) /* B0-BF */
{
    int r = (in->opc & 7) | ((in->rex & 1) << 3);
    reg_write(c, r, in->opc < 0xb8 ? 1 : in->osz, in->pfx & PFX_REX, in->imm);
}

static void op_mov_moffs(struct emu_cpu *c, const struct insn *in) /* A0-A3 */
{
    int size = (in->opc & 1) ? in->osz : 1;
    uint64_t off = (uint64_t)in->disp & szmask(in->asz);
    uint64_t lin = emu_lin(c, in->seg, off);
    if (in->seg != SEG_FS && in->seg != SEG_GS && c->mode != MODE_LONG64)
        lin = (uint32_t)(off + c->s.seg[in->seg].base);
    if (in->opc < 0xa2)
        reg_write(c, RAX, size, false, vm_read(c, lin, size));
    else
        vm_write(c, lin, size, reg_read(c, RAX, size, false));
}

static void op_lea(struct emu_cpu *c, const struct insn *in) /* 8D */
{
    if (in->mod == 3) emu_ud(c);
    greg_write(c, in, in->osz, emu_ea_off(c, in));
}

static void op_movzx(struct emu_cpu *c, const struct insn *in) /* 0F B6 B7 */
{
    greg_write(c, in, in->osz, rm_read(c, in, in->opc == 0xb6 ? 1 : 2));
}

static void op_movsx(struct emu_cpu *c, const struct insn *in) /* 0F BE BF */
{
    int ss = in->opc == 0xbe ? 1 : 2;
    greg_write(c, in, in->osz, sext(rm_read(c, in, ss), ss));
}

static void op_movsxd(struct emu_cpu *c, const struct insn *in) /* 63 in 64-bit mode */
{
    if (c->mode != MODE_LONG64) emu_ud(c); /* ARPL is not supported */
    if (in->osz == 8)
        greg_write(c, in, 8, sext(rm_read(c, in, 4), 4));
    else
        greg_write(c, in, in->osz, rm_read(c, in, in->osz));
}

static uint64_t xchg_rmw(struct emu_cpu *c, uint64_t old, const void *a)
{
    return *(const uint64_t *)a;
}

static void op_xchg_rm_r(struct emu_cpu *c, const struct insn *in) /* 86 87 */
{
    int size = BSZ(in);
    uint64_t v = greg_read(c, in, size);
    if (in->mod == 3) {
        uint64_t o = reg_read(c, in->rm, size, in->pfx & PFX_REX);
        reg_write(c, in->rm, size, in->pfx & PFX_REX, v);
        greg_write(c, in, size, o);
        return;
    }
    /* XCHG with memory is always locked */
    uint64_t old = locked_rmw(c, emu_ea(c, in), size, xchg_rmw, &v);
    greg_write(c, in, size, old);
}

static void op_xchg_acc(struct emu_cpu *c, const struct insn *in) /* 90-97 */
{
    int r = (in->opc & 7) | ((in->rex & 1) << 3);
    if (r == 0) {
        return; /* NOP (and PAUSE): XCHG eAX,eAX does not zero-extend */
    }
    uint64_t a = reg_read(c, RAX, in->osz, false), b = reg_read(c, r, in->osz, false);
    reg_write(c, RAX, in->osz, false, b);
    reg_write(c, r, in->osz, false, a);
}

static void op_cbw(struct emu_cpu *c, const struct insn *in) /* 98 */
{
    int h = in->osz / 2;
    reg_write(c, RAX, in->osz, false, sext(reg_read(c, RAX, h, false), h));
}

static void op_cwd(struct emu_cpu *c, const struct insn *in) /* 99 */
{
    uint64_t a = reg_read(c, RAX, in->osz, false);
    reg_write(c, RDX, in->osz, false, (a >> (in->osz * 8 - 1)) & 1 ? ~0ull : 0);
}

static void op_cmov(struct emu_cpu *c, const struct insn *in) /* 0F 40-4F */
{
    uint64_t v = rm_read(c, in, in->osz);
    if (emu_cond(c, in->opc & 15))
        greg_write(c, in, in->osz, v);
    else if (in->osz == 4)
        greg_write(c, in, 4, greg_read(c, in, 4));
}

static void op_setcc(struct emu_cpu *c, const struct insn *in) /* 0F 90-9F */
{
    rm_write(c, in, 1, emu_cond(c, in->opc & 15));
}

static void op_bswap(struct emu_cpu *c, const struct insn *in) /* 0F C8-CF */
{
    int r = (in->opc & 7) | ((in->rex & 1) << 3);
    if (in->osz == 8)
        c->s.gpr[r] = __builtin_bswap64(c->s.gpr[r]);
    else if (in->osz == 4)
        c->s.gpr[r] = __builtin_bswap32((uint32_t)c->s.gpr[r]);
    else
        reg_write(c, r, 2, false, 0); /* undefined; zero like current hardware */
}

static void op_xlat(struct emu_cpu *c, const struct insn *in) /* D7 */
{
    uint64_t off = (c->s.gpr[RBX] + (c->s.gpr[RAX] & 0xff)) & szmask(in->asz);
    reg_write(c, RAX, 1, false, vm_read(c, emu_lin(c, in->seg, off), 1));
}

/* ---- CMPXCHG / XADD ---- */

static void op_cmpxchg(struct emu_cpu *c, const struct insn *in) /* 0F B0 B1 */
{
    int size = in->opc == 0xb0 ? 1 : in->osz;
    uint64_t acc = reg_read(c, RAX, size, false), src = greg_read(c, in, size), old;
    bool eq;
    if (in->mod == 3) {
        old = reg_read(c, in->rm, size, in->pfx & PFX_REX);
        eq = old == acc;
        if (eq) reg_write(c, in->rm, size, in->pfx & PFX_REX, src);
    } else {
        uint64_t ea = emu_ea(c, in);
        void *p = emu_ptr_rmw(c, ea, size);
        if (p) {
            old = acc;
            eq = cas(p, size, &old, src);
        } else {
            split_lock_take(c, ea, size);
            old = vm_read(c, ea, size);
            eq = old == acc;
            vm_write(c, ea, size, eq ? src : old);
            pthread_mutex_unlock(&split_lock);
        }
    }
    alu(c, 7, size, acc, old);
    if (!eq) reg_write(c, RAX, size, false, old);
}

static uint64_t xadd_rmw(struct emu_cpu *c, uint64_t old, const void *a)
{
    const struct alu_arg *x = a;
    return alu(c, 0, x->size, old, x->b);
}

static void op_xadd(struct emu_cpu *c, const struct insn *in) /* 0F C0 C1 */
{
    int size = in->opc == 0xc0 ? 1 : in->osz;
    uint64_t src = greg_read(c, in, size), old;
    if (in->mod == 3) {
        old = reg_read(c, in->rm, size, in->pfx & PFX_REX);
        uint64_t r = alu(c, 0, size, old, src);
        greg_write(c, in, size, old);
        reg_write(c, in->rm, size, in->pfx & PFX_REX, r);
        return;
    }
    uint64_t ea = emu_ea(c, in);
    struct alu_arg x = {0, size, src};
    if (in->pfx & PFX_LOCK) {
        old = locked_rmw(c, ea, size, xadd_rmw, &x);
    } else {
        old = vm_read(c, ea, size);
        vm_write(c, ea, size, xadd_rmw(c, old, &x));
    }
    greg_write(c, in, size, old);
}

static bool cas16(void *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
    bool ok;
    __asm__ volatile("lock cmpxchg16b %1"
                     : "=@ccz"(ok), "+m"(*(volatile __int128 *)p), "+a"(*lo), "+d"(*hi)
                     : "b"(nlo), "c"(nhi)
                     : "memory");
    return ok;
}

static void op_grp9(struct emu_cpu *c, const struct insn *in) /* 0F C7 */
{
    if ((in->reg & 7) != 1 || in->mod == 3)
        emu_ud(c); /* RDRAND/RDSEED/VMX forms are not advertised */
    uint64_t ea = emu_ea(c, in);
    bool eq;
    if (in->osz == 8) {
        if (ea & 15) emu_gp(c, 0);
        uint64_t lo = c->s.gpr[RAX], hi = c->s.gpr[RDX];
        void *p = emu_ptr_rmw(c, ea, 16 - 8); /* 16-byte aligned: never splits */
        if (!p) emu_gp(c, 0);
        eq = cas16(p, &lo, &hi, c->s.gpr[RBX], c->s.gpr[RCX]);
        if (!eq) {
            c->s.gpr[RAX] = lo;
            c->s.gpr[RDX] = hi;
        }
    } else {
        uint64_t expect = (c->s.gpr[RAX] & 0xffffffff) | (c->s.gpr[RDX] << 32);
        uint64_t nv = (c->s.gpr[RBX] & 0xffffffff) | (c->s.gpr[RCX] << 32);
        void *p = emu_ptr_rmw(c, ea, 8);
        uint64_t old = expect;
        if (p) {
            eq = cas(p, 8, &old, nv);
        } else {
            split_lock_take(c, ea, 8);
            old = vm_read(c, ea, 8);
            eq = old == expect;
            vm_write(c, ea, 8, eq ? nv : old);
            pthread_mutex_unlock(&split_lock);
        }
        if (!eq) {
            c->s.gpr[RAX] = (uint32_t)old;
            c->s.gpr[RDX] = old >> 32;
        }
    }
    flags_direct(c, eq ? FL_ZF : 0, FL_ZF);
}

/* ---- stack ---- */

static void op_push_r(struct emu_cpu *c, const struct insn *in) /* 50-57 */
{
    int r = (in->opc & 7) | ((in->rex & 1) << 3);
    emu_push(c, in->osz, reg_read(c, r, in->osz, false));
}

static void op_pop_r(struct emu_cpu *c, const struct insn *in) /* 58-5F */
{
    int r = (in->opc & 7) | ((in->rex & 1) << 3);
    uint64_t v = emu_pop(c, in->osz);
    reg_write(c, r, in->osz, false, v);
}

static void op_push_imm(struct emu_cpu *c, const struct insn *in) /* 68 6A */
{
    emu_push(c, in->osz, in->imm);
}

static void op_pop_rm(struct emu_cpu *c, const struct insn *in) /* 8F /0 */
{
    if (in->reg & 7) emu_ud(c);
    uint64_t v = emu_stack_peek(c, in->osz, 0);
    uint64_t old_rsp = c->s.gpr[RSP];
    /* the address is computed with RSP already incremented */
    set_rsp_sized(c, c->s.gpr[RSP] + in->osz);
    if (in->mod == 3) {
        reg_write(c, in->rm, in->osz, false, v);
    } else {
        uint64_t off = emu_ea_off(c, in);
        uint64_t new_rsp = c->s.gpr[RSP];
        c->s.gpr[RSP] = old_rsp; /* a fault (#SS, #GP, #PF) must leave RSP unchanged */
        vm_write(c, emu_ea_linear(c, in, off), in->osz, v);
        c->s.gpr[RSP] = new_rsp;
    }
}

static void op_pusha(struct emu_cpu *c, const struct insn *in) /* 60 */
{
    uint64_t sp = c->s.gpr[RSP];
    for (int r = 0; r < 8; r++)
        emu_push(c, in->osz, r == RSP ? sp : c->s.gpr[r]);
}

static void op_popa(struct emu_cpu *c, const struct insn *in) /* 61 */
{
    for (int r = 7; r >= 0; r--) {
        uint64_t v = emu_pop(c, in->osz);
        if (r != RSP) reg_write(c, r, in->osz, false, v);
    }
}

static void op_enter(struct emu_cpu *c, const struct insn *in) /* C8 */
{
    int sz = in->osz, level = in->imm2 & 31;
    emu_push(c, sz, c->s.gpr[RBP]);
    uint64_t frame = c->s.gpr[RSP];
    if (level) {
        uint64_t bp = c->s.gpr[RBP];
        for (int i = 1; i < level; i++) {
            bp -= sz;
            emu_push(c, sz, vm_read(c, emu_lin(c, SEG_SS, bp & szmask(stack_size(c))), sz));
        }
        emu_push(c, sz, frame);
    }
    reg_write(c, RBP, sz, false, frame);
    set_rsp_sized(c, c->s.gpr[RSP] - in->imm);
}

static void op_leave(struct emu_cpu *c, const struct insn *in) /* C9 */
{
    uint64_t bp = c->s.gpr[RBP];
    int ss = stack_size(c);
    uint64_t v = vm_read(c, emu_lin(c, SEG_SS, bp & szmask(ss)), in->osz);
    set_rsp_sized(c, bp + in->osz);
    reg_write(c, RBP, in->osz, false, v);
}

static void op_pushf(struct emu_cpu *c, const struct insn *in) /* 9C */
{
    emu_push(c, in->osz, emu_rflags(c) & ~(uint64_t)(FL_VM | FL_RF));
}

static void op_popf(struct emu_cpu *c, const struct insn *in) /* 9D */
{
    uint64_t v = emu_pop(c, in->osz);
    uint64_t mask = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID;
    int iopl = (int)((emu_rflags(c) >> 12) & 3);
    if (c->cpl == 0) mask |= FL_IOPL;
    if (c->cpl <= iopl) mask |= FL_IF;
    if (in->osz == 2) mask &= 0xffff;
    emu_flags_sync(c);
    c->s.rflags = (c->s.rflags & ~mask) | (v & mask) | FL_1;
    c->exit_block = true; /* IF or TF may have changed */
}

static void op_sahf(struct emu_cpu *c, const struct insn *in)
{
    uint64_t ah = (c->s.gpr[RAX] >> 8) & 0xff;
    flags_direct(c, ah, FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF);
}

static void op_lahf(struct emu_cpu *c, const struct insn *in)
{
    uint64_t f = (emu_rflags(c) & 0xd5) | FL_1;
    c->s.gpr[RAX] = (c->s.gpr[RAX] & ~0xff00ull) | (f << 8);
}

static void op_flagop(struct emu_cpu *c, const struct insn *in) /* F5 F8 F9 FC FD */
{
    emu_flags_sync(c);
    switch (in->opc) {
    case 0xf5: c->s.rflags ^= FL_CF; break;
    case 0xf8: c->s.rflags &= ~(uint64_t)FL_CF; break;
    case 0xf9: c->s.rflags |= FL_CF; break;
    case 0xfc: c->s.rflags &= ~(uint64_t)FL_DF; break;
    case 0xfd: c->s.rflags |= FL_DF; break;
    }
}

/* ---- control transfer ---- */

static void op_jcc8(struct emu_cpu *c, const struct insn *in) /* 70-7F, 0F 80-8F */
{
    if (emu_cond(c, in->opc & 15)) c->next_rip = branch_target(c, in, c->next_rip + in->imm);
}

static void op_jmp_rel(struct emu_cpu *c, const struct insn *in) /* E9 EB */
{
    c->next_rip = branch_target(c, in, c->next_rip + in->imm);
}

static void op_call_rel(struct emu_cpu *c, const struct insn *in) /* E8 */
{
    uint64_t t = branch_target(c, in, c->next_rip + in->imm);
    emu_push(c, in->osz, c->next_rip);
    c->next_rip = t;
}

static void op_ret(struct emu_cpu *c, const struct insn *in) /* C2 C3 */
{
    uint64_t t = branch_target(c, in, emu_stack_peek(c, in->osz, 0));
    set_rsp_sized(c, c->s.gpr[RSP] + in->osz + (in->opc == 0xc2 ? in->imm : 0));
    c->next_rip = t;
}

static void op_loop(struct emu_cpu *c, const struct insn *in) /* E0-E3 */
{
    uint64_t m = szmask(in->asz);
    uint64_t cnt = c->s.gpr[RCX] & m;
    bool take;
    if (in->opc == 0xe3) {
        take = cnt == 0;
    } else {
        cnt = (cnt - 1) & m;
        reg_write(c, RCX, in->asz, false, cnt);
        take = cnt != 0;
        if (in->opc == 0xe0)
            take = take && !emu_cond(c, 4);
        else if (in->opc == 0xe1)
            take = take && emu_cond(c, 4);
    }
    if (take) c->next_rip = branch_target(c, in, c->next_rip + in->imm);
}

/* Far transfer to sel:off (JMP/CALL); call pushes the return address. */
static void far_transfer(struct emu_cpu *c, const struct insn *in, uint16_t sel, uint64_t off,
                         bool call)
{
    int sz = in->osz;
    if (c->mode == MODE_REAL || (c->s.rflags & FL_VM)) {
        if (call) {
            emu_push(c, sz, c->s.seg[SEG_CS].sel);
            emu_push(c, sz, c->next_rip);
        }
        c->s.seg[SEG_CS].sel = sel;
        c->s.seg[SEG_CS].base = (uint64_t)sel << 4;
        c->next_rip = off & szmask(sz);
        return;
    }
    int ncpl;
    uint64_t d = emu_check_code_desc(c, sel, &ncpl, false);
    if (call) {
        emu_push(c, sz, c->s.seg[SEG_CS].sel);
        emu_push(c, sz, c->next_rip);
    }
    emu_load_cs(c, sel, d, ncpl);
    c->next_rip = c->mode == MODE_LONG64 ? off : off & szmask(sz == 8 ? 4 : sz);
    c->exit_block = true;
}

static void op_far_imm(struct emu_cpu *c, const struct insn *in) /* 9A EA */
{
    far_transfer(c, in, (uint16_t)in->imm2, in->imm, in->opc == 0x9a);
}

static void op_retf(struct emu_cpu *c, const struct insn *in) /* CA CB */
{
    int sz = in->osz;
    uint64_t off = emu_stack_peek(c, sz, 0);
    uint16_t sel = (uint16_t)emu_stack_peek(c, sz, sz);
    uint64_t imm = in->opc == 0xca ? in->imm : 0;
    if (c->mode == MODE_REAL || (c->s.rflags & FL_VM)) {
        set_rsp_sized(c, c->s.gpr[RSP] + 2 * sz + imm);
        c->s.seg[SEG_CS].sel = sel;
        c->s.seg[SEG_CS].base = (uint64_t)sel << 4;
        c->next_rip = off & szmask(sz);
        return;
    }
    int ncpl;
    uint64_t d = emu_check_code_desc(c, sel, &ncpl, true);
    if (ncpl > c->cpl) {
        uint64_t nrsp = emu_stack_peek(c, sz, 2 * sz + (int)imm);
        uint16_t nss = (uint16_t)emu_stack_peek(c, sz, 3 * sz + (int)imm);
        emu_load_cs(c, sel, d, ncpl);
        emu_load_seg(c, SEG_SS, nss);
        c->s.gpr[RSP] = nrsp + imm;
        emu_clear_outer_segs(c, ncpl);
    } else {
        set_rsp_sized(c, c->s.gpr[RSP] + 2 * sz + imm);
        emu_load_cs(c, sel, d, ncpl);
    }
    c->next_rip = c->mode == MODE_LONG64 ? off : off & szmask(sz == 8 ? 4 : sz);
    c->exit_block = true;
}

static void op_grp4(struct emu_cpu *c, const struct insn *in) /* FE */
{
    if ((in->reg & 7) > 1) emu_ud(c);
    incdec_rm(c, in, 1, in->reg & 1);
}

static void op_grp5(struct emu_cpu *c, const struct insn *in) /* FF */
{
    int r = in->reg & 7;
    switch (r) {
    case 0:
    case 1: incdec_rm(c, in, in->osz, r & 1); break;
    case 2: {
        uint64_t t = branch_target(c, in, rm_read(c, in, in->osz));
        emu_push(c, in->osz, c->next_rip);
        c->next_rip = t;
        c->exit_block = true;
        break;
    }
    case 4:
        c->next_rip = branch_target(c, in, rm_read(c, in, in->osz));
        c->exit_block = true;
        break;
    case 3:
    case 5: {
        if (in->mod == 3) emu_ud(c);
        uint64_t ea = emu_ea(c, in);
        int osz = in->osz;
        uint64_t off = vm_read(c, ea, osz);
        uint16_t sel = (uint16_t)vm_read(c, ea + osz, 2);
        far_transfer(c, in, sel, off, r == 3);
        c->exit_block = true;
        break;
    }
    case 6: emu_push(c, in->osz, rm_read(c, in, in->osz)); break;
    default: emu_ud(c);
    }
}

/* 0F 1F /0 and the reserved-NOP / prefetch hint space */
static void op_hint_nop(struct emu_cpu *c, const struct insn *in) {}

void emu_ops_int_init(void)
{
    for (int op = 0; op < 0x40; op += 8) {
        emu_register(MAP_1B, op + 0, -1, op_alu_rm_r);
        emu_register(MAP_1B, op + 1, -1, op_alu_rm_r);
        emu_register(MAP_1B, op + 2, -1, op_alu_r_rm);
        emu_register(MAP_1B, op + 3, -1, op_alu_r_rm);
        emu_register(MAP_1B, op + 4, -1, op_alu_acc_imm);
        emu_register(MAP_1B, op + 5, -1, op_alu_acc_imm);
    }
    for (int op = 0x40; op < 0x50; op++)
        emu_register(MAP_1B, op, -1, op_incdec_r);
    for (int op = 0x50; op < 0x58; op++) {
        emu_register(MAP_1B, op, -1, op_push_r);
        emu_register(MAP_1B, op + 8, -1, op_pop_r);
    }
    emu_register(MAP_1B, 0x60, -1, op_pusha);
    emu_register(MAP_1B, 0x61, -1, op_popa);
    emu_register(MAP_1B, 0x63, -1, op_movsxd);
    emu_register(MAP_1B, 0x68, -1, op_push_imm);
    emu_register(MAP_1B, 0x6a, -1, op_push_imm);
    emu_register(MAP_1B, 0x69, -1, op_imul_r_rm_imm);
    emu_register(MAP_1B, 0x6b, -1, op_imul_r_rm_imm);
    for (int op = 0x70; op < 0x80; op++) {
        emu_register(MAP_1B, op, -1, op_jcc8);
        emu_register(MAP_0F, op + 0x10, -1, op_jcc8);
    }
    emu_register(MAP_1B, 0x80, -1, op_grp1);
    emu_register(MAP_1B, 0x81, -1, op_grp1);
    emu_register(MAP_1B, 0x83, -1, op_grp1);
    emu_register(MAP_1B, 0x84, -1, op_test_rm_r);
    emu_register(MAP_1B, 0x85, -1, op_test_rm_r);
    emu_register(MAP_1B, 0x86, -1, op_xchg_rm_r);
    emu_register(MAP_1B, 0x87, -1, op_xchg_rm_r);
    emu_register(MAP_1B, 0x88, -1, op_mov_rm_r);
    emu_register(MAP_1B, 0x89, -1, op_mov_rm_r);
    emu_register(MAP_1B, 0x8a, -1, op_mov_r_rm);
    emu_register(MAP_1B, 0x8b, -1, op_mov_r_rm);
    emu_register(MAP_1B, 0x8d, -1, op_lea);
    emu_register(MAP_1B, 0x8f, -1, op_pop_rm);
    for (int op = 0x90; op < 0x98; op++)
        emu_register(MAP_1B, op, -1, op_xchg_acc);
    emu_register(MAP_1B, 0x98, -1, op_cbw);
    emu_register(MAP_1B, 0x99, -1, op_cwd);
    emu_register(MAP_1B, 0x9a, -1, op_far_imm);
    emu_register(MAP_1B, 0x9c, -1, op_pushf);
    emu_register(MAP_1B, 0x9d, -1, op_popf);
    emu_register(MAP_1B, 0x9e, -1, op_sahf);
    emu_register(MAP_1B, 0x9f, -1, op_lahf);
    for (int op = 0xa0; op < 0xa4; op++)
        emu_register(MAP_1B, op, -1, op_mov_moffs);
    emu_register(MAP_1B, 0xa8, -1, op_test_acc_imm);
    emu_register(MAP_1B, 0xa9, -1, op_test_acc_imm);
    for (int op = 0xb0; op < 0xc0; op++)
        emu_register(MAP_1B, op, -1, op_mov_r_imm);
    emu_register(MAP_1B, 0xc0, -1, op_shift);
    emu_register(MAP_1B, 0xc1, -1, op_shift);
    for (int op = 0xd0; op < 0xd4; op++)
        emu_register(MAP_1B, op, -1, op_shift);
    emu_register(MAP_1B, 0xc2, -1, op_ret);
    emu_register(MAP_1B, 0xc3, -1, op_ret);
    emu_register(MAP_1B, 0xc6, -1, op_mov_rm_imm);
    emu_register(MAP_1B, 0xc7, -1, op_mov_rm_imm);
    emu_register(MAP_1B, 0xc8, -1, op_enter);
    emu_register(MAP_1B, 0xc9, -1, op_leave);
    emu_register(MAP_1B, 0xca, -1, op_retf);
    emu_register(MAP_1B, 0xcb, -1, op_retf);
    emu_register(MAP_1B, 0xd7, -1, op_xlat);
    for (int op = 0xe0; op < 0xe4; op++)
        emu_register(MAP_1B, op, -1, op_loop);
    emu_register(MAP_1B, 0xe8, -1, op_call_rel);
    emu_register(MAP_1B, 0xe9, -1, op_jmp_rel);
    emu_register(MAP_1B, 0xea, -1, op_far_imm);
    emu_register(MAP_1B, 0xeb, -1, op_jmp_rel);
    emu_register(MAP_1B, 0xf5, -1, op_flagop);
    emu_register(MAP_1B, 0xf6, -1, op_grp3);
    emu_register(MAP_1B, 0xf7, -1, op_grp3);
    emu_register(MAP_1B, 0xf8, -1, op_flagop);
    emu_register(MAP_1B, 0xf9, -1, op_flagop);
    emu_register(MAP_1B, 0xfc, -1, op_flagop);
    emu_register(MAP_1B, 0xfd, -1, op_flagop);
    emu_register(MAP_1B, 0xfe, -1, op_grp4);
    emu_register(MAP_1B, 0xff, -1, op_grp5);

    emu_register(MAP_0F, 0x0d, -1, op_hint_nop);
    for (int op = 0x18; op < 0x20; op++)
        emu_register(MAP_0F, op, -1, op_hint_nop);
    for (int op = 0x40; op < 0x50; op++)
        emu_register(MAP_0F, op, -1, op_cmov);
    for (int op = 0x90; op < 0xa0; op++)
        emu_register(MAP_0F, op, -1, op_setcc);
    emu_register(MAP_0F, 0xa3, -1, op_bt_r);
    emu_register(MAP_0F, 0xab, -1, op_bt_r);
    emu_register(MAP_0F, 0xb3, -1, op_bt_r);
    emu_register(MAP_0F, 0xbb, -1, op_bt_r);
    emu_register(MAP_0F, 0xba, -1, op_grp8);
    emu_register(MAP_0F, 0xa4, -1, op_shld_shrd);
    emu_register(MAP_0F, 0xa5, -1, op_shld_shrd);
    emu_register(MAP_0F, 0xac, -1, op_shld_shrd);
    emu_register(MAP_0F, 0xad, -1, op_shld_shrd);
    emu_register(MAP_0F, 0xaf, -1, op_imul_r_rm);
    emu_register(MAP_0F, 0xb0, -1, op_cmpxchg);
    emu_register(MAP_0F, 0xb1, -1, op_cmpxchg);
    emu_register(MAP_0F, 0xb6, -1, op_movzx);
    emu_register(MAP_0F, 0xb7, -1, op_movzx);
    emu_register(MAP_0F, 0xbe, -1, op_movsx);
    emu_register(MAP_0F, 0xbf, -1, op_movsx);
    emu_register(MAP_0F, 0xbc, -1, op_bsf_bsr);
    emu_register(MAP_0F, 0xbd, -1, op_bsf_bsr);
    emu_register(MAP_0F, 0xc0, -1, op_xadd);
    emu_register(MAP_0F, 0xc1, -1, op_xadd);
    emu_register(MAP_0F, 0xc7, -1, op_grp9);
    for (int op = 0xc8; op < 0xd0; op++)
        emu_register(MAP_0F, op, -1, op_bswap);
}
