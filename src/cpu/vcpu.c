/* vcpu.c — implementer-independent vCPU services: sleeping in HLT and waking. */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu.h"

static void futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *abs)
{
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline */
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, abs, NULL,
            FUTEX_BITSET_MATCH_ANY);
}

void vcpu_kick(struct vcpu *v)
{
    if (atomic_load_explicit(&v->sleeping, memory_order_seq_cst))
        syscall(SYS_futex, &v->requests, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

static bool wakes(struct vcpu *v, uint32_t req)
{
    if (req & (VCPU_REQ_NMI | VCPU_REQ_INIT | VCPU_REQ_SIPI | VCPU_REQ_STOP | VCPU_REQ_SMI))
        return true;
    return (req & VCPU_REQ_IRQ) && atomic_load(&v->halt_if);
}

void vcpu_halt_wait(struct vcpu *v, uint64_t deadline_ns)
{
    struct timespec abs = {.tv_sec = (time_t)(deadline_ns / 1000000000ull),
                           .tv_nsec = (long)(deadline_ns % 1000000000ull)};
    atomic_store_explicit(&v->sleeping, 1, memory_order_seq_cst);
    for (;;) {
        uint32_t req = atomic_load_explicit(&v->requests, memory_order_seq_cst);
        if (wakes(v, req)) break;
        if (deadline_ns) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > abs.tv_sec || (now.tv_sec == abs.tv_sec && now.tv_nsec >= abs.tv_nsec))
                break;
        }
        futex_wait(&v->requests, req, deadline_ns ? &abs : NULL);
    }
    atomic_store_explicit(&v->sleeping, 0, memory_order_seq_cst);
}
