/* pci.c — configuration mechanism #1, bus 0 and the host bridge; see pci.h. */
#include "devices/pci.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define CA_ENABLE 0x80000000u
#define CA_MASK   0x80FFFFFCu /* enable, bus, device, function, dword register */

static uint32_t ones(int size)
{
    return size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
}

/* --- config space helper --- */

static void put(uint8_t *p, unsigned reg, int size, uint32_t v)
{
    for (int i = 0; i < size; i++)
        p[reg + i] = (uint8_t)(v >> (8 * i));
}

void pci_cfg_init(struct pci_cfg *c, uint16_t vendor, uint16_t device, uint32_t class_rev,
                  uint8_t header_type)
{
    memset(c, 0, sizeof(*c));
    put(c->data, 0x00, 2, vendor);
    put(c->data, 0x02, 2, device);
    put(c->data, 0x08, 4, class_rev);
    c->data[0x0E] = header_type;
    put(c->wmask, 0x04, 2, 0x0547); /* I/O, memory, master, parity, SERR, INTx disable */
    put(c->w1c, 0x06, 2, 0xF900);   /* parity / abort / SERR status bits */
    c->wmask[0x0C] = 0xFF;          /* cache line size */
    c->wmask[0x0D] = 0xFF;          /* latency timer */
    c->wmask[0x3C] = 0xFF;          /* interrupt line (firmware/OS scratch) */
}

uint32_t pci_cfg_read(const struct pci_cfg *c, unsigned reg, int size)
{
    if (size < 1 || size > 4 || reg >= PCI_CFG_SIZE || reg + (unsigned)size > PCI_CFG_SIZE)
        return reg >= PCI_CFG_SIZE ? 0 : ones(size);
    uint32_t v = 0;
    for (int i = 0; i < size; i++)
        v |= (uint32_t)c->data[reg + i] << (8 * i);
    return v;
}

void pci_cfg_write(struct pci_cfg *c, unsigned reg, int size, uint32_t value)
{
    if (size < 1 || size > 4 || reg >= PCI_CFG_SIZE || reg + (unsigned)size > PCI_CFG_SIZE) return;
    for (int i = 0; i < size; i++) {
        unsigned r = reg + (unsigned)i;
        uint8_t b = (uint8_t)(value >> (8 * i));
        c->data[r] = (uint8_t)((c->data[r] & ~c->wmask[r]) | (b & c->wmask[r]));
        c->data[r] &= (uint8_t) ~(b & c->w1c[r]);
    }
}

int pci_cfg_set_bar(struct pci_cfg *c, int bar, uint64_t size, uint32_t flags)
{
    bool io = flags & PCI_BAR_IO, b64 = !io && (flags & PCI_BAR_MEM64);
    if (bar < 0 || bar > 5 - (b64 ? 1 : 0) || size & (size - 1) || size < (io ? 4u : 16u) ||
        (!b64 && size > 0x80000000ull) || (io && size > 0x10000))
        return -1;
    unsigned reg = 0x10 + 4 * (unsigned)bar;
    uint64_t mask = ~(size - 1) & (io ? ~3ull : ~15ull);
    put(c->data, reg, 4, io ? PCI_BAR_IO : (flags & (PCI_BAR_MEM64 | PCI_BAR_PREFETCH)));
    put(c->wmask, reg, 4, (uint32_t)mask);
    if (b64) {
        put(c->data, reg + 4, 4, 0);
        put(c->wmask, reg + 4, 4, (uint32_t)(mask >> 32));
    }
    return 0;
}

uint64_t pci_cfg_bar_addr(const struct pci_cfg *c, int bar)
{
    if (bar < 0 || bar > 5) return 0;
    unsigned reg = 0x10 + 4 * (unsigned)bar;
    uint32_t lo = pci_cfg_read(c, reg, 4);
    if (lo & PCI_BAR_IO) return lo & ~3u;
    uint64_t a = lo & ~15u;
    if ((lo & 6) == PCI_BAR_MEM64 && bar < 5) a |= (uint64_t)pci_cfg_read(c, reg + 4, 4) << 32;
    return a;
}

/* --- host bridge (00.0) --- */

static uint32_t host_read(void *opaque, unsigned reg, int size)
{
    struct pci_bus *bus = opaque;
    pthread_mutex_lock(&bus->host_lock);
    uint32_t v = pci_cfg_read(&bus->host, reg, size);
    pthread_mutex_unlock(&bus->host_lock);
    return v;
}

