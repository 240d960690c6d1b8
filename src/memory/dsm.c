/* dsm.c — the coherence protocol (see dsm.h for the model).
 *
 * State lives in three places:
 *  - the directory (dir[], meaningful for pages homed here), touched only by
 *    dsm_receive (one call at a time: the service thread, or a faulting thread
 *    serving the network), with the transaction of a busy page (txn) and the
 *    requests that wait for it (home_queue);
 *  - the pending table (pend[]), one entry per page this node asked for, shared
 *    by the faulting threads and the service thread under `lock`;
 *  - guest_mem rights, which every vCPU reads without locks.
 */
#include "memory/dsm.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

#define HASH_BUCKETS 1024
#define NO_OWNER     (-1)

struct dir_entry {
    uint64_t copyset; /* nodes holding a copy (SHARED) */
    int16_t owner;    /* exclusive owner, NO_OWNER when SHARED */
    int16_t grantee;  /* the node whose DONE the page waits for, else NO_OWNER */
    uint8_t busy;     /* a transaction is running */
};

/* A message held back: a request waiting for a busy page at home, or a
 * revocation waiting for this node's waiters of a page. */
struct held_msg {
    int src;
    struct dsm_msg m;
    struct held_msg *next;
};

struct txn {
    uint64_t page;
    int requester;
    uint8_t want;
    uint64_t inv_waiting; /* nodes whose INV_ACK is outstanding */
    bool need_data;       /* the requester holds no copy */
    struct txn *next;
};

struct pending {
    uint64_t page;
    bool granted;
    bool failed; /* the request could not be sent: its waiters fail */
    int waiters;
    struct held_msg *held; /* revocations to run once the waiters went */
    struct pending *next;
};

struct dsm {
    struct guest_mem *mem;
    int self, nnodes;
    dsm_home_fn home;
    void *home_ctx;
    struct dsm_net net;
    struct dir_entry *dir;
    _Atomic uint32_t *page_faults;

    /* dsm_receive only */
    struct txn *txn[HASH_BUCKETS];
    struct held_msg *home_queue, **home_queue_tail;

    /* shared */
    pthread_mutex_t lock;
    pthread_cond_t granted;
    struct pending *pend[HASH_BUCKETS];      /* asked for, not granted yet */
    struct pending *granted_p[HASH_BUCKETS]; /* granted, waiters still to run */
    struct held_msg *resume;                 /* revocations released by the last waiter */
    bool shut;
    uint64_t spin_ns;
    unsigned readahead;  /* pages asked for ahead of a sequential reader */
    unsigned writeahead; /* ... and of a sequential writer */
    FILE *trace;         /* UNUM_DSM_TRACE: one line per fault, for finding what bounces */
    pthread_mutex_t trace_lock;

    struct {
        _Atomic uint64_t read_faults, write_faults, remote_faults, invalidations, fetches,
            requests_served, pages_sent, pages_received, deferred, bad_messages, read_ahead,
            write_ahead;
        _Atomic uint64_t lat_hist[DSM_LAT_BUCKETS];
        _Atomic uint64_t lat_fine[DSM_LAT_FINE];
        _Atomic uint64_t lat_total_ns, lat_count;
    } st;
};

static unsigned bucket(uint64_t page)
{
    return (unsigned)((page * 0x9e3779b97f4a7c15ull) >> 54) & (HASH_BUCKETS - 1);
}

static uint8_t *page_host(struct dsm *d, uint64_t page)
{
    return guest_mem_host(d->mem, page << GUEST_PAGE_SHIFT);
}

static enum mem_right right_of(struct dsm *d, uint64_t page)
{
    return atomic_load_explicit(&d->mem->rights[page], memory_order_acquire);
}

static int send(struct dsm *d, int dst, int type, uint64_t page, int right, bool data)
{
    struct dsm_msg m = {
        .type = (uint8_t)type, .right = (uint8_t)right, .has_data = data, .gpa = page << 12};
    if (data) atomic_fetch_add(&d->st.pages_sent, 1);
    /* a failed send means a lost peer: the node layer stops the VM (a fault
     * whose request failed returns -EIO) */
    return d->net.send(d->net.ctx, dst, &m, data ? page_host(d, page) : NULL);
}

/* ---- pending requests of this node ---- */

static struct pending *pending_find(struct pending **table, uint64_t page)
{
    for (struct pending *p = table[bucket(page)]; p; p = p->next)
        if (p->page == page) return p;
    return NULL;
}

