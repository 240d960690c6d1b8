/* 8259 PIC tests through the port router: Linux's init sequence and probe,
 * priority and nesting, non-specific and specific EOI, rotation, cascade through
 * IRQ2, ELCR level mode, IRR reads of masked lines, spurious IRQ7, auto-EOI,
 * poll mode, the INTR output, and hostile port traffic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "devices/pic.h"

struct fx {
    struct router r;
    struct pic *p;
    int intr; /* current INTR level */
    int edges;
};

static void intr(void *opaque, int level)
{
    struct fx *f = opaque;
    if (level && !f->intr) f->edges++;
    f->intr = level;
}

static struct fx *F;

static void out8(uint16_t port, uint8_t v)
{
    struct cpu_io io = {.kind = CPU_IO_PIO, .write = true, .size = 1, .addr = port, .data = v};
    router_dispatch(&F->r, &io);
}

static uint8_t in8(uint16_t port)
{
    struct cpu_io io = {.kind = CPU_IO_PIO, .size = 1, .addr = port};
    router_dispatch(&F->r, &io);
    return (uint8_t)io.data;
}

/* Linux's init_8259A(0) */
static void linux_init(bool auto_eoi)
{
    out8(0x21, 0xff);
    out8(0xa1, 0xff);
    out8(0x20, 0x11);
    out8(0x21, 0x30);
    out8(0x21, 0x04);
    out8(0x21, auto_eoi ? 0x03 : 0x01);
    out8(0xa0, 0x11);
    out8(0xa1, 0x38);
    out8(0xa1, 0x02);
    out8(0xa1, 0x01);
    out8(0x21, 0xfb); /* everything masked except the cascade */
    out8(0xa1, 0xff);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    router_init(&f->r);
    f->p = pic_create(intr, f);
    assert_non_null(f->p);
    assert_int_equal(pic_register(f->p, &f->r), 0);
    F = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pic_destroy(f->p);
    free(f);
    return 0;
}

static void test_init_and_probe(void **state)
{
    struct fx *f = *state;
    pic_set_irq(f->p, 1, 1); /* before init: nothing comes out */
    assert_int_equal(f->intr, 0);
    pic_set_irq(f->p, 1, 0);
    out8(0x20, 0x11); /* mid-initialization an acknowledge has no vector */
    assert_int_equal(pic_ack(f->p), -1);
    linux_init(false);
    /* probe_8259A */
    out8(0xa1, 0xff);
    out8(0x21, 0xfb);
    assert_int_equal(in8(0x21), 0xfb);
    assert_int_equal(in8(0xa1), 0xff);
    out8(0x21, 0xff);
    assert_int_equal(in8(0x21), 0xff);
    /* a masked line still shows in IRR (OCW3 0x0a selects IRR, the default) */
    pic_set_irq(f->p, 4, 1);
    pic_set_irq(f->p, 4, 0);
    out8(0x20, 0x0a);
    assert_int_equal(in8(0x20), 0x10);
    assert_int_equal(f->intr, 0);
    out8(0x21, 0xef);
    assert_int_equal(f->intr, 1);
    assert_int_equal(pic_ack(f->p), 0x34);
    assert_int_equal(f->intr, 0);
    out8(0x20, 0x0b); /* read ISR */
    assert_int_equal(in8(0x20), 0x10);
    out8(0x20, 0x20);
    assert_int_equal(in8(0x20), 0);
    /* ELCR ports exist and honour their fixed-edge bits */
    out8(0x4d0, 0xff);
    out8(0x4d1, 0xff);
    assert_int_equal(in8(0x4d0), 0xf8);
    assert_int_equal(in8(0x4d1), 0xde);
}

static void test_priority_and_eoi(void **state)
{
    struct fx *f = *state;
    linux_init(false);
    out8(0x21, 0x00);
    pic_set_irq(f->p, 3, 1);
    pic_set_irq(f->p, 1, 1);
    assert_int_equal(pic_ack(f->p), 0x31);
    /* IRQ3 has lower priority than the in-service IRQ1 */
    assert_int_equal(f->intr, 0);
    pic_set_irq(f->p, 0, 1); /* IRQ0 nests */
    assert_int_equal(f->intr, 1);
    assert_int_equal(pic_ack(f->p), 0x30);
    out8(0x20, 0x20); /* non-specific EOI: IRQ0 */
    out8(0x20, 0x0b);
    assert_int_equal(in8(0x20), 0x02);
    assert_int_equal(f->intr, 0);
    out8(0x20, 0x61); /* specific EOI for IRQ1 */
    assert_int_equal(in8(0x20), 0x00);
    assert_int_equal(f->intr, 1);
    assert_int_equal(pic_ack(f->p), 0x33);
    out8(0x20, 0x63);
    assert_int_equal(f->intr, 0);

    /* rotate on non-specific EOI: the serviced IRQ becomes the lowest */
    pic_set_irq(f->p, 0, 0);
    pic_set_irq(f->p, 0, 1);
    assert_int_equal(pic_ack(f->p), 0x30);
    out8(0x20, 0xa0);
    pic_set_irq(f->p, 0, 0);
    pic_set_irq(f->p, 0, 1);
    pic_set_irq(f->p, 5, 1);
    assert_int_equal(pic_ack(f->p), 0x35);
    out8(0x20, 0x20);
    assert_int_equal(pic_ack(f->p), 0x30);
    out8(0x20, 0x20);
    out8(0x20, 0xc7); /* set priority: IRQ7 lowest, IRQ0 highest again */
}

