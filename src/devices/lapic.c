/* lapic.c — see lapic.h. The IRR/ISR/TMR are 256-bit maps kept as 8 words, the
 * layout of the register page, so reads are direct and the highest pending
 * vector is a scan of at most 8 words. The vCPU's interrupt line is recomputed
 * and driven while the LAPIC mutex is held: a message accepted on another thread
 * and an acknowledge on the vCPU thread are thereby ordered, and the last line
 * update always reflects the final state (no lost wakeup). */
#include "devices/lapic.h"

#include <pthread.h>
#include <stdlib.h>

#include "cpu/cpu.h"
#include "devices/timer.h"

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_N };

#define LVT_MASKED      (1u << 16)
#define LVT_DM(x)       (((x) >> 8) & 7)
#define SVR_ENABLE      (1u << 8)
#define TIMER_MODE(lvt) (((lvt) >> 17) & 3)
enum { TM_ONESHOT = 0, TM_PERIODIC = 1, TM_DEADLINE = 2 };

/* Writable bits of each LVT entry (delivery status / remote IRR are read-only) */
static const uint32_t lvt_wmask[LVT_N] = {0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff};

#define ESR_SEND_ILLEGAL (1u << 5)
#define ESR_RECV_ILLEGAL (1u << 6)

#define LAPIC_VERSION 0x00050014u /* integrated APIC, max LVT entry 5 */

/* A periodic timer faster than this would only burn the host (and the guest could
 * ask for a period of one nanosecond); Linux never programs one below 1 ms. */
#define MIN_PERIOD_NS 100000ull
#define MAX_DELTA_NS  (1ull << 62) /* ~146 years: far enough, no overflow */

struct lapic {
    pthread_mutex_t lock;
    int id;
    struct vcpu *v;
    struct apic_bus bus;
    struct timer_service *ts;
    uint64_t (*read_tsc)(void *);
    void *tsc_opaque;
    uint64_t tsc_hz;
    int (*extint_ack)(void *);
    void *extint_opaque;
    void (*logical_hook)(void *, int, uint32_t, uint32_t);
    void *logical_opaque;

    uint64_t base; /* IA32_APIC_BASE */
    uint32_t tpr, ldr, dfr, svr, icr_lo, icr_hi;
    uint32_t esr;         /* readable ESR (latched by a write) */
    uint32_t esr_pending; /* errors accumulated since the last latch */
    uint32_t lvt[LVT_N];
    uint32_t isr[8], tmr[8], irr[8];
    uint32_t init_count, divide;
    bool lint[2];    /* LINT0/LINT1 pin levels (physical wires: survive INIT) */
    bool extint_msg; /* an ExtINT message waits for its acknowledge */

    struct timer timer;
    uint64_t deadline_ns;  /* host deadline of the armed timer, 0 = not armed */
    uint64_t tsc_deadline; /* IA32_TSC_DEADLINE */
    /* While its vCPU runs and polls (lapic_timer_owner_runs), the armed deadline
     * is not in the timer service but here, as a TSC value the vCPU compares
     * against every few thousand instructions (lapic_timer_poll): a tick then
     * costs no host thread wake-up that would preempt a vCPU for it. */
    bool owner_polls;
    _Atomic uint64_t due_tsc; /* guest TSC at deadline_ns; NOT_DUE when unarmed */
};

#define NOT_DUE UINT64_MAX

/* ---- vector maps and priorities ---- */

static int top_bit(const uint32_t *r)
{
    for (int i = 7; i >= 0; i--)
        if (r[i]) return i * 32 + 31 - __builtin_clz(r[i]);
    return -1;
}

static inline void set_vec(uint32_t *r, unsigned v)
{
    r[(v >> 5) & 7] |= 1u << (v & 31);
}
static inline void clr_vec(uint32_t *r, unsigned v)
{
    r[(v >> 5) & 7] &= ~(1u << (v & 31));
}
static inline bool tst_vec(const uint32_t *r, unsigned v)
{
    return (r[(v >> 5) & 7] >> (v & 31)) & 1;
}

