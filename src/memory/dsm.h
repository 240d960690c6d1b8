/* dsm.h — the distributed shared memory of one node: keeps this node's copy of
 * guest memory coherent with the other nodes' copies, one 4 KiB page at a time.
 *
 * Home-based directory, write-invalidate, sequentially consistent:
 *  - every page has a home node (from the NUMA layout) holding its directory
 *    entry: either EXCLUSIVE(owner) or SHARED(copy set, which always contains the
 *    home, whose copy is then valid);
 *  - a node's right on a page (guest_mem rights) is ABSENT, READ (a shared copy)
 *    or WRITE (the exclusive copy);
 *  - a read miss asks the home, which fetches the page back from an exclusive
 *    owner (the owner keeps a read copy) and sends a copy; a write miss asks the
 *    home, which invalidates every other copy (or takes the page from the owner)
 *    and then grants exclusivity, with the data when the requester had none;
 *  - the home serialises the requests of a page: one transaction at a time, the
 *    next starts when the requester confirms the grant is installed (DONE), so no
 *    message about a page can overtake another;
 *  - a right is lowered with guest_mem_revoke, which returns once every vCPU of
 *    the node dropped its translations and decoded code for the page;
 *  - a node that just received a page lets the vCPUs that waited for it perform
 *    their access before it gives the page away again (no livelock under heavy
 *    write sharing).
 *
 * Threads: dsm_fault runs on any thread that touches guest memory (vCPUs,
 * device DMA, the loader) except the service thread, and blocks until the right
 * arrives. dsm_receive runs one call at a time — on the node's service thread
 * (the transport's progress thread) or on a faulting thread that serves the
 * network while it waits (net.wait) — and never waits for another node. */
#ifndef UNUM_MEMORY_DSM_H
#define UNUM_MEMORY_DSM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "memory/guest_mem.h"

enum dsm_msg_type {
    DSM_REQ,         /* requester -> home: want `right` */
    DSM_GRANT,       /* home -> requester: `right` granted (data when has_data) */
    DSM_FETCH,       /* home -> owner: send the page back, keep `right` */
    DSM_FETCH_REPLY, /* owner -> home: the page */
    DSM_INV,         /* home -> copy holder: drop the page */
    DSM_INV_ACK,     /* copy holder -> home */
    DSM_DONE,        /* requester -> home: grant installed */
    DSM_RESUME,      /* node -> itself: a page's waiters ran, deferred messages may go */
    DSM_MSG_TYPES
};

struct dsm_msg {
    uint8_t type;  /* enum dsm_msg_type */
    uint8_t right; /* enum mem_right */
    bool has_data; /* a GUEST_PAGE_SIZE payload accompanies the message */
    uint64_t gpa;  /* page address */
};

/* How the DSM reaches other nodes. send() may be called from any thread and
 * with dst == self (delivered later on the service thread); `page` is NULL or
 * GUEST_PAGE_SIZE bytes, copied before return. Returns 0 or -errno. */
struct dsm_net {
    int (*send)(void *ctx, int dst, const struct dsm_msg *m, const void *page);
    /* Optional: waits up to window_ns for done(arg), serving incoming messages
     * from the calling (faulting) thread meanwhile, so that the answer is
     * handled without waking the service thread. */
    void (*wait)(void *ctx, bool (*done)(void *arg), void *arg, uint64_t window_ns);
    /* Optional: runs fn(arg) on the calling thread as a message handler, one at
     * a time with the handlers (dsm_receive). A fault on a page this node is
     * home of asks the home side this way instead of by a message to itself,
     * whose delivery would wait for another thread. */
    void (*run_as_handler)(void *ctx, void (*fn)(void *arg), void *arg);
    void *ctx;
};

/* Home node of a guest-physical page (from the machine's memory layout). */
typedef int (*dsm_home_fn)(void *ctx, uint64_t gpa);

struct dsm;

/* Takes over mem's fault hook. Pages homed here start WRITE (exclusive), all
 * others ABSENT. */
struct dsm *dsm_create(struct guest_mem *mem, int self, int nnodes, dsm_home_fn home,
                       void *home_ctx, const struct dsm_net *net);
void dsm_destroy(struct dsm *d);

/* guest_mem fault hook (ctx = the dsm): 0 once the right is held, -ESHUTDOWN
 * when the DSM is shutting down, -EIO when the network failed. */
int dsm_fault(void *d, uint64_t gpa, enum mem_right want);

/* A message from node src (on the service thread). Malformed messages (bad gpa,
 * unexpected type or state) are counted and dropped. */
void dsm_receive(struct dsm *d, int src, const struct dsm_msg *m, const void *page);

/* Fails every waiting and future fault with -ESHUTDOWN (the VM is stopping). */
void dsm_shutdown(struct dsm *d);

#define DSM_LAT_BUCKETS 24 /* fault latency histogram: bucket i counts [2^i, 2^(i+1)) us */
/* for percentiles: 8 buckets per octave of nanoseconds (within 12.5%) */
#define DSM_LAT_FINE_SUB     8
#define DSM_LAT_FINE         (40 * DSM_LAT_FINE_SUB)
#define DSM_READAHEAD_PAGES  8 /* default of UNUM_DSM_READAHEAD (0: off) */
#define DSM_WRITEAHEAD_PAGES 8 /* default of UNUM_DSM_WRITEAHEAD (0: off) */
/* default of UNUM_DSM_SPIN_US: how long a faulting vCPU waits serving the network
 * before it sleeps. A fault that outlasted 30 us (~15% in a 2-node boot) then
 * paid a sleeping thread's wake-up twice, for the answer's arrival and for the
 * vCPU (~30 us each here): 2-node boot 0.6-1.1 s faster, 4-node 5-6 s. */
#define DSM_SPIN_US 200
struct dsm_stats {
    uint64_t read_faults, write_faults;  /* faults taken on this node */
    uint64_t remote_faults;              /* of those, served by another node */
    uint64_t invalidations;              /* copies dropped on request */
    uint64_t fetches;                    /* pages given back to their home */
    uint64_t requests_served;            /* as home */
    uint64_t pages_sent, pages_received; /* payload pages */
    uint64_t deferred;                   /* revocations held back for waiters */
    uint64_t bad_messages;
    uint64_t read_ahead;  /* pages asked for ahead of a sequential reader */
    uint64_t write_ahead; /* ... and exclusively ahead of a sequential writer */
    uint64_t lat_hist[DSM_LAT_BUCKETS];
    uint64_t lat_fine[DSM_LAT_FINE];
    uint64_t lat_total_ns, lat_count;
};
void dsm_get_stats(struct dsm *d, struct dsm_stats *out);
/* The lat_fine bucket of a fault that took `ns`. */
int dsm_latency_bucket(uint64_t ns);
/* Latency percentile (0..100) from the fine histogram, in microseconds. */
double dsm_latency_percentile(const struct dsm_stats *s, double pct);
/* Node totals, the latency histogram, and the `top` most-faulted pages. */
void dsm_print_stats(struct dsm *d, FILE *f, int top);

#endif
