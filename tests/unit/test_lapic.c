/* Local APIC tests: register page (reset values, hostile offsets and sizes),
 * IRR/ISR priority, TPR/PPR masking (MMIO and CR8), EOI order and level EOI to
 * the bus, ESR latching, destination matching (physical, flat, cluster,
 * shorthands), IPIs through a fake bus (fixed to others, NMI, INIT, SIPI), the
 * APIC timer in one-shot, periodic and TSC-deadline modes on a real timer
 * service, ExtINT through LINT0, IA32_APIC_BASE, and a two-thread accept/ack
 * race that would hang on a lost interrupt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "devices/lapic.h"
#include "devices/timer.h"
#include "memory/guest_mem.h"

#define NCPU 3

/* ---- fixture: vCPUs (never run; we only look at their request bits) and a bus ---- */

struct fake_bus {
    struct lapic *l[NCPU];
    int n;
    struct apic_msg last;
    int delivered;
    int eois;
    uint8_t last_eoi;
};

static void bus_deliver(void *opaque, const struct apic_msg *m)
{
    struct fake_bus *b = opaque;
    b->last = *m;
    b->delivered++;
    for (int i = 0; i < b->n; i++)
        if (b->l[i] && lapic_match(b->l[i], m)) lapic_accept(b->l[i], m);
}

static void bus_eoi(void *opaque, uint8_t vector)
{
    struct fake_bus *b = opaque;
    b->eois++;
    b->last_eoi = vector;
}

static void nop_io(void *ctx, struct cpu_io *io)
{
    io->data = ~0ull;
}
static int no_irq(void *ctx)
{
    return -1;
}
static const struct cpu_exit_ops ops = {.io = nop_io, .irq_ack = no_irq};

struct fx {
    struct guest_mem mem;
    struct vcpu *v[NCPU];
    struct fake_bus fb;
    struct apic_bus bus;
    struct timer_service ts;
};

static uint64_t host_tsc(void *opaque)
{
    return clock_ns();
} /* 1 GHz TSC */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(guest_mem_init(&f->mem, 1 << 20, 0, MEM_WRITE), 0);
    assert_int_equal(timer_service_start(&f->ts), 0);
    f->bus = (struct apic_bus){.deliver = bus_deliver, .eoi = bus_eoi, .opaque = &f->fb};
    f->fb.n = NCPU;
    for (int i = 0; i < NCPU; i++) {
        f->v[i] = emu_cpu_impl.create(&f->mem, i, &ops, NULL);
        assert_non_null(f->v[i]);
        f->fb.l[i] = lapic_create(i, f->v[i], &f->bus, &f->ts, host_tsc, NULL, 1000000000ull);
        assert_non_null(f->fb.l[i]);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    timer_service_stop(&f->ts); /* no timer callback may run past this */
    for (int i = 0; i < NCPU; i++) {
        lapic_destroy(f->fb.l[i]);
        emu_cpu_impl.destroy(f->v[i]);
    }
    guest_mem_destroy(&f->mem);
    free(f);
    return 0;
}

static uint32_t rd(struct lapic *l, unsigned off)
{
    return (uint32_t)lapic_mmio_read(l, off, 4);
}
static void wr(struct lapic *l, unsigned off, uint32_t v)
{
    lapic_mmio_write(l, off, 4, v);
}
static bool line(struct vcpu *v)
{
    return atomic_load(&v->requests) & VCPU_REQ_IRQ;
}
static bool irr_bit(struct lapic *l, unsigned vec)
{
    return (rd(l, 0x200 + (vec / 32) * 16) >> (vec % 32)) & 1;
}
static bool isr_bit(struct lapic *l, unsigned vec)
{
    return (rd(l, 0x100 + (vec / 32) * 16) >> (vec % 32)) & 1;
}

static void fixed(struct lapic *l, uint8_t vec, bool level)
{
    struct apic_msg m = {
        .vector = vec, .delivery = APIC_DM_FIXED, .level = level, .assert = true, .src = -1};
    lapic_accept(l, &m);
}

static void enable(struct lapic *l)
{
    wr(l, 0xf0, 0x1ff);
}

