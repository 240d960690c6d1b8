/* ioapic.c — see ioapic.h. Messages are composed under the lock and sent after
 * it is dropped: the bus may run arbitrary platform code, and message order
 * between pins does not matter (each message is an independent event). */
#include "devices/ioapic.h"

#include <pthread.h>
#include <stdlib.h>

#define IOAPIC_VERSION 0x00170011u /* max redirection entry 23, version 0x11 */

#define RTE_MASKED     (1ull << 16)
#define RTE_LEVEL      (1ull << 15)
#define RTE_REMOTE_IRR (1ull << 14)
/* Writable: vector, delivery mode, destination mode, polarity, trigger, mask,
 * destination. Delivery status (12) and remote IRR (14) are read-only. */
#define RTE_WMASK 0xff0000000001afffull

struct ioapic {
    pthread_mutex_t lock;
    struct apic_bus bus;
    uint32_t id; /* bits 27:24 of the ID register */
    uint8_t regsel;
    uint32_t lines; /* asserted pins */
    uint64_t rte[IOAPIC_PINS];
};

/* NMI, INIT and ExtINT must be programmed edge-triggered; treating them as edge
 * whatever the trigger bit keeps a remote IRR that no EOI would ever clear from
 * blocking the pin. */
static bool is_level(uint64_t rte)
{
    unsigned dm = (rte >> 8) & 7;
    return (rte & RTE_LEVEL) && dm != APIC_DM_NMI && dm != APIC_DM_INIT && dm != APIC_DM_EXTINT;
}

static struct apic_msg rte_message(uint64_t rte)
{
    return (struct apic_msg){
        .vector = rte & 0xff,
        .delivery = (rte >> 8) & 7,
        .logical = (rte >> 11) & 1,
        .level = is_level(rte),
        .assert = true,
        .shorthand = APIC_SH_NONE,
        .dest = (uint32_t)(rte >> 56),
        .src = -1,
    };
}

/* With the lock held: if `pin` should deliver now (unmasked level pin, asserted,
 * remote IRR clear), sets remote IRR and fills *m. */
static bool level_ready(struct ioapic *io, int pin, struct apic_msg *m)
{
    uint64_t *e = &io->rte[pin];
    if ((*e & RTE_MASKED) || !is_level(*e) || (*e & RTE_REMOTE_IRR) || !(io->lines >> pin & 1))
        return false;
    *e |= RTE_REMOTE_IRR;
    *m = rte_message(*e);
    return true;
}

static void send(struct ioapic *io, const struct apic_msg *m)
{
    if (io->bus.deliver) io->bus.deliver(io->bus.opaque, m);
}

struct ioapic *ioapic_create(int id, const struct apic_bus *bus)
{
    struct ioapic *io = calloc(1, sizeof(*io));
    if (!io) return NULL;
    pthread_mutex_init(&io->lock, NULL);
    if (bus) io->bus = *bus;
    io->id = ((uint32_t)id & 0xf) << 24;
    for (int i = 0; i < IOAPIC_PINS; i++)
        io->rte[i] = RTE_MASKED;
    return io;
}

void ioapic_destroy(struct ioapic *io)
{
    if (!io) return;
    pthread_mutex_destroy(&io->lock);
    free(io);
}

void ioapic_set_irq(void *opaque, int pin, int level)
{
    struct ioapic *io = opaque;
    if (pin < 0 || pin >= IOAPIC_PINS) return;
    struct apic_msg m;
    bool deliver = false;
    pthread_mutex_lock(&io->lock);
    uint32_t bit = 1u << pin;
    bool rising = level && !(io->lines & bit);
    if (level)
        io->lines |= bit;
    else
        io->lines &= ~bit;
    uint64_t e = io->rte[pin];
    if (is_level(e)) {
        deliver = level_ready(io, pin, &m);
    } else if (rising && !(e & RTE_MASKED)) {
        /* an edge arriving while masked is lost, as on real hardware */
        m = rte_message(e);
        deliver = true;
    }
    pthread_mutex_unlock(&io->lock);
    if (deliver) send(io, &m);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
    struct apic_msg msgs[IOAPIC_PINS];
    int n = 0;
    pthread_mutex_lock(&io->lock);
    for (int pin = 0; pin < IOAPIC_PINS; pin++) {
        uint64_t *e = &io->rte[pin];
        if ((*e & 0xff) != vector || !(*e & RTE_REMOTE_IRR)) continue;
        *e &= ~RTE_REMOTE_IRR;
        if (level_ready(io, pin, &msgs[n])) n++;
    }
    pthread_mutex_unlock(&io->lock);
    for (int i = 0; i < n; i++)
        send(io, &msgs[i]);
}

static uint32_t read_reg(struct ioapic *io, unsigned reg)
{
    switch (reg) {
    case 0x00: return io->id;
    case 0x01: return IOAPIC_VERSION;
    case 0x02: return io->id; /* arbitration ID */
    default:
        if (reg >= 0x10 && reg < 0x10 + 2 * IOAPIC_PINS) {
            uint64_t e = io->rte[(reg - 0x10) / 2];
            return reg & 1 ? (uint32_t)(e >> 32) : (uint32_t)e;
        }
        return 0;
    }
}

/* With the lock held; returns true and fills *m if the write makes a pin deliver. */
static bool write_reg(struct ioapic *io, unsigned reg, uint32_t val, struct apic_msg *m)
{
    if (reg == 0x00) {
        io->id = val & 0x0f000000u;
        return false;
    }
    if (reg < 0x10 || reg >= 0x10 + 2 * IOAPIC_PINS)
        return false; /* version, arbitration and unknown registers are read-only */
    int pin = (int)(reg - 0x10) / 2;
    uint64_t *e = &io->rte[pin];
    uint64_t v =
        reg & 1 ? ((uint64_t)val << 32) | (uint32_t)*e : (*e & 0xffffffff00000000ull) | val;
    *e = (v & RTE_WMASK) | (*e & RTE_REMOTE_IRR);
    /* Linux clears a stuck remote IRR on EOI-register-less I/O APICs by switching
     * the pin to edge and back (as KVM and real chips allow) */
    if (!(*e & RTE_LEVEL)) *e &= ~RTE_REMOTE_IRR;
    /* unmasking (or switching to level) with the line asserted delivers */
    return level_ready(io, pin, m);
}

uint64_t ioapic_mmio_read(void *opaque, uint64_t offset, int size)
{
    struct ioapic *io = opaque;
    if (size < 1 || size > 4) return 0;
    uint32_t v = 0;
    pthread_mutex_lock(&io->lock);
    if (offset == 0x00)
        v = io->regsel;
    else if (offset == 0x10)
        v = read_reg(io, io->regsel);
    pthread_mutex_unlock(&io->lock);
    return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

void ioapic_mmio_write(void *opaque, uint64_t offset, int size, uint64_t value)
{
    struct ioapic *io = opaque;
    if (size < 1 || size > 4) return;
    if (offset == 0x40) { /* EOI register (version 0x20 feature; harmless here) */
        ioapic_eoi(io, (uint8_t)value);
        return;
    }
    struct apic_msg m;
    bool deliver = false;
    pthread_mutex_lock(&io->lock);
    if (offset == 0x00)
        io->regsel = (uint8_t)value;
    else if (offset == 0x10 && size == 4)
        deliver = write_reg(io, io->regsel, (uint32_t)value, &m);
    pthread_mutex_unlock(&io->lock);
    if (deliver) send(io, &m);
}

const struct io_ops ioapic_mmio_ops = {.read = ioapic_mmio_read, .write = ioapic_mmio_write};
