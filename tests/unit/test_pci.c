/* PCI tests through the port router: the host bridge's identity, absent
 * functions reading all ones, CONFIG_ADDRESS latch rules (Linux's
 * pci_check_type1() sequence), byte/word data-port accesses, an added function
 * with BAR sizing and W1C status, reset through 0xCF9 forwarded to the ACPI PM
 * device, and a hostile fuzz. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/fake_dev.h"
#include "devices/acpi_pm.h"
#include "devices/pci.h"
#include "machine/router.h"

struct fixture {
    struct router r;
    struct pci_bus bus;
    struct acpi_pm pm;
    _Atomic int resets;
};

static void on_reset(void *opaque)
{
    ((struct fixture *)opaque)->resets++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    router_init(&f->r);
    pci_bus_init(&f->bus);
    acpi_pm_init(&f->pm, NULL, NULL, NULL, on_reset, f);
    pci_bus_set_rcr(&f->bus, &acpi_pm_rcr_ops, &f->pm);
    assert_int_equal(pci_bus_register(&f->bus, &f->r), 0);
    assert_int_equal(acpi_pm_register(&f->pm, &f->r), 0);
    assert_int_equal(acpi_pm_register_rcr(&f->pm, &f->r), -EEXIST); /* 0xCF9 is the PCI host's */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pci_bus_destroy(&f->bus);
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

static uint32_t cfg(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC);
}

static uint32_t cfg_read(struct fixture *f, unsigned dev, unsigned fn, unsigned reg, int size)
{
    out(f, 0xCF8, 4, cfg(0, dev, fn, reg));
    return in(f, (uint16_t)(0xCFC + (reg & 3)), size);
}

static void cfg_write(struct fixture *f, unsigned dev, unsigned fn, unsigned reg, int size,
                      uint32_t v)
{
    out(f, 0xCF8, 4, cfg(0, dev, fn, reg));
    out(f, (uint16_t)(0xCFC + (reg & 3)), size, v);
}

static void test_host_bridge(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cfg_read(f, 0, 0, 0x00, 4), 0x12378086);
    assert_int_equal(cfg_read(f, 0, 0, 0x00, 2), 0x8086);
    assert_int_equal(cfg_read(f, 0, 0, 0x02, 2), 0x1237);
    assert_int_equal(cfg_read(f, 0, 0, 0x01, 1), 0x80);
    assert_int_equal(cfg_read(f, 0, 0, 0x08, 4), 0x06000002);
    assert_int_equal(cfg_read(f, 0, 0, 0x0A, 2), 0x0600); /* what pci_sanity_check() looks at */
    assert_int_equal(cfg_read(f, 0, 0, 0x0E, 1), 0x00);
    assert_int_equal(cfg_read(f, 0, 0, 0x10, 4), 0); /* no BARs */
    cfg_write(f, 0, 0, 0x10, 4, 0xFFFFFFFF);
    assert_int_equal(cfg_read(f, 0, 0, 0x10, 4), 0);
    cfg_write(f, 0, 0, 0x00, 4, 0);
    assert_int_equal(cfg_read(f, 0, 0, 0x00, 4), 0x12378086); /* read-only */
    cfg_write(f, 0, 0, 0x59, 1, 0x30);                        /* chipset register (PAM0) stores */
    assert_int_equal(cfg_read(f, 0, 0, 0x59, 1), 0x30);
}

static void test_absent(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cfg_read(f, 1, 0, 0x00, 4), 0xFFFFFFFF);
    assert_int_equal(cfg_read(f, 31, 7, 0x00, 4), 0xFFFFFFFF);
    assert_int_equal(cfg_read(f, 0, 1, 0x00, 4), 0xFFFFFFFF);
    assert_int_equal(cfg_read(f, 3, 0, 0x02, 2), 0xFFFF);
    assert_int_equal(cfg_read(f, 3, 0, 0x03, 1), 0xFF);
    out(f, 0xCF8, 4, cfg(1, 0, 0, 0)); /* bus 1 does not exist */
    assert_int_equal(in(f, 0xCFC, 4), 0xFFFFFFFF);
    out(f, 0xCF8, 4, cfg(0, 0, 0, 0) & ~0x80000000u); /* enable bit clear */
    assert_int_equal(in(f, 0xCFC, 4), 0xFFFFFFFF);
    cfg_write(f, 5, 0, 0x04, 2, 0x0007); /* writes to nothing are dropped */
}