/* ---- tests ---- */

static void test_reset_values_and_hostile_access(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[1];
    assert_int_equal(rd(l, 0x20), 1u << 24);
    assert_int_equal(rd(l, 0x30), 0x00050014);
    assert_int_equal(rd(l, 0xe0), 0xffffffff);
    assert_int_equal(rd(l, 0xf0), 0xff);
    for (unsigned off = 0x320; off <= 0x370; off += 0x10)
        assert_int_equal(rd(l, off), 0x10000);
    assert_int_equal(lapic_base(f->fb.l[0]), 0xfee00000ull | LAPIC_BASE_ENABLE | LAPIC_BASE_BSP);
    assert_int_equal(lapic_base(l), 0xfee00000ull | LAPIC_BASE_ENABLE);

    /* odd sizes and offsets read 0 and do not write */
    wr(l, 0x80, 0x20);
    assert_int_equal(lapic_mmio_read(l, 0x80, 8), 0);
    assert_int_equal(lapic_mmio_read(l, 0x84, 4), 0);
    assert_int_equal(lapic_mmio_read(l, 0x80, 1), 0);
    lapic_mmio_write(l, 0x80, 1, 0x70);
    lapic_mmio_write(l, 0x81, 4, 0x70);
    lapic_mmio_write(l, 0x80, 8, 0x70);
    lapic_mmio_write(l, 0x80, 0, 0x70);
    lapic_mmio_write(l, 0x80, -4, 0x70);
    assert_int_equal(lapic_mmio_read(l, 0x1000, 4), 0);
    assert_int_equal(lapic_mmio_read(l, ~0ull - 15, 4), 0);
    lapic_mmio_write(l, ~0ull - 15, 4, 1);
    assert_int_equal(rd(l, 0x80), 0x20);

    /* read-only registers stay put; garbage everywhere (except the ICR, which
     * would send) neither crashes nor hangs */
    wr(l, 0x20, 0xff000000);
    wr(l, 0x30, 0);
    wr(l, 0x200, ~0u);
    assert_int_equal(rd(l, 0x20), 1u << 24);
    assert_false(irr_bit(l, 0x40));
    for (unsigned off = 0; off < 0x1000; off += 0x10)
        if (off != 0x300) wr(l, off, 0xdeadbeef ^ off);
    for (unsigned off = 0; off < 0x1000; off += 4)
        (void)rd(l, off);
    assert_int_equal(rd(l, 0xe0), 0xdfffffff); /* DFR low bits read as ones */
    assert_int_equal(rd(l, 0xd0), 0xde000000);
    lapic_reset(l);
    assert_int_equal(rd(l, 0x20), 1u << 24);
    assert_int_equal(rd(l, 0xf0), 0xff);
    assert_int_equal(rd(l, 0x380), 0);
}