static void host_write(void *opaque, unsigned reg, int size, uint32_t value)
{
    struct pci_bus *bus = opaque;
    pthread_mutex_lock(&bus->host_lock);
    pci_cfg_write(&bus->host, reg, size, value);
    pthread_mutex_unlock(&bus->host_lock);
}

static const struct pci_fn_ops host_ops = {.cfg_read = host_read, .cfg_write = host_write};

static void host_reset_locked(struct pci_bus *bus)
{
    struct pci_cfg *c = &bus->host;
    pci_cfg_init(c, PCI_HOST_VENDOR, PCI_HOST_DEVICE, 0x06000002 /* host bridge, rev 02 */, 0x00);
    put(c->data, 0x04, 2, 0x0006);  /* memory and bus master on, as the 82441FX reports */
    put(c->data, 0x06, 2, 0x0280);  /* medium DEVSEL, fast back-to-back capable */
    put(c->wmask, 0x04, 2, 0x0000); /* a host bridge's command bits are fixed */
    c->wmask[0x3C] = 0;
    memset(c->wmask + 0x40, 0xFF,
           PCI_CFG_SIZE - 0x40); /* chipset registers (PAM, SMRAM, ...) just store */
}

/* --- bus --- */

static bool lookup(struct pci_bus *bus, unsigned busno, unsigned devfn, struct pci_slot *out)
{
    if (busno != 0 || devfn > 255) return false;
    pthread_mutex_lock(&bus->lock);
    *out = bus->fn[devfn];
    pthread_mutex_unlock(&bus->lock);
    return out->ops != NULL;
}

uint32_t pci_config_read(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned reg,
                         int size)
{
    struct pci_slot s;
    if (size < 1 || size > 4 || reg >= 4096 || (reg & 3) + (unsigned)size > 4 ||
        !lookup(bus, busno, devfn, &s))
        return ones(size);
    return s.ops->cfg_read ? s.ops->cfg_read(s.opaque, reg, size) & ones(size) : ones(size);
}

void pci_config_write(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned reg, int size,
                      uint32_t value)
{
    struct pci_slot s;
    if (size < 1 || size > 4 || reg >= 4096 || (reg & 3) + (unsigned)size > 4 ||
        !lookup(bus, busno, devfn, &s))
        return;
    if (s.ops->cfg_write) s.ops->cfg_write(s.opaque, reg, size, value & ones(size));
}

/* Snapshot of CONFIG_ADDRESS for a data-port access; false if disabled. */
static bool current_address(struct pci_bus *bus, uint64_t offset, unsigned *busno, unsigned *devfn,
                            unsigned *reg)
{
    pthread_mutex_lock(&bus->lock);
    uint32_t ca = bus->config_address;
    pthread_mutex_unlock(&bus->lock);
    if (!(ca & CA_ENABLE)) return false;
    *busno = (ca >> 16) & 0xFF;
    *devfn = (ca >> 8) & 0xFF;
    *reg = (ca & 0xFC) + (unsigned)(offset - 4);
    return true;
}

static uint64_t pci_read(void *dev, uint64_t offset, int size)
{
    struct pci_bus *bus = dev;
    if (offset < 4) {
        if (offset == 0 && size == 4) {
            pthread_mutex_lock(&bus->lock);
            uint32_t v = bus->config_address;
            pthread_mutex_unlock(&bus->lock);
            return v;
        }
        if (offset == 1 && size == 1 && bus->rcr_ops && bus->rcr_ops->read)
            return bus->rcr_ops->read(bus->rcr_dev, 0, 1) & 0xFF;
        return ones(size);
    }
    unsigned busno, devfn, reg;
    if (offset + (uint64_t)size > 8 || !current_address(bus, offset, &busno, &devfn, &reg))
        return ones(size);
    return pci_config_read(bus, busno, devfn, reg, size);
}

static void pci_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct pci_bus *bus = dev;
    if (offset < 4) {
        if (offset == 0 && size == 4) {
            pthread_mutex_lock(&bus->lock);
            bus->config_address = (uint32_t)value & CA_MASK;
            pthread_mutex_unlock(&bus->lock);
        } else if (offset == 1 && size == 1 && bus->rcr_ops && bus->rcr_ops->write) {
            bus->rcr_ops->write(bus->rcr_dev, 0, 1, value & 0xFF);
        }
        return; /* other accesses to 0xCF8-0xCFB go nowhere */
    }
    unsigned busno, devfn, reg;
    if (offset + (uint64_t)size > 8 || !current_address(bus, offset, &busno, &devfn, &reg)) return;
    pci_config_write(bus, busno, devfn, reg, size, (uint32_t)value);
}

