/* PIT tests through the port router with a real timer service: IRQ 0 pulse rate
 * in mode 2, single pulses in modes 0 and 4, the tiny-period clamp, counter latch
 * and read-back, counter 2 polled through port 0x61 the way Linux calibrates the
 * TSC, gate control, and a hostile register fuzz. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "common/fake_dev.h"
#include "devices/pit.h"
#include "devices/timer.h"
#include "machine/router.h"

struct fixture {
    struct timer_service ts;
    struct router r;
    struct pit p;
    struct fake_irq irq;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(timer_service_start(&f->ts), 0);
    router_init(&f->r);
    struct irq_line line = {.set = fake_irq_set, .opaque = &f->irq, .pin = 0};
    pit_init(&f->p, &f->ts, &line);
    assert_int_equal(pit_register(&f->p, &f->r), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    timer_service_stop(&f->ts);
    pit_destroy(&f->p);
    free(f);
    return 0;
}

static uint8_t in(struct fixture *f, uint16_t port)
{
    return (uint8_t)pio_in(&f->r, port, 1);
}

static void out(struct fixture *f, uint16_t port, uint8_t v)
{
    pio_out(&f->r, port, 1, v);
}

static void sleep_ms(int ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void program(struct fixture *f, int ch, int mode, uint16_t count)
{
    out(f, 0x43, (uint8_t)(ch << 6 | 0x30 | mode << 1));
    out(f, (uint16_t)(0x40 + ch), (uint8_t)count);
    out(f, (uint16_t)(0x40 + ch), (uint8_t)(count >> 8));
}

static void test_mode2_rate(void **state)
{
    struct fixture *f = *state;
    program(f, 0, 2, 1193); /* 1 kHz, like Linux's periodic tick at HZ=1000 */
    uint64_t t0 = clock_ns();
    sleep_ms(300);
    int edges = f->irq.edges;
    double ms = (double)(clock_ns() - t0) / 1e6;
    print_message("mode 2: %d pulses in %.1f ms\n", edges, ms);
    /* never faster than programmed; the lower bound only proves it runs (a loaded
     * host may merge periods, by design) */
    assert_true(edges >= 10);
    assert_true(edges <= (int)(ms * 1.02) + 2);
    out(f, 0x43, 0x30); /* Linux's shutdown: mode 0, no count */
    sleep_ms(5);
    edges = f->irq.edges;
    sleep_ms(20);
    assert_int_equal(f->irq.edges, edges);
}

static void test_oneshot_modes(void **state)
{
    struct fixture *f = *state;
    program(f, 0, 0, 5966); /* 5 ms */
    sleep_ms(2);
    assert_int_equal(f->irq.edges, 0);
    sleep_ms(60);
    assert_int_equal(f->irq.edges, 1);
    assert_true(pit_get_out(&f->p, 0));
    /* mode 4, Linux's one-shot clock event: mode word 0x38, then LSB/MSB */
    out(f, 0x43, 0x38);
    out(f, 0x40, 0x40);
    out(f, 0x40, 0x00);
    sleep_ms(30);
    assert_int_equal(f->irq.edges, 2);
    /* count 0 means 65536 (55 ms) */
    program(f, 0, 0, 0);
    sleep_ms(20);
    assert_int_equal(f->irq.edges, 2);
    sleep_ms(80);
    assert_int_equal(f->irq.edges, 3);
}

static void test_clamp(void **state)
{
    struct fixture *f = *state;
    program(f, 0, 2, 2); /* 600 kHz requested */
    uint64_t t0 = clock_ns();
    sleep_ms(100);
    out(f, 0x43, 0x30);
    double ms = (double)(clock_ns() - t0) / 1e6;
    int edges = f->irq.edges;
    print_message("count 2: %d pulses in %.1f ms\n", edges, ms);
    assert_true(edges > 10);
    assert_true(edges <= (int)(ms * 1e6 / PIT_MIN_PERIOD_NS) + 5);
}

