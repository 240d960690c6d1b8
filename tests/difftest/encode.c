/* encode.c — the generic encoder: picks registers, a memory operand with a
 * random addressing mode (base, base+index*scale, no-base SIB, RIP-relative,
 * absolute disp32, optional 67 address-size prefix) whose effective address lands
 * in the data window, and an immediate; then emits prefixes, REX, opcode, ModRM,
 * SIB, displacement and immediate. */
#include "difftest.h"

#include <string.h>

void dt_emit(struct dt_case *c, const void *bytes, int n)
{
    if (c->len + n <= (int)sizeof(c->code)) {
        memcpy(c->code + c->len, bytes, (size_t)n);
        c->len += n;
    }
}

void dt_emit8(struct dt_case *c, uint8_t b)
{
    dt_emit(c, &b, 1);
}

void dt_emit_imm(struct dt_case *c, uint64_t v, int size)
{
    dt_emit(c, &v, size);
}

static bool is_gpr(int k)
{
    return k >= K_G8 && k <= K_G64;
}

static bool has_g8(const struct dt_form *f)
{
    return f->reg == K_G8 || f->rm == K_G8 || f->opreg == K_G8;
}

/* Picks a register of `kind`. GPRs never include R15 (data base) or RSP/SPL
 * (the stack must stay in the data region); `avoid` excludes more. Without REX
 * in an 8-bit form only 0..7 exist (4..7 = AH..BH). */
static int pick_reg(struct dt_case *c, int kind, uint16_t avoid)
{
    switch (kind) {
    case K_XMM: return (int)dt_below(c, 16);
    case K_MM:
    case K_ST: return (int)dt_below(c, 8);
    default: break;
    }
    bool legacy8 = has_g8(c->form) && !c->rex;
    int lim = legacy8 ? 8 : 16;
    uint16_t bad = avoid | (1u << R15);
    if (!(legacy8 && kind == K_G8)) bad |= 1u << RSP;
    for (;;) {
        int r = (int)dt_below(c, (uint64_t)lim);
        if (!(bad >> r & 1)) return r;
    }
}

static int64_t rand_disp(struct dt_case *c)
{
    switch (dt_below(c, 3)) {
    case 0: return 0;
    case 1: return (int8_t)dt_rand(c);
    default: return (int64_t)dt_below(c, 1u << 21) - (1 << 20);
    }
}

static int64_t small_index(struct dt_case *c)
{
    return dt_chance(c, 20) ? 0 : (int64_t)dt_below(c, 0x2000) - 0x1000;
}

/* An address that must fault: unmapped (just past the data region, or low
 * memory), non-canonical, or a page-crossing access whose second page is
 * unmapped (small operands only: a wide store such as FXSAVE may legally
 * write its first part before faulting). */
static uint64_t fault_addr(struct dt_case *c)
{
    unsigned size = c->form->mem;
    switch (dt_below(c, 4)) {
    case 0: return DT_DATA_BASE + DT_DATA_SIZE + dt_below(c, 0x1000 - size);
    case 1: /* low memory (not mapped natively; the guest's system area starts at 1 MiB) */
        return dt_chance(c, 25) ? dt_below(c, 0x1000) : dt_below(c, 0xf0000);
    case 2: return (dt_rand(c) & 0x00007fffffffffffull) | (1ull << (47 + dt_below(c, 16)));
    default:
        if (size > 1 && size <= 16) return DT_DATA_BASE + DT_DATA_SIZE - 1 - dt_below(c, size - 1);
        return DT_DATA_BASE + DT_DATA_SIZE + 0x100;
    }
}

