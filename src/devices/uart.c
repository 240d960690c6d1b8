/* uart.c — 16550A model; see uart.h for what it owns and the threading rules.
 *
 * The transmitter is modelled as infinitely fast: a THR write moves the byte to
 * the host buffer (or, in loopback, to the RX FIFO) at once, so the THR is empty
 * again when the write completes and THRE is re-armed. Linux's 8250 driver
 * checks exactly that ("UART_BUG_THRE" test: THRE must be reasserted when ETBEI is
 * toggled while the transmitter is idle). Reception follows the 16550A: a FIFO of
 * 16 (or a 1-byte holding register with FIFOs off), the RDA interrupt at the
 * trigger level and the character-timeout interrupt after four character times
 * of silence with data below the trigger level. */
#include "devices/uart.h"

#include <string.h>

enum { R_DATA = 0, R_IER = 1, R_IIR = 2, R_LCR = 3, R_MCR = 4, R_LSR = 5, R_MSR = 6, R_SCR = 7 };

#define IER_ERBFI 0x01 /* received data available / character timeout */
#define IER_ETBEI 0x02 /* transmitter holding register empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */

#define IIR_NONE    0x01
#define IIR_MSI     0x00
#define IIR_THRI    0x02
#define IIR_RDI     0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0C
#define IIR_FIFO    0xC0 /* "FIFOs enabled" (16550A); bit 5 (64-byte FIFO) stays 0 */

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR      0x01
#define LSR_OE      0x02
#define LSR_PE      0x04
#define LSR_FE      0x08
#define LSR_BI      0x10
#define LSR_THRE    0x20
#define LSR_TEMT    0x40
#define LSR_FIFOERR 0x80
#define LSR_ERRORS  (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80
#define MSR_DELTAS 0x0F

/* Actions a register access asks for once the lock is dropped. */
#define ACT_FLUSH    1
#define ACT_RX_READY 2

static bool fifo_on(const struct uart *u)
{
    return u->fcr & FCR_ENABLE;
}
static unsigned rx_capacity(const struct uart *u)
{
    return fifo_on(u) ? UART_FIFO_SIZE : 1;
}

/* Modem status inputs: loopback wires MCR outputs back (RTS->CTS, DTR->DSR,
 * OUT1->RI, OUT2->DCD); otherwise the far end is always ready, so Linux never
 * waits for CTS/DSR. */
static uint8_t modem_inputs(const struct uart *u)
{
    if (!(u->mcr & MCR_LOOP)) return MSR_CTS | MSR_DSR | MSR_DCD;
    return (u->mcr & MCR_RTS ? MSR_CTS : 0) | (u->mcr & MCR_DTR ? MSR_DSR : 0) |
           (u->mcr & MCR_OUT1 ? MSR_RI : 0) | (u->mcr & MCR_OUT2 ? MSR_DCD : 0);
}

static uint8_t lsr_value(const struct uart *u)
{
    return (u->lsr & (LSR_ERRORS | LSR_FIFOERR)) | (u->rx_count ? LSR_DR : 0) | LSR_THRE | LSR_TEMT;
}

static bool rda_pending(const struct uart *u)
{
    static const unsigned trigger[4] = {1, 4, 8, 14};
    if (!fifo_on(u)) return u->rx_count > 0;
    return u->rx_count >= trigger[u->fcr >> 6];
}

/* The highest-priority enabled interrupt, as IIR reports it. */
static uint8_t iir_value(const struct uart *u)
{
    uint8_t id = IIR_NONE;
    if ((u->ier & IER_ELSI) && (u->lsr & LSR_ERRORS))
        id = IIR_RLSI;
    else if ((u->ier & IER_ERBFI) && rda_pending(u))
        id = IIR_RDI;
    else if ((u->ier & IER_ERBFI) && u->timeout_ipending)
        id = IIR_TIMEOUT;
    else if ((u->ier & IER_ETBEI) && u->thr_ipending)
        id = IIR_THRI;
    else if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
        id = IIR_MSI;
    return id | (fifo_on(u) ? IIR_FIFO : 0);
}

