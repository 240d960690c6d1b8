/* ops_x87_fast.c — the x87 fast path: which instructions may skip the full
 * FRSTOR/FNSAVE state transfer, and how their outcome is merged back.
 *
 * An instruction qualifies when it touches a known set of stack registers and
 * changes the stack depth by a known amount. Its condition bits must be either
 * written (a value independent of the previous FSW) or kept, bit by bit; the
 * masks below were measured on the host (C1 is the round-up indicator of most
 * operations; compares write all four; FCOMI and FCMOVcc keep all four; FSIN and
 * FCOS also write C2). FPREM/FPREM1 (data-dependent C0/C3), FPTAN/FSINCOS (no push
 * when out of range), FINCSTP/FDECSTP/FFREE(P) and xxxP ST(0) stay on the full path. */
#include "cpu/emu/x87_internal.h"

#define C1   FSW_C1
#define CALL (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

static const struct x87_fastop none = {-1, 0, 0};

static struct x87_fastop op(int nin, int delta, uint16_t cmask)
{
    return (struct x87_fastop){(int8_t)nin, (int8_t)delta, cmask};
}

static struct x87_fastop fast_d9(int row, int i)
{
    static const struct x87_fastop f0_ff[16] = {
        {1, 0, C1},          {2, -1, C1},
        {-1, 0, 0},          {2, -1, C1}, /* F2XM1 FYL2X FPTAN FPATAN */
        {1, 1, C1},          {-1, 0, 0},
        {-1, 0, 0},          {-1, 0, 0}, /* FXTRACT FPREM1 FDECSTP FINCSTP */
        {-1, 0, 0},          {2, -1, C1},
        {1, 0, C1},          {-1, 0, 0},          /* FPREM FYL2XP1 FSQRT FSINCOS */
        {1, 0, C1},          {2, 0, C1},          /* FRNDINT FSCALE */
        {1, 0, C1 | FSW_C2}, {1, 0, C1 | FSW_C2}, /* FSIN FCOS */
    };
    switch (row) {
    case 0: return op(i + 1, 1, C1);  /* FLD ST(i) */
    case 1: return op(i + 1, 0, C1);  /* FXCH */
    case 2: return op(0, 0, 0);       /* FNOP */
    case 3: return op(i + 1, -1, C1); /* FSTP1 */
    case 4:
        if (i < 2) return op(1, 0, C1); /* FCHS FABS */
        return op(1, 0, CALL);          /* FTST FXAM */
    case 5: return op(0, 1, C1);        /* constants */
    default: return f0_ff[(row - 6) * 8 + i];
    }
}

struct x87_fastop x87_fast_reg(int esc, int modrm)
{
    int row = (modrm >> 3) & 7, i = modrm & 7, n = i + 1;
    switch (esc) {
    case 0:
    case 4: /* arithmetic; FCOM, FCOMP and their DC aliases */
        if (row == 2) return op(n, 0, CALL);
        return row == 3 ? op(n, -1, CALL) : op(n, 0, C1);
    case 1: return fast_d9(row, i);
    case 2:
    case 3:
        if (row < 4) return op(n, 0, 0);                             /* FCMOVcc */
        if (esc == 2) return modrm == 0xe9 ? op(2, -2, CALL) : none; /* FUCOMPP */
        return row == 5 || row == 6 ? op(n, 0, 0) : none;            /* FUCOMI FCOMI */
    case 5:
        switch (row) {
        case 1:
        case 2: return op(n, 0, C1);    /* FXCH4, FST */
        case 3: return op(n, -1, C1);   /* FSTP */
        case 4: return op(n, 0, CALL);  /* FUCOM */
        case 5: return op(n, -1, CALL); /* FUCOMP */
        default: return none;           /* FFREE */
        }
    case 6:
        if (row == 2) return op(n, -1, CALL);                        /* FCOMP5 */
        if (row == 3) return modrm == 0xd9 ? op(2, -2, CALL) : none; /* FCOMPP */
        return i ? op(n, -1, C1) : none; /* with ST(0) the result is in the popped register */
    default:
        switch (row) {
        case 1: return op(n, 0, C1); /* FXCH7 */
        case 2:
        case 3: return op(n, -1, C1); /* FSTP8, FSTP9 */
        case 5:
        case 6: return op(n, -1, 0); /* FUCOMIP FCOMIP */
        default: return none;        /* FFREEP, FNSTSW AX */
        }
    }
}

