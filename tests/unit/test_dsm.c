/* DSM protocol tests: 2-4 nodes in one process, each with its own guest_mem and
 * dsm, joined by a fake network (one inbox per node, optionally reordering).
 *
 *  - deterministic scenarios on a hand-pumped network: rights and data after
 *    read misses, write misses, upgrades, fetches from an exclusive owner, the
 *    home's own accesses, and the statistics;
 *  - sequential read-ahead: the pages asked for, their data, invalidation;
 *  - dsm_shutdown waking blocked faults, a request the network cannot send;
 *  - revocations held back (holder and home side) until the vCPU that waited
 *    for the page used it;
 *  - malformed messages counted and ignored, also in the middle of transactions;
 *  - a stress run: emulated vCPUs (thread hooks + shoot-down acknowledged only
 *    between "instructions") doing atomic adds, CMPXCHG loops, falsely shared
 *    plain stores and message passing on every node at once, with in-order and
 *    reordering networks, then exact totals and the directory invariants.
 *
 * UNUM_DSM_OPS overrides the operations per stress worker, UNUM_DSM_REORDER the
 * reordering percentage; UNUM_DSM_VERBOSE=1 prints the per-node statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory/dsm.h"
#include "memory/guest_mem.h"

#define MAXN   4
#define NPAGES 64
#define PG     GUEST_PAGE_SIZE

/* ---- fake network ---- */

struct item {
    int src;
    struct dsm_msg m;
    uint8_t *page;
    struct item *next;
};

struct cluster;

struct node {
    struct cluster *c;
    int id;
    struct guest_mem mem;
    struct dsm *d;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct item *head, **tailp;
    int len;
    bool stop;
    pthread_t svc;
    pthread_mutex_t handler_lock; /* dsm_receive and run_as_handler one at a time */
    uint64_t rng;
    /* shoot-downs seen by the passive translation cache of the scenario tests */
    struct mem_tcache tc;
    _Atomic int shootdowns;
    _Atomic uint64_t last_shootdown;
};

enum home_kind { HOME_CONTIG, HOME_INTERLEAVE };

struct cluster {
    int n;
    enum home_kind kind;
    bool threaded;
    int reorder_pct; /* chance a service thread takes a later message first */
    _Atomic long inflight;
    _Atomic long sent[DSM_MSG_TYPES];
    _Atomic int net_errors;
    _Atomic unsigned broken;     /* sends to these nodes fail (bit per node) */
    _Atomic long run_as_handler; /* home-side requests run on faulting threads */
    struct node node[MAXN];
};

static int home_of(const struct cluster *c, uint64_t page)
{
    if (c->kind == HOME_INTERLEAVE) return (int)(page % (uint64_t)c->n);
    for (int k = 0; k < c->n; k++)
        if (page < (uint64_t)(k + 1) * NPAGES / (uint64_t)c->n) return k;
    return 0;
}

static int home_fn(void *ctx, uint64_t gpa)
{
    return home_of(ctx, gpa >> GUEST_PAGE_SHIFT);
}

/* The nth page (0-based) homed at node k. */
static uint64_t page_homed_at(const struct cluster *c, int k, int nth)
{
    for (uint64_t p = 0; p < NPAGES; p++)
        if (home_of(c, p) == k && nth-- == 0) return p;
    return ~0ull;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* The threaded network runs a node's own requests on the faulting thread, as
 * the cluster transport does (the manual one keeps them as messages, so that
 * tests can step through them). */
static void net_run_as_handler(void *ctx, void (*fn)(void *), void *arg)
{
    struct node *n = ctx;
    atomic_fetch_add(&n->c->run_as_handler, 1);
    pthread_mutex_lock(&n->handler_lock);
    fn(arg);
    pthread_mutex_unlock(&n->handler_lock);
}

static int net_send(void *ctx, int dst, const struct dsm_msg *m, const void *page)
{
    struct node *s = ctx;
    struct cluster *c = s->c;
    if (dst < 0 || dst >= c->n || m->type >= DSM_MSG_TYPES || m->has_data != (page != NULL)) {
        atomic_fetch_add(&c->net_errors, 1);
        return -EINVAL;
    }
    if (atomic_load(&c->broken) & (1u << dst)) return -EIO;
    struct item *it = calloc(1, sizeof(*it));
    if (!it) abort();
    it->src = s->id;
    it->m = *m;
    if (page) {
        it->page = malloc(PG);
        if (!it->page) abort();
        memcpy(it->page, page, PG);
    }
    atomic_fetch_add(&c->inflight, 1);
    atomic_fetch_add(&c->sent[m->type], 1);
    struct node *dn = &c->node[dst];
    pthread_mutex_lock(&dn->lock);
    *dn->tailp = it;
    dn->tailp = &it->next;
    dn->len++;
    pthread_cond_signal(&dn->cv);
    pthread_mutex_unlock(&dn->lock);
    return 0;
}

/* Takes the next message (under n->lock, inbox not empty); with reordering on,
 * sometimes one of the next few instead of the first. */
static struct item *inbox_pop(struct node *n)
{
    struct item **pp = &n->head;
    if (n->c->reorder_pct && n->len >= 2 && (int)(xorshift(&n->rng) % 100) < n->c->reorder_pct) {
        int span = n->len < 4 ? n->len : 4;
        int k = 1 + (int)(xorshift(&n->rng) % (uint64_t)(span - 1));
        while (k--)
            pp = &(*pp)->next;
    }
    struct item *it = *pp;
    *pp = it->next;
    if (n->tailp == &it->next) n->tailp = pp;
    n->len--;
    return it;
}

static void deliver(struct node *n, struct item *it)
{
    pthread_mutex_lock(&n->handler_lock);
    dsm_receive(n->d, it->src, &it->m, it->page);
    pthread_mutex_unlock(&n->handler_lock);
    free(it->page);
    free(it);
    atomic_fetch_sub(&n->c->inflight, 1);
}

static void *svc_main(void *arg)
{
    struct node *n = arg;
    pthread_mutex_lock(&n->lock);
    for (;;) {
        while (!n->head && !n->stop)
            pthread_cond_wait(&n->cv, &n->lock);
        if (!n->head) break;
        struct item *it = inbox_pop(n);
        pthread_mutex_unlock(&n->lock);
        deliver(n, it);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

/* Manual network: delivers one message to node i (false if its inbox is empty). */
static bool pump_node(struct cluster *c, int i)
{
    struct node *n = &c->node[i];
    pthread_mutex_lock(&n->lock);
    if (!n->head) {
        pthread_mutex_unlock(&n->lock);
        return false;
    }
    struct item *it = inbox_pop(n);
    pthread_mutex_unlock(&n->lock);
    deliver(n, it);
    return true;
}

static int pump_all(struct cluster *c)
{
    int count = 0;
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < c->n; i++)
            if (pump_node(c, i)) {
                any = true;
                count++;
            }
    }
    return count;
}

static int inbox_len(struct cluster *c, int i)
{
    pthread_mutex_lock(&c->node[i].lock);
    int len = c->node[i].len;
    pthread_mutex_unlock(&c->node[i].lock);
    return len;
}

/* The head message of node i's inbox (manual network). */
static bool inbox_peek(struct cluster *c, int i, struct item *out)
{
    pthread_mutex_lock(&c->node[i].lock);
    bool any = c->node[i].head != NULL;
    if (any) *out = *c->node[i].head;
    pthread_mutex_unlock(&c->node[i].lock);
    return any;
}

static uint64_t passive_shootdown(struct mem_tcache *tc, uint64_t gpa)
{
    struct node *n = (struct node *)((char *)tc - offsetof(struct node, tc));
    atomic_store(&n->last_shootdown, gpa);
    atomic_fetch_add(&n->shootdowns, 1);
    return 0;
}

static void cluster_init(struct cluster *c, int n, enum home_kind kind, bool threaded,
                         int reorder_pct)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->kind = kind;
    c->threaded = threaded;
    c->reorder_pct = reorder_pct;
    for (int i = 0; i < n; i++) {
        struct node *nd = &c->node[i];
        nd->c = c;
        nd->id = i;
        nd->tailp = &nd->head;
        nd->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) ^ (uint64_t)time(NULL);
        if (!nd->rng) nd->rng = 1;
        pthread_mutex_init(&nd->lock, NULL);
        pthread_mutex_init(&nd->handler_lock, NULL);
        pthread_cond_init(&nd->cv, NULL);
        assert_int_equal(guest_mem_init(&nd->mem, NPAGES * PG, 0, MEM_WRITE), 0);
        struct dsm_net net = {
            .send = net_send, .run_as_handler = threaded ? net_run_as_handler : NULL, .ctx = nd};
        nd->d = dsm_create(&nd->mem, i, n, home_fn, c, &net);
        assert_non_null(nd->d);
        nd->tc.shootdown = passive_shootdown;
        guest_mem_register_tcache(&nd->mem, &nd->tc);
    }
    if (threaded)
        for (int i = 0; i < n; i++)
            assert_int_equal(pthread_create(&c->node[i].svc, NULL, svc_main, &c->node[i]), 0);
}

/* Waits until no message is in flight (threaded network). */
static bool quiesce(struct cluster *c, int timeout_ms)
{
    for (int t = 0; t < timeout_ms * 10; t++) {
        if (!atomic_load(&c->inflight)) return true;
        usleep(100);
    }
    return false;
}