static bool hw_enabled(const struct lapic *l)
{
    return l->base & LAPIC_BASE_ENABLE;
}

static unsigned ppr(const struct lapic *l)
{
    int isrv = top_bit(l->isr);
    unsigned isr_class = isrv < 0 ? 0 : (unsigned)isrv & 0xf0;
    return (l->tpr & 0xf0) >= isr_class ? l->tpr & 0xff : isr_class;
}

static unsigned apr(const struct lapic *l)
{
    int irrv = top_bit(l->irr), isrv = top_bit(l->isr);
    unsigned irr_class = irrv < 0 ? 0 : (unsigned)irrv & 0xf0;
    unsigned isr_class = isrv < 0 ? 0 : (unsigned)isrv & 0xf0;
    unsigned tpr_class = l->tpr & 0xf0;
    if (tpr_class >= irr_class && tpr_class >= isr_class) return l->tpr & 0xff;
    unsigned m = tpr_class > isr_class ? tpr_class : isr_class;
    return m > irr_class ? m : irr_class;
}

/* The highest IRR vector whose priority class beats the PPR, or -1. */
static int deliverable(const struct lapic *l)
{
    int v = top_bit(l->irr);
    if (v < 0 || ((unsigned)v & 0xf0) <= (ppr(l) & 0xf0)) return -1;
    return v;
}

static bool extint_pending(const struct lapic *l)
{
    if (!hw_enabled(l)) return l->lint[0]; /* no APIC: LINT0 is the INTR pin */
    if (l->extint_msg) return true;
    uint32_t lvt = l->lvt[LVT_LINT0];
    return l->lint[0] && !(lvt & LVT_MASKED) && LVT_DM(lvt) == APIC_DM_EXTINT;
}

/* Called with the lock held after any change that can alter deliverability. */
static void update_line(struct lapic *l)
{
    if (l->v) vcpu_set_irq_line(l->v, extint_pending(l) || deliverable(l) >= 0);
}

static void record_error(struct lapic *l, uint32_t bit);

static void set_irr(struct lapic *l, unsigned vec, bool level)
{
    vec &= 0xff;
    if (vec < 16) { /* vectors 0-15 are reserved for exceptions */
        record_error(l, ESR_RECV_ILLEGAL);
        return;
    }
    set_vec(l->irr, vec);
    if (level)
        set_vec(l->tmr, vec);
    else
        clr_vec(l->tmr, vec);
}

static void record_error(struct lapic *l, uint32_t bit)
{
    l->esr_pending |= bit;
    uint32_t e = l->lvt[LVT_ERROR];
    if (e & LVT_MASKED) return;
    if ((e & 0xff) < 16) { /* an illegal error vector: note it, do not recurse */
        l->esr_pending |= ESR_RECV_ILLEGAL;
    } else {
        set_vec(l->irr, e & 0xff);
        clr_vec(l->tmr, e & 0xff);
    }
}

/* ---- timer ---- */

static uint64_t tsc_hz(const struct lapic *l)
{
    return l->tsc_hz ? l->tsc_hz : 1000000000ull;
}

static unsigned divisor(const struct lapic *l)
{
    unsigned v = ((l->divide >> 1) & 4) | (l->divide & 3);
    return v == 7 ? 1 : 2u << v;
}

static uint64_t clamp_ns(unsigned __int128 ns)
{
    return ns > MAX_DELTA_NS ? MAX_DELTA_NS : (uint64_t)ns;
}

static uint64_t ticks_to_ns(const struct lapic *l, uint64_t ticks)
{
    return clamp_ns((unsigned __int128)ticks * divisor(l) * 1000000000u / tsc_hz(l));
}

static uint64_t ns_to_ticks(const struct lapic *l, uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * tsc_hz(l) / ((uint64_t)divisor(l) * 1000000000u));
}

static uint64_t guest_tsc(const struct lapic *l)
{
    if (l->read_tsc) return l->read_tsc(l->tsc_opaque);
    return (uint64_t)((unsigned __int128)clock_ns() * tsc_hz(l) / 1000000000u);
}