static void test_priority_and_eoi_order(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    struct vcpu *v = f->v[0];
    enable(l);
    assert_false(line(v));
    fixed(l, 0x31, false);
    fixed(l, 0x51, false);
    fixed(l, 0x41, false);
    assert_true(line(v));
    assert_true(irr_bit(l, 0x51));
    assert_int_equal(lapic_ack(l), 0x51);
    assert_true(isr_bit(l, 0x51));
    assert_false(irr_bit(l, 0x51));
    assert_int_equal(rd(l, 0xa0), 0x50); /* PPR = in-service class */
    /* 0x41 and 0x31 are below the in-service class: masked until EOI */
    assert_false(line(v));
    assert_int_equal(lapic_ack(l), -1);
    fixed(l, 0x61, false); /* a higher class nests */
    assert_true(line(v));
    assert_int_equal(lapic_ack(l), 0x61);
    wr(l, 0xb0, 0); /* EOI retires the highest in-service vector: 0x61 */
    assert_false(isr_bit(l, 0x61));
    assert_true(isr_bit(l, 0x51));
    assert_false(line(v));
    wr(l, 0xb0, 0);
    assert_true(line(v));
    assert_int_equal(lapic_ack(l), 0x41);
    wr(l, 0xb0, 0);
    assert_int_equal(lapic_ack(l), 0x31);
    wr(l, 0xb0, 0);
    assert_false(line(v));
    assert_int_equal(lapic_ack(l), -1);
    assert_int_equal(rd(l, 0xa0), 0);
    wr(l, 0xb0, 0); /* EOI with nothing in service: harmless */
    assert_int_equal(f->fb.eois, 0);

    /* same-class vectors: the higher vector first, and it blocks its class */
    fixed(l, 0x42, false);
    fixed(l, 0x4f, false);
    assert_int_equal(lapic_ack(l), 0x4f);
    assert_int_equal(lapic_ack(l), -1);
    wr(l, 0xb0, 0);
    assert_int_equal(lapic_ack(l), 0x42);
    wr(l, 0xb0, 0);

    /* level-triggered vectors set TMR, and their EOI goes to the bus */
    fixed(l, 0x93, true);
    assert_true((rd(l, 0x180 + 4 * 16) >> 19) & 1);
    assert_int_equal(lapic_ack(l), 0x93);
    wr(l, 0xb0, 0);
    assert_int_equal(f->fb.eois, 1);
    assert_int_equal(f->fb.last_eoi, 0x93);

    /* illegal vectors are refused and noted in the ESR */
    fixed(l, 7, false);
    assert_false(line(v));
    wr(l, 0x280, 0);
    assert_int_equal(rd(l, 0x280), 0x40);
}

static void test_tpr_ppr(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    struct vcpu *v = f->v[0];
    enable(l);
    wr(l, 0x80, 0x50);
    fixed(l, 0x45, false);
    assert_false(line(v));
    assert_int_equal(rd(l, 0xa0), 0x50);
    assert_int_equal(lapic_ack(l), -1);
    wr(l, 0x80, 0x4f); /* same class: still blocked */
    assert_false(line(v));
    wr(l, 0x80, 0x30);
    assert_true(line(v));
    /* APR: TPR below the IRR class -> the IRR class */
    assert_int_equal(rd(l, 0x90), 0x40);
    assert_int_equal(lapic_priority(l), 0x40);

    /* CR8 as MSR 0x808 */
    uint64_t tpr = 0xf0;
    assert_int_equal(lapic_msr(l, 0x808, true, &tpr), 0);
    assert_false(line(v));
    assert_int_equal(rd(l, 0x80), 0xf0);
    tpr = 0;
    assert_int_equal(lapic_msr(l, 0x808, false, &tpr), 0);
    assert_int_equal(tpr, 0xf0);
    tpr = 0x100;
    assert_int_equal(lapic_msr(l, 0x808, true, &tpr), -1);
    tpr = 0;
    assert_int_equal(lapic_msr(l, 0x808, true, &tpr), 0);
    assert_true(line(v));
    assert_int_equal(lapic_ack(l), 0x45);
    assert_int_equal(rd(l, 0xa0), 0x40);
    wr(l, 0xb0, 0);
    uint64_t x = 0;
    assert_int_equal(lapic_msr(l, 0x802, false, &x), 1); /* other x2APIC MSRs: not here */
    assert_int_equal(lapic_msr(l, 0x10, false, &x), 1);
}

static void test_esr_latching(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    enable(l);
    wr(l, 0x370, 0xfe); /* error LVT unmasked, vector 0xfe */
    int before = f->fb.delivered;
    wr(l, 0x310, 1u << 24);
    wr(l, 0x300, 0x4005); /* fixed IPI with illegal vector 5: not sent */
    assert_int_equal(f->fb.delivered, before);
    assert_int_equal(rd(l, 0x280), 0); /* not visible before a write */
    wr(l, 0x280, 0);
    assert_int_equal(rd(l, 0x280), 0x20);
    wr(l, 0x280, 0);
    assert_int_equal(rd(l, 0x280), 0);
    assert_int_equal(lapic_ack(l), 0xfe); /* the error interrupt */
    wr(l, 0xb0, 0);
    assert_int_equal(rd(l, 0x300) & (1u << 12), 0); /* delivery status idle */
}