static void cluster_destroy(struct cluster *c)
{
    if (c->threaded) {
        quiesce(c, 5000);
        for (int i = 0; i < c->n; i++) {
            pthread_mutex_lock(&c->node[i].lock);
            c->node[i].stop = true;
            pthread_cond_broadcast(&c->node[i].cv);
            pthread_mutex_unlock(&c->node[i].lock);
            pthread_join(c->node[i].svc, NULL);
        }
    }
    for (int i = 0; i < c->n; i++) {
        struct node *nd = &c->node[i];
        guest_mem_unregister_tcache(&nd->mem, &nd->tc);
        dsm_destroy(nd->d);
        guest_mem_destroy(&nd->mem);
        for (struct item *it = nd->head; it;) {
            struct item *next = it->next;
            free(it->page);
            free(it);
            it = next;
        }
        pthread_mutex_destroy(&nd->lock);
        pthread_cond_destroy(&nd->cv);
    }
}

static enum mem_right right(struct cluster *c, int node, uint64_t page)
{
    return atomic_load(&c->node[node].mem.rights[page]);
}

static uint8_t *host(struct cluster *c, int node, uint64_t page)
{
    return guest_mem_host(&c->node[node].mem, page << GUEST_PAGE_SHIFT);
}

static struct dsm_stats stats(struct cluster *c, int node)
{
    struct dsm_stats s;
    dsm_get_stats(c->node[node].d, &s);
    return s;
}

/* The directory invariants, observable from the rights (quiescent cluster):
 * either one node holds WRITE and every other ABSENT, or nobody holds WRITE, the
 * home holds READ and every READ copy equals the home's. */
static void check_invariants(struct cluster *c)
{
    for (uint64_t p = 0; p < NPAGES; p++) {
        int writers = 0, home = home_of(c, p);
        for (int i = 0; i < c->n; i++)
            writers += right(c, i, p) == MEM_WRITE;
        if (writers) {
            assert_int_equal(writers, 1);
            for (int i = 0; i < c->n; i++)
                if (right(c, i, p) != MEM_WRITE) assert_int_equal(right(c, i, p), MEM_ABSENT);
        } else {
            assert_int_equal(right(c, home, p), MEM_READ);
            for (int i = 0; i < c->n; i++)
                if (right(c, i, p) == MEM_READ)
                    assert_memory_equal(host(c, i, p), host(c, home, p), PG);
        }
    }
}

/* ---- accesses from a DMA-like thread (no hooks) while the network is pumped ---- */

struct async {
    struct cluster *c;
    int node;
    uint64_t gpa;
    void *buf;
    size_t len;
    bool write;
    bool direct; /* calls dsm_fault(want) itself: a request the node need not make */
    enum mem_right want;
    int rc;
    _Atomic bool done;
    pthread_t t;
};

static void *async_main(void *arg)
{
    struct async *a = arg;
    struct guest_mem *m = &a->c->node[a->node].mem;
    if (a->direct)
        a->rc = dsm_fault(a->c->node[a->node].d, a->gpa, a->want);
    else
        a->rc = a->write ? guest_mem_write(m, a->gpa, a->buf, a->len)
                         : guest_mem_read(m, a->gpa, a->buf, a->len);
    atomic_store(&a->done, true);
    return NULL;
}

static void async_start(struct async *a, struct cluster *c, int node, uint64_t gpa, void *buf,
                        size_t len, bool write)
{
    *a = (struct async){.c = c, .node = node, .gpa = gpa, .buf = buf, .len = len, .write = write};
    assert_int_equal(pthread_create(&a->t, NULL, async_main, a), 0);
}

/* Pumps until the access finished and the network is quiet; on a hang, shuts
 * the node's DSM down (to free the thread) and fails. */
static int async_finish(struct async *a)
{
    struct cluster *c = a->c;
    for (int spins = 0; !atomic_load(&a->done); spins++) {
        if (c->threaded || !pump_all(c)) usleep(50);
        if (spins > 100000) { /* ~5 s */
            dsm_shutdown(c->node[a->node].d);
            pthread_join(a->t, NULL);
            fail_msg("access from node %d to %#llx never completed", a->node,
                     (unsigned long long)a->gpa);
        }
    }
    pthread_join(a->t, NULL);
    if (c->threaded)
        assert_true(quiesce(c, 5000));
    else
        pump_all(c);
    return a->rc;
}

static int access_sync(struct cluster *c, int node, uint64_t gpa, void *buf, size_t len, bool write)
{
    struct async a;
    async_start(&a, c, node, gpa, buf, len, write);
    return async_finish(&a);
}

static uint64_t rd64(struct cluster *c, int node, uint64_t gpa)
{
    uint64_t v = 0;
    assert_int_equal(access_sync(c, node, gpa, &v, 8, false), 0);
    return v;
}

static void wr64(struct cluster *c, int node, uint64_t gpa, uint64_t v)
{
    assert_int_equal(access_sync(c, node, gpa, &v, 8, true), 0);
}

/* ---- deterministic scenarios ---- */

static void expect_rights(struct cluster *c, uint64_t page, const int *want)
{
    for (int i = 0; i < c->n; i++)
        if ((int)right(c, i, page) != want[i])
            fail_msg("page %llu node %d: right %d, expected %d", (unsigned long long)page, i,
                     right(c, i, page), want[i]);
}
#define RIGHTS(c, page, ...) expect_rights(c, page, (const int[]){__VA_ARGS__})