/* The guest TSC value at host time deadline_ns (now when it passed). */
static uint64_t tsc_at(const struct lapic *l, uint64_t deadline_ns)
{
    uint64_t tsc = guest_tsc(l), now = clock_ns();
    if (deadline_ns <= now) return tsc;
    return tsc + (uint64_t)((unsigned __int128)(deadline_ns - now) * tsc_hz(l) / 1000000000u);
}

static void arm(struct lapic *l, uint64_t deadline)
{
    l->deadline_ns = deadline ? deadline : 1;
    if (l->owner_polls)
        atomic_store_explicit(&l->due_tsc, tsc_at(l, l->deadline_ns), memory_order_relaxed);
    else if (l->ts)
        timer_mod(l->ts, &l->timer, l->deadline_ns);
}

static void disarm(struct lapic *l)
{
    l->deadline_ns = 0;
    atomic_store_explicit(&l->due_tsc, NOT_DUE, memory_order_relaxed);
    if (l->ts) timer_del(l->ts, &l->timer);
}

static uint64_t period_ns(const struct lapic *l)
{
    uint64_t ns = ticks_to_ns(l, l->init_count);
    return ns < MIN_PERIOD_NS ? MIN_PERIOD_NS : ns;
}

static void start_count(struct lapic *l)
{
    if (!l->init_count) {
        disarm(l);
        return;
    }
    uint64_t ns =
        TIMER_MODE(l->lvt[LVT_TIMER]) == TM_PERIODIC ? period_ns(l) : ticks_to_ns(l, l->init_count);
    arm(l, clock_ns() + ns);
}

static uint32_t current_count(const struct lapic *l)
{
    if (TIMER_MODE(l->lvt[LVT_TIMER]) == TM_DEADLINE || !l->deadline_ns) return 0;
    uint64_t now = clock_ns();
    if (now >= l->deadline_ns) return 0;
    uint64_t t = ns_to_ticks(l, l->deadline_ns - now);
    return t > l->init_count ? l->init_count : (uint32_t)t;
}

/* The armed deadline passed: raise the timer interrupt and re-arm a periodic
 * timer (for whoever fires it now: the timer thread or the running vCPU). */
static void fire_locked(struct lapic *l, uint64_t now)
{
    atomic_store_explicit(&l->due_tsc, NOT_DUE, memory_order_relaxed);
    int mode = TIMER_MODE(l->lvt[LVT_TIMER]);
    if (mode == TM_DEADLINE) {
        l->tsc_deadline = 0;
        l->deadline_ns = 0;
    } else if (mode == TM_PERIODIC && l->init_count) {
        /* keep the average rate, but never try to catch up a backlog */
        uint64_t p = period_ns(l), next = l->deadline_ns + p;
        arm(l, next > now ? next : now + p);
    } else {
        l->deadline_ns = 0;
    }
    if (!(l->lvt[LVT_TIMER] & LVT_MASKED)) {
        set_irr(l, l->lvt[LVT_TIMER] & 0xff, false);
        update_line(l);
    }
}

/* Timer thread. The armed deadline in the LAPIC is the truth: a callback that
 * raced with a re-program (the service had already taken it off its heap) or
 * with the vCPU taking the timer over finds a later deadline, none, or the
 * timer its vCPU's, and does nothing. */
static void timer_fire(void *opaque)
{
    struct lapic *l = opaque;
    pthread_mutex_lock(&l->lock);
    uint64_t now = clock_ns();
    if (l->deadline_ns && now >= l->deadline_ns && !l->owner_polls) fire_locked(l, now);
    pthread_mutex_unlock(&l->lock);
}

bool lapic_timer_due(const struct lapic *l)
{
    uint64_t due = atomic_load_explicit(&l->due_tsc, memory_order_relaxed);
    return due != NOT_DUE && guest_tsc(l) >= due;
}

