/* excp.c — exceptions and interrupt delivery (real mode IVT, 32-bit and 64-bit
 * IDT gates, privilege changes, IST), double/triple fault, segment loading and
 * the processor mode derived from CR0/EFER/CS. */
#include "cpu/emu/emu.h"

#include <stdio.h>

_Noreturn void emu_raise(struct emu_cpu *c, int vector, uint32_t error_code, bool has_error)
{
    if (vector < 0) c->stop_run = true;
    c->exc_vector = vector;
    c->exc_err = error_code;
    c->exc_has_err = has_error;
    longjmp(c->exc_jmp, 1);
}

_Noreturn void emu_page_fault(struct emu_cpu *c, uint64_t lin, uint32_t err)
{
    c->s.cr2 = lin;
    emu_raise(c, EXC_PF, err, true);
}

void x86_state_reset(struct x86_state *s)
{
    memset(s, 0, sizeof(*s));
    s->rflags = FL_1;
    s->rip = 0xfff0;
    s->cr0 = CR0_ET | CR0_CD | CR0_NW;
    for (int i = 0; i < 6; i++)
        s->seg[i] = (struct x86_seg){.base = 0, .limit = 0xffff, .attr = 0x93, .sel = 0};
    s->seg[SEG_CS] =
        (struct x86_seg){.base = 0xffff0000, .limit = 0xffff, .attr = 0x9b, .sel = 0xf000};
    s->gdtr.limit = s->idtr.limit = 0xffff;
    s->ldtr = (struct x86_seg){.limit = 0xffff, .attr = 0x82};
    s->tr = (struct x86_seg){.limit = 0xffff, .attr = 0x8b};
    s->gpr[RDX] = 0x600; /* family 6 */
    s->msr.pat = 0x0007040600070406ull;
    s->fpu.fcw = 0x37f;
    s->fpu.ftw = 0xffff;
    s->fpu.mxcsr = 0x1f80;
    s->dr[6] = 0xffff0ff0;
    s->dr[7] = 0x400;
}

void x86_state_flat32(struct x86_state *s, uint64_t rip)
{
    uint64_t apic = s->msr.apic_base;
    x86_state_reset(s);
    s->msr.apic_base = apic;
    s->cr0 = CR0_PE | CR0_ET;
    s->rip = rip;
    for (int i = 0; i < 6; i++)
        s->seg[i] = (struct x86_seg){.base = 0, .limit = 0xffffffff, .attr = 0xc093, .sel = 0x10};
    s->seg[SEG_CS] = (struct x86_seg){.limit = 0xffffffff, .attr = 0xc09b, .sel = 0x08};
}

void emu_update_mode(struct emu_cpu *c)
{
    const struct x86_seg *cs = &c->s.seg[SEG_CS];
    if (!(c->s.cr0 & CR0_PE))
        c->mode = MODE_REAL;
    else if (c->s.msr.efer & EFER_LMA)
        c->mode = (cs->attr & SEGA_L)    ? MODE_LONG64
                  : (cs->attr & SEGA_DB) ? MODE_COMPAT32
                                         : MODE_COMPAT16;
    else
        c->mode = (cs->attr & SEGA_DB) ? MODE_PROT32 : MODE_PROT16;
    c->cpl = c->mode == MODE_REAL ? 0 : (c->s.rflags & FL_VM) ? 3 : (cs->sel & 3);
    c->tlb_cur = c->tlb[c->cpl == 3];
}

/* ---- descriptors ---- */

/* Reads the 8-byte descriptor for selector; raises #GP(sel) when outside the table. */
static uint64_t read_desc(struct emu_cpu *c, uint16_t sel, uint64_t *addr_out)
{
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        if (c->s.ldtr.attr & SEGA_UNUSABLE || !(c->s.ldtr.sel & ~3)) emu_gp(c, sel & ~3u);
        base = c->s.ldtr.base;
        limit = c->s.ldtr.limit;
    } else {
        base = c->s.gdtr.base;
        limit = c->s.gdtr.limit;
    }
    uint32_t off = sel & ~7u;
    if (off + 7 > limit) emu_gp(c, sel & ~3u);
    *addr_out = base + off;
    return emu_read_sys(c, base + off, 8);
}