static void scenarios(enum home_kind kind)
{
    struct cluster c;
    cluster_init(&c, 3, kind, false, 0);
    const int A = MEM_ABSENT, R = MEM_READ, W = MEM_WRITE;

    /* initial state: each node holds its own pages exclusively */
    for (uint64_t p = 0; p < NPAGES; p++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(right(&c, i, p), home_of(&c, p) == i ? MEM_WRITE : MEM_ABSENT);

    uint64_t p0 = page_homed_at(&c, 0, 1), g0 = p0 << GUEST_PAGE_SHIFT;
    uint8_t pattern[PG], buf[PG];
    for (size_t i = 0; i < PG; i++)
        pattern[i] = (uint8_t)(i * 7 + 3);

    /* the home writes its own page: no fault, no message */
    assert_int_equal(access_sync(&c, 0, g0, pattern, PG, true), 0);
    assert_int_equal(stats(&c, 0).write_faults, 0);
    assert_int_equal(atomic_load(&c.inflight), 0);

    /* read miss from a remote home returns the home's data; the home keeps a copy */
    struct dsm_stats s0 = stats(&c, 0), s1 = stats(&c, 1);
    int shoot0 = atomic_load(&c.node[0].shootdowns);
    uint32_t gen0 = atomic_load(&c.node[0].mem.code_gen[p0]);
    uint32_t gen1 = atomic_load(&c.node[1].mem.code_gen[p0]);
    struct async a;
    async_start(&a, &c, 1, g0, buf, PG, false);
    struct item it;
    while (!inbox_peek(&c, 0, &it))
        usleep(50);
    assert_int_equal(it.src, 1);
    assert_int_equal(it.m.type, DSM_REQ);
    assert_int_equal(it.m.right, MEM_READ);
    assert_int_equal(it.m.gpa, g0);
    assert_false(it.m.has_data);
    assert_true(pump_node(&c, 0));
    assert_true(inbox_peek(&c, 1, &it)); /* the grant, with the page */
    assert_int_equal(it.src, 0);
    assert_int_equal(it.m.type, DSM_GRANT);
    assert_int_equal(it.m.right, MEM_READ);
    assert_true(it.m.has_data);
    assert_memory_equal(it.page, pattern, PG);
    RIGHTS(&c, p0, R, A, A); /* the home already went down to READ */
    assert_int_equal(atomic_load(&c.node[0].shootdowns), shoot0 + 1);
    assert_int_equal(atomic_load(&c.node[0].last_shootdown), g0);
    assert_true(pump_node(&c, 1));
    assert_true(inbox_peek(&c, 0, &it));
    assert_int_equal(it.m.type, DSM_DONE);
    assert_int_equal(it.src, 1);
    assert_int_equal(async_finish(&a), 0);
    assert_memory_equal(buf, pattern, PG);
    RIGHTS(&c, p0, R, R, A);
    struct dsm_stats t0 = stats(&c, 0), t1 = stats(&c, 1);
    assert_int_equal(t1.read_faults, s1.read_faults + 1);
    assert_int_equal(t1.remote_faults, s1.remote_faults + 1);
    assert_int_equal(t1.pages_received, s1.pages_received + 1);
    assert_int_equal(t1.lat_count, s1.lat_count + 1);
    assert_int_equal(t0.requests_served, s0.requests_served + 1);
    assert_int_equal(t0.pages_sent, s0.pages_sent + 1);
    assert_int_equal(t0.read_faults + t0.write_faults, 0);
    /* decoded code of the page is stale where the page changed hands */
    assert_true(atomic_load(&c.node[0].mem.code_gen[p0]) != gen0); /* revoked */
    assert_true(atomic_load(&c.node[1].mem.code_gen[p0]) != gen1); /* new data */

    /* a second reader: a plain copy from the home */
    assert_int_equal(rd64(&c, 2, g0 + 8), ((uint64_t *)pattern)[1]);
    RIGHTS(&c, p0, R, R, R);

    /* write upgrade of a shared copy: every other copy goes, no data travels */
    s0 = stats(&c, 0);
    s1 = stats(&c, 1);
    struct dsm_stats s2 = stats(&c, 2);
    int shoot1 = atomic_load(&c.node[1].shootdowns);
    long inv_sent = atomic_load(&c.sent[DSM_INV]);
    gen1 = atomic_load(&c.node[1].mem.code_gen[p0]);
    wr64(&c, 2, g0, 0x1111);
    RIGHTS(&c, p0, A, A, W);
    assert_int_equal(stats(&c, 2).pages_received, s2.pages_received);
    assert_int_equal(stats(&c, 2).write_faults, s2.write_faults + 1);
    assert_int_equal(stats(&c, 1).invalidations, s1.invalidations + 1);
    assert_int_equal(stats(&c, 0).invalidations, s0.invalidations); /* the home drops its own */
    assert_int_equal(atomic_load(&c.sent[DSM_INV]), inv_sent + 1);
    assert_int_equal(atomic_load(&c.node[1].shootdowns), shoot1 + 1);
    assert_true(atomic_load(&c.node[1].mem.code_gen[p0]) != gen1);
    assert_int_equal(stats(&c, 0).pages_sent, s0.pages_sent);

    /* read after a remote write sees the new data; the owner keeps a read copy */
    s2 = stats(&c, 2);
    assert_int_equal(rd64(&c, 1, g0), 0x1111);
    assert_int_equal(rd64(&c, 1, g0 + 16), ((uint64_t *)pattern)[2]);
    RIGHTS(&c, p0, R, R, R);
    assert_int_equal(stats(&c, 2).fetches, s2.fetches + 1);
    assert_memory_equal(host(&c, 0, p0), host(&c, 2, p0), PG);

    /* write miss on a node without a copy while another node owns the page */
    wr64(&c, 1, g0 + 24, 0x2222); /* node 1 upgrades */
    RIGHTS(&c, p0, A, W, A);
    s1 = stats(&c, 1);
    s2 = stats(&c, 2);
    wr64(&c, 2, g0 + 32, 0x3333); /* node 2 has nothing: fetched from node 1 */
    RIGHTS(&c, p0, A, A, W);
    assert_int_equal(stats(&c, 1).fetches, s1.fetches + 1);
    assert_int_equal(stats(&c, 2).pages_received, s2.pages_received + 1);
    assert_int_equal(rd64(&c, 2, g0 + 24), 0x2222);

    /* the home's own vCPU writes a page a remote node holds exclusively */
    s0 = stats(&c, 0);
    wr64(&c, 0, g0 + 40, 0x4444);
    RIGHTS(&c, p0, W, A, A);
    assert_int_equal(stats(&c, 0).write_faults, s0.write_faults + 1);
    assert_int_equal(stats(&c, 0).remote_faults, s0.remote_faults); /* homed here */
    assert_int_equal(stats(&c, 0).requests_served, s0.requests_served + 1);
    assert_int_equal(rd64(&c, 0, g0), 0x1111);
    assert_int_equal(rd64(&c, 0, g0 + 24), 0x2222);
    assert_int_equal(rd64(&c, 0, g0 + 32), 0x3333);

    /* the home reads a page a remote node owns: the owner keeps a read copy */
    wr64(&c, 1, g0 + 48, 0x5555);
    RIGHTS(&c, p0, A, W, A);
    assert_int_equal(rd64(&c, 0, g0 + 48), 0x5555);
    RIGHTS(&c, p0, R, R, A);

    /* the home writes a page others share: they are invalidated */
    assert_int_equal(rd64(&c, 2, g0 + 48), 0x5555);
    RIGHTS(&c, p0, R, R, R);
    s1 = stats(&c, 1);
    s2 = stats(&c, 2);
    wr64(&c, 0, g0 + 56, 0x6666);
    RIGHTS(&c, p0, W, A, A);
    assert_int_equal(stats(&c, 1).invalidations, s1.invalidations + 1);
    assert_int_equal(stats(&c, 2).invalidations, s2.invalidations + 1);

    /* a node asking for a read of a page it owns keeps WRITE */
    uint64_t p1 = page_homed_at(&c, 1, 2), g1 = p1 << GUEST_PAGE_SHIFT;
    wr64(&c, 2, g1, 0x7777);
    RIGHTS(&c, p1, A, A, W);
    struct async f;
    f = (struct async){.c = &c, .node = 2, .gpa = g1, .direct = true, .want = MEM_READ};
    assert_int_equal(pthread_create(&f.t, NULL, async_main, &f), 0);
    assert_int_equal(async_finish(&f), 0);
    RIGHTS(&c, p1, A, A, W);
    assert_int_equal(rd64(&c, 2, g1), 0x7777);
    /* and a node asking again for a read copy it has gets no data */
    assert_int_equal(rd64(&c, 0, g1), 0x7777);
    RIGHTS(&c, p1, R, R, R);
    s0 = stats(&c, 0);
    f = (struct async){.c = &c, .node = 0, .gpa = g1, .direct = true, .want = MEM_READ};
    assert_int_equal(pthread_create(&f.t, NULL, async_main, &f), 0);
    assert_int_equal(async_finish(&f), 0);
    RIGHTS(&c, p1, R, R, R);
    assert_int_equal(stats(&c, 0).pages_received, s0.pages_received);

    /* an access spanning two pages with different homes */
    uint64_t pa = 0;
    while (!(home_of(&c, pa) == 1 && home_of(&c, pa + 1) == 2))
        pa++;
    uint64_t pb = pa + 1;
    {
        uint8_t span[32], back[32];
        for (int i = 0; i < 32; i++)
            span[i] = (uint8_t)(0xa0 + i);
        uint64_t g = (pb << GUEST_PAGE_SHIFT) - 16;
        assert_int_equal(access_sync(&c, 0, g, span, 32, true), 0);
        assert_int_equal(right(&c, 0, pa), MEM_WRITE);
        assert_int_equal(right(&c, 0, pb), MEM_WRITE);
        assert_int_equal(access_sync(&c, 2, g, back, 32, false), 0);
        assert_memory_equal(span, back, 32);
    }

    /* a fault on a page out of range fails cleanly */
    assert_int_equal(dsm_fault(c.node[1].d, NPAGES * PG, MEM_READ), -EFAULT);

    /* the statistics printer and the percentile helper */
    struct dsm_stats s = stats(&c, 1);
    assert_true(s.lat_count > 0);
    double p50 = dsm_latency_percentile(&s, 50), p99 = dsm_latency_percentile(&s, 99);
    assert_true(p50 >= 0 && p99 >= p50);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    dsm_print_stats(c.node[1].d, devnull, 3);
    fclose(devnull);

    check_invariants(&c);
    for (int i = 0; i < 3; i++)
        assert_int_equal(stats(&c, i).bad_messages, 0);
    assert_int_equal(atomic_load(&c.net_errors), 0);
    cluster_destroy(&c);
}

/* Percentiles come from the fine histogram: within its 12.5% buckets of the
 * exact value, not an octave's worth off. */
static void test_latency_percentiles(void **state)
{
    struct dsm_stats s;
    memset(&s, 0, sizeof(s));
    assert_true(dsm_latency_percentile(&s, 50) == 0);
    /* 4.000 .. 5.999 us, uniform */
    for (uint64_t ns = 4000; ns < 6000; ns++)
        s.lat_fine[dsm_latency_bucket(ns)]++;
    double p50 = dsm_latency_percentile(&s, 50), p99 = dsm_latency_percentile(&s, 99);
    if (fabs(p50 - 5.0) > 5.0 / 8) fail_msg("p50 %.3f us, want 5.0 +- 12.5%%", p50);
    if (fabs(p99 - 5.98) > 5.98 / 8) fail_msg("p99 %.3f us, want 5.98 +- 12.5%%", p99);
    /* the old octave histogram, interpolated, said 5.0 and 7.96 */
    assert_true(p99 < 6.5);
    /* buckets are monotonic and never out of range */
    int prev = 0;
    for (uint64_t ns = 0; ns < (1ull << 42); ns = ns * 9 / 8 + 1) {
        int b = dsm_latency_bucket(ns);
        assert_true(b >= prev && b < DSM_LAT_FINE);
        prev = b;
    }
    assert_int_equal(dsm_latency_bucket(~0ull), DSM_LAT_FINE - 1);
    /* one very slow fault: the top bucket's bound, not garbage */
    memset(&s, 0, sizeof(s));
    s.lat_fine[dsm_latency_bucket(~0ull)] = 1;
    assert_true(dsm_latency_percentile(&s, 50) > 1e6);
}

static void test_scenarios_contig(void **state)
{
    scenarios(HOME_CONTIG);
}

static void test_scenarios_interleaved(void **state)
{
    scenarios(HOME_INTERLEAVE);
}

/* Several threads of one node fault on the same remote page at once: one request. */
static void test_shared_request(void **state)
{
    struct cluster c;
    cluster_init(&c, 2, HOME_CONTIG, false, 0);
    uint64_t p = page_homed_at(&c, 0, 5), g = p << GUEST_PAGE_SHIFT;
    wr64(&c, 0, g, 42);
    uint64_t v[4] = {0};
    struct async a[4];
    for (int i = 0; i < 4; i++)
        async_start(&a[i], &c, 1, g, &v[i], 8, false);
    usleep(20000); /* let them all block */
    long reqs = atomic_load(&c.sent[DSM_REQ]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(async_finish(&a[i]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(v[i], 42);
    assert_int_equal(reqs, 1); /* nothing was delivered yet: they all share one */
    assert_int_equal(stats(&c, 0).requests_served, (uint64_t)atomic_load(&c.sent[DSM_REQ]));
    check_invariants(&c);
    cluster_destroy(&c);
}

/* ---- sequential read-ahead ---- */

struct stream_reader {
    struct cluster *c;
    uint64_t first;
    int count;
    uint64_t got[NPAGES];
    int rc;
};

static void *stream_main(void *arg)
{
    struct stream_reader *r = arg;
    for (int i = 0; i < r->count && !r->rc; i++)
        r->rc = guest_mem_read(&r->c->node[1].mem, (r->first + (uint64_t)i) * PG, &r->got[i], 8);
    return NULL;
}

static void read_stream(struct cluster *c, uint64_t first, int count, struct stream_reader *r)
{
    *r = (struct stream_reader){.c = c, .first = first, .count = count};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stream_main, r), 0); /* a fresh stream */
    pthread_join(t, NULL);
    assert_int_equal(r->rc, 0);
}

/* Two consecutive read misses ask for the next DSM_READAHEAD_PAGES pages without a
 * waiter; they arrive as ordinary read copies (data, copy set, invalidation), and
 * reading them costs no fault. */
static void test_read_ahead(void **state)
{
    struct cluster c;
    cluster_init(&c, 2, HOME_CONTIG, true, 0);
    const int ahead = DSM_READAHEAD_PAGES;
    uint64_t p0 = page_homed_at(&c, 0, 2);
    assert_true(home_of(&c, p0 + 2 + ahead) == 0); /* the window stays in node 0's range */
    for (int i = 0; i < ahead + 4; i++)
        wr64(&c, 0, (p0 + (uint64_t)i) * PG, 1000 + (uint64_t)i);
    struct stream_reader r;
    read_stream(&c, p0, 2, &r);
    assert_true(quiesce(&c, 2000));
    struct dsm_stats s = stats(&c, 1);
    assert_int_equal(s.read_ahead, (uint64_t)ahead);
    assert_int_equal(s.read_faults, 2);
    for (int i = 2; i < 2 + ahead; i++) {
        assert_int_equal(right(&c, 1, p0 + (uint64_t)i), MEM_READ);
        assert_int_equal(right(&c, 0, p0 + (uint64_t)i), MEM_READ); /* the home keeps a copy */
    }
    assert_int_equal(right(&c, 1, p0 + 2 + (uint64_t)ahead), MEM_ABSENT);
    /* the window's pages hold the home's data and read without a fault */
    for (int i = 2; i < 2 + ahead; i++) {
        uint64_t v = 0;
        assert_int_equal(guest_mem_read(&c.node[1].mem, (p0 + (uint64_t)i) * PG, &v, 8), 0);
        assert_int_equal(v, 1000 + (uint64_t)i);
    }
    assert_int_equal(stats(&c, 1).read_faults, 2);
    /* a write at the home invalidates a read-ahead copy like any other */
    wr64(&c, 0, (p0 + 3) * PG, 7);
    assert_true(quiesce(&c, 2000));
    assert_int_equal(right(&c, 1, p0 + 3), MEM_ABSENT);
    assert_int_equal(rd64(&c, 1, (p0 + 3) * PG), 7);
    /* a read that does not follow the previous one asks for nothing more */
    read_stream(&c, p0 + 2 + (uint64_t)ahead + 1, 1, &r);
    assert_true(quiesce(&c, 2000));
    assert_int_equal(stats(&c, 1).read_ahead, (uint64_t)ahead);
    check_invariants(&c);
    cluster_destroy(&c);
}

/* ---- sequential write-ahead ---- */

struct stream_writer {
    struct cluster *c;
    int node;
    uint64_t first;
    int count;
    int rc;
};

static void *write_stream_main(void *arg)
{
    struct stream_writer *w = arg;
    for (int i = 0; i < w->count && !w->rc; i++) {
        uint64_t page = w->first + (uint64_t)i, v = 1;
        w->rc = guest_mem_write(&w->c->node[w->node].mem, page * PG, &v, 8);
    }
    return NULL;
}

/* count sequential page writes (of a word at offset 0) by a fresh vCPU thread of
 * `node` */
static void write_stream(struct cluster *c, int node, uint64_t first, int count)
{
    struct stream_writer w = {.c = c, .node = node, .first = first, .count = count};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_stream_main, &w), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
}

/* A vCPU writing WRITEAHEAD_MIN_RUN + 1 pages in a row that other nodes hold gets the
 * next DSM_WRITEAHEAD_PAGES pages exclusively without waiting for them, with their
 * data; at a page's home that recalls them from their owner. Shorter runs take
 * nothing ahead, and pages the writer's node faulted on more than once (shared
 * pages, not a stream) are left where they are. */
static void test_write_ahead(void **state)
{
    struct cluster c;
    cluster_init(&c, 2, HOME_CONTIG, true, 0);
    const int ahead = DSM_WRITEAHEAD_PAGES, run = 4;
    uint64_t p0 = page_homed_at(&c, 0, 2);
    assert_true(home_of(&c, p0 + (uint64_t)(2 * run + ahead)) == 0);
    for (int i = 0; i < 2 * run + ahead; i++)
        wr64(&c, 0, (p0 + (uint64_t)i) * PG + 8, 500 + (uint64_t)i);

    /* three in a row: no write-ahead */
    write_stream(&c, 1, p0, run - 1);
    assert_true(quiesce(&c, 2000));
    assert_int_equal(stats(&c, 1).write_ahead, 0);
    assert_int_equal(right(&c, 1, p0 + (uint64_t)run - 1), MEM_ABSENT);

    /* four in a row (a fresh stream over the same pages: they are held now, so the
     * stream starts at the fourth): the window is taken */
    write_stream(&c, 1, p0 + (uint64_t)run - 1, run);
    assert_true(quiesce(&c, 2000));
    struct dsm_stats s = stats(&c, 1);
    assert_int_equal(s.write_ahead, (uint64_t)ahead);
    uint64_t w0 = p0 + 2 * (uint64_t)run - 1; /* first page of the window */
    for (int i = 0; i < ahead; i++) {
        assert_int_equal(right(&c, 1, w0 + (uint64_t)i), MEM_WRITE);
        assert_int_equal(right(&c, 0, w0 + (uint64_t)i), MEM_ABSENT);
    }
    uint64_t faults = s.read_faults + s.write_faults;
    for (int i = 0; i < ahead; i++) /* the home's data came along, no fault */
        assert_int_equal(rd64(&c, 1, (w0 + (uint64_t)i) * PG + 8), 500 + (w0 - p0) + (uint64_t)i);
    s = stats(&c, 1);
    assert_int_equal(s.read_faults + s.write_faults, faults);
    check_invariants(&c);

    /* the home streams back over pages node 1 owns: its write-ahead recalls them,
     * except one it had faulted on twice before */
    uint64_t shared = w0 + 2;
    wr64(&c, 0, shared * PG + 8, 77);                   /* node 0 faults on it ... */
    wr64(&c, 1, shared * PG + 8, 78);                   /* ... node 1 takes it back ... */
    assert_int_equal(rd64(&c, 0, shared * PG + 8), 78); /* ... and node 0 again */
    wr64(&c, 1, shared * PG + 8, 79);
    assert_true(quiesce(&c, 2000));
    write_stream(&c, 0, w0 - (uint64_t)run, run);
    assert_true(quiesce(&c, 2000));
    assert_int_equal(stats(&c, 0).write_ahead, (uint64_t)ahead - 1);
    for (int i = 0; i < ahead; i++) {
        uint64_t q = w0 + (uint64_t)i;
        assert_int_equal(right(&c, 0, q), q == shared ? MEM_ABSENT : MEM_WRITE);
        assert_int_equal(right(&c, 1, q), q == shared ? MEM_WRITE : MEM_ABSENT);
    }
    assert_int_equal(rd64(&c, 0, (w0 + 1) * PG + 8), 500 + (w0 - p0) + 1);
    assert_int_equal(rd64(&c, 0, shared * PG + 8), 79);
    check_invariants(&c);
    cluster_destroy(&c);
}

struct interleaved_writer {
    struct cluster *c;
    uint64_t stream, other;
    int rc;
};

/* stream, other, stream + 1, other + 5, stream + 2, other + 10, stream + 3 */
static void *interleaved_main(void *arg)
{
    struct interleaved_writer *w = arg;
    uint64_t v = 1;
    for (int i = 0; i < 4 && !w->rc; i++) {
        w->rc = guest_mem_write(&w->c->node[1].mem, (w->stream + (uint64_t)i) * PG, &v, 8);
        if (i < 3 && !w->rc)
            w->rc = guest_mem_write(&w->c->node[1].mem, (w->other + 5 * (uint64_t)i) * PG, &v, 8);
    }
    return NULL;
}

/* Other faults between the pages of a stream (the guest clearing pages one after
 * another also updates its counters in between) do not hide it. */
static void test_write_ahead_interleaved(void **state)
{
    struct cluster c;
    cluster_init(&c, 2, HOME_CONTIG, true, 0);
    uint64_t p0 = page_homed_at(&c, 0, 0), q0 = page_homed_at(&c, 0, 16);
    assert_true(home_of(&c, q0 + 10) == 0 && p0 + 4 + DSM_WRITEAHEAD_PAGES <= q0);
    struct interleaved_writer w = {.c = &c, .stream = p0, .other = q0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, interleaved_main, &w), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_true(quiesce(&c, 2000));
    struct dsm_stats s = stats(&c, 1);
    assert_int_equal(s.write_faults, 7);
    assert_int_equal(s.write_ahead, DSM_WRITEAHEAD_PAGES); /* after the 4th of the stream */
    for (int i = 4; i < 4 + DSM_WRITEAHEAD_PAGES; i++)
        assert_int_equal(right(&c, 1, p0 + (uint64_t)i), MEM_WRITE);
    assert_int_equal(right(&c, 1, q0 + 1), MEM_ABSENT); /* the others: no stream */
    check_invariants(&c);
    cluster_destroy(&c);
}

/* A written stream stops where another node's memory begins: those pages may be in
 * use there, and the writer has never faulted on them. */
static void test_write_ahead_stops_at_home_boundary(void **state)
{
    struct cluster c;
    cluster_init(&c, 3, HOME_CONTIG, true, 0);
    uint64_t first1 = page_homed_at(&c, 1, 0); /* node 1's first page */
    assert_true(home_of(&c, first1 - 1) == 0 && first1 >= 6);
    write_stream(&c, 2, first1 - 6, 4); /* four pages of node 0 in a row */
    assert_true(quiesce(&c, 2000));
    assert_int_equal(stats(&c, 2).write_ahead, 2); /* the last two of node 0, no more */
    assert_int_equal(right(&c, 2, first1 - 1), MEM_WRITE);
    assert_int_equal(right(&c, 2, first1), MEM_ABSENT);
    assert_int_equal(right(&c, 1, first1), MEM_WRITE);
    check_invariants(&c);
    cluster_destroy(&c);
}

/* ---- shutdown ---- */

struct hooked {
    struct async a;
    _Atomic int in_guest, leaves, enters;
};

static void hk_leave(void *ctx)
{
    struct hooked *h = ctx;
    atomic_store(&h->in_guest, 0);
    atomic_fetch_add(&h->leaves, 1);
}

static void hk_enter(void *ctx)
{
    struct hooked *h = ctx;
    atomic_store(&h->in_guest, 1);
    atomic_fetch_add(&h->enters, 1);
}

static void *hooked_main(void *arg)
{
    struct hooked *h = arg;
    guest_mem_set_thread_hooks(
        &(struct guest_mem_thread_hooks){.leave = hk_leave, .enter = hk_enter, .ctx = h});
    atomic_store(&h->in_guest, 1);
    return async_main(&h->a);
}

static void test_shutdown(void **state)
{
    struct cluster c;
    cluster_init(&c, 2, HOME_CONTIG, false, 0);
    uint64_t p = page_homed_at(&c, 0, 2), g = p << GUEST_PAGE_SHIFT;
    uint64_t v = 0;
    struct hooked h = {.a = {.c = &c, .node = 1, .gpa = g, .buf = &v, .len = 8}};
    assert_int_equal(pthread_create(&h.a.t, NULL, hooked_main, &h), 0);
    struct item it;
    while (!inbox_peek(&c, 0, &it)) /* the request is out: the fault blocks */
        usleep(100);
    usleep(10000);
    assert_false(atomic_load(&h.a.done));
    assert_int_equal(atomic_load(&h.in_guest), 0); /* out of the guest while blocked */
    dsm_shutdown(c.node[1].d);
    for (int i = 0; i < 5000 && !atomic_load(&h.a.done); i++)
        usleep(1000);
    assert_true(atomic_load(&h.a.done));
    pthread_join(h.a.t, NULL);
    assert_int_equal(h.a.rc, -ESHUTDOWN);
    assert_int_equal(atomic_load(&h.in_guest), 1); /* back in before returning */
    assert_int_equal(atomic_load(&h.leaves), atomic_load(&h.enters));
    /* later faults fail at once, local accesses with rights still work */
    assert_int_equal(guest_mem_read(&c.node[1].mem, g + PG * 0, &v, 8), -ESHUTDOWN);
    assert_int_equal(dsm_fault(c.node[1].d, g, MEM_WRITE), -ESHUTDOWN);
    uint64_t own = page_homed_at(&c, 1, 0) << GUEST_PAGE_SHIFT;
    assert_int_equal(guest_mem_write(&c.node[1].mem, own, &v, 8), 0);
    /* the grant still arrives: installed, confirmed, nothing leaks or breaks */
    pump_all(&c);
    assert_int_equal(stats(&c, 0).bad_messages, 0);
    assert_int_equal(stats(&c, 1).bad_messages, 0);
    /* the other node keeps working on its pages */
    wr64(&c, 0, g, 5);
    cluster_destroy(&c);
}

/* Shutdown with several blocked faults on a threaded network whose home never answers. */
static void test_shutdown_many(void **state)
{
    struct cluster c;
    cluster_init(&c, 2, HOME_CONTIG, false, 0); /* node 0 is never pumped */
    uint64_t v[6];
    struct async a[6];
    for (int i = 0; i < 6; i++)
        async_start(&a[i], &c, 1, page_homed_at(&c, 0, i % 3) << GUEST_PAGE_SHIFT, &v[i], 8, i & 1);
    while (inbox_len(&c, 0) < 3)
        usleep(100);
    usleep(10000);
    dsm_shutdown(c.node[1].d);
    for (int i = 0; i < 6; i++) {
        pthread_join(a[i].t, NULL);
        assert_int_equal(a[i].rc, -ESHUTDOWN);
    }
    cluster_destroy(&c); /* frees the undelivered messages and any leftovers */
}

/* A request the network cannot send fails the fault with -EIO (dsm.h). */
static void test_send_failure(void **state)
{
    struct cluster c;
    cluster_init(&c, 2, HOME_CONTIG, false, 0);
    uint64_t g = page_homed_at(&c, 0, 1) << GUEST_PAGE_SHIFT;
    atomic_store(&c.broken, 1u << 0);
    uint64_t v = 0;
    struct async a;
    async_start(&a, &c, 1, g, &v, 8, false);
    for (int i = 0; i < 2000 && !atomic_load(&a.done); i++)
        usleep(1000);
    if (!atomic_load(&a.done)) {
        dsm_shutdown(c.node[1].d);
        pthread_join(a.t, NULL);
        fail_msg("a fault whose request could not be sent hangs (rc after shutdown %d)", a.rc);
    }
    pthread_join(a.t, NULL);
    assert_int_equal(a.rc, -EIO);
    /* the link comes back: the next fault asks again */
    atomic_store(&c.broken, 0);
    assert_int_equal(access_sync(&c, 1, g, &v, 8, false), 0);
    assert_int_equal(right(&c, 1, g >> GUEST_PAGE_SHIFT), MEM_READ);
    cluster_destroy(&c);
}

/* ---- revocations held back for the vCPUs that waited for a page ---- */

/* A thread whose enter hook stops at a gate: a granted waiter that has not yet
 * run, at will. */
struct gated {
    struct async a;
    pthread_mutex_t m;
    pthread_cond_t cv;
    bool closed;
    bool at_gate;
};

static void gate_leave(void *ctx) {}

static void gate_enter(void *ctx)
{
    struct gated *g = ctx;
    pthread_mutex_lock(&g->m);
    g->at_gate = true;
    pthread_cond_broadcast(&g->cv);
    while (g->closed)
        pthread_cond_wait(&g->cv, &g->m);
    g->at_gate = false;
    pthread_mutex_unlock(&g->m);
}

static void *gated_main(void *arg)
{
    struct gated *g = arg;
    guest_mem_set_thread_hooks(
        &(struct guest_mem_thread_hooks){.leave = gate_leave, .enter = gate_enter, .ctx = g});
    return async_main(&g->a);
}

static void gated_start(struct gated *g, struct cluster *c, int node, uint64_t gpa, void *buf)
{
    memset(g, 0, sizeof(*g));
    g->a = (struct async){.c = c, .node = node, .gpa = gpa, .buf = buf, .len = 8};
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->closed = true;
    assert_int_equal(pthread_create(&g->a.t, NULL, gated_main, g), 0);
}

/* Pumps until the gated thread waits at its gate with the grant installed. */
static void gated_wait(struct gated *g)
{
    for (int i = 0; i < 50000; i++) {
        pthread_mutex_lock(&g->m);
        bool at = g->at_gate;
        pthread_mutex_unlock(&g->m);
        if (at) return;
        if (!pump_all(g->a.c)) usleep(100);
    }
    fail_msg("the gated access never got its grant");
}

static void gated_open(struct gated *g)
{
    pthread_mutex_lock(&g->m);
    g->closed = false;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->m);
}