void lapic_timer_poll(struct lapic *l)
{
    if (!lapic_timer_due(l)) return;
    pthread_mutex_lock(&l->lock);
    if (l->owner_polls && l->deadline_ns && lapic_timer_due(l)) {
        uint64_t now = clock_ns(); /* the TSC said due: never earlier than the deadline */
        fire_locked(l, now > l->deadline_ns ? now : l->deadline_ns);
    }
    pthread_mutex_unlock(&l->lock);
}

void lapic_timer_owner_runs(struct lapic *l, bool runs)
{
    pthread_mutex_lock(&l->lock);
    if (runs != l->owner_polls && l->ts) {
        l->owner_polls = runs;
        if (runs) {
            timer_del(l->ts, &l->timer);
            if (l->deadline_ns) arm(l, l->deadline_ns);
        } else {
            atomic_store_explicit(&l->due_tsc, NOT_DUE, memory_order_relaxed);
            if (l->deadline_ns) timer_mod(l->ts, &l->timer, l->deadline_ns);
        }
    }
    pthread_mutex_unlock(&l->lock);
}

static void set_tsc_deadline(struct lapic *l, uint64_t deadline)
{
    if (TIMER_MODE(l->lvt[LVT_TIMER]) != TM_DEADLINE)
        return; /* writes are ignored outside TSC-deadline mode */
    l->tsc_deadline = deadline;
    if (!deadline) {
        disarm(l);
        return;
    }
    uint64_t tsc = guest_tsc(l), now = clock_ns();
    uint64_t delta = deadline > tsc
                         ? clamp_ns((unsigned __int128)(deadline - tsc) * 1000000000u / tsc_hz(l))
                         : 0;
    arm(l, now + delta);
}

/* ---- life cycle ---- */

static void reset_locked(struct lapic *l)
{
    disarm(l);
    for (int i = 0; i < 8; i++)
        l->irr[i] = l->isr[i] = l->tmr[i] = 0;
    for (int i = 0; i < LVT_N; i++)
        l->lvt[i] = LVT_MASKED;
    l->tpr = l->ldr = l->icr_lo = l->icr_hi = l->esr = l->esr_pending = 0;
    l->dfr = 0xffffffffu;
    l->svr = 0xff;
    l->init_count = l->divide = 0;
    l->tsc_deadline = 0;
    l->extint_msg = false;
    update_line(l);
}

struct lapic *lapic_create(int apic_id, struct vcpu *v, const struct apic_bus *bus,
                           struct timer_service *ts, uint64_t (*read_tsc)(void *), void *tsc_opaque,
                           uint64_t hz)
{
    struct lapic *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->id = apic_id & 0xff;
    l->v = v;
    if (bus) l->bus = *bus;
    l->ts = ts;
    l->read_tsc = read_tsc;
    l->tsc_opaque = tsc_opaque;
    l->tsc_hz = hz;
    l->base = LAPIC_DEFAULT_BASE | LAPIC_BASE_ENABLE | (v && v->id == 0 ? LAPIC_BASE_BSP : 0);
    timer_init(&l->timer, timer_fire, l);
    atomic_init(&l->due_tsc, NOT_DUE);
    reset_locked(l);
    return l;
}

