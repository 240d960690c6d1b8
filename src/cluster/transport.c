/* transport.c — node-to-node messaging on UCX's UCP active messages
 * (docs/ARCHITECTURE.md, "The wire protocol", describes what goes over the wire).
 *
 * Connections. Every node listens on its address and dials every other node,
 * so each ordered pair (A, B) has its own UCX connection, opened by A: A sends
 * all its messages for B on it; B only receives on it (B's replies to A go on
 * B's own connection to A). The handshake runs on each connection before
 * anything else: the dialler sends HELLO, the acceptor CHALLENGE, the dialler
 * AUTH (proof of the cluster secret), the acceptor WELCOME (its own proof).
 * Both sides then derive the connection's session key, which keys the tag of
 * every message A sends to B — so each direction of a pair is authenticated by
 * its own handshake, in which both nodes prove the secret.
 *
 * Two active-message ids: AM_HANDSHAKE (sent with UCP_AM_SEND_FLAG_REPLY, so
 * the receiver knows which endpoint, i.e. which not-yet-trusted connection, a
 * message came from) and AM_DATA (demultiplexed by the header's src: the tag
 * is checked with the session key of the authenticated connection from src,
 * which nobody without that key can produce; an unauthenticated endpoint's
 * messages therefore never reach the handlers).
 *
 * Every message is sent eager (UCP_AM_SEND_FLAG_EAGER; at most 64 + 8192
 * bytes): the receive callback always holds the whole message.
 *
 * Threads and locks. transport_start runs the handshakes on the calling
 * thread, then starts one progress thread, which from then on progresses the
 * worker and runs the handlers — except while threads that would otherwise
 * wait poll (transport_poll): they progress the worker and run the handlers
 * the node allows on any thread, leaving the rest, in order, to the progress
 * thread. A second thread sends heartbeats (heartbeats()) and progresses the
 * worker when nothing else did for a while (unstall()): a handler may hold the
 * progress thread for seconds. rx_lock makes one thread at a time take the
 * arrivals (the inbox) and run handlers, so handlers never run concurrently.
 * transport_send may be called from any thread. Every UCX call
 * is made under the transport's lock
 * (the worker is also UCS_THREAD_MODE_MULTI, which then costs an uncontended
 * spinlock): a message's sequence number and its place in UCX's queue are
 * taken together, and a message waits in a per-peer backlog while an earlier
 * one is still in flight, so every connection is FIFO. Handlers never run
 * under that lock (nor under UCX's): the receive callback verifies a message
 * and queues it in the inbox (UCX lends its buffer), and the progress thread runs
 * the handlers once ucp_worker_progress returned — so a handler may take its own
 * locks and send, and a thread may send while holding those locks.
 *
 * Waiting. When idle, the progress thread sleeps in epoll on the worker's event
 * fd and an eventfd that senders write when they need it (a loopback message, a
 * send that did not complete at once). It arms the worker (so that an arrival
 * signals the fd) only while nobody polls and no lingering poller may come
 * back (transport_poll_end). While pollers linger it naps: it looks again when
 * the linger would end, and each time a poller came back meanwhile it naps twice
 * as long (up to LINGER_NAP_MAX_NS), so running vCPUs that poll every few
 * microseconds do not have it preempt them thousands of times a second just to
 * find the linger extended. At normal priority it first polls the
 * worker for a short while, yielding the CPU between polls; at real-time
 * priority (transport_set_realtime) it does not poll, because it would take
 * the core from the vCPUs, and its wake-up preempts them instead.
 *
 * Lifetime of endpoints. Endpoints that failed are not closed while the
 * transport runs (another thread may be sending on them); transport_stop
 * closes them all. */
#define _GNU_SOURCE
#include "cluster/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <ucp/api/ucp.h>

#include "cluster/doorbell.h"
#include "cluster/version.h"
#include "util/util.h"

enum { AM_HANDSHAKE = 0x55, AM_DATA = 0x56 };

const char *transport_claimed_version;
bool transport_test_silent_dialler;

static const char *my_version(void)
{
    return transport_claimed_version ? transport_claimed_version : UNUM_VERSION;
}

#define MS                1000000ll
#define RETRY_NS          (100 * MS) /* between connection attempts, at most */
#define RETRY_MIN_NS      (2 * MS)   /* ... at first: local peers start together */
#define TICK_NS           (100 * MS)
#define HEARTBEAT_NS      (250 * MS)  /* at most; a quarter of the timeout if shorter */
#define STALL_CHECK_NS    (50 * MS)   /* unstall() */
#define YIELD_BUSY_NS     (20 * 1000) /* a sched_yield this long: another thread ran */
#define DEFAULT_SPIN_US   50          /* override: UNUM_TRANSPORT_SPIN_US */
#define DEFAULT_LINGER_US 200         /* override: UNUM_TRANSPORT_LINGER_US */
/* The progress thread's longest nap while pollers linger (wait_events). Each
 * nap's end preempts a running vCPU (the thread is real-time), and at 2 ms that
 * was ~500 preemptions a second per node on a busy host (20 ms: pstencil on 2
 * nodes 4-7% faster on average over 12 paired runs); it bounds how late a message
 * is served when every poller stops without saying so (a vCPU the host
 * preempted), and the heartbeat thread's unstall bounds that too. */
#define LINGER_NAP_MAX_NS  (20 * MS)
#define HS_MAX_PAYLOAD     256
#define MAX_CONN_REQS      64
#define CLOSE_WAIT_NS      (1000 * MS)
#define BUF_BYTES          (sizeof(struct wire_hdr) + WIRE_MAX_PAYLOAD)
#define LABEL_CLIENT_PROOF "unum client proof v1"
#define LABEL_SERVER_PROOF "unum server proof v1"

enum conn_state {
    CS_DIALLING,   /* outgoing, HELLO queued */
    CS_AUTH_SENT,  /* outgoing, answered the challenge */
    CS_ACCEPTED,   /* accepted, waiting for HELLO */
    CS_CHALLENGED, /* accepted, waiting for AUTH */
    CS_AUTHED,     /* both proofs checked, session key set */
    CS_CLOSING,    /* refused or failed: to be closed */
    CS_DEAD,       /* closed (ep == NULL) or left for transport_stop */
};

struct conn {
    struct transport *t;
    struct conn *next;
    ucp_ep_h ep;
    bool outgoing;
    int node; /* outgoing: the node dialled; accepted: the claimed id (-1 before HELLO) */
    enum conn_state state;
    bool graceful_close;  /* flush (a REFUSED) before closing */
    _Atomic bool errored; /* set by the UCX error callback */
    ucs_status_t err;
    bool err_handled;
    uint8_t nonce_c[32], nonce_s[32];
    char addr[96];       /* the remote address, as text */
    int64_t accepted_at; /* accepted: when (the handshake must finish in time) */
};

/* A sealed message on its way: what UCX sends from, kept until it is done. */
struct sbuf {
    struct transport *t;
    struct sbuf *next; /* in a peer's backlog */
    uint64_t msg[];    /* header, payload */
};

struct peer {
    /* sending side (under the transport's lock) */
    ucp_ep_h out_ep; /* the authenticated outgoing endpoint */
    uint64_t seq_out;
    uint8_t key_out[WIRE_KEY_BYTES];
    int outstanding;                      /* sends UCX has not completed */
    struct sbuf *backlog, **backlog_tail; /* waiting for them, in order */
    _Atomic bool lost;
    _Atomic bool sent_recently;
    /* receiving side (progress thread) */
    uint8_t key_in[WIRE_KEY_BYTES];
    bool in_authed;
    struct wire_replay replay;
    _Atomic int64_t last_recv; /* written by whoever progresses the worker */
    bool lost_reported, lost_notify;
    char lost_why[64];
    /* start-up (the starting thread) */
    struct conn *out, *in, *dialling;
    int64_t next_attempt;
    int64_t retry_ns; /* the wait before the next attempt: doubles up to RETRY_NS */
    bool unresolved;  /* its host name did not resolve */
    char desc[160];
    /* statistics */
    _Atomic uint64_t msgs_sent, msgs_recv, bytes_sent, bytes_recv, rejected;
};

/* A verified message waiting for its handler: handlers run after the worker
 * progressed, with no lock held. The payload is UCX's own receive buffer
 * (released after the handler ran) or, when UCX cannot lend it, a copy. */
struct rx {
    struct wire_hdr h;
    void *desc;    /* UCX's buffer (header, payload), for ucp_am_data_release */
    uint8_t *copy; /* or a copy of the payload, to free */
    uint8_t small[128] __attribute__((aligned(8))); /* or this (the queue may move) */
};

struct loop_msg {
    struct loop_msg *next;
    struct wire_hdr h;
    uint8_t payload[];
};

