/* acpi.c — ACPI table generator (see acpi.h for the layout and the contracts the
 * platform devices must honour). Table formats: ACPI 6.0 Errata A, chapter 5. */
#include "machine/acpi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/aml.h"

#define OEM_ID           "UNUM  "   /* 6 bytes */
#define OEM_TABLE_ID     "UNUMVM  " /* 8 bytes */
#define OEM_REVISION     1
#define CREATOR_ID       "UNUM"
#define CREATOR_REVISION 1

#define HDR_LEN  36
#define FADT_LEN 276 /* revision 6 */
#define FACS_LEN 64
#define RSDP_LEN 36

/* ------------------------------------------------------------------------------ */
/* A growable byte buffer with little-endian writers. */

struct blob {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void b_reserve(struct blob *b, size_t n)
{
    if (b->oom || b->len + n <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) {
        b->oom = true;
        return;
    }
    b->p = q;
    b->cap = cap;
}

static void b_put(struct blob *b, uint64_t v, int n)
{
    b_reserve(b, (size_t)n);
    if (b->oom) return;
    for (int i = 0; i < n; i++)
        b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void b_mem(struct blob *b, const void *s, size_t n)
{
    b_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void b_zero(struct blob *b, size_t n)
{
    b_reserve(b, n);
    if (b->oom) return;
    memset(b->p + b->len, 0, n);
    b->len += n;
}

static void le_at(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t acpi_checksum(const void *p, size_t n)
{
    const uint8_t *q = p;
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + q[i]);
    return s;
}

/* Standard 36-byte header; length and checksum are fixed up by hdr_finish(). */
static void hdr_begin(struct blob *b, const char sig[4], uint8_t rev)
{
    b_mem(b, sig, 4);
    b_put(b, 0, 4); /* length */
    b_put(b, rev, 1);
    b_put(b, 0, 1); /* checksum */
    b_mem(b, OEM_ID, 6);
    b_mem(b, OEM_TABLE_ID, 8);
    b_put(b, OEM_REVISION, 4);
    b_mem(b, CREATOR_ID, 4);
    b_put(b, CREATOR_REVISION, 4);
}

static void hdr_finish(uint8_t *t, size_t len)
{
    le_at(t + 4, len, 4);
    t[9] = 0;
    t[9] = (uint8_t)(0x100 - acpi_checksum(t, len));
}

/* ------------------------------------------------------------------------------ */

void acpi_config_defaults(struct acpi_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->lapic_addr = ACPI_DEFAULT_LAPIC_ADDR;
    cfg->ioapic_id = 0;
    cfg->ioapic_addr = ACPI_DEFAULT_IOAPIC_ADDR;
    cfg->ioapic_gsi_base = 0;
    cfg->pm1a_evt_port = ACPI_DEFAULT_PM_BASE;
    cfg->pm1a_cnt_port = ACPI_DEFAULT_PM_BASE + 4;
    cfg->pm_tmr_port = ACPI_DEFAULT_PM_BASE + 8;
    cfg->pm_tmr_32bit = false;
    cfg->smi_cmd_port = ACPI_DEFAULT_SMI_CMD;
    cfg->acpi_enable = ACPI_DEFAULT_ACPI_ENABLE;
    cfg->acpi_disable = ACPI_DEFAULT_ACPI_DISABLE;
    cfg->sci_irq = ACPI_DEFAULT_SCI_IRQ;
    cfg->s5_slp_typ = ACPI_DEFAULT_S5_SLP_TYP;
    cfg->power_button = true;
    cfg->reset_port = ACPI_DEFAULT_RESET_PORT;
    cfg->reset_value = ACPI_DEFAULT_RESET_VALUE;
    cfg->has_pic = true;
    cfg->has_pit = true;
    cfg->has_rtc = true;
    cfg->rtc_century = 0x32;
    cfg->serial[0] = (struct acpi_serial){.port = 0x3F8, .irq = 4};
    cfg->nserial = 1;
    cfg->pci_mem32_base = 0xC0000000u;
    cfg->pci_mem32_size = 0xFEC00000u - 0xC0000000u;
    cfg->pci_bus_end = 0xFF;
    cfg->pci_intx_gsi_base = ACPI_DEFAULT_PCI_INTX_GSI_BASE;
    cfg->pci_intx_gsi_count = ACPI_DEFAULT_PCI_INTX_GSI_COUNT;
    cfg->pci_slots = 32;
    cfg->numa_nodes = 1;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static uint8_t distance(const struct acpi_config *cfg, uint32_t i, uint32_t j)
{
    if (cfg->numa_distance) return cfg->numa_distance[i * cfg->numa_nodes + j];
    return i == j ? 10 : 20;
}

/* ISA IRQs taken by edge-triggered legacy devices and the SCI. */
static uint32_t isa_irqs_used(const struct acpi_config *cfg)
{
    uint32_t m = 1u << 0 | 1u << 2 | 1u << cfg->sci_irq;
    if (cfg->has_rtc) m |= 1u << 8;
    if (cfg->has_i8042) m |= 1u << 1;
    if (cfg->has_i8042 && cfg->i8042_aux) m |= 1u << 12;
    for (uint32_t i = 0; i < cfg->nserial && i < ACPI_MAX_SERIAL; i++)
        m |= 1u << (cfg->serial[i].irq & 15);
    return m;
}

static uint32_t intx_gsi(const struct acpi_config *cfg, uint32_t slot, uint32_t pin)
{
    return cfg->pci_intx_gsi_base + (slot + pin) % cfg->pci_intx_gsi_count;
}

int acpi_config_check(const struct acpi_config *cfg)
{
    if (!cfg->cpus || cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS || !cfg->cpus[0].present)
        return -EINVAL;
    uint32_t nodes = cfg->numa_nodes ? cfg->numa_nodes : 1;
    if (nodes > ACPI_MAX_NODES) return -EINVAL;
    for (uint32_t i = 0; i < cfg->ncpus; i++) {
        if (cfg->cpus[i].apic_id == 0xFFFFFFFFu || cfg->cpus[i].node >= nodes) return -EINVAL;
        for (uint32_t j = 0; j < i; j++)
            if (cfg->cpus[j].apic_id == cfg->cpus[i].apic_id) return -EINVAL;
    }
    if (!cfg->lapic_addr || !cfg->ioapic_addr) return -EINVAL;
    if (!cfg->pm1a_evt_port || !cfg->pm1a_cnt_port || !cfg->pm_tmr_port) return -EINVAL;
    if ((cfg->gpe0_len & 1) || (!cfg->gpe0_port) != (!cfg->gpe0_len)) return -EINVAL;
    if (cfg->sci_irq == 0 || cfg->sci_irq == 2 || cfg->sci_irq > 15 || cfg->s5_slp_typ > 7)
        return -EINVAL;
    if (cfg->nserial > ACPI_MAX_SERIAL) return -EINVAL;
    for (uint32_t i = 0; i < cfg->nserial; i++)
        if (!cfg->serial[i].port || cfg->serial[i].irq > 15 || cfg->serial[i].irq == 2 ||
            cfg->serial[i].irq == 0)
            return -EINVAL;
    /* PCI windows: the 32-bit one must sit below 4 GiB and clear of the APICs. */
    uint64_t m32 = cfg->pci_mem32_base, m32len = cfg->pci_mem32_size;
    if (m32len == 0 || m32 + m32len > (1ull << 32) ||
        overlaps(m32, m32len, cfg->ioapic_addr, 0x1000) ||
        overlaps(m32, m32len, cfg->lapic_addr, 0x1000))
        return -EINVAL;
    if (cfg->pci_mem64_size && (cfg->pci_mem64_base + cfg->pci_mem64_size < cfg->pci_mem64_base))
        return -EINVAL;
    if (cfg->pci_ecam_base) {
        uint64_t elen = ((uint64_t)cfg->pci_bus_end + 1) << 20;
        if ((cfg->pci_ecam_base & 0xFFFFF) || cfg->pci_ecam_base + elen > (1ull << 32) ||
            overlaps(cfg->pci_ecam_base, elen, m32, m32len) ||
            overlaps(cfg->pci_ecam_base, elen, cfg->ioapic_addr, 0x1000) ||
            overlaps(cfg->pci_ecam_base, elen, cfg->lapic_addr, 0x1000))
            return -EINVAL;
    }
    if (cfg->pci_node >= nodes) return -EINVAL;
    if (cfg->pci_slots > 32 || cfg->pci_intx_gsi_count == 0 || cfg->pci_intx_gsi_count > 32)
        return -EINVAL;
    if (cfg->pci_slots) {
        uint32_t used = isa_irqs_used(cfg);
        for (uint32_t g = 0; g < cfg->pci_intx_gsi_count; g++) {
            uint32_t gsi = cfg->pci_intx_gsi_base + g;
            if (gsi < cfg->ioapic_gsi_base) return -EINVAL;
            uint32_t irq = gsi - cfg->ioapic_gsi_base;
            if (irq < 16 && (used & (1u << irq)))
                return -EINVAL; /* would share an edge/active-high ISA line */
        }
    }
    for (uint32_t i = 0; i < cfg->nmem; i++) {
        const struct acpi_mem_range *r = &cfg->mem[i];
        if (r->node >= nodes || r->base + r->size < r->base) return -EINVAL;
    }
    if (nodes > 1) {
        for (uint32_t i = 0; i < nodes; i++)
            for (uint32_t j = 0; j < nodes; j++) {
                uint8_t d = distance(cfg, i, j);
                if (i == j ? d != 10 : d <= 10) /* Linux ignores a SLIT otherwise */
                    return -EINVAL;
            }
    }
    return 0;
}

/* ------------------------------------------------------------------------------ */
/* DSDT */

static void crs_io_irq(struct aml *a, uint16_t port, uint8_t len, int irq)
{
    aml_name_decl(a, "_CRS");
    aml_rt_begin(a);
    aml_rd_io(a, port, port, 1, len);
    if (irq >= 0) aml_rd_irq_noflags(a, (uint16_t)(1u << irq));
    aml_rt_end(a);
}

/* The legacy ISA devices the platform has. Absent ones are left out entirely. */
static void dsdt_isa(struct aml *a, const struct acpi_config *cfg)
{
    char name[5];
    for (uint32_t i = 0; i < cfg->nserial; i++) {
        snprintf(name, sizeof(name), "COM%u", (unsigned)(i + 1) % 10);
        aml_device_begin(a, name);
        aml_name_eisaid(a, "_HID", "PNP0501");
        aml_name_int(a, "_UID", i + 1);
        crs_io_irq(a, cfg->serial[i].port, 8, cfg->serial[i].irq);
        aml_device_end(a);
    }
    if (cfg->has_rtc) {
        aml_device_begin(a, "RTC");
        aml_name_eisaid(a, "_HID", "PNP0B00");
        crs_io_irq(a, 0x70, 2, 8);
        aml_device_end(a);
    }
    if (cfg->has_pit) {
        aml_device_begin(a, "TIMR");
        aml_name_eisaid(a, "_HID", "PNP0100");
        crs_io_irq(a, 0x40, 4, 0);
        aml_device_end(a);
    }
    if (cfg->has_pic) {
        aml_device_begin(a, "PIC");
        aml_name_eisaid(a, "_HID", "PNP0000");
        aml_name_decl(a, "_CRS");
        aml_rt_begin(a);
        aml_rd_io(a, 0x20, 0x20, 1, 2);
        aml_rd_io(a, 0xA0, 0xA0, 1, 2);
        aml_rd_irq_noflags(a, 1u << 2);
        aml_rt_end(a);
        aml_device_end(a);
    }
    if (cfg->has_i8042) {
        aml_device_begin(a, "PS2K");
        aml_name_eisaid(a, "_HID", "PNP0303");
        aml_name_decl(a, "_CRS");
        aml_rt_begin(a);
        aml_rd_io(a, 0x60, 0x60, 1, 1);
        aml_rd_io(a, 0x64, 0x64, 1, 1);
        aml_rd_irq_noflags(a, 1u << 1);
        aml_rt_end(a);
        aml_device_end(a);
        if (cfg->i8042_aux) {
            aml_device_begin(a, "PS2M");
            aml_name_eisaid(a, "_HID", "PNP0F13");
            aml_name_decl(a, "_CRS");
            aml_rt_begin(a);
            aml_rd_irq_noflags(a, 1u << 12);
            aml_rt_end(a);
            aml_device_end(a);
        }
    }
}

/* PCI root bridge \_SB.PCI0 with its windows and INTx routing. */
static void dsdt_pci(struct aml *a, const struct acpi_config *cfg)
{
    aml_device_begin(a, "PCI0");
    if (cfg->pci_ecam_base) {
        aml_name_eisaid(a, "_HID", "PNP0A08");
        aml_name_eisaid(a, "_CID", "PNP0A03");
    } else {
        aml_name_eisaid(a, "_HID", "PNP0A03");
    }
    aml_name_int(a, "_UID", 0);
    aml_name_int(a, "_SEG", 0);
    aml_name_int(a, "_BBN", 0);
    if (cfg->numa_nodes > 1) /* else Linux: "Unknown NUMA node; performance will be reduced" */
        aml_name_int(a, "_PXM", cfg->pci_node);

    aml_name_decl(a, "_CRS");
    aml_rt_begin(a);
    aml_rd_word_bus(a, 0, cfg->pci_bus_end);
    aml_rd_io(a, 0x0CF8, 0x0CF8, 1, 8); /* the configuration mechanism #1 ports */
    aml_rd_word_io(a, 0x0000, 0x0CF7);
    aml_rd_word_io(a, 0x0D00, 0xFFFF);
    if (cfg->has_vga) aml_rd_dword_mem(a, 0x000A0000, 0x000BFFFF, true);
    aml_rd_dword_mem(a, (uint32_t)cfg->pci_mem32_base,
                     (uint32_t)(cfg->pci_mem32_base + cfg->pci_mem32_size - 1), false);
    if (cfg->pci_mem64_size)
        aml_rd_qword_mem(a, cfg->pci_mem64_base, cfg->pci_mem64_base + cfg->pci_mem64_size - 1,
                         false);
    aml_rt_end(a);

    /* _PRT: Package { Address (slot << 16 | 0xFFFF), Pin, Source (0 = GSI), GSI }. */
    if (cfg->pci_slots) {
        aml_name_decl(a, "_PRT");
        aml_package_begin(a);
        for (uint32_t slot = 0; slot < cfg->pci_slots; slot++)
            for (uint32_t pin = 0; pin < 4; pin++) {
                aml_package_begin(a);
                aml_int(a, (uint64_t)slot << 16 | 0xFFFF);
                aml_int(a, pin);
                aml_int(a, 0);
                aml_int(a, intx_gsi(cfg, slot, pin));
                aml_package_end(a);
            }
        aml_package_end(a);
    }

    if (cfg->isa_bridge) {
        aml_device_begin(a, "ISA");
        aml_name_int(a, "_ADR", cfg->isa_bridge_adr);
        dsdt_isa(a, cfg);
        aml_device_end(a);
    }
    aml_device_end(a);
}

/* Processor objects. Each Cxxx carries _UID = MADT processor UID. CPU hotplug
 * adds here, per processor: _STA (present/enabled from a hotplug register),
 * _MAT (its MADT entry), _EJ0; and in the container a scan method run from a GPE. */
static void dsdt_cpus(struct aml *a, const struct acpi_config *cfg)
{
    aml_device_begin(a, "CPUS");
    aml_name_str(a, "_HID", "ACPI0010");
    aml_name_eisaid(a, "_CID", "PNP0A05");
    char name[5];
    for (uint32_t i = 0; i < cfg->ncpus; i++) {
        snprintf(name, sizeof(name), "C%03X", (unsigned)i & 0xFFF);
        aml_device_begin(a, name);
        aml_name_str(a, "_HID", "ACPI0007");
        aml_name_int(a, "_UID", i);
        aml_device_end(a);
    }
    aml_device_end(a);
}

/* Motherboard resources Linux must see reserved: the ECAM window (else it
 * refuses MMCONFIG). */
static void dsdt_motherboard(struct aml *a, const struct acpi_config *cfg)
{
    if (!cfg->pci_ecam_base) return;
    aml_device_begin(a, "RES0");
    aml_name_eisaid(a, "_HID", "PNP0C02");
    aml_name_decl(a, "_CRS");
    aml_rt_begin(a);
    aml_rd_mem32_fixed(a, (uint32_t)cfg->pci_ecam_base,
                       (uint32_t)(((uint64_t)cfg->pci_bus_end + 1) << 20), false);
    aml_rt_end(a);
    aml_device_end(a);
}

static int build_dsdt(const struct acpi_config *cfg, struct aml *a)
{
    /* Header placeholder: written into the same buffer so the AML follows it. */
    struct blob h = {0};
    hdr_begin(&h, "DSDT", 2); /* revision 2: 64-bit integers */
    if (h.oom) return -ENOMEM;
    aml_bytes(a, h.p, h.len);
    free(h.p);

    /* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved. */
    aml_name_decl(a, "\\_S5");
    aml_package_begin(a);
    aml_int(a, cfg->s5_slp_typ);
    aml_int(a, cfg->s5_slp_typ);
    aml_int(a, 0);
    aml_int(a, 0);
    aml_package_end(a);

    aml_scope_begin(a, "\\_SB");
    dsdt_pci(a, cfg);
    if (!cfg->isa_bridge) dsdt_isa(a, cfg);
    dsdt_motherboard(a, cfg);
    dsdt_cpus(a, cfg);
    aml_scope_end(a);

    int err = aml_finish(a);
    if (err) return err;
    if (a->len > UINT32_MAX) return -E2BIG;
    hdr_finish(a->data, a->len);
    return 0;
}

int acpi_build_dsdt(const struct acpi_config *cfg, uint8_t **out, size_t *len)
{
    int err = acpi_config_check(cfg);
    if (err) return err;
    struct aml a;
    aml_init(&a);
    err = build_dsdt(cfg, &a);
    if (err) {
        aml_free(&a);
        return err;
    }
    *out = a.data;
    *len = a.len;
    return 0;
}

/* ------------------------------------------------------------------------------ */
/* MADT, SRAT, SLIT, MCFG (position-independent) */

static bool use_x2apic_entry(const struct acpi_config *cfg, uint32_t i)
{
    return cfg->cpus[i].apic_id >= 0xFF || i >= 0xFF;
}

/* Interrupt Source Override: ISA irq -> gsi with MPS INTI flags. */
static void madt_iso(struct blob *b, uint8_t irq, uint32_t gsi, uint16_t flags)
{
    b_put(b, 2, 1);
    b_put(b, 10, 1);
    b_put(b, 0, 1); /* bus: ISA */
    b_put(b, irq, 1);
    b_put(b, gsi, 4);
    b_put(b, flags, 2);
}

#define MPS_CONFORMING 0x0000
#define MPS_HIGH_EDGE  0x0005
#define MPS_HIGH_LEVEL 0x000D
#define MPS_LOW_LEVEL  0x000F

static void build_madt(const struct acpi_config *cfg, struct blob *b)
{
    hdr_begin(b, "APIC", 4);
    b_put(b, cfg->lapic_addr, 4);
    b_put(b, cfg->has_pic ? 1 : 0, 4); /* PCAT_COMPAT: dual 8259s present */

    bool any_x2 = false;
    for (uint32_t i = 0; i < cfg->ncpus; i++) {
        const struct acpi_cpu *c = &cfg->cpus[i];
        if (use_x2apic_entry(cfg, i)) {
            any_x2 = true;
            b_put(b, 9, 1);
            b_put(b, 16, 1);
            b_put(b, 0, 2);
            b_put(b, c->apic_id, 4);
            b_put(b, c->present ? 1 : 0, 4);
            b_put(b, i, 4); /* ACPI processor UID */
        } else {
            b_put(b, 0, 1);
            b_put(b, 8, 1);
            b_put(b, i, 1);
            b_put(b, c->apic_id, 1);
            b_put(b, c->present ? 1 : 0, 4);
        }
    }

    b_put(b, 1, 1); /* I/O APIC */
    b_put(b, 12, 1);
    b_put(b, cfg->ioapic_id, 1);
    b_put(b, 0, 1);
    b_put(b, cfg->ioapic_addr, 4);
    b_put(b, cfg->ioapic_gsi_base, 4);

    uint32_t gb = cfg->ioapic_gsi_base;
    madt_iso(b, 0, gb + 2, MPS_CONFORMING); /* PIT IRQ0 is wired to pin 2 */
    madt_iso(b, cfg->sci_irq, gb + cfg->sci_irq, MPS_HIGH_LEVEL);
    if (cfg->pci_slots) {
        uint32_t done = 0;
        for (uint32_t g = 0; g < cfg->pci_intx_gsi_count; g++) {
            uint32_t irq = cfg->pci_intx_gsi_base + g - gb;
            if (irq < 16 && !(done & (1u << irq))) {
                done |= 1u << irq;
                madt_iso(b, (uint8_t)irq, gb + irq, MPS_LOW_LEVEL);
            }
        }
    }

    /* NMI on LINT1 of every processor. */
    b_put(b, 4, 1);
    b_put(b, 6, 1);
    b_put(b, 0xFF, 1);
    b_put(b, MPS_HIGH_EDGE, 2);
    b_put(b, 1, 1);
    if (any_x2) {
        b_put(b, 0x0A, 1);
        b_put(b, 12, 1);
        b_put(b, MPS_HIGH_EDGE, 2);
        b_put(b, 0xFFFFFFFFu, 4);
        b_put(b, 1, 1);
        b_zero(b, 3);
    }
}

static void build_srat(const struct acpi_config *cfg, struct blob *b)
{
    hdr_begin(b, "SRAT", 3);
    b_put(b, 1, 4); /* reserved, 1 for backward compatibility */
    b_zero(b, 8);
    for (uint32_t i = 0; i < cfg->ncpus; i++) {
        const struct acpi_cpu *c = &cfg->cpus[i];
        /* Enabled even for absent CPUs so a later hot-add knows its node. */
        if (c->apic_id >= 0xFF) {
            b_put(b, 2, 1);
            b_put(b, 24, 1);
            b_put(b, 0, 2);
            b_put(b, c->node, 4);
            b_put(b, c->apic_id, 4);
            b_put(b, 1, 4); /* enabled */
            b_put(b, 0, 4); /* clock domain */
            b_put(b, 0, 4);
        } else {
            b_put(b, 0, 1);
            b_put(b, 16, 1);
            b_put(b, c->node & 0xFF, 1);
            b_put(b, c->apic_id, 1);
            b_put(b, 1, 4); /* enabled */
            b_put(b, 0, 1); /* local SAPIC EID */
            b_put(b, c->node >> 8, 3);
            b_put(b, 0, 4); /* clock domain */
        }
    }
    for (uint32_t i = 0; i < cfg->nmem; i++) {
        const struct acpi_mem_range *r = &cfg->mem[i];
        if (!r->size) continue;
        b_put(b, 1, 1);
        b_put(b, 40, 1);
        b_put(b, r->node, 4);
        b_put(b, 0, 2);
        b_put(b, r->base, 8);
        b_put(b, r->size, 8);
        b_put(b, 0, 4);
        b_put(b, 1u | (r->hotpluggable ? 2u : 0u), 4);
        b_zero(b, 8);
    }
}

static void build_slit(const struct acpi_config *cfg, struct blob *b)
{
    hdr_begin(b, "SLIT", 1);
    b_put(b, cfg->numa_nodes, 8);
    for (uint32_t i = 0; i < cfg->numa_nodes; i++)
        for (uint32_t j = 0; j < cfg->numa_nodes; j++)
            b_put(b, distance(cfg, i, j), 1);
}

static void build_mcfg(const struct acpi_config *cfg, struct blob *b)
{
    hdr_begin(b, "MCFG", 1);
    b_zero(b, 8);
    b_put(b, cfg->pci_ecam_base, 8);
    b_put(b, 0, 2); /* segment */
    b_put(b, 0, 1); /* start bus */
    b_put(b, cfg->pci_bus_end, 1);
    b_zero(b, 4);
}

/* ------------------------------------------------------------------------------ */
/* FADT, FACS, XSDT, RSDT, RSDP (need addresses) */

enum { GAS_SYSTEM_IO = 1 };
enum { ACC_BYTE = 1, ACC_WORD = 2, ACC_DWORD = 3 };

static void gas(struct blob *b, uint8_t space, uint8_t bits, uint8_t access, uint64_t addr)
{
    b_put(b, space, 1);
    b_put(b, bits, 1);
    b_put(b, 0, 1); /* bit offset */
    b_put(b, addr ? access : 0, 1);
    b_put(b, addr, 8);
}

static void io_gas(struct blob *b, uint16_t port, uint8_t len, uint8_t access)
{
    if (port)
        gas(b, GAS_SYSTEM_IO, (uint8_t)(len * 8), access, port);
    else
        b_zero(b, 12);
}

/* FADT flags and IA-PC boot architecture flags. */
#define FADT_WBINVD         (1u << 0)
#define FADT_PROC_C1        (1u << 2)
#define FADT_PWR_BUTTON     (1u << 4) /* set: no fixed-feature power button */
#define FADT_SLP_BUTTON     (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_FIX_RTC        (1u << 6) /* set: no RTC wake status in fixed registers */
#define FADT_TMR_VAL_EXT    (1u << 8)
#define FADT_RESET_REG_SUP  (1u << 10)
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_8042           (1u << 1)
#define BOOT_NO_VGA         (1u << 2)
#define BOOT_NO_CMOS_RTC    (1u << 5)

static void build_fadt(const struct acpi_config *cfg, struct blob *b, uint64_t facs, uint64_t dsdt)
{
    const uint8_t gpe0_len = cfg->gpe0_port ? cfg->gpe0_len : 0;
    hdr_begin(b, "FACP", 6);
    b_put(b, facs, 4);              /* FIRMWARE_CTRL (X_FIRMWARE_CTRL stays 0) */
    b_put(b, dsdt, 4);              /* DSDT */
    b_put(b, 0, 1);                 /* reserved */
    b_put(b, 0, 1);                 /* Preferred_PM_Profile: unspecified */
    b_put(b, cfg->sci_irq, 2);      /* SCI_INT */
    b_put(b, cfg->smi_cmd_port, 4); /* SMI_CMD */
    b_put(b, cfg->smi_cmd_port ? cfg->acpi_enable : 0, 1);
    b_put(b, cfg->smi_cmd_port ? cfg->acpi_disable : 0, 1);
    b_put(b, 0, 1);                                   /* S4BIOS_REQ */
    b_put(b, 0, 1);                                   /* PSTATE_CNT */
    b_put(b, cfg->pm1a_evt_port, 4);                  /* PM1a_EVT_BLK */
    b_put(b, 0, 4);                                   /* PM1b_EVT_BLK */
    b_put(b, cfg->pm1a_cnt_port, 4);                  /* PM1a_CNT_BLK */
    b_put(b, 0, 4);                                   /* PM1b_CNT_BLK */
    b_put(b, 0, 4);                                   /* PM2_CNT_BLK */
    b_put(b, cfg->pm_tmr_port, 4);                    /* PM_TMR_BLK */
    b_put(b, cfg->gpe0_port, 4);                      /* GPE0_BLK */
    b_put(b, 0, 4);                                   /* GPE1_BLK */
    b_put(b, 4, 1);                                   /* PM1_EVT_LEN */
    b_put(b, 2, 1);                                   /* PM1_CNT_LEN */
    b_put(b, 0, 1);                                   /* PM2_CNT_LEN */
    b_put(b, 4, 1);                                   /* PM_TMR_LEN */
    b_put(b, gpe0_len, 1);                            /* GPE0_BLK_LEN */
    b_put(b, 0, 1);                                   /* GPE1_BLK_LEN */
    b_put(b, 0, 1);                                   /* GPE1_BASE */
    b_put(b, 0, 1);                                   /* CST_CNT */
    b_put(b, 0x0FFF, 2);                              /* P_LVL2_LAT: > 100, no C2 */
    b_put(b, 0x0FFF, 2);                              /* P_LVL3_LAT: > 1000, no C3 */
    b_put(b, 0, 2);                                   /* FLUSH_SIZE */
    b_put(b, 0, 2);                                   /* FLUSH_STRIDE */
    b_put(b, 0, 1);                                   /* DUTY_OFFSET */
    b_put(b, 0, 1);                                   /* DUTY_WIDTH */
    b_put(b, 0, 1);                                   /* DAY_ALRM */
    b_put(b, 0, 1);                                   /* MON_ALRM */
    b_put(b, cfg->has_rtc ? cfg->rtc_century : 0, 1); /* CENTURY */
    uint16_t boot = 0;
    if (cfg->has_pic || cfg->has_pit || cfg->has_rtc || cfg->nserial || cfg->has_i8042)
        boot |= BOOT_LEGACY_DEVICES;
    if (cfg->has_i8042) boot |= BOOT_8042;
    if (!cfg->has_vga) boot |= BOOT_NO_VGA;
    if (!cfg->has_rtc) boot |= BOOT_NO_CMOS_RTC;
    b_put(b, boot, 2); /* IAPC_BOOT_ARCH */
    b_put(b, 0, 1);    /* reserved */
    uint32_t flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC;
    if (!cfg->power_button) flags |= FADT_PWR_BUTTON;
    if (cfg->pm_tmr_32bit) flags |= FADT_TMR_VAL_EXT;
    if (cfg->reset_port) flags |= FADT_RESET_REG_SUP;
    b_put(b, flags, 4);
    io_gas(b, cfg->reset_port, 1, ACC_BYTE); /* RESET_REG */
    b_put(b, cfg->reset_port ? cfg->reset_value : 0, 1);
    b_put(b, 0, 2);    /* ARM_BOOT_ARCH */
    b_put(b, 0, 1);    /* FADT minor version: 6.0 */
    b_put(b, 0, 8);    /* X_FIRMWARE_CTRL */
    b_put(b, dsdt, 8); /* X_DSDT */
    io_gas(b, cfg->pm1a_evt_port, 4, ACC_WORD);
    b_zero(b, 12); /* X_PM1b_EVT_BLK */
    io_gas(b, cfg->pm1a_cnt_port, 2, ACC_WORD);
    b_zero(b, 12); /* X_PM1b_CNT_BLK */
    b_zero(b, 12); /* X_PM2_CNT_BLK */
    io_gas(b, cfg->pm_tmr_port, 4, ACC_DWORD);
    io_gas(b, cfg->gpe0_port, gpe0_len, ACC_BYTE);
    b_zero(b, 12);            /* X_GPE1_BLK */
    b_zero(b, 12);            /* SLEEP_CONTROL_REG (hardware-reduced only) */
    b_zero(b, 12);            /* SLEEP_STATUS_REG */
    b_mem(b, "UNUMVMM\0", 8); /* hypervisor vendor identity */
}

static void build_facs(struct blob *b)
{
    b_mem(b, "FACS", 4);
    b_put(b, FACS_LEN, 4);
    b_put(b, 0, 4); /* hardware signature */
    b_put(b, 0, 4); /* firmware waking vector */
    b_put(b, 0, 4); /* global lock */
    b_put(b, 0, 4); /* flags: no S4BIOS, no 64-bit wake */
    b_put(b, 0, 8); /* X firmware waking vector */
    b_put(b, 2, 1); /* version */
    b_zero(b, 3);
    b_put(b, 0, 4); /* OSPM flags */
    b_zero(b, 24);
}

/* ------------------------------------------------------------------------------ */

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

enum { T_FACS, T_DSDT, T_FADT, T_MADT, T_SRAT, T_SLIT, T_MCFG, T_XSDT, T_RSDT, T_COUNT };

int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t buflen, uint64_t buf_gpa,
               struct acpi_layout *layout)
{
    memset(layout, 0, sizeof(*layout));
    int err = acpi_config_check(cfg);
    if (err) return err;
    if (buf_gpa & 63) return -EINVAL;

    struct blob t[T_COUNT];
    memset(t, 0, sizeof(t));
    struct aml dsdt;
    aml_init(&dsdt);
    err = build_dsdt(cfg, &dsdt);
    if (err) goto out;

    build_facs(&t[T_FACS]);
    build_madt(cfg, &t[T_MADT]);
    bool numa = cfg->numa_nodes > 1;
    if (numa) {
        build_srat(cfg, &t[T_SRAT]);
        build_slit(cfg, &t[T_SLIT]);
    }
    if (cfg->pci_ecam_base) build_mcfg(cfg, &t[T_MCFG]);

    /* Layout: RSDP, FACS (64-aligned), DSDT, then the rest 16-aligned. */
    size_t off[T_COUNT] = {0}, len[T_COUNT] = {0};
    len[T_FACS] = FACS_LEN;
    len[T_DSDT] = dsdt.len;
    len[T_FADT] = FADT_LEN;
    int nsdt = 1; /* tables listed in the XSDT: FADT first, then the others */
    for (int i = T_MADT; i <= T_MCFG; i++) {
        len[i] = t[i].len;
        nsdt += len[i] ? 1 : 0;
    }
    len[T_XSDT] = HDR_LEN + 8 * (size_t)nsdt;
    len[T_RSDT] = HDR_LEN + 4 * (size_t)nsdt;
    size_t pos = RSDP_LEN;
    for (int i = 0; i < T_COUNT; i++) {
        if (!len[i]) continue;
        pos = align_up(pos, i == T_FACS ? 64 : 16);
        off[i] = pos;
        pos += len[i];
    }
    layout->total_size = pos;
    if (buf_gpa + pos > (1ull << 32)) {
        err = -EINVAL;
        goto out;
    }
    if (!buf || buflen < pos) {
        err = -ENOSPC;
        goto out;
    }
    uint64_t gpa[T_COUNT] = {0};
    for (int i = 0; i < T_COUNT; i++)
        gpa[i] = len[i] ? buf_gpa + off[i] : 0;

    build_fadt(cfg, &t[T_FADT], gpa[T_FACS], gpa[T_DSDT]);
    hdr_begin(&t[T_XSDT], "XSDT", 1);
    hdr_begin(&t[T_RSDT], "RSDT", 1);
    for (int i = T_FADT; i <= T_MCFG; i++) {
        if (!gpa[i]) continue;
        b_put(&t[T_XSDT], gpa[i], 8);
        b_put(&t[T_RSDT], gpa[i], 4);
    }
    for (int i = 0; i < T_COUNT; i++)
        if (t[i].oom) {
            err = -ENOMEM;
            goto out;
        }

    memset(buf, 0, pos);
    for (int i = 0; i < T_COUNT; i++) {
        if (!len[i]) continue;
        const uint8_t *src = i == T_DSDT ? dsdt.data : t[i].p;
        size_t n = i == T_DSDT ? dsdt.len : t[i].len;
        if (n != len[i]) { /* a table writer disagrees with its declared size */
            err = -EINVAL;
            goto out;
        }
        memcpy(buf + off[i], src, n);
        if (i != T_FACS && i != T_DSDT) /* FACS has no checksum; DSDT already done */
            hdr_finish(buf + off[i], n);
    }

    /* RSDP: revision 2, checksum over the first 20 bytes, extended over all 36. */
    uint8_t *r = buf;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, OEM_ID, 6);
    r[15] = 2;
    le_at(r + 16, gpa[T_RSDT], 4);
    le_at(r + 20, RSDP_LEN, 4);
    le_at(r + 24, gpa[T_XSDT], 8);
    r[8] = (uint8_t)(0x100 - acpi_checksum(r, 20));
    r[32] = (uint8_t)(0x100 - acpi_checksum(r, RSDP_LEN));

    layout->rsdp = buf_gpa;
    layout->facs = gpa[T_FACS];
    layout->dsdt = gpa[T_DSDT];
    layout->dsdt_len = (uint32_t)dsdt.len;
    layout->fadt = gpa[T_FADT];
    layout->madt = gpa[T_MADT];
    layout->srat = gpa[T_SRAT];
    layout->slit = gpa[T_SLIT];
    layout->mcfg = gpa[T_MCFG];
    layout->xsdt = gpa[T_XSDT];
    layout->rsdt = gpa[T_RSDT];
    err = 0;
out:
    for (int i = 0; i < T_COUNT; i++)
        free(t[i].p);
    aml_free(&dsdt);
    return err;
}