void lapic_destroy(struct lapic *l)
{
    if (!l) return;
    if (l->ts) timer_del(l->ts, &l->timer);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void lapic_reset(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    reset_locked(l);
    pthread_mutex_unlock(&l->lock);
}

int lapic_id(const struct lapic *l)
{
    return l->id;
}

uint64_t lapic_base(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t b = l->base;
    pthread_mutex_unlock(&l->lock);
    return b;
}

void lapic_set_logical_hook(struct lapic *l, void (*fn)(void *, int, uint32_t, uint32_t),
                            void *opaque)
{
    pthread_mutex_lock(&l->lock);
    l->logical_hook = fn;
    l->logical_opaque = opaque;
    pthread_mutex_unlock(&l->lock);
}

void lapic_set_extint_ack(struct lapic *l, int (*ack)(void *), void *opaque)
{
    pthread_mutex_lock(&l->lock);
    l->extint_ack = ack;
    l->extint_opaque = opaque;
    pthread_mutex_unlock(&l->lock);
}

/* ---- register page ---- */

uint64_t lapic_mmio_read(void *dev, uint64_t offset, int size)
{
    struct lapic *l = dev;
    if (size != 4 || (offset & 0xf) || offset >= 0x1000) return 0;
    unsigned r = (unsigned)(offset >> 4);
    uint32_t val = 0;
    pthread_mutex_lock(&l->lock);
    switch (r) {
    case 0x02: val = (uint32_t)l->id << 24; break;
    case 0x03: val = LAPIC_VERSION; break;
    case 0x08: val = l->tpr; break;
    case 0x09: val = apr(l); break;
    case 0x0a: val = ppr(l); break;
    case 0x0d: val = l->ldr; break;
    case 0x0e: val = l->dfr; break;
    case 0x0f: val = l->svr; break;
    case 0x10 ... 0x17: val = l->isr[r - 0x10]; break;
    case 0x18 ... 0x1f: val = l->tmr[r - 0x18]; break;
    case 0x20 ... 0x27: val = l->irr[r - 0x20]; break;
    case 0x28: val = l->esr; break;
    case 0x30: val = l->icr_lo; break; /* delivery status (bit 12) always idle */
    case 0x31: val = l->icr_hi; break;
    case 0x32 ... 0x37: val = l->lvt[r - 0x32]; break;
    case 0x38: val = l->init_count; break;
    case 0x39: val = current_count(l); break;
    case 0x3e: val = l->divide; break;
    default: break; /* EOI, RRD and reserved registers read as 0 */
    }
    pthread_mutex_unlock(&l->lock);
    return val;
}

/* Builds the IPI for an ICR low write; false when nothing is to be sent. */
static bool icr_message(struct lapic *l, struct apic_msg *m)
{
    uint32_t lo = l->icr_lo;
    *m = (struct apic_msg){
        .vector = lo & 0xff,
        .delivery = (lo >> 8) & 7,
        .logical = (lo >> 11) & 1,
        .assert = (lo >> 14) & 1,
        .level = (lo >> 15) & 1,
        .shorthand = (lo >> 18) & 3,
        .dest = l->icr_hi >> 24,
        .src = l->v ? l->v->id : l->id,
    };
    if ((m->delivery == APIC_DM_FIXED || m->delivery == APIC_DM_LOWEST) && m->vector < 16) {
        record_error(l, ESR_SEND_ILLEGAL);
        update_line(l);
        return false;
    }
    return true;
}

static void write_lvt(struct lapic *l, int i, uint32_t val)
{
    val &= lvt_wmask[i];
    if (!(l->svr & SVR_ENABLE))
        val |= LVT_MASKED; /* a software-disabled APIC keeps every LVT masked */
    if (i == LVT_TIMER) {
        bool was_dl = TIMER_MODE(l->lvt[i]) == TM_DEADLINE, is_dl = TIMER_MODE(val) == TM_DEADLINE;
        if (was_dl != is_dl) { /* switching to or from TSC-deadline mode disarms */
            disarm(l);
            l->init_count = 0;
            l->tsc_deadline = 0;
        }
    }
    l->lvt[i] = val;
    if (i == LVT_LINT0) update_line(l); /* ExtINT routing of LINT0 may have changed */
}

void lapic_mmio_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct lapic *l = dev;
    if (size != 4 || (offset & 0xf) || offset >= 0x1000) return;
    unsigned r = (unsigned)(offset >> 4);
    uint32_t val = (uint32_t)value;
    struct apic_msg msg;
    bool send = false, logical = false;
    int eoi_level = -1;
    pthread_mutex_lock(&l->lock);
    switch (r) {
    case 0x08:
        l->tpr = val & 0xff;
        update_line(l);
        break;
    case 0x0b: { /* EOI: the highest in-service vector is done */
        int v = top_bit(l->isr);
        if (v >= 0) {
            clr_vec(l->isr, (unsigned)v);
            if (tst_vec(l->tmr, (unsigned)v)) eoi_level = v;
            update_line(l);
        }
        break;
    }
    case 0x0d:
        l->ldr = val & 0xff000000u;
        logical = true;
        break;
    case 0x0e:
        l->dfr = val | 0x0fffffffu;
        logical = true;
        break;
    case 0x0f:
        l->svr = val & 0x3ff;
        if (!(l->svr & SVR_ENABLE)) {
            for (int i = 0; i < LVT_N; i++)
                l->lvt[i] |= LVT_MASKED;
            update_line(l);
        }
        break;
    case 0x28: /* a write latches the errors seen since the previous one */
        l->esr = l->esr_pending;
        l->esr_pending = 0;
        break;
    case 0x30:
        l->icr_lo = val & 0x000ccfffu;
        send = icr_message(l, &msg);
        break;
    case 0x31: l->icr_hi = val & 0xff000000u; break;
    case 0x32 ... 0x37: write_lvt(l, (int)r - 0x32, val); break;
    case 0x38:
        if (TIMER_MODE(l->lvt[LVT_TIMER]) != TM_DEADLINE) {
            l->init_count = val;
            start_count(l);
        }
        break;
    case 0x3e: l->divide = val & 0xb; break;
    default: break; /* read-only and reserved registers */
    }
    uint32_t ldr = l->ldr, dfr = l->dfr;
    void (*hook)(void *, int, uint32_t, uint32_t) = logical ? l->logical_hook : NULL;
    pthread_mutex_unlock(&l->lock);
    /* outside the lock: the bus may come back to this LAPIC */
    if (hook) hook(l->logical_opaque, l->v ? l->v->id : l->id, ldr, dfr);
    if (send && l->bus.deliver) l->bus.deliver(l->bus.opaque, &msg);
    if (eoi_level >= 0 && l->bus.eoi) l->bus.eoi(l->bus.opaque, (uint8_t)eoi_level);
}