struct transport {
    struct cluster_config cfg;
    int self;
    struct transport_handlers h;
    ucp_context_h ucp;
    ucp_worker_h worker;
    ucp_listener_h listener;
    int worker_fd, event_fd, epoll_fd;
    int64_t linger_ns; /* UNUM_TRANSPORT_LINGER_US (transport_poll_end) */
    pthread_t thread;
    bool thread_running;
    pthread_t hb_thread; /* heartbeats (heartbeat_thread) */
    bool hb_running;
    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cv; /* signalled at the stop */
    _Atomic bool stop;
    _Atomic int sleeping;
    _Atomic int inflight; /* data sends not yet completed */
    pthread_mutex_t lock; /* every UCX call, the send sequence, the backlogs */
    bool started;         /* start-up done: failures are peer losses */
    char fatal[256];      /* start-up failure */
    _Atomic int64_t spin_ns;
    int64_t hb_timeout_ns, hb_interval_ns;
    int64_t next_tick;
    _Atomic int64_t next_heartbeat; /* heartbeats(): whichever thread sees them due first */
    struct conn *conns;
    _Atomic bool conn_events; /* some conn errored or wants closing */
    bool lost_pending;        /* some peer_lost to report */
    /* Arrivals, in order, as the worker produced them (am_data): under the lock,
     * so that any thread holding it may progress the worker (unstall). */
    struct rx *inbox;
    _Atomic int ninbox; /* read without the lock to see whether there is any */
    int inbox_cap;
    /* The receive side: taking the inbox and running the handlers, in order.
     * The progress thread holds it for that part of its step; transport_poll
     * tries it from other threads. rxq: what was taken and not yet handled. */
    pthread_mutex_t rx_lock;
    struct rx *rxq;
    int nrx, rx_cap;
    _Atomic uint64_t rx_rounds;   /* progress_worker calls: the heartbeat thread's stall check */
    _Atomic uint64_t unstalls;    /* its progress rounds while the receive side was stuck */
    _Atomic bool rx_left;         /* transport_poll left messages for the progress thread */
    _Atomic int pollers;          /* threads between transport_poll_begin and _end */
    _Atomic int short_pollers;    /* of which those that will linger */
    _Atomic int64_t linger_until; /* the worker stays unarmed until then */
    _Atomic uint64_t handled_thread, handled_polled; /* messages handled by either */
    _Atomic uint64_t sleeps;                         /* the progress thread's (wait_events) */
    ucp_conn_request_h conn_reqs[MAX_CONN_REQS];
    int nconn_reqs;
    void **closing; /* ucp_ep_close_nbx requests in flight */
    int nclosing, closing_cap;
    pthread_mutex_t loop_lock;
    struct loop_msg *loop_head, **loop_tail;
    _Atomic int loop_count;
    _Atomic uint64_t rejected_unknown;
    struct peer peer[CLUSTER_MAX_NODES];
};

static int64_t now_ns(void) /* signed: deadlines are compared by difference */
{
    return (int64_t)clock_ns();
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void fatal(struct transport *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fatal(struct transport *t, const char *fmt, ...)
{
    if (t->fatal[0]) return; /* keep the first reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->fatal, sizeof(t->fatal), fmt, ap);
    va_end(ap);
}

static const char *node_addr(const struct transport *t, int node, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%u", t->cfg.node[node].host, t->cfg.node[node].port);
    return buf;
}

static const char *why_text(ucs_status_t st)
{
    switch (st) {
    case UCS_ERR_CONNECTION_RESET: return "connection reset";
    case UCS_ERR_ENDPOINT_TIMEOUT: return "connection lost"; /* also a peer's socket closing */
    case UCS_ERR_UNREACHABLE: return "unreachable";
    case UCS_ERR_REJECTED: return "connection rejected";
    case UCS_ERR_NOT_CONNECTED: return "not connected";
    default: return ucs_status_string(st);
    }
}

static void wake(struct transport *t)
{
    if (atomic_load(&t->sleeping)) {
        uint64_t one = 1;
        ssize_t r = write(t->event_fd, &one, sizeof(one));
        (void)r;
    }
}

/* ---- sending ---------------------------------------------------------------- */

/* The transport lock. Every UCX call is made under it, so a message's place in
 * the sequence of its connection is also its place in UCX's queue. UCX's
 * callbacks (send completions, the handshake) run under it and call UCX again:
 * the lock is recursive per thread through tls_locked. */
static __thread struct transport *tls_locked;

static struct transport *lock(struct transport *t)
{
    struct transport *prev = tls_locked;
    if (prev != t) {
        pthread_mutex_lock(&t->lock);
        tls_locked = t;
    }
    return prev;
}

static void unlock(struct transport *t, struct transport *prev)
{
    if (prev != t) {
        tls_locked = prev;
        pthread_mutex_unlock(&t->lock);
    }
}

/* Each sending thread seals into its own buffer; when UCX keeps the buffer (the
 * send did not complete at once) or it waits in a backlog, it is handed over
 * and the thread takes a new one next time. */
static pthread_key_t buf_key;
static pthread_once_t buf_key_once = PTHREAD_ONCE_INIT;
static __thread struct sbuf *tls_buf;

static void buf_key_init(void)
{
    pthread_key_create(&buf_key, free);
}

static struct sbuf *send_buf(void)
{
    if (!tls_buf) {
        pthread_once(&buf_key_once, buf_key_init);
        tls_buf = malloc(sizeof(struct sbuf) + BUF_BYTES);
        if (tls_buf) pthread_setspecific(buf_key, tls_buf);
    }
    return tls_buf;
}

static void send_buf_give_away(void)
{
    tls_buf = NULL;
    pthread_setspecific(buf_key, NULL);
}

static void data_sent(void *req, ucs_status_t st, void *user_data);

/* Hands a sealed message to UCX: 0 done (the buffer is free again), 1 in
 * flight (UCX owns the buffer until data_sent), -1 failed. */
static int post(struct transport *t, struct peer *p, struct sbuf *b)
{
    const struct wire_hdr *h = (const struct wire_hdr *)b->msg;
    ucp_request_param_t prm = {
        .op_attr_mask =
            UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS,
        .cb.send = data_sent,
        .user_data = b,
        .flags = UCP_AM_SEND_FLAG_EAGER,
    };
    ucs_status_ptr_t r =
        ucp_am_send_nbx(p->out_ep, AM_DATA, NULL, 0, b->msg, sizeof(*h) + h->len, &prm);
    if (UCS_PTR_IS_ERR(r)) return -1;
    /* a local peer's running vCPUs look at its bell (a send still in flight rings
     * again when it completes) */
    doorbell_ring(h->dst);
    if (r == NULL) return 0;
    p->outstanding++;
    atomic_fetch_add(&t->inflight, 1);
    return 1;
}

/* Sends what waited behind completed sends, in order, until one stays in flight. */
static void drain_backlog(struct transport *t, struct peer *p)
{
    while (p->outstanding == 0 && p->backlog) {
        struct sbuf *b = p->backlog;
        p->backlog = b->next;
        if (!p->backlog) p->backlog_tail = &p->backlog;
        if (atomic_load(&t->stop) || post(t, p, b) != 1) free(b);
    }
}

/* Completion of a send that did not complete at once, under the lock (UCX runs
 * it from ucp_worker_progress or ucp_ep_close_nbx). The request is freed here:
 * ucp_request_free on a pending request would cancel this callback. */
static void data_sent(void *req, ucs_status_t st, void *user_data)
{
    struct sbuf *b = user_data;
    struct transport *t = b->t;
    int dst = ((const struct wire_hdr *)b->msg)->dst;
    struct peer *p = &t->peer[dst];
    free(b);
    ucp_request_free(req);
    doorbell_ring(dst);
    p->outstanding--;
    atomic_fetch_sub(&t->inflight, 1);
    drain_backlog(t, p);
}

static void hs_sent(void *req, ucs_status_t st, void *user_data)
{
    free(user_data);
    ucp_request_free(req);
}

/* Sends to another node: sealed with the next sequence number and handed to
 * UCX, or queued behind earlier messages still in flight (UCX would let a new
 * message overtake one waiting for resources, and the receiver's replay window
 * would drop the late one if it fell 64 behind). */
static int send_remote(struct transport *t, int dst, int type, const uint64_t arg[3],
                       const void *payload, uint32_t len)
{
    struct peer *p = &t->peer[dst];
    if (atomic_load_explicit(&p->lost, memory_order_relaxed)) return -ECONNRESET;
    struct sbuf *b = send_buf();
    if (!b) return -ENOMEM;
    b->t = t;
    b->next = NULL;
    struct wire_hdr *h = (struct wire_hdr *)b->msg;
    uint8_t *pl = (uint8_t *)(h + 1);
    if (len) memcpy(pl, payload, len);

    int r;
    struct transport *prev = lock(t);
    wire_init(h, type, t->self, dst, ++p->seq_out, arg, len);
    wire_seal(h, pl, p->key_out);
    if (p->outstanding || p->backlog) {
        *p->backlog_tail = b;
        p->backlog_tail = &b->next;
        r = 1;
    } else {
        r = post(t, p, b);
    }
    if (r == 1) send_buf_give_away();
    unlock(t, prev);

    if (r < 0) return -ECONNRESET;
    if (r > 0) wake(t); /* the progress thread must drive it */
    if (type != WIRE_HEARTBEAT)
        atomic_store_explicit(&p->sent_recently, true, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->msgs_sent, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_sent, len, memory_order_relaxed);
    return 0;
}

static int send_loopback(struct transport *t, int type, const uint64_t arg[3], const void *payload,
                         uint32_t len)
{
    struct peer *p = &t->peer[t->self];
    struct loop_msg *m = malloc(sizeof(*m) + len);
    if (!m) return -ENOMEM;
    m->next = NULL;
    if (len) memcpy(m->payload, payload, len);
    pthread_mutex_lock(&t->loop_lock);
    wire_init(&m->h, type, t->self, t->self, ++p->seq_out, arg, len);
    *t->loop_tail = m;
    t->loop_tail = &m->next;
    pthread_mutex_unlock(&t->loop_lock);
    atomic_fetch_add(&t->loop_count, 1);
    /* a poller takes it (it wakes the progress thread if it leaves first) */
    if (!atomic_load(&t->pollers)) wake(t);
    atomic_fetch_add_explicit(&p->msgs_sent, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_sent, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->msgs_recv, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_recv, len, memory_order_relaxed);
    return 0;
}

/* A message that arrived during start-up, before the handlers may run: queued
 * with the loopback messages, which the progress thread delivers first. */
static void defer_msg(struct transport *t, const struct wire_hdr *h, const void *payload)
{
    struct loop_msg *m = malloc(sizeof(*m) + h->len);
    if (!m) return;
    m->next = NULL;
    m->h = *h;
    if (h->len) memcpy(m->payload, payload, h->len);
    pthread_mutex_lock(&t->loop_lock);
    *t->loop_tail = m;
    t->loop_tail = &m->next;
    pthread_mutex_unlock(&t->loop_lock);
    atomic_fetch_add(&t->loop_count, 1);
}

int transport_send(struct transport *t, int dst, int type, const uint64_t arg[3],
                   const void *payload, uint32_t len)
{
    if (len > WIRE_MAX_PAYLOAD) return -EMSGSIZE;
    if (dst < 0 || dst >= t->cfg.nnodes || type <= 0 || type > WIRE_TYPE_MAX) return -EINVAL;
    if (len && !payload) return -EINVAL;
    if (atomic_load_explicit(&t->stop, memory_order_relaxed)) return -EPIPE;
    if (dst == t->self) return send_loopback(t, type, arg, payload, len);
    return send_remote(t, dst, type, arg, payload, len);
}

/* A handshake message on a connection (the reply endpoint tells the receiver
 * which connection it came on). */
static int hs_send(struct transport *t, struct conn *c, int type, const void *payload, uint32_t len)
{
    uint8_t *buf = malloc(sizeof(struct wire_hdr) + len);
    if (!buf) return -ENOMEM;
    struct wire_hdr h;
    wire_init(&h, type, t->self, c->node >= 0 ? c->node : 0xffff, 0, NULL, len);
    memcpy(buf, &h, sizeof(h));
    if (len) memcpy(buf + sizeof(h), payload, len);
    ucp_request_param_t prm = {
        .op_attr_mask =
            UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS,
        .cb.send = hs_sent,
        .user_data = buf,
        .flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY,
    };
    ucs_status_ptr_t r = ucp_am_send_nbx(c->ep, AM_HANDSHAKE, NULL, 0, buf, sizeof(h) + len, &prm);
    if (r == NULL) {
        free(buf);
    } else if (UCS_PTR_IS_ERR(r)) {
        free(buf);
        return -ECONNRESET;
    }
    return 0;
}

/* ---- connections -------------------------------------------------------------- */

static void ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    struct conn *c = arg;
    c->err = st;
    atomic_store(&c->errored, true);
    atomic_store(&c->t->conn_events, true);
}

