/* lapic.h — the local APIC of one vCPU (xAPIC register semantics; x2APIC is not
 * advertised). It owns the vCPU's interrupt line: IRR/ISR/TMR, task and processor
 * priority, EOI, the interrupt command register (IPIs leave through the APIC bus),
 * the local vector table (timer, LINT0/LINT1, error, thermal, perf), the APIC timer
 * in one-shot, periodic and TSC-deadline modes (host timers), and IA32_APIC_BASE /
 * IA32_TSC_DEADLINE / the TPR as MSR 0x808 (CR8).
 *
 * The platform owns placement: it dispatches MMIO of the APIC page (lapic_base())
 * to the LAPIC of the vCPU that made the access (lapic_mmio_read/write, not a
 * router registration), forwards the CPU's msr exits to lapic_msr and uses
 * lapic_ack as cpu_exit_ops.irq_ack. It also implements the APIC bus: for each
 * message, every LAPIC for which lapic_match() is true gets lapic_accept() (for
 * lowest-priority delivery the bus picks one, e.g. by lowest lapic_priority()).
 *
 * The 8259's INTR output reaches the CPU through LINT0 (lapic_set_lint, pin 0)
 * or an ExtINT message. In both cases the LAPIC raises the vCPU's line and, when
 * the CPU acknowledges, lapic_ack calls the ExtINT acknowledge callback (the
 * platform points it at pic_ack) and returns the PIC's vector. While the APIC is
 * globally disabled (IA32_APIC_BASE bit 11 clear) LINT0 is the CPU's INTR pin and
 * LINT1 its NMI pin, as on a processor without an APIC.
 *
 * Thread safety: every entry point may be called from any thread. One mutex per
 * LAPIC; it is never held across a call into the bus or the ExtINT callback, so
 * a LAPIC may send IPIs to itself. */
#ifndef UNUM_DEVICES_LAPIC_H
#define UNUM_DEVICES_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/irq.h"
#include "machine/router.h"

struct lapic;
struct vcpu;
struct timer_service;

#define LAPIC_DEFAULT_BASE 0xfee00000ull
#define LAPIC_BASE_BSP     (1ull << 8)
#define LAPIC_BASE_ENABLE  (1ull << 11)

/* `bus` is copied (NULL: messages are dropped). `ts` may be NULL (no timer).
 * `read_tsc(tsc_opaque)` returns this vCPU's guest TSC (NULL: derived from the
 * host clock); `tsc_hz` is the TSC frequency, which is also the APIC timer's
 * input clock before the divide configuration. The vCPU index used for IPI
 * shorthands is v->id (apic_id when v is NULL). IA32_APIC_BASE starts enabled at
 * 0xFEE00000 with the BSP flag set for vCPU 0. */
struct lapic *lapic_create(int apic_id, struct vcpu *v, const struct apic_bus *bus,
                           struct timer_service *ts, uint64_t (*read_tsc)(void *), void *tsc_opaque,
                           uint64_t tsc_hz);
/* The timer service must not be firing this LAPIC's timer concurrently (stop the
 * service or make sure the timer cannot run before destroying). */
void lapic_destroy(struct lapic *l);
/* INIT: registers to their power-on values, timer stopped; keeps the APIC ID and
 * IA32_APIC_BASE. lapic_accept() calls it for an INIT message. */
void lapic_reset(struct lapic *l);

/* The 4 KiB register page; 32-bit accesses at 16-byte aligned offsets only
 * (anything else reads 0, writes are ignored). io_ops-compatible (dev = lapic). */
uint64_t lapic_mmio_read(void *lapic, uint64_t offset, int size);
void lapic_mmio_write(void *lapic, uint64_t offset, int size, uint64_t value);
extern const struct io_ops lapic_mmio_ops;

/* cpu_exit_ops.msr contract: 0 done, -1 #GP, 1 not implemented here. Handles
 * 0x1b (IA32_APIC_BASE), 0x6e0 (IA32_TSC_DEADLINE) and 0x808 (TPR, i.e. CR8<<4);
 * the rest of the x2APIC range answers 1 (the CPU raises #GP).
 * Timer notes: a divide configuration change takes effect at the next start of
 * the count; a periodic period is at least 100 us. */
int lapic_msr(struct lapic *l, uint32_t index, bool write, uint64_t *value);
/* Current IA32_APIC_BASE value: page address | BSP (bit 8) | enable (bit 11). */
uint64_t lapic_base(struct lapic *l);
int lapic_id(const struct lapic *l);

/* APIC bus side. lapic_match: does the message address this LAPIC (shorthand,
 * physical ID / broadcast 0xFF, logical flat or cluster)? A globally disabled
 * APIC matches nothing. lapic_accept takes a message the bus routed here. */
bool lapic_match(struct lapic *l, const struct apic_msg *m);
void lapic_accept(struct lapic *l, const struct apic_msg *m);
/* The logical-destination rule (flat or cluster model, by DFR) for a LAPIC with
 * these LDR/DFR values and an 8-bit logical destination: shared with the bus's
 * matching of vCPUs on other nodes. */
bool apic_logical_match(uint32_t ldr, uint32_t dfr, unsigned dest);
/* Called (outside the LAPIC's lock) whenever the guest writes the logical
 * destination (LDR) or its format (DFR): on a cluster, other nodes route
 * logical-mode messages with it. */
void lapic_set_logical_hook(struct lapic *l,
                            void (*fn)(void *ctx, int vcpu, uint32_t ldr, uint32_t dfr), void *ctx);
/* Arbitration priority (APR) for lowest-priority delivery: lower wins. */
int lapic_priority(struct lapic *l);

/* cpu_exit_ops.irq_ack: ExtINT first (through the callback), else the highest
 * IRR vector whose class is above the PPR moves to ISR and is returned; -1 when
 * nothing is deliverable. Re-evaluates the vCPU's interrupt line. */
int lapic_ack(struct lapic *l);
void lapic_set_extint_ack(struct lapic *l, int (*ack)(void *opaque), void *opaque);

/* The timer of a running vCPU. While lapic_timer_owner_runs(l, true) is in
 * effect the timer service does not fire this LAPIC's timer: the vCPU's own
 * thread must call lapic_timer_poll every few microseconds of guest time (it
 * raises the timer interrupt once the deadline passed; lapic_timer_due is the
 * cheap look, a TSC read). Before the vCPU stops polling (a halt, waiting for
 * SIPI) it calls lapic_timer_owner_runs(l, false), and the service wakes it at
 * the deadline as before. Without a timer service (ts NULL) this does nothing. */
void lapic_timer_owner_runs(struct lapic *l, bool runs);
bool lapic_timer_due(const struct lapic *l);
void lapic_timer_poll(struct lapic *l);

/* LINT0/LINT1 input pins (irq_line-compatible: opaque = lapic, pin 0 or 1). */
void lapic_set_lint(void *lapic, int pin, int level);

#endif