static void test_destination_matching(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[2];
    struct apic_msg m = {.delivery = APIC_DM_FIXED, .src = 0};
    m.dest = 2;
    assert_true(lapic_match(l, &m));
    m.dest = 1;
    assert_false(lapic_match(l, &m));
    m.dest = 0xff;
    assert_true(lapic_match(l, &m));
    m.dest = 0x102; /* xAPIC destinations are 8 bits */
    assert_true(lapic_match(l, &m));

    /* logical flat */
    m.logical = true;
    wr(l, 0xd0, 0x04000000);
    m.dest = 0x04;
    assert_true(lapic_match(l, &m));
    m.dest = 0x0c;
    assert_true(lapic_match(l, &m));
    m.dest = 0x03;
    assert_false(lapic_match(l, &m));
    m.dest = 0xff;
    assert_true(lapic_match(l, &m));

    /* logical cluster: cluster 2, member bit 1 */
    wr(l, 0xe0, 0x0fffffff);
    wr(l, 0xd0, 0x21000000);
    m.dest = 0x21;
    assert_true(lapic_match(l, &m));
    m.dest = 0x23;
    assert_true(lapic_match(l, &m));
    m.dest = 0x22;
    assert_false(lapic_match(l, &m));
    m.dest = 0x11;
    assert_false(lapic_match(l, &m));
    m.dest = 0xf1; /* all clusters */
    assert_true(lapic_match(l, &m));

    /* shorthands use the sender's vCPU index */
    m = (struct apic_msg){.shorthand = APIC_SH_SELF, .src = 2};
    assert_true(lapic_match(l, &m));
    m.src = 1;
    assert_false(lapic_match(l, &m));
    m.shorthand = APIC_SH_OTHERS;
    assert_true(lapic_match(l, &m));
    m.src = 2;
    assert_false(lapic_match(l, &m));
    m.shorthand = APIC_SH_ALL;
    assert_true(lapic_match(l, &m));

    /* a globally disabled APIC is not there */
    uint64_t base = 0xfee00000;
    assert_int_equal(lapic_msr(l, 0x1b, true, &base), 0);
    assert_false(lapic_match(l, &m));
}

static void test_ipis(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NCPU; i++)
        enable(f->fb.l[i]);
    struct lapic *l0 = f->fb.l[0];
    /* fixed, all excluding self */
    wr(l0, 0x300, (3u << 18) | (1u << 14) | 0x40);
    assert_int_equal(f->fb.last.shorthand, APIC_SH_OTHERS);
    assert_int_equal(f->fb.last.src, 0);
    assert_false(irr_bit(l0, 0x40));
    assert_true(irr_bit(f->fb.l[1], 0x40));
    assert_true(irr_bit(f->fb.l[2], 0x40));
    assert_false(line(f->v[0]));
    assert_true(line(f->v[1]) && line(f->v[2]));
    /* self */
    wr(l0, 0x300, (1u << 18) | 0x41);
    assert_true(irr_bit(l0, 0x41));
    assert_int_equal(lapic_ack(l0), 0x41);
    wr(l0, 0xb0, 0);

    /* physical destination 2: NMI */
    wr(l0, 0x310, 2u << 24);
    wr(l0, 0x300, (1u << 14) | (APIC_DM_NMI << 8));
    assert_true(atomic_load(&f->v[2]->requests) & VCPU_REQ_NMI);
    assert_false(atomic_load(&f->v[1]->requests) & VCPU_REQ_NMI);

    /* INIT assert resets the target's APIC; the de-assert does nothing */
    wr(f->fb.l[1], 0x80, 0x20);
    wr(l0, 0x310, 1u << 24);
    wr(l0, 0x300, (1u << 15) | (1u << 14) | (APIC_DM_INIT << 8));
    assert_true(atomic_load(&f->v[1]->requests) & VCPU_REQ_INIT);
    assert_int_equal(rd(f->fb.l[1], 0x80), 0);
    assert_int_equal(rd(f->fb.l[1], 0xf0), 0xff);
    assert_false(irr_bit(f->fb.l[1], 0x40));
    assert_false(line(f->v[1]));
    assert_int_equal(rd(f->fb.l[1], 0x20), 1u << 24);
    atomic_fetch_and(&f->v[1]->requests, ~VCPU_REQ_INIT);
    wr(l0, 0x300, (1u << 15) | (APIC_DM_INIT << 8));
    assert_false(atomic_load(&f->v[1]->requests) & VCPU_REQ_INIT);
    /* SIPI (to a software-disabled APIC: still accepted) */
    wr(l0, 0x300, (1u << 14) | (APIC_DM_SIPI << 8) | 0x9a);
    assert_true(atomic_load(&f->v[1]->requests) & VCPU_REQ_SIPI);
    assert_int_equal(atomic_load(&f->v[1]->sipi_vector), 0x9a);
    /* fixed interrupts to a software-disabled APIC are dropped */
    wr(l0, 0x300, (1u << 14) | 0x50);
    assert_false(irr_bit(f->fb.l[1], 0x50));
    assert_int_equal(rd(l0, 0x300), (1u << 14) | 0x50);
}