static struct conn *conn_new(struct transport *t, bool outgoing, int node)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->t = t;
    c->outgoing = outgoing;
    c->node = node;
    c->next = t->conns;
    t->conns = c;
    return c;
}

static struct conn *conn_by_ep(struct transport *t, ucp_ep_h ep)
{
    for (struct conn *c = t->conns; c; c = c->next)
        if (c->ep == ep && ep) return c;
    return NULL;
}

static void close_ep(struct transport *t, struct conn *c, bool force)
{
    if (!c->ep) return;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0};
    void *r = ucp_ep_close_nbx(c->ep, &prm);
    c->ep = NULL;
    c->state = CS_DEAD;
    if (r == NULL || UCS_PTR_IS_ERR(r)) return;
    if (t->nclosing == t->closing_cap) {
        int cap = t->closing_cap ? 2 * t->closing_cap : 16;
        void **n = realloc(t->closing, cap * sizeof(*n));
        if (!n) { /* cannot track it: leave it to the worker's destruction */
            ucp_request_free(r);
            return;
        }
        t->closing = n;
        t->closing_cap = cap;
    }
    t->closing[t->nclosing++] = r;
}

static void reap_closing(struct transport *t)
{
    for (int i = 0; i < t->nclosing;) {
        if (ucp_request_check_status(t->closing[i]) != UCS_INPROGRESS) {
            ucp_request_free(t->closing[i]);
            t->closing[i] = t->closing[--t->nclosing];
        } else {
            i++;
        }
    }
}

/* Refuses an accepted connection: logs, tells the dialler why, closes. */
static void refuse(struct transport *t, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(struct transport *t, struct conn *c, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (c->node >= 0)
        fprintf(stderr, "unum: node %d: refused a connection claiming to be node %d from %s: %s\n",
                t->self, c->node, c->addr, why);
    else
        fprintf(stderr, "unum: node %d: refused a connection from %s: %s\n", t->self, c->addr, why);
    hs_send(t, c, WIRE_REFUSED, why, (uint32_t)strlen(why));
    c->state = CS_CLOSING;
    c->graceful_close = true;
    atomic_store(&t->conn_events, true);
}

static int resolve(const char *host, uint16_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1) return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -1;
    sa->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/* A failed dial is tried again soon, then less and less often: the nodes of a
 * local cluster start within milliseconds of each other, and a fixed 100 ms retry
 * added that much to every start whose first dial came before the peer listened. */
static void retry_later(struct peer *p)
{
    p->retry_ns = p->retry_ns ? p->retry_ns * 2 : RETRY_MIN_NS;
    if (p->retry_ns > RETRY_NS) p->retry_ns = RETRY_NS;
    p->next_attempt = now_ns() + p->retry_ns;
}

static void dial(struct transport *t, int node)
{
    struct peer *p = &t->peer[node];
    struct sockaddr_in sa;
    char a[96];
    if (resolve(t->cfg.node[node].host, t->cfg.node[node].port, &sa) != 0) {
        p->unresolved = true;
        retry_later(p);
        return;
    }
    p->unresolved = false;
    struct conn *c = conn_new(t, true, node);
    if (!c) return;
    snprintf(c->addr, sizeof(c->addr), "%s", node_addr(t, node, a, sizeof(a)));
    ucp_ep_params_t ep = {
        .field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
        .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
        .sockaddr = {.addr = (struct sockaddr *)&sa, .addrlen = sizeof(sa)},
        .err_handler = {.cb = ep_error, .arg = c},
        .err_mode = UCP_ERR_HANDLING_MODE_PEER,
    };
    ucs_status_t st = ucp_ep_create(t->worker, &ep, &c->ep);
    if (st != UCS_OK) {
        c->ep = NULL;
        c->state = CS_DEAD;
        retry_later(p);
        return;
    }
    c->state = CS_DIALLING;
    p->dialling = c;
    if (transport_test_silent_dialler) return;
    struct wire_hello hello = {.node = (uint32_t)t->self, .wire_version = WIRE_VERSION};
    snprintf(hello.unum_version, sizeof(hello.unum_version), "%s", my_version());
    randombytes_buf(c->nonce_c, sizeof(c->nonce_c));
    memcpy(hello.nonce, c->nonce_c, sizeof(hello.nonce));
    hs_send(t, c, WIRE_HELLO, &hello, sizeof(hello));
}

static void conn_request(ucp_conn_request_h req, void *arg)
{
    struct transport *t = arg;
    if (t->nconn_reqs == MAX_CONN_REQS || atomic_load(&t->stop)) {
        ucp_listener_reject(t->listener, req);
        return;
    }
    t->conn_reqs[t->nconn_reqs++] = req;
}

static void accept_requests(struct transport *t)
{
    for (int i = 0; i < t->nconn_reqs; i++) {
        ucp_conn_request_h req = t->conn_reqs[i];
        struct conn *c = conn_new(t, false, -1);
        if (!c) {
            ucp_listener_reject(t->listener, req);
            continue;
        }
        snprintf(c->addr, sizeof(c->addr), "an unknown address");
        ucp_conn_request_attr_t qa = {.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR};
        if (ucp_conn_request_query(req, &qa) == UCS_OK && qa.client_address.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&qa.client_address;
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
            snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, ntohs(in->sin_port));
        }
        ucp_ep_params_t ep = {
            .field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLER |
                          UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
            .conn_request = req,
            .err_handler = {.cb = ep_error, .arg = c},
            .err_mode = UCP_ERR_HANDLING_MODE_PEER,
        };
        if (ucp_ep_create(t->worker, &ep, &c->ep) != UCS_OK) {
            c->ep = NULL;
            c->state = CS_DEAD;
            continue;
        }
        c->state = CS_ACCEPTED;
        c->accepted_at = now_ns();
    }
    t->nconn_reqs = 0;
}

/* An accepted connection that has not proved the secret within the heartbeat
 * timeout is refused: a process that connects and says nothing (or stops half
 * way) must not hold a connection open. */
static void handshake_deadlines(struct transport *t, int64_t now)
{
    struct transport *prev = lock(t);
    for (struct conn *c = t->conns; c; c = c->next)
        if (!c->outgoing && (c->state == CS_ACCEPTED || c->state == CS_CHALLENGED) &&
            now - c->accepted_at > t->hb_timeout_ns)
            refuse(t, c, "no handshake within %.1f s", (double)t->hb_timeout_ns / 1e9);
    unlock(t, prev);
}

/* A peer is lost: sends to it fail from now on, nothing more from it is
 * delivered, and the handler hears of it (report_lost, without the lock). */
static void peer_lost(struct transport *t, int node, const char *why)
{
    struct peer *p = &t->peer[node];
    if (p->lost_reported) return;
    p->lost_reported = true;
    atomic_store(&p->lost, true);
    snprintf(p->lost_why, sizeof(p->lost_why), "%s", why);
    p->lost_notify = true;
    t->lost_pending = true;
}

