/* Cluster transport tests. Every node runs in its own forked process (as in a
 * real cluster; UCX is only ever started in the children), on 127.0.0.1 with
 * ports the kernel picked as free: a three-node mesh exchanging payloads of
 * 0..8192 bytes both ways and to itself, over UCX's default choice (shared
 * memory) and over TCP; concurrent senders; a single-node cluster; refusal of
 * a wrong secret, of a second connection claiming a connected node and of a
 * different version; an unreachable peer and a port in use; a SIGKILLed peer
 * reported lost within the heartbeat timeout. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/doorbell.h"
#include "cluster/transport.h"
#include "util/util.h"

#define HB_TIMEOUT_MS 1000

static int64_t now_ns(void)
{
    return (int64_t)clock_ns();
}

/* A port the kernel calls free that no node of cfg uses yet (an intruder's own
 * port): bind(0) may hand back a port that was just closed. */
static uint16_t free_port(const struct cluster_config *cfg)
{
    for (;;) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        assert_true(s >= 0);
        assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
        close(s);
        uint16_t port = ntohs(a.sin_port);
        bool taken = false;
        for (int k = 0; k < CLUSTER_MAX_NODES; k++)
            taken |= cfg->node[k].port == port;
        if (!taken) return port;
    }
}

static void make_cfg(struct cluster_config *cfg, int n, const char *tls)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nnodes = n;
    uint16_t ports[CLUSTER_MAX_NODES];
    char err[128];
    assert_int_equal(cluster_pick_ports(n, ports, err, sizeof(err)), 0);
    for (int k = 0; k < n; k++) {
        snprintf(cfg->node[k].host, sizeof(cfg->node[k].host), "127.0.0.1");
        cfg->node[k].port = ports[k];
        cfg->node[k].cpus = 1;
        cfg->node[k].memory = 4 << 20;
    }
    cfg->secret_len = 32;
    for (int i = 0; i < 32; i++)
        cfg->secret[i] = (uint8_t)(0xa5 ^ (i * 11));
    snprintf(cfg->transport, sizeof(cfg->transport), "%s", tls);
    cfg->connect_timeout_ms = 5000;
    cfg->heartbeat_timeout_ms = HB_TIMEOUT_MS;
    cfg->numa = true;
}

/* ---- child processes ----------------------------------------------------------- */

typedef int (*node_fn)(const struct cluster_config *cfg, int self, void *arg);

/* Runs fn in a child process; its stderr goes to errfile when given. */
static pid_t spawn(node_fn fn, const struct cluster_config *cfg, int self, void *arg,
                   const char *errfile)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (errfile) {
            int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0) {
                dup2(fd, 2);
                close(fd);
            }
        }
        alarm(30); /* never outlive a broken test */
        _exit(fn(cfg, self, arg));
    }
    return pid;
}

/* The child's exit status, or -1 (killed) if it did not exit within timeout_s. */
static int reap(pid_t pid, double timeout_s)
{
    int64_t until = now_ns() + (int64_t)(timeout_s * 1e9);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (now_ns() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "test_transport: child %d timed out\n", (int)pid);
            return -1;
        }
        usleep(2000);
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "test_transport: child %d killed by signal %d\n", (int)pid, WTERMSIG(st));
        return -1;
    }
    return WEXITSTATUS(st);
}

/* Nodes 0 and 1 of a fresh 2-node cluster (transport tls), both running fn; both
 * must exit 0 within timeout_s. */
static void run_pair(node_fn fn, const char *tls, double timeout_s)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, tls);
    pid_t a = spawn(fn, &cfg, 0, NULL, NULL);
    pid_t b = spawn(fn, &cfg, 1, NULL, NULL);
    int sa = reap(a, timeout_s), sb = reap(b, timeout_s);
    assert_int_equal(sa, 0);
    assert_int_equal(sb, 0);
}

