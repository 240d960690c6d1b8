/*
 * psort — parallel sort of pseudo-random 64-bit keys, a deterministic SMP workload.
 *
 * Usage: psort [-t THREADS] [-n COUNT] [-s SEED] [-p] [-v]
 *   -t THREADS  worker threads (default: online CPUs, sysconf(_SC_NPROCESSORS_ONLN))
 *   -p          pin thread t to online CPU t mod CPUs before it touches its data (as
 *               HPC runs bind threads): its chunk then stays on its CPU's NUMA node
 *               (unpinned, the scheduler may start a thread on one node, where its
 *               chunk is placed, and move it to another)
 *   -n COUNT    keys to sort (default 2000000)
 *   -s SEED     generator seed (default 1)
 *   -v          phase timings on stderr
 *
 * Key i is the splitmix64 output number i for SEED (so every thread generates its own
 * chunk and the keys do not depend on the thread count). The array is cut into THREADS
 * chunks; each thread
 *   1. places its chunk of both buffers in its own NUMA node's memory (first touch)
 *      and generates its chunk of keys (the buffers are 2 MiB aligned: see alloc_2m_aligned),
 *   2. sorts it with an LSD radix sort (8 passes of 8 bits, passes where every key has
 *      the same byte skipped),
 *   3. takes part in log2(THREADS) merge rounds: adjacent runs are merged pairwise into
 *      the other buffer, and each thread produces exactly its own chunk's range of the
 *      output (its start and end in the two runs found by a merge-path binary search),
 *   4. checks that its range is sorted (including the step from the previous range) and
 *      hashes it.
 * Phases are separated by a pthread barrier. Prints one line
 *     psort: n=COUNT threads=T checksum=HEX
 * where the checksum is order-dependent over the sorted array: the splitmix64 finalizer
 * of sum(key[i] * P^(n-1-i)) mod 2^64 with P the 64-bit FNV prime (computed per range
 * and combined), so it is the same for every thread count and on the host.
 * Also checks that the sorted array holds the same keys as the generated one (sum and
 * xor of hashed keys). Exits 0 on success, 1 if the result is not sorted or keys were
 * lost, 2 on bad use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define GAMMA  0x9e3779b97f4a7c15ULL
#define HASH_P 0x100000001b3ULL /* FNV-1 64-bit prime */

struct result {                          /* per thread, padded to its own cache lines */
    uint64_t gen_sum, gen_xor;           /* fingerprint of the generated keys */
    uint64_t out_sum, out_xor;           /* ... and of this thread's range of the sorted array */
    uint64_t hash;                       /* polynomial hash of the sorted range */
    uint64_t unsorted;                   /* index + 1 of the first out-of-order key, 0 if none */
    float populate_ms, keys_ms, sort_ms; /* -v: this thread's own time in phases 1, 2 */
    int cpu;                             /* -v: where it ran phase 1 */
};
_Static_assert(sizeof(struct result) == 64, "one cache line per thread");

static uint64_t n_keys, seed;
static unsigned nthreads;
static uint64_t *buf[2];
static uint64_t *sorted; /* buf[0] or buf[1]: where the merge rounds left the result */
static uint64_t *bounds; /* chunk t is [bounds[t], bounds[t + 1]) */
static struct result *results;
static pthread_barrier_t barrier;
static double t_phase[5];  /* thread 0: time at the end of each phase */
static int pin_cpus[4096]; /* -p: the online CPUs, in order */
static int n_pin;          /* 0: threads are not pinned */