static void desc_to_seg(uint64_t d, uint16_t sel, struct x86_seg *s)
{
    uint32_t hi = (uint32_t)(d >> 32);
    s->sel = sel;
    s->base = ((d >> 16) & 0xffffff) | ((uint64_t)(hi >> 24) << 24);
    uint32_t limit = (uint32_t)(d & 0xffff) | (hi & 0xf0000);
    if (hi & (1u << 23)) limit = (limit << 12) | 0xfff;
    s->limit = limit;
    s->attr = ((hi >> 8) & 0xff) | (((hi >> 20) & 0xf) << 12);
}

static void set_accessed(struct emu_cpu *c, uint64_t addr, uint64_t d)
{
    if (!(d & (1ull << 40))) emu_write_sys(c, addr + 5, 1, ((d >> 40) & 0xff) | 1);
}

void emu_load_seg(struct emu_cpu *c, int seg, uint16_t sel)
{
    struct x86_seg *s = &c->s.seg[seg];
    if (c->mode == MODE_REAL || (c->s.rflags & FL_VM)) {
        s->sel = sel;
        s->base = (uint64_t)sel << 4;
        if (seg == SEG_CS) emu_update_mode(c);
        return;
    }
    uint16_t rpl = sel & 3;
    if (!(sel & ~3u)) {
        if (seg == SEG_CS) emu_gp(c, 0);
        if (seg == SEG_SS && !(c->mode == MODE_LONG64 && c->cpl < 3 && rpl == c->cpl)) emu_gp(c, 0);
        s->sel = sel;
        s->attr = SEGA_UNUSABLE | (seg == SEG_SS ? (uint32_t)(c->cpl << 5) : 0);
        if (seg != SEG_FS && seg != SEG_GS) s->base = 0;
        return;
    }
    uint64_t addr, d = read_desc(c, sel, &addr);
    struct x86_seg n;
    desc_to_seg(d, sel, &n);
    int dpl = SEGA_DPL(n.attr), type = n.attr & 0xf;
    bool code = type & 8;
    if (!(n.attr & SEGA_S)) emu_gp(c, sel & ~3u);
    if (seg == SEG_SS) {
        if (code || !(type & 2) || rpl != c->cpl || dpl != c->cpl) emu_gp(c, sel & ~3u);
        if (!(n.attr & SEGA_P)) emu_raise(c, EXC_SS, sel & ~3u, true);
    } else {
        if (code && !(type & 2)) emu_gp(c, sel & ~3u);
        bool conforming_code = code && (type & 4);
        if (!conforming_code && dpl < (rpl > c->cpl ? rpl : c->cpl)) emu_gp(c, sel & ~3u);
        if (!(n.attr & SEGA_P)) emu_raise(c, EXC_NP, sel & ~3u, true);
    }
    set_accessed(c, addr, d);
    n.attr |= 1;
    if (c->mode == MODE_LONG64 && (seg == SEG_FS || seg == SEG_GS)) n.base = (uint32_t)n.base;
    *s = n;
}

/* Loads CS for a far transfer to a code segment at privilege new_cpl (checks done
 * by the caller); updates mode and CPL. */
static void load_cs_raw(struct emu_cpu *c, uint16_t sel, uint64_t d, int new_cpl)
{
    struct x86_seg n;
    desc_to_seg(d, (uint16_t)((sel & ~3u) | new_cpl), &n);
    n.attr |= 1;
    c->s.seg[SEG_CS] = n;
    emu_update_mode(c);
}