static char *slurp(const char *path)
{
    static char buf[8192];
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return buf;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "node %d: check failed at line %d: %s\n", self, __LINE__, #cond);      \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* ---- a node's side of a test ------------------------------------------------------ */

#define MAX_THREADS    4
#define MAX_PER_THREAD 2000

struct tnode {
    struct transport *t;
    int self, n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int recv_count[CLUSTER_MAX_NODES];
    int stops;
    int bad; /* content or header mismatches */
    int lost_calls, lost_node;
    char lost_why[128];
    int64_t lost_at;
    int pings, pongs;
    /* concurrency test: [sender thread][index] */
    uint8_t seen[MAX_THREADS][MAX_PER_THREAD];
    int dups, out_of_order;
    int64_t last_index[MAX_THREADS];
};

static uint8_t pattern(int src, int dst, uint64_t i, uint32_t j)
{
    return (uint8_t)(src * 31 + dst * 7 + i * 13 + j * 3 + (j >> 8));
}

static void fill(uint8_t *buf, int src, int dst, uint64_t i, uint32_t len)
{
    for (uint32_t j = 0; j < len; j++)
        buf[j] = pattern(src, dst, i, j);
}

static void on_recv(void *ctx, const struct wire_hdr *h, const void *payload)
{
    struct tnode *n = ctx;
    const uint8_t *p = payload;
    pthread_mutex_lock(&n->mu);
    if (h->dst != n->self || h->src >= n->n) n->bad++;
    switch (h->type) {
    case WIRE_IO_REQ: /* mesh: arg0 = index, arg1 = sender, arg2 = length */
        if (h->arg[1] != h->src || h->arg[2] != h->len) n->bad++;
        if (h->arg[0] != (uint64_t)n->recv_count[h->src]) n->out_of_order++;
        for (uint32_t j = 0; j < h->len; j++)
            if (p[j] != pattern(h->src, h->dst, h->arg[0], j)) {
                n->bad++;
                break;
            }
        n->recv_count[h->src]++;
        break;
    case WIRE_DSM_REQ: { /* concurrency: arg0 = thread, arg1 = index */
        uint64_t th = h->arg[0], i = h->arg[1];
        if (th >= MAX_THREADS || i >= MAX_PER_THREAD) {
            n->bad++;
            break;
        }
        if (n->seen[th][i]++) n->dups++;
        if ((int64_t)i < n->last_index[th]) n->out_of_order++;
        n->last_index[th] = (int64_t)i;
        for (uint32_t j = 0; j < h->len; j++)
            if (p[j] != pattern(h->src, h->dst, th * MAX_PER_THREAD + i, j)) {
                n->bad++;
                break;
            }
        n->recv_count[h->src]++;
        break;
    }
    case WIRE_TIME_PING:
        n->pings++;
        pthread_mutex_unlock(&n->mu);
        transport_send(n->t, h->src, WIRE_TIME_PONG, h->arg, payload, h->len);
        return;
    case WIRE_TIME_PONG: n->pongs++; break;
    case WIRE_STOP: n->stops++; break;
    default: n->bad++;
    }
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void on_lost(void *ctx, int node, const char *why)
{
    struct tnode *n = ctx;
    pthread_mutex_lock(&n->mu);
    if (!n->lost_calls++) {
        n->lost_node = node;
        n->lost_at = now_ns();
        snprintf(n->lost_why, sizeof(n->lost_why), "%s", why);
    }
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* Starts node self with on_recv, or with the given handlers for receiving. */
static int tnode_start_with(struct tnode *n, const struct cluster_config *cfg, int self,
                            void (*recv)(void *, const struct wire_hdr *, const void *),
                            bool (*any_thread)(void *, int), char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    n->self = self;
    n->n = cfg->nnodes;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    for (int th = 0; th < MAX_THREADS; th++)
        n->last_index[th] = -1;
    struct transport_handlers h = {
        .recv = recv, .peer_lost = on_lost, .any_thread = any_thread, .ctx = n};
    return transport_start(&n->t, cfg, self, &h, err, errlen);
}

static int tnode_start(struct tnode *n, const struct cluster_config *cfg, int self, char *err,
                       size_t errlen)
{
    return tnode_start_with(n, cfg, self, on_recv, NULL, err, errlen);
}

/* tnode_start_with, or its error on stderr (false). */
static bool tnode_up_with(struct tnode *n, const struct cluster_config *cfg, int self,
                          void (*recv)(void *, const struct wire_hdr *, const void *),
                          bool (*any_thread)(void *, int))
{
    char err[256];
    if (tnode_start_with(n, cfg, self, recv, any_thread, err, sizeof(err)) == 0) return true;
    fprintf(stderr, "node %d: %s\n", self, err);
    return false;
}

static bool tnode_up(struct tnode *n, const struct cluster_config *cfg, int self)
{
    return tnode_up_with(n, cfg, self, on_recv, NULL);
}

/* Waits until pred(n) holds (mutex held), at most timeout_ms. */
static bool wait_for(struct tnode *n, bool (*pred)(struct tnode *), int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000l;
    if (until.tv_nsec >= 1000000000l) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000l;
    }
    pthread_mutex_lock(&n->mu);
    bool ok;
    while (!(ok = pred(n)))
        if (pthread_cond_timedwait(&n->cv, &n->mu, &until) == ETIMEDOUT) {
            ok = pred(n);
            break;
        }
    pthread_mutex_unlock(&n->mu);
    return ok;
}

static int expect_per_peer;
static bool all_received(struct tnode *n)
{
    for (int k = 0; k < n->n; k++)
        if (n->recv_count[k] < expect_per_peer) return false;
    return true;
}
static bool pong_arrived(struct tnode *n)
{
    return n->pongs > 0;
}

static bool all_stopped(struct tnode *n)
{
    return n->stops >= n->n - 1;
}
static bool got_lost(struct tnode *n)
{
    return n->lost_calls > 0;
}

/* Tells every other node we are done, waits for theirs, stops. */
static int finish(struct tnode *n)
{
    int self = n->self;
    for (int k = 0; k < n->n; k++)
        if (k != self) CHECK(transport_send(n->t, k, WIRE_STOP, NULL, NULL, 0) == 0);
    CHECK(wait_for(n, all_stopped, 20000));
    transport_stop(n->t);
    return 0;
}

/* ---- mesh ------------------------------------------------------------------------- */

static const uint32_t mesh_sizes[] = {0,    1,    2,    7,    15,   16,   17,   63,
                                      64,   65,   100,  255,  256,  1000, 2048, 4000,
                                      4095, 4096, 4097, 5000, 6000, 8000, 8191, 8192};
#define MESH_ROUNDS 3
#define MESH_MSGS   (MESH_ROUNDS * (int)(sizeof(mesh_sizes) / sizeof(mesh_sizes[0])))

static int mesh_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct tnode n;
    if (!tnode_up(&n, cfg, self)) return 1;
    static uint8_t buf[WIRE_MAX_PAYLOAD + 1];
    expect_per_peer = MESH_MSGS;
    for (int i = 0; i < MESH_MSGS; i++) {
        for (int k = 0; k < cfg->nnodes; k++) { /* every node, this one included */
            uint32_t len = mesh_sizes[i % (MESH_MSGS / MESH_ROUNDS)];
            fill(buf, self, k, i, len);
            uint64_t a[3] = {(uint64_t)i, (uint64_t)self, len};
            CHECK(transport_send(n.t, k, WIRE_IO_REQ, a, buf, len) == 0);
        }
    }
    CHECK(transport_send(n.t, (self + 1) % cfg->nnodes, WIRE_IO_REQ, NULL, buf,
                         WIRE_MAX_PAYLOAD + 1) == -EMSGSIZE);
    CHECK(transport_send(n.t, cfg->nnodes, WIRE_IO_REQ, NULL, NULL, 0) == -EINVAL);
    CHECK(transport_send(n.t, -1, WIRE_IO_REQ, NULL, NULL, 0) == -EINVAL);
    if (!wait_for(&n, all_received, 10000)) {
        for (int k = 0; k < cfg->nnodes; k++)
            fprintf(stderr, "node %d: %d of %d messages from node %d\n", self, n.recv_count[k],
                    MESH_MSGS, k);
        return 1;
    }
    for (int k = 0; k < cfg->nnodes; k++) {
        const char *d = transport_describe(n.t, k);
        if (k == self) {
            CHECK(!strcmp(d, "loopback"));
            continue;
        }
        if (!strcmp(cfg->transport, "tcp") && !strstr(d, "tcp")) {
            fprintf(stderr, "node %d: over tcp, toward node %d: %s\n", self, k, d);
            return 1;
        }
        if (!cfg->transport[0] && !strstr(d, "memory")) {
            fprintf(stderr, "node %d: default, toward node %d: %s\n", self, k, d);
            return 1;
        }
        struct transport_peer_stats st;
        transport_stats(n.t, k, &st);
        CHECK(st.msgs_recv >= (uint64_t)MESH_MSGS && st.msgs_sent >= (uint64_t)MESH_MSGS);
        CHECK(st.rejected == 0);
        uint64_t bytes = 0;
        for (int i = 0; i < MESH_MSGS; i++)
            bytes += mesh_sizes[i % (MESH_MSGS / MESH_ROUNDS)];
        CHECK(st.bytes_recv >= bytes);
    }
    CHECK(n.bad == 0);
    CHECK(n.out_of_order == 0);
    CHECK(n.lost_calls == 0);
    return finish(&n);
}

static void run_mesh_cfg(const struct cluster_config *cfg)
{
    pid_t pid[3];
    for (int k = 0; k < 3; k++)
        pid[k] = spawn(mesh_node, cfg, k, NULL, NULL);
    int st[3];
    for (int k = 0; k < 3; k++)
        st[k] = reap(pid[k], 20);
    for (int k = 0; k < 3; k++)
        assert_int_equal(st[k], 0);
}

static void run_mesh(const char *tls)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 3, tls);
    pid_t pid[3];
    for (int k = 0; k < 3; k++)
        pid[k] = spawn(mesh_node, &cfg, k, NULL, NULL);
    int st[3];
    for (int k = 0; k < 3; k++)
        st[k] = reap(pid[k], 20);
    for (int k = 0; k < 3; k++)
        assert_int_equal(st[k], 0);
}