static void wait_inbox(struct cluster *c, int node)
{
    struct item it;
    for (int i = 0; i < 50000 && !inbox_peek(c, node, &it); i++)
        usleep(100);
}

static void test_deferred_revocation(void **state)
{
    struct cluster c;
    cluster_init(&c, 3, HOME_CONTIG, false, 0);
    uint64_t p = page_homed_at(&c, 0, 6), g = p << GUEST_PAGE_SHIFT;
    wr64(&c, 0, g, 0x51);

    /* holder side: node 1 got a read copy, its vCPU has not used it yet */
    uint64_t v = 0;
    struct gated gt;
    gated_start(&gt, &c, 1, g, &v);
    gated_wait(&gt);
    pump_all(&c);
    RIGHTS(&c, p, MEM_READ, MEM_READ, MEM_ABSENT);
    uint64_t w = 0x52;
    struct async a;
    async_start(&a, &c, 2, g, &w, 8, true);
    wait_inbox(&c, 0);
    assert_true(pump_node(&c, 0)); /* node 2's write request: INV to node 1 */
    struct dsm_stats s1 = stats(&c, 1);
    assert_true(pump_node(&c, 1)); /* the INV is held */
    assert_int_equal(stats(&c, 1).deferred, s1.deferred + 1);
    assert_int_equal(stats(&c, 1).invalidations, s1.invalidations);
    assert_int_equal(right(&c, 1, p), MEM_READ);
    assert_int_equal(inbox_len(&c, 0), 0); /* no INV_ACK yet */
    assert_int_equal(pump_all(&c), 0);     /* and nothing moves */
    gated_open(&gt);
    pthread_join(gt.a.t, NULL);
    assert_int_equal(gt.a.rc, 0);
    assert_int_equal(v, 0x51);             /* the waiter read the copy it was given */
    assert_int_equal(inbox_len(&c, 1), 1); /* RESUME */
    assert_int_equal(async_finish(&a), 0);
    RIGHTS(&c, p, MEM_ABSENT, MEM_ABSENT, MEM_WRITE);
    assert_int_equal(stats(&c, 1).invalidations, s1.invalidations + 1);

    /* home side: the home's vCPU waits for a read copy fetched from node 2, and
     * node 1's write request must not take it away first */
    gated_start(&gt, &c, 0, g, &v);
    gated_wait(&gt);
    pump_all(&c);
    RIGHTS(&c, p, MEM_READ, MEM_ABSENT, MEM_READ);
    w = 0x53;
    async_start(&a, &c, 1, g, &w, 8, true);
    wait_inbox(&c, 0);
    struct dsm_stats s0 = stats(&c, 0);
    assert_true(pump_node(&c, 0)); /* the request is held */
    assert_int_equal(stats(&c, 0).deferred, s0.deferred + 1);
    assert_int_equal(stats(&c, 0).requests_served, s0.requests_served);
    assert_int_equal(pump_all(&c), 0);
    RIGHTS(&c, p, MEM_READ, MEM_ABSENT, MEM_READ);
    gated_open(&gt);
    pthread_join(gt.a.t, NULL);
    assert_int_equal(gt.a.rc, 0);
    assert_int_equal(v, 0x52);
    assert_int_equal(async_finish(&a), 0);
    RIGHTS(&c, p, MEM_ABSENT, MEM_WRITE, MEM_ABSENT);
    assert_int_equal(stats(&c, 0).requests_served, s0.requests_served + 1);
    assert_int_equal(rd64(&c, 2, g), 0x53);
    check_invariants(&c);
    cluster_destroy(&c);
}

