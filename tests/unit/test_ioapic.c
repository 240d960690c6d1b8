/* I/O APIC tests: identification registers, redirection entry read/write masks,
 * edge delivery (rising edges only, lost while masked), level delivery with
 * remote IRR, EOI re-delivery (bus path and EOI register), delivery on unmask,
 * remote IRR cleared by switching to edge, message fields, and hostile IOREGSEL
 * values, sizes, offsets and pin numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/ioapic.h"

struct rec {
    struct apic_msg last;
    int n;
};

static void rec_deliver(void *opaque, const struct apic_msg *m)
{
    struct rec *r = opaque;
    r->last = *m;
    r->n++;
}

static struct rec rec;
static const struct apic_bus bus = {.deliver = rec_deliver, .opaque = &rec};

static uint32_t rd(struct ioapic *io, uint8_t reg)
{
    ioapic_mmio_write(io, 0x00, 4, reg);
    return (uint32_t)ioapic_mmio_read(io, 0x10, 4);
}

static void wr(struct ioapic *io, uint8_t reg, uint32_t v)
{
    ioapic_mmio_write(io, 0x00, 4, reg);
    ioapic_mmio_write(io, 0x10, 4, v);
}

static void rte(struct ioapic *io, int pin, uint32_t lo, uint8_t dest)
{
    wr(io, (uint8_t)(0x11 + 2 * pin), (uint32_t)dest << 24);
    wr(io, (uint8_t)(0x10 + 2 * pin), lo);
}

static int setup(void **state)
{
    rec = (struct rec){0};
    *state = ioapic_create(1, &bus);
    assert_non_null(*state);
    return 0;
}

static int teardown(void **state)
{
    ioapic_destroy(*state);
    return 0;
}

static void test_registers(void **state)
{
    struct ioapic *io = *state;
    assert_int_equal(rd(io, 0x00), 1u << 24);
    assert_int_equal(rd(io, 0x01), 0x00170011);
    assert_int_equal(rd(io, 0x02), 1u << 24);
    wr(io, 0x00, 0xffffffff);
    assert_int_equal(rd(io, 0x00), 0x0f000000);
    wr(io, 0x01, 0);
    assert_int_equal(rd(io, 0x01), 0x00170011);
    for (int pin = 0; pin < IOAPIC_PINS; pin++) {
        assert_int_equal(rd(io, (uint8_t)(0x10 + 2 * pin)), 0x10000); /* masked at reset */
        assert_int_equal(rd(io, (uint8_t)(0x11 + 2 * pin)), 0);
    }
    /* read-only bits (delivery status, remote IRR) and reserved bits stay clear */
    wr(io, 0x10, 0xffffffff);
    wr(io, 0x11, 0xffffffff);
    assert_int_equal(rd(io, 0x10), 0x1afff);
    assert_int_equal(rd(io, 0x11), 0xff000000);
    assert_int_equal(rd(io, 0x3f), 0); /* pin 23 high half */
    assert_int_equal(ioapic_mmio_read(io, 0x00, 4), 0x3f);
}

static void test_hostile_accesses(void **state)
{
    struct ioapic *io = *state;
    for (unsigned reg = 0; reg < 256; reg++) {
        wr(io, (uint8_t)reg, 0xffffffff);
        (void)rd(io, (uint8_t)reg);
    }
    ioapic_mmio_write(io, 0x00, 4, 0x12345640); /* only the low byte selects */
    assert_int_equal(ioapic_mmio_read(io, 0x00, 4), 0x40);
    assert_int_equal(ioapic_mmio_read(io, 0x10, 4), 0);
    assert_int_equal(ioapic_mmio_read(io, 0x10, 8), 0);
    assert_int_equal(ioapic_mmio_read(io, 0x10, 0), 0);
    assert_int_equal(ioapic_mmio_read(io, 0x10, -1), 0);
    assert_int_equal(ioapic_mmio_read(io, 0x20, 4), 0);
    assert_int_equal(ioapic_mmio_read(io, 0xfff, 1), 0);
    ioapic_mmio_write(io, 0x10, 8, ~0ull);
    ioapic_mmio_write(io, 0xff8, 4, ~0ull);
    ioapic_mmio_write(io, 0x40, 4, 0x1ff);
    ioapic_set_irq(io, -1, 1);
    ioapic_set_irq(io, 24, 1);
    ioapic_set_irq(io, 1 << 30, 1);
    ioapic_eoi(io, 0);
    /* every pin unmasked with every delivery mode and trigger, toggled, EOIed */
    for (int pin = 0; pin < IOAPIC_PINS; pin++) {
        rte(io, pin, ((uint32_t)(pin & 7) << 8) | ((pin & 8) ? 0x8000 : 0) | (uint32_t)pin, 0xff);
        ioapic_set_irq(io, pin, 1);
        ioapic_eoi(io, (uint8_t)pin);
        ioapic_set_irq(io, pin, 0);
    }
    /* one message per pin, plus a re-delivery for the level pins 8-15 that are
     * not NMI, INIT or ExtINT (modes 0, 1, 2, 3, 6) */
    assert_int_equal(rec.n, IOAPIC_PINS + 5);
    wr(io, 0x01, 0);
    assert_int_equal(rd(io, 0x01), 0x00170011);
}