static uint64_t pick_addr(struct dt_case *c)
{
    const struct dt_form *f = c->form;
    if (dt_chance(c, 2)) {
        c->faulting = true; /* #PF, #GP or #SS expected on both sides */
        uint64_t a = fault_addr(c);
        /* misaligned and non-canonical at once: AMD raises the alignment #GP,
         * Intel's priority table puts #SS first; keep the two apart */
        if (f->fl & F_ALIGN) a &= ~15ull;
        return a;
    }
    unsigned size = f->mem, al = 1;
    while (al * 2 <= size && al < 16)
        al *= 2;
    unsigned span = DT_MEM_HI - DT_MEM_LO - (size < 0x400 ? size : 0x400);
    uint64_t a = DT_DATA_BASE + DT_MEM_LO + dt_below(c, span);
    unsigned u = (unsigned)dt_below(c, 100);
    if (f->fl & F_ALIGN) {
        a &= ~(uint64_t)(al - 1);
        if (u >= 90 && al > 1) a |= 1 + dt_below(c, al - 1); /* misaligned: #GP expected */
    } else if (u < 60) {
        a &= ~(uint64_t)(al - 1);
    } else if (u >= 92 && size > 1) {
        a = DT_DATA_BASE + 0x1000 - 1 - dt_below(c, size - 1); /* crosses into page 1 */
    }
    return a;
}

static void pick_mem(struct dt_case *c)
{
    const struct dt_form *f = c->form;
    bool noaddr = f->fl & F_NOADDR;
    uint16_t avoid = f->implicit | c->reserved | (1u << RSP) | (1u << R15);
    if (c->reg >= 0 && is_gpr(f->reg)) avoid |= (uint16_t)(1u << c->reg);
    if (c->opreg >= 0 && is_gpr(f->opreg)) avoid |= (uint16_t)(1u << c->opreg);
    uint64_t a = noaddr ? dt_gpr_value(c) : pick_addr(c);
    c->addr = a;
    c->scale = (int)dt_below(c, 4);
    unsigned mode = (unsigned)dt_below(c, 100);
    if (c->faulting)
        mode = 35 + (unsigned)dt_below(c, 37); /* a register carries the 64-bit address */
    uint64_t *g = c->in.gpr;
    if (mode < 35) { /* [r15 + disp] */
        c->base = R15;
        c->disp = noaddr ? rand_disp(c) : (int64_t)(a - DT_DATA_BASE);
    } else if (mode < 55) { /* [base + disp] */
        c->base = pick_reg(c, K_G64, avoid);
        c->disp = rand_disp(c);
        if (!noaddr) g[c->base] = a - (uint64_t)c->disp;
    } else if (mode < 72) { /* [base + index*scale + disp] */
        c->base = pick_reg(c, K_G64, avoid);
        c->index = pick_reg(c, K_G64, avoid);
        c->disp = rand_disp(c);
        if (noaddr) {
        } else if (c->index == c->base) {
            uint64_t mul = 1 + (1ull << c->scale);
            c->disp += (int64_t)((a - (uint64_t)c->disp) % mul);
            g[c->base] = (a - (uint64_t)c->disp) / mul;
        } else {
            int64_t iv = small_index(c);
            g[c->index] = (uint64_t)iv;
            g[c->base] = a - (uint64_t)c->disp - ((uint64_t)iv << c->scale);
        }
    } else if (mode < 80) { /* [index*scale + disp32] */
        c->index = pick_reg(c, K_G64, avoid);
        int64_t iv = small_index(c);
        if (noaddr) {
            c->disp = (int32_t)dt_rand(c);
        } else {
            g[c->index] = (uint64_t)iv;
            c->disp = (int64_t)(a - ((uint64_t)iv << c->scale));
        }
        c->disp_size = 4;
    } else if (mode < 88) { /* [rip + disp32], patched once the entry is known */
        c->rip_rel = true;
        c->disp = noaddr ? (int32_t)dt_rand(c) : 0;
        c->disp_size = 4;
    } else if (mode < 93) { /* [disp32] through SIB without base and index */
        c->abs_addr = true;
        c->disp = noaddr ? (int32_t)dt_rand(c) : (int64_t)a;
        c->disp_size = 4;
    } else { /* [r15 + index*scale + disp] */
        c->base = R15;
        c->index = pick_reg(c, K_G64, avoid);
        int64_t iv = small_index(c);
        c->disp = rand_disp(c);
        if (!noaddr) {
            g[c->index] = (uint64_t)iv;
            c->disp = (int64_t)(a - DT_DATA_BASE - ((uint64_t)iv << c->scale));
        }
    }
    if (!c->disp_size) {
        bool need = c->disp != 0 || (c->base & 7) == 5; /* RBP/R13 need a displacement */
        if (c->disp == (int8_t)c->disp)
            c->disp_size = need || dt_chance(c, 10) ? (dt_chance(c, 15) ? 4 : 1) : 0;
        else
            c->disp_size = 4;
    }
    /* a CS/DS/ES/SS override is ignored in 64-bit mode (FS/GS would need the
     * host's TLS base, so they are not used) */
    if (dt_chance(c, 5)) {
        static const uint8_t seg[4] = {0x26, 0x2e, 0x36, 0x3e};
        c->segpfx = seg[dt_below(c, 4)];
    }
    /* address-size prefix: the upper halves of base and index are then ignored */
    if (!c->faulting && dt_chance(c, 10)) {
        c->a32 = true;
        if (c->base >= 0 && c->base != R15) g[c->base] = (uint32_t)g[c->base] | (dt_rand(c) << 32);
        if (c->index >= 0) g[c->index] = (uint32_t)g[c->index] | (dt_rand(c) << 32);
    }
}

