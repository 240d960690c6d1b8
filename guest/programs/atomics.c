/*
 * atomics — SMP coherence check for the default guest.
 *
 * Usage: atomics [ITERATIONS [THREADS]]
 *   ITERATIONS  increments per thread and per counter (default 1000000)
 *   THREADS     worker threads (default: online CPUs, sysconf(_SC_NPROCESSORS_ONLN))
 *
 * Every thread adds 1 to two shared counters ITERATIONS times each:
 *   (a) with __atomic_fetch_add (a LOCK XADD on x86-64), also checking that the
 *       values it gets back increase (a lost or duplicated RMW breaks this),
 *   (b) with a plain ++ under a pthread mutex (futex, CMPXCHG, memory ordering).
 * The threads start together (barrier) so they really contend. Prints the totals and
 * the expected value; exits 0 only if both totals are exact, 1 otherwise, 2 on bad use.
 */
#define _GNU_SOURCE /* common.h: CPU sets */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static uint64_t atomic_counter;
static uint64_t locked_counter;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start;
static uint64_t iterations;
static int order_errors; /* set (atomically) when fetch_add returned a non-increasing value */

static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    uint64_t prev = 0;
    int bad = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        uint64_t old = __atomic_fetch_add(&atomic_counter, 1, __ATOMIC_SEQ_CST);
        if (i > 0 && old <= prev) bad = 1;
        prev = old;
        pthread_mutex_lock(&lock);
        locked_counter++;
        pthread_mutex_unlock(&lock);
    }
    if (bad) __atomic_store_n(&order_errors, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t nthreads;
    iterations = 1000000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = ncpu > 0 ? (uint64_t)ncpu : 1;

    if (argc > 3 || (argc > 1 && parse_u64(argv[1], &iterations)) ||
        (argc > 2 && (parse_u64(argv[2], &nthreads) || nthreads == 0 || nthreads > 4096))) {
        fprintf(stderr, "usage: %s [ITERATIONS [THREADS]]\n", argv[0]);
        return 2;
    }

    pthread_t *tids = calloc(nthreads, sizeof *tids);
    if (!tids || pthread_barrier_init(&start, NULL, (unsigned)nthreads)) {
        fprintf(stderr, "atomics: out of memory\n");
        return 1;
    }
    for (uint64_t t = 0; t < nthreads; t++) {
        int err = pthread_create(&tids[t], NULL, worker, NULL);
        if (err) {
            fprintf(stderr, "atomics: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    for (uint64_t t = 0; t < nthreads; t++)
        pthread_join(tids[t], NULL);

    uint64_t expected = nthreads * iterations;
    int ok = atomic_counter == expected && locked_counter == expected && !order_errors;
    printf("atomics: threads=%" PRIu64 " iterations=%" PRIu64 "\n", nthreads, iterations);
    printf("atomic_fetch_add total: %" PRIu64 " expected: %" PRIu64 "%s\n", atomic_counter,
           expected, order_errors ? " (non-increasing fetch_add results seen)" : "");
    printf("mutex total:            %" PRIu64 " expected: %" PRIu64 "\n", locked_counter, expected);
    printf("atomics: %s\n", ok ? "OK" : "FAIL");
    free(tids);
    return ok ? 0 : 1;
}