static void report_lost(struct transport *t)
{
    t->lost_pending = false;
    for (int k = 0; k < t->cfg.nnodes; k++) {
        struct peer *p = &t->peer[k];
        if (!p->lost_notify) continue;
        p->lost_notify = false;
        if (t->h.peer_lost) t->h.peer_lost(t->h.ctx, k, p->lost_why);
    }
}

/* Connection failures and closes, on the thread that progresses the worker. */
static void conn_events(struct transport *t)
{
    if (!atomic_exchange(&t->conn_events, false)) return;
    for (struct conn *c = t->conns; c; c = c->next) {
        if (atomic_load(&c->errored) && !c->err_handled) {
            c->err_handled = true;
            const char *why = why_text(c->err);
            int n = c->node;
            struct peer *p = n >= 0 ? &t->peer[n] : NULL;
            bool authed = p && (p->out == c || p->in == c);
            if (authed) {
                char a[96];
                if (!t->started)
                    fatal(t, "lost node %d (%s) during start-up: %s", n,
                          node_addr(t, n, a, sizeof(a)), why);
                else
                    peer_lost(t, n, why);
                c->state = CS_DEAD; /* its endpoint stays until transport_stop */
            } else {
                if (c->outgoing && p && p->dialling == c) {
                    p->dialling = NULL;
                    retry_later(p);
                }
                close_ep(t, c, true);
            }
        }
        if (c->state == CS_CLOSING) close_ep(t, c, !c->graceful_close);
    }
}

/* ---- handshake ------------------------------------------------------------------ */

static void hs_outgoing(struct transport *t, struct conn *c, const struct wire_hdr *h,
                        const uint8_t *pl)
{
    int k = c->node;
    struct peer *p = &t->peer[k];
    char a[96];
    node_addr(t, k, a, sizeof(a));
    if (h->type == WIRE_REFUSED) {
        char why[HS_MAX_PAYLOAD + 1];
        wire_reason_text(pl, h->len, why, sizeof(why));
        fatal(t, "node %d refused us: %s", k, why);
        c->state = CS_CLOSING;
        atomic_store(&t->conn_events, true);
        return;
    }
    if (h->type == WIRE_CHALLENGE && c->state == CS_DIALLING && h->len == 32) {
        if (h->src != k) {
            fatal(t, "expected node %d at %s, but node %u answered", k, a, h->src);
            return;
        }
        memcpy(c->nonce_s, pl, 32);
        uint8_t proof[32];
        wire_proof(proof, t->cfg.secret, t->cfg.secret_len, LABEL_CLIENT_PROOF, c->nonce_c,
                   c->nonce_s, (uint32_t)t->self, (uint32_t)k);
        c->state = CS_AUTH_SENT;
        hs_send(t, c, WIRE_AUTH, proof, sizeof(proof));
        return;
    }
    if (h->type == WIRE_WELCOME && c->state == CS_AUTH_SENT && h->len == 32) {
        uint8_t want[32];
        wire_proof(want, t->cfg.secret, t->cfg.secret_len, LABEL_SERVER_PROOF, c->nonce_c,
                   c->nonce_s, (uint32_t)t->self, (uint32_t)k);
        if (sodium_memcmp(want, pl, 32) != 0) {
            fatal(t, "node %d (%s) failed to prove the cluster secret", k, a);
            c->state = CS_CLOSING;
            atomic_store(&t->conn_events, true);
            return;
        }
        wire_session_key(p->key_out, t->cfg.secret, t->cfg.secret_len, c->nonce_c, c->nonce_s,
                         (uint32_t)t->self, (uint32_t)k);
        c->state = CS_AUTHED;
        p->out = c;
        p->out_ep = c->ep;
        p->dialling = NULL;
        return;
    }
    fatal(t, "node %d (%s) broke the handshake (%s)", k, a, wire_type_name(h->type));
    c->state = CS_CLOSING;
    atomic_store(&t->conn_events, true);
}

static void hs_accepted(struct transport *t, struct conn *c, const struct wire_hdr *h,
                        const uint8_t *pl)
{
    if (h->type == WIRE_HELLO && c->state == CS_ACCEPTED) {
        struct wire_hello hello;
        if (wire_hello_parse(pl, h->len, &hello) != 0) {
            refuse(t, c, "malformed HELLO");
            return;
        }
        if (hello.node >= (uint32_t)t->cfg.nnodes || hello.node == (uint32_t)t->self) {
            refuse(t, c, "no node %u in this cluster", hello.node);
            return;
        }
        c->node = (int)hello.node;
        if (hello.wire_version != WIRE_VERSION || strcmp(hello.unum_version, my_version())) {
            refuse(t, c,
                   "version mismatch: node %d runs unum %s (wire protocol %d), node %d runs unum "
                   "%s (wire protocol %u)",
                   t->self, my_version(), WIRE_VERSION, c->node, hello.unum_version,
                   hello.wire_version);
            return;
        }
        memcpy(c->nonce_c, hello.nonce, 32);
        randombytes_buf(c->nonce_s, 32);
        c->state = CS_CHALLENGED;
        hs_send(t, c, WIRE_CHALLENGE, c->nonce_s, 32);
        return;
    }
    if (h->type == WIRE_AUTH && c->state == CS_CHALLENGED && h->len == 32) {
        int k = c->node;
        struct peer *p = &t->peer[k];
        uint8_t want[32];
        wire_proof(want, t->cfg.secret, t->cfg.secret_len, LABEL_CLIENT_PROOF, c->nonce_c,
                   c->nonce_s, (uint32_t)k, (uint32_t)t->self);
        if (sodium_memcmp(want, pl, 32) != 0) {
            refuse(t, c, "wrong cluster secret");
            return;
        }
        if (p->in) {
            refuse(t, c, "node %d is already connected", k);
            return;
        }
        wire_session_key(p->key_in, t->cfg.secret, t->cfg.secret_len, c->nonce_c, c->nonce_s,
                         (uint32_t)k, (uint32_t)t->self);
        memset(&p->replay, 0, sizeof(p->replay));
        atomic_store_explicit(&p->last_recv, now_ns(), memory_order_relaxed);
        p->in = c;
        p->in_authed = true;
        c->state = CS_AUTHED;
        wire_proof(want, t->cfg.secret, t->cfg.secret_len, LABEL_SERVER_PROOF, c->nonce_c,
                   c->nonce_s, (uint32_t)k, (uint32_t)t->self);
        hs_send(t, c, WIRE_WELCOME, want, 32);
        return;
    }
    refuse(t, c, "unexpected %s during the handshake", wire_type_name(h->type));
}

static ucs_status_t am_handshake(void *arg, const void *header, size_t header_length, void *data,
                                 size_t length, const ucp_am_recv_param_t *param)
{
    struct transport *t = arg;
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) return UCS_OK;
    struct conn *c = conn_by_ep(t, param->reply_ep);
    /* Nothing more to say once authenticated (an authenticated outgoing
     * endpoint is in use by senders: it must not be closed here). */
    if (!c || c->state == CS_AUTHED || c->state == CS_CLOSING || c->state == CS_DEAD) return UCS_OK;
    if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) || header_length ||
        length > sizeof(struct wire_hdr) + HS_MAX_PAYLOAD || wire_check(data, length) != 0) {
        if (c->outgoing) {
            char a[96];
            fatal(t, "node %d (%s) sent a malformed handshake message", c->node,
                  node_addr(t, c->node, a, sizeof(a)));
            c->state = CS_CLOSING;
            atomic_store(&t->conn_events, true);
        } else {
            refuse(t, c, "malformed handshake message");
        }
        return UCS_OK;
    }
    struct wire_hdr h;
    memcpy(&h, data, sizeof(h));
    const uint8_t *pl = (const uint8_t *)data + sizeof(h);
    if (c->outgoing)
        hs_outgoing(t, c, &h, pl);
    else
        hs_accepted(t, c, &h, pl);
    return UCS_OK;
}

/* ---- receiving ---------------------------------------------------------------------- */

static ucs_status_t am_data(void *arg, const void *header, size_t header_length, void *data,
                            size_t length, const ucp_am_recv_param_t *param)
{
    struct transport *t = arg;
    if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) || header_length ||
        length < sizeof(struct wire_hdr)) {
        t->rejected_unknown++;
        return UCS_OK;
    }
    struct wire_hdr h;
    memcpy(&h, data, sizeof(h));
    if (h.src >= t->cfg.nnodes || h.src == t->self || !t->peer[h.src].in_authed) {
        t->rejected_unknown++;
        return UCS_OK;
    }
    struct peer *p = &t->peer[h.src];
    if (h.dst != t->self || wire_open(data, length, p->key_in) != 0 ||
        !wire_replay_accept(&p->replay, h.seq)) {
        atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
        return UCS_OK;
    }
    atomic_store_explicit(&p->last_recv, now_ns(), memory_order_relaxed);
    atomic_fetch_add_explicit(&p->msgs_recv, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_recv, h.len, memory_order_relaxed);
    if (h.type == WIRE_HEARTBEAT || p->lost_reported) return UCS_OK;
    const uint8_t *pl = (const uint8_t *)data + sizeof(h);
    if (!t->started) {
        defer_msg(t, &h, pl);
        return UCS_OK;
    }
    int n = atomic_load_explicit(&t->ninbox, memory_order_relaxed);
    if (n == t->inbox_cap) {
        int cap = t->inbox_cap ? 2 * t->inbox_cap : 64;
        struct rx *q = realloc(t->inbox, cap * sizeof(*q));
        if (!q) {
            atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
            return UCS_OK;
        }
        t->inbox = q;
        t->inbox_cap = cap;
    }
    struct rx *r = &t->inbox[n];
    r->h = h;
    r->copy = NULL;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_DATA) { /* UCX lends us its buffer */
        r->desc = data;
        atomic_store_explicit(&t->ninbox, n + 1, memory_order_release);
        return UCS_INPROGRESS;
    }
    r->desc = NULL;
    if (h.len > sizeof(r->small) && !(r->copy = malloc(h.len))) {
        atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
        return UCS_OK;
    }
    memcpy(r->copy ? r->copy : r->small, pl, h.len);
    atomic_store_explicit(&t->ninbox, n + 1, memory_order_release);
    return UCS_OK;
}