/* Far JMP/CALL/RET/IRET target check: returns the descriptor, raises on violation. */
uint64_t emu_check_code_desc(struct emu_cpu *c, uint16_t sel, int *new_cpl, bool ret)
{
    if (!(sel & ~3u)) emu_gp(c, 0);
    uint64_t addr, d = read_desc(c, sel, &addr);
    struct x86_seg n;
    desc_to_seg(d, sel, &n);
    int type = n.attr & 0xf, dpl = SEGA_DPL(n.attr), rpl = sel & 3;
    if (!(n.attr & SEGA_S) || !(type & 8)) emu_gp(c, sel & ~3u);
    if (ret) {
        if (rpl < c->cpl || ((type & 4) ? dpl > rpl : dpl != rpl)) emu_gp(c, sel & ~3u);
        *new_cpl = rpl;
    } else {
        if ((type & 4) ? dpl > c->cpl : (rpl > c->cpl || dpl != c->cpl)) emu_gp(c, sel & ~3u);
        *new_cpl = c->cpl;
    }
    if (!(n.attr & SEGA_P)) emu_raise(c, EXC_NP, sel & ~3u, true);
    if ((c->s.msr.efer & EFER_LMA) && (n.attr & SEGA_L) && (n.attr & SEGA_DB)) emu_gp(c, sel & ~3u);
    set_accessed(c, addr, d);
    return d;
}

void emu_load_cs(struct emu_cpu *c, uint16_t sel, uint64_t desc, int new_cpl)
{
    load_cs_raw(c, sel, desc, new_cpl);
}

/* After a return to an outer privilege level, data segment registers the new
 * level may not use are nulled. */
void emu_clear_outer_segs(struct emu_cpu *c, int ncpl)
{
    for (int s = SEG_ES; s <= SEG_GS; s++) {
        if (s == SEG_CS || s == SEG_SS) continue;
        struct x86_seg *sg = &c->s.seg[s];
        bool conf_code = (sg->attr & 0x1c) == 0x1c;
        if (!(sg->attr & SEGA_UNUSABLE) && !conf_code && SEGA_DPL(sg->attr) < ncpl) {
            sg->sel = 0;
            sg->attr = SEGA_UNUSABLE;
        }
    }
}

/* ---- interrupt and exception delivery ---- */

static bool contributory(int v)
{
    return v == 0 || (v >= 10 && v <= 13);
}

static bool has_error_code(int v)
{
    return v == EXC_DF || v == EXC_TS || v == EXC_NP || v == EXC_SS || v == EXC_GP || v == EXC_PF ||
           v == EXC_AC;
}

static void triple_fault(struct emu_cpu *c)
{
    c->stop_reason = VCPU_EXIT_SHUTDOWN;
    c->delivering = false;
    emu_raise(c, -1, 0, false);
}

static void deliver_real(struct emu_cpu *c, int vec, uint64_t ret_rip)
{
    if ((uint32_t)vec * 4 + 3 > c->s.idtr.limit) emu_gp(c, (uint32_t)vec * 8 + 2);
    uint32_t ent = (uint32_t)emu_read_sys(c, c->s.idtr.base + (uint32_t)vec * 4, 4);
    emu_push(c, 2, emu_rflags(c));
    emu_push(c, 2, c->s.seg[SEG_CS].sel);
    emu_push(c, 2, ret_rip);
    emu_flags_sync(c);
    c->s.rflags &= ~(uint64_t)(FL_IF | FL_TF | FL_AC | FL_RF);
    c->s.seg[SEG_CS].sel = (uint16_t)(ent >> 16);
    c->s.seg[SEG_CS].base = (ent >> 16) << 4;
    c->s.rip = c->next_rip = ent & 0xffff;
}

static uint64_t tss_stack(struct emu_cpu *c, uint32_t off, int size)
{
    if (off + size - 1 > c->s.tr.limit) emu_raise(c, EXC_TS, c->s.tr.sel & ~3u, true);
    return emu_read_sys(c, c->s.tr.base + off, size);
}

