/*
 * pstencil — parallel Jacobi relaxation on a square grid, a CPU-bound HPC kernel with
 * node-local data.
 *
 * Usage: pstencil [-t THREADS] [-n N] [-i ITERATIONS] [-s SPINS] [-p] [-c] [-v]
 *   -t THREADS     worker threads (default: online CPUs)
 *   -n N           grid side in cells, doubles (default 512: 2 MiB per grid, two grids)
 *   -i ITERATIONS  sweeps (default 100)
 *   -s SPINS       a thread that reaches the barrier early polls it this many times
 *                  before it sleeps (default 100000; 0: sleep at once)
 *   -p             pin thread t to online CPU t mod CPUs before it touches its rows
 *   -c             each grid in one piece (rows in order), shared by all threads'
 *                  blocks, instead of one piece per thread (see below)
 *   -v             phase timings on stderr
 *
 * The grid's edge is fixed (the top row 1.0, the other edges 0.0); the inside starts
 * from a deterministic pattern. A sweep sets every inside cell of the next grid to the
 * mean of its four neighbours in the current one. The inside rows are cut into THREADS
 * blocks, one per thread, and each thread touches its own rows of both grids first (so
 * on a NUMA machine they are placed in its node's memory). A thread's rows of both
 * grids are one piece of memory of their own, starting on a 2 MiB boundary: then no
 * page-table page (and its lock, which every first-touch fault in its 2 MiB takes)
 * holds two threads' rows, which on a NUMA machine would bounce between nodes with
 * every fault. (-c keeps each grid in one piece, where a page-table page can serve
 * two threads.) Between sweeps the threads
 * meet at a barrier; the only data a thread reads from another is the row on either
 * side of its block (the halo), as in a distributed stencil code. The barrier spins
 * before it sleeps, as OpenMP runtimes do by default: a sweep takes milliseconds, the
 * others arrive soon, and sleeping would put a wake-up (an interrupt to another CPU)
 * on the path of every sweep.
 *
 * Prints one line
 *     pstencil: n=N iterations=I threads=T checksum=HEX
 * where the checksum hashes the bits of every cell of the final grid in order. Every
 * cell is computed by the same operations whatever the thread count, so the checksum is
 * the same for every thread count and on the host. Exits 0 on success, 2 on bad use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define HASH_P 0x100000001b3ULL /* FNV-1 64-bit prime */

struct result {       /* per thread, on its own cache line */
    uint64_t hash;    /* polynomial hash of this thread's rows of the final grid */
    double compute_s; /* -v: time in its sweeps, without the barrier waits */
    double init_s;    /* -v: placing and initialising its rows */
    float fastest_ms; /* -v: its fastest sweep */
    float median_ms;  /* -v: its median sweep */
    int cpu;          /* -v: where it ran */
    char pad[28];
};
_Static_assert(sizeof(struct result) == 64, "one cache line per thread");

static uint64_t side, iterations;
static unsigned nthreads;
static double **rows[2];  /* rows[g][i]: row i of grid g */
static void *grid_mem;    /* the mapping that holds every thread's rows (not with -c, */
static size_t grid_bytes; /* where rows[g][0] starts grid g's allocation) and its size */
static int contiguous;    /* -c */
static uint64_t *bounds;  /* thread t sweeps rows [bounds[t], bounds[t + 1]) */
static struct result *results;
/* The sweeps' barrier, on a page of its own: its counters are written by every
 * thread at every sweep, and on a NUMA machine nothing else should travel with them. */
static union {
    struct {
        _Atomic uint32_t arrived;  /* threads at the barrier in this phase */
        _Atomic uint32_t phase;    /* bumped by the last to arrive; the sleepers' futex */
        _Atomic uint32_t sleepers; /* threads in FUTEX_WAIT (or about to be) */
    };
    char page[4096];
} barrier __attribute__((aligned(4096)));
static uint64_t spins;
static double t_phase[4]; /* thread 0: start, after init, after the sweeps, after the hash */
static int pin_cpus[4096];
static int n_pin;

/* Thread t's rows: its block of inside rows, and the edge row 0 (first thread) or
 * side - 1 (last thread). */
static uint64_t own_lo(unsigned t)
{
    return t == 0 ? 0 : bounds[t];
}

static uint64_t own_hi(unsigned t)
{
    return t + 1 == nthreads ? side : bounds[t + 1];
}

/* The starting value of cell (i, j): the fixed edge, or a pattern inside. */
static double start_value(uint64_t i, uint64_t j)
{
    if (i == 0) return 1.0;
    if (i == side - 1 || j == 0 || j == side - 1) return 0.0;
    return (double)(mix64(i * side + j) >> 11) * 0x1p-53;
}

