/* ops_sys.c — system instructions: port I/O, interrupts (INT/IRET/HLT/CLI/STI),
 * segment register loads, descriptor tables, control/debug registers, MSRs,
 * SYSCALL/SYSRET/SWAPGS, CPUID/RDTSC(P), fences and cache control. */
#include "cpu/emu/emu.h"
#include "cpu/emu/sse_internal.h" /* lazy host MXCSR: emu_mxcsr_guest/host, emu_stmxcsr */

#define REQUIRE_CPL0(c)                                                                            \
    do {                                                                                           \
        if ((c)->cpl != 0) emu_gp(c, 0);                                                           \
    } while (0)

static int iopl(struct emu_cpu *c)
{
    return (int)((emu_rflags(c) >> 12) & 3);
}

/* ---- port I/O ---- */

bool emu_io_allowed(struct emu_cpu *c, uint16_t port, int size)
{
    if (c->mode == MODE_REAL || c->cpl <= iopl(c)) return true;
    /* consult the TSS I/O permission bitmap */
    if ((c->s.tr.attr & 0xf) != 0xb && (c->s.tr.attr & 0xf) != 0x9) return false;
    if (c->s.tr.limit < 0x67) return false;
    uint16_t base = (uint16_t)emu_read_sys(c, c->s.tr.base + 0x66, 2);
    uint32_t off = base + port / 8u;
    if (off + 1 > c->s.tr.limit) return false;
    uint16_t bits = (uint16_t)emu_read_sys(c, c->s.tr.base + off, 2);
    uint16_t mask = (uint16_t)(((1u << size) - 1) << (port & 7));
    return !(bits & mask);
}

void emu_io(struct emu_cpu *c, bool is_write, uint16_t port, int size, uint64_t *val)
{
    struct cpu_io io = {.kind = CPU_IO_PIO,
                        .write = is_write,
                        .size = (uint8_t)size,
                        .addr = port,
                        .data = is_write ? (*val & szmask(size)) : 0};
    vcpu_leave_guest(&c->v);
    bool guest_csr = emu_mxcsr_host(c); /* MXCSR: device code runs under the host's */
    c->v.ops->io(c->v.ctx, &io);
    if (guest_csr) emu_mxcsr_guest(c);
    atomic_store_explicit(&c->v.in_guest, 1, memory_order_seq_cst);
    if (atomic_load(&c->v.requests) & VCPU_REQ_FLUSH) emu_handle_flush(c);
    if (!is_write) *val = io.data & szmask(size);
    /* the device may have raised an interrupt or stopped the VM */
    c->exit_block = true;
}

static void op_in_out(struct emu_cpu *c, const struct insn *in) /* E4-E7, EC-EF */
{
    int size = (in->opc & 1) ? (in->osz == 2 ? 2 : 4) : 1;
    uint16_t port = (in->opc & 8) ? (uint16_t)c->s.gpr[RDX] : (uint16_t)(in->imm & 0xff);
    if (!emu_io_allowed(c, port, size)) emu_gp(c, 0);
    uint64_t v = c->s.gpr[RAX];
    bool out = in->opc & 2;
    emu_io(c, out, port, size, &v);
    if (!out) reg_write(c, RAX, size, false, v);
}

/* ---- interrupts ---- */

static void op_int(struct emu_cpu *c, const struct insn *in) /* CC CD CE F1 */
{
    switch (in->opc) {
    case 0xcc: emu_deliver(c, EXC_BP, 0, false, EV_SOFT); break;
    case 0xcd: emu_deliver(c, (int)(in->imm & 0xff), 0, false, EV_SOFT); break;
    case 0xce:
        if (c->mode == MODE_LONG64) emu_ud(c);
        if (emu_cond(c, 0)) emu_deliver(c, EXC_OF, 0, false, EV_SOFT);
        break;
    default: emu_deliver(c, EXC_DB, 0, false, EV_SOFT); break;
    }
}

static void op_hlt(struct emu_cpu *c, const struct insn *in)
{
    REQUIRE_CPL0(c);
    c->halted = true;
    c->exit_block = true;
}

static void op_cli(struct emu_cpu *c, const struct insn *in)
{
    if (c->mode != MODE_REAL && c->cpl > iopl(c)) emu_gp(c, 0);
    emu_flags_sync(c);
    c->s.rflags &= ~(uint64_t)FL_IF;
}

