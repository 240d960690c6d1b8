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

void vcpu_wake_flush_waiters(struct vcpu *v)
{
    if (!atomic_load_explicit(&v->ack_waiters, memory_order_seq_cst)) return;
    atomic_fetch_add_explicit(&v->ack_word, 1, memory_order_seq_cst);
    syscall(SYS_futex, &v->ack_word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT32_MAX, NULL, NULL, 0);
}

static bool flush_acked(struct vcpu *v, uint64_t seq)
{
    return !atomic_load_explicit(&v->in_guest, memory_order_seq_cst) ||
           atomic_load_explicit(&v->flush_done, memory_order_seq_cst) >= seq;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vcpu_wait_flush_ack(struct vcpu *v, uint64_t seq)
{
    /* a vCPU running on another core acknowledges within a block: poll briefly */
    uint64_t until = mono_ns() + 5000;
    while (!flush_acked(v, seq))
        if (mono_ns() > until)
            break;
        else
            __builtin_ia32_pause();
    if (flush_acked(v, seq)) return;
    atomic_fetch_add_explicit(&v->ack_waiters, 1, memory_order_seq_cst);
    for (;;) {
        uint32_t w = atomic_load_explicit(&v->ack_word, memory_order_seq_cst);
        if (flush_acked(v, seq)) break;
        /* the vCPU bumps ack_word after acknowledging when it sees a waiter; the
         * timeout only bounds the cost of a missed wake-up */
        uint64_t deadline = mono_ns() + 1000000;
        struct timespec abs = {.tv_sec = (time_t)(deadline / 1000000000ull),
                               .tv_nsec = (long)(deadline % 1000000000ull)};
        futex_wait(&v->ack_word, w, &abs);
    }
    atomic_fetch_sub_explicit(&v->ack_waiters, 1, memory_order_seq_cst);
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