void dt_pick_operands(struct dt_case *c)
{
    const struct dt_form *f = c->form;
    if (has_g8(f)) c->rex = f->rexw || dt_chance(c, 50);
    if (f->opreg) c->opreg = pick_reg(c, f->opreg, f->implicit);
    if (f->ext < 0 && f->reg) c->reg = pick_reg(c, f->reg, 0);
    if (f->mem) {
        pick_mem(c);
        /* the operand itself gets edge-biased values of its type (the rest of the
         * data region comes from a random pool) */
        uint64_t off = c->addr - DT_DATA_BASE;
        if (!(f->fl & F_NOADDR) && f->mem <= 16 && off + f->mem <= DT_DATA_SIZE) {
            int lane = f->lane       ? f->lane
                       : f->mem == 1 ? L_I8
                       : f->mem == 2 ? L_I16
                       : f->mem == 4 ? L_I32
                                     : L_I64;
            dt_fill_lane(c, c->mem + off, f->mem, lane);
        }
    } else if (f->rm)
        c->rm = pick_reg(c, f->rm, 0);
    if (f->imm) {
        int bits = f->imm * 8;
        uint64_t v = (f->fl & F_IMMEDGE) ? dt_count(c, dt_opsize(c) * 8) : dt_edge(c, bits);
        dt_set_imm(c, v);
    }
}

static bool ext_bit(int kind, int r)
{
    return (is_gpr(kind) || kind == K_XMM) && r >= 8;
}

void dt_encode_generic(struct dt_case *c)
{
    const struct dt_form *f = c->form;
    bool modrm = f->mem || f->rm || f->ext >= 0 || f->reg;
    int regfield = f->ext >= 0 ? f->ext : c->reg >= 0 ? c->reg : 0;
    if (f->fl & F_LOCK) dt_emit8(c, 0xf0);
    if (c->segpfx) dt_emit8(c, c->segpfx);
    if (c->a32) dt_emit8(c, 0x67);
    dt_emit(c, f->pfx, f->npfx);
    uint8_t rex = 0x40;
    if (f->rexw) rex |= 8;
    if (f->ext < 0 && ext_bit(f->reg, c->reg)) rex |= 4;
    if (c->index >= 8) rex |= 2;
    if ((f->mem && c->base >= 8) || (!f->mem && ext_bit(f->rm, c->rm)) ||
        (f->opreg && ext_bit(f->opreg, c->opreg)))
        rex |= 1;
    if (rex != 0x40 || c->rex) {
        dt_emit8(c, rex);
        c->rex = true;
    }
    uint8_t op[3];
    memcpy(op, f->op, 3);
    if (f->opreg) op[f->nop - 1] |= (uint8_t)(c->opreg & 7);
    dt_emit(c, op, f->nop);
    if (modrm) {
        uint8_t r3 = (uint8_t)((regfield & 7) << 3);
        if (!f->mem) {
            dt_emit8(c, 0xc0 | r3 | (uint8_t)((c->rm >= 0 ? c->rm : 0) & 7));
        } else if (c->rip_rel) {
            dt_emit8(c, 0x05 | r3);
        } else if (c->abs_addr || c->base < 0) {
            int idx = c->abs_addr ? 4 : c->index & 7;
            int sc = c->abs_addr ? (int)dt_below(c, 4) : c->scale; /* ignored without index */
            dt_emit8(c, 0x04 | r3);
            dt_emit8(c, (uint8_t)(sc << 6 | idx << 3 | 5));
        } else {
            int mod = c->disp_size == 0 ? 0 : c->disp_size == 1 ? 1 : 2;
            bool sib = c->index >= 0 || (c->base & 7) == 4;
            dt_emit8(c, (uint8_t)(mod << 6) | r3 | (sib ? 4 : (c->base & 7)));
            if (sib) {
                int idx = c->index >= 0 ? c->index & 7 : 4;
                int sc = c->index >= 0 ? c->scale : 0;
                dt_emit8(c, (uint8_t)(sc << 6 | idx << 3 | (c->base & 7)));
            }
        }
        if (f->mem) {
            c->disp_pos = c->len;
            int ds = (c->rip_rel || c->abs_addr || c->base < 0) ? 4 : c->disp_size;
            dt_emit_imm(c, (uint64_t)c->disp, ds);
        }
    }
    if (f->imm) dt_emit_imm(c, c->imm, f->imm);
}