static void op_sti(struct emu_cpu *c, const struct insn *in)
{
    if (c->mode != MODE_REAL && c->cpl > iopl(c)) emu_gp(c, 0);
    emu_flags_sync(c);
    if (!(c->s.rflags & FL_IF)) c->irq_shadow = true;
    c->s.rflags |= FL_IF;
    c->exit_block = true;
}

static uint64_t iret_flags(struct emu_cpu *c, uint64_t cur, uint64_t v, int osz)
{
    uint64_t mask = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID | FL_RF;
    if (c->cpl == 0) mask |= FL_IOPL;
    if (c->cpl <= iopl(c)) mask |= FL_IF;
    if (osz == 2) mask &= 0xffff;
    return (cur & ~mask) | (v & mask) | FL_1;
}

static void op_iret(struct emu_cpu *c, const struct insn *in) /* CF */
{
    int sz = in->osz;
    uint64_t cur = emu_rflags(c);
    if (c->mode == MODE_REAL) {
        uint64_t ip = emu_stack_peek(c, sz, 0);
        uint16_t cs = (uint16_t)emu_stack_peek(c, sz, sz);
        uint64_t fl = emu_stack_peek(c, sz, 2 * sz);
        set_rsp_sized(c, c->s.gpr[RSP] + 3 * sz);
        c->s.seg[SEG_CS].sel = cs;
        c->s.seg[SEG_CS].base = (uint64_t)cs << 4;
        emu_flags_sync(c);
        uint64_t mask = (sz == 2 ? 0xffff : 0x257fd5) & ~(uint64_t)FL_VM;
        c->s.rflags = (c->s.rflags & ~mask) | (fl & mask) | FL_1;
        c->next_rip = ip & szmask(sz);
        c->nmi_blocked = false;
        c->exit_block = true;
        return;
    }
    if (cur & FL_NT) emu_gp(c, 0); /* task switches are not supported */
    uint64_t ip = emu_stack_peek(c, sz, 0);
    uint16_t cs = (uint16_t)emu_stack_peek(c, sz, sz);
    uint64_t fl = emu_stack_peek(c, sz, 2 * sz);
    int ncpl;
    uint64_t d = emu_check_code_desc(c, cs, &ncpl, true);
    if (((d >> 53) & 1) && (c->s.msr.efer & EFER_LMA) && !canonical(ip))
        emu_gp(c, 0); /* returning to 64-bit code at a non-canonical RIP */
    bool lm = c->mode == MODE_LONG64;
    bool outer = ncpl > c->cpl;
    uint64_t nflags = iret_flags(c, cur, fl, sz);
    if (lm || outer) {
        uint64_t nrsp = emu_stack_peek(c, sz, 3 * sz);
        uint16_t nss = (uint16_t)emu_stack_peek(c, sz, 4 * sz);
        int old_cpl = c->cpl;
        emu_load_cs(c, cs, d, ncpl);
        /* SS is checked against the new CPL */
        if (!(nss & ~3u) && c->mode == MODE_LONG64 && ncpl < 3) {
            c->s.seg[SEG_SS] = (struct x86_seg){.sel = nss, .attr = SEGA_UNUSABLE | (ncpl << 5)};
        } else {
            emu_load_seg(c, SEG_SS, nss);
        }
        c->s.gpr[RSP] =
            sz == 8 ? nrsp
                    : (sz == 4 ? (uint32_t)nrsp : (c->s.gpr[RSP] & ~0xffffull) | (nrsp & 0xffff));
        if (ncpl > old_cpl) {
            emu_clear_outer_segs(c, ncpl);
        }
    } else {
        set_rsp_sized(c, c->s.gpr[RSP] + 3 * sz);
        emu_load_cs(c, cs, d, ncpl);
    }
    c->lf_op = LF_NONE;
    c->s.rflags = nflags;
    c->next_rip = c->mode == MODE_LONG64 ? ip : ip & szmask(sz == 8 ? 4 : sz);
    c->nmi_blocked = false;
    c->exit_block = true;
    emu_update_mode(c);
}

/* ---- segment registers ---- */

static void op_mov_rm_sreg(struct emu_cpu *c, const struct insn *in) /* 8C */
{
    int s = in->reg & 7;
    if (s > SEG_GS) emu_ud(c);
    uint16_t sel = c->s.seg[s].sel;
    if (in->mod == 3)
        reg_write(c, in->rm, in->osz, false, sel);
    else
        vm_write(c, emu_ea(c, in), 2, sel);
}