/* Rows [lo, hi) of both grids: the first touch places them, then both get the starting
 * values (the edge columns of the next grid then never change). */
static void init_rows(uint64_t lo, uint64_t hi)
{
    for (int g = 0; g < 2; g++)
        for (uint64_t i = lo; i < hi; i++)
            for (uint64_t j = 0; j < side; j++)
                rows[g][i][j] = start_value(i, j);
}

static void sweep_rows(double *const *cur, double *const *next, uint64_t lo, uint64_t hi)
{
    for (uint64_t i = lo; i < hi; i++) {
        const double *restrict up = cur[i - 1], *restrict row = cur[i], *restrict down = cur[i + 1];
        double *restrict out = next[i];
        for (uint64_t j = 1; j + 1 < side; j++)
            out[j] = 0.25 * ((up[j] + down[j]) + (row[j - 1] + row[j + 1]));
    }
}

static uint64_t hash_rows(double *const *g, uint64_t lo, uint64_t hi)
{
    uint64_t h = 0;
    for (uint64_t i = lo; i < hi; i++)
        for (uint64_t j = 0; j < side; j++) {
            uint64_t bits;
            memcpy(&bits, &g[i][j], sizeof bits);
            h = h * HASH_P + bits;
        }
    return h;
}

static void futex(_Atomic uint32_t *word, int op, uint32_t val)
{
    syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static void barrier_wait(void)
{
    uint32_t phase = atomic_load(&barrier.phase);
    if (atomic_fetch_add(&barrier.arrived, 1) + 1 == nthreads) {
        atomic_store(&barrier.arrived, 0); /* before the phase: nobody is past it yet */
        atomic_fetch_add(&barrier.phase, 1);
        if (atomic_load(&barrier.sleepers)) futex(&barrier.phase, FUTEX_WAKE, INT_MAX);
        return;
    }
    for (uint64_t i = 0; i < spins; i++) {
        if (atomic_load_explicit(&barrier.phase, memory_order_acquire) != phase) return;
        __builtin_ia32_pause();
    }
    /* the last one bumps the phase, then reads sleepers; this adds to sleepers, then
     * reads the phase: one of the two sees the other */
    atomic_fetch_add(&barrier.sleepers, 1);
    while (atomic_load(&barrier.phase) == phase)
        futex(&barrier.phase, FUTEX_WAIT, phase);
    atomic_fetch_sub(&barrier.sleepers, 1);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    struct result *r = &results[t];
    if (n_pin) pin_thread("pstencil", t, pin_cpus[t % (unsigned)n_pin]);
    uint64_t lo = bounds[t], hi = bounds[t + 1];
    double t0 = now();
    init_rows(own_lo(t), own_hi(t));
    r->init_s = now() - t0;
    r->cpu = sched_getcpu();
    barrier_wait();
    if (t == 0) t_phase[1] = now();

    int cur = 0;
    double busy = 0;
    float *times = calloc(iterations ? iterations : 1, sizeof *times);
    for (uint64_t it = 0; it < iterations; it++) {
        double s = now();
        sweep_rows(rows[cur], rows[cur ^ 1], lo, hi);
        double d = now() - s;
        busy += d;
        if (times) times[it] = (float)(d * 1e3);
        cur ^= 1;
        barrier_wait();
    }
    r->compute_s = busy;
    if (times && iterations) {
        qsort(times, iterations, sizeof *times, cmp_float);
        r->fastest_ms = times[0];
        r->median_ms = times[iterations / 2];
    }
    free(times);
    if (t == 0) t_phase[2] = now();
    r->hash = hash_rows(rows[cur], own_lo(t), own_hi(t));
    return NULL;
}

/* Sets rows[][]: with -c two grids of rows in order; otherwise one mapping in which
 * thread t's rows of grid 0, then its rows of grid 1, start at t * stride (a
 * multiple of 2 MiB). Nothing is touched here: each thread places its own rows. */
static int place_rows(void)
{
    const size_t row_bytes = side * sizeof(double), two_mib = 2u << 20;
    if (contiguous) {
        for (int g = 0; g < 2; g++) {
            double *grid = alloc_2m_aligned(side * row_bytes);
            if (!grid) return -1;
            for (uint64_t i = 0; i < side; i++)
                rows[g][i] = grid + i * side;
        }
        return 0;
    }
    size_t stride = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        size_t n = own_hi(t) - own_lo(t), bytes = 2 * n * row_bytes;
        if (bytes > stride) stride = bytes;
    }
    stride = (stride + two_mib - 1) & ~(two_mib - 1);
    grid_bytes = nthreads * stride + two_mib; /* room to align the start */
    grid_mem = mmap(NULL, grid_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (grid_mem == MAP_FAILED) return -1;
    uintptr_t base = ((uintptr_t)grid_mem + two_mib - 1) & ~(uintptr_t)(two_mib - 1);
    for (unsigned t = 0; t < nthreads; t++) {
        uint64_t lo = own_lo(t), n = own_hi(t) - lo;
        double *block = (double *)(base + t * stride);
        for (uint64_t i = lo; i < lo + n; i++) {
            rows[0][i] = block + (i - lo) * side;
            rows[1][i] = block + (n + i - lo) * side;
        }
    }
    return 0;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-t THREADS] [-n N] [-i ITERATIONS] [-s SPINS] [-p] [-c] [-v]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t threads = ncpu > 0 ? (uint64_t)ncpu : 1;
    int verbose = 0, pin = 0, opt;
    side = 512;
    iterations = 100;
    spins = 100000;
    while ((opt = getopt(argc, argv, "t:n:i:s:pcv")) != -1) {
        switch (opt) {
        case 't':
            if (parse_u64(optarg, &threads) || threads == 0 || threads > 4096) usage(argv[0]);
            break;
        case 'n':
            if (parse_u64(optarg, &side) || side < 3 || side > (1u << 16)) usage(argv[0]);
            break;
        case 'i':
            if (parse_u64(optarg, &iterations) || iterations > (1ULL << 32)) usage(argv[0]);
            break;
        case 's':
            if (parse_u64(optarg, &spins)) usage(argv[0]);
            break;
        case 'p': pin = 1; break;
        case 'c': contiguous = 1; break;
        case 'v': verbose = 1; break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc) usage(argv[0]);
    if (threads > side - 2) {
        fprintf(stderr, "pstencil: %" PRIu64 " threads for %" PRIu64 " inside rows\n", threads,
                side - 2);
        return 2;
    }
    if (pin && (n_pin = online_cpus(pin_cpus, 4096)) == 0)
        fprintf(stderr, "pstencil: cannot read the CPU list, threads not pinned\n");
    nthreads = (unsigned)threads;

    bounds = calloc(nthreads + 1, sizeof *bounds);
    results = aligned_alloc(64, nthreads * sizeof *results);
    pthread_t *tids = calloc(nthreads, sizeof *tids);
    rows[0] = calloc(side, sizeof *rows[0]);
    rows[1] = calloc(side, sizeof *rows[1]);
    if (!bounds || !results || !tids || !rows[0] || !rows[1]) {
        fprintf(stderr, "pstencil: out of memory\n");
        return 1;
    }
    memset(results, 0, nthreads * sizeof *results);
    for (unsigned t = 0; t <= nthreads; t++) /* the inside rows 1 .. side - 2 */
        bounds[t] = 1 + (side - 2) * t / nthreads;
    if (place_rows() != 0) {
        fprintf(stderr, "pstencil: out of memory for the grids\n");
        return 1;
    }

    t_phase[0] = now();
    for (unsigned t = 0; t < nthreads; t++) {
        int err = pthread_create(&tids[t], NULL, worker, (void *)(uintptr_t)t);
        if (err) {
            fprintf(stderr, "pstencil: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    for (unsigned t = 0; t < nthreads; t++)
        pthread_join(tids[t], NULL);
    t_phase[3] = now();

    uint64_t hash = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        hash += results[t].hash * pow_u64(HASH_P, (side - own_hi(t)) * side);
    }
    printf("pstencil: n=%" PRIu64 " iterations=%" PRIu64 " threads=%u checksum=%016" PRIx64 "\n",
           side, iterations, nthreads, mix64(hash));
    if (verbose) {
        fprintf(stderr, "pstencil: init %.1f ms, sweeps %.1f ms, hash %.1f ms\n",
                (t_phase[1] - t_phase[0]) * 1e3, (t_phase[2] - t_phase[1]) * 1e3,
                (t_phase[3] - t_phase[2]) * 1e3);
        for (unsigned t = 0; t < nthreads; t++)
            fprintf(stderr,
                    "pstencil: thread %u on CPU %d: rows %" PRIu64 "-%" PRIu64
                    ", init %.1f ms, computing %.1f ms of the sweeps (a sweep: fastest %.2f ms,"
                    " median %.2f ms)\n",
                    t, results[t].cpu, bounds[t], bounds[t + 1] - 1, results[t].init_s * 1e3,
                    results[t].compute_s * 1e3, results[t].fastest_ms, results[t].median_ms);
    }
    free(tids);
    free(results);
    free(bounds);
    if (contiguous) {
        free(rows[1][0]);
        free(rows[0][0]);
    } else {
        munmap(grid_mem, grid_bytes);
    }
    free(rows[1]);
    free(rows[0]);
    return 0;
}
