/* ops_x87.c — x87 floating point: decoding of the D8..DF escapes, exception
 * reporting (#NM, #MF), the control instructions (FLDCW, FNSTCW, FNSTSW, FNCLEX,
 * FNINIT, FNSTENV/FLDENV, FNSAVE/FRSTOR), FWAIT, and the FIP/FDP/FOP bookkeeping.
 * Every numeric instruction is replayed on the host FPU (ops_x87_host.c), by the
 * fast path when it applies (ops_x87_fast.c). */
#include "cpu/emu/x87_internal.h"

/* ---- state helpers ---- */

uint16_t x87_tag_of(const uint8_t *r)
{
    uint64_t m;
    uint16_t se;
    memcpy(&m, r, 8);
    memcpy(&se, r + 8, 2);
    int e = se & 0x7fff;
    if (e == 0x7fff) return TAG_SPECIAL;           /* infinities, NaNs, pseudo-NaNs */
    if (e == 0) return m ? TAG_SPECIAL : TAG_ZERO; /* denormals and pseudo-denormals */
    return (m >> 63) ? TAG_VALID : TAG_SPECIAL;    /* unnormals lack the integer bit */
}

/* The hardware keeps only "empty or not" per register and derives the 2-bit tag
 * from the contents whenever it reports the tag word. */
uint16_t x87_retag(const struct x86_fpu *f, uint16_t ftw)
{
    uint16_t out = 0;
    for (int i = 0; i < 8; i++) {
        unsigned t = (ftw >> (2 * i)) & 3;
        if (t != TAG_EMPTY) t = x87_tag_of(f->st[i]);
        out |= (uint16_t)(t << (2 * i));
    }
    return out;
}

static void x87_init_state(struct x86_fpu *f)
{
    f->fcw = 0x37f;
    f->fsw = 0;
    f->ftw = 0xffff;
    f->fop = 0;
    f->fip = f->fdp = 0;
    f->fcs = f->fds = 0;
}

void emu_fpu_reset(struct emu_cpu *c)
{
    x87_init_state(&c->s.fpu);
    c->s.fpu.mxcsr = 0x1f80;
}

/* Reserved FCW bits read back as the hardware forces them: bit 6 set, 13..15 clear. */
static uint16_t fcw_sanitize(uint16_t v)
{
    return (v & 0x1f3f) | 0x40;
}

/* ---- exception checks ---- */

void emu_x87_check(struct emu_cpu *c)
{
    if (c->s.cr0 & (CR0_EM | CR0_TS)) emu_raise(c, EXC_NM, 0, false);
}

static bool x87_pending(const struct x86_fpu *f)
{
    return f->fsw & ~f->fcw & FSW_EXC;
}

/* Entry of a "waiting" instruction: an unmasked exception left by an earlier
 * instruction is reported now, before this one does anything. With CR0.NE=0 the
 * PC would signal it through IRQ13 (FERR#); that path is not modelled, so #MF is
 * raised in both cases. */
static void x87_wait(struct emu_cpu *c)
{
    emu_x87_check(c);
    if (x87_pending(&c->s.fpu)) emu_raise(c, EXC_MF, 0, false);
}

/* Non-control instructions record where they are, as the hardware does for the
 * exception handler: FIP/FCS and FOP always, FDP/FDS when there is a memory
 * operand (FDS is the selector of the segment the operand was addressed through). */
static void x87_note(struct emu_cpu *c, const struct insn *in)
{
    struct x86_fpu *f = &c->s.fpu;
    f->fop = (uint16_t)(((in->opc & 7) << 8) | in->modrm);
    f->fip = c->s.rip;
    f->fcs = c->s.seg[SEG_CS].sel;
    if (in->mod != 3) {
        f->fdp = emu_ea_off(c, in);
        f->fds = c->s.seg[in->seg].sel;
    }
}

/* ---- environment images (FNSTENV/FLDENV/FNSAVE/FRSTOR) ---- */

struct x87_env {
    uint16_t fcw, fsw, ftw, fop, fcs, fds;
    uint64_t fip, fdp;
};

static inline void put16(uint8_t *p, uint32_t v)
{
    store_host(p, 2, v);
}
static inline void put32(uint8_t *p, uint32_t v)
{
    store_host(p, 4, v);
}
static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)load_host(p, 2);
}
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)load_host(p, 4);
}

/* Real-address and virtual-8086 mode use the formats with linear pointers. */
static bool env_real(struct emu_cpu *c)
{
    return c->mode == MODE_REAL || (c->s.rflags & FL_VM);
}

