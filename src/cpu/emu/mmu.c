/* mmu.c — soft MMU: page walks (legacy 32-bit, PAE, 4-level), access and
 * dirty bits, protection checks, the per-vCPU TLB, and the slow paths of guest
 * memory access (page-crossing, MMIO, faults). */
#include "cpu/emu/emu.h"
#include "cpu/emu/sse_internal.h" /* lazy host MXCSR: emu_mxcsr_guest/emu_mxcsr_host */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define PTE_P     (1ull << 0)
#define PTE_W     (1ull << 1)
#define PTE_U     (1ull << 2)
#define PTE_A     (1ull << 5)
#define PTE_D     (1ull << 6)
#define PTE_PS    (1ull << 7)
#define PTE_G     (1ull << 8)
#define PTE_NX    (1ull << 63)
#define PHYS_BITS 40
#define ADDR_MASK (((1ull << PHYS_BITS) - 1) & ~0xfffull)

void emu_jc_flush(struct emu_cpu *c)
{
    memset(c->jc, 0, sizeof(c->jc));
    c->chain_epoch++;
}

static void tlb_entry_drop(struct tlb_entry *e)
{
    e->tag_r = e->tag_w = e->tag_x = TLB_INVALID;
}

void emu_tlb_flush(struct emu_cpu *c, bool include_global)
{
    emu_jc_flush(c);
    for (int t = 0; t < 2; t++)
        for (unsigned i = 0; i < TLB_SIZE; i++) {
            if (include_global || !c->tlb[t][i].global) tlb_entry_drop(&c->tlb[t][i]);
            if (include_global || !c->tlb_victim[t][i].global) tlb_entry_drop(&c->tlb_victim[t][i]);
        }
}

void emu_tlb_flush_gpa(struct emu_cpu *c, uint64_t gpa)
{
    uint64_t page = gpa & ~0xfffull;
    for (int t = 0; t < 2; t++)
        for (unsigned i = 0; i < TLB_SIZE; i++) {
            if ((c->tlb[t][i].gpa & ~0xfffull) == page) tlb_entry_drop(&c->tlb[t][i]);
            if ((c->tlb_victim[t][i].gpa & ~0xfffull) == page) tlb_entry_drop(&c->tlb_victim[t][i]);
        }
}

void emu_tlb_flush_page(struct emu_cpu *c, uint64_t lin)
{
    emu_jc_flush(c);
    for (int t = 0; t < 2; t++) {
        tlb_entry_drop(&c->tlb[t][TLB_INDEX(lin)]);
        tlb_entry_drop(&c->tlb_victim[t][TLB_INDEX(lin)]);
    }
}

_Noreturn static void machine_check(struct emu_cpu *c, uint64_t gpa, int err)
{
    if (err == -ESHUTDOWN) { /* the VM is stopping: memory went away under us */
        c->stop_reason = VCPU_EXIT_STOP;
        emu_raise(c, -1, 0, false);
    }
    fprintf(stderr, "unum: vcpu %d: memory fault at gpa %#llx failed (%d)\n", c->v.id,
            (unsigned long long)gpa, err);
    c->stop_reason = VCPU_EXIT_SHUTDOWN;
    emu_raise(c, -1, 0, false);
}

/* Physical read/write of page-table entries (always RAM; else the walk faults). */
static uint64_t *pte_ptr(struct emu_cpu *c, uint64_t gpa, bool *ok)
{
    /* read access only: page tables are shared by every node's vCPUs, and a
     * walk that finds its A/D bits set writes nothing */
    int err = 0;
    uint8_t *h = guest_mem_access(c->v.mem, gpa, MEM_READ, &err);
    if (err) machine_check(c, gpa, err);
    *ok = h != NULL;
    return (uint64_t *)h;
}

/* Sets accessed/dirty bits in the entry at gpa if the entry still holds `old`
 * (as the processor's locked update does). Returns false when the entry changed
 * under the walk, which must then start over. */
