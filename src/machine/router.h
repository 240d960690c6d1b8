/* router.h — the routing table of a node: port ranges and MMIO ranges mapped to
 * the device models that implement them (first match wins; overlapping
 * registrations are rejected). An access nobody claims reads as all ones and its
 * writes are dropped. Remote routes (a device on another node) arrive with the
 * cluster layer; the table and its lookups are already shaped for them. */
#ifndef UNUM_MACHINE_ROUTER_H
#define UNUM_MACHINE_ROUTER_H

#include <pthread.h>
#include <stdatomic.h>
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
    int node;                  /* implementing node (this node for local devices) */
    _Atomic uint64_t accesses; /* statistics */
};

#define ROUTER_MAX_ROUTES 128

struct router {
    struct route routes[ROUTER_MAX_ROUTES];
    int n;
    pthread_mutex_t lock; /* registration only; lookups read a stable table */
};

void router_init(struct router *r);
/* 0, -EEXIST on overlap with an existing route, -ENOSPC, -EINVAL (empty/wrapping). */
int router_add(struct router *r, enum route_space space, uint64_t base, uint64_t len,
               const struct io_ops *ops, void *dev, const char *name);
const struct route *router_lookup(const struct router *r, enum route_space space, uint64_t addr);
/* Performs a CPU port or MMIO access through the table. */
void router_dispatch(struct router *r, struct cpu_io *io);

#endif