/* Moves the inbox behind what waits in rxq; under rx_lock. */
static void take_inbox(struct transport *t)
{
    if (!atomic_load_explicit(&t->ninbox, memory_order_acquire)) return;
    struct transport *prev = lock(t);
    int n = atomic_load_explicit(&t->ninbox, memory_order_relaxed);
    if (t->nrx == 0) { /* the usual case: the arrays change places */
        struct rx *q = t->rxq;
        int cap = t->rx_cap;
        t->rxq = t->inbox;
        t->rx_cap = t->inbox_cap;
        t->inbox = q;
        t->inbox_cap = cap;
        t->nrx = n;
    } else {
        if (t->nrx + n > t->rx_cap) {
            struct rx *q = realloc(t->rxq, (size_t)(t->nrx + n) * sizeof(*q));
            if (!q) { /* they stay in the inbox, for the next round */
                unlock(t, prev);
                return;
            }
            t->rxq = q;
            t->rx_cap = t->nrx + n;
        }
        memcpy(t->rxq + t->nrx, t->inbox, (size_t)n * sizeof(*t->rxq));
        t->nrx += n;
    }
    atomic_store_explicit(&t->ninbox, 0, memory_order_relaxed);
    unlock(t, prev);
}

/* Is anything waiting for its handler? Under rx_lock. */
static bool rx_pending(struct transport *t)
{
    return t->nrx || atomic_load_explicit(&t->ninbox, memory_order_acquire);
}

/* May a message of this type be handled on a thread other than the progress
 * thread (handlers.any_thread)? */
static bool runs_on_any_thread(const struct transport *t, int type)
{
    return t->h.any_thread && t->h.any_thread(t->h.ctx, type);
}

/* Runs the handlers of the messages the worker produced, in order (no lock held
 * but rx_lock), then gives UCX their buffers back. From a thread other than the
 * progress thread (any_thread) it stops at the first message whose handler must
 * run on the progress thread, and leaves it and the rest queued. Returns true
 * when the queue is empty. */
static bool deliver_rx(struct transport *t, bool any_thread)
{
    take_inbox(t);
    int done = 0;
    for (; done < t->nrx; done++) {
        struct rx *r = &t->rxq[done];
        if (any_thread && !runs_on_any_thread(t, r->h.type)) break;
        const uint8_t *pl = r->desc   ? (const uint8_t *)r->desc + sizeof(struct wire_hdr)
                            : r->copy ? r->copy
                                      : r->small;
        if (!atomic_load_explicit(&t->stop, memory_order_relaxed)) t->h.recv(t->h.ctx, &r->h, pl);
    }
    struct transport *prev = lock(t);
    for (int i = 0; i < done; i++)
        if (t->rxq[i].desc) ucp_am_data_release(t->worker, t->rxq[i].desc);
    unlock(t, prev);
    for (int i = 0; i < done; i++)
        free(t->rxq[i].copy);
    atomic_fetch_add_explicit(any_thread ? &t->handled_polled : &t->handled_thread, (uint64_t)done,
                              memory_order_relaxed);
    t->nrx -= done;
    if (t->nrx) memmove(t->rxq, t->rxq + done, (size_t)t->nrx * sizeof(*t->rxq));
    return t->nrx == 0 && !atomic_load_explicit(&t->ninbox, memory_order_relaxed);
}

/* Progresses the worker until it is idle or a batch of messages waits; under
 * rx_lock. Returns the number of events. */
static unsigned progress_worker(struct transport *t)
{
    unsigned n = 0, k;
    atomic_fetch_add_explicit(&t->rx_rounds, 1, memory_order_relaxed);
    struct transport *prev = lock(t);
    while ((k = ucp_worker_progress(t->worker)) != 0) {
        n += k;
        /* deliver, give the buffers back, then more */
        if (atomic_load_explicit(&t->ninbox, memory_order_relaxed) >= 64) break;
    }
    unlock(t, prev);
    return n;
}

bool transport_lingers(const struct transport *t)
{
    return t->linger_ns > 0;
}

/* Arms the worker so that an arrival wakes the progress thread (or wakes it at
 * once when something came meanwhile). */
static void arm_for_progress_thread(struct transport *t)
{
    struct transport *prev = lock(t);
    ucs_status_t st = ucp_worker_arm(t->worker);
    unlock(t, prev);
    if (st != UCS_OK) { /* something came meanwhile (or arming failed): its turn */
        uint64_t one = 1;
        ssize_t r = write(t->event_fd, &one, sizeof(one));
        (void)r;
    }
}

void transport_poll_begin(struct transport *t, bool may_linger)
{
    if (may_linger) atomic_fetch_add(&t->short_pollers, 1);
    atomic_fetch_add(&t->pollers, 1);
}

void transport_poll_end(struct transport *t, bool may_linger, bool linger)
{
    if (may_linger) atomic_fetch_sub(&t->short_pollers, 1);
    if (linger && t->linger_ns > 0) {
        /* No arming here: a vCPU fetching pages one after another polls again
         * within microseconds, and an armed worker would make each answer
         * wake the progress thread. The progress thread arms it once the
         * pollers stayed away for the linger time. */
        atomic_store(&t->linger_until, now_ns() + t->linger_ns);
        if (atomic_fetch_sub(&t->pollers, 1) == 1 && atomic_load(&t->loop_count)) wake(t);
        return;
    }
    if (atomic_fetch_sub(&t->pollers, 1) != 1) return;
    /* loopback messages sent while pollers were here did not wake anyone */
    if (atomic_load(&t->loop_count)) wake(t);
    /* the last poller: from now on arrivals must wake the progress thread */
    arm_for_progress_thread(t);
}

void transport_linger_cancel(struct transport *t)
{
    if (atomic_load_explicit(&t->linger_until, memory_order_relaxed) <= now_ns()) return;
    atomic_store(&t->linger_until, 0);
    if (atomic_load(&t->pollers) == 0) arm_for_progress_thread(t);
}

/* Loopback messages whose handlers may run on a polling thread, in order,
 * up to the first that may not (the progress thread's). Under rx_lock. */
static int drain_loopback_polled(struct transport *t)
{
    int n = 0;
    while (atomic_load_explicit(&t->loop_count, memory_order_relaxed)) {
        pthread_mutex_lock(&t->loop_lock);
        struct loop_msg *m = t->loop_head;
        if (m && !runs_on_any_thread(t, m->h.type)) m = NULL;
        if (m) {
            t->loop_head = m->next;
            if (!t->loop_head) t->loop_tail = &t->loop_head;
        }
        pthread_mutex_unlock(&t->loop_lock);
        if (!m) {
            wake(t);
            break;
        }
        atomic_fetch_sub(&t->loop_count, 1);
        if (!atomic_load(&t->stop)) t->h.recv(t->h.ctx, &m->h, m->payload);
        free(m);
        n++;
    }
    atomic_fetch_add_explicit(&t->handled_polled, (uint64_t)n, memory_order_relaxed);
    return n;
}

void transport_run_as_handler(struct transport *t, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&t->rx_lock);
    fn(arg);
    pthread_mutex_unlock(&t->rx_lock);
}

int transport_poll(struct transport *t)
{
    if (!t || !t->started || atomic_load_explicit(&t->stop, memory_order_relaxed)) return 0;
    if (pthread_mutex_trylock(&t->rx_lock) != 0) return 0; /* someone else is at it */
    int n = 0;
    /* messages left for the progress thread come before anything newer */
    if (!atomic_load_explicit(&t->rx_left, memory_order_relaxed)) {
        n = drain_loopback_polled(t);
        n += (int)progress_worker(t);
        if (rx_pending(t) && !deliver_rx(t, true)) {
            atomic_store(&t->rx_left, true);
            wake(t);
        }
    }
    pthread_mutex_unlock(&t->rx_lock);
    return n;
}

