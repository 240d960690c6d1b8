/* cpu.h — the CPU implementer interface: what the machine sees of a vCPU.
 *
 * A vCPU runs until an exit it cannot finish itself. Port I/O and MMIO (an access
 * to a guest-physical address that is not RAM) are delivered synchronously through
 * cpu_exit_ops.io so that the instruction completes with the device's answer, as a
 * KVM run loop completes an exit before re-entering. HLT, shutdown (triple fault)
 * and stop requests return from vcpu_run. Interrupts come from an interrupt
 * controller the CPU does not know: the controller raises the vCPU's interrupt
 * line; when the guest can take an interrupt the CPU asks the controller for the
 * vector (irq_ack). The CPU never names a device. */
#ifndef UNUM_CPU_CPU_H
#define UNUM_CPU_CPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpu/x86_state.h"
#include "memory/guest_mem.h"

enum cpu_io_kind { CPU_IO_PIO, CPU_IO_MMIO };

struct cpu_io {
    enum cpu_io_kind kind;
    bool write;
    uint8_t size;  /* 1, 2, 4 or 8 */
    uint64_t addr; /* port or guest-physical address */
    uint64_t data; /* written value, or filled in by the handler on a read */
};

struct cpu_exit_ops {
    /* Handles a port or MMIO access; a read of nothing returns all ones. */
    void (*io)(void *ctx, struct cpu_io *io);
    /* Called when the interrupt line is raised and the guest accepts interrupts:
     * returns the vector to deliver, or -1 if nothing is pending any more. */
    int (*irq_ack)(void *ctx);
    /* Optional. MSRs the platform implements (IA32_APIC_BASE 0x1b, which the CPU
     * also keeps; IA32_TSC_DEADLINE 0x6e0; the x2APIC range 0x800-0x8ff). CR8 is
     * presented as MSR 0x808 (the TPR) holding CR8 << 4. Returns 0 when done, -1
     * for #GP, 1 when the platform does not implement the MSR. */
    int (*msr)(void *ctx, uint32_t index, bool write, uint64_t *value);
    /* Optional. Called between blocks of guest code about every poll_insns
     * instructions (0: never), outside the guest (shoot-downs do not wait for
     * it): a node's vCPU serves the network there, so that a request from
     * another node is answered within microseconds without waking a thread. */
    void (*poll)(void *ctx);
    uint32_t poll_insns;
    /* Optional. Asked in the guest, every poll_insns instructions, before poll:
     * false skips this poll (a cheap look whether there is anything to serve). */
    bool (*poll_wanted)(void *ctx);
};

/* Features the platform provides that the CPU model advertises (vcpu.features). */
#define VCPU_FEAT_TSC_DEADLINE (1u << 0) /* the local APIC implements TSC-deadline mode */

enum vcpu_exit_reason {
    VCPU_EXIT_HLT = 1,   /* halted with interrupts enabled or disabled; see state */
    VCPU_EXIT_SHUTDOWN,  /* triple fault: the VM must stop */
    VCPU_EXIT_STOP,      /* vcpu_request_stop() was called */
    VCPU_EXIT_WAIT_SIPI, /* in wait-for-SIPI after INIT */
};

/* Request bits a controller or another thread posts to a vCPU. */
#define VCPU_REQ_IRQ   (1u << 0) /* interrupt line raised (level: stays until lowered) */
#define VCPU_REQ_NMI   (1u << 1)
#define VCPU_REQ_INIT  (1u << 2)
#define VCPU_REQ_SIPI  (1u << 3)
#define VCPU_REQ_STOP  (1u << 4)
#define VCPU_REQ_FLUSH (1u << 5) /* drop all cached translations, then ack */
#define VCPU_REQ_SMI   (1u << 6)
#define VCPU_REQ_POLL  (1u << 7) /* halted: return from vcpu_halt_wait to serve the network */

struct vcpu;

struct cpu_impl {
    const char *name;
    struct vcpu *(*create)(struct guest_mem *mem, int id, const struct cpu_exit_ops *ops,
                           void *ctx);
    void (*destroy)(struct vcpu *v);
    enum vcpu_exit_reason (*run)(struct vcpu *v);
    void (*get_state)(struct vcpu *v, struct x86_state *s);
    void (*set_state)(struct vcpu *v, const struct x86_state *s);
};

#define VCPU_FLUSH_PAGES 8