static bool set_bits(struct emu_cpu *c, uint64_t gpa, uint64_t old, uint64_t bits, int width)
{
    if ((old & bits) == bits) return true;
    int err = 0;
    uint8_t *h = guest_mem_access(c->v.mem, gpa, MEM_WRITE, &err);
    if (err) machine_check(c, gpa, err);
    if (!h) return true;
    if (width == 8) {
        uint64_t expect = old;
        return __atomic_compare_exchange_n((uint64_t *)h, &expect, old | bits, false,
                                           __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
    uint32_t expect = (uint32_t)old;
    return __atomic_compare_exchange_n((uint32_t *)h, &expect, (uint32_t)(old | bits), false,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

struct walk {
    uint64_t gpa;     /* translated address (of lin) */
    uint64_t page_sz; /* mapping size */
    bool writable, user, nx, global;
};

/* Page walk with protection checks; raises #PF. */
static void walk(struct emu_cpu *c, uint64_t lin, int acc, bool user, struct walk *w)
{
    bool lma = c->s.msr.efer & EFER_LMA, pae = c->s.cr4 & CR4_PAE;
    bool nxe = c->s.msr.efer & EFER_NXE;
    int levels, width;
    uint64_t table;
    if (lma) {
        levels = 4, width = 8, table = c->s.cr3 & ADDR_MASK;
    } else if (pae) {
        levels = 3, width = 8, table = c->s.cr3 & 0xffffffe0ull;
        lin = (uint32_t)lin;
    } else {
        levels = 2, width = 4, table = c->s.cr3 & 0xfffff000ull;
        lin = (uint32_t)lin;
    }
    uint32_t pfec =
        (acc == ACC_W ? PFEC_W : 0) | (user ? PFEC_U : 0) | (acc == ACC_X && (nxe) ? PFEC_I : 0);
    uint64_t root = table;
restart:
    table = root;
    bool wr = true, us = true, nx = false;
    uint64_t gpas[4];
    uint64_t vals[4];
    for (int lvl = levels; lvl >= 1; lvl--) {
        int shift, idx;
        if (width == 8) {
            shift = 12 + 9 * (lvl - 1);
            idx = (lin >> shift) & (lvl == 3 && !lma ? 3 : 511);
        } else {
            shift = 12 + 10 * (lvl - 1);
            idx = (lin >> shift) & 1023;
        }
        bool ok;
        uint64_t pte_gpa = table + (uint64_t)idx * width;
        uint64_t *p = pte_ptr(c, pte_gpa, &ok);
        if (!ok) emu_page_fault(c, lin, pfec | PFEC_RSVD);
        uint64_t e = width == 8 ? __atomic_load_n(p, __ATOMIC_RELAXED)
                                : __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
        gpas[lvl - 1] = pte_gpa;
        vals[lvl - 1] = e;
        if (!(e & PTE_P)) emu_page_fault(c, lin, pfec);
        uint64_t rsvd = 0;
        if (width == 8) {
            rsvd = ~((1ull << PHYS_BITS) - 1) & ~PTE_NX & ~(0x7ffull << 52);
            if (!nxe) rsvd |= PTE_NX;
            if (!lma && lvl == 3) rsvd |= 0x1e6ull | PTE_NX; /* PAE PDPTE: no W/U/A/D/PS */
            if (lma && lvl == 4) rsvd |= PTE_PS;
            if ((e & PTE_PS) && (lvl == 2 || lvl == 3))
                rsvd |= ((1ull << (shift - 13)) - 1) << 13; /* large-page alignment */
        }
        if (e & rsvd) emu_page_fault(c, lin, pfec | PFEC_P | PFEC_RSVD);
        if (!(!lma && width == 8 && lvl == 3)) {
            wr = wr && (e & PTE_W);
            us = us && (e & PTE_U);
            nx = nx || (nxe && (e & PTE_NX));
        }
        bool leaf = lvl == 1 || ((e & PTE_PS) && (lvl == 2 || (lvl == 3 && lma)) &&
                                 (width == 8 || (c->s.cr4 & CR4_PSE)));
        if (leaf) {
            uint64_t size = 1ull << shift, base;
            if (width == 4 && lvl == 2) /* 4 MiB page, PSE-36 bits ignored */
                base = e & 0xffc00000ull;
            else
                base = e & ADDR_MASK & ~(size - 1);
            /* protection */
            bool fault = false;
            if (user && !us) fault = true;
            if (acc == ACC_W && !wr && (user || (c->s.cr0 & CR0_WP))) fault = true;
            if (acc == ACC_X && nx) fault = true;
            if (fault) emu_page_fault(c, lin, pfec | PFEC_P);
            for (int l = levels; l > lvl; l--)
                if (!(!lma && width == 8 && l == 3))
                    if (!set_bits(c, gpas[l - 1], vals[l - 1], PTE_A, width)) goto restart;
            if (!set_bits(c, pte_gpa, e, PTE_A | (acc == ACC_W ? PTE_D : 0), width)) goto restart;
            w->gpa = base + (lin & (size - 1));
            w->page_sz = size;
            w->writable = wr;
            w->user = us;
            w->nx = nx;
            w->global = (e & PTE_G) && (c->s.cr4 & CR4_PGE);
            return;
        }
        table = (width == 8 ? e & ADDR_MASK : e & 0xfffff000ull);
    }
}

uint64_t emu_translate(struct emu_cpu *c, uint64_t lin, int acc, bool user)
{
    if (c->mode == MODE_LONG64 && !canonical(lin)) emu_gp(c, 0);
    if (!(c->s.cr0 & CR0_PG)) return c->mode == MODE_LONG64 ? lin : (uint32_t)lin;
    struct walk w;
    walk(c, lin, acc, user, &w);
    return w.gpa;
}

/* The linear page an entry holds, or TLB_INVALID. */
static uint64_t tlb_entry_page(const struct tlb_entry *e)
{
    return e->tag_r != TLB_INVALID ? e->tag_r : e->tag_x != TLB_INVALID ? e->tag_x : e->tag_w;
}

/* A miss whose page the victim way holds with the access allowed: the two ways
 * swap, and the access goes on as a hit. */
static bool tlb_victim_hit(struct emu_cpu *c, uint64_t lin, int acc, bool user)
{
    unsigned i = TLB_INDEX(lin);
    struct tlb_entry *v = &c->tlb_victim[user][i];
    uint64_t tag = acc == ACC_W ? v->tag_w : acc == ACC_R ? v->tag_r : v->tag_x;
    if (tag != (lin & ~0xfffull)) return false;
    struct tlb_entry e = c->tlb[user][i];
    c->tlb[user][i] = *v;
    *v = e;
    return true;
}

/* Translates and installs a TLB entry for one page. Returns the host pointer
 * for lin, or NULL for MMIO (with *gpa set). */
static uint8_t *tlb_fill(struct emu_cpu *c, uint64_t lin, int acc, bool user, uint64_t *gpa_out)
{
    if (tlb_victim_hit(c, lin, acc, user)) {
        const struct tlb_entry *e = &c->tlb[user][TLB_INDEX(lin)];
        *gpa_out = e->gpa | (lin & 0xfff);
        return (uint8_t *)(uintptr_t)(lin + e->addend);
    }
    bool paging = c->s.cr0 & CR0_PG;
    struct walk w = {0};
    if (c->mode == MODE_LONG64 && !canonical(lin)) emu_gp(c, 0);
    if (paging) {
        walk(c, lin, acc, user, &w);
    } else {
        w.gpa = c->mode == MODE_LONG64 ? lin : (uint32_t)lin;
        w.writable = w.user = true;
    }
    *gpa_out = w.gpa;
    int err = 0;
    uint8_t *host = guest_mem_access(c->v.mem, w.gpa, acc == ACC_W ? MEM_WRITE : MEM_READ, &err);
    if (err) machine_check(c, w.gpa, err);
    if (!host) return NULL;
    struct tlb_entry *e = &c->tlb[user][TLB_INDEX(lin)];
    uint64_t vpage = lin & ~0xfffull;
    {
        uintptr_t addend = (uintptr_t)(host - (lin & 0xfff)) - vpage;
        if (e->addend != addend || e->gpa != (w.gpa & ~0xfffull)) {
            /* another page: the one there moves to the victim way */
            uint64_t held = tlb_entry_page(e);
            if (held != TLB_INVALID && held != vpage) c->tlb_victim[user][TLB_INDEX(lin)] = *e;
            tlb_entry_drop(e);
        }
        e->addend = addend;
        e->gpa = w.gpa & ~0xfffull;
        e->global = w.global;
        /* Only the access that was checked gets a tag: a read fill must not allow
         * writes, which need the dirty bit set by a write walk. */
        if (acc == ACC_W) {
            e->tag_w = vpage;
            e->tag_r = vpage;
        } else if (acc == ACC_R) {
            e->tag_r = vpage;
        } else {
            e->tag_x = vpage;
        }
    }
    return host;
}

static bool is_user_access(struct emu_cpu *c)
{
    return c->cpl == 3;
}

static uint64_t mmio(struct emu_cpu *c, uint64_t gpa, int size, bool write, uint64_t val)
{
    struct cpu_io io = {.kind = CPU_IO_MMIO,
                        .write = write,
                        .size = (uint8_t)size,
                        .addr = gpa,
                        .data = write ? val : 0};
    vcpu_leave_guest(&c->v);
    bool guest_csr = emu_mxcsr_host(c); /* MXCSR: device code runs under the host's */
    c->v.ops->io(c->v.ctx, &io);
    if (guest_csr) emu_mxcsr_guest(c);
    atomic_store_explicit(&c->v.in_guest, 1, memory_order_seq_cst);
    if (atomic_load(&c->v.requests) & VCPU_REQ_FLUSH) emu_handle_flush(c);
    return io.data & szmask(size);
}

static uint64_t read_one_page(struct emu_cpu *c, uint64_t lin, int size, int acc, bool user)
{
    uint64_t gpa;
    uint8_t *h = tlb_fill(c, lin, acc, user, &gpa);
    if (h) return load_host(h, size);
    return mmio(c, gpa, size, false, 0);
}

static uint64_t read_sized(struct emu_cpu *c, uint64_t lin, int size, int acc, bool user)
{
    if ((lin & 0xfff) + size <= 4096) return read_one_page(c, lin, size, acc, user);
    /* split across pages: translate both before reading so a fault on the
     * second page happens before any MMIO side effect */
    int n1 = 4096 - (lin & 0xfff);
    uint64_t g;
    tlb_fill(c, lin + n1, acc, user, &g);
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v |= read_one_page(c, lin + i, 1, acc, user) << (8 * i);
    return v;
}

uint64_t emu_read_slow(struct emu_cpu *c, uint64_t lin, int size, int acc)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (acc == ACC_R && e->tag_r == (lin & ~0xfffull) && (lin & 0xfff) <= 4096u - size)
        return load_host((const void *)(uintptr_t)(lin + e->addend), size); /* misaligned */
    return read_sized(c, lin, size, acc, is_user_access(c));
}

uint64_t emu_read_sys(struct emu_cpu *c, uint64_t lin, int size)
{
    return read_sized(c, lin, size, ACC_R, false);
}

static void write_sized(struct emu_cpu *c, uint64_t lin, int size, uint64_t val, bool user)
{
    uint64_t gpa;
    if ((lin & 0xfff) + size <= 4096) {
        uint8_t *h = tlb_fill(c, lin, ACC_W, user, &gpa);
        if (h) {
            store_host(h, size, val);
            emu_code_written(c, gpa, size);
        } else {
            mmio(c, gpa, size, true, val);
        }
        return;
    }
    int n1 = 4096 - (lin & 0xfff);
    uint64_t g1, g2;
    uint8_t *h1 = tlb_fill(c, lin, ACC_W, user, &g1);
    uint8_t *h2 = tlb_fill(c, lin + n1, ACC_W, user, &g2);
    for (int i = 0; i < size; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        if (i < n1) {
            if (h1)
                h1[i] = b;
            else
                mmio(c, g1 + i, 1, true, b);
        } else {
            if (h2)
                h2[i - n1] = b;
            else
                mmio(c, g2 + i - n1, 1, true, b);
        }
    }
    if (h1) emu_code_written(c, g1, n1);
    if (h2) emu_code_written(c, g2, size - n1);
}

void emu_write_slow(struct emu_cpu *c, uint64_t lin, int size, uint64_t val)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (e->tag_w == (lin & ~0xfffull) && (lin & 0xfff) <= 4096u - size) { /* misaligned */
        store_host((void *)(uintptr_t)(lin + e->addend), size, val);
        emu_code_written(c, e->gpa | (lin & 0xfff), size);
        return;
    }
    write_sized(c, lin, size, val, is_user_access(c));
}

void emu_write_sys(struct emu_cpu *c, uint64_t lin, int size, uint64_t val)
{
    write_sized(c, lin, size, val, false);
}

void *emu_ptr_rmw(struct emu_cpu *c, uint64_t lin, int size)
{
    if ((lin & 0xfff) + size > 4096) return NULL;
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    uint8_t *h;
    uint64_t gpa;
    if (e->tag_w == (lin & ~0xfffull)) {
        h = (uint8_t *)(uintptr_t)(lin + e->addend);
        gpa = e->gpa | (lin & 0xfff);
    } else {
        h = tlb_fill(c, lin, ACC_W, is_user_access(c), &gpa);
        if (!h) return NULL;
    }
    emu_code_written(c, gpa, size);
    return h;
}

/* Linear address of a ModRM memory operand in the less common shapes. */
uint64_t emu_ea_linear(struct emu_cpu *c, const struct insn *in, uint64_t off)
{
    if (c->mode == MODE_LONG64) {
        if (in->seg >= SEG_FS && in->seg <= SEG_GS)
            off += c->s.seg[in->seg].base;
        else if (in->seg == SEG_SS && unlikely(!canonical(off)))
            emu_raise(c, EXC_SS, 0, true); /* stack references fault with #SS */
        return off;
    }
    return (uint32_t)(off + c->s.seg[in->seg].base);
}

uint64_t emu_ea_general(struct emu_cpu *c, const struct insn *in)
{
    return emu_ea_linear(c, in, emu_ea_off(c, in));
}

void *emu_ptr_read(struct emu_cpu *c, uint64_t lin)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (e->tag_r == (lin & ~0xfffull)) return (uint8_t *)(uintptr_t)(lin + e->addend);
    uint64_t gpa;
    return tlb_fill(c, lin, ACC_R, is_user_access(c), &gpa);
}

void emu_read_bytes(struct emu_cpu *c, uint64_t lin, void *dst, int n, int acc)
{
    uint8_t *d = dst;
    for (int i = 0; i < n; i++)
        d[i] = (uint8_t)(acc == ACC_R ? vm_read(c, lin + i, 1) : emu_read_slow(c, lin + i, 1, acc));
}

void emu_probe_write(struct emu_cpu *c, uint64_t lin, int n)
{
    if (n <= 0) return;
    uint64_t g, last = lin + n - 1;
    tlb_fill(c, lin, ACC_W, is_user_access(c), &g);
    /* a fault on the second page reports its first byte in CR2 */
    if ((lin ^ last) >> 12) tlb_fill(c, last & ~0xfffull, ACC_W, is_user_access(c), &g);
}

void emu_write_bytes(struct emu_cpu *c, uint64_t lin, const void *src, int n)
{
    emu_probe_write(c, lin, n); /* both ends first: a fault leaves memory untouched */
    const uint8_t *s = src;
    for (int i = 0; i < n; i++)
        vm_write(c, lin + i, 1, s[i]);
}

/* Instruction fetch: host pointer to the code at lin and the bytes available in
 * its page (for the decoder), or NULL if the code is not in RAM. */
uint8_t *emu_fetch_ptr(struct emu_cpu *c, uint64_t lin, uint64_t *gpa, int *avail)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    uint8_t *h;
    if (e->tag_x == (lin & ~0xfffull)) {
        h = (uint8_t *)(uintptr_t)(lin + e->addend);
        *gpa = e->gpa | (lin & 0xfff);
    } else {
        h = tlb_fill(c, lin, ACC_X, is_user_access(c), gpa);
    }
    *avail = 4096 - (int)(lin & 0xfff);
    return h;
}

