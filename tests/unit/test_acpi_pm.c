/* ACPI PM tests through the port router: ACPI enable/disable via SMI_CMD, S5
 * power-off and other sleep types, the PM timer's rate and monotonicity, power
 * button and timer-carry SCIs with write-1-to-clear status, reset through 0xCF9 and
 * the i8042, the i8042's answers, the POST port and a hostile register fuzz. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "common/fake_dev.h"
#include "devices/acpi_pm.h"
#include "devices/timer.h"
#include "machine/router.h"

struct fixture {
    struct timer_service ts;
    struct router r;
    struct acpi_pm pm;
    struct fake_irq sci;
    _Atomic int power_offs, resets;
};

static void on_power_off(void *opaque)
{
    ((struct fixture *)opaque)->power_offs++;
}
static void on_reset(void *opaque)
{
    ((struct fixture *)opaque)->resets++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(timer_service_start(&f->ts), 0);
    router_init(&f->r);
    struct irq_line line = {.set = fake_irq_set, .opaque = &f->sci, .pin = ACPI_SCI_IRQ};
    acpi_pm_init(&f->pm, &f->ts, &line, on_power_off, on_reset, f);
    assert_int_equal(acpi_pm_register(&f->pm, &f->r), 0);
    assert_int_equal(acpi_pm_register_rcr(&f->pm, &f->r), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    timer_service_stop(&f->ts);
    acpi_pm_destroy(&f->pm);
    free(f);
    return 0;
}

static uint32_t in(struct fixture *f, uint16_t port, int size)
{
    return (uint32_t)pio_in(&f->r, port, size);
}

static void out(struct fixture *f, uint16_t port, int size, uint32_t v)
{
    pio_out(&f->r, port, size, v);
}

static void sleep_ms(int ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void test_acpi_enable(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(in(f, ACPI_PM1A_CNT_BLK, 2) & ACPI_PM1_SCI_EN, 0);
    out(f, ACPI_SMI_CMD_PORT, 1, ACPI_ENABLE_VALUE);
    assert_int_equal(in(f, ACPI_PM1A_CNT_BLK, 2) & ACPI_PM1_SCI_EN, ACPI_PM1_SCI_EN);
    out(f, ACPI_SMI_CMD_PORT, 1, 0x55); /* unknown commands change nothing */
    assert_int_equal(in(f, ACPI_PM1A_CNT_BLK, 2) & ACPI_PM1_SCI_EN, ACPI_PM1_SCI_EN);
    out(f, ACPI_SMI_CMD_PORT, 1, ACPI_DISABLE_VALUE);
    assert_int_equal(in(f, ACPI_PM1A_CNT_BLK, 2) & ACPI_PM1_SCI_EN, 0);
}

static void test_sleep(void **state)
{
    struct fixture *f = *state;
    out(f, ACPI_SMI_CMD_PORT, 1, ACPI_ENABLE_VALUE);
    /* ACPICA: SLP_TYP first, then SLP_TYP | SLP_EN */
    uint16_t cnt = (uint16_t)in(f, ACPI_PM1A_CNT_BLK, 2);
    cnt |= 1 << ACPI_PM1_SLP_TYP_SHIFT; /* some other state (S1) */
    out(f, ACPI_PM1A_CNT_BLK, 2, cnt);
    out(f, ACPI_PM1A_CNT_BLK, 2, cnt | ACPI_PM1_SLP_EN);
    assert_int_equal(f->power_offs, 0);
    assert_true(in(f, ACPI_PM1A_EVT_BLK, 2) & ACPI_PM1_WAK); /* "woke up" at once */
    assert_int_equal(in(f, ACPI_PM1A_CNT_BLK, 2) & ACPI_PM1_SLP_EN, 0);
    out(f, ACPI_PM1A_EVT_BLK, 2, ACPI_PM1_WAK);
    assert_int_equal(in(f, ACPI_PM1A_EVT_BLK, 2) & ACPI_PM1_WAK, 0);

    cnt = (uint16_t)((cnt & ~(7 << ACPI_PM1_SLP_TYP_SHIFT)) | ACPI_SLP_TYP_S5
                                                                  << ACPI_PM1_SLP_TYP_SHIFT);
    out(f, ACPI_PM1A_CNT_BLK, 2, cnt);
    assert_int_equal(f->power_offs, 0);
    /* as two byte writes: the high byte carries SLP_TYP and SLP_EN */
    out(f, ACPI_PM1A_CNT_BLK, 1, cnt & 0xFF);
    out(f, ACPI_PM1A_CNT_BLK + 1, 1, (cnt | ACPI_PM1_SLP_EN) >> 8);
    assert_int_equal(f->power_offs, 1);
}

/* The counter runs at 3.579545 MHz of host time. Each read is bracketed by clock
 * reads, so the counter advance between two reads must lie between the ticks of
 * the inner and the outer interval: exact, whatever the scheduler does. */