static int env_size(const struct insn *in)
{
    return in->osz == 2 ? 14 : 28;
}

/* Real-mode formats: 16 low bits in one field, the high bits at bit 12 of the next. */
static void env_pack_real(const struct x86_fpu *f, uint16_t tw, uint8_t *b, bool o16)
{
    uint32_t lip = (uint32_t)((f->fcs << 4) + f->fip), ldp = (uint32_t)((f->fds << 4) + f->fdp);
    if (o16) {
        put16(b + 0, f->fcw);
        put16(b + 2, f->fsw);
        put16(b + 4, tw);
        put16(b + 6, lip);
        put16(b + 8, ((lip >> 16) & 0xf) << 12 | (f->fop & 0x7ff));
        put16(b + 10, ldp);
        put16(b + 12, ((ldp >> 16) & 0xf) << 12);
        return;
    }
    put32(b + 0, 0xffff0000u | f->fcw);
    put32(b + 4, 0xffff0000u | f->fsw);
    put32(b + 8, 0xffff0000u | tw);
    put32(b + 12, 0xffff0000u | (lip & 0xffff));
    put32(b + 16, (lip >> 16) << 12 | (f->fop & 0x7ffu));
    put32(b + 20, 0xffff0000u | (ldp & 0xffff));
    put32(b + 24, (ldp >> 16) << 12);
}

/* Unused halves of the 32-bit protected-mode format read as ones on the host. */
static void env_pack(struct emu_cpu *c, uint8_t *b, bool o16)
{
    const struct x86_fpu *f = &c->s.fpu;
    uint16_t tw = x87_retag(f, f->ftw);
    if (env_real(c)) {
        env_pack_real(f, tw, b, o16);
    } else if (o16) {
        put16(b + 0, f->fcw);
        put16(b + 2, f->fsw);
        put16(b + 4, tw);
        put16(b + 6, (uint32_t)f->fip);
        put16(b + 8, f->fcs);
        put16(b + 10, (uint32_t)f->fdp);
        put16(b + 12, f->fds);
    } else {
        put32(b + 0, 0xffff0000u | f->fcw);
        put32(b + 4, 0xffff0000u | f->fsw);
        put32(b + 8, 0xffff0000u | tw);
        put32(b + 12, (uint32_t)f->fip);
        put32(b + 16, f->fcs | (uint32_t)(f->fop & 0x7ff) << 16);
        put32(b + 20, (uint32_t)f->fdp);
        put32(b + 24, 0xffff0000u | f->fds);
    }
}

static void env_unpack_real(const uint8_t *b, bool o16, struct x87_env *e)
{
    if (o16) {
        e->fcw = get16(b + 0);
        e->fsw = get16(b + 2);
        e->ftw = get16(b + 4);
        e->fip = get16(b + 6) | (uint32_t)(get16(b + 8) >> 12) << 16;
        e->fop = get16(b + 8) & 0x7ff;
        e->fdp = get16(b + 10) | (uint32_t)(get16(b + 12) >> 12) << 16;
    } else {
        e->fcw = get16(b + 0);
        e->fsw = get16(b + 4);
        e->ftw = get16(b + 8);
        e->fip = get16(b + 12) | ((get32(b + 16) >> 12) & 0xffff) << 16;
        e->fop = get32(b + 16) & 0x7ff;
        e->fdp = get16(b + 20) | ((get32(b + 24) >> 12) & 0xffff) << 16;
    }
    e->fcs = e->fds = 0; /* the pointers are linear addresses */
}

/* The 16-bit protected-mode format has no opcode field: FOP loads as 0. */
static void env_unpack(struct emu_cpu *c, const uint8_t *b, bool o16, struct x87_env *e)
{
    if (env_real(c)) {
        env_unpack_real(b, o16, e);
    } else if (o16) {
        e->fcw = get16(b + 0);
        e->fsw = get16(b + 2);
        e->ftw = get16(b + 4);
        e->fip = get16(b + 6);
        e->fcs = get16(b + 8);
        e->fdp = get16(b + 10);
        e->fds = get16(b + 12);
        e->fop = 0;
    } else {
        e->fcw = get16(b + 0);
        e->fsw = get16(b + 4);
        e->ftw = get16(b + 8);
        e->fip = get32(b + 12);
        e->fcs = get16(b + 16);
        e->fop = get16(b + 18) & 0x7ff;
        e->fdp = get32(b + 20);
        e->fds = get16(b + 24);
    }
}