/* Stack references outside the canonical range fault with #SS, not #GP. */
static void check_stack_canonical(struct emu_cpu *c, uint64_t lin, int size)
{
    if (c->mode == MODE_LONG64 && (!canonical(lin) || !canonical(lin + size - 1)))
        emu_raise(c, EXC_SS, 0, true);
}

void emu_push(struct emu_cpu *c, int size, uint64_t v)
{
    uint64_t rsp = c->s.gpr[RSP] - size;
    int ss = stack_size(c);
    if (ss == 4)
        rsp = (uint32_t)rsp;
    else if (ss == 2)
        rsp = (uint16_t)rsp;
    check_stack_canonical(c, rsp, size);
    vm_write(c, emu_lin(c, SEG_SS, rsp), size, v);
    set_rsp_sized(c, rsp);
}

uint64_t emu_stack_peek(struct emu_cpu *c, int size, int offset)
{
    uint64_t rsp = c->s.gpr[RSP] + offset;
    int ss = stack_size(c);
    if (ss == 4)
        rsp = (uint32_t)rsp;
    else if (ss == 2)
        rsp = (uint16_t)rsp;
    check_stack_canonical(c, rsp, size);
    return vm_read(c, emu_lin(c, SEG_SS, rsp), size);
}

uint64_t emu_pop(struct emu_cpu *c, int size)
{
    uint64_t v = emu_stack_peek(c, size, 0);
    set_rsp_sized(c, c->s.gpr[RSP] + size);
    return v;
}
