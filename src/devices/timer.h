/* timer.h — one-shot host timers for device models (PIT, RTC, local APIC timers,
 * ...). A service thread keeps a deadline-ordered heap and calls `fire` on that
 * thread when a deadline passes; callbacks may re-arm their timer. Deadlines are
 * CLOCK_MONOTONIC nanoseconds. */
#ifndef UNUM_DEVICES_TIMER_H
#define UNUM_DEVICES_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct timer {
    void (*fire)(void *opaque);
    void *opaque;
    uint64_t deadline; /* valid while armed */
    int heap_index;    /* -1 when not armed */
};

#define TIMER_MAX 256

struct timer_service {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    struct timer *heap[TIMER_MAX];
    int n;
    bool stop;
    bool running;
};

#include "util/util.h" /* clock_ns */

int timer_service_start(struct timer_service *ts);
void timer_service_stop(struct timer_service *ts);
void timer_init(struct timer *t, void (*fire)(void *), void *opaque);
/* Arms (or re-arms) t for an absolute deadline; a past deadline fires at once. */
void timer_mod(struct timer_service *ts, struct timer *t, uint64_t deadline_ns);
void timer_del(struct timer_service *ts, struct timer *t);
bool timer_pending(struct timer_service *ts, struct timer *t);

#endif
