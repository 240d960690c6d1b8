/* Hostile-input robustness of the platform: millions of random port and MMIO
 * accesses (biased toward where the devices live, from two vCPUs' points of view)
 * against a whole PC machine. The host must survive, devices keep working. Runs
 * under ASan/UBSan with `make check SAN=1`; `make fuzz` explores it coverage-guided. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "common/platform_poke.h"
#include "cpu/cpu.h"
#include "machine/pc.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random_accesses(void **state)
{
    struct pc *pc = platform_poke_machine();
    const char *e = getenv("UNUM_LONG");
    int rounds = e && *e == '1' ? 100000 : 2000;
    uint8_t buf[12 * 256];
    size_t done = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)rnd();
        done += platform_poke(pc, buf, sizeof(buf));
    }
    /* the machine still answers sensibly: the PCI host bridge's vendor ID */
    struct cpu_io sel = {
        .kind = CPU_IO_PIO, .write = true, .size = 4, .addr = 0xcf8, .data = 0x80000000};
    struct cpu_io rd = {.kind = CPU_IO_PIO, .write = false, .size = 2, .addr = 0xcfc};
    pc_access(pc, 0, &sel);
    pc_access(pc, 0, &rd);
    print_message("%zu accesses\n", done);
    assert_int_equal(rd.data, 0x8086);
    assert_int_equal(done, (size_t)rounds * 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_random_accesses)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