/* The code moves around the first page from case to case (sometimes straddling
 * the page boundary; custom encoders get a random c->org instead). Besides varying RIP-relative
 * displacements this spreads the emulator's decoded-block cache entries over many hash buckets:
 * blocks of rewritten code stay in their bucket until the cache is flushed. */
void dt_place(struct dt_case *c)
{
    if (dt_chance(c, 3) && c->len > 1)
        c->entry = 0x1000 - 1 - (int)dt_below(c, (uint64_t)c->len - 1); /* crosses a page */
    else
        c->entry = (int)dt_below(c, 0xf00);
    c->cont[0] = c->entry + c->len;
    c->ncont = 1;
    if (c->rip_rel && !(c->form->fl & F_NOADDR)) {
        int32_t d = (int32_t)(c->addr - (DT_CODE_BASE + (uint64_t)c->entry + (uint64_t)c->len));
        c->disp = d;
        memcpy(c->code + c->disp_pos, &d, 4);
    }
}

/* Appends one instruction of form `f` (register-only or memory operand, generic
 * encoder, code placed at c->org) to c->code with its own operand picks and
 * setup. Returns the flags mask its setup computed; the case's own form and
 * compare masks are kept. Used to build instruction sequences. */
uint32_t dt_emit_subform(struct dt_case *c, const struct dt_form *f)
{
    const struct dt_form *self = c->form;
    uint32_t keep_mask = c->flags_mask;
    c->form = f;
    c->reg = c->rm = c->opreg = c->base = c->index = -1;
    c->rex = c->a32 = c->rip_rel = c->abs_addr = c->faulting = false;
    c->segpfx = 0;
    c->scale = c->disp_size = c->disp_pos = 0;
    c->disp = 0;
    c->addr = c->imm = 0;
    c->flags_mask = f->flags;
    dt_pick_operands(c);
    if (f->setup) f->setup(c);
    int start = c->len;
    if (f->encode)
        f->encode(c); /* fixed byte strings */
    else
        dt_encode_generic(c);
    if (c->rip_rel && !(f->fl & F_NOADDR)) {
        int32_t d = (int32_t)(c->addr - (DT_CODE_BASE + (uint64_t)c->org + (uint64_t)c->len));
        memcpy(c->code + c->disp_pos, &d, 4);
    }
    (void)start;
    /* later instructions must not change the registers this one addresses with */
    if (c->base >= 0 && c->base < 16) c->reserved |= (uint16_t)(1u << c->base);
    if (c->index >= 0) c->reserved |= (uint16_t)(1u << c->index);
    uint32_t m = c->flags_mask;
    c->flags_mask = keep_mask;
    c->form = self;
    return m;
}