static void load_sreg(struct emu_cpu *c, int s, uint16_t sel)
{
    emu_load_seg(c, s, sel);
    if (s == SEG_SS) {
        c->irq_shadow = true;
        c->exit_block = true;
    }
}

static void op_mov_sreg_rm(struct emu_cpu *c, const struct insn *in) /* 8E */
{
    int s = in->reg & 7;
    if (s == SEG_CS || s > SEG_GS) emu_ud(c);
    load_sreg(c, s, (uint16_t)rm_read(c, in, 2));
}

static int sreg_of_push_pop(const struct insn *in)
{
    if (in->map == MAP_0F) return in->opc < 0xa8 ? SEG_FS : SEG_GS;
    return (in->opc >> 3) & 3;
}

static void op_push_sreg(struct emu_cpu *c, const struct insn *in)
{
    emu_push(c, in->osz, c->s.seg[sreg_of_push_pop(in)].sel);
}

static void op_pop_sreg(struct emu_cpu *c, const struct insn *in)
{
    int s = sreg_of_push_pop(in);
    uint16_t sel = (uint16_t)emu_stack_peek(c, in->osz, 0);
    load_sreg(c, s, sel);
    set_rsp_sized(c, c->s.gpr[RSP] + in->osz);
}

static void op_load_far(struct emu_cpu *c, const struct insn *in) /* C4 C5, 0F B2 B4 B5 */
{
    if (in->mod == 3) emu_ud(c);
    int s = in->map == MAP_1B ? (in->opc == 0xc4 ? SEG_ES : SEG_DS)
            : in->opc == 0xb2 ? SEG_SS
            : in->opc == 0xb4 ? SEG_FS
                              : SEG_GS;
    uint64_t ea = emu_ea(c, in);
    uint64_t off = vm_read(c, ea, in->osz);
    uint16_t sel = (uint16_t)vm_read(c, ea + in->osz, 2);
    load_sreg(c, s, sel);
    greg_write(c, in, in->osz, off);
}

/* ---- descriptor tables: 0F 00 and 0F 01 ---- */

static uint64_t read_sysdesc(struct emu_cpu *c, uint16_t sel, uint64_t *hi, uint64_t *addr)
{
    if ((sel & 4) || !(sel & ~3u)) emu_gp(c, sel & ~3u);
    uint32_t esz = (c->s.msr.efer & EFER_LMA) ? 16 : 8;
    if ((sel & ~7u) + esz - 1 > c->s.gdtr.limit) emu_gp(c, sel & ~3u);
    *addr = c->s.gdtr.base + (sel & ~7u);
    uint64_t lo = emu_read_sys(c, *addr, 8);
    *hi = esz == 16 ? emu_read_sys(c, *addr + 8, 8) : 0;
    return lo;
}

static void sysdesc_to_seg(uint64_t lo, uint64_t hi, uint16_t sel, struct x86_seg *s, bool lm)
{
    uint32_t h = (uint32_t)(lo >> 32);
    s->sel = sel;
    s->base = ((lo >> 16) & 0xffffff) | ((uint64_t)(h >> 24) << 24);
    if (lm) s->base |= (hi & 0xffffffff) << 32;
    uint32_t limit = (uint32_t)(lo & 0xffff) | (h & 0xf0000);
    if (h & (1u << 23)) limit = (limit << 12) | 0xfff;
    s->limit = limit;
    s->attr = ((h >> 8) & 0xff) | (((h >> 20) & 0xf) << 12);
}

static void load_ldt_tr(struct emu_cpu *c, uint16_t sel, bool tr)
{
    bool lm = c->s.msr.efer & EFER_LMA;
    if (!tr && !(sel & ~3u)) {
        c->s.ldtr = (struct x86_seg){.sel = sel, .attr = SEGA_UNUSABLE};
        return;
    }
    uint64_t hi, addr, lo = read_sysdesc(c, sel, &hi, &addr);
    struct x86_seg s;
    sysdesc_to_seg(lo, hi, sel, &s, lm);
    int type = s.attr & 0xf;
    if ((s.attr & SEGA_S) || (tr ? (type != 9 && type != 1) : type != 2)) emu_gp(c, sel & ~3u);
    if (!(s.attr & SEGA_P)) emu_raise(c, EXC_NP, sel & ~3u, true);
    if (tr) {
        emu_write_sys(c, addr + 5, 1, ((lo >> 40) & 0xff) | 2); /* busy */
        s.attr |= 2;
        c->s.tr = s;
    } else {
        c->s.ldtr = s;
    }
}