static void test_pm_timer(void **state)
{
    struct fixture *f = *state;
    uint64_t ta1 = clock_ns();
    uint32_t first = in(f, ACPI_PM_TMR_BLK, 4);
    uint64_t tb1 = clock_ns();
    assert_int_equal(first >> 24, 0);
    uint32_t prev = first;
    int changes = 0;
    while (clock_ns() - tb1 < 100000000ull) {
        uint32_t v = in(f, ACPI_PM_TMR_BLK, 4);
        assert_int_equal(v >> 24, 0);
        uint32_t delta = (v - prev) & 0xFFFFFF;
        assert_true(delta < 0x800000); /* never backwards */
        changes += delta != 0;
        prev = v;
    }
    uint64_t ta2 = clock_ns();
    uint32_t last = in(f, ACPI_PM_TMR_BLK, 4);
    uint64_t tb2 = clock_ns();
    double adv = (double)((last - first) & 0xFFFFFF);
    double lo_t = (double)(ta2 - tb1) * 3.579545e-3, hi_t = (double)(tb2 - ta1) * 3.579545e-3;
    print_message("PM timer: advanced %.0f ticks, bracket [%.0f, %.0f]\n", adv, lo_t, hi_t);
    assert_true(adv >= lo_t - 1 && adv <= hi_t + 1);
    assert_true(changes > 100);
    /* word and byte reads see the same counter */
    uint32_t lo = in(f, ACPI_PM_TMR_BLK, 2), hi = in(f, ACPI_PM_TMR_BLK + 2, 1);
    assert_true(((hi << 16 | lo) - first) & 0xFFFFFF);
    out(f, ACPI_PM_TMR_BLK, 4, 0); /* read-only */
    assert_true(((in(f, ACPI_PM_TMR_BLK, 4) - first) & 0xFFFFFF) > 300000);
}

static void test_power_button_sci(void **state)
{
    struct fixture *f = *state;
    assert_false(acpi_pm_power_button(&f->pm)); /* legacy mode: OS can't see it */
    assert_int_equal(f->sci.level, 0);
    out(f, ACPI_PM1A_EVT_BLK, 2, 0xFFFF); /* clear everything */
    out(f, ACPI_SMI_CMD_PORT, 1, ACPI_ENABLE_VALUE);
    out(f, ACPI_PM1A_EVT_BLK + 2, 2, ACPI_PM1_PWRBTN);
    assert_int_equal(in(f, ACPI_PM1A_EVT_BLK + 2, 2), ACPI_PM1_PWRBTN);
    assert_true(acpi_pm_power_button(&f->pm));
    assert_int_equal(f->sci.level, 1);
    assert_true(in(f, ACPI_PM1A_EVT_BLK, 4) & ACPI_PM1_PWRBTN);
    out(f, ACPI_PM1A_EVT_BLK, 2, 0); /* writing 0 clears nothing */
    assert_int_equal(f->sci.level, 1);
    out(f, ACPI_PM1A_EVT_BLK + 1, 1, ACPI_PM1_PWRBTN >> 8); /* byte-wide W1C */
    assert_int_equal(f->sci.level, 0);
    assert_int_equal(in(f, ACPI_PM1A_EVT_BLK, 2) & ACPI_PM1_PWRBTN, 0);
    /* status set while disabled raises the SCI when enabled */
    out(f, ACPI_PM1A_EVT_BLK + 2, 2, 0);
    acpi_pm_power_button(&f->pm);
    assert_int_equal(f->sci.level, 0);
    out(f, ACPI_PM1A_EVT_BLK + 2, 2, ACPI_PM1_PWRBTN);
    assert_int_equal(f->sci.level, 1);
    out(f, ACPI_SMI_CMD_PORT, 1, ACPI_DISABLE_VALUE); /* SMI mode: no SCI */
    assert_int_equal(f->sci.level, 0);
    assert_int_equal(f->sci.edges, 2);
}

static void test_timer_carry_sci(void **state)
{
    struct fixture *f = *state;
    /* move the timer epoch so bit 23 flips 30 ms from now (white box) */
    uint64_t carry_ns = (uint64_t)((double)(1u << 23) * 1e9 / ACPI_PM_TMR_FREQ);
    f->pm.tmr_base_ns = clock_ns() - carry_ns + 30000000ull;
    f->pm.tmr_carries = 0;
    out(f, ACPI_PM1A_EVT_BLK, 2, 0xFFFF);
    out(f, ACPI_SMI_CMD_PORT, 1, ACPI_ENABLE_VALUE);
    out(f, ACPI_PM1A_EVT_BLK + 2, 2, ACPI_PM1_TMR);
    assert_int_equal(f->sci.level, 0);
    uint64_t t0 = clock_ns();
    while (!f->sci.level && clock_ns() - t0 < 1000000000ull)
        sleep_ms(1);
    assert_int_equal(f->sci.level, 1);
    assert_true(in(f, ACPI_PM_TMR_BLK, 4) & 0x800000);
    out(f, ACPI_PM1A_EVT_BLK, 2, ACPI_PM1_TMR);
    assert_int_equal(f->sci.level, 0);
}

