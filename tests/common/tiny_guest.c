/* tiny_guest.c — see tiny_guest.h. */
#include "tiny_guest.h"

#include <string.h>

#include "cpu/emu/emu_api.h"

#define PML4       0x1000
#define GDT        0x5000
#define IDT        0x6000
#define TABLES_END 0x8000

static void default_io(void *ctx, struct cpu_io *io)
{
    if (!io->write) io->data = ~0ull;
}
static int no_irq(void *ctx)
{
    return -1;
}
static struct cpu_exit_ops ops;

static void put64(uint8_t *m, uint64_t a, uint64_t v)
{
    memcpy(m + a, &v, 8);
}

int tiny_guest_init(struct tiny_guest *g, void (*io)(void *, struct cpu_io *))
{
    return tiny_guest_init_poll(g, io, NULL, 0);
}

int tiny_guest_init_poll(struct tiny_guest *g, void (*io)(void *, struct cpu_io *),
                         void (*poll)(void *), uint32_t poll_insns)
{
    if (guest_mem_init(&g->mem, TG_MEM_SIZE, 0, MEM_WRITE) < 0) return -1;
    g->ram = guest_mem_host(&g->mem, 0);
    ops.io = io ? io : default_io;
    ops.irq_ack = no_irq;
    ops.poll = poll;
    ops.poll_insns = poll_insns;
    ops.poll_wanted = NULL;
    g->vcpu = emu_cpu_impl.create(&g->mem, 0, &ops, g);
    return g->vcpu ? 0 : -1;
}

void tiny_guest_set_poll_wanted(struct tiny_guest *g, bool (*wanted)(void *))
{
    (void)g;
    ops.poll_wanted = wanted;
}

void tiny_guest_destroy(struct tiny_guest *g)
{
    emu_cpu_impl.destroy(g->vcpu);
    guest_mem_destroy(&g->mem);
}

static void build_tables(uint8_t *m, enum tg_mode mode)
{
    memset(m, 0, TABLES_END);
    put64(m, PML4, 0x2000 | 3);
    put64(m, 0x2000, 0x3000 | 3);
    for (uint64_t i = 0; i < 512; i++)
        put64(m, 0x3000 + i * 8, (i << 21) | 0x83);
    put64(m, GDT + 0x08, mode == TG_LONG64 ? 0x00209b0000000000ull : 0x00cf9b000000ffffull);
    put64(m, GDT + 0x10, 0x00cf93000000ffffull);
    for (int v = 0; v < 256; v++) {
        uint64_t off = TG_STUBS + v;
        uint64_t gate =
            (off & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((off >> 16) & 0xffff) << 48;
        if (mode == TG_LONG64)
            put64(m, IDT + v * 16, gate);
        else if (mode == TG_PROT32)
            put64(m, IDT + v * 8, gate);
        else
            put64(m, v * 4, off); /* real-mode IVT at 0: segment 0 */
    }
    memset(m + TG_STUBS, 0xf4, 0x100);
}

void tiny_guest_load(struct tiny_guest *g, enum tg_mode mode, const uint8_t *code, size_t len)
{
    build_tables(g->ram, mode);
    if (len > TG_STACK_TOP - TG_CODE - 0x1000) len = TG_STACK_TOP - TG_CODE - 0x1000;
    memcpy(g->ram + TG_CODE, code, len);
    guest_mem_note_write(&g->mem, 0, TG_STACK_TOP);
    struct x86_state s;
    emu_cpu_impl.get_state(g->vcpu, &s);
    uint64_t apic = s.msr.apic_base;
    if (mode == TG_REAL) {
        x86_state_reset(&s);
        s.seg[SEG_CS].sel = 0;
        s.seg[SEG_CS].base = 0;
        s.rip = TG_CODE;
        s.gpr[RSP] = 0x7ff0;
        s.idtr = (struct x86_dtable){.base = 0, .limit = 0x3ff};
    } else {
        x86_state_flat32(&s, TG_CODE);
        s.gdtr = (struct x86_dtable){.base = GDT, .limit = 0x17};
        s.cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_PAE;
        s.cr0 |= CR0_NE | CR0_MP;
        s.gpr[RSP] = TG_STACK_TOP;
        s.idtr = (struct x86_dtable){.base = IDT, .limit = 0x7ff};
        if (mode == TG_LONG64) {
            s.cr3 = PML4;
            s.cr0 |= CR0_PG | CR0_WP;
            s.msr.efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
            s.seg[SEG_CS].attr = 0xa09b;
            s.idtr.limit = 0xfff;
        }
    }
    s.msr.apic_base = apic;
    emu_cpu_impl.set_state(g->vcpu, &s);
}

enum vcpu_exit_reason tiny_guest_run(struct tiny_guest *g, uint64_t max_insns)
{
    emu_set_insn_limit(g->vcpu, emu_icount(g->vcpu) + max_insns);
    return vcpu_run(g->vcpu);
}
