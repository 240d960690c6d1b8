/* guest_mem.h — guest-physical memory of one node: RAM regions, per-page access
 * rights, and the code-page bookkeeping that keeps decoded-instruction caches
 * coherent with writes.
 *
 * Every guest RAM access (a CPU's, a device's DMA) is resolved here. A page's
 * right on this node is ABSENT, READ or WRITE; an access needing more calls the
 * fault handler (the DSM, later) which must upgrade the right or fail. Revoking a
 * right returns only after every registered translation cache (vCPU TLBs and
 * decoded blocks) has dropped what it held for the page. */
#ifndef UNUM_MEMORY_GUEST_MEM_H
#define UNUM_MEMORY_GUEST_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PAGE_SHIFT 12
#define GUEST_PAGE_SIZE  (1ull << GUEST_PAGE_SHIFT)
#define GUEST_PAGE_MASK  (~(GUEST_PAGE_SIZE - 1))

enum mem_right { MEM_ABSENT = 0, MEM_READ = 1, MEM_WRITE = 2 };

/* Per-page flag bits (guest_mem.page_flags) */
/* Some vCPU decoded instructions from this page since it was last written: a
 * write bumps the page's code_gen (its decoded blocks go stale) and clears the
 * flag, so a page that held code once (freed kernel init text, an exited
 * program's text reused for data) does not cost every later store a slow path
 * and the end of its block. A decoder reads code_gen before it sets the flag
 * and reads the bytes after; a writer clears the flag before it bumps code_gen:
 * every block decoded before a write either sees the bump or leaves the flag
 * set for the next write. */
#define MEM_PF_CODE 0x01

#define GUEST_MEM_MAX_REGIONS 8
struct guest_mem_region {
    uint64_t gpa, size;
    uint8_t *host;
};

/* A cache of translations that must be shot down when a page's right drops.
 * guest_mem_revoke asks every cache first and then waits for each, so that the
 * caches (vCPUs) acknowledge in parallel rather than one after another. */
struct mem_tcache {
    /* asks the cache to drop the page's translations; returns a ticket for wait */
    uint64_t (*shootdown)(struct mem_tcache *tc, uint64_t gpa_page);
    /* returns once the drop of `ticket` is acknowledged (NULL: shootdown did) */
    void (*wait)(struct mem_tcache *tc, uint64_t ticket);
    uint64_t ticket; /* guest_mem_revoke's, between the two calls */
    struct mem_tcache *next;
};

struct guest_mem {
    struct guest_mem_region region[GUEST_MEM_MAX_REGIONS];
    int nregions;
    uint64_t max_gpa;        /* end of the highest RAM region */
    uint64_t npages;         /* pages covering [0, max_gpa) */
    _Atomic uint8_t *rights; /* per page, enum mem_right */
    _Atomic uint8_t *page_flags;
    _Atomic uint32_t *code_gen; /* bumped on every write to a code page */
    /* DSM hook: make `right` available for gpa; 0 on success, -errno otherwise. */
    int (*fault)(void *ctx, uint64_t gpa, enum mem_right want);
    void *fault_ctx;
    struct mem_tcache *tcaches;
    atomic_flag tcache_lock;
};

/* Creates RAM of `size` bytes at gpa 0, with a hole [hole_start, 4 GiB) relocated
 * above 4 GiB when size exceeds hole_start (hole_start 0 = no hole). All pages
 * start with right `initial`. Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *m, uint64_t size, uint64_t hole_start, enum mem_right initial);
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for gpa if gpa is RAM, else NULL. No rights check. */
static inline uint8_t *guest_mem_host(const struct guest_mem *m, uint64_t gpa)
{
    for (int i = 0; i < m->nregions; i++) {
        const struct guest_mem_region *r = &m->region[i];
        if (gpa - r->gpa < r->size) return r->host + (gpa - r->gpa);
    }
    return NULL;
}

/* Ensures this node holds at least `want` for the page containing gpa, calling the
 * fault handler if needed. Returns the host pointer to gpa, NULL if not RAM, or
 * sets *err (negative errno) on a failed fault. When the fault handler returns 0
 * the right was held at that moment with the calling thread back in the guest
 * (see the thread hooks): a revocation after that waits for the thread's
 * acknowledgement, so the pointer is good for the access at hand. */
uint8_t *guest_mem_access(struct guest_mem *m, uint64_t gpa, enum mem_right want, int *err);

/* Lowers the right for one page and waits until every translation cache dropped it. */
void guest_mem_revoke(struct guest_mem *m, uint64_t gpa, enum mem_right to);
void guest_mem_grant(struct guest_mem *m, uint64_t gpa, enum mem_right to);

/* A thread that caches translations (a vCPU) steps out of the guest while a
 * fault blocks — so that shoot-downs on its node do not wait for it — and back in
 * afterwards (dropping whatever was shot down meanwhile). The fault handler calls
 * guest_mem_thread_leave/enter around blocking; threads without hooks (device
 * DMA, the loader) are unaffected. Hooks are per thread. */
struct guest_mem_thread_hooks {
    void (*leave)(void *ctx);
    void (*enter)(void *ctx);
    uint64_t (*guest_pc)(void *ctx); /* where the guest is: for diagnostics */
    void *ctx;
};
void guest_mem_set_thread_hooks(const struct guest_mem_thread_hooks *h);
void guest_mem_thread_leave(void);
void guest_mem_thread_enter(void);
uint64_t guest_mem_thread_guest_pc(void); /* 0 outside a vCPU thread */

void guest_mem_register_tcache(struct guest_mem *m, struct mem_tcache *tc);
void guest_mem_unregister_tcache(struct guest_mem *m, struct mem_tcache *tc);

/* Called by every writer of guest RAM outside the CPU fast path (and by the CPU's
 * slow path): invalidates decoded code on the pages covered. Returns true when
 * some page held decoded code. */
static inline bool guest_mem_note_write(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    bool code = false;
    if (!len) return false;
    for (uint64_t p = gpa >> GUEST_PAGE_SHIFT; p <= (gpa + len - 1) >> GUEST_PAGE_SHIFT; p++)
        if (p < m->npages &&
            (atomic_load_explicit(&m->page_flags[p], memory_order_relaxed) & MEM_PF_CODE)) {
            atomic_fetch_and_explicit(&m->page_flags[p], (uint8_t)~MEM_PF_CODE,
                                      memory_order_seq_cst);
            atomic_fetch_add_explicit(&m->code_gen[p], 1, memory_order_seq_cst);
            code = true;
        }
    return code;
}

/* DMA-style copies with bounds and rights checks: 0, -EFAULT (not RAM) or fault error. */
int guest_mem_read(struct guest_mem *m, uint64_t gpa, void *buf, size_t len);
int guest_mem_write(struct guest_mem *m, uint64_t gpa, const void *buf, size_t len);

#endif
