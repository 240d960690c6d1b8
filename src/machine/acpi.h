/* acpi.h — the ACPI tables of the virtual machine, generated from its description.
 *
 * Linux (Debian's 6.1 cloud kernel has no MP-table parser) learns the whole
 * platform from these tables: CPUs and interrupt controllers (MADT), the PM
 * register block, reset register and SCI (FADT), the PCI root bridge with its
 * windows and INTx routing, legacy ISA devices, processor objects and the S5
 * sleep type (DSDT), NUMA topology (SRAT, SLIT) and PCIe ECAM (MCFG).
 *
 * acpi_build() writes everything into one caller-provided blob that the machine
 * copies to guest-physical address buf_gpa:
 *
 *   +0      RSDP (ACPI 2.0+, 36 bytes)      buf_gpa must be 64-byte aligned; put the
 *   +64     FACS (64 bytes, 64-aligned)     blob in 0xE0000-0xFFFFF so Linux finds the
 *   +128    DSDT                            RSDP by scanning, or hand rsdp_gpa over in
 *   ...     FADT, MADT, [SRAT, SLIT], [MCFG], boot_params.acpi_rsdp_addr; mark the range
 *           XSDT, RSDT (each 16-aligned)    reserved (or ACPI data) in the e820 map.
 *
 * The whole blob must lie below 4 GiB (the RSDT and the FADT's 32-bit fields
 * point into it).
 *
 * PCI INTx routing (_PRT): device (slot) S, pin P (0 = INTA .. 3 = INTD) of the root
 * bus raises GSI  pci_intx_gsi_base + (S + P) % pci_intx_gsi_count,  level-triggered,
 * active-low (ACPI's rule for PCI GSIs). The default is GSIs 16..23 of the I/O APIC,
 * which therefore needs at least 24 pins. GSIs below 16 get a level/active-low
 * Interrupt Source Override in the MADT.
 *
 * Processors: \_SB.CPUS (ACPI0010 container) holds Device(Cxxx) with _HID "ACPI0007"
 * and _UID = the vCPU index, equal to the MADT processor UID. CPU hotplug later adds
 * _STA/_EJ0/_MAT to these devices (see acpi.c: dsdt_cpus()).
 */
#ifndef UNUM_MACHINE_ACPI_H
#define UNUM_MACHINE_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS   4096 /* processor device names are C000..CFFF */
#define ACPI_MAX_NODES  64
#define ACPI_MAX_SERIAL 4

/* Conventional PC values, used by acpi_config_defaults(). The PM ones match what
 * devices/acpi_pm.h implements (tests/unit/test_acpi.c checks that statically). */
#define ACPI_DEFAULT_LAPIC_ADDR         0xFEE00000u
#define ACPI_DEFAULT_IOAPIC_ADDR        0xFEC00000u
#define ACPI_DEFAULT_PM_BASE            0x600 /* PM1a_EVT +0 (4), PM1a_CNT +4 (2), PM_TMR +8 (4) */
#define ACPI_DEFAULT_SMI_CMD            0xB2
#define ACPI_DEFAULT_ACPI_ENABLE        0xF1
#define ACPI_DEFAULT_ACPI_DISABLE       0xF0
#define ACPI_DEFAULT_SCI_IRQ            9
#define ACPI_DEFAULT_S5_SLP_TYP         5
#define ACPI_DEFAULT_RESET_PORT         0xCF9
#define ACPI_DEFAULT_RESET_VALUE        0x06
#define ACPI_DEFAULT_PCI_INTX_GSI_BASE  16
#define ACPI_DEFAULT_PCI_INTX_GSI_COUNT 8

struct acpi_cpu {
    uint32_t apic_id; /* local APIC ID (x2APIC entries are used for IDs >= 255) */
    uint32_t node;    /* NUMA proximity domain (when numa_nodes > 1) */
    bool present;     /* MADT "enabled"; false = a slot for a later hot-add */
};

struct acpi_mem_range {
    uint64_t base, size;
    uint32_t node; /* proximity domain */
    bool hotpluggable;
};

struct acpi_serial {
    uint16_t port; /* 8 consecutive ports */
    uint8_t irq;   /* ISA IRQ */
};

struct acpi_config {
    /* Processors: the index in cpus[] is the ACPI processor UID. */
    const struct acpi_cpu *cpus;
    uint32_t ncpus;
    uint32_t lapic_addr;

    /* One I/O APIC. ISA IRQ n is GSI ioapic_gsi_base + n, except IRQ0 -> GSI 2. */
    uint8_t ioapic_id;
    uint32_t ioapic_addr;
    uint32_t ioapic_gsi_base;