static unsigned drain_loopback(struct transport *t)
{
    if (!atomic_load_explicit(&t->loop_count, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&t->loop_lock);
    struct loop_msg *m = t->loop_head;
    t->loop_head = NULL;
    t->loop_tail = &t->loop_head;
    pthread_mutex_unlock(&t->loop_lock);
    unsigned n = 0;
    while (m) {
        struct loop_msg *next = m->next;
        atomic_fetch_sub(&t->loop_count, 1);
        if (!atomic_load(&t->stop)) t->h.recv(t->h.ctx, &m->h, m->payload);
        free(m);
        m = next;
        n++;
    }
    return n;
}

/* The oldest loopback message may only be handled by the progress thread. */
static bool loop_head_is_progress_only(struct transport *t)
{
    pthread_mutex_lock(&t->loop_lock);
    const struct loop_msg *m = t->loop_head;
    bool r = m && !runs_on_any_thread(t, m->h.type);
    pthread_mutex_unlock(&t->loop_lock);
    return r;
}

/* ---- the progress loop ------------------------------------------------------------ */

/* One round of work; returns how much was done (0: idle). */
static unsigned step(struct transport *t)
{
    /* Loopback and deferred messages first: those deferred during start-up
     * came before anything the worker holds now. */
    unsigned n = 0;
    /* while other threads poll, the worker is theirs: only what they left and
     * loopback messages are this thread's */
    bool polled = t->started && atomic_load(&t->pollers) > 0;
    /* but a connection event is reported only after what came before it */
    if (atomic_load_explicit(&t->conn_events, memory_order_relaxed)) polled = false;
    /* loopback messages too are the pollers' unless one must run here */
    bool loop_mine = atomic_load(&t->loop_count) && (!polled || loop_head_is_progress_only(t));
    if (!polled || atomic_load(&t->rx_left) || loop_mine) {
        pthread_mutex_lock(&t->rx_lock); /* handlers run one at a time, loopback too */
        n += t->started && (!polled || loop_mine) ? drain_loopback(t) : 0;
        if (atomic_exchange(&t->rx_left, false)) n++;
        if (!polled) n += progress_worker(t);
        if (rx_pending(t)) deliver_rx(t, false);
        pthread_mutex_unlock(&t->rx_lock);
    }
    struct transport *prev = lock(t);
    if (t->nconn_reqs) {
        accept_requests(t);
        n++;
    }
    if (atomic_load_explicit(&t->conn_events, memory_order_relaxed)) {
        conn_events(t);
        n++;
    }
    if (t->nclosing) reap_closing(t);
    unlock(t, prev);
    if (t->lost_pending) report_lost(t);
    return n;
}

/* A heartbeat to every peer this node sent nothing else to in the last interval.
 * Sent by a thread of their own (heartbeat_thread), or by the progress thread when
 * it sees them due first. A heartbeat says the process is alive and reachable,
 * which is what the peers' failure detector is for; the progress thread cannot be
 * the only sender, because a handler can hold it for seconds on an oversubscribed
 * host (an invalidation waiting for the acknowledgements of 16 vCPU threads that
 * share 2 cores with 48 others). */
static void heartbeats(struct transport *t, int64_t now)
{
    int64_t due = atomic_load_explicit(&t->next_heartbeat, memory_order_relaxed);
    if (now < due ||
        !atomic_compare_exchange_strong(&t->next_heartbeat, &due, now + t->hb_interval_ns))
        return;
    for (int k = 0; k < t->cfg.nnodes; k++) {
        struct peer *p = &t->peer[k];
        if (k == t->self || atomic_load_explicit(&p->lost, memory_order_relaxed)) continue;
        if (!atomic_exchange_explicit(&p->sent_recently, false, memory_order_relaxed))
            send_remote(t, k, WIRE_HEARTBEAT, NULL, NULL, 0);
    }
}

/* Takes in what the worker holds (the progress thread, outside step). */
static void take_in(struct transport *t)
{
    pthread_mutex_lock(&t->rx_lock);
    progress_worker(t);
    if (rx_pending(t)) deliver_rx(t, false);
    pthread_mutex_unlock(&t->rx_lock);
}

/* The heartbeat thread's check, every STALL_CHECK_NS: when nothing progressed
 * the worker since the last check although sends are in flight or the receive
 * side is held (a handler waiting for seconds, as an invalidation can on an
 * oversubscribed host), it progresses the worker itself. The sends complete
 * and what waited behind them goes out (heartbeats too: without this a node
 * held in a handler after sending a page looked dead to its peers); arrivals
 * wait in the inbox for their handlers. */
static void unstall(struct transport *t, uint64_t *rounds_seen)
{
    uint64_t rounds = atomic_load_explicit(&t->rx_rounds, memory_order_relaxed);
    bool progressed = rounds != *rounds_seen;
    *rounds_seen = rounds;
    if (progressed) return;
    bool held = pthread_mutex_trylock(&t->rx_lock) != 0;
    if (!held) pthread_mutex_unlock(&t->rx_lock);
    if (!held && !atomic_load(&t->inflight)) return;
    struct transport *prev = lock(t);
    for (int i = 0; i < 1024 && ucp_worker_progress(t->worker); i++)
        ;
    unlock(t, prev);
    atomic_fetch_add_explicit(&t->unstalls, 1, memory_order_relaxed);
    if (atomic_load(&t->ninbox)) wake(t);
}

static void *heartbeat_thread(void *arg)
{
    struct transport *t = arg;
    uint64_t rounds_seen = 0;
    while (!atomic_load(&t->stop)) {
        int64_t now = now_ns();
        heartbeats(t, now);
        unstall(t, &rounds_seen);
        int64_t due = atomic_load(&t->next_heartbeat);
        if (due > now + STALL_CHECK_NS) due = now + STALL_CHECK_NS;
        if (due < now + MS) due = now + MS;
        struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
        /* the stop is set under hb_mu: seen here, or its signal comes after this waits */
        pthread_mutex_lock(&t->hb_mu);
        if (!atomic_load(&t->stop)) pthread_cond_timedwait(&t->hb_cv, &t->hb_mu, &ts);
        pthread_mutex_unlock(&t->hb_mu);
    }
    return NULL;
}

static void timers(struct transport *t, int64_t now)
{
    if (now < t->next_tick) return;
    t->next_tick = now + TICK_NS;
    handshake_deadlines(t, now);
    heartbeats(t, now);
    bool took_in = false;
    for (int k = 0; k < t->cfg.nnodes; k++) {
        struct peer *p = &t->peer[k];
        if (k == t->self || p->lost_reported) continue;
        int64_t silent = now - atomic_load_explicit(&p->last_recv, memory_order_relaxed);
        if (silent > t->hb_timeout_ns && !took_in) {
            /* this thread may have been held in a handler as long: what the peer
             * sent meanwhile may still wait in the worker */
            take_in(t);
            took_in = true;
            silent = now - atomic_load_explicit(&p->last_recv, memory_order_relaxed);
        }
        if (silent > t->hb_timeout_ns) {
            char why[64];
            snprintf(why, sizeof(why), "no message for %.1f s", (double)silent / 1e9);
            peer_lost(t, k, why);
        }
    }
    if (t->lost_pending) report_lost(t);
    if (t->h.tick) t->h.tick(t->h.ctx);
}

/* Sleeps until the worker or a sender has something, or `timeout_ns` passed.
 * Returns without sleeping when there is work already. `naps`: how many times in
 * a row it slept through a linger that pollers kept extending. Returns whether it
 * slept because pollers were about (the worker unarmed) and nothing woke it. */
static bool wait_events(struct transport *t, int64_t timeout_ns, int naps)
{
    atomic_store(&t->sleeping, 1);
    if (atomic_load(&t->loop_count) || atomic_load(&t->stop) || atomic_load(&t->conn_events) ||
        t->nconn_reqs || atomic_load(&t->rx_left) ||
        (atomic_load(&t->ninbox) && !atomic_load(&t->pollers))) {
        atomic_store(&t->sleeping, 0);
        return false;
    }
    /* While a thread polls, the worker stays unarmed: what comes is its to
     * serve, and an arrival must not wake this thread. A poller that may come
     * back soon leaves it unarmed for the linger time, after which this
     * thread arms it; one that will not arms it itself (transport_poll_end).
     * A poller that stops without either (a vCPU the host does not run) is
     * noticed after at most one nap. */
    int64_t now = now_ns(), linger = atomic_load(&t->linger_until) - now;
    int64_t nap = t->linger_ns << (naps < 8 ? naps : 8);
    if (nap > LINGER_NAP_MAX_NS) nap = LINGER_NAP_MAX_NS;
    bool armed = false, napping = false;
    if (atomic_load(&t->pollers)) {
        if (atomic_load(&t->short_pollers) && t->linger_ns && timeout_ns > nap) {
            timeout_ns = nap;
            napping = true;
        }
    } else if (linger > 0) {
        if (linger < nap) linger = nap;
        if (timeout_ns > linger) timeout_ns = linger;
        napping = true;
    } else {
        struct transport *prev = lock(t);
        ucs_status_t st = ucp_worker_arm(t->worker);
        unlock(t, prev);
        if (st == UCS_ERR_BUSY) {
            atomic_store(&t->sleeping, 0);
            return false;
        }
        armed = true;
    }
    if (armed && atomic_load(&t->inflight) > 0 && timeout_ns > MS) timeout_ns = MS;
    if (timeout_ns < 1000) timeout_ns = 1000;
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    struct epoll_event ev[4];
    int n = epoll_pwait2(t->epoll_fd, ev, 4, &ts, NULL);
    atomic_store(&t->sleeping, 0);
    atomic_fetch_add_explicit(&t->sleeps, 1, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        if (ev[i].data.fd == t->event_fd) {
            uint64_t v;
            ssize_t r = read(t->event_fd, &v, sizeof(v));
            (void)r;
        }
    }
    return napping && n <= 0;
}

static void *progress_thread(void *arg)
{
    struct transport *t = arg;
    int64_t idle_since = now_ns();
    int naps = 0;
    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        unsigned n = step(t);
        int64_t now = now_ns();
        timers(t, now);
        if (n) {
            idle_since = now;
            naps = 0;
            continue;
        }
        int64_t spin_ns = atomic_load_explicit(&t->spin_ns, memory_order_relaxed);
        if (now - idle_since < spin_ns) {
            /* Poll, but let any other runnable thread of this core go first:
             * vCPU threads of several nodes share two cores here. When one
             * did (the yield took long), the core is busy: polling would
             * only come back a time slice later, so sleep instead, to be
             * woken (promptly: a thread that slept gets the CPU back first). */
            sched_yield();
            if (now_ns() - now > YIELD_BUSY_NS) idle_since = now - spin_ns;
            continue;
        }
        if (wait_events(t, t->next_tick - now, naps)) {
            /* nothing came while pollers were about: nap longer, and no polling
             * spell now (it would take the core from a running vCPU) */
            naps++;
            idle_since = now_ns() - spin_ns;
        } else {
            naps = 0;
            idle_since = now_ns();
        }
    }
    return NULL;
}

