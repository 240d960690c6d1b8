/* rtc.h — MC146818-compatible real-time clock with 128 bytes of CMOS RAM.
 *
 * Owns ports 0x70 (index; bit 7 = NMI disable, kept but the platform has no NMI
 * source to gate) and 0x71 (data). The time and date registers (0x00, 0x02, 0x04,
 * 0x06-0x09 and the century byte RTC_CENTURY_INDEX) read the host's UTC clock plus
 * a guest-set offset, in the format register B selects (BCD or binary, 12 or 24
 * hour). Setting the clock (SET bit in B, write the fields, clear SET) changes only
 * the offset. Register A reports UIP during the last 244 us of every second, as the
 * chip does before an update, so a guest polling UIP waits at most that long;
 * register C's flags (PF, AF, UF) are latched and clear on read; register D reads
 * VRT (0x80: Linux warns if bit 6 is set). The periodic, alarm and update-ended
 * interrupts are implemented (level on `irq` while C.IRQF is set, IRQ 8), using a
 * host timer only while one of them is enabled and the line is low.
 *
 * `irq` is driven with the RTC lock held (lock order rtc → interrupt controller).
 * Call rtc_destroy() only after the timer service has stopped. */
#ifndef UNUM_DEVICES_RTC_H
#define UNUM_DEVICES_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/irq.h"
#include "devices/timer.h"
#include "machine/router.h"

#define RTC_BASE          0x70
#define RTC_IRQ           8
#define RTC_CMOS_SIZE     128
#define RTC_CENTURY_INDEX 0x32 /* FADT.Century must name this register */

struct rtc {
    pthread_mutex_t lock;
    struct timer_service *ts;
    struct irq_line irq;
    uint8_t index_reg; /* last write to 0x70, NMI-disable bit included */
    uint8_t cmos[RTC_CMOS_SIZE];
    uint8_t flags;        /* latched register C flags (PF 0x40, AF 0x20, UF 0x10) */
    int64_t offset;       /* guest clock = host UTC seconds + offset */
    int64_t last_sec;     /* last guest second whose update was accounted for */
    uint64_t last_period; /* last periodic-interrupt period index accounted for */
    bool irq_level;
    struct timer timer;
};

void rtc_init(struct rtc *r, struct timer_service *ts, const struct irq_line *irq);
/* Claims 0x70-0x71. */
int rtc_register(struct rtc *r, struct router *router);
/* Fills the BIOS memory-size bytes (0x15-0x18, 0x30-0x31, 0x34-0x35, 0x5b-0x5d)
 * and the standard checksum (0x2e-0x2f). */
void rtc_set_memory(struct rtc *r, uint64_t below_4g, uint64_t above_4g);
/* Raw CMOS RAM access for the platform (index 0x0e-0x7f; others are ignored / 0). */
void rtc_cmos_set(struct rtc *r, unsigned index, uint8_t value);
uint8_t rtc_cmos_get(struct rtc *r, unsigned index);
bool rtc_nmi_disabled(struct rtc *r);
/* Registers A-D to their reset state; time offset and CMOS RAM survive (battery). */
void rtc_reset(struct rtc *r);
void rtc_destroy(struct rtc *r);

extern const struct io_ops rtc_io_ops;

#endif