/* Common part of every implementer's vCPU (implementers embed it first). */
struct vcpu {
    const struct cpu_impl *impl;
    int id;
    struct guest_mem *mem;
    const struct cpu_exit_ops *ops;
    void *ctx;
    _Atomic uint32_t requests;
    _Atomic uint8_t sipi_vector;
    _Atomic int in_guest;        /* set while the vCPU may use cached translations */
    _Atomic uint64_t flush_seq;  /* shoot-down requests posted */
    _Atomic uint64_t flush_done; /* shoot-down requests acknowledged */
    _Atomic uint32_t ack_word;   /* futex: bumped on an acknowledgement or leaving */
    /* the pages whose translations a pending shoot-down drops (flush_all: every
     * translation, when more pages came than fit) */
    pthread_mutex_t flush_lock;
    uint64_t flush_gpa[VCPU_FLUSH_PAGES];
    int flush_n;
    bool flush_all;
    _Atomic int ack_waiters; /* revokers sleeping on ack_word */
    struct mem_tcache tcache;
    _Atomic int sleeping; /* in vcpu_halt_wait */
    _Atomic bool halt_if; /* RFLAGS.IF when it last halted */
    uint32_t features;    /* VCPU_FEAT_*, set before the first run */
};

/* Wakes a vCPU sleeping in vcpu_halt_wait (cheap when it is not sleeping). */
void vcpu_kick(struct vcpu *v);

/* Shoot-down acknowledgement. A revoker waits until the vCPU acknowledged request
 * `seq` or left the guest; it sleeps rather than spins, so that a revoker running
 * at real-time priority cannot starve the vCPU it waits for. */
void vcpu_wait_flush_ack(struct vcpu *v, uint64_t seq);
void vcpu_wake_flush_waiters(struct vcpu *v); /* cheap when nobody waits */

static inline void vcpu_ack_flush(struct vcpu *v, uint64_t seq)
{
    atomic_store_explicit(&v->flush_done, seq, memory_order_seq_cst);
    vcpu_wake_flush_waiters(v);
}

static inline void vcpu_leave_guest(struct vcpu *v)
{
    atomic_store_explicit(&v->in_guest, 0, memory_order_seq_cst);
    vcpu_wake_flush_waiters(v);
}

static inline void vcpu_post(struct vcpu *v, uint32_t req)
{
    atomic_fetch_or_explicit(&v->requests, req, memory_order_seq_cst);
    vcpu_kick(v);
}

static inline void vcpu_set_irq_line(struct vcpu *v, bool level)
{
    if (level) {
        atomic_fetch_or_explicit(&v->requests, VCPU_REQ_IRQ, memory_order_seq_cst);
        vcpu_kick(v);
    } else {
        atomic_fetch_and_explicit(&v->requests, ~VCPU_REQ_IRQ, memory_order_seq_cst);
    }
}

/* After vcpu_run returned VCPU_EXIT_HLT: sleeps until something can wake the
 * halted vCPU (an interrupt it accepts, NMI, INIT, SIPI, stop) or until
 * deadline_ns (CLOCK_MONOTONIC; 0 = no deadline), or VCPU_REQ_POLL came (its
 * node wants it to serve the network). An idle vCPU costs nothing. */
void vcpu_halt_wait(struct vcpu *v, uint64_t deadline_ns);

/* Would vcpu_halt_wait return now (something wakes the halted vCPU)? False
 * after it returned for VCPU_REQ_POLL only. */
bool vcpu_halt_woken(struct vcpu *v);

static inline void vcpu_send_sipi(struct vcpu *v, uint8_t vector)
{
    atomic_store(&v->sipi_vector, vector);
    vcpu_post(v, VCPU_REQ_SIPI);
}

static inline void vcpu_request_stop(struct vcpu *v)
{
    vcpu_post(v, VCPU_REQ_STOP);
}

static inline enum vcpu_exit_reason vcpu_run(struct vcpu *v)
{
    return v->impl->run(v);
}

/* Initial state helpers (used by loaders and tests) */
void x86_state_reset(struct x86_state *s);                /* power-on/INIT state (real mode) */
void x86_state_flat32(struct x86_state *s, uint64_t rip); /* flat 32-bit protected mode */

extern const struct cpu_impl emu_cpu_impl;

/* Shoot-down used by guest_mem revocation: posts a flush and waits until this vCPU
 * is outside the guest or acknowledged it. */
void vcpu_tcache_init(struct vcpu *v);

#endif
