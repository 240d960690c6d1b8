/* pci.h — PCI bus 0 behind an i440FX-style host bridge, configuration mechanism #1.
 *
 * Owns ports 0xCF8-0xCFF as one 8-byte route, decoded like the Intel chipsets:
 *   0xCF8 dword    CONFIG_ADDRESS (bit 31 enable, bus 23:16, device 15:11, function
 *                  10:8, register 7:2; other bits read 0). Only a 32-bit access at
 *                  0xCF8 reaches it; narrower accesses pass to the (empty) ISA side.
 *   0xCF9 byte     the reset control register, which is not PCI at all: forwarded to
 *                  the io_ops given to pci_bus_set_rcr() (acpi_pm_rcr_ops), so one
 *                  device owns every reset path. Routing it from here avoids two
 *                  overlapping routes (the router rejects overlaps) and keeps a dword
 *                  access at 0xCF8 from being split into bytes.
 *   0xCFC-0xCFF    CONFIG_DATA, byte/word/dword at any offset: register =
 *                  (CONFIG_ADDRESS & 0xFC) + (port & 3).
 * Device 00.0 is the host bridge (8086:1237 i440FX PMC, class 060000, the Linux
 * quirks for it only print "Limiting direct PCI/PCI transfers"). Other functions are
 * added with pci_add_function(); absent functions and other buses read all ones.
 * Optionally the same configuration space is mapped as an ECAM window
 * (pci_bus_register_ecam), which gives Linux MMCONFIG and the 4 KiB extended space.
 *
 * Threading: the bus lock covers CONFIG_ADDRESS and the function table only;
 * function callbacks run without it (they bring their own locking), so a callback
 * may take any lock of its device. */
#ifndef UNUM_DEVICES_PCI_H
#define UNUM_DEVICES_PCI_H

#include <pthread.h>
#include <stdint.h>

#include "machine/router.h"

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA    0xCFC
#define PCI_DEVFN(dev, fn) ((uint8_t)(((dev) << 3) | (fn)))
#define PCI_HOST_VENDOR    0x8086
#define PCI_HOST_DEVICE    0x1237
#define PCI_CFG_SIZE       256

/* A function's configuration space. `reg` + `size` (1, 2, 4) never crosses a dword
 * boundary, but `reg` need not be aligned to `size`. reg < 4096 (ECAM-ready);
 * mechanism #1 only produces reg < 256. BAR sizing is the function's business
 * (pci_cfg_set_bar() does it with a write mask). */
struct pci_fn_ops {
    uint32_t (*cfg_read)(void *opaque, unsigned reg, int size);
    void (*cfg_write)(void *opaque, unsigned reg, int size, uint32_t value);
};

/* Helper for functions: 256 bytes of config space with per-byte write masks. */
struct pci_cfg {
    uint8_t data[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may write */
    uint8_t w1c[PCI_CFG_SIZE];   /* bits the guest clears by writing 1 (status) */
};

#define PCI_BAR_IO       0x1
#define PCI_BAR_MEM64    0x4
#define PCI_BAR_PREFETCH 0x8

/* Vendor/device, class (24-bit class code << 8 | revision), header type; command
 * writable (I/O, memory, bus master, parity, SERR, INTx disable), status bits W1C,
 * the BIST/cache-line/latency bytes and interrupt line writable. */
void pci_cfg_init(struct pci_cfg *c, uint16_t vendor, uint16_t device, uint32_t class_rev,
                  uint8_t header_type);
uint32_t pci_cfg_read(const struct pci_cfg *c, unsigned reg, int size);
void pci_cfg_write(struct pci_cfg *c, unsigned reg, int size, uint32_t value);
/* BAR `bar` (0-5; a 64-bit BAR also takes bar+1) of `size` bytes (a power of two,
 * at least 16 for memory, 4 for I/O); flags PCI_BAR_*. Returns -1 if invalid. */
int pci_cfg_set_bar(struct pci_cfg *c, int bar, uint64_t size, uint32_t flags);
/* The address the guest programmed into a BAR (flag bits removed). */
uint64_t pci_cfg_bar_addr(const struct pci_cfg *c, int bar);

struct pci_slot {
    const struct pci_fn_ops *ops;
    void *opaque;
};

struct pci_bus {
    pthread_mutex_t lock; /* config_address and fn[] */
    uint32_t config_address;
    struct pci_slot fn[256]; /* bus 0, indexed by devfn */
    const struct io_ops *rcr_ops;
    void *rcr_dev;
    pthread_mutex_t host_lock; /* the host bridge's config space */
    struct pci_cfg host;
};

void pci_bus_init(struct pci_bus *bus);
/* Claims 0xCF8-0xCFF. */
int pci_bus_register(struct pci_bus *bus, struct router *r);
/* Also claims an ECAM (MMCONFIG) window: `buses` MiB of MMIO at `base` (1 MiB
 * aligned), bus n device d function f register r at base + (n << 20 | d << 15 |
 * f << 12 | r). The FADT/MCFG and a motherboard resource (PNP0C02) must describe
 * the same range. Returns router_add()'s result. */
int pci_bus_register_ecam(struct pci_bus *bus, struct router *r, uint64_t base, unsigned buses);
/* Where byte accesses at 0xCF9 go (e.g. &acpi_pm_rcr_ops, &pm). */
void pci_bus_set_rcr(struct pci_bus *bus, const struct io_ops *ops, void *dev);
/* 0, -EINVAL (NULL ops), -EEXIST (devfn taken; 00.0 is the host bridge). Linux only
 * looks at functions 1-7 of a device whose function 0 has header type bit 7 set. */
int pci_add_function(struct pci_bus *bus, uint8_t devfn, const struct pci_fn_ops *ops,
                     void *opaque);
/* Configuration access by address, for mechanism #1 and a later ECAM window. */
uint32_t pci_config_read(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned reg,
                         int size);
void pci_config_write(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned reg, int size,
                      uint32_t value);
/* CONFIG_ADDRESS to 0 and the host bridge to its power-on state. */
void pci_bus_reset(struct pci_bus *bus);
void pci_bus_destroy(struct pci_bus *bus);

extern const struct io_ops pci_io_ops, pci_ecam_ops;

#endif