static void test_latch_readback(void **state)
{
    struct fixture *f = *state;
    program(f, 1, 2, 60000); /* counter 1: no interrupt, 50 ms period */
    out(f, 0x43, 0x40);      /* latch counter 1 */
    sleep_ms(5);
    uint16_t latched = in(f, 0x41);
    latched |= (uint16_t)(in(f, 0x41) << 8);
    uint16_t live = in(f, 0x41);
    live |= (uint16_t)(in(f, 0x41) << 8);
    print_message("latched %u live %u\n", latched, live);
    assert_true(latched <= 60000 && latched > 50000);
    int diff = latched - live; /* ~5 ms = ~5966 ticks passed between them */
    assert_true(diff >= 5000 && diff < 50000);

    /* read-back: status then count of counter 1 */
    out(f, 0x43, 0xC4);
    uint8_t status = in(f, 0x41);
    assert_int_equal(status & 0x7F, 0x34); /* LSB/MSB, mode 2, binary, count loaded */
    uint16_t c = in(f, 0x41);
    c |= (uint16_t)(in(f, 0x41) << 8);
    assert_true(c <= 60000);
    /* a control word without a count reports NULL COUNT */
    out(f, 0x43, 0x76);
    out(f, 0x43, 0xE4); /* status only */
    assert_int_equal(in(f, 0x41), 0x40 | 0x80 | 0x36);
    /* LSB-only access */
    out(f, 0x43, 0x54);
    out(f, 0x41, 0x80);
    assert_true(in(f, 0x41) <= 0x80);
}

/* Linux's pit_calibrate_tsc(): gate high, speaker off, counter 2 in mode 0, poll
 * port 0x61 bit 5 until OUT 2 rises. */
static void test_port61_calibration(void **state)
{
    struct fixture *f = *state;
    out(f, 0x61, (uint8_t)((in(f, 0x61) & ~0x02) | 0x01));
    assert_int_equal(in(f, 0x61) & 0x01, 0x01);
    /* bounds that hold however the host schedules this thread: the last poll
     * seeing OUT low started before the deadline, the first seeing it high ended
     * after it */
    uint64_t t_begin = clock_ns();
    out(f, 0x43, 0xB0);
    out(f, 0x42, 11932 & 0xFF); /* 10 ms */
    out(f, 0x42, 11932 >> 8);
    uint64_t t_end = clock_ns(), last_low = t_end, first_high = 0;
    long loops = 0;
    while (clock_ns() - t_begin < 1000000000ull) {
        uint64_t before = clock_ns();
        bool high = in(f, 0x61) & 0x20;
        if (!high) {
            last_low = before;
            loops++;
        } else {
            first_high = clock_ns();
            break;
        }
    }
    print_message("OUT2 rose after %.3f ms, %ld polls\n", (double)(first_high - t_begin) / 1e6,
                  loops);
    assert_true(first_high != 0);
    const uint64_t due = 11932ull * 1000000000ull / PIT_FREQ_HZ + 1; /* 10.00015 ms */
    assert_true(first_high >= t_begin + due - 1);
    assert_true(last_low <= t_end + due);
    assert_true(loops > 100);

    /* quick_pit_calibrate(): mode 0 from 0xffff, the MSB counts down in real time */
    out(f, 0x43, 0xB0);
    out(f, 0x42, 0xFF);
    out(f, 0x42, 0xFF);
    in(f, 0x42);
    uint8_t msb0 = in(f, 0x42);
    sleep_ms(2);
    in(f, 0x42);
    uint8_t msb1 = in(f, 0x42);
    assert_true(msb0 >= 0xFE);
    assert_true(msb1 < msb0);

    /* gate low suspends mode 0 counting; gate high resumes */
    out(f, 0x61, 0x00);
    in(f, 0x42);
    uint8_t a = in(f, 0x42);
    sleep_ms(3);
    in(f, 0x42);
    uint8_t b = in(f, 0x42);
    assert_int_equal(a, b);
    out(f, 0x61, 0x01);
    sleep_ms(3);
    in(f, 0x42);
    assert_true(in(f, 0x42) < b);

    /* the refresh bit toggles */
    uint8_t r0 = in(f, 0x61) & 0x10;
    uint64_t t0 = clock_ns();
    while ((in(f, 0x61) & 0x10) == r0 && clock_ns() - t0 < 100000000ull)
        ;
    assert_true(clock_ns() - t0 < 100000000ull);
    assert_int_equal(in(f, 0x61) & 0xC0, 0);
}

static void test_hostile(void **state)
{
    struct fixture *f = *state;
    srand(7);
    for (int i = 0; i < 200000; i++) {
        struct cpu_io io = {.kind = CPU_IO_PIO,
                            .write = rand() & 1,
                            .size = (uint8_t)(1 << (rand() % 3)),
                            .addr = (rand() % 5 == 0) ? 0x61 : 0x40 + rand() % 4,
                            .data = (uint64_t)rand()};
        router_dispatch(&f->r, &io);
    }
    sleep_ms(20);
    pit_reset(&f->p);
    int edges = f->irq.edges;
    sleep_ms(20);
    assert_int_equal(f->irq.edges, edges);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mode2_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oneshot_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latch_readback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port61_calibration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