/* With doorbells (as `unum run --nodes N` maps them before it forks the nodes),
 * every message a node sends to another rings that node's bell, and none rings
 * the sender's own for its loopback messages. */
static void test_mesh_default(void **state)
{
    assert_false(doorbell_available());
    assert_int_equal(doorbell_create(CLUSTER_MAX_NODES + 1), -EINVAL);
    assert_int_equal(doorbell_create(3), 0);
    assert_true(doorbell_available());
    for (int k = 0; k < 3; k++)
        assert_int_equal(doorbell_read(k), 0);
    doorbell_ring(3); /* not a node: ignored */
    doorbell_ring(-1);
    run_mesh("");
    for (int k = 0; k < 3; k++) {
        /* MESH_MSGS from each of the two others, their stop messages, heartbeats */
        assert_true(doorbell_read(k) >= 2 * (uint64_t)MESH_MSGS + 2);
    }
    assert_int_equal(doorbell_read(3), 0);
}

static void test_mesh_tcp(void **state)
{
    run_mesh("tcp");
}

static void test_mesh_sm(void **state)
{
    run_mesh("sm");
}

/* ---- serving from a waiting thread (transport_poll) ------------------------------ */

/* Node 1 sends POLL_MSGS messages in order: IO_REQ, which node 0 lets any thread
 * handle, and every third an APIC_MSG, which only its progress thread may. A
 * thread of node 0 polls meanwhile. Every message must arrive once and in
 * order, the APIC_MSGs on the progress thread, a share of the IO_REQs on the
 * poller, never two handlers at once; after the poller left (arming the
 * worker at once, or lingering), a message still gets through. */
#define POLL_MSGS 3000

static __thread bool tls_poller; /* this thread is the poller */
static struct {
    struct tnode *n;
    _Atomic int in_handler;
    int next, by_poller, misplaced, overlaps, bad_order;
} pt;

static bool poll_allowed(void *ctx, int type)
{
    return type == WIRE_IO_REQ;
}

static void poll_recv(void *ctx, const struct wire_hdr *h, const void *payload)
{
    if (atomic_fetch_add(&pt.in_handler, 1) != 0) pt.overlaps++;
    bool on_poller = tls_poller;
    if (h->type == WIRE_IO_REQ || h->type == WIRE_APIC_MSG) {
        if (h->arg[0] != (uint64_t)pt.next) pt.bad_order++;
        pt.next++;
        if (on_poller) pt.by_poller++;
        if (h->type == WIRE_APIC_MSG && on_poller) pt.misplaced++;
        atomic_fetch_sub(&pt.in_handler, 1);
        pthread_mutex_lock(&pt.n->mu);
        pthread_cond_broadcast(&pt.n->cv);
        pthread_mutex_unlock(&pt.n->mu);
        return;
    }
    atomic_fetch_sub(&pt.in_handler, 1);
    on_recv(ctx, h, payload); /* STOP, PONG */
}

static void *poller_main(void *arg)
{
    struct tnode *n = arg;
    tls_poller = true;
    transport_poll_begin(n->t, true);
    int64_t until = now_ns() + 10000000000ll;
    while (pt.next < POLL_MSGS && now_ns() < until)
        if (transport_poll(n->t) == 0) sched_yield();
    return NULL;
}