static void deliver_prot(struct emu_cpu *c, int vec, uint32_t err, bool has_err, int kind,
                         uint64_t ret_rip)
{
    bool lm = c->s.msr.efer & EFER_LMA;
    int esz = lm ? 16 : 8;
    uint32_t ext = (kind == EV_SOFT) ? 0 : 1;
    uint32_t gate_err = (uint32_t)vec * 8 + 2 + ext;
    if ((uint32_t)vec * esz + esz - 1 > c->s.idtr.limit) emu_gp(c, gate_err);
    uint64_t lo = emu_read_sys(c, c->s.idtr.base + (uint64_t)vec * esz, 8);
    uint64_t hi = lm ? emu_read_sys(c, c->s.idtr.base + (uint64_t)vec * esz + 8, 8) : 0;
    int type = (lo >> 40) & 0xf, gdpl = (lo >> 45) & 3;
    bool is32 = type == 0xe || type == 0xf, is16 = type == 6 || type == 7;
    if (lm ? !(type == 0xe || type == 0xf) : !(is32 || is16))
        emu_gp(c, gate_err); /* task gates are not supported */
    if (kind == EV_SOFT && gdpl < c->cpl) emu_gp(c, gate_err);
    if (!(lo & (1ull << 47))) emu_raise(c, EXC_NP, gate_err, true);
    uint16_t sel = (uint16_t)(lo >> 16);
    uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull);
    if (lm)
        target |= hi << 32;
    else if (is16)
        target &= 0xffff;
    if (!(sel & ~3u)) emu_gp(c, ext);
    uint64_t daddr, d = read_desc(c, sel, &daddr);
    struct x86_seg ncs;
    desc_to_seg(d, sel, &ncs);
    int dpl = SEGA_DPL(ncs.attr);
    if (!(ncs.attr & SEGA_S) || !(ncs.attr & 8) || dpl > c->cpl) emu_gp(c, (sel & ~3u) + ext);
    if (!(ncs.attr & SEGA_P)) emu_raise(c, EXC_NP, (sel & ~3u) + ext, true);
    if (lm && (!(ncs.attr & SEGA_L) || (ncs.attr & SEGA_DB))) emu_gp(c, (sel & ~3u) + ext);
    int new_cpl = (ncs.attr & 4) ? c->cpl : dpl;
    uint64_t flags = emu_rflags(c);
    uint64_t old_rsp = c->s.gpr[RSP];
    struct x86_seg old_ss = c->s.seg[SEG_SS];
    uint16_t old_cs = c->s.seg[SEG_CS].sel;

    if (lm) {
        int ist = (int)((lo >> 32) & 7);
        uint64_t rsp;
        if (ist)
            rsp = tss_stack(c, 0x24 + (ist - 1) * 8, 8);
        else if (new_cpl < c->cpl)
            rsp = tss_stack(c, 4 + new_cpl * 8, 8);
        else
            rsp = old_rsp;
        rsp &= ~15ull;
        uint64_t frame[6];
        int n = 0;
        if (has_err) frame[n++] = err;
        frame[n++] = ret_rip;
        frame[n++] = old_cs;
        frame[n++] = flags;
        frame[n++] = old_rsp;
        frame[n++] = old_ss.sel;
        /* push highest first so the frame matches the hardware layout */
        for (int i = n - 1; i >= 0; i--) {
            rsp -= 8;
            emu_write_sys(c, rsp, 8, frame[i]);
        }
        set_accessed(c, daddr, d);
        if (new_cpl != c->cpl) {
            c->s.seg[SEG_SS] =
                (struct x86_seg){.sel = (uint16_t)new_cpl, .attr = SEGA_UNUSABLE | (new_cpl << 5)};
        }
        c->s.gpr[RSP] = rsp;
    } else {
        uint64_t rsp = old_rsp;
        uint64_t ss_base = old_ss.base;
        uint16_t new_ss_sel = old_ss.sel;
        struct x86_seg nss = old_ss;
        int psz = is32 ? 4 : 2;
        if (new_cpl < c->cpl) {
            bool tss32 = (c->s.tr.attr & 0xf) == 0xb || (c->s.tr.attr & 0xf) == 0x9;
            if (tss32) {
                rsp = tss_stack(c, 4 + new_cpl * 8, 4);
                new_ss_sel = (uint16_t)tss_stack(c, 8 + new_cpl * 8, 2);
            } else {
                rsp = tss_stack(c, 2 + new_cpl * 4, 2);
                new_ss_sel = (uint16_t)tss_stack(c, 4 + new_cpl * 4, 2);
            }
            uint64_t a, sd = read_desc(c, new_ss_sel, &a);
            desc_to_seg(sd, new_ss_sel, &nss);
            if ((new_ss_sel & 3) != new_cpl || (int)SEGA_DPL(nss.attr) != new_cpl ||
                (nss.attr & 0x1a) != 0x12)
                emu_raise(c, EXC_TS, new_ss_sel & ~3u, true);
            if (!(nss.attr & SEGA_P)) emu_raise(c, EXC_SS, new_ss_sel & ~3u, true);
            ss_base = nss.base;
        }
        uint64_t frame[6];
        int n = 0;
        if (has_err) frame[n++] = err;
        frame[n++] = ret_rip;
        frame[n++] = old_cs;
        frame[n++] = flags;
        if (new_cpl < c->cpl) {
            frame[n++] = old_rsp;
            frame[n++] = old_ss.sel;
        }
        uint32_t mask = (nss.attr & SEGA_DB) ? 0xffffffffu : 0xffffu;
        for (int i = n - 1; i >= 0; i--) {
            rsp -= psz;
            emu_write_sys(c, (uint32_t)(ss_base + (rsp & mask)), psz, frame[i]);
        }
        set_accessed(c, daddr, d);
        c->s.seg[SEG_SS] = nss;
        c->s.seg[SEG_SS].sel = new_ss_sel;
        if (nss.attr & SEGA_DB)
            c->s.gpr[RSP] = (uint32_t)rsp;
        else
            c->s.gpr[RSP] = (c->s.gpr[RSP] & ~0xffffull) | (rsp & 0xffff);
    }
    emu_flags_sync(c);
    c->s.rflags &= ~(uint64_t)(FL_TF | FL_NT | FL_RF | FL_VM);
    if (type == 0xe || type == 6) c->s.rflags &= ~(uint64_t)FL_IF;
    load_cs_raw(c, sel, d, new_cpl);
    c->s.rip = c->next_rip = target;
}

void emu_deliver(struct emu_cpu *c, int vector, uint32_t err, bool has_err, int kind)
{
    if (kind == EV_EXC && c->delivering) {
        int first = c->delivering_vec;
        if (first == EXC_DF && (contributory(vector) || vector == EXC_PF)) triple_fault(c);
        if ((contributory(first) && contributory(vector)) ||
            (first == EXC_PF && (contributory(vector) || vector == EXC_PF))) {
            vector = EXC_DF;
            err = 0;
            has_err = true;
        }
    }
    if (kind == EV_EXC) has_err = has_error_code(vector);
    if (c->mode == MODE_REAL) has_err = false;
    c->delivering = true;
    c->delivering_vec = kind == EV_EXC ? vector : -1;
    uint64_t ret = kind == EV_SOFT ? c->next_rip : c->s.rip;
    c->halted = false;
    c->irq_shadow = false;
    if (c->mode == MODE_REAL)
        deliver_real(c, vector, ret);
    else
        deliver_prot(c, vector, err, has_err, kind, ret);
    c->delivering = false;
    c->exit_block = true;
    c->n_delivered++;
}