bool transport_set_realtime(struct transport *t)
{
    const char *rt = getenv("UNUM_TRANSPORT_RT");
    if (!t || !t->thread_running || (rt && !strcmp(rt, "0"))) return false;
    int prio = rt && atoi(rt) > 0 ? atoi(rt) : 1;
    if (prio > sched_get_priority_max(SCHED_FIFO)) prio = sched_get_priority_max(SCHED_FIFO);
    struct sched_param sp = {.sched_priority = prio};
    if (pthread_setschedparam(t->thread, SCHED_FIFO, &sp) != 0) return false;
    /* polling at real-time priority would take the core from the vCPUs */
    atomic_store(&t->spin_ns, 0);
    return true;
}

/* ---- describe --------------------------------------------------------------------- */

/* The transport of the endpoint's active-message lane, then its other lanes,
 * from ucp_ep_print_info's lines like
 *   "#   lane[1]:  3:sysv/memory.0 md[2]  -> md[2]/sysv/sysdev[255] am am_bw#0 keepalive"
 * giving "sysv/memory (also tcp/lo, tcp/eth0)". */
static void describe_ep(ucp_ep_h ep, char *out, size_t outlen)
{
    snprintf(out, outlen, "unknown");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    ucp_ep_print_info(ep, f);
    fclose(f);
    if (!text) return;
    char am[48] = "", others[96] = "";
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *lane = strstr(line, "lane[");
        char *colon = lane ? strchr(lane, ':') : NULL;
        char tl[48];
        if (!colon || sscanf(colon + 1, " %*d:%47s", tl) != 1) continue; /* also skips "cm" */
        char *dot = strrchr(tl, '.');
        if (dot && dot > strchr(tl, '/')) *dot = 0; /* "sysv/memory.0" -> "sysv/memory" */
        char *arrow = strstr(line, "->");
        size_t alen = arrow ? strlen(arrow) : 0;
        bool is_am =
            arrow && (strstr(arrow, " am ") || (alen >= 3 && !strcmp(arrow + alen - 3, " am")));
        if (is_am && !am[0]) {
            snprintf(am, sizeof(am), "%s", tl);
        } else if (!strstr(others, tl) && strlen(others) + strlen(tl) + 3 < sizeof(others)) {
            if (others[0]) strcat(others, ", ");
            strcat(others, tl);
        }
    }
    free(text);
    if (am[0] && others[0])
        snprintf(out, outlen, "%s (also %s)", am, others);
    else if (am[0] || others[0])
        snprintf(out, outlen, "%s", am[0] ? am : others);
}

const char *transport_describe(struct transport *t, int node)
{
    if (!t || node < 0 || node >= t->cfg.nnodes) return "none";
    if (node == t->self) return "loopback";
    return t->peer[node].desc[0] ? t->peer[node].desc : "unknown";
}

void transport_stats(struct transport *t, int node, struct transport_peer_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!t || node < 0 || node >= t->cfg.nnodes) return;
    struct peer *p = &t->peer[node];
    out->msgs_sent = atomic_load(&p->msgs_sent);
    out->msgs_recv = atomic_load(&p->msgs_recv);
    out->bytes_sent = atomic_load(&p->bytes_sent);
    out->bytes_recv = atomic_load(&p->bytes_recv);
    out->rejected = atomic_load(&p->rejected);
    if (node == t->self) out->rejected += t->rejected_unknown; /* from no known node */
}

void transport_handled(struct transport *t, uint64_t *by_thread, uint64_t *by_pollers)
{
    *by_thread = t ? atomic_load(&t->handled_thread) : 0;
    *by_pollers = t ? atomic_load(&t->handled_polled) : 0;
}

uint64_t transport_unstalls(struct transport *t)
{
    return t ? atomic_load(&t->unstalls) : 0;
}

uint64_t transport_sleeps(struct transport *t)
{
    return t ? atomic_load(&t->sleeps) : 0;
}

/* ---- start and stop ----------------------------------------------------------------- */

static void destroy(struct transport *t)
{
    if (t->hb_running) {
        pthread_mutex_lock(&t->hb_mu);
        atomic_store(&t->stop, true);
        pthread_cond_signal(&t->hb_cv);
        pthread_mutex_unlock(&t->hb_mu);
        pthread_join(t->hb_thread, NULL);
        t->hb_running = false;
    }
    if (t->thread_running) {
        atomic_store(&t->stop, true);
        atomic_store(&t->sleeping, 1);
        wake(t);
        pthread_join(t->thread, NULL);
        t->thread_running = false;
    }
    atomic_store(&t->stop, true);
    /* a transport_poll that started before the stop ends first */
    pthread_mutex_lock(&t->rx_lock);
    pthread_mutex_unlock(&t->rx_lock);
    struct transport *prev = lock(t);
    if (t->worker) {
        take_inbox(t);
        for (int i = 0; i < t->nrx; i++) {
            if (t->rxq[i].desc) ucp_am_data_release(t->worker, t->rxq[i].desc);
            free(t->rxq[i].copy);
        }
        t->nrx = 0;
        for (int i = 0; i < t->nconn_reqs; i++)
            ucp_listener_reject(t->listener, t->conn_reqs[i]);
        t->nconn_reqs = 0;
        if (t->listener) ucp_listener_destroy(t->listener);
        t->listener = NULL;
        for (struct conn *c = t->conns; c; c = c->next)
            close_ep(t, c, true);
        int64_t until = now_ns() + CLOSE_WAIT_NS;
        while (t->nclosing && now_ns() < until) {
            ucp_worker_progress(t->worker);
            reap_closing(t);
        }
        for (int i = 0; i < t->nclosing; i++)
            ucp_request_free(t->closing[i]);
        t->nclosing = 0;
        ucp_worker_destroy(t->worker);
    }
    if (t->ucp) ucp_cleanup(t->ucp);
    unlock(t, prev);
    for (struct conn *c = t->conns, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    for (struct loop_msg *m = t->loop_head, *n; m; m = n) {
        n = m->next;
        free(m);
    }
    free(t->closing);
    free(t->rxq);
    free(t->inbox);
    if (t->epoll_fd >= 0) close(t->epoll_fd);
    if (t->event_fd >= 0) close(t->event_fd);
    for (int k = 0; k < CLUSTER_MAX_NODES; k++)
        for (struct sbuf *b = t->peer[k].backlog, *n; b; b = n) {
            n = b->next;
            free(b);
        }
    pthread_mutex_destroy(&t->loop_lock);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->rx_lock);
    sodium_memzero(t->peer, sizeof(t->peer));
    sodium_memzero(t->cfg.secret, sizeof(t->cfg.secret));
    free(t);
}

void transport_stop(struct transport *t)
{
    if (t) destroy(t);
}

static bool tls_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n) {
        bool start = p == list || p[-1] == ',' || p[-1] == '^';
        bool end = p[n] == 0 || p[n] == ',' || p[n] == ':';
        if (start && end) return true;
    }
    return false;
}

static bool tls_has_mm(const char *list)
{
    if (!list[0] || list[0] == '^') return true;
    static const char *const mm[] = {"sm", "shm", "mm", "posix", "sysv", "all"};
    for (size_t i = 0; i < sizeof(mm) / sizeof(mm[0]); i++)
        if (tls_has(list, mm[i])) return true;
    return false;
}

/* The UCX_TLS value for a configured transport list. UCX 1.13 connects
 * client-server endpoints only if some transport in the list runs on the
 * network device of the connection's address, so a list of local transports
 * only ("sm", "posix", ...) gets tcp added: the message lanes still go over
 * shared memory between processes of one host. */
static void tls_list(const char *want, char *out, size_t len)
{
    static const char *const net[] = {
        "tcp",  "all", "ib",   "rc",       "rc_v",    "rc_x",     "ud",      "ud_v",
        "ud_x", "dc",  "dc_x", "rc_verbs", "rc_mlx5", "ud_verbs", "ud_mlx5", "dc_mlx5"};
    bool has_net = want[0] == '^';
    for (size_t i = 0; i < sizeof(net) / sizeof(net[0]) && !has_net; i++)
        has_net = tls_has(want, net[i]);
    snprintf(out, len, "%s%s", want, has_net ? "" : ",tcp");
}

