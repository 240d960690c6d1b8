/* guest.c — runs a case in the emulator.
 *
 * One guest_mem and one emu vCPU serve every case; a case is a set_state, a run
 * and a get_state. The guest is in 64-bit long mode at CPL 0 with 4-level page
 * tables that identity-map exactly the pages the test uses (code and data at the
 * native addresses) plus a small system area, so a stray access faults in the
 * guest where it would fault natively. Every IDT gate uses IST1 and points at a
 * HLT of its own (handler address = DT_HANDLERS + vector), so the vector is read
 * off the final RIP and the exception frame sits at a known place; the handler
 * touches no register. A normal completion halts on the HLT placed at the case's
 * continuation point. */
#include "difftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"

/* system area (guest-physical = linear) */
#define G_PML4     0x1000ull
#define G_PDPT     0x2000ull
#define G_PD       0x3000ull
#define G_PT_SYS   0x4000ull
#define G_PT_CODE  0x5000ull
#define G_PT_DATA  0x6000ull
#define G_GDT      0x100000ull
#define G_TSS      0x100800ull
#define G_IDT      0x101000ull
#define G_HANDLERS 0x102000ull
#define G_IST_TOP  0x105000ull /* stack page 0x104000 */
#define G_RAM      (1ull << 30)

#define PTE_PW 0x3ull /* present, writable (supervisor) */

static struct guest_mem mem;
static struct vcpu *vcpu;
static struct x86_state tmpl;
static uint8_t *g_code, *g_data;
static int dirty_lo = DT_CODE_SIZE, dirty_hi = 0;

static void io_cb(void *ctx, struct cpu_io *io)
{
    (void)ctx;
    if (!io->write) io->data = ~0ull; /* nothing is attached */
}

static int irq_ack_cb(void *ctx)
{
    (void)ctx;
    return -1;
}

static const struct cpu_exit_ops exit_ops = {.io = io_cb, .irq_ack = irq_ack_cb};

static void put64(uint64_t gpa, uint64_t v)
{
    memcpy(guest_mem_host(&mem, gpa), &v, 8);
}

int dt_guest_init(void)
{
    int err = guest_mem_init(&mem, G_RAM, 0, MEM_WRITE);
    if (err) {
        fprintf(stderr, "difftest: guest_mem_init: %d\n", err);
        return -1;
    }
    /* page tables: only the pages in use are present */
    put64(G_PML4, G_PDPT | PTE_PW);
    put64(G_PDPT, G_PD | PTE_PW);
    put64(G_PD + 8 * (G_GDT >> 21), G_PT_SYS | PTE_PW);
    put64(G_PD + 8 * (DT_CODE_BASE >> 21), G_PT_CODE | PTE_PW);
    put64(G_PD + 8 * (DT_DATA_BASE >> 21), G_PT_DATA | PTE_PW);
    for (uint64_t a = G_GDT; a < G_IST_TOP; a += 4096)
        put64(G_PT_SYS + 8 * ((a >> 12) & 511), a | PTE_PW);
    for (uint64_t a = DT_CODE_BASE; a < DT_CODE_BASE + DT_CODE_SIZE; a += 4096)
        put64(G_PT_CODE + 8 * ((a >> 12) & 511), a | PTE_PW);
    for (uint64_t a = DT_DATA_BASE; a < DT_DATA_BASE + DT_DATA_SIZE; a += 4096)
        put64(G_PT_DATA + 8 * ((a >> 12) & 511), a | PTE_PW);

    /* GDT: null, 64-bit code, data, 64-bit TSS */
    put64(G_GDT + 0x08, 0x00af9b000000ffffull);
    put64(G_GDT + 0x10, 0x00cf93000000ffffull);
    put64(G_GDT + 0x18,
          0x67 | ((G_TSS & 0xffffff) << 16) | (0x89ull << 40) | ((G_TSS >> 24 & 0xff) << 56));
    put64(G_GDT + 0x20, G_TSS >> 32);
    put64(G_TSS + 0x04, G_IST_TOP); /* RSP0 */
    put64(G_TSS + 0x24, G_IST_TOP); /* IST1 */
    for (uint64_t v = 0; v < 256; v++) {
        uint64_t h = G_HANDLERS + v;
        put64(G_IDT + 16 * v, (h & 0xffff) | (0x08ull << 16) | (1ull << 32) | (0x8eull << 40) |
                                  ((h >> 16 & 0xffff) << 48));
        put64(G_IDT + 16 * v + 8, h >> 32);
    }
    memset(guest_mem_host(&mem, G_HANDLERS), 0xf4, 4096);

    g_code = guest_mem_host(&mem, DT_CODE_BASE);
    g_data = guest_mem_host(&mem, DT_DATA_BASE);
    memset(g_code, 0xf4, DT_CODE_SIZE);

    struct x86_state *s = &tmpl;
    x86_state_reset(s);
    s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s->cr3 = G_PML4;
    s->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s->msr.efer = EFER_LME | EFER_LMA | EFER_SCE | EFER_NXE;
    s->seg[SEG_CS] = (struct x86_seg){.base = 0,
                                      .limit = 0xffffffff,
                                      .attr = 0xb | SEGA_S | SEGA_P | SEGA_L | SEGA_G,
                                      .sel = 0x08};
    for (int i = 0; i < 6; i++)
        if (i != SEG_CS)
            s->seg[i] = (struct x86_seg){.base = 0,
                                         .limit = 0xffffffff,
                                         .attr = 0x3 | SEGA_S | SEGA_P | SEGA_DB | SEGA_G,
                                         .sel = 0x10};
    s->ldtr = (struct x86_seg){.attr = SEGA_UNUSABLE};
    s->tr = (struct x86_seg){.base = G_TSS, .limit = 0x67, .attr = 0x8b, .sel = 0x18};
    s->gdtr = (struct x86_dtable){.base = G_GDT, .limit = 0x27};
    s->idtr = (struct x86_dtable){.base = G_IDT, .limit = 0xfff};

    vcpu = emu_cpu_impl.create(&mem, 0, &exit_ops, NULL);
    if (!vcpu) {
        fprintf(stderr, "difftest: cannot create the emu vCPU\n");
        return -1;
    }
    return 0;
}

