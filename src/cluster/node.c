#define _GNU_SOURCE /* pthread_setname_np */
/* node.c — a process's part in the cluster (see node.h). */
#include "cluster/node.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "cluster/doorbell.h"
#include "cluster/transport.h"
#include "cpu/emu/emu_api.h"
#include "memory/guest_mem.h"
#include "util/util.h"

#define IO_SLOTS         256
#define TIME_SAMPLES     16
#define TIME_RECHECK_NS  (5ull * 1000000000ull)
#define STOP_ACK_WAIT_MS 2000

enum slot_state { SLOT_FREE, SLOT_WAITING, SLOT_DONE, SLOT_FAILED };

struct io_slot {
    _Atomic uint32_t state;
    uint64_t data;
    int dst;
};

#define IO_POSTED (1u << 2) /* IO_REQ arg0: a write that wants no IO_REPLY */

struct io_job {
    int from;
    bool posted; /* a write nobody waits for: no IO_REPLY */
    uint32_t slot;
    struct cpu_io io;
    struct io_job *next;
};

struct node {
    struct cluster_config cfg;
    int self;
    struct node_machine mach;
    struct transport *_Atomic t;
    bool realtime;              /* the transport thread runs at real-time priority */
    uint64_t halt_poll_ns;      /* UNUM_HALT_POLL_US */
    _Atomic int halt_pollers;   /* halted vCPUs serving the network (at most one) */
    _Atomic uint64_t idle_mask; /* halted vCPUs asleep, by index in idle[] */
    struct vcpu *_Atomic idle[64];
    _Atomic uint64_t halt_polled;  /* messages those served */
    _Atomic bool halt_poll_useful; /* the last halt polling served something */
    _Atomic uint64_t run_polled;   /* messages running vCPUs served (node_vcpu_poll) */
    uint32_t bell_looks_per_poll;  /* node_vcpu_poll_wanted: 0 = always poll */
    _Atomic uint64_t bell_seen;    /* the bell's count at the last poll */
    struct dsm *dsm;
    struct guest_mem *mem;

    pthread_mutex_t lock; /* start/stop state, time samples, slot allocation */
    pthread_cond_t cond;
    bool started;
    bool stop_done; /* the machine has been told (node_wait_stopped) */
    int ready;      /* platform: nodes that finished joining */
    _Atomic bool stopping;
    bool stop_initiator;
    int stop_acks;
    uint64_t lost_mask; /* peers known gone */

    struct io_slot slots[IO_SLOTS];
    int free_hint;

    /* platform: forwarded accesses run on a worker, never on the progress thread
     * (a device may touch guest memory, which may need the progress thread) */
    pthread_t io_thread;
    bool io_running;
    struct io_job *jobs, **jobs_tail;
    pthread_cond_t jobs_cond;

    /* time */
    _Atomic bool pong_ready;
    uint64_t pong_t0, pong_t1, pong_remote, pong_hz;
    struct node_time time;
    uint64_t last_check_ns;
    uint64_t recheck_t0;

