/* pit.c — 8254 model; see pit.h. A counter is described by its reload value and
 * the host time at which it started; its current value and OUT level are derived
 * from the elapsed tick count on every read, so nothing runs while the guest is
 * not looking. Only counter 0 needs a host timer (for IRQ 0). */
#include "devices/pit.h"

#include <string.h>

#define REFRESH_NS 15085ull /* port B bit 4 toggles every 15.085 us (DRAM refresh) */

static uint64_t ns_to_ticks(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * PIT_FREQ_HZ / 1000000000ull);
}

/* Rounded up, so that at the returned time the tick has certainly passed. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * 1000000000ull + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ);
}

static uint64_t elapsed(const struct pit_channel *c, uint64_t now)
{
    if (c->paused || now < c->base_ns) return c->base_ticks;
    return c->base_ticks + ns_to_ticks(now - c->base_ns);
}

static bool waiting_trigger(const struct pit_channel *c)
{
    return (c->mode == 1 || c->mode == 5) && !c->triggered;
}

static uint16_t counter_value(const struct pit_channel *c, uint64_t now)
{
    if (!c->running) return c->frozen;
    if (waiting_trigger(c)) return (uint16_t)c->count;
    uint64_t d = elapsed(c, now);
    switch (c->mode) {
    case 2: return (uint16_t)(c->count - d % c->count);
    case 3: /* decrements by two, twice per period */
        return (uint16_t)(c->count - (2 * d) % c->count);
    default: /* 0, 1, 4, 5: count down and keep wrapping past zero */
        return (uint16_t)(c->count - d);
    }
}

static bool out_level(const struct pit_channel *c, uint64_t now)
{
    if (!c->running) return c->mode != 0; /* initial OUT after a control word: low in mode 0 only */
    if (waiting_trigger(c)) return true;
    uint64_t d = elapsed(c, now);
    switch (c->mode) {
    case 0:
    case 1: return d >= c->count;
    case 2:
        if (c->paused || c->count == 1) return true;
        return d % c->count != c->count - 1; /* low for the clock at count 1 */
    case 3:
        if (c->paused) return true;
        return d % c->count < (c->count + 1) / 2;
    default: /* 4, 5: a one-clock low strobe at terminal count */ return d != c->count;
    }
}

/* The tick at which OUT next rises after tick d, or UINT64_MAX. */
static uint64_t next_rise(const struct pit_channel *c, uint64_t d)
{
    if (!c->running || c->paused || waiting_trigger(c)) return UINT64_MAX;
    switch (c->mode) {
    case 0:
    case 1: return d < c->count ? c->count : UINT64_MAX;
    case 2:
    case 3: return (d / c->count + 1) * c->count;
    default: return d <= c->count ? c->count + 1ull : UINT64_MAX;
    }
}

/* (Re)arms the host timer for counter 0's next OUT rising edge. Lock held. */
static void schedule_irq(struct pit *p, uint64_t now)
{
    struct pit_channel *c = &p->ch[0];
    uint64_t d = elapsed(c, now), rise = next_rise(c, d);
    if (rise == UINT64_MAX || !p->ts) {
        if (p->irq_armed && p->ts) timer_del(p->ts, &p->timer);
        p->irq_armed = false;
        return;
    }
    uint64_t deadline = c->base_ns + ticks_to_ns(rise - c->base_ticks);
    if ((c->mode == 2 || c->mode == 3) && p->last_pulse_ns &&
        deadline < p->last_pulse_ns + PIT_MIN_PERIOD_NS)
        deadline = p->last_pulse_ns + PIT_MIN_PERIOD_NS;
    p->irq_armed = true;
    p->irq_deadline = deadline;
    timer_mod(p->ts, &p->timer, deadline);
}

static void timer_fire(void *opaque)
{
    struct pit *p = opaque;
    pthread_mutex_lock(&p->lock);
    uint64_t now = clock_ns();
    /* a callback already on its way when the guest reprogrammed counter 0 finds
     * the new (later) deadline or no deadline at all */
    bool pulse = p->irq_armed && now >= p->irq_deadline;
    if (pulse) {
        p->irq_armed = false;
        p->last_pulse_ns = now;
        schedule_irq(p, now); /* missed periods are coalesced into this pulse */
    }
    pthread_mutex_unlock(&p->lock);
    if (pulse) irq_pulse(&p->irq0);
}