/* waits up to 2 s for the vector to appear in IRR */
static bool wait_irr(struct lapic *l, unsigned vec)
{
    for (int i = 0; i < 2000; i++) {
        if (irr_bit(l, vec)) return true;
        usleep(1000);
    }
    return false;
}

static void test_timer_oneshot(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    enable(l);
    wr(l, 0x3e0, 0xb); /* divide by 1: the count runs at 1 GHz */
    wr(l, 0x320, 0x30);
    wr(l, 0x380, 200000000); /* 200 ms: long enough for a loaded host */
    uint32_t c1 = rd(l, 0x390);
    usleep(2000);
    uint32_t c2 = rd(l, 0x390);
    assert_true(c1 <= 200000000 && c1 > 0);
    assert_true(c2 < c1);
    assert_false(irr_bit(l, 0x30));
    assert_true(wait_irr(l, 0x30));
    assert_true(line(f->v[0]));
    assert_int_equal(rd(l, 0x390), 0);
    assert_int_equal(lapic_ack(l), 0x30);
    wr(l, 0xb0, 0);
    usleep(20000);
    assert_false(irr_bit(l, 0x30)); /* one-shot: once */

    /* divide by 128: 1000 ticks = 128 us; a masked timer counts but sets nothing */
    wr(l, 0x3e0, 0xa);
    wr(l, 0x320, 0x10031);
    wr(l, 0x380, 1000);
    usleep(20000);
    assert_false(irr_bit(l, 0x31));
    assert_int_equal(rd(l, 0x390), 0);
    /* writing 0 stops the count */
    wr(l, 0x320, 0x32);
    wr(l, 0x380, 100000000);
    wr(l, 0x380, 0);
    usleep(5000);
    assert_int_equal(rd(l, 0x390), 0);
}

static void test_timer_periodic(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    enable(l);
    wr(l, 0x3e0, 0x3);               /* divide by 16 */
    wr(l, 0x320, (1u << 17) | 0x35); /* periodic */
    wr(l, 0x380, 125000);            /* 2 ms */
    int fires = 0;
    uint64_t start = clock_ns();
    while (fires < 5 && clock_ns() - start < 2000000000ull) {
        if (lapic_ack(l) == 0x35) {
            fires++;
            assert_true(rd(l, 0x390) <= 125000);
            wr(l, 0xb0, 0);
        }
        usleep(200);
    }
    assert_int_equal(fires, 5);
    /* a hostile one-tick period is clamped instead of flooding the host */
    wr(l, 0x3e0, 0xb);
    wr(l, 0x380, 1);
    usleep(10000);
    assert_true(rd(l, 0x390) <= 1);
    wr(l, 0x380, 0);
}