/* Drives the line only on a change: the TX path (THRE cleared and re-armed within
 * one access) then costs no controller calls at all. Called with u->lock held. */
static void update_irq(struct uart *u)
{
    bool level = !(iir_value(u) & IIR_NONE);
    if (level != u->irq_level) {
        u->irq_level = level;
        irq_set(&u->irq, level);
    }
}

/* Four character times at the programmed rate (115200 / divisor baud), clamped so
 * a silly divisor neither spins the timer thread nor delays input for seconds. */
static uint64_t char_timeout_ns(const struct uart *u)
{
    unsigned bits = 1 + 5 + (u->lcr & 3) + ((u->lcr & 0x08) ? 1 : 0) + ((u->lcr & 0x04) ? 2 : 1);
    uint64_t div = u->divisor ? u->divisor : 1;
    uint64_t ns = 4ull * bits * div * 1000000000ull / 115200;
    if (ns < 100000) ns = 100000;
    if (ns > 20000000) ns = 20000000;
    return ns;
}

static void arm_rx_timeout(struct uart *u)
{
    u->timeout_ipending = false;
    if (fifo_on(u) && u->rx_count && u->ts) {
        u->rx_deadline = clock_ns() + char_timeout_ns(u);
        timer_mod(u->ts, &u->rx_timer, u->rx_deadline);
    }
}