static void op_grp6(struct emu_cpu *c, const struct insn *in) /* 0F 00 */
{
    if (c->mode == MODE_REAL) emu_ud(c);
    int r = in->reg & 7;
    switch (r) {
    case 0:
    case 1: { /* SLDT, STR */
        uint16_t sel = r ? c->s.tr.sel : c->s.ldtr.sel;
        if (in->mod == 3)
            reg_write(c, in->rm, in->osz, false, sel);
        else
            vm_write(c, emu_ea(c, in), 2, sel);
        break;
    }
    case 2:
    case 3:
        REQUIRE_CPL0(c);
        load_ldt_tr(c, (uint16_t)rm_read(c, in, 2), r == 3);
        break;
    case 4:
    case 5: { /* VERR, VERW: report "not accessible" unless a plain data/code seg */
        uint16_t sel = (uint16_t)rm_read(c, in, 2);
        bool ok = false;
        uint32_t limit = (sel & 4) ? c->s.ldtr.limit : c->s.gdtr.limit;
        uint64_t base = (sel & 4) ? c->s.ldtr.base : c->s.gdtr.base;
        if ((sel & ~3u) && (sel & ~7u) + 7 <= limit) {
            uint64_t d = emu_read_sys(c, base + (sel & ~7u), 8);
            uint32_t attr = (uint32_t)(d >> 40) & 0xff;
            int dpl = (attr >> 5) & 3, type = attr & 0xf;
            bool conf = (type & 0xc) == 0xc;
            if ((attr & SEGA_S) && (conf || (dpl >= c->cpl && dpl >= (sel & 3))))
                ok = r == 4 ? (!(type & 8) || (type & 2)) : (!(type & 8) && (type & 2));
        }
        emu_flags_sync(c);
        c->s.rflags = (c->s.rflags & ~(uint64_t)FL_ZF) | (ok ? FL_ZF : 0);
        break;
    }
    default: emu_ud(c);
    }
}

static void dtable_store(struct emu_cpu *c, const struct insn *in, const struct x86_dtable *t)
{
    uint64_t ea = emu_ea(c, in);
    vm_write(c, ea, 2, t->limit);
    if (c->mode == MODE_LONG64)
        vm_write(c, ea + 2, 8, t->base);
    else
        vm_write(c, ea + 2, 4, t->base);
}

static void dtable_load(struct emu_cpu *c, const struct insn *in, struct x86_dtable *t)
{
    REQUIRE_CPL0(c);
    uint64_t ea = emu_ea(c, in);
    uint16_t limit = (uint16_t)vm_read(c, ea, 2);
    uint64_t base = c->mode == MODE_LONG64 ? vm_read(c, ea + 2, 8) : vm_read(c, ea + 2, 4);
    if (c->mode != MODE_LONG64 && in->osz == 2) base &= 0xffffff;
    t->limit = limit;
    t->base = base;
}

static void op_grp7_reg(struct emu_cpu *c, const struct insn *in)
{
    switch (in->modrm) {
    case 0xf8: /* SWAPGS */
        if (c->mode != MODE_LONG64) emu_ud(c);
        REQUIRE_CPL0(c);
        {
            uint64_t t = c->s.seg[SEG_GS].base;
            c->s.seg[SEG_GS].base = c->s.msr.kernel_gs_base;
            c->s.msr.kernel_gs_base = t;
        }
        break;
    case 0xf9: { /* RDTSCP */
        if ((c->s.cr4 & CR4_TSD) && c->cpl) emu_gp(c, 0);
        uint64_t t = emu_rdtsc(c);
        c->s.gpr[RAX] = (uint32_t)t;
        c->s.gpr[RDX] = t >> 32;
        c->s.gpr[RCX] = (uint32_t)c->s.msr.tsc_aux;
        break;
    }
    default:
        if ((in->modrm & 0xf8) == 0xe0 || (in->modrm & 0xf8) == 0xf0) {
            /* SMSW r (E0-E7) / LMSW r (F0-F7) */
            if ((in->reg & 7) == 4) {
                reg_write(c, in->rm, in->osz, false, c->s.cr0 & szmask(in->osz));
                return;
            }
            REQUIRE_CPL0(c);
            uint64_t v = reg_read(c, in->rm, 2, false);
            emu_set_cr0(c, (c->s.cr0 & ~0xeull) | (v & 0xf) | (c->s.cr0 & CR0_PE));
            return;
        }
        emu_ud(c); /* MONITOR/MWAIT, XGETBV, VMX, CLAC/STAC: not advertised */
    }
}

