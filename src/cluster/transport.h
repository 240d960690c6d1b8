/* transport.h — node-to-node messaging on UCX (shared memory between processes
 * on one host, TCP, RDMA verbs where present). A full mesh: every node listens
 * on its address and connects to every other node; each connection is
 * authenticated with the cluster secret before any message is delivered (see
 * wire.h). Messages to this node itself are looped back through the same
 * delivery path.
 *
 * Threads: one progress thread per node drives the UCX worker and runs the
 * handlers; a thread that would only wait may serve instead (transport_poll)
 * for the handlers that allow it. transport_send may be called from any thread
 * (vCPU threads send requests directly), including handlers, and while holding
 * locks: handlers
 * run with no transport lock held. Handlers must not block waiting for another
 * message. Messages from one node to another are delivered in sending order. */
#ifndef UNUM_CLUSTER_TRANSPORT_H
#define UNUM_CLUSTER_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/config.h"
#include "cluster/wire.h"

struct transport;

struct transport_handlers {
    /* Every authenticated message (and every loopback message), on the progress
     * thread. `payload` holds h->len bytes and is valid during the call only. */
    void (*recv)(void *ctx, const struct wire_hdr *h, const void *payload);
    /* A peer failed after start-up: connection error, or no message for the
     * heartbeat timeout. Called once per peer, on the progress thread. */
    void (*peer_lost)(void *ctx, int node, const char *why);
    /* Called on the progress thread about every 100 ms. Optional. */
    void (*tick)(void *ctx);
    /* May recv run for a message of this type on a thread that called
     * transport_poll? Optional (none may). Such a handler must not wait for
     * anything a polling thread could be holding. */
    bool (*any_thread)(void *ctx, int type);
    void *ctx;
};

/* Starts the worker, the listener on cfg->node[self] and connections to every
 * other node, authenticates them all, then starts the progress thread. Returns
 * 0, or -1 with a one-line reason in err (unreachable peer after the connect
 * timeout, port in use, peer refused our secret, version mismatch, ...). */
int transport_start(struct transport **out, const struct cluster_config *cfg, int self,
                    const struct transport_handlers *h, char *err, size_t errlen);

/* Queues one message; any thread. dst may be self. 0, or -errno (peer lost,
 * payload too large). The payload is copied before return. */
int transport_send(struct transport *t, int dst, int type, const uint64_t arg[3],
                   const void *payload, uint32_t len);

/* Serves the network from the calling thread, which would otherwise wait
 * for a message (a vCPU waiting for a page, or halted): progresses the worker
 * and runs the handlers of the messages that came, as the progress thread
 * would, as long as handlers.any_thread allows (the rest are left to the
 * progress thread, in order). Saves the progress thread's wake-up on the way of
 * an answer. Returns at once when another thread is doing it. Returns the
 * number of events (0: nothing came). */
int transport_poll(struct transport *t);

/* Around a stretch of transport_poll calls: while any thread is inside, the
 * progress thread leaves the worker to the pollers and is not woken by what
 * arrives; the last to leave hands it back — at once, or with `linger` (a
 * poller that got what it waited for and is likely to come back within
 * microseconds, such as a vCPU fetching one page after another) once
 * UNUM_TRANSPORT_LINGER_US (default 200) passed without a poller: a message
 * arriving in that time waits for the next poller or the end of it. Only a
 * poller that began with may_linger may end with linger. */
void transport_poll_begin(struct transport *t, bool may_linger);
void transport_poll_end(struct transport *t, bool may_linger, bool linger);

/* A thread that may have left the worker lingering is about to sleep (a vCPU
 * halting, or giving up waiting): the linger ends now, so that what arrives
 * wakes the progress thread instead of waiting for the linger to run out. */
void transport_linger_cancel(struct transport *t);

/* Runs fn(arg) on the calling thread under the handlers' lock: one at a time
 * with every message handler (the caller must not be a handler, and must not
 * hold anything a handler waits for). */
void transport_run_as_handler(struct transport *t, void (*fn)(void *arg), void *arg);

/* Is the linger time above 0? */
bool transport_lingers(const struct transport *t);

/* Messages from other nodes handled so far by the progress thread and by
 * threads in transport_poll. */
void transport_handled(struct transport *t, uint64_t *by_thread, uint64_t *by_pollers);
/* How many times the progress thread went to sleep (each wake-up follows one). */
uint64_t transport_sleeps(struct transport *t);
/* How many times the heartbeat thread progressed the worker because nothing else
 * did while sends were in flight or a handler held the receive side. */
uint64_t transport_unstalls(struct transport *t);

/* Runs the progress thread (and with it the handlers: DSM service, interrupt and
 * I/O messages) at real-time priority (SCHED_FIFO), so that a message is served
 * as soon as it arrives even when vCPU threads occupy every core; it then sleeps
 * as soon as it is idle instead of polling. UNUM_TRANSPORT_RT=0 keeps normal
 * scheduling; =N picks FIFO priority N (default 1). Returns true when in effect
 * (needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance). Call once the handlers'
 * context is complete: they must never wait for a normal thread by polling. */
bool transport_set_realtime(struct transport *t);

/* Stops the progress thread (handlers no longer run), closes connections. */
void transport_stop(struct transport *t);

/* The transport UCX selected toward a peer, for reports ("sysv/memory", "tcp/lo"). */
const char *transport_describe(struct transport *t, int node);

/* Tests only: the unum version this process claims in its handshakes (NULL:
 * UNUM_VERSION), to exercise the version check. */
extern const char *transport_claimed_version;
/* Tests only: dial but never say HELLO (a process holding a connection open
 * without a handshake, which the acceptor must refuse after a while). */
extern bool transport_test_silent_dialler;

struct transport_peer_stats {
    uint64_t msgs_sent, msgs_recv, bytes_sent, bytes_recv;
    uint64_t rejected; /* bad tag, replay, malformed */
};
void transport_stats(struct transport *t, int node, struct transport_peer_stats *out);

#endif