static uint64_t get64(uint64_t gpa)
{
    uint64_t v;
    memcpy(&v, guest_mem_host(&mem, gpa), 8);
    return v;
}

void dt_guest_run(const struct dt_case *c, struct dt_result *r)
{
    /* code page: previous bytes back to HLT, this case's bytes in; the write
     * notification drops decoded blocks of the old code */
    if (dirty_hi > dirty_lo) {
        memset(g_code + dirty_lo, 0xf4, (size_t)(dirty_hi - dirty_lo));
        guest_mem_note_write(&mem, DT_CODE_BASE + (uint64_t)dirty_lo,
                             (uint64_t)(dirty_hi - dirty_lo));
    }
    dirty_lo = c->entry, dirty_hi = c->entry + c->len;
    memcpy(g_code + c->entry, c->code, (size_t)c->len);
    guest_mem_note_write(&mem, DT_CODE_BASE + (uint64_t)c->entry, (uint64_t)c->len);
    memcpy(g_data, c->mem, DT_DATA_SIZE);
    guest_mem_note_write(&mem, DT_DATA_BASE, DT_DATA_SIZE);

    static struct x86_state s;
    s = tmpl;
    memcpy(s.gpr, c->in.gpr, sizeof(s.gpr));
    s.rip = DT_CODE_BASE + (uint64_t)c->entry;
    /* IF as natively (user mode runs with IF=1); no interrupt source exists */
    s.rflags = c->in.rflags | FL_IF | FL_1;
    dt_fx_to_fpu(&c->in.fx, &s.fpu);
    emu_cpu_impl.set_state(vcpu, &s);

    dt_set_phase(2);
    enum vcpu_exit_reason why = vcpu_run(vcpu);
    dt_set_phase(0);
    emu_cpu_impl.get_state(vcpu, &s);

    memcpy(r->out.gpr, s.gpr, sizeof(r->out.gpr));
    r->out.rflags = s.rflags;
    dt_fpu_to_fx(&s.fpu, &r->out.fx);
    r->have_ftw = true;
    r->ftw = s.fpu.ftw;
    r->mem = g_data;
    r->path = -1;
    r->rip = s.rip;
    if (why != VCPU_EXIT_HLT) {
        r->exc = DT_EXC_SHUTDOWN;
        return;
    }
    uint64_t at = s.rip - 1;
    for (int k = 0; k < c->ncont; k++)
        if (at == DT_CODE_BASE + (uint64_t)c->cont[k]) {
            r->exc = DT_EXC_NONE;
            r->path = k;
            return;
        }
    if (at - G_HANDLERS < 256) {
        /* exception: state at the fault comes from the IST frame */
        r->exc = (int)(at - G_HANDLERS);
        r->rip = get64(G_IST_TOP - 40);
        r->out.rflags = get64(G_IST_TOP - 24);
        r->out.gpr[RSP] = get64(G_IST_TOP - 16);
        return;
    }
    r->exc = DT_EXC_STRAY;
}