static void test_cascade(void **state)
{
    struct fx *f = *state;
    linux_init(false);
    out8(0xa1, ~(1u << 2) & 0xff); /* IRQ10 */
    pic_set_irq(f->p, 10, 1);
    assert_int_equal(f->intr, 1);
    pic_set_irq(f->p, 9, 1); /* masked on the slave */
    assert_int_equal(pic_ack(f->p), 0x3a);
    assert_int_equal(f->intr, 0);
    out8(0x20, 0x0b);
    out8(0xa0, 0x0b);
    assert_int_equal(in8(0x20), 0x04); /* cascade in service on the master */
    assert_int_equal(in8(0xa0), 0x04);
    out8(0xa0, 0x0a);
    assert_int_equal(in8(0xa0), 0x02); /* IRQ9 latched, masked */
    out8(0xa1, 0xf9);                  /* unmask IRQ9: it outranks IRQ10 on the slave, but the */
    assert_int_equal(f->intr, 0);      /* master has the cascade in service */
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    assert_int_equal(f->intr, 1);
    assert_int_equal(pic_ack(f->p), 0x39);
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    assert_int_equal(f->intr, 0);
    /* two slave requests at once: the second one is not lost */
    pic_set_irq(f->p, 9, 0);
    pic_set_irq(f->p, 10, 0);
    pic_set_irq(f->p, 9, 1);
    pic_set_irq(f->p, 10, 1);
    assert_int_equal(pic_ack(f->p), 0x39);
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    assert_int_equal(f->intr, 1);
    assert_int_equal(pic_ack(f->p), 0x3a);
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    assert_int_equal(f->intr, 0);
}

static void test_elcr_level(void **state)
{
    struct fx *f = *state;
    linux_init(false);
    out8(0xa1, ~(1u << 3) & 0xff); /* IRQ11 */
    out8(0x4d1, 0x08);
    pic_set_irq(f->p, 11, 1);
    assert_int_equal(pic_ack(f->p), 0x3b);
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    assert_int_equal(f->intr, 1); /* still asserted: requested again */
    assert_int_equal(pic_ack(f->p), 0x3b);
    pic_set_irq(f->p, 11, 0);
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    assert_int_equal(f->intr, 0);
    /* a level request that goes away before INTA: spurious IRQ15 */
    pic_set_irq(f->p, 11, 1);
    assert_int_equal(f->intr, 1);
    pic_set_irq(f->p, 11, 0);
    assert_int_equal(f->intr, 0);
    assert_int_equal(pic_ack(f->p), 0x37); /* the master saw nothing either */
}

static void test_spurious_irq7(void **state)
{
    struct fx *f = *state;
    linux_init(false);
    out8(0x21, 0x00);
    out8(0x4d0, 0x20); /* IRQ5 level */
    pic_set_irq(f->p, 5, 1);
    pic_set_irq(f->p, 5, 0);
    assert_int_equal(pic_ack(f->p), 0x37);
    out8(0x20, 0x0b);
    assert_int_equal(in8(0x20), 0); /* no ISR bit for a spurious interrupt */
    assert_int_equal(pic_ack(f->p), 0x37);
}

static void test_auto_eoi_and_poll(void **state)
{
    struct fx *f = *state;
    linux_init(true);
    out8(0x21, 0x00);
    pic_set_irq(f->p, 6, 1);
    assert_int_equal(pic_ack(f->p), 0x36);
    out8(0x20, 0x0b);
    assert_int_equal(in8(0x20), 0); /* auto-EOI: nothing in service */
    pic_set_irq(f->p, 6, 0);
    pic_set_irq(f->p, 6, 1);
    assert_int_equal(f->intr, 1);
    /* poll: the read is the acknowledge */
    out8(0x20, 0x0c);
    assert_int_equal(in8(0x20), 0x86);
    assert_int_equal(f->intr, 0);
    out8(0x20, 0x0c);
    assert_int_equal(in8(0x20), 0);
}

static void test_hostile_ports(void **state)
{
    struct fx *f = *state;
    uint32_t x = 12345;
    for (int i = 0; i < 100000; i++) {
        x = x * 1103515245u + 12345u;
        static const uint16_t ports[] = {0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1};
        uint16_t port = ports[(x >> 8) % 6];
        if (x & 1)
            out8(port, (uint8_t)(x >> 16));
        else
            (void)in8(port);
        if ((x >> 24) % 7 == 0) pic_set_irq(f->p, (int)((x >> 4) % 20) - 2, (x >> 3) & 1);
        if ((x >> 24) % 11 == 0) {
            int v = pic_ack(f->p);
            assert_true(v >= -1 && v <= 255);
        }
    }
    /* wide accesses are split per byte and stay in range */
    struct cpu_io io = {.kind = CPU_IO_PIO, .write = true, .size = 4, .addr = 0x20, .data = ~0ull};
    router_dispatch(&f->r, &io);
    io = (struct cpu_io){.kind = CPU_IO_PIO, .size = 2, .addr = 0x4d0};
    router_dispatch(&f->r, &io);
    /* and a fresh init still works */
    linux_init(false);
    out8(0x21, 0xfe);
    pic_set_irq(f->p, 0, 0);
    pic_set_irq(f->p, 0, 1);
    assert_int_equal(pic_ack(f->p), 0x30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_and_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_and_eoi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cascade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elcr_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spurious_irq7, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_eoi_and_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_ports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
