/* router.c — see router.h. The table is small and read-mostly: a linear scan
 * of a sorted array beats anything clever at this size. */
#include "machine/router.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

void router_init(struct router *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->unclaimed.name = "(unclaimed)";
}

void router_set_cluster(struct router *r, int self, int platform, router_forward_fn fn, void *ctx)
{
    r->self = self;
    r->platform = platform;
    r->forward = fn;
    r->forward_ctx = ctx;
    r->unclaimed.node = platform;
}

static int add_route(struct router *r, enum route_space space, uint64_t base, uint64_t len,
                     const struct io_ops *ops, void *dev, const char *name, int node)
{
    if (!len || base + len < base || (!ops && node == r->self)) return -EINVAL;
    pthread_mutex_lock(&r->lock);
    int err = 0;
    if (r->n == ROUTER_MAX_ROUTES) {
        err = -ENOSPC;
        goto out;
    }
    int pos = 0;
    for (int i = 0; i < r->n; i++) {
        const struct route *e = &r->routes[i];
        if (e->space != space) continue;
        if (base < e->base + e->len && e->base < base + len) {
            err = -EEXIST;
            goto out;
        }
    }
    while (pos < r->n && (r->routes[pos].space < space ||
                          (r->routes[pos].space == space && r->routes[pos].base < base)))
        pos++;
    memmove(&r->routes[pos + 1], &r->routes[pos], (r->n - pos) * sizeof(r->routes[0]));
    r->routes[pos] = (struct route){.space = space,
                                    .base = base,
                                    .len = len,
                                    .ops = ops,
                                    .dev = dev,
                                    .name = name,
                                    .node = node};
    r->n++;
out:
    pthread_mutex_unlock(&r->lock);
    return err;
}

int router_add(struct router *r, enum route_space space, uint64_t base, uint64_t len,
               const struct io_ops *ops, void *dev, const char *name)
{
    return add_route(r, space, base, len, ops, dev, name, r->self);
}

int router_add_remote(struct router *r, enum route_space space, uint64_t base, uint64_t len,
                      const char *name, int node)
{
    if (node == r->self) return -EINVAL;
    return add_route(r, space, base, len, NULL, NULL, name, node);
}

/* The whole access runs on the implementing node, which splits it if needed. */
static void forward(struct router *r, struct route *e, struct cpu_io *io)
{
    uint64_t t0 = clock_ns();
    r->forward(r->forward_ctx, e->node, io);
    atomic_fetch_add_explicit(&e->forwarded, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->forward_ns, clock_ns() - t0, memory_order_relaxed);
}

void router_print(struct router *r, FILE *f, bool counters)
{
    fprintf(f, "%-5s %-33s %-4s %-14s", "space", "range", "node", "device");
    if (counters) fprintf(f, " %12s %12s %10s", "accesses", "forwarded", "avg us");
    fputc('\n', f);
    for (int i = 0; i <= r->n; i++) {
        const struct route *e = i < r->n ? &r->routes[i] : &r->unclaimed;
        char range[40];
        if (i < r->n)
            snprintf(range, sizeof(range), "%#llx-%#llx", (unsigned long long)e->base,
                     (unsigned long long)(e->base + e->len - 1));
        else
            snprintf(range, sizeof(range), "anything else");
        fprintf(f, "%-5s %-33s %-4d %-14s",
                i == r->n               ? "*"
                : e->space == ROUTE_PIO ? "pio"
                                        : "mmio",
                range, e->node, e->name ? e->name : "?");
        if (counters) {
            uint64_t fw = atomic_load(&e->forwarded);
            fprintf(f, " %12llu %12llu %10.1f", (unsigned long long)atomic_load(&e->accesses),
                    (unsigned long long)fw,
                    fw ? atomic_load(&e->forward_ns) / 1000.0 / (double)fw : 0.0);
        }
        fputc('\n', f);
    }
}

const struct route *router_lookup(const struct router *r, enum route_space space, uint64_t addr)
{
    for (int i = 0; i < r->n; i++) {
        const struct route *e = &r->routes[i];
        if (e->space == space && addr - e->base < e->len) return e;
    }
    return NULL;
}

static uint64_t access_one(struct router *r, enum route_space space, uint64_t addr, int size,
                           bool write, uint64_t value)
{
    struct route *e = (struct route *)router_lookup(r, space, addr);
    if (!e) return write ? 0 : ~0ull;
    if (e->node != r->self) return ~0ull; /* forwarded whole by router_dispatch */
    if (addr - e->base + size > e->len) {
        /* runs past the device: split into bytes so no handler sees an overrun */
        uint64_t v = 0;
        for (int i = 0; i < size; i++)
            v |= (access_one(r, space, addr + i, 1, write, value >> (8 * i)) & 0xff) << (8 * i);
        return v;
    }
    atomic_fetch_add_explicit(&e->accesses, 1, memory_order_relaxed);
    if (write) {
        if (e->ops->write) e->ops->write(e->dev, addr - e->base, size, value);
        return 0;
    }
    return e->ops->read ? e->ops->read(e->dev, addr - e->base, size) : ~0ull;
}

void router_dispatch(struct router *r, struct cpu_io *io)
{
    enum route_space space = io->kind == CPU_IO_PIO ? ROUTE_PIO : ROUTE_MMIO;
    if (r->forward) {
        struct route *e = (struct route *)router_lookup(r, space, io->addr);
        if (!e && r->platform != r->self) e = &r->unclaimed;
        if (e && e->node != r->self) {
            atomic_fetch_add_explicit(&e->accesses, 1, memory_order_relaxed);
            forward(r, e, io);
            return;
        }
    }
    uint64_t mask = io->size == 8 ? ~0ull : (1ull << (8 * io->size)) - 1;
    uint64_t v = access_one(r, space, io->addr, io->size, io->write, io->data & mask);
    if (!io->write) io->data = v & mask;
}