/* Loads an environment; the registers must already hold their new contents because
 * the tags are re-derived from them (only "empty" is taken from the image). */
static void env_apply(struct x86_fpu *f, const struct x87_env *e)
{
    f->fcw = fcw_sanitize(e->fcw);
    f->fsw = x87_fsw_sync_es(e->fsw, f->fcw);
    f->ftw = x87_retag(f, e->ftw);
    f->fop = e->fop;
    f->fip = e->fip;
    f->fcs = e->fcs;
    f->fdp = e->fdp;
    f->fds = e->fds;
}

static void op_fnstenv(struct emu_cpu *c, const struct insn *in)
{
    uint8_t b[28];
    env_pack(c, b, in->osz == 2);
    emu_write_bytes(c, emu_ea(c, in), b, env_size(in));
    /* FNSTENV masks every exception afterwards (handlers use it to get out of the
     * way), which also withdraws a pending one */
    c->s.fpu.fcw |= FSW_EXC;
    c->s.fpu.fsw = x87_fsw_sync_es(c->s.fpu.fsw, c->s.fpu.fcw);
}

static void op_fldenv(struct emu_cpu *c, const struct insn *in)
{
    uint8_t b[28];
    struct x87_env e;
    emu_read_bytes(c, emu_ea(c, in), b, env_size(in), ACC_R);
    env_unpack(c, b, in->osz == 2, &e);
    env_apply(&c->s.fpu, &e);
}

static void op_fnsave(struct emu_cpu *c, const struct insn *in)
{
    struct x86_fpu *f = &c->s.fpu;
    uint8_t b[X87_IMG_SIZE];
    int n = env_size(in), top = x87_top(f);
    env_pack(c, b, in->osz == 2);
    for (int i = 0; i < 8; i++)
        memcpy(b + n + 10 * i, f->st[(top + i) & 7], 10);
    emu_write_bytes(c, emu_ea(c, in), b, n + 80);
    x87_init_state(f);
}

static void op_frstor(struct emu_cpu *c, const struct insn *in)
{
    struct x86_fpu *f = &c->s.fpu;
    uint8_t b[X87_IMG_SIZE];
    struct x87_env e;
    int n = env_size(in);
    emu_read_bytes(c, emu_ea(c, in), b, n + 80, ACC_R);
    env_unpack(c, b, in->osz == 2, &e);
    int top = (e.fsw >> 11) & 7;
    for (int i = 0; i < 8; i++)
        memcpy(f->st[(top + i) & 7], b + n + 10 * i, 10);
    env_apply(f, &e);
}

/* ---- other control instructions ---- */

static void op_fldcw(struct emu_cpu *c, const struct insn *in)
{
    struct x86_fpu *f = &c->s.fpu;
    uint16_t v = (uint16_t)vm_read(c, emu_ea(c, in), 2);
    f->fcw = fcw_sanitize(v);
    /* unmasking a flag that is already set makes it pending */
    f->fsw = x87_fsw_sync_es(f->fsw, f->fcw);
}

static void op_fnstcw(struct emu_cpu *c, const struct insn *in)
{
    vm_write(c, emu_ea(c, in), 2, c->s.fpu.fcw);
}

static void op_fnstsw_m(struct emu_cpu *c, const struct insn *in)
{
    vm_write(c, emu_ea(c, in), 2, c->s.fpu.fsw);
}

/* DB E0..E4: FENI, FDISI, FNCLEX, FNINIT, FSETPM. FENI/FDISI/FSETPM were 8087/287
 * controls and are no-wait no-ops since the 387. */
static void op_db_control(struct emu_cpu *c, int modrm)
{
    if (modrm == 0xe2)
        c->s.fpu.fsw &= ~(FSW_EXC | FSW_SF | FSW_ES | FSW_B); /* C0..C3 stay */
    else if (modrm == 0xe3)
        x87_init_state(&c->s.fpu);
}

/* ---- numeric instructions ---- */

static void write_operand(struct emu_cpu *c, uint64_t ea, int size, const uint8_t *buf)
{
    if (size <= 8)
        vm_write(c, ea, size, load_host(buf, size));
    else
        emu_write_bytes(c, ea, buf, size);
}

/* A store completes unless it raised an unmasked invalid, denormal, zero-divide,
 * overflow or underflow exception; an unmasked precision exception still stores. */
static bool store_done(const struct x86_fpu *f, const struct x87_result *r)
{
    uint16_t raised = r->fsw & ~f->fsw & FSW_EXC;
    return !(raised & ~f->fcw & (FSW_EXC & ~FSW_PE));
}