static int poll_node(const struct cluster_config *cfg, int self, void *arg)
{
    bool linger = arg != NULL;
    struct tnode n;
    pt.n = &n;
    if (!tnode_up_with(&n, cfg, self, self == 0 ? poll_recv : on_recv,
                       self == 0 ? poll_allowed : NULL))
        return 1;
    if (self == 1) {
        for (int i = 0; i < POLL_MSGS; i++) {
            uint64_t a[3] = {(uint64_t)i, 0, 0};
            int type = i % 3 == 2 ? WIRE_APIC_MSG : WIRE_IO_REQ;
            int r;
            while ((r = transport_send(n.t, 0, type, a, NULL, 0)) == -ENOMEM)
                sched_yield();
            CHECK(r == 0);
            if (i % 64 == 0) usleep(200); /* let the poller see some on its own */
        }
        return finish(&n);
    }
    pthread_t poller;
    CHECK(pthread_create(&poller, NULL, poller_main, &n) == 0);
    pthread_join(poller, NULL);
    /* the poller leaves from its own thread in real use; here the test thread
     * does it once the poller is done (the transport does not care which) */
    transport_poll_end(n.t, true, linger);
    CHECK(pt.next == POLL_MSGS);
    fprintf(stderr, "node 0: %d of %d handled by the poller (linger %d)\n", pt.by_poller, POLL_MSGS,
            linger);
    CHECK(pt.bad_order == 0);
    CHECK(pt.misplaced == 0);
    CHECK(pt.overlaps == 0);
    CHECK(pt.by_poller > 0);
    CHECK(pt.by_poller < POLL_MSGS); /* the APIC_MSGs at least were not its */
    uint64_t by_thread, by_pollers;
    transport_handled(n.t, &by_thread, &by_pollers);
    CHECK(by_pollers == (uint64_t)pt.by_poller);
    /* A message to itself while a thread polls: the poller handles it (no
     * wake-up of the progress thread on the way), except a type that must run
     * on the progress thread, which the poller hands over. */
    tls_poller = true;
    transport_poll_begin(n.t, false);
    uint64_t a[3] = {POLL_MSGS, 0, 0};
    CHECK(transport_send(n.t, 0, WIRE_IO_REQ, a, NULL, 0) == 0);
    a[0] = POLL_MSGS + 1;
    CHECK(transport_send(n.t, 0, WIRE_APIC_MSG, a, NULL, 0) == 0);
    int before = pt.by_poller;
    int64_t until = now_ns() + 5000000000ll;
    while (pt.next < POLL_MSGS + 2 && now_ns() < until)
        if (transport_poll(n.t) == 0) sched_yield();
    transport_poll_end(n.t, false, false);
    tls_poller = false;
    CHECK(pt.next == POLL_MSGS + 2);
    CHECK(pt.by_poller == before + 1); /* the IO_REQ; the APIC_MSG went to the progress thread */
    CHECK(pt.misplaced == 0 && pt.bad_order == 0 && pt.overlaps == 0);
    /* nobody polls now: the progress thread must see what comes */
    CHECK(transport_send(n.t, 1, WIRE_TIME_PING, NULL, NULL, 0) == 0);
    CHECK(wait_for(&n, pong_arrived, 5000));
    return finish(&n);
}

static void run_poll(bool linger)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, "");
    pid_t a = spawn(poll_node, &cfg, 0, linger ? (void *)1 : NULL, NULL);
    pid_t b = spawn(poll_node, &cfg, 1, NULL, NULL);
    assert_int_equal(reap(a, 25), 0);
    assert_int_equal(reap(b, 25), 0);
}

static void test_poll_from_waiting_thread(void **state)
{
    run_poll(false);
}

static void test_poll_linger(void **state)
{
    run_poll(true);
}

/* A running vCPU polls every few microseconds and leaves the worker lingering
 * (node_vcpu_poll). Meanwhile the progress thread must not wake at every linger
 * end to find it extended (each wake-up preempted a vCPU: ~5000 a second with a
 * 200 us linger): it naps longer each time, up to 2 ms, so over 300 ms of polling
 * it sleeps at most ~150 + a few times. And when the poller stops without
 * ending the linger, a message still gets through. */
static int linger_nap_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct tnode n;
    if (!tnode_up(&n, cfg, self)) return 1;
    if (self == 1) return finish(&n);
    /* as in a node (where it is real-time when permitted: no polling spells) */
    bool rt = transport_set_realtime(n.t);
    uint64_t before = transport_sleeps(n.t);
    int64_t until = now_ns() + 300 * 1000000ll;
    while (now_ns() < until) {
        transport_poll_begin(n.t, true);
        transport_poll(n.t);
        transport_poll_end(n.t, true, true);
        int64_t gap = now_ns() + 20000; /* a vCPU's instructions between polls */
        while (now_ns() < gap)
            ;
    }
    uint64_t sleeps = transport_sleeps(n.t) - before;
    fprintf(stderr,
            "node 0: the progress thread (real-time: %d) slept %llu times in 300 ms of lingering "
            "polls\n",
            rt, (unsigned long long)sleeps);
    CHECK(sleeps < 250); /* without naps (real-time): 490-930 here */
    CHECK(transport_send(n.t, 1, WIRE_TIME_PING, NULL, NULL, 0) == 0);
    CHECK(wait_for(&n, pong_arrived, 5000));
    return finish(&n);
}

static void test_linger_naps(void **state)
{
    run_pair(linger_nap_node, "", 25);
}

/* The same cluster again at once, on the same ports (connections of the first
 * run linger in TIME_WAIT). */
static void test_restart_same_ports(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 3, "");
    run_mesh_cfg(&cfg);
    run_mesh_cfg(&cfg);
}

/* Nodes start in any order: node 2 comes up a second after the others. */
static void test_late_start(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 3, "");
    pid_t pid[3];
    pid[0] = spawn(mesh_node, &cfg, 0, NULL, NULL);
    pid[1] = spawn(mesh_node, &cfg, 1, NULL, NULL);
    usleep(1000000);
    pid[2] = spawn(mesh_node, &cfg, 2, NULL, NULL);
    int st[3];
    for (int k = 0; k < 3; k++)
        st[k] = reap(pid[k], 20);
    for (int k = 0; k < 3; k++)
        assert_int_equal(st[k], 0);
}

