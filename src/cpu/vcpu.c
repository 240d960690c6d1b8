/* vcpu.c — implementer-independent vCPU services: sleeping in HLT and waking. */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "util/util.h"

/* Sleeps while *addr == val, at most until deadline_ns (CLOCK_MONOTONIC; 0: none). */
static void futex_wait_until(_Atomic uint32_t *addr, uint32_t val, uint64_t deadline_ns)
{
    struct timespec abs = {.tv_sec = (time_t)(deadline_ns / 1000000000ull),
                           .tv_nsec = (long)(deadline_ns % 1000000000ull)};
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline */
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, deadline_ns ? &abs : NULL,
            NULL, FUTEX_BITSET_MATCH_ANY);
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

void vcpu_wait_flush_ack(struct vcpu *v, uint64_t seq)
{
    /* a vCPU running on another core acknowledges within a block: poll briefly */
    for (uint64_t until = clock_ns() + 5000; !flush_acked(v, seq) && clock_ns() <= until;)
        __builtin_ia32_pause();
    if (flush_acked(v, seq)) return;
    atomic_fetch_add_explicit(&v->ack_waiters, 1, memory_order_seq_cst);
    for (;;) {
        uint32_t w = atomic_load_explicit(&v->ack_word, memory_order_seq_cst);
        if (flush_acked(v, seq)) break;
        /* the vCPU bumps ack_word after acknowledging when it sees a waiter; the
         * timeout only bounds the cost of a missed wake-up */
        futex_wait_until(&v->ack_word, w, clock_ns() + 1000000);
    }
    atomic_fetch_sub_explicit(&v->ack_waiters, 1, memory_order_seq_cst);
}

static bool wakes(struct vcpu *v, uint32_t req)
{
    if (req & (VCPU_REQ_NMI | VCPU_REQ_INIT | VCPU_REQ_SIPI | VCPU_REQ_STOP | VCPU_REQ_SMI))
        return true;
    return (req & VCPU_REQ_IRQ) && atomic_load(&v->halt_if);
}

bool vcpu_halt_woken(struct vcpu *v)
{
    return wakes(v, atomic_load_explicit(&v->requests, memory_order_seq_cst));
}

void vcpu_halt_wait(struct vcpu *v, uint64_t deadline_ns)
{
    atomic_store_explicit(&v->sleeping, 1, memory_order_seq_cst);
    for (;;) {
        uint32_t req = atomic_load_explicit(&v->requests, memory_order_seq_cst);
        if (wakes(v, req)) break;
        if (req & VCPU_REQ_POLL) {
            atomic_fetch_and_explicit(&v->requests, ~VCPU_REQ_POLL, memory_order_seq_cst);
            break;
        }
        if (deadline_ns && clock_ns() >= deadline_ns) break;
        futex_wait_until(&v->requests, req, deadline_ns);
    }
    atomic_store_explicit(&v->sleeping, 0, memory_order_seq_cst);
}