static void pending_remove(struct pending **table, struct pending *p)
{
    for (struct pending **pp = &table[bucket(p->page)]; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

/* Would lowering our right on `page` now take it from a vCPU that waited for it
 * and has not yet used it? Then the message is held until that vCPU ran. */
static bool hold_for_waiters(struct dsm *d, int src, const struct dsm_msg *m)
{
    uint64_t page = m->gpa >> GUEST_PAGE_SHIFT;
    bool held = false;
    pthread_mutex_lock(&d->lock);
    struct pending *p = pending_find(d->granted_p, page);
    if (p && p->waiters > 0 && !d->shut) {
        struct held_msg *h = malloc(sizeof(*h));
        if (h) {
            *h = (struct held_msg){.src = src, .m = *m};
            struct held_msg **pp = &p->held;
            while (*pp)
                pp = &(*pp)->next;
            *pp = h;
            held = true;
            atomic_fetch_add(&d->st.deferred, 1);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return held;
}

static bool pending_granted(void *p)
{
    return __atomic_load_n(&((struct pending *)p)->granted, __ATOMIC_ACQUIRE);
}

/* Fine bucket of a latency: exact below 8 ns, then 8 per octave. */
int dsm_latency_bucket(uint64_t ns)
{
    if (ns < DSM_LAT_FINE_SUB) return (int)ns;
    int e = 63 - __builtin_clzll(ns); /* >= 3 */
    int b = (e - 2) * DSM_LAT_FINE_SUB + (int)((ns >> (e - 3)) & (DSM_LAT_FINE_SUB - 1));
    return b < DSM_LAT_FINE ? b : DSM_LAT_FINE - 1;
}

/* [lo, hi) nanoseconds of fine bucket b */
static void fine_bounds(int b, double *lo, double *hi)
{
    if (b < DSM_LAT_FINE_SUB) {
        *lo = b;
        *hi = b + 1;
        return;
    }
    int e = b / DSM_LAT_FINE_SUB + 2, sub = b % DSM_LAT_FINE_SUB;
    *lo = (double)((uint64_t)(DSM_LAT_FINE_SUB + sub) << (e - 3));
    *hi = (double)((uint64_t)(DSM_LAT_FINE_SUB + sub + 1) << (e - 3));
}

static void record_latency(struct dsm *d, uint64_t ns)
{
    atomic_fetch_add_explicit(&d->st.lat_fine[dsm_latency_bucket(ns)], 1, memory_order_relaxed);
    uint64_t us = ns / 1000;
    int b = 0;
    while (b < DSM_LAT_BUCKETS - 1 && us >= (2ull << b))
        b++;
    atomic_fetch_add(&d->st.lat_hist[b], 1);
    atomic_fetch_add(&d->st.lat_total_ns, ns);
    atomic_fetch_add(&d->st.lat_count, 1);
}

static void trace_fault(struct dsm *d, uint64_t t0, uint64_t gpa, enum mem_right want, uint64_t ns)
{
    pthread_mutex_lock(&d->trace_lock);
    fprintf(d->trace, "%llu %c %#llx %llu %#llx\n", (unsigned long long)(t0 / 1000),
            want == MEM_WRITE ? 'w' : 'r', (unsigned long long)gpa, (unsigned long long)ns / 1000,
            (unsigned long long)guest_mem_thread_guest_pc());
    pthread_mutex_unlock(&d->trace_lock);
}

/* Sequential read- and write-ahead. A vCPU that faults on the page after one it
 * faulted on recently, for the same right, is streaming through memory other nodes
 * hold: reading it (a merge, a copy, a scan), or overwriting it (the guest clearing
 * pages it allocates one after another, or poisoning memory it frees). Then the
 * next pages it does not hold that right of are asked for at once, without a
 * waiter, so their round trips overlap. Each vCPU thread follows a few streams per
 * right, because other faults come in between (clearing a page, the guest also
 * updates its shared counters); a stream is remembered as ending at the last page
 * asked for, so the fault just past the window continues it.
 *
 * A read-ahead skips pages this node is home of (the home never asks itself for
 * a copy). A write-ahead includes them: the home side then recalls the page from
 * its remote owner or copies here and now, as the fault on it would. */
#define STREAMS 4
struct stream {
    uint64_t last;    /* the page it ends at */
    unsigned run;     /* sequential faults in a row before the last */
    unsigned touched; /* for replacing the least recently continued; 0: unused */
};
static __thread struct stream streams[2][STREAMS]; /* [want == MEM_WRITE] */
static __thread unsigned stream_clock;

/* The stream a fault on `page` continues (run counted), or a recycled one that
 * starts at it (run 0). */
static struct stream *stream_of(struct stream *set, uint64_t page)
{
    struct stream *s = NULL, *oldest = &set[0];
    for (int i = 0; i < STREAMS && !s; i++) {
        if (set[i].touched && page == set[i].last + 1) s = &set[i];
        if (set[i].touched < oldest->touched) oldest = &set[i];
    }
    if (s) {
        s->run++;
    } else {
        s = oldest;
        s->run = 0;
    }
    s->last = page;
    s->touched = ++stream_clock;
    return s;
}

/* Taking pages exclusively ahead steals them when the guess is wrong, so a writer
 * must have streamed longer (a few neighbouring pages written in turn, say one
 * CPU's per-CPU area, are not a stream), and pages this node faulted on before
 * are left alone (they are shared, not passed through once). */
#define WRITEAHEAD_MIN_RUN    3
#define WRITEAHEAD_MAX_FAULTS 1

static int ask_home(struct dsm *d, int home, uint64_t page, enum mem_right want);

static void ask_ahead(struct dsm *d, uint64_t q, int home, enum mem_right want)
{
    pthread_mutex_lock(&d->lock);
    bool busy = d->shut || pending_find(d->pend, q) || pending_find(d->granted_p, q);
    struct pending *p = busy ? NULL : calloc(1, sizeof(*p));
    if (p) {
        p->page = q;
        p->next = d->pend[bucket(q)];
        d->pend[bucket(q)] = p;
    }
    pthread_mutex_unlock(&d->lock);
    if (!p) return;
    atomic_fetch_add(want == MEM_WRITE ? &d->st.write_ahead : &d->st.read_ahead, 1);
    /* a local home may grant at once: then p is gone (nobody waited for it) */
    if (ask_home(d, home, q, want) < 0) {
        pthread_mutex_lock(&d->lock);
        p->failed = true;
        pending_remove(d->pend, p);
        if (p->waiters == 0)
            free(p);
        else
            pthread_cond_broadcast(&d->granted);
        pthread_mutex_unlock(&d->lock);
    }
}

static void fetch_ahead(struct dsm *d, uint64_t page, int home, enum mem_right want)
{
    bool write = want == MEM_WRITE;
    unsigned window = write ? d->writeahead : d->readahead;
    struct stream *s = stream_of(streams[write], page);
    if (s->run < (write ? WRITEAHEAD_MIN_RUN : 1) || window == 0) return;
    uint64_t end = page + 1 + window;
    if (end > d->mem->npages) end = d->mem->npages;
    for (uint64_t q = page + 1; q < end; q++) {
        if (right_of(d, q) >= want) continue;
        int q_home = d->home(d->home_ctx, q << GUEST_PAGE_SHIFT);
        if (write) {
            /* a written stream ends where another node's memory begins: that
             * node may be using those pages, which this node never faulted on */
            if (q_home != home) break;
            if (atomic_load_explicit(&d->page_faults[q], memory_order_relaxed) >
                WRITEAHEAD_MAX_FAULTS)
                continue;
        }
        /* the home never asks itself for a copy (the stream still passes it) */
        if (write || q_home != d->self) ask_ahead(d, q, q_home, want);
        s->last = q;
    }
}

struct local_request {
    struct dsm *d;
    struct dsm_msg m;
};

static void run_local_request(void *arg)
{
    struct local_request *r = arg;
    dsm_receive(r->d, r->d->self, &r->m, NULL);
}

/* The request of a fault: a message to the home, or when this node is the home,
 * its home side run here (this thread is out of the guest: a revocation it
 * causes does not wait for it). */
static int ask_home(struct dsm *d, int home, uint64_t page, enum mem_right want)
{
    if (home != d->self || !d->net.run_as_handler) return send(d, home, DSM_REQ, page, want, false);
    struct local_request r = {
        .d = d, .m = {.type = DSM_REQ, .right = (uint8_t)want, .gpa = page << GUEST_PAGE_SHIFT}};
    d->net.run_as_handler(d->net.ctx, run_local_request, &r);
    return 0;
}

int dsm_fault(void *vd, uint64_t gpa, enum mem_right want)
{
    struct dsm *d = vd;
    uint64_t page = gpa >> GUEST_PAGE_SHIFT;
    if (page >= d->mem->npages || want > MEM_WRITE) return -EFAULT;
    atomic_fetch_add(want == MEM_WRITE ? &d->st.write_faults : &d->st.read_faults, 1);
    atomic_fetch_add_explicit(&d->page_faults[page], 1, memory_order_relaxed);
    int home = d->home(d->home_ctx, page << GUEST_PAGE_SHIFT);
    if (home != d->self) atomic_fetch_add(&d->st.remote_faults, 1);
    uint64_t t0 = clock_ns();
    int result = 0;
    bool streamed = false;
    for (;;) {
        guest_mem_thread_leave();
        pthread_mutex_lock(&d->lock);
        if (d->shut) {
            pthread_mutex_unlock(&d->lock);
            guest_mem_thread_enter();
            result = -ESHUTDOWN;
            break;
        }
        struct pending *p = pending_find(d->pend, page);
        if (!p) {
            p = calloc(1, sizeof(*p));
            if (!p) {
                pthread_mutex_unlock(&d->lock);
                guest_mem_thread_enter();
                result = -ENOMEM;
                break;
            }
            p->page = page;
            p->next = d->pend[bucket(page)];
            d->pend[bucket(page)] = p;
            p->waiters = 1;
            pthread_mutex_unlock(&d->lock);
            int sent = ask_home(d, home, page, want);
            pthread_mutex_lock(&d->lock);
            if (sent < 0 && !p->granted) {
                /* later faults of the page start a new request */
                p->failed = true;
                pending_remove(d->pend, p);
                pthread_cond_broadcast(&d->granted);
            }
        } else {
            p->waiters++;
        }
        /* a remote miss takes tens of microseconds: spin that long before
         * sleeping (UNUM_DSM_SPIN_US, default DSM_SPIN_US) */
        pthread_mutex_unlock(&d->lock);
        if (!streamed) fetch_ahead(d, page, home, want);
        streamed = true;
        /* yielding, not pausing: on a host with fewer cores than busy threads the
         * thread that will answer may be waiting for this core. Serving the
         * network meanwhile handles the answer here, without a wake-up of the
         * service thread. */
        if (d->net.wait) {
            d->net.wait(d->net.ctx, pending_granted, p, d->spin_ns);
        } else {
            uint64_t spin_until = clock_ns() + d->spin_ns;
            while (!pending_granted(p) && clock_ns() < spin_until)
                sched_yield();
        }
        pthread_mutex_lock(&d->lock);
        while (!p->granted && !p->failed && !d->shut)
            pthread_cond_wait(&d->granted, &d->lock);
        pthread_mutex_unlock(&d->lock);
        /* back in the guest before looking at the right: from here a revocation
         * waits for this vCPU's acknowledgement */
        guest_mem_thread_enter();
        bool ok = right_of(d, page) >= want;
        bool resume = false;
        pthread_mutex_lock(&d->lock);
        bool failed = p->failed;
        if (--p->waiters == 0) {
            pending_remove(p->granted ? d->granted_p : d->pend, p);
            if (p->held) {
                struct held_msg **tail = &d->resume;
                while (*tail)
                    tail = &(*tail)->next;
                *tail = p->held;
                resume = true;
            }
            free(p);
        }
        bool shut = d->shut;
        pthread_mutex_unlock(&d->lock);
        if (resume) send(d, d->self, DSM_RESUME, page, 0, false);
        if (ok) break;
        if (shut) {
            result = -ESHUTDOWN;
            break;
        }
        if (failed) {
            result = -EIO;
            break;
        }
    }
    uint64_t t1 = clock_ns();
    record_latency(d, t1 - t0);
    if (d->trace) trace_fault(d, t0, gpa, want, t1 - t0);
    return result;
}

/* The service thread installs a right this node asked for and wakes its waiters. */
static void install_grant(struct dsm *d, uint64_t page, int right, const void *data)
{
    if (data) {
        /* the right is ABSENT here (or READ without data being needed), so no
         * vCPU reads the page while it changes; decoded code of it is stale */
        memcpy(page_host(d, page), data, GUEST_PAGE_SIZE);
        atomic_fetch_add_explicit(&d->mem->code_gen[page], 1, memory_order_release);
        atomic_fetch_add(&d->st.pages_received, 1);
    }
    guest_mem_grant(d->mem, page << GUEST_PAGE_SHIFT, (enum mem_right)right);
    pthread_mutex_lock(&d->lock);
    /* the entry moves to the granted table: a fault for more than was granted
     * starts a new request, while revocations wait for these waiters */
    struct pending *p = pending_find(d->pend, page);
    if (p) {
        pending_remove(d->pend, p);
        if (p->waiters == 0) {
            free(p); /* a read-ahead nobody waits for (yet): done */
        } else {
            __atomic_store_n(&p->granted, true, __ATOMIC_RELEASE);
            p->next = d->granted_p[bucket(page)];
            d->granted_p[bucket(page)] = p;
        }
    }
    pthread_cond_broadcast(&d->granted);
    pthread_mutex_unlock(&d->lock);
}

/* ---- home side ---- */

static struct txn *txn_find(struct dsm *d, uint64_t page, bool unlink)
{
    for (struct txn **pp = &d->txn[bucket(page)]; *pp; pp = &(*pp)->next)
        if ((*pp)->page == page) {
            struct txn *t = *pp;
            if (unlink) *pp = t->next;
            return t;
        }
    return NULL;
}

static struct txn *txn_begin(struct dsm *d, uint64_t page, int requester, int want)
{
    struct txn *t = calloc(1, sizeof(*t));
    if (!t) abort(); /* the service thread cannot continue without memory */
    *t = (struct txn){.page = page, .requester = requester, .want = (uint8_t)want};
    t->next = d->txn[bucket(page)];
    d->txn[bucket(page)] = t;
    d->dir[page].busy = 1;
    return t;
}

/* Hands the page to the requester; the page stays busy until its DONE unless the
 * requester is this node. */
static void home_grant(struct dsm *d, uint64_t page, int requester, int right, bool data)
{
    if (requester == d->self) {
        install_grant(d, page, right, NULL);
        d->dir[page].busy = 0;
    } else {
        d->dir[page].busy = 1;
        d->dir[page].grantee = (int16_t)requester;
        send(d, requester, DSM_GRANT, page, right, data);
    }
}

static void home_finish_write(struct dsm *d, uint64_t page, int requester, bool need_data)
{
    d->dir[page].owner = (int16_t)requester;
    d->dir[page].copyset = 1ull << requester;
    home_grant(d, page, requester, MEM_WRITE, need_data);
}

static void home_request(struct dsm *d, int src, const struct dsm_msg *m);

static void home_kick(struct dsm *d, uint64_t page)
{
    for (struct held_msg **pp = &d->home_queue; *pp && !d->dir[page].busy;) {
        struct held_msg *h = *pp;
        if (h->m.gpa >> GUEST_PAGE_SHIFT != page) {
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        if (d->home_queue_tail == &h->next) d->home_queue_tail = pp;
        home_request(d, h->src, &h->m);
        free(h);
    }
}

static void home_queue_push(struct dsm *d, int src, const struct dsm_msg *m)
{
    struct held_msg *h = malloc(sizeof(*h));
    if (!h) abort();
    *h = (struct held_msg){.src = src, .m = *m};
    *d->home_queue_tail = h;
    d->home_queue_tail = &h->next;
}

static void home_request(struct dsm *d, int src, const struct dsm_msg *m)
{
    uint64_t page = m->gpa >> GUEST_PAGE_SHIFT;
    struct dir_entry *e = &d->dir[page];
    if (e->busy) {
        home_queue_push(d, src, m);
        return;
    }
    int owner = e->owner;
    /* requests that take the page from this node's own vCPUs wait until the
     * ones that just got it used it */
    bool takes_local = (owner == d->self) || (m->right == MEM_WRITE && src != d->self &&
                                              (e->copyset & (1ull << d->self)));
    if (takes_local && src != d->self && hold_for_waiters(d, src, m)) return;
    atomic_fetch_add(&d->st.requests_served, 1);
    uint64_t gpa = page << GUEST_PAGE_SHIFT;
    if (m->right == MEM_READ) {
        if (owner == src) { /* it holds more than it asks for */
            home_grant(d, page, src, MEM_WRITE, false);
        } else if (owner == d->self) {
            guest_mem_revoke(d->mem, gpa, MEM_READ);
            e->owner = NO_OWNER;
            e->copyset = (1ull << d->self) | (1ull << src);
            home_grant(d, page, src, MEM_READ, true);
        } else if (owner != NO_OWNER) {
            txn_begin(d, page, src, MEM_READ);
            send(d, owner, DSM_FETCH, page, MEM_READ, false);
        } else {
            bool had = e->copyset & (1ull << src);
            e->copyset |= 1ull << src;
            home_grant(d, page, src, MEM_READ, !had);
        }
        return;
    }
    /* write */
    if (owner == src) {
        home_grant(d, page, src, MEM_WRITE, false);
    } else if (owner == d->self) {
        guest_mem_revoke(d->mem, gpa, MEM_ABSENT);
        home_finish_write(d, page, src, true);
    } else if (owner != NO_OWNER) {
        txn_begin(d, page, src, MEM_WRITE);
        send(d, owner, DSM_FETCH, page, MEM_ABSENT, false);
    } else {
        bool need_data = !(e->copyset & (1ull << src));
        uint64_t others = e->copyset & ~(1ull << src);
        if (others & (1ull << d->self)) {
            /* the home's copy keeps its bytes: it is still the data sent below */
            guest_mem_revoke(d->mem, gpa, MEM_ABSENT);
            others &= ~(1ull << d->self);
        }
        if (!others) {
            home_finish_write(d, page, src, need_data);
            return;
        }
        struct txn *t = txn_begin(d, page, src, MEM_WRITE);
        t->need_data = need_data;
        for (int n = 0; n < d->nnodes; n++)
            if (others & (1ull << n)) {
                t->inv_waiting |= 1ull << n;
                send(d, n, DSM_INV, page, MEM_ABSENT, false);
            }
    }
}

static void home_fetch_reply(struct dsm *d, int src, uint64_t page, const void *data)
{
    /* checked before the transaction is touched: a bad reply must not end it */
    struct txn *t = txn_find(d, page, false);
    if (!t || t->inv_waiting || d->dir[page].owner != src || !data) {
        atomic_fetch_add(&d->st.bad_messages, 1);
        return;
    }
    txn_find(d, page, true);
    memcpy(page_host(d, page), data, GUEST_PAGE_SIZE);
    atomic_fetch_add_explicit(&d->mem->code_gen[page], 1, memory_order_release);
    atomic_fetch_add(&d->st.pages_received, 1);
    struct dir_entry *e = &d->dir[page];
    d->dir[page].busy = 0;
    if (t->want == MEM_READ) {
        e->owner = NO_OWNER;
        e->copyset = (1ull << src) | (1ull << d->self) | (1ull << t->requester);
        if (t->requester == d->self) {
            install_grant(d, page, MEM_READ, NULL);
        } else {
            guest_mem_grant(d->mem, page << GUEST_PAGE_SHIFT, MEM_READ);
            home_grant(d, page, t->requester, MEM_READ, true);
        }
    } else {
        home_finish_write(d, page, t->requester, true);
    }
    free(t);
    home_kick(d, page);
}

static void home_inv_ack(struct dsm *d, int src, uint64_t page)
{
    struct txn *t = txn_find(d, page, false);
    if (!t || !(t->inv_waiting & (1ull << src))) { /* not asked to invalidate */
        atomic_fetch_add(&d->st.bad_messages, 1);
        return;
    }
    t->inv_waiting &= ~(1ull << src);
    if (t->inv_waiting) return;
    txn_find(d, page, true);
    d->dir[page].busy = 0;
    home_finish_write(d, page, t->requester, t->need_data);
    free(t);
    home_kick(d, page);
}

/* ---- copy holder side ---- */

static void holder_revoke(struct dsm *d, int src, const struct dsm_msg *m)
{
    if (hold_for_waiters(d, src, m)) return;
    uint64_t page = m->gpa >> GUEST_PAGE_SHIFT;
    if (m->type == DSM_FETCH) {
        guest_mem_revoke(d->mem, m->gpa, m->right == MEM_READ ? MEM_READ : MEM_ABSENT);
        atomic_fetch_add(&d->st.fetches, 1);
        send(d, src, DSM_FETCH_REPLY, page, m->right, true);
    } else {
        guest_mem_revoke(d->mem, m->gpa, MEM_ABSENT);
        atomic_fetch_add(&d->st.invalidations, 1);
        send(d, src, DSM_INV_ACK, page, 0, false);
    }
}

/* A grant is expected while some fault of this node waits for the page (after a
 * shutdown its waiters may have gone: the grant is still installed, so that the
 * home's transaction completes). */
static bool grant_expected(struct dsm *d, uint64_t page)
{
    pthread_mutex_lock(&d->lock);
    bool ok = d->shut || pending_find(d->pend, page);
    pthread_mutex_unlock(&d->lock);
    return ok;
}

static void run_resumed(struct dsm *d)
{
    pthread_mutex_lock(&d->lock);
    struct held_msg *list = d->resume;
    d->resume = NULL;
    pthread_mutex_unlock(&d->lock);
    while (list) {
        struct held_msg *h = list;
        list = h->next;
        dsm_receive(d, h->src, &h->m, NULL);
        free(h);
    }
}

void dsm_receive(struct dsm *d, int src, const struct dsm_msg *m, const void *page_data)
{
    uint64_t page = m->gpa >> GUEST_PAGE_SHIFT;
    bool bad = m->type >= DSM_MSG_TYPES || src < 0 || src >= d->nnodes || page >= d->mem->npages ||
               (m->gpa & ~GUEST_PAGE_MASK) || m->right > MEM_WRITE ||
               !guest_mem_host(d->mem, m->gpa);
    bool home_msg = m->type == DSM_REQ || m->type == DSM_FETCH_REPLY || m->type == DSM_INV_ACK ||
                    m->type == DSM_DONE;
    if (!bad && home_msg && d->home(d->home_ctx, m->gpa) != d->self) bad = true;
    if (!bad && m->type == DSM_RESUME && src != d->self) bad = true;
    /* grants, fetches and invalidations come from the page's home, never from
     * this node (the home serves itself directly) */
    if (!bad && (m->type == DSM_GRANT || m->type == DSM_FETCH || m->type == DSM_INV) &&
        (src == d->self || d->home(d->home_ctx, m->gpa) != src))
        bad = true;
    if (bad) {
        atomic_fetch_add(&d->st.bad_messages, 1);
        return;
    }
    switch (m->type) {
    case DSM_REQ:
        if (m->right == MEM_ABSENT) {
            atomic_fetch_add(&d->st.bad_messages, 1);
            return;
        }
        home_request(d, src, m);
        break;
    case DSM_GRANT:
        if ((m->has_data && !page_data) || m->right == MEM_ABSENT || !grant_expected(d, page)) {
            atomic_fetch_add(&d->st.bad_messages, 1);
            return;
        }
        install_grant(d, page, m->right, m->has_data ? page_data : NULL);
        send(d, d->home(d->home_ctx, m->gpa), DSM_DONE, page, 0, false);
        break;
    case DSM_FETCH:
    case DSM_INV:
        /* a fetch goes to the exclusive owner, an invalidation to a read copy */
        if (right_of(d, page) != (m->type == DSM_FETCH ? MEM_WRITE : MEM_READ)) {
            atomic_fetch_add(&d->st.bad_messages, 1);
            return;
        }
        holder_revoke(d, src, m);
        break;
    case DSM_FETCH_REPLY: home_fetch_reply(d, src, page, m->has_data ? page_data : NULL); break;
    case DSM_INV_ACK: home_inv_ack(d, src, page); break;
    case DSM_DONE:
        if (!d->dir[page].busy || txn_find(d, page, false) || d->dir[page].grantee != src) {
            atomic_fetch_add(&d->st.bad_messages, 1);
            return;
        }
        d->dir[page].busy = 0;
        d->dir[page].grantee = NO_OWNER;
        home_kick(d, page);
        break;
    case DSM_RESUME: run_resumed(d); break;
    }
}

/* ---- life cycle ---- */

/* A read- or write-ahead window: the environment's, at most 64 pages. */
static unsigned window_from_env(const char *name, unsigned dflt)
{
    const char *e = getenv(name);
    unsigned long w = e && *e ? strtoul(e, NULL, 10) : dflt;
    return w > 64 ? 64 : (unsigned)w;
}

struct dsm *dsm_create(struct guest_mem *mem, int self, int nnodes, dsm_home_fn home,
                       void *home_ctx, const struct dsm_net *net)
{
    if (nnodes < 1 || nnodes > 64 || self < 0 || self >= nnodes) return NULL;
    struct dsm *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->dir = calloc(mem->npages, sizeof(*d->dir));
    d->page_faults = calloc(mem->npages, sizeof(*d->page_faults));
    if (!d->dir || !d->page_faults) {
        free(d->dir);
        free(d->page_faults);
        free(d);
        return NULL;
    }
    d->mem = mem;
    d->self = self;
    d->nnodes = nnodes;
    d->home = home;
    d->home_ctx = home_ctx;
    d->net = *net;
    d->home_queue_tail = &d->home_queue;
    const char *spin = getenv("UNUM_DSM_SPIN_US");
    d->spin_ns = (spin && *spin ? strtoull(spin, NULL, 10) : DSM_SPIN_US) * 1000;
    d->readahead = window_from_env("UNUM_DSM_READAHEAD", DSM_READAHEAD_PAGES);
    d->writeahead = window_from_env("UNUM_DSM_WRITEAHEAD", DSM_WRITEAHEAD_PAGES);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->granted, NULL);
    pthread_mutex_init(&d->trace_lock, NULL);
    const char *trace = getenv("UNUM_DSM_TRACE");
    if (trace && *trace) {
        char path[4096];
        snprintf(path, sizeof path, "%s.node%d", trace, self);
        d->trace = fopen(path, "w");
        if (!d->trace) fprintf(stderr, "unum: cannot write the DSM trace %s\n", path);
    }
    for (uint64_t p = 0; p < mem->npages; p++) {
        bool mine = home(home_ctx, p << GUEST_PAGE_SHIFT) == self;
        d->dir[p].owner = mine ? (int16_t)self : NO_OWNER;
        d->dir[p].copyset = mine ? 1ull << self : 0;
        d->dir[p].grantee = NO_OWNER;
        atomic_store(&mem->rights[p], mine ? MEM_WRITE : MEM_ABSENT);
    }
    mem->fault = dsm_fault;
    mem->fault_ctx = d;
    return d;
}

void dsm_shutdown(struct dsm *d)
{
    pthread_mutex_lock(&d->lock);
    d->shut = true;
    pthread_cond_broadcast(&d->granted);
    pthread_mutex_unlock(&d->lock);
}

static void free_list(struct held_msg *h)
{
    while (h) {
        struct held_msg *n = h->next;
        free(h);
        h = n;
    }
}

void dsm_destroy(struct dsm *d)
{
    if (!d) return;
    d->mem->fault = NULL;
    for (int b = 0; b < HASH_BUCKETS; b++) {
        for (struct txn *t = d->txn[b]; t;) {
            struct txn *n = t->next;
            free(t);
            t = n;
        }
        for (int t = 0; t < 2; t++)
            for (struct pending *p = (t ? d->granted_p : d->pend)[b]; p;) {
                struct pending *n = p->next;
                free_list(p->held);
                free(p);
                p = n;
            }
    }
    free_list(d->home_queue);
    free_list(d->resume);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->granted);
    free(d->dir);
    free(d->page_faults);
    if (d->trace) fclose(d->trace);
    free(d);
}

/* ---- statistics ---- */

void dsm_get_stats(struct dsm *d, struct dsm_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->read_faults = atomic_load(&d->st.read_faults);
    o->write_faults = atomic_load(&d->st.write_faults);
    o->remote_faults = atomic_load(&d->st.remote_faults);
    o->invalidations = atomic_load(&d->st.invalidations);
    o->fetches = atomic_load(&d->st.fetches);
    o->requests_served = atomic_load(&d->st.requests_served);
    o->pages_sent = atomic_load(&d->st.pages_sent);
    o->pages_received = atomic_load(&d->st.pages_received);
    o->deferred = atomic_load(&d->st.deferred);
    o->bad_messages = atomic_load(&d->st.bad_messages);
    o->read_ahead = atomic_load(&d->st.read_ahead);
    o->write_ahead = atomic_load(&d->st.write_ahead);
    for (int i = 0; i < DSM_LAT_BUCKETS; i++)
        o->lat_hist[i] = atomic_load(&d->st.lat_hist[i]);
    for (int i = 0; i < DSM_LAT_FINE; i++)
        o->lat_fine[i] = atomic_load_explicit(&d->st.lat_fine[i], memory_order_relaxed);
    o->lat_total_ns = atomic_load(&d->st.lat_total_ns);
    o->lat_count = atomic_load(&d->st.lat_count);
}

double dsm_latency_percentile(const struct dsm_stats *s, double pct)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < DSM_LAT_FINE; i++)
        total += s->lat_fine[i];
    if (!total) return 0;
    double want = total * pct / 100.0, lo, hi;
    for (int i = 0; i < DSM_LAT_FINE; i++) {
        if (seen + s->lat_fine[i] >= want && s->lat_fine[i]) {
            fine_bounds(i, &lo, &hi); /* interpolated inside the bucket */
            return (lo + (hi - lo) * (want - seen) / (double)s->lat_fine[i]) / 1000.0;
        }
        seen += s->lat_fine[i];
    }
    fine_bounds(DSM_LAT_FINE - 1, &lo, &hi);
    return hi / 1000.0;
}

void dsm_print_stats(struct dsm *d, FILE *f, int top)
{
    struct dsm_stats s;
    dsm_get_stats(d, &s);
    fprintf(f,
            "dsm node %d: faults read %llu write %llu (remote-homed %llu), invalidations %llu, "
            "fetches %llu, served %llu, pages sent %llu (%llu KiB) received %llu (%llu KiB), "
            "deferred %llu, bad %llu, read ahead %llu, write ahead %llu\n",
            d->self, (unsigned long long)s.read_faults, (unsigned long long)s.write_faults,
            (unsigned long long)s.remote_faults, (unsigned long long)s.invalidations,
            (unsigned long long)s.fetches, (unsigned long long)s.requests_served,
            (unsigned long long)s.pages_sent, (unsigned long long)s.pages_sent * 4,
            (unsigned long long)s.pages_received, (unsigned long long)s.pages_received * 4,
            (unsigned long long)s.deferred, (unsigned long long)s.bad_messages,
            (unsigned long long)s.read_ahead, (unsigned long long)s.write_ahead);
    if (s.lat_count)
        fprintf(f, "dsm node %d: fault latency mean %.1f us, p50 %.1f us, p99 %.1f us\n", d->self,
                s.lat_total_ns / 1000.0 / (double)s.lat_count, dsm_latency_percentile(&s, 50),
                dsm_latency_percentile(&s, 99));
    fprintf(f, "dsm node %d: latency histogram (us: count):", d->self);
    for (int i = 0; i < DSM_LAT_BUCKETS; i++)
        if (s.lat_hist[i]) fprintf(f, " <%llu:%llu", 2ull << i, (unsigned long long)s.lat_hist[i]);
    fputc('\n', f);
    /* the hottest pages (a few passes over the counters: top is small) */
    uint64_t last_max = UINT64_MAX;
    for (int k = 0; k < top; k++) {
        uint64_t best = 0, best_page = 0;
        for (uint64_t p = 0; p < d->mem->npages; p++) {
            uint64_t c = atomic_load_explicit(&d->page_faults[p], memory_order_relaxed);
            if (c > best && c < last_max) {
                best = c;
                best_page = p;
            }
        }
        if (!best) break;
        fprintf(f, "dsm node %d: hot page %#llx: %llu faults\n", d->self,
                (unsigned long long)(best_page << GUEST_PAGE_SHIFT), (unsigned long long)best);
        last_max = best;
    }
}
