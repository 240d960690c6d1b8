/* uart.h — an 8250/16550A serial port (COM1 is 0x3F8, IRQ 4).
 *
 * Owns the eight registers at its base port: RBR/THR, IER, IIR/FCR, LCR, MCR,
 * LSR, MSR, SCR and the divisor latch (DLAB). Transmission is instantaneous: the
 * THR is always empty again by the time the write returns, so LSR.THRE/TEMT read
 * 1 and the boot log costs one lock and one memcpy per byte. Transmitted bytes are
 * collected and handed to the host `tx` callback a line at a time (or when the
 * buffer fills, or UART_TX_FLUSH_NS after output stops mid-line).
 * Reception: uart_receive() from any host thread, with backpressure (it returns
 * how many bytes the 16-byte FIFO took; `rx_ready` says when there is room again).
 * The modem inputs report CTS, DSR and DCD asserted (a null-modem cable that is
 * always ready) except in loopback, where they follow MCR as on the chip.
 *
 * Interrupt output: a level on `irq` — high while an enabled condition is pending
 * (the platform's PIC/I/O APIC turns it into edges for ISA IRQs). The line is
 * driven with the UART's lock held: lock order uart → interrupt controller.
 * Timers (RX character timeout, TX flush) need a running timer service; call
 * uart_destroy() only after that service has been stopped (an expiring callback
 * may still be running after timer_del()). */
#ifndef UNUM_DEVICES_UART_H
#define UNUM_DEVICES_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/irq.h"
#include "devices/timer.h"
#include "machine/router.h"

#define UART_COM1_BASE   0x3F8
#define UART_COM1_IRQ    4
#define UART_FIFO_SIZE   16
#define UART_TXBUF_SIZE  4096
#define UART_TX_FLUSH_NS 2000000ull /* partial lines reach the host after at most 2 ms */

/* Host output: called on a vCPU or the timer thread, never concurrently with itself
 * for one UART, never with the UART lock held. */
typedef void (*uart_tx_fn)(void *opaque, const uint8_t *buf, size_t n);
/* Room in the RX FIFO again after uart_receive() refused bytes (called on a vCPU
 * thread, without the UART lock: it may call uart_receive()). */
typedef void (*uart_rx_ready_fn)(void *opaque);

struct uart {
    pthread_mutex_t lock;       /* registers and FIFOs */
    pthread_mutex_t flush_lock; /* serializes tx callbacks; taken before `lock` */
    struct timer_service *ts;
    struct irq_line irq;
    uart_tx_fn tx;
    void *tx_opaque;
    uart_rx_ready_fn rx_ready;
    void *rx_opaque;

    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
    uint16_t divisor;
    bool thr_ipending;     /* THRE interrupt pending (cleared by an IIR read naming it) */
    bool timeout_ipending; /* RX character timeout */
    bool irq_level;        /* what the line was last driven to */
    bool rx_blocked;       /* uart_receive() refused bytes: notify when drained */

    uint8_t rx_fifo[UART_FIFO_SIZE];
    unsigned rx_head, rx_count;

    uint8_t txbuf[UART_TXBUF_SIZE];
    size_t txlen;
    bool flush_armed;
    uint64_t rx_deadline; /* character timeout due (CLOCK_MONOTONIC ns) */
    struct timer rx_timer, flush_timer;
};

/* `irq` is copied; tx may be NULL (output discarded). */
void uart_init(struct uart *u, struct timer_service *ts, const struct irq_line *irq, uart_tx_fn tx,
               void *tx_opaque);
/* Optional; set it before the guest runs. */
void uart_set_rx_ready(struct uart *u, uart_rx_ready_fn fn, void *opaque);
/* Claims base..base+7; returns router_add()'s result. */
int uart_register(struct uart *u, struct router *r, uint16_t base, const char *name);
/* Queues received bytes; returns how many fit (0 in loopback mode). */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t n);
/* Delivers a break condition (LSR.BI with a zero character). */
void uart_receive_break(struct uart *u);
/* Free space in the RX FIFO. */
size_t uart_rx_space(struct uart *u);
/* Hands buffered output to the tx callback now. */
void uart_flush(struct uart *u);
/* Register state as after a hardware reset (buffered output is flushed first). */
void uart_reset(struct uart *u);
void uart_destroy(struct uart *u);

extern const struct io_ops uart_io_ops;

#endif