/* ---- malformed messages ---- */

struct snap {
    uint8_t rights[MAXN][NPAGES];
    struct dsm_stats st[MAXN];
    int inbox[MAXN];
    long inflight;
};

static void take_snap(struct cluster *c, struct snap *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < c->n; i++) {
        for (uint64_t p = 0; p < NPAGES; p++)
            s->rights[i][p] = right(c, i, p);
        s->st[i] = stats(c, i);
        s->inbox[i] = inbox_len(c, i);
    }
    s->inflight = atomic_load(&c->inflight);
}

/* Delivers a message that must be rejected: bad_messages +1 on `dst`, nothing
 * else changes, nothing is sent. Problems are printed and counted in
 * rejection_failures (checked at the end of the test, so that all are listed). */
static int rejection_failures;

static void expect_rejected(struct cluster *c, const char *what, int dst, int src, int type,
                            int right_, uint64_t gpa, bool has_data, const void *page)
{
    struct snap before, after;
    take_snap(c, &before);
    struct dsm_msg m = {
        .type = (uint8_t)type, .right = (uint8_t)right_, .has_data = has_data, .gpa = gpa};
    dsm_receive(c->node[dst].d, src, &m, page);
    take_snap(c, &after);
    const char *problem = NULL;
    if (after.st[dst].bad_messages != before.st[dst].bad_messages + 1)
        problem = "not counted as bad";
    after.st[dst].bad_messages = before.st[dst].bad_messages;
    if (memcmp(before.rights, after.rights, sizeof(before.rights)))
        problem = "rights changed";
    else if (memcmp(before.st, after.st, sizeof(before.st)))
        problem = "statistics changed";
    else if (memcmp(before.inbox, after.inbox, sizeof(before.inbox)) ||
             before.inflight != after.inflight)
        problem = "messages were sent";
    if (problem) {
        fprintf(stderr, "  malformed message accepted: %s: %s\n", what, problem);
        rejection_failures++;
    }
}