static void test_config_address_latch(void **state)
{
    struct fixture *f = *state;
    /* Linux's pci_check_type1() */
    out(f, 0xCFB, 1, 0x01);
    uint32_t tmp = in(f, 0xCF8, 4);
    out(f, 0xCF8, 4, 0x80000000);
    assert_int_equal(in(f, 0xCF8, 4), 0x80000000);
    out(f, 0xCF8, 4, tmp);
    /* narrow accesses do not reach CONFIG_ADDRESS */
    out(f, 0xCF8, 4, cfg(0, 0, 0, 0x08));
    out(f, 0xCF8, 2, 0);
    out(f, 0xCF8, 1, 0);
    out(f, 0xCFA, 2, 0);
    out(f, 0xCFB, 1, 0);
    assert_int_equal(in(f, 0xCF8, 4), cfg(0, 0, 0, 0x08));
    assert_int_equal(in(f, 0xCF8, 2), 0xFFFF);
    assert_int_equal(in(f, 0xCFA, 1), 0xFF);
    /* reserved bits read 0; bits 1:0 are not part of the register number */
    out(f, 0xCF8, 4, 0xFF000003);
    assert_int_equal(in(f, 0xCF8, 4), 0x80000000);
    assert_int_equal(in(f, 0xCFC, 4), 0x12378086);
    /* data-port offsets select bytes of the addressed dword */
    assert_int_equal(in(f, 0xCFD, 1), 0x80);
    assert_int_equal(in(f, 0xCFE, 2), 0x1237);
    assert_int_equal(in(f, 0xCFD, 2), 0x3780);
    /* a dword at 0xCFE runs past the route and is split into bytes by the router */
    assert_int_equal(in(f, 0xCFE, 4) & 0xFFFF, 0x1237);
}

struct fake_fn {
    pthread_mutex_t lock;
    struct pci_cfg cfg;
    int writes;
};

static uint32_t fn_read(void *opaque, unsigned reg, int size)
{
    struct fake_fn *d = opaque;
    pthread_mutex_lock(&d->lock);
    uint32_t v = pci_cfg_read(&d->cfg, reg, size);
    pthread_mutex_unlock(&d->lock);
    return v;
}

static void fn_write(void *opaque, unsigned reg, int size, uint32_t value)
{
    struct fake_fn *d = opaque;
    pthread_mutex_lock(&d->lock);
    pci_cfg_write(&d->cfg, reg, size, value);
    d->writes++;
    pthread_mutex_unlock(&d->lock);
}

static const struct pci_fn_ops fake_ops = {.cfg_read = fn_read, .cfg_write = fn_write};

