/* ioapic.h — the I/O APIC (82093AA-style, version 0x11, 24 pins). It owns the
 * redirection table and the pin state (line levels, remote IRR) and turns pin
 * activity into APIC bus messages (src = -1). Registers are reached indirectly:
 * IOREGSEL at offset 0x00, IOWIN at 0x10; a write to the EOI register at 0x40
 * is accepted as a directed EOI. The platform registers ioapic_mmio_ops at
 * IOAPIC_DEFAULT_BASE, points device irq_lines at ioapic_set_irq and routes the
 * local APICs' level-triggered EOIs (apic_bus.eoi) to ioapic_eoi.
 *
 * Pin levels are logical (1 = asserted) whatever the programmed polarity: the
 * platform need not know how the guest set the polarity bit. Thread safe; the
 * bus is called without the I/O APIC's lock held. */
#ifndef UNUM_DEVICES_IOAPIC_H
#define UNUM_DEVICES_IOAPIC_H

#include <stdint.h>

#include "devices/irq.h"
#include "machine/router.h"

#define IOAPIC_DEFAULT_BASE 0xfec00000ull
#define IOAPIC_MMIO_SIZE    0x1000
#define IOAPIC_PINS         24

struct ioapic;

/* `bus` is copied (NULL: nothing is delivered). */
struct ioapic *ioapic_create(int id, const struct apic_bus *bus);
void ioapic_destroy(struct ioapic *io);

uint64_t ioapic_mmio_read(void *ioapic, uint64_t offset, int size);
void ioapic_mmio_write(void *ioapic, uint64_t offset, int size, uint64_t value);
extern const struct io_ops ioapic_mmio_ops;

/* irq_line-compatible: opaque = the ioapic, pin 0-23 (others ignored). */
void ioapic_set_irq(void *ioapic, int pin, int level);
/* A local APIC finished a level-triggered `vector`: clears remote IRR of the
 * pins using it and re-delivers those whose line is still asserted. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

#endif
