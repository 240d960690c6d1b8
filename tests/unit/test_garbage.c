/* Hostile-input robustness: random instruction bytes executed in real mode,
 * 32-bit protected mode and 64-bit long mode, with random registers and random
 * device answers. Whatever the guest does, the host must survive and the vCPU
 * must end in a defined way (halt in an exception stub, instruction budget, or
 * triple fault). Runs under ASan/UBSan with `make check SAN=1`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/emu/emu_api.h"

#define MEM_SIZE  (16u << 20)
#define PML4      0x1000
#define GDT       0x5000
#define IDT       0x6000
#define STUBS     0x7000 /* vector v: HLT at STUBS + v */
#define CODE      0x10000
#define STACK_TOP 0x80000
#define TABLES_END 0x8000

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void io(void *ctx, struct cpu_io *io)
{
    if (!io->write)
        io->data = rnd();
}
static int irq_ack(void *ctx) { return -1; }
static const struct cpu_exit_ops ops = {.io = io, .irq_ack = irq_ack};

static void put64(uint8_t *m, uint64_t a, uint64_t v) { memcpy(m + a, &v, 8); }

static void build_tables(uint8_t *m, bool lm)
{
    memset(m, 0, TABLES_END);
    put64(m, PML4, 0x2000 | 3);
    put64(m, 0x2000, 0x3000 | 3);
    for (uint64_t i = 0; i < 512; i++)
        put64(m, 0x3000 + i * 8, (i << 21) | 0x83);
    put64(m, GDT + 0x08, lm ? 0x00209b0000000000ull : 0x00cf9b000000ffffull);
    put64(m, GDT + 0x10, 0x00cf93000000ffffull);
    for (int v = 0; v < 256; v++) {
        uint64_t off = STUBS + v;
        uint64_t lo = (off & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((off >> 16) & 0xffff) << 48;
        if (lm) {
            put64(m, IDT + v * 16, lo);
            put64(m, IDT + v * 16 + 8, 0);
        } else {
            put64(m, IDT + v * 8, lo);
        }
        /* real-mode IVT lives at 0: segment 0, offset STUBS + v */
    }
    memset(m + STUBS, 0xf4, 0x100);
}

static void set_mode(struct x86_state *s, int mode)
{
    uint64_t apic = s->msr.apic_base;
    if (mode == 0) {
        x86_state_reset(s);
        s->seg[SEG_CS].sel = 0;
        s->seg[SEG_CS].base = 0;
        s->rip = CODE;
        s->gpr[RSP] = 0x7ff0;
        s->idtr = (struct x86_dtable){.base = IDT, .limit = 0x3ff};
    } else {
        x86_state_flat32(s, CODE);
        s->gdtr = (struct x86_dtable){.base = GDT, .limit = 0x17};
        s->cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_PAE;
        s->cr0 |= CR0_NE | CR0_MP;
        s->gpr[RSP] = STACK_TOP;
        if (mode == 2) {
            s->cr3 = PML4;
            s->cr0 |= CR0_PG | CR0_WP;
            s->msr.efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
            s->seg[SEG_CS].attr = 0xa09b;
            s->idtr = (struct x86_dtable){.base = IDT, .limit = 0xfff};
        } else {
            s->idtr = (struct x86_dtable){.base = IDT, .limit = 0x7ff};
        }
    }
    s->msr.apic_base = apic;
}

static void run_random(int mode, int iterations)
{
    struct guest_mem m;
    assert_int_equal(guest_mem_init(&m, MEM_SIZE, 0, MEM_WRITE), 0);
    uint8_t *ram = guest_mem_host(&m, 0);
    struct vcpu *v = emu_cpu_impl.create(&m, 0, &ops, NULL);
    assert_non_null(v);
    int halted = 0, stopped = 0, shutdown = 0;
    for (int it = 0; it < iterations; it++) {
        build_tables(ram, mode == 2);
        if (mode == 0)
            for (int vec = 0; vec < 256; vec++)
                put64(ram, vec * 4, (uint32_t)(STUBS + vec)), memset(ram + vec * 4 + 4, 0, 0);
        /* random code, sometimes biased toward prefixes and 0F escapes */
        for (int i = 0; i < 256; i++) {
            uint8_t b = (uint8_t)rnd();
            if ((rnd() & 7) == 0)
                b = (uint8_t[]){0x0f, 0x66, 0x67, 0xf3, 0xf2, 0xf0, 0x48, 0x41}[rnd() & 7];
            ram[CODE + i] = b;
        }
        guest_mem_note_write(&m, 0, MEM_SIZE);
        struct x86_state s;
        emu_cpu_impl.get_state(v, &s);
        set_mode(&s, mode);
        for (int r = 0; r < 16; r++)
            if (r != RSP)
                s.gpr[r] = (rnd() & 1) ? rnd() : (rnd() & 0xffff);
        emu_cpu_impl.set_state(v, &s);
        emu_set_insn_limit(v, emu_icount(v) + 2000);
        enum vcpu_exit_reason r = vcpu_run(v);
        assert_true(r == VCPU_EXIT_HLT || r == VCPU_EXIT_STOP || r == VCPU_EXIT_SHUTDOWN);
        halted += r == VCPU_EXIT_HLT;
        stopped += r == VCPU_EXIT_STOP;
        shutdown += r == VCPU_EXIT_SHUTDOWN;
    }
    print_message("mode %d: %d runs: %d halted, %d hit the budget, %d triple faults\n", mode,
                  iterations, halted, stopped, shutdown);
    /* random code overwhelmingly ends in an exception stub */
    assert_true(halted > iterations / 2);
    emu_cpu_impl.destroy(v);
    guest_mem_destroy(&m);
}

static int iterations(void)
{
    const char *e = getenv("UNUM_LONG");
    return e && *e == '1' ? 200000 : 4000;
}

static void test_random_real(void **state) { run_random(0, iterations()); }
static void test_random_prot32(void **state) { run_random(1, iterations()); }
static void test_random_long64(void **state) { run_random(2, iterations()); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_real),
        cmocka_unit_test(test_random_prot32),
        cmocka_unit_test(test_random_long64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