static void test_add_function(void **state)
{
    struct fixture *f = *state;
    struct fake_fn d = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pci_cfg_init(&d.cfg, 0x1AF4, 0x1041, 0x02000001, 0x00);
    assert_int_equal(pci_cfg_set_bar(&d.cfg, 0, 0x1000, 0), 0);
    assert_int_equal(pci_cfg_set_bar(&d.cfg, 1, 0x40, PCI_BAR_IO), 0);
    assert_int_equal(pci_cfg_set_bar(&d.cfg, 2, 0x4000, PCI_BAR_MEM64 | PCI_BAR_PREFETCH), 0);
    assert_int_equal(pci_cfg_set_bar(&d.cfg, 5, 0x4000, PCI_BAR_MEM64), -1);
    assert_int_equal(pci_cfg_set_bar(&d.cfg, 4, 0x3000, 0), -1);
    d.cfg.data[0x06] = 0x00;
    d.cfg.data[0x07] = 0x20; /* received master abort */

    assert_int_equal(pci_add_function(&f->bus, PCI_DEVFN(3, 0), &fake_ops, &d), 0);
    assert_int_equal(pci_add_function(&f->bus, PCI_DEVFN(3, 0), &fake_ops, &d), -EEXIST);
    assert_int_equal(pci_add_function(&f->bus, PCI_DEVFN(0, 0), &fake_ops, &d), -EEXIST);
    assert_int_equal(pci_add_function(&f->bus, PCI_DEVFN(4, 0), NULL, &d), -EINVAL);
    assert_int_equal(cfg_read(f, 3, 0, 0x00, 4), 0x10411AF4);
    assert_int_equal(cfg_read(f, 3, 1, 0x00, 4), 0xFFFFFFFF);

    /* BAR sizing as Linux does it: save, write ones, read, restore */
    uint32_t saved = cfg_read(f, 3, 0, 0x10, 4);
    cfg_write(f, 3, 0, 0x10, 4, 0xFFFFFFFF);
    assert_int_equal(cfg_read(f, 3, 0, 0x10, 4), 0xFFFFF000);
    cfg_write(f, 3, 0, 0x10, 4, saved);
    cfg_write(f, 3, 0, 0x14, 4, 0xFFFFFFFF);
    assert_int_equal(cfg_read(f, 3, 0, 0x14, 4), 0xFFFFFFC1);
    cfg_write(f, 3, 0, 0x18, 4, 0xFFFFFFFF);
    cfg_write(f, 3, 0, 0x1C, 4, 0xFFFFFFFF);
    assert_int_equal(cfg_read(f, 3, 0, 0x18, 4), 0xFFFFC00C);
    assert_int_equal(cfg_read(f, 3, 0, 0x1C, 4), 0xFFFFFFFF);
    cfg_write(f, 3, 0, 0x18, 4, 0xFEB00000);
    cfg_write(f, 3, 0, 0x1C, 4, 0x00000001);
    assert_int_equal(pci_cfg_bar_addr(&d.cfg, 2), 0x1FEB00000ull);
    cfg_write(f, 3, 0, 0x14, 4, 0xC040);
    assert_int_equal(pci_cfg_bar_addr(&d.cfg, 1), 0xC040);

    /* command bits write, status bits clear by writing 1 */
    cfg_write(f, 3, 0, 0x04, 2, 0xFFFF);
    assert_int_equal(cfg_read(f, 3, 0, 0x04, 2), 0x0547);
    assert_int_equal(cfg_read(f, 3, 0, 0x06, 2), 0x2000);
    cfg_write(f, 3, 0, 0x06, 2, 0x2000);
    assert_int_equal(cfg_read(f, 3, 0, 0x06, 2), 0x0000);
    assert_true(d.writes > 0);
    pci_config_write(&f->bus, 0, PCI_DEVFN(3, 0), 0x3C, 1, 11);
    assert_int_equal(pci_config_read(&f->bus, 0, PCI_DEVFN(3, 0), 0x3C, 1), 11);
    assert_int_equal(pci_config_read(&f->bus, 0, PCI_DEVFN(3, 0), 0x3E, 4),
                     0xFFFFFFFF); /* crosses a dword */
    assert_int_equal(pci_config_read(&f->bus, 0, PCI_DEVFN(3, 0), 0x100, 4),
                     0); /* no extended space */
}

static void test_reset_cf9(void **state)
{
    struct fixture *f = *state;
    uint8_t cf9 = (uint8_t)(in(f, 0xCF9, 1) & ~0x06);
    out(f, 0xCF9, 1, cf9 | 0x02);
    assert_int_equal(f->resets, 0);
    out(f, 0xCF9, 1, cf9 | 0x06);
    assert_int_equal(f->resets, 1);
    /* CONFIG_ADDRESS is untouched by byte writes to 0xCF9 */
    out(f, 0xCF8, 4, 0x80000000);
    out(f, 0xCF9, 1, 0x02);
    assert_int_equal(in(f, 0xCF8, 4), 0x80000000);
    /* a dword at 0xCF8 never resets */
    out(f, 0xCF8, 4, 0x80000400);
    assert_int_equal(f->resets, 1);
}