/* ---- concurrency ---------------------------------------------------------------- */

struct sender {
    struct tnode *n;
    int th, dst, fails;
};

static void *sender_thread(void *arg)
{
    struct sender *s = arg;
    static __thread uint8_t buf[WIRE_MAX_PAYLOAD];
    for (int i = 0; i < MAX_PER_THREAD; i++) {
        uint32_t len = i % 16 == 5 ? WIRE_MAX_PAYLOAD : (uint32_t)((i * 37 + s->th * 11) % 600);
        fill(buf, s->n->self, s->dst, (uint64_t)s->th * MAX_PER_THREAD + i, len);
        uint64_t a[3] = {(uint64_t)s->th, (uint64_t)i, 0};
        int r;
        while ((r = transport_send(s->n->t, s->dst, WIRE_DSM_REQ, a, buf, len)) == -ENOMEM)
            usleep(100);
        if (r) s->fails++;
    }
    return NULL;
}

static bool all_threads_received(struct tnode *n)
{
    return n->recv_count[1 - n->self] >= MAX_THREADS * MAX_PER_THREAD;
}

static int concurrent_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct tnode *n = calloc(1, sizeof(*n));
    char err[256];
    if (tnode_start(n, cfg, self, err, sizeof(err)) != 0) {
        fprintf(stderr, "node %d: %s\n", self, err);
        return 1;
    }
    pthread_t th[MAX_THREADS];
    struct sender s[MAX_THREADS];
    for (int i = 0; i < MAX_THREADS; i++) {
        s[i] = (struct sender){.n = n, .th = i, .dst = 1 - self};
        pthread_create(&th[i], NULL, sender_thread, &s[i]);
    }
    for (int i = 0; i < MAX_THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(s[i].fails == 0);
    }
    if (!wait_for(n, all_threads_received, 15000)) {
        struct transport_peer_stats st;
        transport_stats(n->t, 1 - self, &st);
        fprintf(stderr, "node %d: received %d of %d (%d overtaken, %d rejected)\n", self,
                n->recv_count[1 - self], MAX_THREADS * MAX_PER_THREAD, n->out_of_order,
                (int)st.rejected);
        return 1;
    }
    for (int t = 0; t < MAX_THREADS; t++)
        for (int i = 0; i < MAX_PER_THREAD; i++)
            CHECK(n->seen[t][i] == 1);
    CHECK(n->dups == 0);
    CHECK(n->bad == 0);
    struct transport_peer_stats st;
    transport_stats(n->t, 1 - self, &st);
    CHECK(st.rejected == 0);
    CHECK(n->out_of_order == 0); /* each connection is FIFO */
    return finish(n);
}

static void run_concurrent(const char *tls)
{
    run_pair(concurrent_node, tls, 25);
}

static void test_concurrent_default(void **state)
{
    run_concurrent("");
}

static void test_concurrent_tcp(void **state)
{
    run_concurrent("tcp");
}

/* ---- a cluster of one: loopback only --------------------------------------------- */

static int single_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct tnode n;
    if (!tnode_up(&n, cfg, self)) return 1;
    static uint8_t buf[WIRE_MAX_PAYLOAD];
    expect_per_peer = MESH_MSGS;
    for (int i = 0; i < MESH_MSGS; i++) {
        uint32_t len = mesh_sizes[i % (MESH_MSGS / MESH_ROUNDS)];
        fill(buf, 0, 0, i, len);
        uint64_t a[3] = {(uint64_t)i, 0, len};
        CHECK(transport_send(n.t, 0, WIRE_IO_REQ, a, buf, len) == 0);
    }
    CHECK(wait_for(&n, all_received, 5000));
    CHECK(n.bad == 0);
    CHECK(!strcmp(transport_describe(n.t, 0), "loopback"));
    transport_stop(n.t);
    return 0;
}

static void test_single_node(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 1, "");
    assert_int_equal(reap(spawn(single_node, &cfg, 0, NULL, NULL), 10), 0);
}

/* ---- refusals --------------------------------------------------------------------- */

/* A legitimate node: ping-pongs with the other until the parent writes to the
 * pipe (arg), then 200 more, then stops. */
struct legit_arg {
    int go_fd; /* read end: the parent's "intruders are done" */
};

static int legit_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct legit_arg *la = arg;
    struct tnode n;
    if (!tnode_up(&n, cfg, self)) return 1;
    if (self == 1) { /* answers pings (on the progress thread) until node 0 is done */
        CHECK(n.lost_calls == 0);
        return finish(&n);
    }
    int extra = -1;
    uint8_t page[4096];
    for (uint64_t i = 0; extra != 0; i++) {
        fill(page, 0, 1, i, sizeof(page));
        uint64_t a[3] = {i, 0, 0};
        pthread_mutex_lock(&n.mu);
        n.pongs = 0;
        pthread_mutex_unlock(&n.mu);
        CHECK(transport_send(n.t, 1, WIRE_TIME_PING, a, page, sizeof(page)) == 0);
        CHECK(wait_for(&n, pong_arrived, 3000));
        if (extra > 0) extra--;
        struct pollfd p = {.fd = la->go_fd, .events = POLLIN};
        if (extra < 0 && poll(&p, 1, 0) == 1) extra = 200;
        if (extra < 0) usleep(500);
    }
    CHECK(n.bad == 0);
    struct transport_peer_stats st;
    transport_stats(n.t, 1, &st);
    CHECK(st.rejected == 0);
    CHECK(st.msgs_recv >= 200);
    CHECK(n.lost_calls == 0);
    return finish(&n);
}