    _Atomic uint64_t bad_messages;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    struct timespec rel = {0, 100 * 1000 * 1000};
    syscall(SYS_futex, addr, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, val, &rel, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

static __thread bool tls_polling;    /* this thread serves the network (serve) */
#define NODE_IO_WAIT_NS (200 * 1000) /* a forwarded access polls this long, then sleeps */
static void wake_idle_poller(struct node *n);

static struct transport *transport_of(struct node *n)
{
    struct transport *t;
    /* a handler may run before transport_start returned to node_create */
    while (!(t = atomic_load(&n->t)))
        sched_yield();
    return t;
}

static int send_msg(struct node *n, int dst, int type, uint64_t a0, uint64_t a1, uint64_t a2,
                    const void *payload, uint32_t len)
{
    uint64_t arg[3] = {a0, a1, a2};
    return transport_send(transport_of(n), dst, type, arg, payload, len);
}

static void send_all(struct node *n, int type, uint64_t a0, uint64_t a1, uint64_t a2,
                     const void *payload, uint32_t len)
{
    for (int i = 0; i < n->cfg.nnodes; i++)
        if (i != n->self && !(n->lost_mask & (1ull << i)))
            send_msg(n, i, type, a0, a1, a2, payload, len);
}

int node_self(const struct node *n)
{
    return n->self;
}
bool node_is_platform(const struct node *n)
{
    return n->self == n->cfg.platform;
}
const struct cluster_config *node_config(const struct node *n)
{
    return &n->cfg;
}
struct dsm *node_dsm(struct node *n)
{
    return n->dsm;
}
bool node_stopping(const struct node *n)
{
    return atomic_load(&n->stopping);
}

/* ---- failing and stopping ---- */

static void fail_waiters(struct node *n)
{
    for (int i = 0; i < IO_SLOTS; i++) {
        uint32_t want = SLOT_WAITING;
        if (atomic_compare_exchange_strong(&n->slots[i].state, &want, SLOT_FAILED))
            futex_wake(&n->slots[i].state);
    }
    if (n->dsm) dsm_shutdown(n->dsm);
}

/* Marks the VM stopping; true for the caller that did it first, which must
 * call finish_stop once the machine knows its status. */
static bool begin_stop(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    bool first = !atomic_exchange(&n->stopping, true);
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
    return first;
}

static void finish_stop(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    n->stop_done = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void abort_vm(struct node *n, int lost, const char *why, bool tell_others)
{
    if (!begin_stop(n)) return;
    if (tell_others) send_all(n, WIRE_ABORT, (uint64_t)lost, 0, 0, why, (uint32_t)strlen(why));
    fail_waiters(n);
    n->mach.stop(n->mach.ctx, NODE_EXIT_PEER_LOST);
    finish_stop(n);
}

static void on_peer_lost(void *ctx, int node, const char *why)
{
    struct node *n = ctx;
    pthread_mutex_lock(&n->lock);
    n->lost_mask |= 1ull << node;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
    if (atomic_load(&n->stopping)) return; /* peers leave after a stop: expected */
    const struct cluster_node *p = &n->cfg.node[node];
    fprintf(stderr, "unum: node %d (%s:%u) %s; stopping the VM\n", node, p->host, p->port, why);
    char reason[160];
    snprintf(reason, sizeof(reason), "node %d (%s:%u) %s", node, p->host, p->port, why);
    abort_vm(n, node, reason, true);
}

void node_stop_all(struct node *n, int status)
{
    if (!begin_stop(n)) return;
    pthread_mutex_lock(&n->lock);
    n->stop_initiator = true;
    pthread_mutex_unlock(&n->lock);
    send_all(n, WIRE_STOP, (uint64_t)status, 0, 0, NULL, 0);
    fail_waiters(n);
    finish_stop(n); /* the caller stopped its machine before calling */
}

/* ---- forwarded exits ---- */

static int slot_alloc(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    for (;;) {
        for (int k = 0; k < IO_SLOTS; k++) {
            int i = (n->free_hint + k) % IO_SLOTS;
            if (atomic_load(&n->slots[i].state) == SLOT_FREE) {
                atomic_store(&n->slots[i].state, SLOT_WAITING);
                n->free_hint = i + 1;
                pthread_mutex_unlock(&n->lock);
                return i;
            }
        }
        if (atomic_load(&n->stopping)) break;
        pthread_mutex_unlock(&n->lock);
        sched_yield();
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return -1;
}

static uint64_t serve(struct node *n, bool (*done)(void *), void *arg, uint64_t window_ns,
                      bool extend);

static bool io_answered(void *slot)
{
    return atomic_load(&((struct io_slot *)slot)->state) != SLOT_WAITING;
}

void node_forward_io(void *vn, int dst, struct cpu_io *io)
{
    struct node *n = vn;
    uint64_t mask = io->size >= 8 ? ~0ull : (1ull << (8 * io->size)) - 1;
    if (io->write) {
        /* Posted, as x86 port and MMIO writes are: nothing comes back, and the
         * vCPU goes on at once. The implementer runs this node's accesses in
         * the order sent (one connection, one I/O worker), so a later read
         * still sees every earlier write; a console byte costs one message
         * instead of a round trip. */
        uint64_t a0 = (uint64_t)io->kind | 1u << 1 | IO_POSTED | (uint64_t)io->size << 8;
        if (!atomic_load(&n->stopping))
            send_msg(n, dst, WIRE_IO_REQ, a0, io->addr, io->data & mask, NULL, 0);
        return;
    }
    int i = atomic_load(&n->stopping) ? -1 : slot_alloc(n);
    if (i < 0) {
        io->data = mask;
        return;
    }
    struct io_slot *s = &n->slots[i];
    s->dst = dst;
    uint64_t a0 = (uint64_t)io->kind | (uint64_t)io->size << 8 | (uint64_t)i << 16;
    if (send_msg(n, dst, WIRE_IO_REQ, a0, io->addr, 0, NULL, 0) < 0) {
        uint32_t want = SLOT_WAITING;
        atomic_compare_exchange_strong(&s->state, &want, SLOT_FAILED);
    }
    /* Out of the guest while it waits, as a faulting vCPU is: a handler run
     * here, or the device's own access to guest memory, may revoke a page this
     * vCPU holds, and the shoot-down must not wait for this very thread.
     * Serving the network meanwhile handles the answer here, without a
     * sleep/wake round trip. */
    guest_mem_thread_leave();
    serve(n, io_answered, s, NODE_IO_WAIT_NS, false);
    uint32_t st;
    while ((st = atomic_load(&s->state)) == SLOT_WAITING)
        futex_wait(&s->state, SLOT_WAITING);
    guest_mem_thread_enter();
    io->data = st == SLOT_DONE ? s->data & mask : mask;
    atomic_store(&s->state, SLOT_FREE);
}

static void io_reply(struct node *n, int src, const struct wire_hdr *h)
{
    uint64_t i = h->arg[0];
    if (i >= IO_SLOTS || n->slots[i].dst != src) {
        atomic_fetch_add(&n->bad_messages, 1);
        return;
    }
    struct io_slot *s = &n->slots[i];
    s->data = h->arg[1];
    uint32_t want = SLOT_WAITING;
    if (atomic_compare_exchange_strong(&s->state, &want, SLOT_DONE))
        futex_wake(&s->state);
    else
        atomic_fetch_add(&n->bad_messages, 1);
}

static void *io_worker(void *arg)
{
    struct node *n = arg;
    pthread_mutex_lock(&n->lock);
    for (;;) {
        while (!n->jobs && n->io_running)
            pthread_cond_wait(&n->jobs_cond, &n->lock);
        if (!n->jobs) break;
        struct io_job *j = n->jobs;
        n->jobs = j->next;
        if (!n->jobs) n->jobs_tail = &n->jobs;
        pthread_mutex_unlock(&n->lock);
        if (!atomic_load(&n->stopping)) n->mach.io(n->mach.ctx, j->from, &j->io);
        if (!j->posted) send_msg(n, j->from, WIRE_IO_REPLY, j->slot, j->io.data, 0, NULL, 0);
        free(j);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

static void io_request(struct node *n, int src, const struct wire_hdr *h)
{
    uint64_t a0 = h->arg[0];
    int kind = a0 & 1, size = (a0 >> 8) & 0xff;
    bool posted = a0 & IO_POSTED;
    if ((a0 & 0xf8) || (posted && !(a0 & 2)) ||
        (size != 1 && size != 2 && size != 4 && size != 8) || !n->mach.io ||
        (kind == CPU_IO_PIO && h->arg[1] > 0xffff)) {
        atomic_fetch_add(&n->bad_messages, 1);
        return;
    }
    struct io_job *j = calloc(1, sizeof(*j));
    if (!j) return;
    j->from = src;
    j->posted = posted;
    j->slot = (uint32_t)(a0 >> 16);
    j->io = (struct cpu_io){.kind = kind ? CPU_IO_MMIO : CPU_IO_PIO,
                            .write = (a0 >> 1) & 1,
                            .size = (uint8_t)size,
                            .addr = h->arg[1],
                            .data = h->arg[2]};
    pthread_mutex_lock(&n->lock);
    *n->jobs_tail = j;
    n->jobs_tail = &j->next;
    pthread_cond_signal(&n->jobs_cond);
    pthread_mutex_unlock(&n->lock);
}

/* ---- interrupts ---- */

void node_send_apic(struct node *n, int dst, const struct apic_msg *m, uint64_t mask)
{
    uint64_t a0 = (uint64_t)m->vector | (uint64_t)(m->delivery & 7) << 8 |
                  (uint64_t)(m->shorthand & 3) << 11 | (uint64_t)m->logical << 13 |
                  (uint64_t)m->level << 14 | (uint64_t)m->assert << 15 |
                  (uint64_t)(uint16_t)m->src << 16 | (uint64_t)m->dest << 32;
    send_msg(n, dst, WIRE_APIC_MSG, a0, mask, 0, NULL, 0);
}

static void apic_msg_in(struct node *n, const struct wire_hdr *h)
{
    uint64_t a0 = h->arg[0];
    struct apic_msg m = {.vector = (uint8_t)a0,
                         .delivery = (a0 >> 8) & 7,
                         .shorthand = (a0 >> 11) & 3,
                         .logical = (a0 >> 13) & 1,
                         .level = (a0 >> 14) & 1,
                         .assert = (a0 >> 15) & 1,
                         .src = (int16_t)(a0 >> 16),
                         .dest = (uint32_t)(a0 >> 32)};
    if (n->mach.apic) n->mach.apic(n->mach.ctx, &m, h->arg[1]);
}

void node_send_eoi(struct node *n, uint8_t vector)
{
    send_msg(n, n->cfg.platform, WIRE_APIC_EOI, vector, 0, 0, NULL, 0);
}

void node_send_apic_logical(struct node *n, int vcpu, uint32_t ldr, uint32_t dfr)
{
    send_all(n, WIRE_APIC_LOGICAL, (uint64_t)vcpu, ldr, dfr, NULL, 0);
}

/* ---- time ---- */

static void time_ping(struct node *n, bool recheck)
{
    uint64_t t0 = emu_host_clock();
    atomic_store(&n->pong_ready, false);
    send_msg(n, n->cfg.platform, WIRE_TIME_PING, t0, recheck, 0, NULL, 0);
}

/* A re-check measures the offset between this node's clock (with its offset
 * applied) and the platform's: ideally zero, within half the round trip. */
static void time_recheck_done(struct node *n, uint64_t t0, uint64_t t1, uint64_t remote)
{
    double hz = (double)emu_tsc_hz();
    double mid = (double)t0 / 2 + (double)t1 / 2;
    double skew_ns = ((double)remote - mid) / hz * 1e9;
    double bound_ns = (double)(t1 - t0) / 2 / hz * 1e9;
    pthread_mutex_lock(&n->lock);
    n->time.checks++;
    double excess = (skew_ns < 0 ? -skew_ns : skew_ns) - bound_ns;
    if (excess > n->time.max_skew_ns) n->time.max_skew_ns = excess;
    n->time.last_bound_ns = bound_ns;
    pthread_mutex_unlock(&n->lock);
}

static void time_pong(struct node *n, const struct wire_hdr *h)
{
    uint64_t t1 = emu_host_clock();
    if (h->arg[2] >> 63) { /* a re-check */
        time_recheck_done(n, h->arg[0], t1, h->arg[1]);
        return;
    }
    pthread_mutex_lock(&n->lock);
    n->pong_t0 = h->arg[0];
    n->pong_t1 = t1;
    n->pong_remote = h->arg[1];
    n->pong_hz = h->arg[2];
    atomic_store(&n->pong_ready, true);
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

/* Cristian's algorithm against the platform node: the sample with the shortest
 * round trip bounds the offset best. Nodes on one host share the TSC, and the
 * measured offset is then below the uncertainty: none is applied. */
static int time_sync(struct node *n, char *err, size_t errlen)
{
    uint64_t best_rtt = UINT64_MAX;
    int64_t best_off = 0;
    for (int i = 0; i < TIME_SAMPLES; i++) {
        time_ping(n, false);
        pthread_mutex_lock(&n->lock);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 2;
        while (!atomic_load(&n->pong_ready) && !atomic_load(&n->stopping))
            if (pthread_cond_timedwait(&n->cond, &n->lock, &dl) == ETIMEDOUT) break;
        bool ok = atomic_load(&n->pong_ready);
        uint64_t t0 = n->pong_t0, t1 = n->pong_t1, remote = n->pong_remote, hz = n->pong_hz;
        pthread_mutex_unlock(&n->lock);
        if (!ok) {
            snprintf(err, errlen, "the platform node %d does not answer time requests",
                     n->cfg.platform);
            return -1;
        }
        uint64_t mine = emu_tsc_hz();
        if (hz * 1000 < mine * 999 || hz * 1000 > mine * 1001) {
            snprintf(err, errlen,
                     "the platform node's TSC runs at %.1f MHz, this node's at %.1f MHz: "
                     "nodes of a cluster need the same TSC rate",
                     hz / 1e6, mine / 1e6);
            return -1;
        }
        if (t1 - t0 < best_rtt) {
            best_rtt = t1 - t0;
            best_off = (int64_t)(remote - (t0 / 2 + t1 / 2));
        }
    }
    int64_t mag = best_off < 0 ? -best_off : best_off;
    if ((uint64_t)mag <= best_rtt / 2) best_off = 0;
    emu_set_clock_offset(best_off);
    n->time.offset_cycles = best_off;
    n->time.rtt_ns = (uint64_t)((double)best_rtt / (double)emu_tsc_hz() * 1e9);
    n->last_check_ns = clock_ns();
    return 0;
}

static void on_tick(void *ctx)
{
    struct node *n = ctx;
    if (node_is_platform(n) || atomic_load(&n->stopping) || !atomic_load(&n->t)) return;
    uint64_t t = clock_ns();
    if (t - n->last_check_ns < TIME_RECHECK_NS) return;
    n->last_check_ns = t;
    send_msg(n, n->cfg.platform, WIRE_TIME_PING, emu_host_clock(), 1, 0, NULL, 0);
}

void node_get_time(struct node *n, struct node_time *t)
{
    pthread_mutex_lock(&n->lock);
    *t = n->time;
    pthread_mutex_unlock(&n->lock);
}

/* ---- the DSM's network ---- */

static int dsm_send(void *ctx, int dst, const struct dsm_msg *m, const void *page)
{
    struct node *n = ctx;
    return send_msg(n, dst, WIRE_DSM_REQ + m->type, m->gpa, m->right | (uint64_t)m->has_data << 8,
                    0, page, page ? GUEST_PAGE_SIZE : 0);
}

static void dsm_in(struct node *n, int src, const struct wire_hdr *h, const void *payload)
{
    bool has_data = (h->arg[1] >> 8) & 1;
    if ((h->arg[1] & ~0x1ffull) || (has_data ? h->len != GUEST_PAGE_SIZE : h->len != 0)) {
        atomic_fetch_add(&n->bad_messages, 1);
        return;
    }
    struct dsm_msg m = {.type = (uint8_t)(h->type - WIRE_DSM_REQ),
                        .right = (uint8_t)(h->arg[1] & 0xff),
                        .has_data = has_data,
                        .gpa = h->arg[0]};
    dsm_receive(n->dsm, src, &m, has_data ? payload : NULL);
}

/* ---- receiving ---- */

static void on_recv(void *ctx, const struct wire_hdr *h, const void *payload)
{
    struct node *n = ctx;
    int src = h->src;
    static int debug = -1; /* UNUM_DEBUG_WIRE: trace every message (read once) */
    if (debug < 0) debug = getenv("UNUM_DEBUG_WIRE") != NULL;
    if (debug)
        fprintf(stderr, "node %d <- %d %s %llx %llx %llx len %u\n", n->self, src,
                wire_type_name(h->type), (unsigned long long)h->arg[0],
                (unsigned long long)h->arg[1], (unsigned long long)h->arg[2], h->len);
    if (src < 0 || src >= n->cfg.nnodes) {
        atomic_fetch_add(&n->bad_messages, 1);
        return;
    }
    if (!tls_polling && src != n->self) wake_idle_poller(n);
    switch (h->type) {
    case WIRE_DSM_REQ ... WIRE_DSM_RESUME: dsm_in(n, src, h, payload); break;
    case WIRE_IO_REQ: io_request(n, src, h); break;
    case WIRE_IO_REPLY: io_reply(n, src, h); break;
    case WIRE_APIC_MSG: apic_msg_in(n, h); break;
    case WIRE_APIC_EOI:
        if (node_is_platform(n) && n->mach.eoi) n->mach.eoi(n->mach.ctx, (uint8_t)h->arg[0]);
        break;
    case WIRE_APIC_LOGICAL:
        if (h->arg[0] < 64 && n->mach.apic_logical)
            n->mach.apic_logical(n->mach.ctx, (int)h->arg[0], (uint32_t)h->arg[1],
                                 (uint32_t)h->arg[2]);
        break;
    case WIRE_TIME_PING:
        send_msg(n, src, WIRE_TIME_PONG, h->arg[0], emu_host_clock(),
                 emu_tsc_hz() | (h->arg[1] ? 1ull << 63 : 0), NULL, 0);
        break;
    case WIRE_TIME_PONG: time_pong(n, h); break;
    case WIRE_START:
        if (h->arg[0] == 1) { /* a node finished joining (to the platform node) */
            pthread_mutex_lock(&n->lock);
            n->ready++;
            pthread_cond_broadcast(&n->cond);
            pthread_mutex_unlock(&n->lock);
            break;
        }
        if (src != n->cfg.platform) break;
        if (n->mach.start) n->mach.start(n->mach.ctx, payload, h->len);
        pthread_mutex_lock(&n->lock);
        n->started = true;
        pthread_cond_broadcast(&n->cond);
        pthread_mutex_unlock(&n->lock);
        break;
    case WIRE_STOP:
        if (h->arg[1]) { /* an acknowledgement */
            pthread_mutex_lock(&n->lock);
            n->stop_acks++;
            pthread_cond_broadcast(&n->cond);
            pthread_mutex_unlock(&n->lock);
            break;
        }
        send_msg(n, src, WIRE_STOP, h->arg[0], 1, 0, NULL, 0);
        if (begin_stop(n)) {
            fail_waiters(n);
            n->mach.stop(n->mach.ctx, (int)(h->arg[0] & 0xff));
            finish_stop(n);
        }
        break;
    case WIRE_ABORT: {
        char why[200];
        uint32_t len = h->len < sizeof(why) - 1 ? h->len : sizeof(why) - 1;
        memcpy(why, payload, len);
        why[len] = 0;
        for (uint32_t i = 0; i < len; i++)
            if (why[i] < 32 || why[i] > 126) why[i] = '?';
        if (!atomic_load(&n->stopping))
            fprintf(stderr, "unum: node %d reports: %s; stopping the VM\n", src, why);
        abort_vm(n, (int)h->arg[0], why, false);
        break;
    }
    default: atomic_fetch_add(&n->bad_messages, 1); break;
    }
}

/* Handlers a waiting vCPU may run (transport_poll): they only take short
 * locks that a vCPU never holds while it waits for a page or sits in HLT. */
static bool any_thread(void *ctx, int type)
{
    switch (type) {
    case WIRE_DSM_REQ ... WIRE_DSM_RESUME:
    case WIRE_IO_REQ:
    case WIRE_IO_REPLY:
    case WIRE_APIC_MSG:
    case WIRE_APIC_EOI:
    case WIRE_APIC_LOGICAL: return true;
    default: return false;
    }
}

/* Serves the network from this thread (transport_poll) until done(arg), the VM
 * stops, or window_ns passed (with extend: since the last event). Returns the
 * number of events served. */
static uint64_t serve(struct node *n, bool (*done)(void *), void *arg, uint64_t window_ns,
                      bool extend)
{
    struct transport *t = atomic_load(&n->t);
    if (!t) return 0;
    /* A halted vCPU polls long and then sleeps; a faulting one comes back soon,
     * so it keeps the worker to itself across faults (lingering): what other
     * nodes ask meanwhile is served by the next fault's wait or by this
     * node's running vCPUs between blocks (node_vcpu_poll). */
    bool takeover = extend || transport_lingers(t);
    if (takeover) transport_poll_begin(t, !extend);
    tls_polling = true;
    uint64_t total = 0, until = clock_ns() + window_ns;
    while (!done(arg) && !atomic_load_explicit(&n->stopping, memory_order_relaxed)) {
        int k = transport_poll(t);
        uint64_t now = clock_ns();
        if (k > 0) {
            total += (uint64_t)k;
            if (extend) until = now + window_ns;
        } else if (now >= until) {
            break;
        } else {
            sched_yield(); /* any other thread of this core goes first */
        }
    }
    tls_polling = false;
    /* a faulting vCPU that got its page comes back soon; one that gave up
     * waiting goes to sleep and wants the progress thread woken, even when
     * running vCPUs left the worker lingering */
    bool got = done(arg);
    if (takeover) transport_poll_end(t, !extend, !extend && got);
    if (!got) transport_linger_cancel(t);
    return total;
}

/* Every NODE_VCPU_BELL_INSNS instructions: whether the bell rang since the last
 * poll, or it is time for the poll every NODE_VCPU_POLL_INSNS anyway (for peers
 * without bells, and sends the bell rang for before they landed). */
static __thread uint32_t tls_bell_looks;

bool node_vcpu_poll_wanted(struct node *n)
{
    if (!n->bell_looks_per_poll) return true;
    if (doorbell_read(n->self) != atomic_load_explicit(&n->bell_seen, memory_order_relaxed))
        return true;
    if (++tls_bell_looks < n->bell_looks_per_poll) return false;
    tls_bell_looks = 0;
    return true;
}

void node_vcpu_poll(struct node *n)
{
    /* read before polling: a ring during the poll makes the next look poll again */
    if (n->bell_looks_per_poll)
        atomic_store_explicit(&n->bell_seen, doorbell_read(n->self), memory_order_relaxed);
    tls_bell_looks = 0;
    struct transport *t = atomic_load(&n->t);
    if (!t || !transport_lingers(t)) return;
    /* Polled every few thousand instructions, the worker never needs arming
     * while this vCPU runs: the linger outlasts the gap, and when the vCPU
     * stops running (halts, waits) it ends the linger itself. */
    transport_poll_begin(t, true);
    tls_polling = true;
    int k = transport_poll(t);
    tls_polling = false;
    transport_poll_end(t, true, true);
    if (k > 0) atomic_fetch_add_explicit(&n->run_polled, (uint64_t)k, memory_order_relaxed);
}

static uint32_t env_insns(const char *name, uint32_t dflt)
{
    const char *e = getenv(name);
    unsigned long long k = e && *e ? strtoull(e, NULL, 10) : dflt;
    return k > UINT32_MAX ? UINT32_MAX : (uint32_t)k;
}

/* The vCPU's interval (a look at the bell, or a poll without bells) and the
 * looks that make one poll interval (0: every one polls). */
static uint32_t vcpu_intervals(uint32_t *looks_per_poll)
{
    uint32_t poll = env_insns("UNUM_VCPU_POLL_INSNS", NODE_VCPU_POLL_INSNS);
    uint32_t bell = env_insns("UNUM_VCPU_BELL_INSNS", NODE_VCPU_BELL_INSNS);
    bool look = doorbell_available() && bell && bell < poll;
    *looks_per_poll = look ? poll / bell : 0;
    return look ? bell : poll;
}

uint32_t node_vcpu_poll_insns(void)
{
    uint32_t looks;
    return vcpu_intervals(&looks);
}

/* dsm_net.run_as_handler: a fault on a page homed here runs the home side on
 * the faulting thread (without a transport yet, no handler can run anyway). */
static void dsm_run_as_handler(void *ctx, void (*fn)(void *), void *arg)
{
    struct node *n = ctx;
    struct transport *t = atomic_load(&n->t);
    if (t)
        transport_run_as_handler(t, fn, arg);
    else
        fn(arg);
}

/* dsm_net.wait: a vCPU waiting for a page serves the network meanwhile, so the
 * answer is handled here without a wake-up of the progress thread. */
static void dsm_wait(void *ctx, bool (*done)(void *), void *arg, uint64_t window_ns)
{
    serve(ctx, done, arg, window_ns, false);
}

static bool halt_woken(void *v)
{
    return vcpu_halt_woken(v);
}

/* Serves the network while messages keep coming; true when the vCPU should wake. */
/* Polls while messages keep coming. Right after a halt it polls only when the
 * last polling served something: an idle guest's vCPU halts after every timer
 * tick, and a fruitless window per tick cost the node a few % of a core. Sent
 * back to polling by traffic (VCPU_REQ_POLL), it always polls. */
static bool halt_poll(struct node *n, struct vcpu *v, bool requested)
{
    int none = 0;
    if (!n->halt_poll_ns || (!requested && !atomic_load(&n->halt_poll_useful)) ||
        !atomic_compare_exchange_strong(&n->halt_pollers, &none, 1))
        return false;
    uint64_t k = serve(n, halt_woken, v, n->halt_poll_ns, true);
    atomic_fetch_add_explicit(&n->halt_polled, k, memory_order_relaxed);
    atomic_store(&n->halt_poll_useful, k > 0);
    atomic_store(&n->halt_pollers, 0);
    return vcpu_halt_woken(v);
}

void node_vcpu_halted(struct node *n, struct vcpu *v)
{
    int slot = v->id & 63;
    atomic_store(&n->idle[slot], v);
    for (bool requested = false; !halt_poll(n, v, requested); requested = true) {
        struct transport *t = atomic_load(&n->t);
        if (t) transport_linger_cancel(t); /* asleep: arrivals must wake the progress thread */
        atomic_fetch_or(&n->idle_mask, 1ull << slot);
        vcpu_halt_wait(v, 0);
        atomic_fetch_and(&n->idle_mask, ~(1ull << slot));
        if (vcpu_halt_woken(v) || atomic_load(&n->stopping)) break;
    }
}

/* A message came to the progress thread while no halted vCPU polls: traffic
 * that may go on, so one asleep starts polling (the next message is then
 * served without a wake-up on the way). */
static void wake_idle_poller(struct node *n)
{
    if (!n->halt_poll_ns || atomic_load_explicit(&n->halt_pollers, memory_order_relaxed)) return;
    uint64_t m = atomic_load_explicit(&n->idle_mask, memory_order_relaxed);
    if (!m) return;
    int slot = __builtin_ctzll(m);
    if (!(atomic_fetch_and(&n->idle_mask, ~(1ull << slot)) & (1ull << slot))) return;
    struct vcpu *v = atomic_load(&n->idle[slot]);
    if (v) vcpu_post(v, VCPU_REQ_POLL);
}

/* ---- life cycle ---- */

int node_start_all(struct node *n, const void *info, uint32_t len)
{
    if (len > WIRE_MAX_PAYLOAD) return -EMSGSIZE;
    /* every node has agreed on time before any vCPU runs */
    pthread_mutex_lock(&n->lock);
    while (n->ready < n->cfg.nnodes - 1 && !atomic_load(&n->stopping))
        pthread_cond_wait(&n->cond, &n->lock);
    pthread_mutex_unlock(&n->lock);
    if (atomic_load(&n->stopping)) return -ECANCELED;
    send_all(n, WIRE_START, 0, 0, 0, info, len);
    return 0;
}

bool node_wait_start(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    while (!n->started && !atomic_load(&n->stopping))
        pthread_cond_wait(&n->cond, &n->lock);
    bool ok = n->started && !atomic_load(&n->stopping);
    pthread_mutex_unlock(&n->lock);
    return ok;
}

void node_wait_stopped(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    while (!n->stop_done)
        pthread_cond_wait(&n->cond, &n->lock);
    pthread_mutex_unlock(&n->lock);
}

struct node *node_create(const struct cluster_config *cfg, int self, struct guest_mem *mem,
                         dsm_home_fn home, void *home_ctx, const struct node_machine *mach,
                         char *err, size_t errlen)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->cfg = *cfg;
    n->self = self;
    n->mach = *mach;
    n->mem = mem;
    n->jobs_tail = &n->jobs;
    atomic_init(&n->halt_poll_useful, true);
    const char *hp = getenv("UNUM_HALT_POLL_US");
    n->halt_poll_ns = (hp && *hp ? strtoull(hp, NULL, 10) : NODE_HALT_POLL_US) * 1000;
    vcpu_intervals(&n->bell_looks_per_poll);
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->cond, NULL);
    pthread_cond_init(&n->jobs_cond, NULL);
    struct dsm_net net = {
        .send = dsm_send, .wait = dsm_wait, .run_as_handler = dsm_run_as_handler, .ctx = n};
    n->dsm = dsm_create(mem, self, cfg->nnodes, home, home_ctx, &net);
    if (!n->dsm) {
        snprintf(err, errlen, "cannot set up the distributed shared memory");
        free(n);
        return NULL;
    }
    n->io_running = true;
    pthread_create(&n->io_thread, NULL, io_worker, n);
    pthread_setname_np(n->io_thread, "io-worker");
    struct transport_handlers h = {.recv = on_recv,
                                   .peer_lost = on_peer_lost,
                                   .tick = on_tick,
                                   .any_thread = any_thread,
                                   .ctx = n};
    struct transport *t = NULL;
    if (transport_start(&t, cfg, self, &h, err, errlen) < 0) {
        node_destroy(n);
        return NULL;
    }
    atomic_store(&n->t, t);
    n->realtime = transport_set_realtime(t);
    if (!node_is_platform(n)) {
        if (time_sync(n, err, errlen) < 0) {
            node_destroy(n);
            return NULL;
        }
        send_msg(n, cfg->platform, WIRE_START, 1, 0, 0, NULL, 0);
    }
    return n;
}

void node_destroy(struct node *n)
{
    if (!n) return;
    struct transport *t = atomic_load(&n->t);
    if (t) {
        /* the peers acknowledge a stop we sent before we leave (bounded) */
        pthread_mutex_lock(&n->lock);
        if (n->stop_initiator) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += STOP_ACK_WAIT_MS / 1000;
            for (;;) {
                int live = 0;
                for (int i = 0; i < n->cfg.nnodes; i++)
                    if (i != n->self && !(n->lost_mask & (1ull << i))) live++;
                if (n->stop_acks >= live) break;
                if (pthread_cond_timedwait(&n->cond, &n->lock, &dl) == ETIMEDOUT) break;
            }
        }
        atomic_store(&n->stopping, true);
        pthread_mutex_unlock(&n->lock);
        transport_stop(t);
    }
    pthread_mutex_lock(&n->lock);
    n->io_running = false;
    pthread_cond_broadcast(&n->jobs_cond);
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->io_thread, NULL);
    while (n->jobs) {
        struct io_job *j = n->jobs;
        n->jobs = j->next;
        free(j);
    }
    dsm_destroy(n->dsm);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->cond);
    pthread_cond_destroy(&n->jobs_cond);
    free(n);
}

/* Built in memory and written at once: the nodes of a local cluster share stderr. */
static void node_print_stats_to(struct node *n, FILE *f);

void node_print_stats(struct node *n, FILE *out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        node_print_stats_to(n, out);
        return;
    }
    node_print_stats_to(n, f);
    fclose(f);
    fflush(out);
    write_all(fileno(out), buf, len);
    free(buf);
}

static void node_print_stats_to(struct node *n, FILE *f)
{
    dsm_print_stats(n->dsm, f, 5);
    struct transport *t = atomic_load(&n->t);
    fprintf(f, "node %d: transport thread at %s priority\n", n->self,
            n->realtime ? "real-time (SCHED_FIFO)"
                        : "normal (SCHED_FIFO not permitted, or UNUM_TRANSPORT_RT=0)");
    uint64_t by_thread, by_pollers;
    transport_handled(t, &by_thread, &by_pollers);
    fprintf(f,
            "node %d: messages handled by the transport thread %llu, by vCPUs %llu "
            "(halted vCPUs served %llu events, running vCPUs %llu)\n",
            n->self, (unsigned long long)by_thread, (unsigned long long)by_pollers,
            (unsigned long long)atomic_load(&n->halt_polled),
            (unsigned long long)atomic_load(&n->run_polled));
    fprintf(f,
            "node %d: transport thread sleeps %llu; worker progressed by the heartbeat thread "
            "%llu times (nothing else had for 50 ms)\n",
            n->self, (unsigned long long)transport_sleeps(t),
            (unsigned long long)transport_unstalls(t));
    for (int i = 0; t && i < n->cfg.nnodes; i++) {
        if (i == n->self) continue;
        struct transport_peer_stats s;
        transport_stats(t, i, &s);
        fprintf(f,
                "node %d -> node %d (%s): sent %llu msgs %llu KiB, received %llu msgs %llu KiB, "
                "rejected %llu\n",
                n->self, i, transport_describe(t, i), (unsigned long long)s.msgs_sent,
                (unsigned long long)s.bytes_sent / 1024, (unsigned long long)s.msgs_recv,
                (unsigned long long)s.bytes_recv / 1024, (unsigned long long)s.rejected);
    }
    struct node_time tm;
    node_get_time(n, &tm);
    if (!node_is_platform(n))
        fprintf(f,
                "node %d time: offset %lld cycles (join round trip %.1f us); %llu re-checks, "
                "largest skew beyond their uncertainty %.1f us (last uncertainty %.1f us)\n",
                n->self, (long long)tm.offset_cycles, tm.rtt_ns / 1000.0,
                (unsigned long long)tm.checks, tm.max_skew_ns / 1000.0, tm.last_bound_ns / 1000.0);
    if (atomic_load(&n->bad_messages))
        fprintf(f, "node %d: %llu malformed messages dropped\n", n->self,
                (unsigned long long)atomic_load(&n->bad_messages));
}
