/* irq.h — interrupt plumbing between device models.
 *
 * A device owns `struct irq_line`s handed to it by the platform and drives them
 * (level-triggered semantics: set 1 / set 0; an edge is a pulse). The platform
 * decides where a line goes (8259 PIC input, I/O APIC pin, both). Interrupt
 * controllers talk to local APICs through the APIC bus with `struct apic_msg`, so
 * a message can later cross to another node without the sender knowing. */
#ifndef UNUM_DEVICES_IRQ_H
#define UNUM_DEVICES_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct irq_line {
    void (*set)(void *opaque, int pin, int level);
    void *opaque;
    int pin;
};

static inline void irq_set(const struct irq_line *l, int level)
{
    if (l && l->set) l->set(l->opaque, l->pin, level);
}

static inline void irq_pulse(const struct irq_line *l)
{
    irq_set(l, 1);
    irq_set(l, 0);
}

/* Delivery modes (ICR / redirection entry bits 8..10) */
enum apic_delivery {
    APIC_DM_FIXED = 0,
    APIC_DM_LOWEST = 1,
    APIC_DM_SMI = 2,
    APIC_DM_NMI = 4,
    APIC_DM_INIT = 5,
    APIC_DM_SIPI = 6,
    APIC_DM_EXTINT = 7,
};
/* Destination shorthands (ICR bits 18..19) */
enum apic_shorthand { APIC_SH_NONE = 0, APIC_SH_SELF = 1, APIC_SH_ALL = 2, APIC_SH_OTHERS = 3 };

struct apic_msg {
    uint8_t vector;
    uint8_t delivery;  /* enum apic_delivery */
    uint8_t shorthand; /* enum apic_shorthand */
    bool logical;      /* destination mode */
    bool level;        /* level-triggered (for EOI broadcast to the I/O APIC) */
    bool assert;       /* INIT level de-assert messages have assert = false */
    uint32_t dest;     /* physical APIC ID or logical destination bits */
    int src;           /* sending vCPU index for IPIs, -1 for the I/O APIC / MSI */
};

/* The APIC bus: delivers a message to every local APIC it addresses. */
struct apic_bus {
    void (*deliver)(void *opaque, const struct apic_msg *m);
    /* a local APIC signals EOI of a level-triggered vector (I/O APIC remote IRR) */
    void (*eoi)(void *opaque, uint8_t vector);
    void *opaque;
};

#endif