/* Expects transport_start to fail with a reason containing arg. */
static int intruder_node(const struct cluster_config *cfg, int self, void *arg)
{
    const char *want = arg;
    struct tnode n;
    char err[512] = "";
    int64_t t0 = now_ns();
    if (tnode_start(&n, cfg, self, err, sizeof(err)) == 0) {
        fprintf(stderr, "node %d: transport_start succeeded\n", self);
        return 1;
    }
    fprintf(stderr, "intruder: %s\n", err);
    if (!strstr(err, want)) {
        fprintf(stderr, "node %d: expected '%s', got '%s'\n", self, want, err);
        return 1;
    }
    CHECK(now_ns() - t0 < 3000000000ll); /* refused at once, not after the connect timeout */
    return 0;
}

/* Connects and never says HELLO: node 0 refuses it after the heartbeat timeout. */
static int silent_node(const struct cluster_config *cfg, int self, void *arg)
{
    transport_test_silent_dialler = true;
    struct tnode n;
    char err[512] = "";
    if (tnode_start(&n, cfg, self, err, sizeof(err)) == 0) {
        fprintf(stderr, "node %d: transport_start succeeded\n", self);
        return 1;
    }
    fprintf(stderr, "silent intruder: %s\n", err);
    return strstr(err, "node 0 refused us: no handshake within") ? 0 : 1;
}

static void test_wrong_secret_and_duplicate(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, "");
    int go[2];
    assert_int_equal(pipe(go), 0);
    struct legit_arg la = {.go_fd = go[0]};
    /* not under the build directory: `make check SAN=1` builds elsewhere */
    char log0[64];
    snprintf(log0, sizeof(log0), "/tmp/unum-test_transport.%d.node0.log", (int)getpid());
    pid_t a = spawn(legit_node, &cfg, 0, &la, log0);
    pid_t b = spawn(legit_node, &cfg, 1, &la, NULL);
    usleep(300000);

    /* Claims to be node 1 with the wrong secret (its own port: node 1's is taken). */
    struct cluster_config bad = cfg;
    bad.node[1].port = free_port(&cfg);
    bad.secret[5] ^= 1;
    assert_int_equal(
        reap(spawn(intruder_node, &bad, 1, "node 0 refused us: wrong cluster secret", NULL), 10),
        0);
    /* The right secret, but node 1 is connected already. */
    struct cluster_config dup = cfg;
    dup.node[1].port = free_port(&cfg);
    assert_int_equal(
        reap(spawn(intruder_node, &dup, 1, "node 0 refused us: node 1 is already connected", NULL),
             10),
        0);
    /* A secret of another length. */
    bad = cfg;
    bad.node[1].port = free_port(&cfg);
    bad.secret_len = 20;
    assert_int_equal(reap(spawn(intruder_node, &bad, 1, "wrong cluster secret", NULL), 10), 0);
    /* The right secret, but it never starts the handshake. */
    struct cluster_config silent = cfg;
    silent.node[1].port = free_port(&cfg);
    assert_int_equal(reap(spawn(silent_node, &silent, 1, NULL, NULL), 10), 0);

    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(reap(a, 15), 0);
    assert_int_equal(reap(b, 15), 0);
    close(go[0]);
    close(go[1]);
    const char *log = slurp(log0);
    if (!strstr(log, "unum: node 0: refused a connection claiming to be node 1 from 127.0.0.1:") ||
        !strstr(log, ": wrong cluster secret\n") || !strstr(log, "node 1 is already connected") ||
        !strstr(log, "unum: node 0: refused a connection from 127.0.0.1:") ||
        !strstr(log, ": no handshake within"))
        fail_msg("node 0's log:\n%s", log);
    unlink(log0);
}

/* Node 1 claims another version. Whichever node is refused first gives up and
 * takes its listener away, so the other one is either refused too or finds
 * it unreachable; at least one of them must have been refused. */
static int version_node(const struct cluster_config *cfg, int self, void *arg)
{
    if (self == 1) transport_claimed_version = "0.1.9";
    struct tnode n;
    char err[512] = "";
    if (tnode_start(&n, cfg, self, err, sizeof(err)) == 0) {
        fprintf(stderr, "node %d: transport_start succeeded\n", self);
        return 1;
    }
    fprintf(stderr, "node %d: %s\n", self, err);
    const char *want = self == 1 ? "node 0 refused us: version mismatch: node 0 runs unum 0.2.0 "
                                   "(wire protocol 1), node 1 runs unum 0.1.9 (wire protocol 1)"
                                 : "node 1 refused us: version mismatch: node 1 runs unum 0.1.9 "
                                   "(wire protocol 1), node 0 runs unum 0.2.0 (wire protocol 1)";
    if (!strcmp(err, want)) return 0;
    CHECK(strstr(err, "is unreachable"));
    return 3;
}

static void test_version_mismatch(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, "");
    cfg.connect_timeout_ms = 2000;
    pid_t a = spawn(version_node, &cfg, 0, NULL, NULL);
    pid_t b = spawn(version_node, &cfg, 1, NULL, NULL);
    int sa = reap(a, 10), sb = reap(b, 10);
    assert_true((sa == 0 || sa == 3) && (sb == 0 || sb == 3));
    assert_true(sa == 0 || sb == 0);
}

/* ---- start-up failures --------------------------------------------------------------- */

static int count_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    if (f) fclose(f);
    return n;
}

static int unreachable_node(const struct cluster_config *cfg, int self, void *arg)
{
    int before = count_threads();
    struct tnode n;
    char err[512] = "", want[128];
    int64_t t0 = now_ns();
    CHECK(tnode_start(&n, cfg, self, err, sizeof(err)) == -1);
    int64_t took = now_ns() - t0;
    snprintf(want, sizeof(want), "node 1 (127.0.0.1:%u) is unreachable", cfg->node[1].port);
    if (strcmp(err, want)) {
        fprintf(stderr, "expected '%s', got '%s'\n", want, err);
        return 1;
    }
    CHECK(took >= 900000000ll && took < 3000000000ll);
    CHECK(count_threads() == before);
    return 0;
}

