/*
 * common.h — helpers the guest programs share (argument parsing, the splitmix64
 * finalizer, timing, pinning threads to CPUs, 2 MiB-aligned buffers). Header-only:
 * every program stays one static binary built from its own .c file. Include it after
 * defining _GNU_SOURCE (CPU sets, pthread_setaffinity_np).
 */
#ifndef UNUM_GUEST_PROGRAMS_COMMON_H
#define UNUM_GUEST_PROGRAMS_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A whole-string unsigned number (decimal, 0x hex or 0 octal); -1 if it is not one. */
static inline int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = v;
    return 0;
}

/* The splitmix64 finalizer. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* b^e mod 2^64 */
static inline uint64_t pow_u64(uint64_t b, uint64_t e)
{
    uint64_t r = 1;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return r;
}

/* Seconds on CLOCK_MONOTONIC. */
static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The CPUs this process may run on, in order (they need not be numbered 0..n-1). */
static inline int online_cpus(int *cpus, int max)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set)) cpus[n++] = c;
    return n;
}

/* Binds the calling thread (thread t of program prog) to one CPU; says so on stderr
 * when it cannot. */
static inline void pin_thread(const char *prog, unsigned t, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err) fprintf(stderr, "%s: pinning thread %u: %s\n", prog, t, strerror(err));
}

/* A buffer starting on a 2 MiB boundary: a chunk boundary that falls on one then
 * also splits the page tables, so no page-table page (whose lock every fault in its
 * 2 MiB takes) is shared by two threads' chunks, which on a NUMA machine would
 * bounce between nodes like shared data. */
static inline void *alloc_2m_aligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 2u << 20, bytes ? bytes : 1)) return NULL;
    return p;
}

#endif
