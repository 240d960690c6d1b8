/* Hostile-input robustness: random instruction bytes executed in real mode,
 * 32-bit protected mode and 64-bit long mode, with random registers and random
 * device answers. Whatever the guest does, the host must survive and the vCPU
 * must end in a defined way (halt in an exception stub, instruction budget, or
 * triple fault). Runs under ASan/UBSan with `make check SAN=1`; `make fuzz`
 * explores the same path coverage-guided. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "common/tiny_guest.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_io(void *ctx, struct cpu_io *io)
{
    if (!io->write) io->data = rnd();
}

static void run_random(enum tg_mode mode, int iterations)
{
    struct tiny_guest g;
    assert_int_equal(tiny_guest_init(&g, random_io), 0);
    int halted = 0, stopped = 0, shutdown = 0;
    for (int it = 0; it < iterations; it++) {
        uint8_t code[256];
        /* random bytes, biased toward prefixes and escapes */
        for (int i = 0; i < 256; i++) {
            code[i] = (uint8_t)rnd();
            if ((rnd() & 7) == 0)
                code[i] = (uint8_t[]){0x0f, 0x66, 0x67, 0xf3, 0xf2, 0xf0, 0x48, 0x41}[rnd() & 7];
        }
        tiny_guest_load(&g, mode, code, sizeof(code));
        struct x86_state s;
        emu_cpu_impl.get_state(g.vcpu, &s);
        for (int r = 0; r < 16; r++)
            if (r != RSP) s.gpr[r] = (rnd() & 1) ? rnd() : (rnd() & 0xffff);
        emu_cpu_impl.set_state(g.vcpu, &s);
        enum vcpu_exit_reason r = tiny_guest_run(&g, 2000);
        assert_true(r == VCPU_EXIT_HLT || r == VCPU_EXIT_STOP || r == VCPU_EXIT_SHUTDOWN);
        halted += r == VCPU_EXIT_HLT;
        stopped += r == VCPU_EXIT_STOP;
        shutdown += r == VCPU_EXIT_SHUTDOWN;
    }
    print_message("mode %d: %d runs: %d halted, %d hit the budget, %d triple faults\n", mode,
                  iterations, halted, stopped, shutdown);
    /* random code overwhelmingly ends in an exception stub */
    assert_true(halted > iterations / 2);
    tiny_guest_destroy(&g);
}

static int iterations(void)
{
    const char *e = getenv("UNUM_LONG");
    return e && *e == '1' ? 200000 : 4000;
}

static void test_random_real(void **state)
{
    run_random(TG_REAL, iterations());
}
static void test_random_prot32(void **state)
{
    run_random(TG_PROT32, iterations());
}
static void test_random_long64(void **state)
{
    run_random(TG_LONG64, iterations());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_real),
        cmocka_unit_test(test_random_prot32),
        cmocka_unit_test(test_random_long64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