static void test_malformed(void **state)
{
    struct cluster c;
    cluster_init(&c, 3, HOME_CONTIG, false, 0);
    rejection_failures = 0;
    static uint8_t page[PG];
    uint64_t p0 = page_homed_at(&c, 0, 3), g0 = p0 << GUEST_PAGE_SHIFT;
    uint64_t g1 = page_homed_at(&c, 1, 3) << GUEST_PAGE_SHIFT;
    /* some shared state first, so that there is something to damage */
    assert_int_equal(rd64(&c, 1, g0), 0);
    assert_int_equal(rd64(&c, 2, g1), 0);

    expect_rejected(&c, "gpa past the end", 0, 1, DSM_REQ, MEM_READ, NPAGES * PG, false, NULL);
    expect_rejected(&c, "gpa far out", 0, 1, DSM_REQ, MEM_READ, 1ull << 52, false, NULL);
    expect_rejected(&c, "gpa ~0", 0, 1, DSM_GRANT, MEM_READ, ~0ull & GUEST_PAGE_MASK, false, NULL);
    expect_rejected(&c, "unaligned gpa", 0, 1, DSM_REQ, MEM_WRITE, g0 + 8, false, NULL);
    expect_rejected(&c, "unaligned grant", 1, 0, DSM_GRANT, MEM_WRITE, g0 + 1, true, page);
    expect_rejected(&c, "REQ to a non-home node", 1, 2, DSM_REQ, MEM_WRITE, g0, false, NULL);
    expect_rejected(&c, "REQ for nothing", 0, 1, DSM_REQ, MEM_ABSENT, g0, false, NULL);
    expect_rejected(&c, "REQ with a bad right", 0, 1, DSM_REQ, 3, g0, false, NULL);
    expect_rejected(&c, "GRANT with has_data and no payload", 2, 0, DSM_GRANT, MEM_READ, g0, true,
                    NULL);
    expect_rejected(&c, "DONE for a non-busy page", 0, 1, DSM_DONE, 0, g0, false, NULL);
    expect_rejected(&c, "DONE to a non-home node", 1, 2, DSM_DONE, 0, g0, false, NULL);
    expect_rejected(&c, "FETCH_REPLY without a fetch", 0, 1, DSM_FETCH_REPLY, MEM_READ, g0, true,
                    page);
    expect_rejected(&c, "INV_ACK without an invalidation", 0, 1, DSM_INV_ACK, 0, g0, false, NULL);
    expect_rejected(&c, "unknown type", 0, 1, DSM_MSG_TYPES, MEM_READ, g0, false, NULL);
    expect_rejected(&c, "type 255", 0, 1, 255, MEM_READ, g0, false, NULL);
    expect_rejected(&c, "src -1", 0, -1, DSM_REQ, MEM_READ, g0, false, NULL);
    expect_rejected(&c, "src = nnodes", 0, 3, DSM_REQ, MEM_READ, g0, false, NULL);
    expect_rejected(&c, "src 64", 0, 64, DSM_REQ, MEM_READ, g0, false, NULL);
    expect_rejected(&c, "src 1000", 1, 1000, DSM_INV, MEM_ABSENT, g0, false, NULL);
    expect_rejected(&c, "RESUME from another node", 0, 1, DSM_RESUME, 0, g0, false, NULL);

    /* beyond the list in dsm.h: messages from the wrong peer */
    expect_rejected(&c, "GRANT from a non-home node", 2, 1, DSM_GRANT, MEM_WRITE, g0, true, page);
    expect_rejected(&c, "GRANT nobody asked for", 2, 0, DSM_GRANT, MEM_WRITE, g0, true, page);
    expect_rejected(&c, "INV from a non-home node", 1, 2, DSM_INV, MEM_ABSENT, g0, false, NULL);
    expect_rejected(&c, "FETCH from a non-home node", 1, 2, DSM_FETCH, MEM_READ, g0, false, NULL);
    expect_rejected(&c, "FETCH to a node that does not own the page", 1, 0, DSM_FETCH, MEM_READ, g0,
                    false, NULL);

    assert_int_equal(rejection_failures, 0);
    /* everything still works */
    wr64(&c, 2, g0, 99);
    assert_int_equal(rd64(&c, 1, g0), 99);
    assert_int_equal(rd64(&c, 0, g0), 99);
    check_invariants(&c);
    cluster_destroy(&c);
}

/* Malformed messages in the middle of a transaction leave it intact. */
static void test_malformed_in_transaction(void **state)
{
    struct cluster c;
    cluster_init(&c, 3, HOME_CONTIG, false, 0);
    rejection_failures = 0;
    static uint8_t junk[PG];
    memset(junk, 0xee, sizeof(junk));
    uint64_t p0 = page_homed_at(&c, 0, 4), g0 = p0 << GUEST_PAGE_SHIFT;

    /* a fetch: node 1 owns the page, node 2 wants to write it */
    wr64(&c, 1, g0, 0xabc);
    uint64_t v = 0xdef;
    struct async a;
    async_start(&a, &c, 2, g0 + 8, &v, 8, true);
    struct item it;
    while (!inbox_peek(&c, 0, &it))
        usleep(50);
    assert_true(pump_node(&c, 0)); /* the REQ: the home fetches from node 1 */
    assert_true(inbox_peek(&c, 1, &it));
    assert_int_equal(it.m.type, DSM_FETCH);
    expect_rejected(&c, "FETCH_REPLY from the wrong node", 0, 2, DSM_FETCH_REPLY, MEM_ABSENT, g0,
                    true, junk);
    expect_rejected(&c, "FETCH_REPLY without the page", 0, 1, DSM_FETCH_REPLY, MEM_ABSENT, g0,
                    false, NULL);
    expect_rejected(&c, "INV_ACK during a fetch", 0, 1, DSM_INV_ACK, 0, g0, false, NULL);
    expect_rejected(&c, "DONE during a fetch", 0, 2, DSM_DONE, 0, g0, false, NULL);
    assert_int_equal(rejection_failures, 0);
    assert_int_equal(async_finish(&a), 0);
    RIGHTS(&c, p0, MEM_ABSENT, MEM_ABSENT, MEM_WRITE);
    assert_int_equal(rd64(&c, 2, g0), 0xabc);

    /* an invalidation: all three share, node 1 upgrades, node 2 must ack */
    assert_int_equal(rd64(&c, 1, g0 + 8), 0xdef);
    RIGHTS(&c, p0, MEM_READ, MEM_READ, MEM_READ);
    v = 0x123;
    async_start(&a, &c, 1, g0 + 16, &v, 8, true);
    while (!inbox_peek(&c, 0, &it))
        usleep(50);
    assert_true(pump_node(&c, 0)); /* the REQ: INV to node 2 */
    assert_true(inbox_peek(&c, 2, &it));
    assert_int_equal(it.m.type, DSM_INV);
    expect_rejected(&c, "INV_ACK from the requester", 0, 1, DSM_INV_ACK, 0, g0, false, NULL);
    expect_rejected(&c, "INV_ACK from the home itself", 0, 0, DSM_INV_ACK, 0, g0, false, NULL);
    expect_rejected(&c, "FETCH_REPLY during an invalidation", 0, 2, DSM_FETCH_REPLY, MEM_ABSENT, g0,
                    true, junk);
    assert_int_equal(right(&c, 2, p0), MEM_READ);
    assert_true(pump_node(&c, 2)); /* the INV */
    assert_int_equal(right(&c, 2, p0), MEM_ABSENT);
    assert_true(pump_node(&c, 0)); /* its INV_ACK: GRANT to node 1 */
    assert_true(inbox_peek(&c, 1, &it));
    assert_int_equal(it.m.type, DSM_GRANT);
    expect_rejected(&c, "a second INV_ACK", 0, 2, DSM_INV_ACK, 0, g0, false, NULL);
    /* the page waits for node 1's DONE: another node's DONE does not count */
    expect_rejected(&c, "DONE from a node that got no grant", 0, 2, DSM_DONE, 0, g0, false, NULL);
    expect_rejected(&c, "DONE from the home itself", 0, 0, DSM_DONE, 0, g0, false, NULL);
    assert_int_equal(rejection_failures, 0);
    assert_int_equal(async_finish(&a), 0);
    RIGHTS(&c, p0, MEM_ABSENT, MEM_WRITE, MEM_ABSENT);
    assert_int_equal(rd64(&c, 0, g0 + 16), 0x123);
    assert_int_equal(rd64(&c, 2, g0), 0xabc);
    check_invariants(&c);
    cluster_destroy(&c);
}