/* LSD radix sort of a[0..len) using tmp[0..len); the result ends in a. */
static void radix_sort(uint64_t *a, uint64_t *tmp, uint64_t len)
{
    uint64_t count[8][256]; /* 16 KiB on the thread stack */
    if (len < 2) return;
    memset(count, 0, sizeof count);
    for (uint64_t i = 0; i < len; i++) {
        uint64_t k = a[i];
        for (int p = 0; p < 8; p++)
            count[p][(k >> (8 * p)) & 0xff]++;
    }
    uint64_t *src = a, *dst = tmp;
    for (int p = 0; p < 8; p++) {
        unsigned shift = 8 * p;
        if (count[p][(src[0] >> shift) & 0xff] == len) continue; /* one bucket: no-op */
        uint64_t pos = 0;
        for (int b = 0; b < 256; b++) {
            uint64_t c = count[p][b];
            count[p][b] = pos;
            pos += c;
        }
        for (uint64_t i = 0; i < len; i++) {
            uint64_t k = src[i];
            dst[count[p][(k >> shift) & 0xff]++] = k;
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, len * sizeof *a);
}

/* Merge path: how many of the first k outputs of the stable merge of A (ma keys) and
 * B (mb keys) come from A (ties go to A first). */
static uint64_t co_rank(uint64_t k, const uint64_t *A, uint64_t ma, const uint64_t *B, uint64_t mb)
{
    uint64_t lo = k > mb ? k - mb : 0, hi = k < ma ? k : ma;
    for (;;) {
        uint64_t i = lo + (hi - lo) / 2, j = k - i;
        if (i < ma && j > 0 && A[i] <= B[j - 1])
            lo = i + 1; /* A[i] belongs before B[j - 1]: take more of A */
        else if (i > 0 && j < mb && A[i - 1] > B[j])
            hi = i - 1; /* B[j] belongs before A[i - 1]: take less of A */
        else
            return i;
    }
}

/* Places this thread's chunk of a buffer in its NUMA node's memory up front (the
 * kernel allocates on the first touch, here in one call instead of one page fault
 * per page, which on a multi-node machine would each take the process-wide
 * mmap lock). Without MADV_POPULATE_WRITE (Linux < 5.14) the first write places it. */
static void populate(uint64_t *p, uint64_t n)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t page = 4096, start = (uintptr_t)p & ~(page - 1);
    uintptr_t end = ((uintptr_t)(p + n) + page - 1) & ~(page - 1);
    if (n) madvise((void *)start, end - start, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
}

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    struct result *r = &results[t];
    uint64_t lo = bounds[t], hi = bounds[t + 1];
    if (n_pin) pin_thread("psort", t, pin_cpus[t % (unsigned)n_pin]);

    /* 1. generate */
    uint64_t *a = buf[0];
    uint64_t sum = 0, x = 0;
    double t0 = now();
    populate(buf[0] + lo, hi - lo);
    populate(buf[1] + lo, hi - lo);
    double t1 = now();
    for (uint64_t i = lo; i < hi; i++) {
        uint64_t k = mix64(seed + (i + 1) * GAMMA);
        a[i] = k;
        sum += k;
        x ^= mix64(k);
    }
    r->gen_sum = sum;
    r->gen_xor = x;
    double t2 = now();
    r->populate_ms = (float)((t1 - t0) * 1e3);
    r->keys_ms = (float)((t2 - t1) * 1e3);
    r->cpu = sched_getcpu();
    pthread_barrier_wait(&barrier);
    if (t == 0) t_phase[1] = now();

    /* 2. sort the chunk */
    double t3 = now();
    radix_sort(a + lo, buf[1] + lo, hi - lo);
    r->sort_ms = (float)((now() - t3) * 1e3);
    pthread_barrier_wait(&barrier);
    if (t == 0) t_phase[2] = now();

    /* 3. merge rounds: runs of w chunks, pairs [p0, p0 + w) + [p0 + w, p0 + 2w) */
    int s = 0;
    for (unsigned w = 1; w < nthreads; w *= 2) {
        const uint64_t *src = buf[s];
        uint64_t *dst = buf[s ^ 1];
        unsigned p0 = t / (2 * w) * (2 * w);
        unsigned p1 = p0 + w < nthreads ? p0 + w : nthreads;
        unsigned p2 = p0 + 2 * w < nthreads ? p0 + 2 * w : nthreads;
        const uint64_t *A = src + bounds[p0], *B = src + bounds[p1];
        uint64_t ma = bounds[p1] - bounds[p0], mb = bounds[p2] - bounds[p1];
        uint64_t k0 = lo - bounds[p0], k1 = hi - bounds[p0];
        uint64_t i = co_rank(k0, A, ma, B, mb), j = k0 - i;
        uint64_t i1 = co_rank(k1, A, ma, B, mb), j1 = k1 - i1;
        uint64_t *out = dst + lo;
        while (i < i1 && j < j1)
            *out++ = A[i] <= B[j] ? A[i++] : B[j++];
        while (i < i1)
            *out++ = A[i++];
        while (j < j1)
            *out++ = B[j++];
        s ^= 1;
        pthread_barrier_wait(&barrier);
    }
    if (t == 0) {
        t_phase[3] = now();
        sorted = buf[s];
    }

    /* 4. verify and hash this range */
    const uint64_t *d = buf[s];
    uint64_t h = 0, bad = 0;
    sum = 0;
    x = 0;
    for (uint64_t i = lo; i < hi; i++) {
        uint64_t k = d[i];
        if (!bad && i > 0 && d[i - 1] > k) bad = i + 1;
        h = h * HASH_P + k;
        sum += k;
        x ^= mix64(k);
    }
    r->hash = h;
    r->unsorted = bad;
    r->out_sum = sum;
    r->out_xor = x;
    return NULL;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-t THREADS] [-n COUNT] [-s SEED] [-p] [-v]\n", argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t threads = ncpu > 0 ? (uint64_t)ncpu : 1;
    int verbose = 0, pin = 0, opt;
    n_keys = 2000000;
    seed = 1;
    while ((opt = getopt(argc, argv, "t:n:s:pv")) != -1) {
        switch (opt) {
        case 't':
            if (parse_u64(optarg, &threads) || threads == 0 || threads > 4096) usage(argv[0]);
            break;
        case 'n':
            if (parse_u64(optarg, &n_keys) || n_keys > (1ULL << 36)) usage(argv[0]);
            break;
        case 's':
            if (parse_u64(optarg, &seed)) usage(argv[0]);
            break;
        case 'p': pin = 1; break;
        case 'v': verbose = 1; break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc) usage(argv[0]);
    if (pin && (n_pin = online_cpus(pin_cpus, 4096)) == 0)
        fprintf(stderr, "psort: cannot read the CPU list, threads not pinned\n");
    nthreads = (unsigned)threads;

    /* 2^21 keys over 2 or 4 threads: chunks of 8 or 4 MiB, on page-table boundaries */
    buf[0] = alloc_2m_aligned(n_keys * sizeof(uint64_t));
    buf[1] = alloc_2m_aligned(n_keys * sizeof(uint64_t));
    bounds = calloc(nthreads + 1, sizeof *bounds);
    results = calloc(nthreads, sizeof *results);
    pthread_t *tids = calloc(nthreads, sizeof *tids);
    if (!buf[0] || !buf[1] || !bounds || !results || !tids) {
        fprintf(stderr, "psort: out of memory\n");
        return 1;
    }
    for (unsigned t = 0; t <= nthreads; t++)
        bounds[t] = (uint64_t)((unsigned __int128)n_keys * t / nthreads);
    if (pthread_barrier_init(&barrier, NULL, nthreads)) {
        fprintf(stderr, "psort: pthread_barrier_init failed\n");
        return 1;
    }

    t_phase[0] = now();
    for (unsigned t = 0; t < nthreads; t++) {
        int err = pthread_create(&tids[t], NULL, worker, (void *)(uintptr_t)t);
        if (err) {
            fprintf(stderr, "psort: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    for (unsigned t = 0; t < nthreads; t++)
        pthread_join(tids[t], NULL);
    t_phase[4] = now();

    uint64_t hash = 0, gen_sum = 0, gen_xor = 0, out_sum = 0, out_xor = 0, unsorted = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        struct result *r = &results[t];
        hash += r->hash * pow_u64(HASH_P, n_keys - bounds[t + 1]);
        gen_sum += r->gen_sum;
        gen_xor ^= r->gen_xor;
        out_sum += r->out_sum;
        out_xor ^= r->out_xor;
        if (r->unsorted && !unsorted) unsorted = r->unsorted;
    }
    printf("psort: n=%" PRIu64 " threads=%u checksum=%016" PRIx64 "\n", n_keys, nthreads,
           mix64(hash));
    if (verbose)
        fprintf(stderr, "psort: generate %.1f ms, sort %.1f ms, merge %.1f ms, verify %.1f ms\n",
                (t_phase[1] - t_phase[0]) * 1e3, (t_phase[2] - t_phase[1]) * 1e3,
                (t_phase[3] - t_phase[2]) * 1e3, (t_phase[4] - t_phase[3]) * 1e3);
    for (unsigned t = 0; verbose && t < nthreads; t++)
        fprintf(stderr,
                "psort: thread %u on CPU %d: populate %.1f ms, keys %.1f ms, sort %.1f ms\n", t,
                results[t].cpu, results[t].populate_ms, results[t].keys_ms, results[t].sort_ms);
    int ok = 1;
    if (unsorted) {
        uint64_t i = unsorted - 1;
        fprintf(stderr,
                "psort: NOT SORTED: key[%" PRIu64 "] = %016" PRIx64 " > key[%" PRIu64
                "] = %016" PRIx64 "\n",
                i - 1, sorted[i - 1], i, sorted[i]);
        ok = 0;
    }
    if (gen_sum != out_sum || gen_xor != out_xor) {
        fprintf(stderr, "psort: the sorted array does not hold the generated keys\n");
        ok = 0;
    }
    free(tids);
    free(results);
    free(bounds);
    free(buf[1]);
    free(buf[0]);
    return ok ? 0 : 1;
}