const struct io_ops lapic_mmio_ops = {.read = lapic_mmio_read, .write = lapic_mmio_write};

/* ---- MSRs ---- */

int lapic_msr(struct lapic *l, uint32_t index, bool write, uint64_t *value)
{
    int ret = 0;
    pthread_mutex_lock(&l->lock);
    switch (index) {
    case 0x1b: {
        if (!write) {
            *value = l->base;
            break;
        }
        /* same checks as the CPU's copy; bit 10 (x2APIC) is not advertised */
        if (*value & ~(0xffffff000ull | LAPIC_BASE_BSP | LAPIC_BASE_ENABLE)) {
            ret = -1;
            break;
        }
        bool was = hw_enabled(l);
        l->base = (*value & ~LAPIC_BASE_BSP) | (l->base & LAPIC_BASE_BSP);
        if (was && !hw_enabled(l))
            reset_locked(l); /* SDM: disabling may return the APIC to power-up state */
        update_line(l);
        break;
    }
    case 0x6e0:
        if (!write)
            *value = TIMER_MODE(l->lvt[LVT_TIMER]) == TM_DEADLINE ? l->tsc_deadline : 0;
        else
            set_tsc_deadline(l, *value);
        break;
    case 0x808: /* TPR: serves CR8 (x2APIC itself is not advertised) */
        if (!write) {
            *value = l->tpr;
        } else if (*value > 0xff) {
            ret = -1;
        } else {
            l->tpr = (uint32_t)*value;
            update_line(l);
        }
        break;
    default: ret = 1; break;
    }
    pthread_mutex_unlock(&l->lock);
    return ret;
}

/* ---- APIC bus side ---- */

bool apic_logical_match(uint32_t ldr_reg, uint32_t dfr, unsigned dest)
{
    unsigned ldr = ldr_reg >> 24;
    switch (dfr >> 28) {
    case 0xf: return (ldr & dest) != 0; /* flat: one bit per APIC */
    case 0x0:                           /* cluster: 4-bit cluster, 4 bits */
        return ((dest >> 4) == 0xf || (dest >> 4) == (ldr >> 4)) && (ldr & dest & 0xf);
    default: return false;
    }
}