/* The memory operand: size > 0 when the instruction stores it to guest memory. */
struct x87_store {
    int size;
    uint64_t ea;
    uint8_t *buf;
};

/* Runs one numeric instruction, by the fast path when it applies. Guest memory is
 * written before the FPU state is committed, so that a faulting store leaves the
 * FPU untouched. Returns the host RFLAGS after the instruction. */
static uint64_t x87_run(struct emu_cpu *c, const void *stub, struct x87_fastop fop, bool cf,
                        const struct x87_store *st)
{
    struct x86_fpu *f = &c->s.fpu;
    uint8_t *buf = st ? st->buf : NULL;
    struct x87_fast_io io;
    if (x87_fast_run(f, &io, fop, stub, buf, cf)) {
        if (st && st->size) write_operand(c, st->ea, st->size, buf);
        x87_fast_commit(f, &io, fop);
        return io.rflags;
    }
    struct x87_result r;
    /* the destination faults first, even when an unmasked exception then
     * suppresses the store */
    if (st && st->size) emu_probe_write(c, st->ea, st->size);
    uint64_t fl = x87_host_run(f, &r, stub, buf, cf);
    if (st && st->size && store_done(f, &r)) write_operand(c, st->ea, st->size, buf);
    x87_commit(f, &r);
    return fl;
}

/* Register forms the host decodes (everything else is #UD there too). */
static bool reg_form_valid(int esc, int modrm)
{
    int row = (modrm >> 3) & 7, i = modrm & 7;
    switch (esc) {
    case 1:
        if (row == 2) return i == 0;                    /* FNOP */
        if (row == 4) return i != 2 && i != 3 && i < 6; /* FCHS FABS FTST FXAM */
        if (row == 5) return i != 7;                    /* constants */
        return true;
    case 2: return row < 4 || modrm == 0xe9; /* FCMOVcc, FUCOMPP */
    case 3: return row < 4 || row == 5 || row == 6 || (row == 4 && i <= 4);
    case 5: return row < 6;
    case 6: return row != 3 || i == 1; /* FCOMPP */
    case 7: return row < 4 || row == 5 || row == 6 || modrm == 0xe0;
    default: return true; /* D8, DC */
    }
}

static bool is_fcomi(int esc, int modrm)
{
    return (esc == 3 || esc == 7) && modrm >= 0xe8 && modrm <= 0xf7;
}

/* FCMOVcc (DA/DB C0..DF) runs on the host as FCMOVB ST(i) with CF = condition. */
static const void *fcmov_stub(struct emu_cpu *c, int esc, int modrm, bool *cf)
{
    static const uint8_t cc[4] = {2, 4, 6, 10}; /* B E BE U, as Jcc condition codes */
    *cf = emu_cond(c, cc[(modrm >> 3) & 3] | (esc == 3));
    return x87_reg_stub(2, 0xc0 | (modrm & 7));
}

static void x87_reg_form(struct emu_cpu *c, const struct insn *in)
{
    int esc = in->opc & 7, m = in->modrm;
    if (!reg_form_valid(esc, m)) emu_ud(c);
    if (esc == 3 && m <= 0xe4 && m >= 0xe0) {
        emu_x87_check(c);
        op_db_control(c, m);
        return;
    }
    if (esc == 7 && m == 0xe0) { /* FNSTSW AX */
        emu_x87_check(c);
        reg_write(c, RAX, 2, false, c->s.fpu.fsw);
        return;
    }
    x87_wait(c);
    bool cf = false;
    const void *stub =
        (esc == 2 || esc == 3) && m < 0xe0 ? fcmov_stub(c, esc, m, &cf) : x87_reg_stub(esc, m);
    uint64_t fl = x87_run(c, stub, x87_fast_reg(esc, m), cf, NULL);
    if (is_fcomi(esc, m)) {
        emu_flags_sync(c);
        c->s.rflags = (c->s.rflags & ~(uint64_t)FL_ARITH) | (fl & FL_ARITH);
    }
    x87_note(c, in);
}

/* Memory forms by escape and /digit: operand size, and whether it is a load, a
 * store, a control instruction or undefined. FISTTP (/1 of DB, DD, DF) is SSE3,
 * which is not advertised, so it is #UD. */
enum { M_UD, M_LD, M_ST, M_CTL };
struct memform {
    uint8_t kind, size;
};
#define LD(n)                                                                                      \
    {                                                                                              \
        M_LD, n                                                                                    \
    }