static void op_grp7(struct emu_cpu *c, const struct insn *in) /* 0F 01 */
{
    if (in->mod == 3) {
        op_grp7_reg(c, in);
        return;
    }
    switch (in->reg & 7) {
    case 0: dtable_store(c, in, &c->s.gdtr); break;
    case 1: dtable_store(c, in, &c->s.idtr); break;
    case 2: dtable_load(c, in, &c->s.gdtr); break;
    case 3: dtable_load(c, in, &c->s.idtr); break;
    case 4: vm_write(c, emu_ea(c, in), 2, c->s.cr0 & 0xffff); break;
    case 6: {
        REQUIRE_CPL0(c);
        uint64_t v = vm_read(c, emu_ea(c, in), 2);
        emu_set_cr0(c, (c->s.cr0 & ~0xeull) | (v & 0xf) | (c->s.cr0 & CR0_PE));
        break;
    }
    case 7:
        REQUIRE_CPL0(c);
        emu_tlb_flush_page(c, emu_ea(c, in));
        break;
    default: emu_ud(c);
    }
}

static void op_lar_lsl(struct emu_cpu *c, const struct insn *in) /* 0F 02, 0F 03 */
{
    if (c->mode == MODE_REAL) emu_ud(c);
    uint16_t sel = (uint16_t)rm_read(c, in, 2);
    uint32_t limit = (sel & 4) ? c->s.ldtr.limit : c->s.gdtr.limit;
    uint64_t base = (sel & 4) ? c->s.ldtr.base : c->s.gdtr.base;
    bool ok = false;
    uint64_t result = 0;
    if ((sel & ~3u) && (sel & ~7u) + 7 <= limit) {
        uint64_t d = emu_read_sys(c, base + (sel & ~7u), 8);
        uint32_t attr = (uint32_t)(d >> 40) & 0xff;
        int dpl = (attr >> 5) & 3, type = attr & 0xf;
        bool conf = (attr & SEGA_S) && (type & 0xc) == 0xc;
        bool sys_ok = !(attr & SEGA_S) && (type == 1 || type == 2 || type == 3 || type == 9 ||
                                           type == 0xb || (in->opc == 2 && type == 0xc));
        if (((attr & SEGA_S) || sys_ok) && (conf || (dpl >= c->cpl && dpl >= (sel & 3)))) {
            ok = true;
            if (in->opc == 2) {
                result = (d >> 32) & 0x00f0ff00;
            } else {
                uint32_t l = (uint32_t)(d & 0xffff) | ((uint32_t)(d >> 32) & 0xf0000);
                if (d & (1ull << 55)) l = (l << 12) | 0xfff;
                result = l;
            }
        }
    }
    emu_flags_sync(c);
    c->s.rflags = (c->s.rflags & ~(uint64_t)FL_ZF) | (ok ? FL_ZF : 0);
    if (ok) greg_write(c, in, in->osz, result);
}

/* ---- control registers ---- */