static void test_unreachable(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, "");
    cfg.connect_timeout_ms = 1000;
    assert_int_equal(reap(spawn(unreachable_node, &cfg, 0, NULL, NULL), 10), 0);
}

static int port_in_use_node(const struct cluster_config *cfg, int self, void *arg)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons(cfg->node[0].port)};
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s, 1) == 0);
    struct tnode n;
    char err[512] = "";
    CHECK(tnode_start(&n, cfg, self, err, sizeof(err)) == -1);
    char want[128];
    snprintf(want, sizeof(want), "node 0: cannot listen on 127.0.0.1:%u: address in use",
             cfg->node[0].port);
    if (strcmp(err, want)) {
        fprintf(stderr, "expected '%s', got '%s'\n", want, err);
        return 1;
    }
    close(s);
    return 0;
}

static void test_port_in_use(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, "");
    assert_int_equal(reap(spawn(port_in_use_node, &cfg, 0, NULL, NULL), 10), 0);
}

/* ---- a peer killed ------------------------------------------------------------------ */

struct kill_arg {
    int ready_fd;  /* write end: "started" */
    int killed_fd; /* read end: the time the parent killed the peer */
};

static int victim_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct kill_arg *ka = arg;
    struct tnode n;
    if (!tnode_up(&n, cfg, self)) return 1;
    if (write(ka->ready_fd, "r", 1) != 1) return 1;
    for (;;)
        pause();
}

static int watcher_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct kill_arg *ka = arg;
    struct tnode n;
    if (!tnode_up(&n, cfg, self)) return 1;
    CHECK(write(ka->ready_fd, "r", 1) == 1);
    int64_t killed_at;
    CHECK(read(ka->killed_fd, &killed_at, sizeof(killed_at)) == sizeof(killed_at));
    CHECK(wait_for(&n, got_lost, HB_TIMEOUT_MS + 1000));
    double after = (double)(n.lost_at - killed_at) / 1e9;
    fprintf(stderr, "node %d: node %d lost %.3f s after the kill: %s\n", self, n.lost_node, after,
            n.lost_why);
    CHECK(n.lost_node == 1 - self);
    CHECK(after >= 0 && after <= HB_TIMEOUT_MS / 1000.0 + 1.0);
    CHECK(n.lost_why[0]);
    int r = transport_send(n.t, 1 - self, WIRE_IO_REQ, NULL, NULL, 0);
    CHECK(r == -ECONNRESET || r == -EPIPE);
    CHECK(transport_send(n.t, self, WIRE_TIME_PONG, NULL, NULL, 0) == 0); /* loopback lives on */
    usleep(HB_TIMEOUT_MS * 1500); /* reported once, not again */
    CHECK(n.lost_calls == 1);
    int64_t t0 = now_ns();
    transport_stop(n.t);
    CHECK(now_ns() - t0 < 2000000000ll);
    return 0;
}

static void run_kill(const char *tls)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, tls);
    int ready[2], killed[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(killed), 0);
    struct kill_arg ka = {.ready_fd = ready[1], .killed_fd = killed[0]};
    pid_t w = spawn(watcher_node, &cfg, 0, &ka, NULL);
    pid_t v = spawn(victim_node, &cfg, 1, &ka, NULL);
    char c[2];
    for (int i = 0; i < 2; i++) {
        struct pollfd p = {.fd = ready[0], .events = POLLIN};
        if (poll(&p, 1, 10000) != 1) {
            kill(v, SIGKILL);
            kill(w, SIGKILL);
            fail_msg("nodes did not start");
        }
        assert_int_equal(read(ready[0], c, 1), 1);
    }
    usleep(200000);
    int64_t at = now_ns();
    kill(v, SIGKILL);
    assert_int_equal(write(killed[1], &at, sizeof(at)), sizeof(at));
    waitpid(v, NULL, 0);
    assert_int_equal(reap(w, 10), 0);
    close(ready[0]);
    close(ready[1]);
    close(killed[0]);
    close(killed[1]);
}

static void test_kill_default(void **state)
{
    run_kill("");
}

static void test_kill_tcp(void **state)
{
    run_kill("tcp");
}

/* A stopped (not dead) peer: only the heartbeat timeout can tell. */
static int hb_watcher_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct kill_arg *ka = arg;
    struct tnode n;
    if (!tnode_up(&n, cfg, self)) return 1;
    CHECK(write(ka->ready_fd, "r", 1) == 1);
    usleep(HB_TIMEOUT_MS * 1500); /* idle, but heartbeats keep the peer alive */
    CHECK(n.lost_calls == 0);
    CHECK(write(ka->ready_fd, "s", 1) == 1); /* parent: stop it now */
    int64_t stopped_at;
    CHECK(read(ka->killed_fd, &stopped_at, sizeof(stopped_at)) == sizeof(stopped_at));
    CHECK(wait_for(&n, got_lost, HB_TIMEOUT_MS + 1000));
    double after = (double)(n.lost_at - stopped_at) / 1e9;
    fprintf(stderr, "node %d: node %d lost %.3f s after SIGSTOP: %s\n", self, n.lost_node, after,
            n.lost_why);
    CHECK(n.lost_node == 1 - self);
    /* the last heartbeat came up to ~0.3 s before the stop */
    CHECK(after >= HB_TIMEOUT_MS / 1000.0 - 0.5 && after <= HB_TIMEOUT_MS / 1000.0 + 1.0);
    CHECK(!strncmp(n.lost_why, "no message for ", 15));
    CHECK(transport_send(n.t, 1 - self, WIRE_IO_REQ, NULL, NULL, 0) == -ECONNRESET);
    int64_t t0 = now_ns();
    transport_stop(n.t);
    CHECK(now_ns() - t0 < 2000000000ll);
    return 0;
}

