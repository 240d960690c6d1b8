/* pic.c — see pic.h. Priorities follow the 8259A: priority_add names the IRQ
 * that currently has the highest priority (rotation moves it); a request is
 * delivered when its priority beats every in-service IRQ. The slave's output
 * drives master IRQ2 as a level, so a cascaded request is never lost to a
 * missing edge while the slave has more than one request pending. */
#include "devices/pic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct pic_chip {
    struct pic *pic;
    uint8_t irr, imr, isr;
    uint8_t lines;           /* input levels, for edge detection */
    uint8_t elcr, elcr_mask; /* level-triggered inputs */
    uint8_t base;            /* ICW2 vector base */
    uint8_t prio_add;        /* the IRQ with the highest priority */
    uint8_t init_state;      /* 0 ready, 1/2/3: expecting ICW2/ICW3/ICW4 */
    bool icw4, single, auto_eoi, rotate_aeoi, sfnm, read_isr, poll, special_mask;
};

struct pic {
    pthread_mutex_t lock;
    struct pic_chip c[2];
    void (*intr)(void *, int);
    void *opaque;
    int out;
};

static int priority(const struct pic_chip *c, uint8_t mask)
{
    if (!mask) return 8;
    int p = 0;
    while (!(mask & (1u << ((p + c->prio_add) & 7))))
        p++;
    return p;
}

/* The IRQ (0-7) this chip asks to have acknowledged, or -1. */
static int chip_irq(const struct pic_chip *c, bool master)
{
    if (c->init_state) /* no vector base yet: nothing to deliver */
        return -1;
    int p = priority(c, c->irr & ~c->imr);
    if (p == 8) return -1;
    uint8_t in_service = c->isr;
    if (c->special_mask) in_service &= ~c->imr;      /* masked in-service levels do not block */
    if (master && c->sfnm) in_service &= ~(1u << 2); /* special fully nested: slave may nest */
    return p < priority(c, in_service) ? (p + c->prio_add) & 7 : -1;
}

static void update(struct pic *p)
{
    struct pic_chip *m = &p->c[0];
    if (chip_irq(&p->c[1], false) >= 0)
        m->irr |= 1u << 2, m->lines |= 1u << 2;
    else
        m->irr &= ~(1u << 2), m->lines &= ~(1u << 2);
    int out = chip_irq(m, true) >= 0;
    if (out != p->out) {
        p->out = out;
        if (p->intr) p->intr(p->opaque, out);
    }
}

static void intack(struct pic_chip *c, int irq)
{
    uint8_t bit = 1u << irq;
    if (!c->auto_eoi)
        c->isr |= bit;
    else if (c->rotate_aeoi)
        c->prio_add = (irq + 1) & 7;
    if (!(c->elcr & bit))
        c->irr &= ~bit; /* edge: the request is consumed; level: follows the line */
}

static void chip_reset(struct pic_chip *c)
{
    c->irr = c->lines & c->elcr;
    c->imr = c->isr = 0;
    c->base = c->prio_add = 0;
    c->init_state = 0;
    c->icw4 = c->single = c->auto_eoi = c->rotate_aeoi = c->sfnm = false;
    c->read_isr = c->poll = c->special_mask = false;
}

struct pic *pic_create(void (*intr)(void *opaque, int level), void *opaque)
{
    struct pic *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    pthread_mutex_init(&p->lock, NULL);
    p->intr = intr;
    p->opaque = opaque;
    for (int i = 0; i < 2; i++) {
        p->c[i].pic = p;
        chip_reset(&p->c[i]);
        p->c[i].imr = 0xff; /* no firmware ran: keep everything quiet until set up */
    }
    /* IRQ0, 1, 2 (master) and 8, 13 (slave) are always edge-triggered */
    p->c[0].elcr_mask = 0xf8;
    p->c[1].elcr_mask = 0xde;
    return p;
}

