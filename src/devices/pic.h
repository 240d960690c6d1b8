/* pic.h — the two cascaded 8259A programmable interrupt controllers of a PC
 * (master at ports 0x20/0x21, slave at 0xA0/0xA1 on master IRQ2) and the ELCR
 * edge/level control registers (0x4D0/0x4D1). It owns the IRR/ISR/IMR of both
 * chips, the ICW1-ICW4 initialization sequence, OCW1-3 (masks, EOIs and
 * rotation, register read select, poll mode, special mask mode), auto-EOI and the
 * interrupt acknowledge cycle. Its INTR output goes to the platform (normally
 * LINT0 of the boot vCPU's local APIC, which then calls pic_ack as its ExtINT
 * acknowledge).
 *
 * Thread safe. `intr` is called with the PIC's lock held, only when the output
 * changes, so the last call always states the current level; it must not call
 * back into the PIC (lapic_set_lint does not). */
#ifndef UNUM_DEVICES_PIC_H
#define UNUM_DEVICES_PIC_H

#include "machine/router.h"

struct pic;

struct pic *pic_create(void (*intr)(void *opaque, int level), void *opaque);
void pic_destroy(struct pic *p);
/* Registers the command/data ports of both chips and the ELCR ports. 0 or the
 * router_add error. */
int pic_register(struct pic *p, struct router *r);

/* irq_line-compatible: opaque = the pic, irq 0-15 (2 is the cascade input and
 * is ignored, as are out-of-range numbers). */
void pic_set_irq(void *pic, int irq, int level);
/* Interrupt acknowledge: the vector of the highest-priority request (updating
 * IRR/ISR), or the spurious vector of IRQ7 (master) / IRQ15 (slave) when the
 * request went away; -1 while the master is being initialized (no vector base). */
int pic_ack(struct pic *p);
/* pic_ack with an opaque pointer, for lapic_set_extint_ack(). */
int pic_ack_cb(void *pic);

#endif
