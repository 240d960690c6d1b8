/* pit.h — the 8254 programmable interval timer and system control port B.
 *
 * Owns ports 0x40-0x43 (counters 0-2 and the control word register) and port
 * 0x61 (port B: bit 0 counter-2 gate, bit 1 speaker data enable, bits 2-3 stored,
 * bit 4 refresh toggle, bit 5 counter-2 OUT, bits 6-7 NMI sources, always 0). Port
 * 0x61 lives here rather than with the other legacy ports because every bit it
 * reports is a PIT signal (gate 2, OUT 2, the refresh clock of counter 1).
 *
 * Counters run from host CLOCK_MONOTONIC at 1.193182 MHz, never from executed
 * instructions, so Linux's TSC calibration against the PIT (counter 2 polled
 * through port 0x61 and by reading the count) measures real time. Modes 0-5 are
 * implemented; BCD counting is accepted and counted in binary. Counter 0's OUT
 * rising edges are delivered as pulses on `irq0` (ISA IRQ 0) from a host timer:
 * every period in modes 2 and 3, once in modes 0 and 4. Periodic modes are
 * clamped to one pulse per PIT_MIN_PERIOD_NS of host time: a guest programming a
 * count of 1 (1.19 MHz) would otherwise keep the timer thread permanently busy;
 * the count read back is still exact, only interrupts are coalesced.
 *
 * irq0 is pulsed without the PIT lock held. Call pit_destroy() only after the
 * timer service has stopped. */
#ifndef UNUM_DEVICES_PIT_H
#define UNUM_DEVICES_PIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/irq.h"
#include "devices/timer.h"
#include "machine/router.h"

#define PIT_BASE          0x40
#define PIT_PORT_B        0x61
#define PIT_IRQ           0
#define PIT_FREQ_HZ       1193182ull
#define PIT_MIN_PERIOD_NS 50000ull /* periodic IRQ0 clamp: at most 20000 pulses/s */

struct pit_channel {
    uint8_t mode; /* 0-5 (6 and 7 alias 2 and 3) */
    uint8_t rw;   /* 1 LSB, 2 MSB, 3 LSB then MSB */
    bool bcd;
    bool null_count; /* control word written, no count loaded yet */
    bool running;    /* a count is loaded and the counter is live */
    bool gate;
    bool paused;                  /* counting suspended by a low gate (modes 0, 2, 3, 4) */
    bool triggered;               /* modes 1 and 5: a gate rising edge started the count */
    uint32_t count;               /* reload value, 1..65536 */
    uint64_t base_ns, base_ticks; /* ticks elapsed since load = base_ticks + ticks(now - base_ns) */
    uint16_t frozen;              /* counter value shown while not running */
    /* access state */
    uint8_t wlsb;
    bool wmsb_next, rmsb_next;
    bool count_latched, latch_msb_next, status_latched;
    uint16_t latch;
    uint8_t status;
};

struct pit {
    pthread_mutex_t lock;
    struct timer_service *ts;
    struct irq_line irq0;
    struct pit_channel ch[3];
    uint8_t port_b; /* bits 0-3 as written */
    struct timer timer;
    bool irq_armed;
    uint64_t irq_deadline, last_pulse_ns;
};

void pit_init(struct pit *p, struct timer_service *ts, const struct irq_line *irq0);
/* Claims 0x40-0x43 and 0x61. */
int pit_register(struct pit *p, struct router *r);
/* Gate inputs (counters 0 and 1 are tied high on a PC; counter 2 follows port B). */
void pit_set_gate(struct pit *p, int channel, bool level);
bool pit_get_out(struct pit *p, int channel);
void pit_reset(struct pit *p);
void pit_destroy(struct pit *p);

extern const struct io_ops pit_io_ops, pit_port_b_ops;

#endif
