/* router.c — see router.h. The table is small and read-mostly: a linear scan
 * of a sorted array beats anything clever at this size. */
#include "machine/router.h"

#include <errno.h>
#include <string.h>

void router_init(struct router *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
}

int router_add(struct router *r, enum route_space space, uint64_t base, uint64_t len,
               const struct io_ops *ops, void *dev, const char *name)
{
    if (!len || base + len < base || !ops) return -EINVAL;
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
    r->routes[pos] = (struct route){
        .space = space, .base = base, .len = len, .ops = ops, .dev = dev, .name = name};
    r->n++;
out:
    pthread_mutex_unlock(&r->lock);
    return err;
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
    uint64_t mask = io->size == 8 ? ~0ull : (1ull << (8 * io->size)) - 1;
    uint64_t v = access_one(r, space, io->addr, io->size, io->write, io->data & mask);
    if (!io->write) io->data = v & mask;
}