static void test_tsc_deadline(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    enable(l);
    uint64_t d = clock_ns() + 5000000;
    /* not in TSC-deadline mode: writes ignored, reads 0 */
    assert_int_equal(lapic_msr(l, 0x6e0, true, &d), 0);
    uint64_t r = 1;
    assert_int_equal(lapic_msr(l, 0x6e0, false, &r), 0);
    assert_int_equal(r, 0);

    wr(l, 0x320, (2u << 17) | 0x36);
    d = clock_ns() + 100000000;
    assert_int_equal(lapic_msr(l, 0x6e0, true, &d), 0);
    assert_int_equal(lapic_msr(l, 0x6e0, false, &r), 0);
    assert_int_equal(r, d);
    wr(l, 0x380, 1000); /* initial count ignored in this mode */
    assert_int_equal(rd(l, 0x380), 0);
    assert_false(irr_bit(l, 0x36));
    assert_true(wait_irr(l, 0x36));
    assert_int_equal(lapic_msr(l, 0x6e0, false, &r), 0);
    assert_int_equal(r, 0); /* cleared when it fired */
    assert_int_equal(lapic_ack(l), 0x36);
    wr(l, 0xb0, 0);

    /* disarm with 0 */
    d = clock_ns() + 50000000;
    lapic_msr(l, 0x6e0, true, &d);
    d = 0;
    lapic_msr(l, 0x6e0, true, &d);
    usleep(60000);
    assert_false(irr_bit(l, 0x36));
    /* a past deadline fires at once; a huge one never */
    d = 1;
    lapic_msr(l, 0x6e0, true, &d);
    assert_true(wait_irr(l, 0x36));
    assert_int_equal(lapic_ack(l), 0x36);
    wr(l, 0xb0, 0);
    d = ~0ull;
    lapic_msr(l, 0x6e0, true, &d);
    usleep(5000);
    assert_false(irr_bit(l, 0x36));
    /* leaving TSC-deadline mode disarms */
    wr(l, 0x320, 0x36);
    assert_int_equal(lapic_msr(l, 0x6e0, false, &r), 0);
    assert_int_equal(r, 0);
}

/* While its vCPU runs, the timer is the vCPU's to fire (lapic_timer_poll), not
 * the timer thread's; when the vCPU stops running the thread takes it back. */
static void test_timer_fired_by_running_vcpu(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    enable(l);
    wr(l, 0x320, (2u << 17) | 0x37);
    lapic_timer_owner_runs(l, true);
    uint64_t d = clock_ns() + 20000000, r = 0;
    assert_int_equal(lapic_msr(l, 0x6e0, true, &d), 0);
    assert_false(lapic_timer_due(l));
    lapic_timer_poll(l); /* early: nothing */
    assert_false(irr_bit(l, 0x37));
    usleep(60000);
    /* past the deadline, but the timer thread left it to the vCPU */
    assert_false(irr_bit(l, 0x37));
    assert_true(lapic_timer_due(l));
    lapic_timer_poll(l);
    assert_true(irr_bit(l, 0x37));
    assert_true(line(f->v[0]));
    assert_false(lapic_timer_due(l));
    assert_int_equal(lapic_msr(l, 0x6e0, false, &r), 0);
    assert_int_equal(r, 0); /* cleared when it fired */
    assert_int_equal(lapic_ack(l), 0x37);
    wr(l, 0xb0, 0);

    /* armed while running, then the vCPU halts: the thread fires it */
    d = clock_ns() + 20000000;
    lapic_msr(l, 0x6e0, true, &d);
    lapic_timer_owner_runs(l, false);
    assert_false(lapic_timer_due(l));
    assert_true(wait_irr(l, 0x37));
    assert_int_equal(lapic_ack(l), 0x37);
    wr(l, 0xb0, 0);

    /* armed while halted, then it runs again before the deadline: the vCPU
     * fires it and the thread does not fire it a second time */
    d = clock_ns() + 30000000;
    lapic_msr(l, 0x6e0, true, &d);
    lapic_timer_owner_runs(l, true);
    usleep(60000);
    assert_false(irr_bit(l, 0x37));
    lapic_timer_poll(l);
    assert_true(irr_bit(l, 0x37));
    assert_int_equal(lapic_ack(l), 0x37);
    wr(l, 0xb0, 0);
    usleep(20000);
    assert_false(irr_bit(l, 0x37));

    /* periodic mode re-arms for the vCPU each time it fires */
    wr(l, 0x3e0, 0xb);
    wr(l, 0x320, (1u << 17) | 0x38);
    wr(l, 0x380, 2000000); /* 2 ms */
    for (int fires = 0; fires < 3; fires++) {
        uint64_t start = clock_ns();
        while (!lapic_timer_due(l) && clock_ns() - start < 2000000000ull)
            usleep(200);
        lapic_timer_poll(l);
        assert_int_equal(lapic_ack(l), 0x38);
        wr(l, 0xb0, 0);
    }
    wr(l, 0x380, 0); /* stopping the count disarms */
    assert_false(lapic_timer_due(l));
    lapic_timer_owner_runs(l, false);
}