static void test_resets(void **state)
{
    struct fixture *f = *state;
    /* Linux BOOT_CF9: read, write with bit 1, then bits 1-2 */
    uint8_t cf9 = (uint8_t)(in(f, ACPI_RESET_PORT, 1) & ~0x06);
    out(f, ACPI_RESET_PORT, 1, cf9 | 0x02);
    assert_int_equal(f->resets, 0);
    assert_int_equal(in(f, ACPI_RESET_PORT, 1), 0x02);
    out(f, ACPI_RESET_PORT, 1, cf9 | ACPI_RESET_VALUE);
    assert_int_equal(f->resets, 1);
    out(f, ACPI_RESET_PORT, 1, 0x0E);
    assert_int_equal(f->resets, 2);
    /* Linux BOOT_KBD: wait for the input buffer, then 0xFE */
    assert_int_equal(in(f, I8042_CMD_PORT, 1) & 0x02, 0);
    out(f, I8042_CMD_PORT, 1, 0xFE);
    assert_int_equal(f->resets, 3);
    /* output port write with the reset line low */
    out(f, I8042_CMD_PORT, 1, 0xD1);
    out(f, I8042_DATA_PORT, 1, 0xDF); /* Linux's A20 write keeps bit 0 high */
    assert_int_equal(f->resets, 3);
    out(f, I8042_CMD_PORT, 1, 0xD1);
    out(f, I8042_DATA_PORT, 1, 0xDE);
    assert_int_equal(f->resets, 4);
    out(f, I8042_CMD_PORT, 1, 0xFF); /* null command */
    assert_int_equal(f->resets, 4);
}

static void test_i8042_and_post(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(in(f, I8042_CMD_PORT, 1), 0x1C);
    out(f, I8042_CMD_PORT, 1, 0xAA);
    assert_int_equal(in(f, I8042_CMD_PORT, 1) & 0x01, 0x01);
    assert_int_equal(in(f, I8042_DATA_PORT, 1), 0x55);
    assert_int_equal(in(f, I8042_CMD_PORT, 1) & 0x01, 0x00);
    out(f, I8042_CMD_PORT, 1, 0x60);
    out(f, I8042_DATA_PORT, 1, 0x65);
    out(f, I8042_CMD_PORT, 1, 0x20);
    assert_int_equal(in(f, I8042_DATA_PORT, 1), 0x65);
    out(f, I8042_CMD_PORT, 1, 0xD3); /* aux loopback */
    out(f, I8042_DATA_PORT, 1, 0x5A);
    assert_int_equal(in(f, I8042_CMD_PORT, 1) & 0x21, 0x21);
    assert_int_equal(in(f, I8042_DATA_PORT, 1), 0x5A);
    out(f, I8042_DATA_PORT, 1, 0xF2); /* to a keyboard that is not there: no answer */
    assert_int_equal(in(f, I8042_CMD_PORT, 1) & 0x03, 0);

    out(f, POST_PORT, 1, 0x42);
    assert_int_equal(acpi_pm_post_code(&f->pm), 0x42);
    assert_int_equal(in(f, POST_PORT, 1), 0xFF);
}

static void test_hostile(void **state)
{
    struct fixture *f = *state;
    static const uint16_t ports[] = {
        ACPI_PM1A_EVT_BLK, ACPI_PM1A_EVT_BLK + 1, ACPI_PM1A_EVT_BLK + 2, ACPI_PM1A_EVT_BLK + 3,
        ACPI_PM1A_CNT_BLK, ACPI_PM1A_CNT_BLK + 1, ACPI_PM_TMR_BLK,       ACPI_PM_TMR_BLK + 3,
        ACPI_SMI_CMD_PORT, I8042_DATA_PORT,       I8042_CMD_PORT,        POST_PORT,
        ACPI_RESET_PORT};
    srand(11);
    for (int i = 0; i < 200000; i++) {
        struct cpu_io io = {.kind = CPU_IO_PIO,
                            .write = rand() & 1,
                            .size = (uint8_t)(1 << (rand() % 3)),
                            .addr = ports[rand() % (int)(sizeof(ports) / sizeof(ports[0]))],
                            .data = (uint64_t)rand()};
        router_dispatch(&f->r, &io);
    }
    acpi_pm_reset(&f->pm);
    assert_int_equal(f->sci.level, 0);
    assert_int_equal(in(f, I8042_CMD_PORT, 1), 0x1C);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acpi_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_button_sci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_carry_sci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_i8042_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