static uint64_t mmio_read(struct fixture *f, uint64_t addr, int size)
{
    struct cpu_io io = {.kind = CPU_IO_MMIO, .size = (uint8_t)size, .addr = addr};
    router_dispatch(&f->r, &io);
    return io.data;
}

static void mmio_write(struct fixture *f, uint64_t addr, int size, uint64_t v)
{
    struct cpu_io io = {
        .kind = CPU_IO_MMIO, .write = true, .size = (uint8_t)size, .addr = addr, .data = v};
    router_dispatch(&f->r, &io);
}

static void test_ecam(void **state)
{
    struct fixture *f = *state;
    const uint64_t base = 0xB0000000;
    assert_int_equal(pci_bus_register_ecam(&f->bus, &f->r, base + 1, 256), -EINVAL);
    assert_int_equal(pci_bus_register_ecam(&f->bus, &f->r, base, 256), 0);
    assert_int_equal(mmio_read(f, base, 4), 0x12378086);
    assert_int_equal(mmio_read(f, base + 2, 2), 0x1237);
    assert_int_equal(mmio_read(f, base + 0x0B, 1), 0x06);
    assert_int_equal(mmio_read(f, base, 8),
                     0x0280000612378086ull);            /* vendor/device, command/status */
    assert_int_equal(mmio_read(f, base + 0x100, 4), 0); /* no extended capabilities */
    assert_int_equal(mmio_read(f, base + (1 << 15), 4), 0xFFFFFFFF); /* 01.0 absent */
    assert_int_equal(mmio_read(f, base + (1 << 20), 4), 0xFFFFFFFF); /* bus 1 */
    assert_int_equal(mmio_read(f, base + 0x03, 2), 0x0612);          /* straddles a dword */
    mmio_write(f, base + 0x59, 1, 0x11);
    assert_int_equal(cfg_read(f, 0, 0, 0x59, 1), 0x11);
    mmio_write(f, base + 0x58, 8, 0x3322110000000000ull);
    assert_int_equal(cfg_read(f, 0, 0, 0x5C, 4), 0x33221100);
    mmio_write(f, base + 0xFFE, 4, 0xFFFFFFFF); /* runs into the next function's space: bytes */
    assert_int_equal(mmio_read(f, base + 0x1000, 4), 0xFFFFFFFF);
}

static void test_hostile(void **state)
{
    struct fixture *f = *state;
    struct fake_fn d = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pci_cfg_init(&d.cfg, 0x1AF4, 0x1000, 0x02000000, 0x80);
    pci_cfg_set_bar(&d.cfg, 0, 0x100, PCI_BAR_IO);
    assert_int_equal(pci_add_function(&f->bus, PCI_DEVFN(1, 0), &fake_ops, &d), 0);
    srand(5);
    for (int i = 0; i < 300000; i++) {
        uint16_t port = (uint16_t)(0xCF8 + rand() % 8);
        int size = 1 << (rand() % 3);
        uint32_t v = (uint32_t)rand() << 1 ^ (uint32_t)rand();
        if (port == 0xCF8 && size == 4)
            v = (v & 0x0000FFFF) | 0x80000000;    /* mostly bus 0 so functions are hit */
        if (port == 0xCF9 && size == 1) v &= ~4u; /* resets are counted, not interesting here */
        struct cpu_io io = {.kind = CPU_IO_PIO,
                            .write = rand() & 1,
                            .size = (uint8_t)size,
                            .addr = port,
                            .data = v};
        router_dispatch(&f->r, &io);
    }
    pci_bus_reset(&f->bus);
    assert_int_equal(in(f, 0xCF8, 4), 0);
    assert_int_equal(cfg_read(f, 0, 0, 0x00, 4), 0x12378086);
    assert_int_equal(cfg_read(f, 1, 0, 0x00, 4), 0x10001AF4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_host_bridge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_address_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_function, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_cf9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecam, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