static void load_count(struct pit *p, int i, uint32_t v, uint64_t now)
{
    struct pit_channel *c = &p->ch[i];
    c->count = v ? v : 65536;
    c->running = true;
    c->null_count = false;
    c->base_ns = now;
    c->base_ticks = 0;
    c->triggered = false;
    c->paused = !c->gate && c->mode != 1 && c->mode != 5;
}

static void gate_edge(struct pit_channel *c, bool level, uint64_t now)
{
    if (level == c->gate) return;
    c->gate = level;
    if (!c->running) return;
    if (!level) { /* modes 0, 2, 3, 4 stop counting; 1 and 5 ignore a falling gate */
        if (c->mode != 1 && c->mode != 5 && !c->paused) {
            c->base_ticks = elapsed(c, now);
            c->paused = true;
        }
        return;
    }
    switch (c->mode) {
    case 0:
    case 4: /* resume where it stopped */
        if (c->paused) {
            c->base_ns = now;
            c->paused = false;
        }
        break;
    default: /* 2, 3 reload; 1, 5 (re)trigger */
        c->base_ns = now;
        c->base_ticks = 0;
        c->paused = false;
        c->triggered = true;
        break;
    }
}

static void latch_count(struct pit_channel *c, uint64_t now)
{
    if (c->count_latched) return; /* a second latch before the first is read is ignored */
    c->latch = counter_value(c, now);
    c->count_latched = true;
    c->latch_msb_next = false;
}

static void latch_status(struct pit_channel *c, uint64_t now)
{
    if (c->status_latched) return;
    c->status = (uint8_t)((out_level(c, now) ? 0x80 : 0) | (c->null_count ? 0x40 : 0) |
                          (c->rw << 4) | (c->mode << 1) | (c->bcd ? 1 : 0));
    c->status_latched = true;
}

static void control_word(struct pit *p, uint8_t v, uint64_t now)
{
    int sc = v >> 6;
    if (sc == 3) { /* read-back: bit 5 = don't latch count, bit 4 = don't latch status */
        for (int i = 0; i < 3; i++) {
            if (!(v & (2 << i))) continue;
            if (!(v & 0x20)) latch_count(&p->ch[i], now);
            if (!(v & 0x10)) latch_status(&p->ch[i], now);
        }
        return;
    }
    struct pit_channel *c = &p->ch[sc];
    int rw = (v >> 4) & 3;
    if (!rw) {
        latch_count(c, now);
        return;
    }
    /* a control word resets the counter logic: counting stops until a count arrives */
    c->frozen = counter_value(c, now);
    c->running = false;
    c->rw = (uint8_t)rw;
    c->mode = (v >> 1) & 7;
    if (c->mode > 5) c->mode -= 4;
    c->bcd = v & 1;
    c->null_count = true;
    c->wmsb_next = c->rmsb_next = false;
    c->count_latched = c->status_latched = false;
    if (sc == 0) schedule_irq(p, now);
}

static void counter_write(struct pit *p, int i, uint8_t v, uint64_t now)
{
    struct pit_channel *c = &p->ch[i];
    switch (c->rw) {
    case 1: load_count(p, i, v, now); break;
    case 2: load_count(p, i, (uint32_t)v << 8, now); break;
    default:
        if (!c->wmsb_next) {
            c->wlsb = v;
            c->wmsb_next = true;
            if (c->mode == 0 && c->running) { /* mode 0: the first byte stops the count */
                c->frozen = counter_value(c, now);
                c->running = false;
                if (i == 0) schedule_irq(p, now);
            }
            return;
        }
        c->wmsb_next = false;
        load_count(p, i, c->wlsb | (uint32_t)v << 8, now);
        break;
    }
    if (i == 0) schedule_irq(p, now);
}