static int ext_acks;
static int ext_ack(void *opaque)
{
    ext_acks++;
    return 0x28;
}

static void test_extint_and_lint(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[0];
    struct vcpu *v = f->v[0];
    lapic_set_extint_ack(l, ext_ack, NULL);
    enable(l);
    /* LINT0 masked: nothing */
    lapic_set_lint(l, 0, 1);
    assert_false(line(v));
    /* LINT0 as ExtINT: level-sensitive, bypasses the TPR */
    wr(l, 0x80, 0xf0);
    wr(l, 0x350, 0x700);
    assert_true(line(v));
    assert_int_equal(lapic_ack(l), 0x28);
    assert_true(line(v)); /* the PIC still asserts INTR */
    lapic_set_lint(l, 0, 0);
    assert_false(line(v));
    wr(l, 0x80, 0);
    /* ExtINT message (I/O APIC pin in ExtINT mode): one acknowledge */
    struct apic_msg m = {.delivery = APIC_DM_EXTINT, .assert = true, .src = -1};
    lapic_accept(l, &m);
    assert_true(line(v));
    assert_int_equal(lapic_ack(l), 0x28);
    assert_false(line(v));
    assert_int_equal(ext_acks, 2);
    /* LINT1 as NMI, LINT0 as fixed edge */
    wr(l, 0x360, 0x400);
    lapic_set_lint(l, 1, 1);
    assert_true(atomic_load(&v->requests) & VCPU_REQ_NMI);
    wr(l, 0x350, 0x44);
    lapic_set_lint(l, 0, 1);
    assert_true(irr_bit(l, 0x44));
    assert_int_equal(lapic_ack(l), 0x44);
    wr(l, 0xb0, 0);
    lapic_set_lint(l, 0, 0);
    lapic_set_lint(l, 7, 1); /* no such pin */
    lapic_set_lint(l, -1, 1);
    /* software disable masks every LVT; they stay masked after re-enable */
    wr(l, 0xf0, 0xff);
    assert_int_equal(rd(l, 0x350), 0x10044);
    wr(l, 0x350, 0x44);
    assert_int_equal(rd(l, 0x350), 0x10044);
    enable(l);
    assert_int_equal(rd(l, 0x350), 0x10044);
    /* globally disabled: LINT0 is INTR */
    uint64_t base = 0xfee00000;
    assert_int_equal(lapic_msr(l, 0x1b, true, &base), 0);
    lapic_set_lint(l, 0, 1);
    assert_true(line(v));
    assert_int_equal(lapic_ack(l), 0x28);
    lapic_set_lint(l, 0, 0);
    assert_false(line(v));
}