static int ucx_setup(struct transport *t, char *err, size_t errlen)
{
    /* A node restarted at once can listen on its port again although the
     * connections of its previous run linger in TIME_WAIT. (ucp_config_modify
     * does not reach the connection manager's settings in UCX 1.13; the
     * environment does, and the user's own setting wins.) */
    setenv("UCX_TCP_CM_REUSEADDR", "y", 0);
    /* Without TCP's one-sided put, a connection between processes of one host
     * has no TCP lane at all (only the shared-memory one): with one, every
     * worker progress call also polls the TCP sockets (an epoll_wait system
     * call), which doubled the shared-memory round trip (64 B: 4.5 -> 2.4 µs,
     * bench/transport_rtt). We send active messages only, so nothing is lost. */
    setenv("UCX_TCP_PUT_ENABLE", "n", 0);
    ucp_config_t *config;
    ucs_status_t st = ucp_config_read(NULL, NULL, &config);
    if (st != UCS_OK) {
        set_err(err, errlen, "UCX configuration: %s", ucs_status_string(st));
        return -1;
    }
    if (t->cfg.transport[0]) {
        char tls[64];
        tls_list(t->cfg.transport, tls, sizeof(tls));
        st = ucp_config_modify(config, "TLS", tls);
        if (st != UCS_OK) {
            ucp_config_release(config);
            set_err(err, errlen, "bad transport '%s': %s", t->cfg.transport, ucs_status_string(st));
            return -1;
        }
    }
    /* Shared-memory transports are left out of endpoints that want peer
     * failure handling unless told they may be used anyway (UCX issue #8477);
     * our heartbeats and the connection manager's socket detect a lost peer.
     * (Setting it when no shared-memory transport is in the list makes UCX
     * warn that the setting is unused.) */
    if (tls_has_mm(t->cfg.transport)) ucp_config_modify(config, "MM_ERROR_HANDLING", "y");

    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 0,
    };
    st = ucp_init(&params, config, &t->ucp);
    ucp_config_release(config);
    if (st != UCS_OK) {
        t->ucp = NULL;
        set_err(err, errlen, "cannot start UCX (transport '%s'): %s",
                t->cfg.transport[0] ? t->cfg.transport : "default", ucs_status_string(st));
        return -1;
    }
    ucp_worker_params_t wp = {
        .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_MULTI,
    };
    st = ucp_worker_create(t->ucp, &wp, &t->worker);
    if (st != UCS_OK) {
        t->worker = NULL;
        set_err(err, errlen, "cannot create a UCX worker: %s", ucs_status_string(st));
        return -1;
    }
    st = ucp_worker_get_efd(t->worker, &t->worker_fd);
    if (st != UCS_OK) {
        set_err(err, errlen, "UCX worker has no event fd: %s", ucs_status_string(st));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = t->worker_fd};
    if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->worker_fd, &ev) != 0) {
        set_err(err, errlen, "epoll: %s", strerror(errno));
        return -1;
    }
    ucp_am_handler_param_t hp = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .flags = UCP_AM_FLAG_WHOLE_MSG,
        .arg = t,
    };
    hp.id = AM_HANDSHAKE;
    hp.cb = am_handshake;
    if (ucp_worker_set_am_recv_handler(t->worker, &hp) != UCS_OK) goto am_fail;
    hp.id = AM_DATA;
    hp.cb = am_data;
    if (ucp_worker_set_am_recv_handler(t->worker, &hp) != UCS_OK) goto am_fail;
    return 0;
am_fail:
    set_err(err, errlen, "cannot set UCX active-message handlers");
    return -1;
}

static int listen_on(struct transport *t, char *err, size_t errlen)
{
    const struct cluster_node *me = &t->cfg.node[t->self];
    struct sockaddr_in sa;
    if (resolve(me->host, me->port, &sa) != 0) {
        set_err(err, errlen, "node %d: cannot resolve %s", t->self, me->host);
        return -1;
    }
    /* UCX would print its own error for a port in use; find out first. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)), e = errno;
        close(fd);
        if (r != 0) {
            set_err(err, errlen, "node %d: cannot listen on %s:%u: %s", t->self, me->host, me->port,
                    e == EADDRINUSE ? "address in use" : strerror(e));
            return -1;
        }
    }
    ucp_listener_params_t lp = {
        .field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
        .sockaddr = {.addr = (struct sockaddr *)&sa, .addrlen = sizeof(sa)},
        .conn_handler = {.cb = conn_request, .arg = t},
    };
    ucs_status_t st = ucp_listener_create(t->worker, &lp, &t->listener);
    if (st != UCS_OK) {
        t->listener = NULL;
        set_err(err, errlen, "node %d: cannot listen on %s:%u: %s", t->self, me->host, me->port,
                st == UCS_ERR_BUSY ? "address in use" : ucs_status_string(st));
        return -1;
    }
    return 0;
}

static bool all_connected(struct transport *t)
{
    for (int k = 0; k < t->cfg.nnodes; k++)
        if (k != t->self && (!t->peer[k].out || !t->peer[k].in)) return false;
    return true;
}

static void startup_timeout(struct transport *t)
{
    char a[96];
    for (int k = 0; k < t->cfg.nnodes; k++) {
        struct peer *p = &t->peer[k];
        if (k == t->self || p->out) continue;
        fatal(t, "node %d (%s) is unreachable%s", k, node_addr(t, k, a, sizeof(a)),
              p->unresolved ? ": its host name does not resolve" : "");
        return;
    }
    for (int k = 0; k < t->cfg.nnodes; k++) {
        if (k == t->self || t->peer[k].in) continue;
        fatal(t, "node %d (%s) did not connect to us", k, node_addr(t, k, a, sizeof(a)));
        return;
    }
}

int transport_start(struct transport **out, const struct cluster_config *cfg, int self,
                    const struct transport_handlers *h, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || cfg->nnodes < 1 || cfg->nnodes > CLUSTER_MAX_NODES || self < 0 ||
        self >= cfg->nnodes || !h || !h->recv) {
        set_err(err, errlen, "transport: bad arguments");
        return -1;
    }
    if (cfg->secret_len == 0 || cfg->secret_len > CLUSTER_SECRET_MAX) {
        set_err(err, errlen, "transport: no cluster secret");
        return -1;
    }
    if (sodium_init() < 0) {
        set_err(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    struct transport *t = calloc(1, sizeof(*t));
    if (!t) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    t->cfg = *cfg;
    t->self = self;
    t->h = *h;
    t->epoll_fd = t->event_fd = t->worker_fd = -1;
    pthread_mutex_init(&t->loop_lock, NULL);
    t->loop_tail = &t->loop_head;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->rx_lock, NULL);
    pthread_mutex_init(&t->hb_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* now_ns's clock */
    pthread_cond_init(&t->hb_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int k = 0; k < CLUSTER_MAX_NODES; k++)
        t->peer[k].backlog_tail = &t->peer[k].backlog;
    int connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    t->hb_timeout_ns = (cfg->heartbeat_timeout_ms > 0 ? cfg->heartbeat_timeout_ms : 2000) * MS;
    const char *spin = getenv("UNUM_TRANSPORT_SPIN_US");
    t->spin_ns = (spin && *spin ? atoll(spin) : DEFAULT_SPIN_US) * 1000;
    const char *linger = getenv("UNUM_TRANSPORT_LINGER_US");
    int64_t linger_us = linger && *linger ? atoll(linger) : DEFAULT_LINGER_US;
    t->linger_ns = (linger_us < 0 ? 0 : linger_us > 100000 ? 100000 : linger_us) * 1000;

    t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    t->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->epoll_fd < 0 || t->event_fd < 0) {
        set_err(err, errlen, "transport: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = t->event_fd};
    if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->event_fd, &ev) != 0) {
        set_err(err, errlen, "epoll: %s", strerror(errno));
        goto fail;
    }
    if (ucx_setup(t, err, errlen) != 0) goto fail;
    if (cfg->nnodes > 1 && listen_on(t, err, errlen) != 0) goto fail;

    /* Start-up: dial every peer (again every RETRY_NS while it does not answer)
     * and answer their dials, until every pair is authenticated both ways. */
    int64_t start = now_ns(), deadline = start + connect_ms * MS;
    for (int k = 0; k < cfg->nnodes; k++)
        t->peer[k].next_attempt = start;
    for (;;) {
        step(t);
        if (t->fatal[0]) break;
        int64_t now = now_ns();
        handshake_deadlines(t, now);
        for (int k = 0; k < cfg->nnodes; k++) {
            struct peer *p = &t->peer[k];
            if (k != self && !p->out && !p->dialling && now >= p->next_attempt) {
                struct transport *prev = lock(t);
                dial(t, k);
                unlock(t, prev);
            }
        }
        if (all_connected(t)) break;
        if (now >= deadline) {
            startup_timeout(t);
            break;
        }
        int64_t wait = 10 * MS; /* or less, until the next dial is due */
        for (int k = 0; k < cfg->nnodes; k++) {
            struct peer *p = &t->peer[k];
            if (k != self && !p->out && !p->dialling && p->next_attempt - now < wait)
                wait = p->next_attempt - now > 0 ? p->next_attempt - now : 0;
        }
        wait_events(t, wait, 0);
    }
    if (t->fatal[0]) {
        set_err(err, errlen, "%s", t->fatal);
        goto fail;
    }

    int64_t now = now_ns();
    for (int k = 0; k < cfg->nnodes; k++) {
        struct peer *p = &t->peer[k];
        atomic_store_explicit(&p->last_recv, now, memory_order_relaxed);
        if (k != self) {
            struct transport *prev = lock(t);
            describe_ep(p->out_ep, p->desc, sizeof(p->desc));
            unlock(t, prev);
        }
    }
    t->next_tick = now + TICK_NS;
    t->hb_interval_ns = t->hb_timeout_ns / 4 < HEARTBEAT_NS ? t->hb_timeout_ns / 4 : HEARTBEAT_NS;
    t->next_heartbeat = now + t->hb_interval_ns;
    t->started = true;
    *out = t; /* before the handlers can run: they may want it */
    if (pthread_create(&t->thread, NULL, progress_thread, t) != 0) {
        *out = NULL;
        set_err(err, errlen, "transport: cannot start the progress thread");
        goto fail;
    }
    t->thread_running = true;
    pthread_setname_np(t->thread, "transport");
    if (pthread_create(&t->hb_thread, NULL, heartbeat_thread, t) != 0) {
        *out = NULL;
        set_err(err, errlen, "transport: cannot start the heartbeat thread");
        goto fail;
    }
    t->hb_running = true;
    pthread_setname_np(t->hb_thread, "heartbeats");
    return 0;
fail:
    destroy(t);
    return -1;
}