/* A handler that holds the progress thread longer than the heartbeat timeout (as an
 * invalidation waiting for the acknowledgements of vCPU threads on an oversubscribed
 * host): the heartbeat thread still says the node is alive, so the peer does not
 * take it for dead, and the node does not take the peer for dead either, although
 * the peer's heartbeats waited in the worker meanwhile. */
static void slow_recv(void *ctx, const struct wire_hdr *h, const void *payload)
{
    if (h->type == WIRE_APIC_MSG) {
        struct tnode *n = ctx;
        if (h->arg[0]) { /* first a page, as a DSM handler's reply would carry */
            static uint8_t page[4096];
            uint64_t arg[3] = {0, 0, sizeof(page)};
            for (int i = 0; i < (int)h->arg[0]; i++) {
                for (uint32_t j = 0; j < sizeof(page); j++)
                    page[j] = pattern(0, 1, (uint64_t)i, j);
                arg[0] = (uint64_t)i;
                transport_send(n->t, h->src, WIRE_IO_REQ, arg, page, sizeof(page));
            }
        }
        usleep(HB_TIMEOUT_MS * 2500);
        pthread_mutex_lock(&n->mu);
        n->bad = -1; /* a mark: the slow handler is done */
        pthread_mutex_unlock(&n->mu);
        return;
    }
    on_recv(ctx, h, payload);
}

static bool slow_done(struct tnode *n)
{
    return n->bad == -1;
}

static uint64_t pages_first; /* pages node 0 sends before its handler sleeps */

static bool pages_arrived(struct tnode *n)
{
    return n->recv_count[0] == (int)pages_first;
}

static int slow_handler_node(const struct cluster_config *cfg, int self, void *arg)
{
    struct tnode n;
    if (!tnode_up_with(&n, cfg, self, self == 0 ? slow_recv : on_recv, NULL)) return 1;
    if (self == 1) {
        usleep(200 * 1000); /* after node 0's round trip */
        uint64_t arg[3] = {pages_first, 0, 0};
        CHECK(transport_send(n.t, 0, WIRE_APIC_MSG, arg, NULL, 0) == 0);
        /* the pages arrive while node 0's handler still holds its progress thread */
        int64_t sent = now_ns();
        CHECK(wait_for(&n, pages_arrived, HB_TIMEOUT_MS));
        CHECK(now_ns() - sent < HB_TIMEOUT_MS * 1000000ll);
        CHECK(n.bad == 0 && n.out_of_order == 0);
        usleep(HB_TIMEOUT_MS * 3000); /* node 0's progress thread is held for 2.5 timeouts */
        CHECK(n.lost_calls == 0);
        return finish(&n);
    }
    /* node 0: first a round trip (UCX wires an endpoint up on its first use, which
     * takes worker progress), then wait until the slow handler is done */
    CHECK(transport_send(n.t, 1, WIRE_TIME_PING, NULL, NULL, 0) == 0);
    CHECK(wait_for(&n, pong_arrived, 5000));
    CHECK(wait_for(&n, slow_done, 10000));
    usleep(100 * 1000); /* the progress thread looks at the peers again */
    CHECK(n.lost_calls == 0);
    /* the heartbeat thread progressed the worker while the handler held it */
    CHECK(transport_unstalls(n.t) > 0);
    return finish(&n);
}

static void test_heartbeats_during_slow_handler(void **state)
{
    pages_first = 0;
    run_pair(slow_handler_node, "", 30);
}

/* The handler sent pages first: sends that stay in flight until the worker is
 * progressed, and heartbeats queued behind them. */
static void test_heartbeats_after_pages_during_slow_handler(void **state)
{
    pages_first = 512;
    run_pair(slow_handler_node, "", 30);
    pages_first = 512;
    run_pair(slow_handler_node, "tcp", 30);
}

static void test_heartbeat_timeout(void **state)
{
    struct cluster_config cfg;
    make_cfg(&cfg, 2, "");
    int ready[2], stopped[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(stopped), 0);
    struct kill_arg ka = {.ready_fd = ready[1], .killed_fd = stopped[0]};
    pid_t w = spawn(hb_watcher_node, &cfg, 0, &ka, NULL);
    pid_t v = spawn(victim_node, &cfg, 1, &ka, NULL);
    char c;
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = ready[0], .events = POLLIN};
        if (poll(&p, 1, 10000) != 1) {
            kill(v, SIGKILL);
            kill(w, SIGKILL);
            fail_msg("nodes did not start");
        }
        assert_int_equal(read(ready[0], &c, 1), 1);
    }
    int64_t at = now_ns();
    kill(v, SIGSTOP);
    assert_int_equal(write(stopped[1], &at, sizeof(at)), sizeof(at));
    int sw = reap(w, 10);
    kill(v, SIGKILL);
    waitpid(v, NULL, 0);
    assert_int_equal(sw, 0);
    close(ready[0]);
    close(ready[1]);
    close(stopped[0]);
    close(stopped[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mesh_default),
        cmocka_unit_test(test_mesh_tcp),
        cmocka_unit_test(test_mesh_sm),
        cmocka_unit_test(test_restart_same_ports),
        cmocka_unit_test(test_late_start),
        cmocka_unit_test(test_concurrent_default),
        cmocka_unit_test(test_concurrent_tcp),
        cmocka_unit_test(test_single_node),
        cmocka_unit_test(test_poll_from_waiting_thread),
        cmocka_unit_test(test_poll_linger),
        cmocka_unit_test(test_linger_naps),
        cmocka_unit_test(test_heartbeats_during_slow_handler),
        cmocka_unit_test(test_heartbeats_after_pages_during_slow_handler),
        cmocka_unit_test(test_wrong_secret_and_duplicate),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_kill_default),
        cmocka_unit_test(test_kill_tcp),
        cmocka_unit_test(test_heartbeat_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