static void test_edge(void **state)
{
    struct ioapic *io = *state;
    rte(io, 1, 0x31, 3);
    ioapic_set_irq(io, 1, 1);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.last.vector, 0x31);
    assert_int_equal(rec.last.delivery, APIC_DM_FIXED);
    assert_int_equal(rec.last.dest, 3);
    assert_false(rec.last.logical);
    assert_false(rec.last.level);
    assert_true(rec.last.assert);
    assert_int_equal(rec.last.shorthand, APIC_SH_NONE);
    assert_int_equal(rec.last.src, -1);
    ioapic_set_irq(io, 1, 1); /* no new edge */
    assert_int_equal(rec.n, 1);
    ioapic_set_irq(io, 1, 0);
    ioapic_set_irq(io, 1, 1);
    assert_int_equal(rec.n, 2);
    ioapic_set_irq(io, 1, 0);
    assert_false(rd(io, 0x12) & (1u << 14)); /* edge pins never set remote IRR */

    /* masked: the edge is lost, and unmasking does not bring it back */
    rte(io, 1, 0x10031, 3);
    ioapic_set_irq(io, 1, 1);
    ioapic_set_irq(io, 1, 0);
    rte(io, 1, 0x31, 3);
    assert_int_equal(rec.n, 2);

    /* logical lowest-priority */
    rte(io, 4, 0x934, 0x0f);
    ioapic_set_irq(io, 4, 1);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.last.delivery, APIC_DM_LOWEST);
    assert_true(rec.last.logical);
    assert_int_equal(rec.last.dest, 0x0f);
}

static void test_level_remote_irr(void **state)
{
    struct ioapic *io = *state;
    rte(io, 9, 0x8000 | 0x39, 0);
    ioapic_set_irq(io, 9, 1);
    assert_int_equal(rec.n, 1);
    assert_true(rec.last.level);
    assert_true(rd(io, 0x10 + 18) & (1u << 14));
    ioapic_set_irq(io, 9, 1);
    ioapic_set_irq(io, 9, 0);
    ioapic_set_irq(io, 9, 1); /* remote IRR holds further deliveries */
    assert_int_equal(rec.n, 1);
    ioapic_eoi(io, 0x38); /* another vector */
    assert_int_equal(rec.n, 1);
    ioapic_eoi(io, 0x39); /* still asserted: delivered again */
    assert_int_equal(rec.n, 2);
    assert_true(rd(io, 0x10 + 18) & (1u << 14));
    ioapic_set_irq(io, 9, 0);
    ioapic_eoi(io, 0x39);
    assert_int_equal(rec.n, 2);
    assert_false(rd(io, 0x10 + 18) & (1u << 14));
    /* the EOI register does the same */
    ioapic_set_irq(io, 9, 1);
    assert_int_equal(rec.n, 3);
    ioapic_mmio_write(io, 0x40, 4, 0x39);
    assert_int_equal(rec.n, 4);
    /* switching to edge clears a stuck remote IRR (Linux's fallback EOI) */
    wr(io, 0x10 + 18, 0x18039); /* masked level: remote IRR kept */
    assert_true(rd(io, 0x10 + 18) & (1u << 14));
    wr(io, 0x10 + 18, 0x10039); /* masked edge */
    assert_false(rd(io, 0x10 + 18) & (1u << 14));
    /* unmasking a level pin whose line is asserted delivers */
    wr(io, 0x10 + 18, 0x18039);
    assert_int_equal(rec.n, 4);
    wr(io, 0x10 + 18, 0x08039);
    assert_int_equal(rec.n, 5);
    assert_true(rd(io, 0x10 + 18) & (1u << 14));
    ioapic_set_irq(io, 9, 0);
    ioapic_eoi(io, 0x39);
    assert_int_equal(rec.n, 5);
}

static void test_nmi_extint_are_edge(void **state)
{
    struct ioapic *io = *state;
    /* level trigger bit with NMI delivery: treated as edge, no remote IRR */
    rte(io, 2, 0x8000 | (APIC_DM_NMI << 8), 0);
    ioapic_set_irq(io, 2, 1);
    assert_int_equal(rec.n, 1);
    assert_false(rec.last.level);
    ioapic_set_irq(io, 2, 0);
    ioapic_set_irq(io, 2, 1);
    assert_int_equal(rec.n, 2);
    rte(io, 0, APIC_DM_EXTINT << 8, 0);
    ioapic_set_irq(io, 0, 1);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.last.delivery, APIC_DM_EXTINT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_remote_irr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nmi_extint_are_edge, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