const struct io_ops pci_io_ops = {.read = pci_read, .write = pci_write};

/* ECAM: an MMIO access names bus, device, function and register in its offset.
 * Accesses within one dword go through whole; a qword is two dwords; anything
 * else (straddling a dword) is taken apart into bytes. */
static uint64_t ecam_read(void *dev, uint64_t offset, int size)
{
    struct pci_bus *bus = dev;
    unsigned busno = (unsigned)(offset >> 20), devfn = (offset >> 12) & 0xFF, reg = offset & 0xFFF;
    if ((reg & 3) + (unsigned)size <= 4) return pci_config_read(bus, busno, devfn, reg, size);
    uint64_t v = 0;
    if (size == 8 && !(reg & 7))
        return pci_config_read(bus, busno, devfn, reg, 4) |
               (uint64_t)pci_config_read(bus, busno, devfn, reg + 4, 4) << 32;
    for (int i = 0; i < size; i++)
        v |= (uint64_t)(ecam_read(dev, offset + i, 1) & 0xFF) << (8 * i);
    return v;
}

static void ecam_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct pci_bus *bus = dev;
    unsigned busno = (unsigned)(offset >> 20), devfn = (offset >> 12) & 0xFF, reg = offset & 0xFFF;
    if ((reg & 3) + (unsigned)size <= 4) {
        pci_config_write(bus, busno, devfn, reg, size, (uint32_t)value);
    } else if (size == 8 && !(reg & 7)) {
        pci_config_write(bus, busno, devfn, reg, 4, (uint32_t)value);
        pci_config_write(bus, busno, devfn, reg + 4, 4, (uint32_t)(value >> 32));
    } else {
        for (int i = 0; i < size; i++)
            ecam_write(dev, offset + i, 1, value >> (8 * i));
    }
}

const struct io_ops pci_ecam_ops = {.read = ecam_read, .write = ecam_write};

int pci_bus_register_ecam(struct pci_bus *bus, struct router *r, uint64_t base, unsigned buses)
{
    if ((base & 0xFFFFF) || !buses || buses > 256) return -EINVAL;
    return router_add(r, ROUTE_MMIO, base, (uint64_t)buses << 20, &pci_ecam_ops, bus, "pci-ecam");
}

void pci_bus_init(struct pci_bus *bus)
{
    memset(bus, 0, sizeof(*bus));
    pthread_mutex_init(&bus->lock, NULL);
    pthread_mutex_init(&bus->host_lock, NULL);
    host_reset_locked(bus);
    bus->fn[0] = (struct pci_slot){.ops = &host_ops, .opaque = bus};
}

int pci_bus_register(struct pci_bus *bus, struct router *r)
{
    return router_add(r, ROUTE_PIO, PCI_CONFIG_ADDRESS, 8, &pci_io_ops, bus, "pci");
}

void pci_bus_set_rcr(struct pci_bus *bus, const struct io_ops *ops, void *dev)
{
    bus->rcr_ops = ops; /* set before the VM runs */
    bus->rcr_dev = dev;
}

int pci_add_function(struct pci_bus *bus, uint8_t devfn, const struct pci_fn_ops *ops, void *opaque)
{
    if (!ops) return -EINVAL;
    int err = 0;
    pthread_mutex_lock(&bus->lock);
    if (bus->fn[devfn].ops)
        err = -EEXIST;
    else
        bus->fn[devfn] = (struct pci_slot){.ops = ops, .opaque = opaque};
    pthread_mutex_unlock(&bus->lock);
    return err;
}

void pci_bus_reset(struct pci_bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    bus->config_address = 0;
    pthread_mutex_unlock(&bus->lock);
    pthread_mutex_lock(&bus->host_lock);
    host_reset_locked(bus);
    pthread_mutex_unlock(&bus->host_lock);
}

void pci_bus_destroy(struct pci_bus *bus)
{
    pthread_mutex_destroy(&bus->lock);
    pthread_mutex_destroy(&bus->host_lock);
}