bool lapic_match(struct lapic *l, const struct apic_msg *m)
{
    int self = l->v ? l->v->id : l->id;
    bool r = false;
    pthread_mutex_lock(&l->lock);
    if (!hw_enabled(l)) goto out;
    switch (m->shorthand) {
    case APIC_SH_SELF: r = m->src == self; goto out;
    case APIC_SH_ALL: r = true; goto out;
    case APIC_SH_OTHERS: r = m->src != self; goto out;
    default: break;
    }
    unsigned dest = m->dest & 0xff;
    if (dest == 0xff) { /* broadcast in both destination modes */
        r = true;
    } else if (!m->logical) {
        r = dest == (unsigned)l->id;
    } else {
        r = apic_logical_match(l->ldr, l->dfr, dest);
    }
out:
    pthread_mutex_unlock(&l->lock);
    return r;
}

void lapic_accept(struct lapic *l, const struct apic_msg *m)
{
    pthread_mutex_lock(&l->lock);
    bool enabled = hw_enabled(l);
    if (enabled && (m->delivery == APIC_DM_FIXED || m->delivery == APIC_DM_LOWEST)) {
        /* a software-disabled APIC does not accept fixed interrupts */
        if (l->svr & SVR_ENABLE) {
            set_irr(l, m->vector, m->level);
            update_line(l);
        }
    } else if (enabled && m->delivery == APIC_DM_EXTINT) {
        l->extint_msg = true;
        update_line(l);
    }
    pthread_mutex_unlock(&l->lock);
    if (!enabled || !l->v) return;
    switch (m->delivery) {
    case APIC_DM_NMI: vcpu_post(l->v, VCPU_REQ_NMI); break;
    case APIC_DM_INIT:
        if (m->level && !m->assert)
            break; /* INIT level de-assert: no effect on modern processors */
        lapic_reset(l);
        vcpu_post(l->v, VCPU_REQ_INIT);
        break;
    case APIC_DM_SIPI: vcpu_send_sipi(l->v, m->vector); break;
    default: break; /* SMI is not modelled; fixed/lowest/ExtINT done above */
    }
}

int lapic_priority(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    int p = (int)apr(l);
    pthread_mutex_unlock(&l->lock);
    return p;
}

int lapic_ack(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    if (extint_pending(l)) {
        /* ExtINT bypasses IRR and priorities: the PIC supplies the vector */
        l->extint_msg = false;
        int (*ack)(void *) = l->extint_ack;
        void *opaque = l->extint_opaque;
        pthread_mutex_unlock(&l->lock);
        int vec = ack ? ack(opaque) : -1;
        pthread_mutex_lock(&l->lock);
        update_line(l);
        pthread_mutex_unlock(&l->lock);
        return vec >= 0 && vec <= 255 ? vec : -1;
    }
    int vec = deliverable(l);
    if (vec >= 0) {
        clr_vec(l->irr, (unsigned)vec);
        set_vec(l->isr, (unsigned)vec);
    }
    update_line(l);
    pthread_mutex_unlock(&l->lock);
    return vec;
}

void lapic_set_lint(void *dev, int pin, int level)
{
    struct lapic *l = dev;
    if (pin < 0 || pin > 1) return;
    bool nmi = false;
    pthread_mutex_lock(&l->lock);
    bool rising = !l->lint[pin] && level;
    l->lint[pin] = level != 0;
    uint32_t lvt = l->lvt[LVT_LINT0 + pin];
    if (!hw_enabled(l)) {
        nmi = pin == 1 && rising; /* no APIC: LINT1 is the NMI pin */
    } else if (!(lvt & LVT_MASKED) && rising) {
        /* ExtINT is level-sensitive and evaluated by extint_pending(); fixed is
         * taken on the rising edge (a level LINT fixed interrupt would need a
         * remote IRR no OS relies on) */
        if (LVT_DM(lvt) == APIC_DM_FIXED)
            set_irr(l, lvt & 0xff, false);
        else if (LVT_DM(lvt) == APIC_DM_NMI)
            nmi = true;
    }
    update_line(l);
    pthread_mutex_unlock(&l->lock);
    if (nmi && l->v) vcpu_post(l->v, VCPU_REQ_NMI);
}