/* ---- stress: emulated vCPUs on every node ---- */

#define SLOT_STRIDE 64
#define CHAN_WORDS  8

struct stress;

struct vcpu {
    struct mem_tcache tc; /* first */
    _Atomic int in_guest;
    _Atomic uint64_t flush_seq, flush_done;
    struct stress *s;
    struct node *node;
    int nid, idx, gid;
    uint64_t n_fadd, n_fadd2, n_cas, slot_seq;
    uint64_t sent, recv;
    pthread_t t;
};

struct stress {
    struct cluster c;
    int per_node;
    uint64_t ops;
    uint64_t chan_msgs;
    uint64_t p_fadd, p_cas, p_slots, p_data[MAXN], p_flag[MAXN], p_ack[MAXN];
    struct vcpu v[MAXN * 3];
    pthread_barrier_t start;
    _Atomic int errors;
    _Atomic int running;
    char first_error[256];
    pthread_mutex_t err_lock;
};

static void verr(struct vcpu *v, const char *fmt, ...)
{
    struct stress *s = v->s;
    if (atomic_fetch_add(&s->errors, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&s->err_lock);
        int n =
            snprintf(s->first_error, sizeof(s->first_error), "node %d vcpu %d: ", v->nid, v->idx);
        vsnprintf(s->first_error + n, sizeof(s->first_error) - (size_t)n, fmt, ap);
        pthread_mutex_unlock(&s->err_lock);
        va_end(ap);
    }
}

static uint64_t v_shootdown(struct mem_tcache *tc, uint64_t gpa)
{
    struct vcpu *v = (struct vcpu *)tc;
    return atomic_fetch_add(&v->flush_seq, 1) + 1;
}

static void v_shootdown_wait(struct mem_tcache *tc, uint64_t seq)
{
    struct vcpu *v = (struct vcpu *)tc;
    for (unsigned spins = 0; atomic_load(&v->in_guest) && atomic_load(&v->flush_done) < seq;
         spins++)
        if (spins < 200)
            __builtin_ia32_pause();
        else
            sched_yield();
}

static void v_leave(void *ctx)
{
    struct vcpu *v = ctx;
    atomic_store(&v->in_guest, 0);
}

static void v_ack(struct vcpu *v)
{
    atomic_store(&v->flush_done, atomic_load(&v->flush_seq));
}

static void v_enter(void *ctx)
{
    struct vcpu *v = ctx;
    atomic_store(&v->in_guest, 1);
    v_ack(v); /* drops everything shot down while out */
}

/* An instruction boundary: pending flushes are acknowledged, every host
 * pointer obtained before is dead. */
static void boundary(struct vcpu *v)
{
    v_ack(v);
}

static uint64_t *vptr(struct vcpu *v, uint64_t page, uint64_t off, enum mem_right want)
{
    int err = 0;
    if (!atomic_load(&v->in_guest)) verr(v, "access out of the guest");
    uint8_t *h = guest_mem_access(&v->node->mem, (page << GUEST_PAGE_SHIFT) + off, want, &err);
    if (!h) {
        verr(v, "access to page %llu failed: %d", (unsigned long long)page, err);
        static uint64_t dummy[PG / 8];
        return &dummy[off / 8];
    }
    if (!atomic_load(&v->in_guest)) verr(v, "fault returned out of the guest");
    return (uint64_t *)h;
}

static void op_fadd(struct vcpu *v, uint64_t page, uint64_t off)
{
    uint64_t *p = vptr(v, page, off, MEM_WRITE);
    __atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
}