/* Only called for the numeric memory forms (loads, stores, arithmetic). */
struct x87_fastop x87_fast_mem(int esc, int digit)
{
    if (!(esc & 1)) { /* D8 DA DC DE: arithmetic and compares with a memory operand */
        if (digit == 2) return op(1, 0, CALL);
        return digit == 3 ? op(1, -1, CALL) : op(1, 0, C1);
    }
    switch (digit) {
    case 0: return op(0, 1, C1);  /* FLD, FILD */
    case 2: return op(1, 0, C1);  /* FST, FIST */
    case 3: return op(1, -1, C1); /* FSTP, FISTP */
    case 4:
    case 5: return op(0, 1, C1); /* FBLD; FLD m80, FILD m64 */
    case 6:
    case 7: return op(1, -1, C1); /* FBSTP; FSTP m80, FISTP m64 */
    default: return none;
    }
}

static bool reg_empty(const struct x86_fpu *f, int phys)
{
    return ((f->ftw >> (2 * phys)) & 3) == TAG_EMPTY;
}

/* No stack fault can happen: every register read is valid and a push has room.
 * Underflow must be masked: unmasked, it is signalled for every tiny result, while
 * the masked run only flags tiny results that are also inexact, so the masked run
 * could not tell that the guest needs the unmasked response. */
static bool fast_applies(const struct x86_fpu *f, struct x87_fastop o)
{
    if (o.nin < 0 || !(f->fcw & FSW_UE)) return false;
    int top = x87_top(f);
    for (int k = 0; k < o.nin; k++)
        if (reg_empty(f, (top + k) & 7)) return false;
    return o.delta <= 0 || (o.nin < 8 && reg_empty(f, (top - 1) & 7));
}

static void set_tag(struct x86_fpu *f, int phys, unsigned tag)
{
    f->ftw = (uint16_t)((f->ftw & ~(3u << (2 * phys))) | tag << (2 * phys));
}

bool x87_fast_run(const struct x86_fpu *f, struct x87_fast_io *io, struct x87_fastop o,
                  const void *stub, void *mem, bool cf)
{
    if (!fast_applies(f, o)) return false;
    int top = x87_top(f);
    io->fcw = f->fcw | FSW_EXC; /* the mask bits sit where the flags do */
    io->nin = (uint32_t)o.nin;
    io->nout = (uint32_t)(o.nin + o.delta);
    io->stub = stub;
    io->mem = mem;
    io->cf = cf;
    for (int k = 0; k < o.nin; k++)
        memcpy(io->st[k], f->st[(top + k) & 7], 10);
    x87_fast_exec(io);
    uint16_t raised = io->fsw & (FSW_EXC | FSW_SF);
    /* the guest wants the unmasked response: full path */
    return !(raised & ~f->fcw & FSW_EXC) && !(raised & FSW_SF);
}

void x87_fast_commit(struct x86_fpu *f, const struct x87_fast_io *io, struct x87_fastop o)
{
    int top = x87_top(f), nt = (top - o.delta) & 7;
    uint16_t sw = (f->fsw & ~(o.cmask | FSW_TOP)) | (io->fsw & (o.cmask | FSW_EXC));
    f->fsw = x87_fsw_sync_es((uint16_t)(sw | nt << 11), f->fcw);
    for (int j = 0; j < -o.delta; j++) /* popped: contents stay, tag goes empty */
        set_tag(f, (top + j) & 7, TAG_EMPTY);
    for (int k = 0; k < (int)io->nout; k++) {
        int phys = (nt + k) & 7;
        memcpy(f->st[phys], io->st[k], 10);
        set_tag(f, phys, x87_tag_of(io->st[k]));
    }
}
