/* UART tests through the port router: the Linux 8250 probe sequence (IER mask,
 * loopback MSR, FIFO detection), THRE on enabling ETBEI, RX trigger level and
 * character timeout, backpressure and overrun, the buffered TX path (100 KB intact,
 * timer flush of a partial line) and a hostile register fuzz. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fake_dev.h"
#include "devices/timer.h"
#include "devices/uart.h"
#include "machine/router.h"

#define BASE 0x3F8

struct sink {
    pthread_mutex_t lock; /* the timer thread's flushes race with the test reading */
    uint8_t *buf;
    size_t len, cap;
    int calls;
};

static void sink_tx(void *opaque, const uint8_t *b, size_t n)
{
    struct sink *s = opaque;
    pthread_mutex_lock(&s->lock);
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, b, n);
    s->len += n;
    s->calls++;
    pthread_mutex_unlock(&s->lock);
}

static size_t sink_len(struct sink *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->len;
    pthread_mutex_unlock(&s->lock);
    return n;
}

struct fixture {
    struct timer_service ts;
    struct router r;
    struct uart u;
    struct fake_irq irq;
    struct sink out;
    _Atomic int rx_ready;
};

static void on_rx_ready(void *opaque)
{
    ((struct fixture *)opaque)->rx_ready++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->out.lock, NULL);
    assert_int_equal(timer_service_start(&f->ts), 0);
    router_init(&f->r);
    struct irq_line line = {.set = fake_irq_set, .opaque = &f->irq, .pin = 4};
    uart_init(&f->u, &f->ts, &line, sink_tx, &f->out);
    uart_set_rx_ready(&f->u, on_rx_ready, f);
    assert_int_equal(uart_register(&f->u, &f->r, BASE, "com1"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    timer_service_stop(&f->ts);
    uart_destroy(&f->u);
    free(f->out.buf);
    free(f);
    return 0;
}

static uint8_t in(struct fixture *f, int reg)
{
    struct cpu_io io = {.kind = CPU_IO_PIO, .size = 1, .addr = BASE + reg};
    router_dispatch(&f->r, &io);
    return (uint8_t)io.data;
}

static void out(struct fixture *f, int reg, uint8_t v)
{
    struct cpu_io io = {
        .kind = CPU_IO_PIO, .write = true, .size = 1, .addr = BASE + reg, .data = v};
    router_dispatch(&f->r, &io);
}

static void sleep_ms(int ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void test_probe(void **state)
{
    struct fixture *f = *state;
    /* IER: only the low nibble exists */
    out(f, 1, 0);
    assert_int_equal(in(f, 1), 0);
    out(f, 1, 0xFF);
    assert_int_equal(in(f, 1), 0x0F);
    out(f, 1, 0);
    /* scratch and divisor latch */
    out(f, 7, 0xA5);
    assert_int_equal(in(f, 7), 0xA5);
    out(f, 3, 0x83);
    out(f, 0, 0x01);
    out(f, 1, 0x00);
    assert_int_equal(in(f, 0), 0x01);
    assert_int_equal(in(f, 1), 0x00);
    out(f, 3, 0x03);
    assert_int_equal(in(f, 3), 0x03);
    /* idle line status and modem status: CTS, DSR, DCD asserted */
    assert_int_equal(in(f, 5), 0x60);
    assert_int_equal(in(f, 6), 0xB0);
    assert_int_equal(in(f, 2), 0x01);
    /* FIFO detection: IIR bits 7:6 = 11 (16550A), bit 5 never set */
    out(f, 2, 0x21);
    assert_int_equal(in(f, 2) & 0xE0, 0xC0);
    out(f, 2, 0x00);
    assert_int_equal(in(f, 2) & 0xC0, 0x00);
    assert_int_equal(f->irq.edges, 1); /* IER=0xFF briefly enabled THRE */
    assert_int_equal(f->irq.level, 0);
}

static void test_loopback(void **state)
{
    struct fixture *f = *state;
    out(f, 4, 0x10 | 0x0A); /* LOOP | OUT2 | RTS, Linux's presence test */
    assert_int_equal(in(f, 6) & 0xF0, 0x90);
    out(f, 4, 0x10 | 0x01); /* DTR -> DSR */
    assert_int_equal(in(f, 6) & 0xF0, 0x20);
    out(f, 0, 'x');
    assert_int_equal(in(f, 5) & 0x01, 0x01);
    assert_int_equal(in(f, 0), 'x');
    assert_int_equal(in(f, 5) & 0x01, 0x00);
    assert_int_equal(uart_receive(&f->u, (const uint8_t *)"a", 1), 0); /* input disconnected */
    out(f, 4, 0x0B);
    assert_int_equal(in(f, 6) & 0xF0, 0xB0);
    assert_int_equal(f->rx_ready, 1); /* refused input may come now */
    uart_flush(&f->u);
    assert_int_equal(f->out.len, 0); /* loopback output never reached the host */
}

static void test_thre_on_enable(void **state)
{
    struct fixture *f = *state;
    out(f, 2, 0x01);
    out(f, 1, 0x02);
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(in(f, 2), 0xC2);
    assert_int_equal(f->irq.level, 0); /* reading IIR acknowledged THRE */
    assert_int_equal(in(f, 2), 0xC1);
    out(f, 1, 0x00);
    out(f, 1, 0x02); /* re-enabling ETBEI re-raises it (no UART_BUG_THRE) */
    assert_int_equal(in(f, 2), 0xC2);
    int edges = f->irq.edges;
    assert_int_equal(edges, 2);
    out(f, 0, 'A'); /* a THR write re-arms THRE: transmission is instant */
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(in(f, 2), 0xC2);
    out(f, 1, 0x00);
    assert_int_equal(f->irq.level, 0);
}

static void test_rx_trigger_and_timeout(void **state)
{
    struct fixture *f = *state;
    out(f, 2, 0x81 | 0x06); /* FIFO on, trigger level 8, clear both */
    out(f, 1, 0x01);
    assert_int_equal(uart_receive(&f->u, (const uint8_t *)"hello", 5), 5);
    assert_int_equal(in(f, 2), 0xC1); /* below the trigger: nothing yet */
    uint64_t t0 = clock_ns();
    while (!f->irq.level && clock_ns() - t0 < 1000000000ull)
        sleep_ms(1);
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(in(f, 2), 0xCC); /* character timeout */
    char got[6] = {0};
    for (int i = 0; i < 5; i++)
        got[i] = (char)in(f, 0);
    assert_string_equal(got, "hello");
    assert_int_equal(in(f, 2), 0xC1);
    assert_int_equal(f->irq.level, 0);
    /* at the trigger level RDA is immediate */
    assert_int_equal(uart_receive(&f->u, (const uint8_t *)"12345678", 8), 8);
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(in(f, 2), 0xC4);
    while (in(f, 5) & 1)
        in(f, 0);
    assert_int_equal(f->irq.level, 0);
}

static void test_backpressure_and_overrun(void **state)
{
    struct fixture *f = *state;
    uint8_t data[20];
    for (int i = 0; i < 20; i++)
        data[i] = (uint8_t)i;
    out(f, 2, 0x01);
    assert_int_equal(uart_receive(&f->u, data, 20), 16);
    assert_int_equal(uart_rx_space(&f->u), 0);
    assert_int_equal(in(f, 0), 0);
    assert_int_equal(f->rx_ready, 1);
    assert_int_equal(uart_receive(&f->u, data + 16, 4), 1);
    /* FIFO off: a single holding register */
    out(f, 2, 0x00);
    assert_int_equal(uart_receive(&f->u, data, 2), 1);
    assert_int_equal(in(f, 0), 0);
    /* overrun in loopback raises the line status interrupt */
    out(f, 2, 0x07);
    out(f, 4, 0x10);
    out(f, 1, 0x04);
    for (int i = 0; i < 17; i++)
        out(f, 0, (uint8_t)i);
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(in(f, 2), 0xC6);
    uint8_t lsr = in(f, 5);
    assert_true(lsr & 0x02);
    assert_true(lsr & 0x01);
    assert_int_equal(in(f, 5) & 0x02, 0); /* cleared by reading */
    assert_int_equal(f->irq.level, 0);
    /* break */
    out(f, 4, 0x00);
    out(f, 2, 0x07);
    uart_receive_break(&f->u);
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(in(f, 5) & 0x91, 0x91);
}

static void test_tx_100k(void **state)
{
    struct fixture *f = *state;
    enum { N = 100 * 1024 };
    uint8_t *data = malloc(N);
    for (int i = 0; i < N; i++)
        data[i] = (i % 73 == 72) ? '\n' : (uint8_t)(' ' + i % 95);
    for (int i = 0; i < N; i++) {
        while (!(in(f, 5) & 0x20)) /* the console driver's wait_for_xmitr */
            ;
        out(f, 0, data[i]);
    }
    uart_flush(&f->u);
    assert_int_equal(f->out.len, N);
    assert_memory_equal(f->out.buf, data, N);
    assert_true(f->out.calls < N / 16); /* buffered: about one call per line, not per byte */
    free(data);

    /* a prompt without a newline reaches the host without an explicit flush */
    size_t before = sink_len(&f->out);
    out(f, 0, '$');
    out(f, 0, ' ');
    uint64_t t0 = clock_ns();
    while (sink_len(&f->out) == before && clock_ns() - t0 < 1000000000ull)
        sleep_ms(1);
    assert_int_equal(sink_len(&f->out), before + 2);
    assert_memory_equal(f->out.buf + before, "$ ", 2);
}

struct writer {
    struct fixture *f;
    int id;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 2000; i++) {
        while (!(in(w->f, 5) & 0x20))
            ;
        out(w->f, 0, (uint8_t)(i % 50 == 49 ? '\n' : 'a' + w->id));
    }
    return NULL;
}

static void *typist_thread(void *arg)
{
    struct fixture *f = arg;
    for (int i = 0; i < 3000;) {
        uint8_t c = (uint8_t)i;
        if (uart_receive(&f->u, &c, 1)) i++;
    }
    return NULL;
}

/* vCPU threads writing, an input thread typing, the timer thread flushing and
 * timing out, all at once: every byte arrives exactly once. */
static void test_concurrency(void **state)
{
    struct fixture *f = *state;
    out(f, 2, 0xC7);
    out(f, 1, 0x0F);
    pthread_t w[3], t;
    struct writer ws[3];
    for (int i = 0; i < 3; i++) {
        ws[i] = (struct writer){f, i};
        pthread_create(&w[i], NULL, writer_thread, &ws[i]);
    }
    pthread_create(&t, NULL, typist_thread, f);
    int got = 0;
    uint64_t t0 = clock_ns();
    while (got < 3000 && clock_ns() - t0 < 20000000000ull) {
        if (in(f, 5) & 1) {
            assert_int_equal(in(f, 0), (uint8_t)got);
            got++;
        }
        in(f, 2);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(w[i], NULL);
    pthread_join(t, NULL);
    assert_int_equal(got, 3000);
    uart_flush(&f->u);
    assert_int_equal(f->out.len, 6000);
}

static void test_hostile(void **state)
{
    struct fixture *f = *state;
    srand(1);
    for (int i = 0; i < 200000; i++) {
        struct cpu_io io = {.kind = CPU_IO_PIO,
                            .write = rand() & 1,
                            .size = (uint8_t)(1 << (rand() % 3)),
                            .addr = BASE + rand() % 8,
                            .data = (uint64_t)rand()};
        router_dispatch(&f->r, &io);
        if (!(i % 1000)) {
            uint8_t b[32] = {0};
            uart_receive(&f->u, b, (size_t)(rand() % 32));
        }
    }
    uart_reset(&f->u);
    assert_int_equal(in(f, 2), 0x01);
    assert_int_equal(f->irq.level, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_on_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_trigger_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_and_overrun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_100k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
