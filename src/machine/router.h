/* router.h — the routing table of a node: port ranges and MMIO ranges mapped to
 * the node and device model that implement them (first match wins; overlapping
 * registrations are rejected). A local route calls the device; a remote route
 * (a device on another node) and, on a node that is not the platform node, an
 * access nobody claims are handed to the forwarder, which runs the access on the
 * implementing node and returns its result. On the platform node an access
 * nobody claims reads as all ones and its writes are dropped. */
#ifndef UNUM_MACHINE_ROUTER_H
#define UNUM_MACHINE_ROUTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "cpu/cpu.h"

/* A device's access handlers. `offset` is relative to the registered base; size
 * is 1, 2, 4 or 8. Handlers must bounds-check nothing beyond their range: the
 * router only calls them for accesses that start inside it (an access running
 * past the end is split by the router into byte accesses). */
struct io_ops {
    uint64_t (*read)(void *dev, uint64_t offset, int size);
    void (*write)(void *dev, uint64_t offset, int size, uint64_t value);
};

enum route_space { ROUTE_PIO, ROUTE_MMIO };

struct route {
    enum route_space space;
    uint64_t base, len;
    const struct io_ops *ops;
    void *dev;
    const char *name;
    int node;                               /* implementing node */
    _Atomic uint64_t accesses;              /* statistics: all accesses through this route */
    _Atomic uint64_t forwarded, forward_ns; /* remote: accesses and their round trips */
};

/* Runs an access on another node; blocks until its answer (io->data for reads). */
typedef void (*router_forward_fn)(void *ctx, int node, struct cpu_io *io);

#define ROUTER_MAX_ROUTES 128

struct router {
    struct route routes[ROUTER_MAX_ROUTES];
    int n;
    pthread_mutex_t lock; /* registration only; lookups read a stable table */
    int self;             /* this node */
    int platform;         /* where unclaimed accesses go */
    router_forward_fn forward;
    void *forward_ctx;
    struct route unclaimed; /* statistics of unclaimed accesses forwarded */
};

void router_init(struct router *r);
/* Multi-node: this node's id, the platform node and how to reach other nodes.
 * Routes added afterwards with router_add are local to `self`. */
void router_set_cluster(struct router *r, int self, int platform, router_forward_fn fn, void *ctx);
/* 0, -EEXIST on overlap with an existing route, -ENOSPC, -EINVAL (empty/wrapping). */
int router_add(struct router *r, enum route_space space, uint64_t base, uint64_t len,
               const struct io_ops *ops, void *dev, const char *name);
/* A route to a device on another node (no local handlers). */
int router_add_remote(struct router *r, enum route_space space, uint64_t base, uint64_t len,
                      const char *name, int node);
/* Prints the table with each route's node and counters. */
void router_print(struct router *r, FILE *f, bool counters);
const struct route *router_lookup(const struct router *r, enum route_space space, uint64_t addr);
/* Performs a CPU port or MMIO access through the table. */
void router_dispatch(struct router *r, struct cpu_io *io);

#endif