void pic_destroy(struct pic *p)
{
    if (!p) return;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void pic_set_irq(void *opaque, int irq, int level)
{
    struct pic *p = opaque;
    if (irq < 0 || irq > 15 || irq == 2) return;
    struct pic_chip *c = &p->c[irq >> 3];
    uint8_t bit = 1u << (irq & 7);
    pthread_mutex_lock(&p->lock);
    if (level) {
        /* IRR latches even while masked: Linux reads it to find pending IRQs */
        if ((c->elcr & bit) || !(c->lines & bit)) c->irr |= bit;
        c->lines |= bit;
    } else {
        c->lines &= ~bit;
        if (c->elcr & bit) c->irr &= ~bit;
    }
    update(p);
    pthread_mutex_unlock(&p->lock);
}

int pic_ack(struct pic *p)
{
    pthread_mutex_lock(&p->lock);
    struct pic_chip *m = &p->c[0], *s = &p->c[1];
    int irq = chip_irq(m, true), vec;
    if (m->init_state) {
        vec = -1; /* mid-initialization there is no vector base to answer with */
    } else if (irq < 0) {
        vec = m->base | 7; /* the request went away: spurious IRQ7, no ISR bit */
    } else if (irq == 2) {
        int irq2 = chip_irq(s, false);
        if (irq2 >= 0)
            intack(s, irq2);
        else
            irq2 = 7; /* spurious IRQ15: the master still marks the cascade */
        intack(m, 2);
        vec = s->base | irq2;
    } else {
        intack(m, irq);
        vec = m->base | irq;
    }
    update(p);
    pthread_mutex_unlock(&p->lock);
    return vec;
}

int pic_ack_cb(void *opaque)
{
    return pic_ack(opaque);
}

/* OCW2: end of interrupt and rotation. */
static void ocw2(struct pic_chip *c, uint8_t val)
{
    int irq;
    switch (val >> 5) {
    case 0: c->rotate_aeoi = false; break;
    case 4: c->rotate_aeoi = true; break;
    case 1: /* non-specific EOI */
    case 5: /* rotate on non-specific EOI */
        if (priority(c, c->isr) == 8) break;
        irq = (priority(c, c->isr) + c->prio_add) & 7;
        c->isr &= ~(1u << irq);
        if (val >> 5 == 5) c->prio_add = (irq + 1) & 7;
        break;
    case 3: /* specific EOI */
    case 7: /* rotate on specific EOI */
        irq = val & 7;
        c->isr &= ~(1u << irq);
        if (val >> 5 == 7) c->prio_add = (irq + 1) & 7;
        break;
    case 6: c->prio_add = (val + 1) & 7; break; /* set priority: val&7 lowest */
    default: break;                             /* 2: no operation */
    }
}

static void write_port(struct pic *p, struct pic_chip *c, int port, uint8_t val)
{
    if (port == 0) {
        if (val & 0x10) { /* ICW1 starts initialization */
            chip_reset(c);
            c->icw4 = val & 1;
            c->single = val & 2;
            c->init_state = 1;
        } else if (val & 0x08) { /* OCW3 */
            if (val & 0x04) c->poll = true;
            if (val & 0x02) c->read_isr = val & 1;
            if (val & 0x40) c->special_mask = (val >> 5) & 1;
        } else {
            ocw2(c, val);
        }
    } else {
        switch (c->init_state) {
        case 0: c->imr = val; break; /* OCW1 */
        case 1:
            c->base = val & 0xf8;
            c->init_state = c->single ? (c->icw4 ? 3 : 0) : 2;
            break;
        case 2: c->init_state = c->icw4 ? 3 : 0; break; /* ICW3: wiring is fixed */
        default:                                        /* ICW4 */
            c->sfnm = (val >> 4) & 1;
            c->auto_eoi = (val >> 1) & 1;
            c->init_state = 0;
            break;
        }
    }
    update(p);
}

/* Poll mode: the read acts as an interrupt acknowledge of this chip. */
static uint8_t poll_read(struct pic *p, struct pic_chip *c)
{
    c->poll = false;
    int irq = chip_irq(c, c == &p->c[0]);
    if (irq < 0) return 0;
    intack(c, irq);
    update(p);
    return 0x80 | (uint8_t)irq;
}

static uint8_t read_port(struct pic *p, struct pic_chip *c, int port)
{
    if (c->poll) return poll_read(p, c);
    if (port == 0) return c->read_isr ? c->isr : c->irr;
    return c->imr;
}

static uint64_t chip_read(void *dev, uint64_t offset, int size)
{
    struct pic_chip *c = dev;
    struct pic *p = c->pic;
    uint64_t v = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < size && offset + (uint64_t)i < 2; i++)
        v |= (uint64_t)read_port(p, c, (int)offset + i) << (8 * i);
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void chip_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct pic_chip *c = dev;
    struct pic *p = c->pic;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < size && offset + (uint64_t)i < 2; i++)
        write_port(p, c, (int)offset + i, (uint8_t)(value >> (8 * i)));
    pthread_mutex_unlock(&p->lock);
}

static uint64_t elcr_read(void *dev, uint64_t offset, int size)
{
    struct pic *p = dev;
    uint64_t v = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < size && offset + (uint64_t)i < 2; i++)
        v |= (uint64_t)p->c[offset + (uint64_t)i].elcr << (8 * i);
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void elcr_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct pic *p = dev;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < size && offset + (uint64_t)i < 2; i++) {
        struct pic_chip *c = &p->c[offset + (uint64_t)i];
        c->elcr = (uint8_t)(value >> (8 * i)) & c->elcr_mask;
        c->irr = (c->irr & ~c->elcr) | (c->lines & c->elcr); /* level IRR = line */
    }
    update(p);
    pthread_mutex_unlock(&p->lock);
}

static const struct io_ops chip_ops = {.read = chip_read, .write = chip_write};
static const struct io_ops elcr_ops = {.read = elcr_read, .write = elcr_write};

int pic_register(struct pic *p, struct router *r)
{
    int err = router_add(r, ROUTE_PIO, 0x20, 2, &chip_ops, &p->c[0], "pic-master");
    if (!err) err = router_add(r, ROUTE_PIO, 0xa0, 2, &chip_ops, &p->c[1], "pic-slave");
    if (!err) err = router_add(r, ROUTE_PIO, 0x4d0, 2, &elcr_ops, p, "elcr");
    return err;
}