static void op_cas(struct vcpu *v)
{
    uint64_t *p = vptr(v, v->s->p_cas, 8, MEM_READ);
    uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
    boundary(v);
    for (;;) {
        p = vptr(v, v->s->p_cas, 8, MEM_WRITE);
        if (__atomic_compare_exchange_n(p, &old, old + 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            break;
        boundary(v);
    }
}

static void op_slot(struct vcpu *v)
{
    uint64_t off = (uint64_t)v->gid * SLOT_STRIDE;
    uint64_t *p = vptr(v, v->s->p_slots, off, MEM_READ);
    uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    if (cur != v->slot_seq)
        verr(v, "slot holds %llu, last stored %llu", (unsigned long long)cur,
             (unsigned long long)v->slot_seq);
    boundary(v);
    p = vptr(v, v->s->p_slots, off, MEM_WRITE);
    __atomic_store_n(p, ++v->slot_seq, __ATOMIC_RELAXED);
    boundary(v);
    p = vptr(v, v->s->p_slots, off, MEM_READ);
    cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    if (cur != v->slot_seq)
        verr(v, "slot read back %llu, stored %llu", (unsigned long long)cur,
             (unsigned long long)v->slot_seq);
}

/* Channel k: node k's vCPU 0 writes, node k+1's vCPU 0 reads and acknowledges. */
static void chan_write_step(struct vcpu *v)
{
    struct stress *s = v->s;
    int k = v->nid;
    if (v->sent >= s->chan_msgs) return;
    uint64_t ack = __atomic_load_n(vptr(v, s->p_ack[k], 0, MEM_READ), __ATOMIC_RELAXED);
    boundary(v);
    if (ack > v->sent)
        verr(v, "channel %d: ack %llu ahead of %llu", k, (unsigned long long)ack,
             (unsigned long long)v->sent);
    if (ack != v->sent) return;
    uint64_t seq = v->sent + 1;
    uint64_t *d = vptr(v, s->p_data[k], 0, MEM_WRITE);
    for (int j = 0; j < CHAN_WORDS; j++)
        __atomic_store_n(&d[j], seq * 16 + (uint64_t)j, __ATOMIC_RELAXED);
    boundary(v);
    __atomic_store_n(vptr(v, s->p_flag[k], 0, MEM_WRITE), seq, __ATOMIC_RELAXED);
    boundary(v);
    v->sent = seq;
}

static void chan_read_step(struct vcpu *v)
{
    struct stress *s = v->s;
    int k = (v->nid + s->c.n - 1) % s->c.n;
    if (v->recv >= s->chan_msgs) return;
    uint64_t flag = __atomic_load_n(vptr(v, s->p_flag[k], 0, MEM_READ), __ATOMIC_RELAXED);
    boundary(v);
    if (flag == v->recv) return;
    if (flag != v->recv + 1) {
        verr(v, "channel %d: flag %llu, expected %llu or %llu", k, (unsigned long long)flag,
             (unsigned long long)v->recv, (unsigned long long)v->recv + 1);
        v->recv = flag;
        return;
    }
    uint64_t *d = vptr(v, s->p_data[k], 0, MEM_READ);
    for (int j = 0; j < CHAN_WORDS; j++) {
        uint64_t x = __atomic_load_n(&d[j], __ATOMIC_RELAXED);
        if (x != flag * 16 + (uint64_t)j) {
            verr(v, "channel %d: message %llu word %d reads %#llx", k, (unsigned long long)flag, j,
                 (unsigned long long)x);
            break;
        }
    }
    boundary(v);
    __atomic_store_n(vptr(v, s->p_ack[k], 0, MEM_WRITE), flag, __ATOMIC_RELAXED);
    boundary(v);
    v->recv = flag;
}

static void *vcpu_main(void *arg)
{
    struct vcpu *v = arg;
    struct stress *s = v->s;
    guest_mem_set_thread_hooks(
        &(struct guest_mem_thread_hooks){.leave = v_leave, .enter = v_enter, .ctx = v});
    atomic_store(&v->in_guest, 1);
    guest_mem_register_tcache(&v->node->mem, &v->tc);
    pthread_barrier_wait(&s->start);
    bool chan = v->idx == 0 && s->chan_msgs;
    for (uint64_t i = 0; i < s->ops && !atomic_load(&s->errors); i++) {
        switch ((i + (uint64_t)v->gid) % 4) {
        case 0:
            op_fadd(v, s->p_fadd, 0);
            v->n_fadd++;
            break;
        case 1:
            op_cas(v);
            v->n_cas++;
            break;
        case 2: op_slot(v); break;
        case 3:
            op_fadd(v, s->p_slots, PG / 2);
            v->n_fadd2++;
            break;
        }
        boundary(v);
        if (chan) {
            chan_write_step(v);
            chan_read_step(v);
        }
    }
    while (chan && (v->sent < s->chan_msgs || v->recv < s->chan_msgs) && !atomic_load(&s->errors)) {
        uint64_t progress = v->sent + v->recv;
        chan_write_step(v);
        chan_read_step(v);
        boundary(v);
        if (v->sent + v->recv == progress) { /* idle: halt (out of the guest) a moment */
            v_leave(v);
            usleep(20);
            v_enter(v);
        }
    }
    /* out of the guest for good before leaving the tcache list (a shoot-down in
     * progress holds its lock while it waits for us) */
    atomic_store(&v->in_guest, 0);
    guest_mem_unregister_tcache(&v->node->mem, &v->tc);
    guest_mem_set_thread_hooks(NULL);
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *e = getenv(name);
    return e && *e ? strtoull(e, NULL, 0) : dflt;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void dump_state(struct stress *s)
{
    struct cluster *c = &s->c;
    fprintf(stderr, "stress stuck: inflight %ld, running vcpus %d\n", atomic_load(&c->inflight),
            atomic_load(&s->running));
    for (int i = 0; i < c->n; i++) {
        fprintf(stderr, " node %d inbox %d:", i, inbox_len(c, i));
        pthread_mutex_lock(&c->node[i].lock);
        for (struct item *it = c->node[i].head; it; it = it->next)
            fprintf(stderr, " [%d->%d t%d r%d p%llu]", it->src, i, it->m.type, it->m.right,
                    (unsigned long long)(it->m.gpa >> 12));
        pthread_mutex_unlock(&c->node[i].lock);
        fprintf(stderr, "\n");
        dsm_print_stats(c->node[i].d, stderr, 4);
    }
    for (int i = 0; i < c->n * s->per_node; i++) {
        struct vcpu *v = &s->v[i];
        fprintf(stderr, " vcpu %d.%d in_guest %d seq %llu done %llu sent %llu recv %llu\n", v->nid,
                v->idx, atomic_load(&v->in_guest), (unsigned long long)atomic_load(&v->flush_seq),
                (unsigned long long)atomic_load(&v->flush_done), (unsigned long long)v->sent,
                (unsigned long long)v->recv);
    }
    for (uint64_t p = 0; p < NPAGES; p++) {
        bool interesting = false;
        for (int i = 0; i < c->n; i++)
            interesting |= right(c, i, p) != (home_of(c, p) == i ? MEM_WRITE : MEM_ABSENT);
        if (!interesting) continue;
        fprintf(stderr, " page %llu home %d rights", (unsigned long long)p, home_of(c, p));
        for (int i = 0; i < c->n; i++)
            fprintf(stderr, " %d", right(c, i, p));
        fprintf(stderr, "\n");
    }
}

static void stress(int n, int per_node, enum home_kind kind, int reorder_pct, uint64_t ops)
{
    struct stress *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    ops = env_u64("UNUM_DSM_OPS", ops);
    if (getenv("UNUM_DSM_REORDER")) reorder_pct = (int)env_u64("UNUM_DSM_REORDER", 0);
    cluster_init(&s->c, n, kind, true, reorder_pct);
    struct cluster *c = &s->c;
    s->per_node = per_node;
    s->ops = ops;
    s->chan_msgs = ops / 20 + 1;
    /* pages chosen to spread over the homes in both layouts */
    s->p_fadd = 2;
    s->p_cas = NPAGES - 5;
    s->p_slots = NPAGES / 2 + 1;
    for (int k = 0; k < n; k++) {
        s->p_data[k] = (uint64_t)(4 + 13 * k);
        s->p_flag[k] = (uint64_t)(9 + 13 * k);
        s->p_ack[k] = (uint64_t)(12 + 13 * k);
    }
    pthread_mutex_init(&s->err_lock, NULL);
    pthread_barrier_init(&s->start, NULL, (unsigned)(n * per_node + 1));
    atomic_store(&s->running, n * per_node);
    double t0 = now_s();
    for (int i = 0; i < n * per_node; i++) {
        struct vcpu *v = &s->v[i];
        v->s = s;
        v->nid = i / per_node;
        v->idx = i % per_node;
        v->gid = i;
        v->node = &c->node[v->nid];
        v->tc.shootdown = v_shootdown;
        v->tc.wait = v_shootdown_wait;
        assert_int_equal(pthread_create(&v->t, NULL, vcpu_main, v), 0);
    }
    pthread_barrier_wait(&s->start);
    double deadline = t0 + (double)env_u64("UNUM_DSM_TIMEOUT", 120);
    while (atomic_load(&s->running) > 0) {
        if (now_s() > deadline) {
            dump_state(s);
            fail_msg("stress did not finish (n=%d, reorder %d%%)", n, reorder_pct);
        }
        usleep(1000);
    }
    for (int i = 0; i < n * per_node; i++)
        pthread_join(s->v[i].t, NULL);
    double t1 = now_s();
    if (atomic_load(&s->errors)) fail_msg("%s", s->first_error);
    assert_true(quiesce(c, 5000));

    uint64_t fadd = 0, fadd2 = 0, cas = 0;
    for (int i = 0; i < n * per_node; i++) {
        fadd += s->v[i].n_fadd;
        fadd2 += s->v[i].n_fadd2;
        cas += s->v[i].n_cas;
    }
    check_invariants(c);
    /* exact totals, read through every node */
    for (int nd = 0; nd < n; nd++) {
        assert_int_equal(rd64(c, nd, s->p_fadd << GUEST_PAGE_SHIFT), fadd);
        assert_int_equal(rd64(c, nd, (s->p_cas << GUEST_PAGE_SHIFT) + 8), cas);
        assert_int_equal(rd64(c, nd, (s->p_slots << GUEST_PAGE_SHIFT) + PG / 2), fadd2);
        for (int i = 0; i < n * per_node; i++)
            assert_int_equal(
                rd64(c, nd, (s->p_slots << GUEST_PAGE_SHIFT) + (uint64_t)i * SLOT_STRIDE),
                s->v[i].slot_seq);
        for (int k = 0; k < n; k++) {
            assert_int_equal(rd64(c, nd, s->p_flag[k] << GUEST_PAGE_SHIFT), s->chan_msgs);
            assert_int_equal(rd64(c, nd, s->p_ack[k] << GUEST_PAGE_SHIFT), s->chan_msgs);
        }
    }
    uint64_t slots = 0;
    for (int i = 0; i < n * per_node; i++)
        slots += s->v[i].slot_seq;
    assert_int_equal(fadd + fadd2 + cas + slots, (uint64_t)n * (uint64_t)per_node * ops);
    check_invariants(c);
    uint64_t faults = 0, bad = 0, served = 0, deferred = 0;
    for (int i = 0; i < n; i++) {
        struct dsm_stats st = stats(c, i);
        faults += st.read_faults + st.write_faults;
        bad += st.bad_messages;
        served += st.requests_served;
        deferred += st.deferred;
        if (env_u64("UNUM_DSM_VERBOSE", 0)) dsm_print_stats(c->node[i].d, stderr, 3);
    }
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&c->net_errors), 0);
    assert_true(faults > 0 && served > 0);
    /* faults on pages homed at the faulting node ran their home side in place */
    assert_true(atomic_load(&c->run_as_handler) > 0);
    fprintf(stderr,
            "  dsm stress n=%d x%d %s reorder %d%%: %llu ops/vcpu in %.2f s, %llu faults, %llu "
            "deferred, %ld messages\n",
            n, per_node, kind == HOME_CONTIG ? "contig" : "interleaved", reorder_pct,
            (unsigned long long)ops, t1 - t0, (unsigned long long)faults,
            (unsigned long long)deferred,
            atomic_load(&c->sent[DSM_REQ]) + atomic_load(&c->sent[DSM_GRANT]) +
                atomic_load(&c->sent[DSM_DONE]) + atomic_load(&c->sent[DSM_INV]) +
                atomic_load(&c->sent[DSM_INV_ACK]) + atomic_load(&c->sent[DSM_FETCH]) +
                atomic_load(&c->sent[DSM_FETCH_REPLY]) + atomic_load(&c->sent[DSM_RESUME]));
    cluster_destroy(c);
    pthread_barrier_destroy(&s->start);
    pthread_mutex_destroy(&s->err_lock);
    free(s);
}

static void test_stress_2_contig(void **state)
{
    stress(2, 3, HOME_CONTIG, 0, 20000);
}

static void test_stress_3_interleaved(void **state)
{
    stress(3, 3, HOME_INTERLEAVE, 0, 10000);
}

static void test_stress_4_contig(void **state)
{
    stress(4, 2, HOME_CONTIG, 0, 10000);
}

static void test_stress_3_reorder(void **state)
{
    stress(3, 2, HOME_CONTIG, 30, 10000);
}

static void test_stress_4_interleaved_reorder(void **state)
{
    stress(4, 2, HOME_INTERLEAVE, 30, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios_contig),
        cmocka_unit_test(test_latency_percentiles),
        cmocka_unit_test(test_scenarios_interleaved),
        cmocka_unit_test(test_shared_request),
        cmocka_unit_test(test_read_ahead),
        cmocka_unit_test(test_write_ahead),
        cmocka_unit_test(test_write_ahead_interleaved),
        cmocka_unit_test(test_write_ahead_stops_at_home_boundary),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_shutdown_many),
        cmocka_unit_test(test_send_failure),
        cmocka_unit_test(test_deferred_revocation),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_malformed_in_transaction),
        cmocka_unit_test(test_stress_2_contig),
        cmocka_unit_test(test_stress_3_interleaved),
        cmocka_unit_test(test_stress_4_contig),
        cmocka_unit_test(test_stress_3_reorder),
        cmocka_unit_test(test_stress_4_interleaved_reorder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
