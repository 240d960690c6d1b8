#define _GNU_SOURCE /* pthread_setname_np */
/* timer.c — see timer.h. A binary min-heap of armed timers under one mutex; the
 * service thread sleeps on a condition variable until the earliest deadline. */
#include "devices/timer.h"

#include <errno.h>
#include <time.h>

static void heap_swap(struct timer_service *ts, int a, int b)
{
    struct timer *t = ts->heap[a];
    ts->heap[a] = ts->heap[b];
    ts->heap[b] = t;
    ts->heap[a]->heap_index = a;
    ts->heap[b]->heap_index = b;
}

static void sift_up(struct timer_service *ts, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (ts->heap[p]->deadline <= ts->heap[i]->deadline) break;
        heap_swap(ts, p, i);
        i = p;
    }
}

static void sift_down(struct timer_service *ts, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < ts->n && ts->heap[l]->deadline < ts->heap[m]->deadline) m = l;
        if (r < ts->n && ts->heap[r]->deadline < ts->heap[m]->deadline) m = r;
        if (m == i) break;
        heap_swap(ts, i, m);
        i = m;
    }
}

static void heap_remove(struct timer_service *ts, struct timer *t)
{
    int i = t->heap_index;
    ts->n--;
    if (i != ts->n) {
        ts->heap[i] = ts->heap[ts->n];
        ts->heap[i]->heap_index = i;
        sift_down(ts, i);
        sift_up(ts, i);
    }
    t->heap_index = -1;
}

static void *service(void *arg)
{
    struct timer_service *ts = arg;
    pthread_mutex_lock(&ts->lock);
    while (!ts->stop) {
        if (!ts->n) {
            pthread_cond_wait(&ts->cond, &ts->lock);
            continue;
        }
        struct timer *t = ts->heap[0];
        uint64_t now = clock_ns();
        if (t->deadline > now) {
            struct timespec until = {.tv_sec = (time_t)(t->deadline / 1000000000ull),
                                     .tv_nsec = (long)(t->deadline % 1000000000ull)};
            pthread_cond_timedwait(&ts->cond, &ts->lock, &until);
            continue;
        }
        heap_remove(ts, t);
        pthread_mutex_unlock(&ts->lock);
        t->fire(t->opaque);
        pthread_mutex_lock(&ts->lock);
    }
    pthread_mutex_unlock(&ts->lock);
    return NULL;
}

int timer_service_start(struct timer_service *ts)
{
    *ts = (struct timer_service){0};
    pthread_mutex_init(&ts->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ts->cond, &attr);
    pthread_condattr_destroy(&attr);
    int err = pthread_create(&ts->thread, NULL, service, ts);
    if (err) return -err;
    pthread_setname_np(ts->thread, "timers");
    ts->running = true;
    return 0;
}

void timer_service_stop(struct timer_service *ts)
{
    if (!ts->running) return;
    pthread_mutex_lock(&ts->lock);
    ts->stop = true;
    pthread_cond_signal(&ts->cond);
    pthread_mutex_unlock(&ts->lock);
    pthread_join(ts->thread, NULL);
    ts->running = false;
}

void timer_init(struct timer *t, void (*fire)(void *), void *opaque)
{
    *t = (struct timer){.fire = fire, .opaque = opaque, .heap_index = -1};
}

void timer_mod(struct timer_service *ts, struct timer *t, uint64_t deadline_ns)
{
    pthread_mutex_lock(&ts->lock);
    if (t->heap_index >= 0) heap_remove(ts, t);
    if (ts->n < TIMER_MAX) {
        t->deadline = deadline_ns;
        t->heap_index = ts->n;
        ts->heap[ts->n++] = t;
        sift_up(ts, t->heap_index);
        if (t->heap_index == 0) pthread_cond_signal(&ts->cond);
    }
    pthread_mutex_unlock(&ts->lock);
}

void timer_del(struct timer_service *ts, struct timer *t)
{
    pthread_mutex_lock(&ts->lock);
    if (t->heap_index >= 0) heap_remove(ts, t);
    pthread_mutex_unlock(&ts->lock);
}

bool timer_pending(struct timer_service *ts, struct timer *t)
{
    pthread_mutex_lock(&ts->lock);
    bool p = t->heap_index >= 0;
    pthread_mutex_unlock(&ts->lock);
    return p;
}