static uint8_t counter_read(struct pit_channel *c, uint64_t now)
{
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    uint16_t v;
    bool msb;
    if (c->count_latched) {
        v = c->latch;
        if (c->rw == 3) {
            msb = c->latch_msb_next;
            c->latch_msb_next = !msb;
            c->count_latched = !msb;
        } else {
            msb = c->rw == 2;
            c->count_latched = false;
        }
    } else {
        v = counter_value(c, now);
        msb = c->rw == 2;
        if (c->rw == 3) {
            msb = c->rmsb_next;
            c->rmsb_next = !msb;
        }
    }
    return msb ? (uint8_t)(v >> 8) : (uint8_t)v;
}

static uint64_t pit_read(void *dev, uint64_t offset, int size)
{
    struct pit *p = dev;
    uint64_t v = 0, now = clock_ns();
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < size && offset + i < 4; i++) {
        unsigned reg = (unsigned)(offset + i);
        uint8_t b = reg < 3 ? counter_read(&p->ch[reg], now) : 0xFF; /* 0x43 is write-only */
        v |= (uint64_t)b << (8 * i);
    }
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void pit_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct pit *p = dev;
    uint64_t now = clock_ns();
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < size && offset + i < 4; i++) {
        unsigned reg = (unsigned)(offset + i);
        uint8_t b = (uint8_t)(value >> (8 * i));
        if (reg == 3)
            control_word(p, b, now);
        else
            counter_write(p, (int)reg, b, now);
    }
    pthread_mutex_unlock(&p->lock);
}

const struct io_ops pit_io_ops = {.read = pit_read, .write = pit_write};

static uint64_t port_b_read(void *dev, uint64_t offset, int size)
{
    struct pit *p = dev;
    uint64_t now = clock_ns();
    pthread_mutex_lock(&p->lock);
    uint8_t v = (p->port_b & 0x0E) | (p->ch[2].gate ? 0x01 : 0) |
                (((now / REFRESH_NS) & 1) ? 0x10 : 0) | (out_level(&p->ch[2], now) ? 0x20 : 0);
    pthread_mutex_unlock(&p->lock);
    return v; /* a 1-byte route: the router splits anything wider */
}

static void port_b_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct pit *p = dev;
    uint64_t now = clock_ns();
    pthread_mutex_lock(&p->lock);
    p->port_b = value & 0x0F;
    gate_edge(&p->ch[2], value & 1, now);
    pthread_mutex_unlock(&p->lock);
}

const struct io_ops pit_port_b_ops = {.read = port_b_read, .write = port_b_write};

void pit_set_gate(struct pit *p, int channel, bool level)
{
    if (channel < 0 || channel > 2) return;
    uint64_t now = clock_ns();
    pthread_mutex_lock(&p->lock);
    gate_edge(&p->ch[channel], level, now);
    if (channel == 2) p->port_b = (uint8_t)((p->port_b & ~1) | level);
    if (channel == 0) schedule_irq(p, now);
    pthread_mutex_unlock(&p->lock);
}

bool pit_get_out(struct pit *p, int channel)
{
    if (channel < 0 || channel > 2) return false;
    pthread_mutex_lock(&p->lock);
    bool out = out_level(&p->ch[channel], clock_ns());
    pthread_mutex_unlock(&p->lock);
    return out;
}

static void reset_locked(struct pit *p)
{
    for (int i = 0; i < 3; i++)
        p->ch[i] = (struct pit_channel){.rw = 3, .gate = i != 2, .null_count = true};
    p->port_b = 0;
    p->last_pulse_ns = 0;
    schedule_irq(p, clock_ns());
}

void pit_init(struct pit *p, struct timer_service *ts, const struct irq_line *irq0)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->ts = ts;
    if (irq0) p->irq0 = *irq0;
    timer_init(&p->timer, timer_fire, p);
    reset_locked(p);
}

int pit_register(struct pit *p, struct router *r)
{
    int err = router_add(r, ROUTE_PIO, PIT_BASE, 4, &pit_io_ops, p, "pit");
    return err ? err : router_add(r, ROUTE_PIO, PIT_PORT_B, 1, &pit_port_b_ops, p, "port61");
}

void pit_reset(struct pit *p)
{
    pthread_mutex_lock(&p->lock);
    reset_locked(p);
    pthread_mutex_unlock(&p->lock);
}

void pit_destroy(struct pit *p)
{
    if (p->ts) timer_del(p->ts, &p->timer);
    pthread_mutex_destroy(&p->lock);
}