static void rx_push(struct uart *u, uint8_t b)
{
    if (u->rx_count >= rx_capacity(u)) {
        u->lsr |= LSR_OE; /* the byte in the shift register is lost */
        return;
    }
    u->rx_fifo[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = b;
    u->rx_count++;
}

static void rx_clear(struct uart *u)
{
    u->rx_head = u->rx_count = 0;
    u->timeout_ipending = false;
    u->lsr &= ~LSR_FIFOERR;
}

static void rx_timeout_fire(void *opaque)
{
    struct uart *u = opaque;
    pthread_mutex_lock(&u->lock);
    /* a callback already running when the timer was re-armed sees a later deadline */
    if (fifo_on(u) && u->rx_count && !u->timeout_ipending && clock_ns() >= u->rx_deadline) {
        u->timeout_ipending = true;
        update_irq(u);
    }
    pthread_mutex_unlock(&u->lock);
}

static void flush_fire(void *opaque)
{
    struct uart *u = opaque;
    pthread_mutex_lock(&u->lock);
    u->flush_armed = false;
    pthread_mutex_unlock(&u->lock);
    uart_flush(u);
}

void uart_flush(struct uart *u)
{
    uint8_t buf[UART_TXBUF_SIZE];
    pthread_mutex_lock(&u->flush_lock);
    pthread_mutex_lock(&u->lock);
    size_t n = u->txlen;
    memcpy(buf, u->txbuf, n);
    u->txlen = 0;
    pthread_mutex_unlock(&u->lock);
    if (n && u->tx) u->tx(u->tx_opaque, buf, n);
    pthread_mutex_unlock(&u->flush_lock);
}

/* THR write. Returns ACT_* for the caller to run unlocked. */
static int transmit(struct uart *u, uint8_t b)
{
    int act = 0;
    if (u->mcr & MCR_LOOP) {
        rx_push(u, b);
        arm_rx_timeout(u);
    } else {
        u->txbuf[u->txlen++] = b;
        if (b == '\n' || u->txlen == UART_TXBUF_SIZE) {
            act |= ACT_FLUSH;
        } else if (!u->flush_armed && u->ts) {
            u->flush_armed = true; /* one timer per burst, not one per byte */
            timer_mod(u->ts, &u->flush_timer, clock_ns() + UART_TX_FLUSH_NS);
        }
    }
    u->thr_ipending = true; /* the THR emptied again at once */
    return act;
}

static uint8_t reg_read(struct uart *u, unsigned reg, int *act)
{
    uint8_t v = 0xFF;
    switch (reg) {
    case R_DATA:
        if (u->lcr & LCR_DLAB) return u->divisor & 0xFF;
        v = 0;
        if (u->rx_count) {
            v = u->rx_fifo[u->rx_head];
            u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
            u->rx_count--;
        }
        if (!u->rx_count) u->lsr &= ~LSR_FIFOERR;
        arm_rx_timeout(u); /* data still waiting below the trigger level times out again */
        if (u->rx_blocked && u->rx_count < rx_capacity(u)) {
            u->rx_blocked = false;
            *act |= ACT_RX_READY;
        }
        break;
    case R_IER: return u->lcr & LCR_DLAB ? u->divisor >> 8 : u->ier;
    case R_IIR:
        v = iir_value(u);
        if ((v & 0x0F) == IIR_THRI) u->thr_ipending = false; /* reading IIR acknowledges THRE */
        break;
    case R_LCR: return u->lcr;
    case R_MCR: return u->mcr;
    case R_LSR:
        v = lsr_value(u);
        u->lsr &= ~(LSR_ERRORS | LSR_FIFOERR);
        break;
    case R_MSR:
        v = u->msr;
        u->msr &= ~MSR_DELTAS;
        break;
    case R_SCR: return u->scr;
    }
    update_irq(u);
    return v;
}

static int reg_write(struct uart *u, unsigned reg, uint8_t v)
{
    int act = 0;
    switch (reg) {
    case R_DATA:
        if (u->lcr & LCR_DLAB) {
            u->divisor = (u->divisor & 0xFF00) | v;
            return 0;
        }
        act = transmit(u, v);
        break;
    case R_IER:
        if (u->lcr & LCR_DLAB) {
            u->divisor = (u->divisor & 0x00FF) | (uint16_t)(v << 8);
            return 0;
        }
        v &= 0x0F; /* bits 4-7 read back 0 (Linux probes bit 6 for XScale UARTs) */
        /* Enabling ETBEI with the THR empty raises THRE even if an IIR read had
         * acknowledged it before: the chip behaves so and drivers rely on it. */
        if ((u->ier ^ v) & IER_ETBEI) u->thr_ipending = v & IER_ETBEI;
        u->ier = v;
        break;
    case R_IIR: { /* FCR */
        bool en = v & FCR_ENABLE;
        if (en != fifo_on(u))
            rx_clear(u); /* toggling the FIFO mode resets both FIFOs */
        else if (en && (v & FCR_CLEAR_RX))
            rx_clear(u);
        u->fcr = en ? (v & 0xC9) : 0; /* other bits only latch with FCR0 = 1 */
        if (u->rx_blocked && u->rx_count < rx_capacity(u)) {
            u->rx_blocked = false;
            act |= ACT_RX_READY;
        }
        break;
    }
    case R_LCR: u->lcr = v; break;
    case R_MCR: {
        uint8_t old = modem_inputs(u);
        bool was_loop = u->mcr & MCR_LOOP;
        u->mcr = v & 0x1F;
        uint8_t now = modem_inputs(u), d = 0;
        if ((old ^ now) & MSR_CTS) d |= MSR_DCTS;
        if ((old ^ now) & MSR_DSR) d |= MSR_DDSR;
        if ((old & MSR_RI) && !(now & MSR_RI)) d |= MSR_TERI;
        if ((old ^ now) & MSR_DCD) d |= MSR_DDCD;
        u->msr = now | (u->msr & MSR_DELTAS) | d;
        if (was_loop && !(u->mcr & MCR_LOOP) && u->rx_blocked) {
            u->rx_blocked = false; /* host input is connected again */
            act |= ACT_RX_READY;
        }
        break;
    }
    case R_SCR: u->scr = v; break;
    default: /* LSR and MSR writes (factory test) are ignored */ return 0;
    }
    update_irq(u);
    return act;
}

static void run_actions(struct uart *u, int act)
{
    if (act & ACT_FLUSH) uart_flush(u);
    if ((act & ACT_RX_READY) && u->rx_ready) u->rx_ready(u->rx_opaque);
}

/* Wider accesses reach an 8-bit ISA device as consecutive byte cycles. */
static uint64_t uart_read(void *dev, uint64_t offset, int size)
{
    struct uart *u = dev;
    uint64_t v = 0;
    int act = 0;
    pthread_mutex_lock(&u->lock);
    for (int i = 0; i < size && offset + i < 8; i++)
        v |= (uint64_t)reg_read(u, (unsigned)(offset + i), &act) << (8 * i);
    pthread_mutex_unlock(&u->lock);
    run_actions(u, act);
    return v;
}

static void uart_write(void *dev, uint64_t offset, int size, uint64_t value)
{
    struct uart *u = dev;
    for (int i = 0; i < size && offset + i < 8; i++) {
        pthread_mutex_lock(&u->lock);
        while (u->txlen == UART_TXBUF_SIZE) { /* full while another thread flushes */
            pthread_mutex_unlock(&u->lock);
            uart_flush(u);
            pthread_mutex_lock(&u->lock);
        }
        int act = reg_write(u, (unsigned)(offset + i), (uint8_t)(value >> (8 * i)));
        pthread_mutex_unlock(&u->lock);
        run_actions(u, act);
    }
}

const struct io_ops uart_io_ops = {.read = uart_read, .write = uart_write};

static void reset_locked(struct uart *u)
{
    u->ier = u->lcr = u->mcr = u->scr = u->fcr = u->lsr = 0;
    u->divisor = 12; /* 9600 baud until the guest programs it */
    u->msr = modem_inputs(u);
    u->thr_ipending = false;
    rx_clear(u);
    update_irq(u);
}

void uart_init(struct uart *u, struct timer_service *ts, const struct irq_line *irq, uart_tx_fn tx,
               void *tx_opaque)
{
    memset(u, 0, sizeof(*u));
    pthread_mutex_init(&u->lock, NULL);
    pthread_mutex_init(&u->flush_lock, NULL);
    u->ts = ts;
    if (irq) u->irq = *irq;
    u->tx = tx;
    u->tx_opaque = tx_opaque;
    timer_init(&u->rx_timer, rx_timeout_fire, u);
    timer_init(&u->flush_timer, flush_fire, u);
    reset_locked(u);
}

void uart_set_rx_ready(struct uart *u, uart_rx_ready_fn fn, void *opaque)
{
    pthread_mutex_lock(&u->lock);
    u->rx_ready = fn;
    u->rx_opaque = opaque;
    pthread_mutex_unlock(&u->lock);
}

int uart_register(struct uart *u, struct router *r, uint16_t base, const char *name)
{
    return router_add(r, ROUTE_PIO, base, 8, &uart_io_ops, u, name);
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t n)
{
    size_t took = 0;
    pthread_mutex_lock(&u->lock);
    if (!(u->mcr & MCR_LOOP)) { /* loopback disconnects the serial input */
        while (took < n && u->rx_count < rx_capacity(u))
            rx_push(u, buf[took++]);
    }
    if (took < n) u->rx_blocked = true;
    if (took) {
        arm_rx_timeout(u);
        update_irq(u);
    }
    pthread_mutex_unlock(&u->lock);
    return took;
}

void uart_receive_break(struct uart *u)
{
    pthread_mutex_lock(&u->lock);
    if (!(u->mcr & MCR_LOOP)) {
        rx_push(u, 0);
        u->lsr |= LSR_BI | (fifo_on(u) ? LSR_FIFOERR : 0);
        arm_rx_timeout(u);
        update_irq(u);
    }
    pthread_mutex_unlock(&u->lock);
}

size_t uart_rx_space(struct uart *u)
{
    pthread_mutex_lock(&u->lock);
    size_t n = (u->mcr & MCR_LOOP) ? 0 : rx_capacity(u) - u->rx_count;
    pthread_mutex_unlock(&u->lock);
    return n;
}

void uart_reset(struct uart *u)
{
    uart_flush(u);
    if (u->ts) timer_del(u->ts, &u->rx_timer);
    pthread_mutex_lock(&u->lock);
    reset_locked(u);
    pthread_mutex_unlock(&u->lock);
}

void uart_destroy(struct uart *u)
{
    uart_flush(u);
    if (u->ts) {
        timer_del(u->ts, &u->rx_timer);
        timer_del(u->ts, &u->flush_timer);
    }
    pthread_mutex_destroy(&u->lock);
    pthread_mutex_destroy(&u->flush_lock);
}
