/* node.h — this process as one node of a cluster that implements one VM.
 *
 * Owns the transport, the DSM over the machine's guest memory, the forwarding
 * of exits (port/MMIO accesses another node implements) with their answers, the
 * APIC messages that cross nodes, the agreement on time, and the life cycle: the
 * platform node starts every node once guest memory is loaded and stops them all
 * with the guest's status; a node that fails or disappears stops the VM on every
 * other node within seconds, with a message naming it.
 *
 * The machine (pc.c, testvm.c) stays in charge of devices and vCPUs and is
 * called back through struct node_machine; callbacks run on the transport's
 * progress thread (io on an I/O worker thread) and must not block. */
#ifndef UNUM_CLUSTER_NODE_H
#define UNUM_CLUSTER_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cluster/config.h"
#include "cpu/cpu.h"
#include "devices/irq.h"
#include "memory/dsm.h"

/* Exit status of a node whose VM was stopped by another node's failure. */
#define NODE_EXIT_PEER_LOST 125

struct node_machine {
    /* platform side of a forwarded exit (I/O worker thread) */
    void (*io)(void *ctx, int from, struct cpu_io *io);
    /* an APIC message for this node's vCPUs in `mask` (bit = global vCPU index) */
    void (*apic)(void *ctx, const struct apic_msg *m, uint64_t mask);
    /* EOI of a level-triggered vector, for the I/O APIC (platform node) */
    void (*eoi)(void *ctx, uint8_t vector);
    /* a remote local APIC's logical destination changed */
    void (*apic_logical)(void *ctx, int vcpu, uint32_t ldr, uint32_t dfr);
    /* non-platform nodes: guest memory is loaded; `info` is what the platform
     * passed to node_start_all (the routing table) */
    void (*start)(void *ctx, const void *info, uint32_t len);
    /* stop the VM with this status (the reason was printed already) */
    void (*stop)(void *ctx, int status);
    void *ctx;
};

struct node;

/* Joins the cluster: connects and authenticates every peer, agrees on time with
 * the platform node, and puts guest memory under the DSM (home of a page from
 * `home`). NULL with a one-line reason in err. */
struct node *node_create(const struct cluster_config *cfg, int self, struct guest_mem *mem,
                         dsm_home_fn home, void *home_ctx, const struct node_machine *mach,
                         char *err, size_t errlen);
/* Stops the transport and frees everything (vCPU threads are gone). */
void node_destroy(struct node *n);

int node_self(const struct node *n);
bool node_is_platform(const struct node *n);
const struct cluster_config *node_config(const struct node *n);

/* Runs a port/MMIO access on node `dst` and waits for its answer (vCPU thread;
 * router_forward_fn-compatible with ctx = the node). A lost peer answers reads
 * with all ones. */
void node_forward_io(void *n, int dst, struct cpu_io *io);

/* What a vCPU of this node does after vcpu_run returned HLT, instead of
 * vcpu_halt_wait: returns when something wakes it. Meanwhile, as KVM polls
 * before halting, it serves the network (transport_poll) while messages keep coming
 * (until nothing came for UNUM_HALT_POLL_US, default NODE_HALT_POLL_US; 0:
 * never), so that answers to other nodes' requests need no thread woken here.
 * One halted vCPU per node polls; a message the progress thread handles while
 * none does sends one back to polling (VCPU_REQ_POLL). */
#define NODE_HALT_POLL_US 100
void node_vcpu_halted(struct node *n, struct vcpu *v);

/* What cpu_exit_ops.poll of this node's vCPUs does: a running vCPU
 * serves the network between blocks of guest code every
 * node_vcpu_poll_insns() instructions (UNUM_VCPU_POLL_INSNS, default
 * NODE_VCPU_POLL_INSNS; 0: never), so that another node's request is answered
 * within microseconds instead of after the progress thread's wake-up (tens of
 * microseconds here), which also takes a core from a vCPU. Not done when the
 * linger time is 0 (UNUM_TRANSPORT_LINGER_US=0). */
#define NODE_VCPU_POLL_INSNS 4096
void node_vcpu_poll(struct node *n);
/* With doorbells (a local cluster, doorbell.h) the vCPU looks at its node's bell
 * every NODE_VCPU_BELL_INSNS instructions (UNUM_VCPU_BELL_INSNS; 0: no looks) and
 * polls when it rang, or when NODE_VCPU_POLL_INSNS passed since its last poll:
 * cpu_exit_ops.poll_wanted. node_vcpu_poll_insns() is the vCPU's interval: the
 * look's, or the poll's without bells. */
#define NODE_VCPU_BELL_INSNS 1024
bool node_vcpu_poll_wanted(struct node *n);
uint32_t node_vcpu_poll_insns(void);

void node_send_apic(struct node *n, int dst, const struct apic_msg *m, uint64_t mask);
void node_send_eoi(struct node *n, uint8_t vector);
void node_send_apic_logical(struct node *n, int vcpu, uint32_t ldr, uint32_t dfr);

/* Platform node: every node may start its vCPUs (info goes to their start()). */
int node_start_all(struct node *n, const void *info, uint32_t len);
/* Non-platform node: waits for the platform's start; false if the VM stopped. */
bool node_wait_start(struct node *n);
/* Stops the VM everywhere with `status` (guest power-off, reset, triple fault)
 * and waits (bounded) until every peer acknowledged. Any node may call it. */
void node_stop_all(struct node *n, int status);
/* Blocks until the VM stops (a stop sent or received, or a peer lost). */
void node_wait_stopped(struct node *n);
/* True once a stop was requested or received. */
bool node_stopping(const struct node *n);

struct dsm *node_dsm(struct node *n);
/* Offset applied to this node's clock, and the skew re-checks so far. */
struct node_time {
    int64_t offset_cycles; /* applied at join */
    uint64_t rtt_ns;       /* best round trip at join */
    uint64_t checks;       /* re-checks since */
    double max_skew_ns;    /* largest |measured - applied| seen by re-checks */
    double last_bound_ns;  /* uncertainty (half the round trip) of the last check */
};
void node_get_time(struct node *n, struct node_time *t);
void node_print_stats(struct node *n, FILE *f);

#endif
