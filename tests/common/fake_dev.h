/* fake_dev.h — helpers shared by the device-model tests: an interrupt line that
 * records its level and rising edges, and port accesses through a router. */
#ifndef UNUM_TESTS_FAKE_DEV_H
#define UNUM_TESTS_FAKE_DEV_H

#include <stdint.h>

#include "cpu/cpu.h"
#include "machine/router.h"

struct fake_irq {
    _Atomic int level, edges;
};

/* irq_line-compatible: opaque is a struct fake_irq */
static inline void fake_irq_set(void *opaque, int pin, int level)
{
    struct fake_irq *f = opaque;
    if (level && !f->level) f->edges++;
    f->level = level;
}

static inline uint64_t pio_in(struct router *r, uint16_t port, int size)
{
    struct cpu_io io = {.kind = CPU_IO_PIO, .size = (uint8_t)size, .addr = port};
    router_dispatch(r, &io);
    return io.data;
}

static inline void pio_out(struct router *r, uint16_t port, int size, uint64_t v)
{
    struct cpu_io io = {
        .kind = CPU_IO_PIO, .write = true, .size = (uint8_t)size, .addr = port, .data = v};
    router_dispatch(r, &io);
}

#endif