    /* ACPI fixed hardware, all in system I/O space. */
    uint16_t pm1a_evt_port; /* PM1_STS (2) + PM1_EN (2) */
    uint16_t pm1a_cnt_port; /* PM1_CNT (2): SCI_EN bit 0, SLP_TYP bits 12:10, SLP_EN bit 13 */
    uint16_t pm_tmr_port;   /* PM_TMR (4), 3.579545 MHz */
    bool pm_tmr_32bit;      /* FADT TMR_VAL_EXT: 32-bit counter (else 24-bit) */
    uint16_t gpe0_port;     /* GPE0_STS + GPE0_EN, gpe0_len bytes in all; 0 = none */
    uint8_t gpe0_len;       /* even, 0 = none */
    uint16_t smi_cmd_port;  /* 0 = hardware is always in ACPI mode (SCI_EN set) */
    uint8_t acpi_enable, acpi_disable; /* values written to smi_cmd_port */
    uint8_t sci_irq;                   /* ISA IRQ (and GSI) of the SCI: level, active-high */
    uint8_t s5_slp_typ;                /* SLP_TYP the PM1_CNT model treats as soft-off (S5) */
    bool power_button;                 /* fixed-feature power button (PWRBTN_STS/EN) implemented */
    uint16_t reset_port;               /* FADT RESET_REG (system I/O, 8-bit); 0 = none */
    uint8_t reset_value;

    /* Legacy ISA devices present (each gets a PNP device in the DSDT). */
    bool has_pic;        /* 8259 pair: MADT PCAT_COMPAT, PNP0000 */
    bool has_pit;        /* PNP0100, IRQ0 */
    bool has_rtc;        /* PNP0B00 at 0x70, IRQ8; else FADT "CMOS RTC not present" */
    uint8_t rtc_century; /* CMOS index of the century byte, 0 = none */
    bool has_i8042;      /* keyboard controller: FADT 8042 flag, PNP0303 (IRQ1) */
    bool i8042_aux;      /* and its PS/2 mouse port: PNP0F13 (IRQ12) */
    bool has_vga;        /* else FADT "VGA not present" */
    struct acpi_serial serial[ACPI_MAX_SERIAL];
    uint32_t nserial;
    /* Where the legacy devices live: under \_SB.PCI0.ISA_ with this _ADR
     * ((dev << 16) | fn) when isa_bridge, else directly under \_SB. */
    bool isa_bridge;
    uint32_t isa_bridge_adr;

    /* PCI root bridge (segment 0, buses 0..pci_bus_end). */
    uint64_t pci_mem32_base, pci_mem32_size; /* below 4 GiB, clear of the APICs */
    uint64_t pci_mem64_base, pci_mem64_size; /* 0 size = none */
    uint64_t pci_ecam_base;                  /* != 0: PCIe (PNP0A08), MCFG, ECAM reserved */
    uint8_t pci_bus_end;
    uint32_t pci_intx_gsi_base;
    uint32_t pci_intx_gsi_count; /* 1..32 */
    uint32_t pci_slots;          /* _PRT covers slots 0..pci_slots-1 (<= 32) */
    uint32_t pci_node;           /* proximity domain of the root bridge (_PXM, NUMA only) */

    /* Guest RAM (for SRAT): ranges and their nodes. Should cover all e820 RAM. */
    const struct acpi_mem_range *mem;
    uint32_t nmem;
    /* NUMA: SRAT and SLIT are emitted when numa_nodes > 1. */
    uint32_t numa_nodes;
    const uint8_t *numa_distance; /* numa_nodes^2, row-major; NULL = 10 local / 20 remote */
};

/* Where each table landed (guest-physical; 0 = not emitted). */
struct acpi_layout {
    size_t total_size; /* bytes used (or needed, on -ENOSPC) */
    uint64_t rsdp, facs, dsdt, fadt, madt, srat, slit, mcfg, xsdt, rsdt;
    uint32_t dsdt_len;
};

/* Fills cfg with the standard PC values above: LAPIC/IOAPIC addresses, PM block at
 * 0x600, SMI 0xB2 (F1/F0), SCI 9, reset 0xCF9/6, 24-bit timer, S5 SLP_TYP 5, fixed
 * power button, PIC, PIT, RTC (century 0x32), COM1 (0x3F8, IRQ4), no 8042, no VGA,
 * PCI window 0xC0000000-0xFEBFFFFF, INTx on GSIs 16..23, 32 slots, one node. The
 * caller sets cpus/ncpus, mem/nmem and whatever differs. */
void acpi_config_defaults(struct acpi_config *cfg);

/* Checks cfg for what the tables cannot express or Linux would reject. */
int acpi_config_check(const struct acpi_config *cfg);

/* Builds all tables into buf (to be placed at buf_gpa, 64-byte aligned, below
 * 4 GiB). Returns 0, -EINVAL (bad config or buf_gpa), -ENOMEM, or -ENOSPC when
 * buflen is too small (layout->total_size then tells the size needed; nothing
 * useful is written). buf may be NULL with buflen 0 to ask for the size. */
int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t buflen, uint64_t buf_gpa,
               struct acpi_layout *layout);

/* Just the DSDT's AML (header included) in a malloc()ed buffer; for tests and
 * tools. Returns 0 or -errno; *out is freed by the caller. */
int acpi_build_dsdt(const struct acpi_config *cfg, uint8_t **out, size_t *len);

/* Sum of bytes, mod 256 (0 for a valid table). */
uint8_t acpi_checksum(const void *p, size_t n);

#endif