void emu_set_cr0(struct emu_cpu *c, uint64_t v)
{
    v |= CR0_ET;
    if ((v >> 32) || ((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
        emu_gp(c, 0);
    uint64_t old = c->s.cr0;
    if ((v & CR0_PG) && !(old & CR0_PG) && (c->s.msr.efer & EFER_LME)) {
        if (!(c->s.cr4 & CR4_PAE) || (c->s.seg[SEG_CS].attr & SEGA_L)) emu_gp(c, 0);
        c->s.msr.efer |= EFER_LMA;
    }
    if (!(v & CR0_PG) && (old & CR0_PG) && (c->s.msr.efer & EFER_LMA)) {
        if (c->mode == MODE_LONG64) emu_gp(c, 0);
        c->s.msr.efer &= ~EFER_LMA;
    }
    c->s.cr0 = v;
    if ((old ^ v) & (CR0_PG | CR0_WP | CR0_PE)) emu_tlb_flush(c, true);
    emu_update_mode(c);
    c->exit_block = true;
}

void emu_set_cr3(struct emu_cpu *c, uint64_t v)
{
    if (c->s.msr.efer & EFER_LMA)
        v &= 0x000ffffffffff000ull | 0x18;
    else
        v = (uint32_t)v;
    c->s.cr3 = v;
    emu_tlb_flush(c, false);
    c->exit_block = true;
}

#define CR4_SUPPORTED                                                                              \
    (CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | CR4_PCE |      \
     CR4_OSFXSR | CR4_OSXMMEXCPT)

void emu_set_cr4(struct emu_cpu *c, uint64_t v)
{
    if (v & ~CR4_SUPPORTED) emu_gp(c, 0);
    if ((c->s.msr.efer & EFER_LMA) && !(v & CR4_PAE)) emu_gp(c, 0);
    uint64_t old = c->s.cr4;
    c->s.cr4 = v;
    if ((old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE)) emu_tlb_flush(c, true);
    c->exit_block = true;
}

static void op_mov_cr(struct emu_cpu *c, const struct insn *in) /* 0F 20, 0F 22 */
{
    REQUIRE_CPL0(c);
    int cr = in->reg;
    int size = c->mode == MODE_LONG64 ? 8 : 4;
    bool to_cr = in->opc == 0x22;
    if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8) emu_ud(c);
    if (!to_cr) {
        uint64_t v = cr == 0   ? c->s.cr0
                     : cr == 2 ? c->s.cr2
                     : cr == 3 ? c->s.cr3
                     : cr == 4 ? c->s.cr4
                               : c->s.cr8;
        uint64_t tpr;
        if (cr == 8 && c->v.ops->msr && c->v.ops->msr(c->v.ctx, 0x808, false, &tpr) == 0)
            v = (tpr >> 4) & 0xf; /* CR8 mirrors the local APIC's TPR */
        reg_write(c, in->rm, size, false, v);
        return;
    }
    uint64_t v = reg_read(c, in->rm, size, false);
    switch (cr) {
    case 0: emu_set_cr0(c, v); break;
    case 2: c->s.cr2 = v; break;
    case 3: emu_set_cr3(c, v); break;
    case 4: emu_set_cr4(c, v); break;
    case 8: {
        if (v & ~0xfull) emu_gp(c, 0);
        c->s.cr8 = v;
        uint64_t tpr = v << 4;
        if (c->v.ops->msr) c->v.ops->msr(c->v.ctx, 0x808, true, &tpr);
        c->exit_block = true;
        break;
    }
    }
}

static void op_mov_dr(struct emu_cpu *c, const struct insn *in) /* 0F 21, 0F 23 */
{
    REQUIRE_CPL0(c);
    int dr = in->reg;
    int size = c->mode == MODE_LONG64 ? 8 : 4;
    if (dr > 7) emu_ud(c);
    if (dr == 4 || dr == 5) {
        if (c->s.cr4 & CR4_DE) emu_ud(c);
        dr += 2;
    }
    if (in->opc == 0x21) {
        reg_write(c, in->rm, size, false, c->s.dr[dr]);
    } else {
        uint64_t v = reg_read(c, in->rm, size, false);
        if (dr >= 6 && (v >> 32)) emu_gp(c, 0);
        /* breakpoints are recorded but not triggered: no debug traps yet */
        c->s.dr[dr] = dr == 6 ? (v | 0xffff0ff0) : dr == 7 ? ((v & ~0x2000ull) | 0x400) : v;
    }
}

/* ---- misc privileged ---- */

static void op_clts(struct emu_cpu *c, const struct insn *in)
{
    REQUIRE_CPL0(c);
    c->s.cr0 &= ~CR0_TS;
}

static void op_wbinvd(struct emu_cpu *c, const struct insn *in) /* 0F 08, 0F 09 */
{
    REQUIRE_CPL0(c);
}

static void op_rdmsr(struct emu_cpu *c, const struct insn *in)
{
    REQUIRE_CPL0(c);
    uint64_t v;
    if (emu_rdmsr(c, (uint32_t)c->s.gpr[RCX], &v) < 0) emu_gp(c, 0);
    c->s.gpr[RAX] = (uint32_t)v;
    c->s.gpr[RDX] = v >> 32;
}

static void op_wrmsr(struct emu_cpu *c, const struct insn *in)
{
    REQUIRE_CPL0(c);
    uint64_t v = (uint32_t)c->s.gpr[RAX] | (c->s.gpr[RDX] << 32);
    if (emu_wrmsr(c, (uint32_t)c->s.gpr[RCX], v) < 0) emu_gp(c, 0);
    c->exit_block = true;
}

static void op_rdtsc(struct emu_cpu *c, const struct insn *in)
{
    if ((c->s.cr4 & CR4_TSD) && c->cpl) emu_gp(c, 0);
    uint64_t t = emu_rdtsc(c);
    c->s.gpr[RAX] = (uint32_t)t;
    c->s.gpr[RDX] = t >> 32;
}

static void op_rdpmc(struct emu_cpu *c, const struct insn *in)
{
    emu_gp(c, 0);
}

static void op_cpuid(struct emu_cpu *c, const struct insn *in)
{
    uint32_t r[4];
    bool guest_csr = emu_mxcsr_host(c); /* MXCSR: the host's (TSC calibration uses doubles) */
    emu_cpuid(c, (uint32_t)c->s.gpr[RAX], (uint32_t)c->s.gpr[RCX], r);
    if (guest_csr) emu_mxcsr_guest(c);
    c->s.gpr[RAX] = r[0];
    c->s.gpr[RBX] = r[1];
    c->s.gpr[RCX] = r[2];
    c->s.gpr[RDX] = r[3];
}

/* ---- SYSCALL / SYSRET ---- */

static void op_syscall(struct emu_cpu *c, const struct insn *in)
{
    if (!(c->s.msr.efer & EFER_SCE) || !(c->s.msr.efer & EFER_LMA)) emu_ud(c);
    uint64_t flags = emu_rflags(c);
    c->s.gpr[RCX] = c->next_rip;
    c->s.gpr[R11] = flags & ~(uint64_t)FL_RF;
    uint16_t sel = (uint16_t)(c->s.msr.star >> 32) & ~3u;
    c->s.seg[SEG_CS] =
        (struct x86_seg){.sel = sel, .limit = 0xffffffff, .attr = 0x9b | SEGA_L | SEGA_G};
    c->s.seg[SEG_SS] = (struct x86_seg){
        .sel = (uint16_t)(sel + 8), .limit = 0xffffffff, .attr = 0x93 | SEGA_DB | SEGA_G};
    c->lf_op = LF_NONE;
    c->s.rflags = (flags & ~c->s.msr.sfmask & ~(uint64_t)FL_RF) | FL_1;
    c->next_rip = c->mode == MODE_LONG64 ? c->s.msr.lstar : c->s.msr.cstar;
    emu_update_mode(c);
    c->exit_block = true;
}

static void op_sysret(struct emu_cpu *c, const struct insn *in)
{
    if (!(c->s.msr.efer & EFER_SCE) || !(c->s.msr.efer & EFER_LMA)) emu_ud(c);
    REQUIRE_CPL0(c);
    if (c->mode != MODE_LONG64) emu_ud(c);
    uint16_t base = (uint16_t)(c->s.msr.star >> 48);
    bool to64 = in->osz == 8;
    if (to64 && !canonical(c->s.gpr[RCX])) emu_gp(c, 0);
    if (to64)
        c->s.seg[SEG_CS] = (struct x86_seg){.sel = (uint16_t)((base + 16) | 3),
                                            .limit = 0xffffffff,
                                            .attr = 0xfb | SEGA_L | SEGA_G};
    else
        c->s.seg[SEG_CS] = (struct x86_seg){
            .sel = (uint16_t)(base | 3), .limit = 0xffffffff, .attr = 0xfb | SEGA_DB | SEGA_G};
    c->s.seg[SEG_SS] = (struct x86_seg){
        .sel = (uint16_t)((base + 8) | 3), .limit = 0xffffffff, .attr = 0xf3 | SEGA_DB | SEGA_G};
    c->lf_op = LF_NONE;
    c->s.rflags = (c->s.gpr[R11] & 0x3c7fd7) | FL_1;
    c->next_rip = to64 ? c->s.gpr[RCX] : (uint32_t)c->s.gpr[RCX];
    emu_update_mode(c);
    c->exit_block = true;
}

/* ---- 0F AE: FXSAVE/FXRSTOR/LDMXCSR/STMXCSR, fences, CLFLUSH ---- */

static void op_grp15(struct emu_cpu *c, const struct insn *in)
{
    int r = in->reg & 7;
    if (in->mod == 3) {
        if (r == 5 || r == 7) /* LFENCE, SFENCE */
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
        else if (r == 6) /* MFENCE: orders earlier stores before later loads across vCPUs */
            __asm__ volatile("mfence" ::: "memory");
        else
            emu_ud(c);
        return;
    }
    uint64_t ea = emu_ea(c, in);
    switch (r) {
    case 0: emu_fxsave(c, ea, in->rex & 8); break;
    case 1: emu_fxrstor(c, ea, in->rex & 8); break;
    case 2:
        emu_sse_check(c);
        emu_ldmxcsr(c, (uint32_t)vm_read(c, ea, 4));
        break;
    case 3:
        emu_sse_check(c);
        vm_write(c, ea, 4, emu_stmxcsr(c)); /* MXCSR: synced from the host (sse_internal.h) */
        break;
    case 7: vm_read(c, ea, 1); break; /* CLFLUSH: faults like a read; caches are coherent */
    default: emu_ud(c);               /* XSAVE family: not advertised */
    }
}

void emu_ops_sys_init(void)
{
    for (int op = 0xe4; op <= 0xe7; op++) {
        emu_register(MAP_1B, op, -1, op_in_out);
        emu_register(MAP_1B, op + 8, -1, op_in_out);
    }
    emu_register(MAP_1B, 0xcc, -1, op_int);
    emu_register(MAP_1B, 0xcd, -1, op_int);
    emu_register(MAP_1B, 0xce, -1, op_int);
    emu_register(MAP_1B, 0xf1, -1, op_int);
    emu_register(MAP_1B, 0xcf, -1, op_iret);
    emu_register(MAP_1B, 0xf4, -1, op_hlt);
    emu_register(MAP_1B, 0xfa, -1, op_cli);
    emu_register(MAP_1B, 0xfb, -1, op_sti);
    emu_register(MAP_1B, 0x8c, -1, op_mov_rm_sreg);
    emu_register(MAP_1B, 0x8e, -1, op_mov_sreg_rm);
    static const uint8_t push_seg[] = {0x06, 0x0e, 0x16, 0x1e}, pop_seg[] = {0x07, 0x17, 0x1f};
    for (unsigned i = 0; i < sizeof(push_seg); i++)
        emu_register(MAP_1B, push_seg[i], -1, op_push_sreg);
    for (unsigned i = 0; i < sizeof(pop_seg); i++)
        emu_register(MAP_1B, pop_seg[i], -1, op_pop_sreg);
    emu_register(MAP_0F, 0xa0, -1, op_push_sreg);
    emu_register(MAP_0F, 0xa8, -1, op_push_sreg);
    emu_register(MAP_0F, 0xa1, -1, op_pop_sreg);
    emu_register(MAP_0F, 0xa9, -1, op_pop_sreg);
    emu_register(MAP_1B, 0xc4, -1, op_load_far);
    emu_register(MAP_1B, 0xc5, -1, op_load_far);
    emu_register(MAP_0F, 0xb2, -1, op_load_far);
    emu_register(MAP_0F, 0xb4, -1, op_load_far);
    emu_register(MAP_0F, 0xb5, -1, op_load_far);
    emu_register(MAP_0F, 0x00, -1, op_grp6);
    emu_register(MAP_0F, 0x01, -1, op_grp7);
    emu_register(MAP_0F, 0x02, -1, op_lar_lsl);
    emu_register(MAP_0F, 0x03, -1, op_lar_lsl);
    emu_register(MAP_0F, 0x05, -1, op_syscall);
    emu_register(MAP_0F, 0x06, -1, op_clts);
    emu_register(MAP_0F, 0x07, -1, op_sysret);
    emu_register(MAP_0F, 0x08, -1, op_wbinvd);
    emu_register(MAP_0F, 0x09, -1, op_wbinvd);
    emu_register(MAP_0F, 0x20, -1, op_mov_cr);
    emu_register(MAP_0F, 0x22, -1, op_mov_cr);
    emu_register(MAP_0F, 0x21, -1, op_mov_dr);
    emu_register(MAP_0F, 0x23, -1, op_mov_dr);
    emu_register(MAP_0F, 0x30, -1, op_wrmsr);
    emu_register(MAP_0F, 0x31, -1, op_rdtsc);
    emu_register(MAP_0F, 0x32, -1, op_rdmsr);
    emu_register(MAP_0F, 0x33, -1, op_rdpmc);
    emu_register(MAP_0F, 0xa2, -1, op_cpuid);
    emu_register(MAP_0F, 0xae, -1, op_grp15);
}