static void test_apic_base_msr(void **state)
{
    struct fx *f = *state;
    struct lapic *l = f->fb.l[1];
    enable(l);
    wr(l, 0x80, 0x30);
    uint64_t v = 0xfee00000ull | LAPIC_BASE_ENABLE | (1ull << 10); /* x2APIC */
    assert_int_equal(lapic_msr(l, 0x1b, true, &v), -1);
    v = 0xfee00000ull | LAPIC_BASE_ENABLE | 1;
    assert_int_equal(lapic_msr(l, 0x1b, true, &v), -1);
    v = 1ull << 40;
    assert_int_equal(lapic_msr(l, 0x1b, true, &v), -1);
    assert_int_equal(lapic_base(l), 0xfee00000ull | LAPIC_BASE_ENABLE);
    /* relocation, and the BSP flag is read-only */
    v = 0xfed00000ull | LAPIC_BASE_ENABLE | LAPIC_BASE_BSP;
    assert_int_equal(lapic_msr(l, 0x1b, true, &v), 0);
    assert_int_equal(lapic_base(l), 0xfed00000ull | LAPIC_BASE_ENABLE);
    v = 0;
    assert_int_equal(lapic_msr(l, 0x1b, false, &v), 0);
    assert_int_equal(v, 0xfed00000ull | LAPIC_BASE_ENABLE);
    /* disabling returns the APIC to its power-up state */
    fixed(l, 0x70, false);
    assert_true(line(f->v[1]));
    v = 0xfee00000ull;
    assert_int_equal(lapic_msr(l, 0x1b, true, &v), 0);
    assert_false(line(f->v[1]));
    fixed(l, 0x70, false);
    assert_false(irr_bit(l, 0x70));
    v = 0xfee00000ull | LAPIC_BASE_ENABLE;
    assert_int_equal(lapic_msr(l, 0x1b, true, &v), 0);
    assert_int_equal(rd(l, 0x80), 0);
    assert_int_equal(rd(l, 0xf0), 0xff);
}

/* ---- race: a sender on another thread, the vCPU acknowledging on this one ---- */

struct race {
    struct lapic *l;
    _Atomic int consumed;
    _Atomic bool stop;
    _Atomic bool busy[256]; /* vectors in flight: never send one twice (IRR would merge them) */
    int n;
};

static void *sender(void *arg)
{
    struct race *r = arg;
    unsigned vec = 0x20;
    for (int i = 0; i < r->n && !atomic_load(&r->stop); i++) {
        /* up to 16 distinct vectors in flight, so accepts overlap acks and EOIs */
        while (i - atomic_load(&r->consumed) >= 16 && !atomic_load(&r->stop))
            sched_yield();
        do /* the receiver takes the highest first: low vectors may linger */
            vec = vec == 0xef ? 0x20 : vec + 1;
        while (atomic_load(&r->busy[vec]));
        atomic_store(&r->busy[vec], true);
        fixed(r->l, (uint8_t)vec, false);
    }
    return NULL;
}

static int irr_top(struct lapic *l)
{
    for (int i = 7; i >= 0; i--) {
        uint32_t w = rd(l, 0x200 + 0x10 * (unsigned)i);
        if (w) return i * 32 + 31 - __builtin_clz(w);
    }
    return -1;
}

static void test_accept_ack_race(void **state)
{
    struct fx *f = *state;
    struct race r = {.l = f->fb.l[0], .n = 20000};
    struct vcpu *v = f->v[0];
    enable(r.l);
    pthread_t t;
    pthread_create(&t, NULL, sender, &r);
    uint64_t start = clock_ns();
    bool lost = false, bad_vector = false, timeout = false;
    while (atomic_load(&r.consumed) < r.n) {
        /* as the CPU does: look at the line, then acknowledge */
        if (line(v)) {
            int vec = lapic_ack(r.l);
            if (vec >= 0) {
                bad_vector |= !atomic_exchange(&r.busy[vec], false);
                /* a request of a higher class than the one now in service must
                 * keep the line up (IRR only grows behind our back) */
                int top = irr_top(r.l);
                if (top >= 0 && (top & 0xf0) > (vec & 0xf0) && !line(v)) {
                    lost = true;
                    break;
                }
                wr(r.l, 0xb0, 0);
                atomic_fetch_add(&r.consumed, 1);
            }
            continue;
        }
        /* Only this thread lowers the line, the sender raises it under the same
         * lock that sets IRR, and nothing stays in service (PPR 0): a pending
         * vector seen before a low line is a lost interrupt. */
        if (irr_top(r.l) >= 0 && !line(v)) {
            lost = true;
            break;
        }
        if (clock_ns() - start > 120000000000ull) { /* only on a very loaded host */
            timeout = true;
            break;
        }
        sched_yield();
    }
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    assert_false(lost);
    assert_false(bad_vector);
    assert_false(timeout);
    assert_false(line(v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_values_and_hostile_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_and_eoi_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tpr_ppr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_esr_latching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destination_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_oneshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_periodic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_fired_by_running_vcpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsc_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extint_and_lint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apic_base_msr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_ack_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