#define ST(n)                                                                                      \
    {                                                                                              \
        M_ST, n                                                                                    \
    }
#define CTL                                                                                        \
    {                                                                                              \
        M_CTL, 0                                                                                   \
    }
#define UD                                                                                         \
    {                                                                                              \
        M_UD, 0                                                                                    \
    }
static const struct memform memforms[8][8] = {
    {LD(4), LD(4), LD(4), LD(4), LD(4), LD(4), LD(4), LD(4)}, /* D8 m32real */
    {LD(4), UD, ST(4), ST(4), CTL, CTL, CTL, CTL},            /* D9 */
    {LD(4), LD(4), LD(4), LD(4), LD(4), LD(4), LD(4), LD(4)}, /* DA m32int */
    {LD(4), UD, ST(4), ST(4), UD, LD(10), UD, ST(10)},        /* DB */
    {LD(8), LD(8), LD(8), LD(8), LD(8), LD(8), LD(8), LD(8)}, /* DC m64real */
    {LD(8), UD, ST(8), ST(8), CTL, UD, CTL, CTL},             /* DD */
    {LD(2), LD(2), LD(2), LD(2), LD(2), LD(2), LD(2), LD(2)}, /* DE m16int */
    {LD(2), UD, ST(2), ST(2), LD(10), LD(8), ST(10), ST(8)},  /* DF */
};
#undef LD
#undef ST
#undef CTL
#undef UD

/* FLDENV, FRSTOR and FLDCW (/4, /5) report a pending exception first, like the
 * numeric instructions; the stores (FNSTENV, FNSAVE, FNSTCW, FNSTSW) do not. None
 * of them records FIP/FDP/FOP. */
static void x87_mem_control(struct emu_cpu *c, const struct insn *in, int esc, int digit)
{
    if (digit == 4 || digit == 5)
        x87_wait(c);
    else
        emu_x87_check(c);
    switch (esc * 8 + digit) {
    case 1 * 8 + 5: op_fldcw(c, in); break;
    case 1 * 8 + 4: op_fldenv(c, in); break;
    case 1 * 8 + 6: op_fnstenv(c, in); break;
    case 1 * 8 + 7: op_fnstcw(c, in); break;
    case 5 * 8 + 4: op_frstor(c, in); break;
    case 5 * 8 + 6: op_fnsave(c, in); break;
    default: op_fnstsw_m(c, in); break; /* DD /7 */
    }
}

static void read_operand(struct emu_cpu *c, uint64_t ea, int size, uint8_t *buf)
{
    if (size <= 8)
        store_host(buf, size, vm_read(c, ea, size));
    else
        emu_read_bytes(c, ea, buf, size, ACC_R);
}

static void x87_mem_form(struct emu_cpu *c, const struct insn *in)
{
    int esc = in->opc & 7, digit = in->reg & 7;
    struct memform mf = memforms[esc][digit];
    if (mf.kind == M_UD) emu_ud(c);
    if (mf.kind == M_CTL) {
        x87_mem_control(c, in, esc, digit);
        return;
    }
    x87_wait(c);
    uint64_t ea = emu_ea(c, in);
    uint8_t buf[16] __attribute__((aligned(16))) = {0};
    if (mf.kind == M_LD) read_operand(c, ea, mf.size, buf);
    struct x87_store st = {mf.kind == M_ST ? mf.size : 0, ea, buf};
    x87_run(c, x87_mem_stub(esc, digit), x87_fast_mem(esc, digit), false, &st);
    x87_note(c, in);
}

static void op_esc(struct emu_cpu *c, const struct insn *in) /* D8..DF */
{
    if (in->pfx & PFX_LOCK) emu_ud(c);
    if (in->mod == 3)
        x87_reg_form(c, in);
    else
        x87_mem_form(c, in);
}

/* FWAIT only cares about CR0.TS when CR0.MP says the FPU state may be foreign. */
static void op_fwait(struct emu_cpu *c, const struct insn *in) /* 9B */
{
    if ((c->s.cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS)) emu_raise(c, EXC_NM, 0, false);
    if (x87_pending(&c->s.fpu)) emu_raise(c, EXC_MF, 0, false);
}

void emu_ops_x87_init(void)
{
    for (int op = 0xd8; op <= 0xdf; op++)
        emu_register(MAP_1B, (uint8_t)op, -1, op_esc);
    emu_register(MAP_1B, 0x9b, -1, op_fwait);
}
