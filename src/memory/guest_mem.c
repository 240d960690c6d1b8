/* guest_mem.c — RAM regions, per-page rights, revocation with shoot-down. */
#include "memory/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GUEST_HUGE_PAGE (2u << 20)

/* UNUM_THP=1 offers guest RAM to the host's transparent huge pages: a page
 * arriving from another node then lands in memory the host has already backed
 * (a remote read miss into fresh memory: ~8 -> ~5 µs here), but the host zeroes
 * 2 MiB at every first touch, which made boots slower (1 node +0.2 s, 2 nodes
 * +0.6 s on this project's hosts), so it is off by default. */
static bool huge_pages_wanted(void)
{
    const char *e = getenv("UNUM_THP");
    return e && strcmp(e, "1") == 0;
}

static int add_region(struct guest_mem *m, uint64_t gpa, uint64_t size)
{
    if (m->nregions == GUEST_MEM_MAX_REGIONS) return -ENOSPC;
    /* 2 MiB-aligned so that the host can back it with transparent huge pages */
    size_t slack = GUEST_HUGE_PAGE;
    uint8_t *raw = mmap(NULL, size + slack, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return -errno;
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + slack - 1) & ~(uintptr_t)(slack - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    munmap(p + size, (size_t)(raw + slack - p));              /* the tail: 1 .. slack bytes */
    if (huge_pages_wanted()) madvise(p, size, MADV_HUGEPAGE); /* a hint: failure is harmless */
    m->region[m->nregions++] = (struct guest_mem_region){.gpa = gpa, .size = size, .host = p};
    if (gpa + size > m->max_gpa) m->max_gpa = gpa + size;
    return 0;
}

int guest_mem_init(struct guest_mem *m, uint64_t size, uint64_t hole_start, enum mem_right initial)
{
    memset(m, 0, sizeof(*m));
    atomic_flag_clear(&m->tcache_lock);
    if (!size || (size & ~GUEST_PAGE_MASK)) return -EINVAL;
    int err;
    if (hole_start && size > hole_start) {
        if ((err = add_region(m, 0, hole_start)) ||
            (err = add_region(m, 1ull << 32, size - hole_start)))
            goto fail;
    } else if ((err = add_region(m, 0, size))) {
        goto fail;
    }
    m->npages = m->max_gpa >> GUEST_PAGE_SHIFT;
    m->rights = calloc(m->npages, 1);
    m->page_flags = calloc(m->npages, 1);
    m->code_gen = calloc(m->npages, sizeof(*m->code_gen));
    if (!m->rights || !m->page_flags || !m->code_gen) {
        err = -ENOMEM;
        goto fail;
    }
    for (uint64_t p = 0; p < m->npages; p++)
        m->rights[p] = guest_mem_host(m, p << GUEST_PAGE_SHIFT) ? initial : MEM_ABSENT;
    return 0;
fail:
    guest_mem_destroy(m);
    return err;
}

void guest_mem_destroy(struct guest_mem *m)
{
    for (int i = 0; i < m->nregions; i++)
        munmap(m->region[i].host, m->region[i].size);
    free((void *)m->rights);
    free((void *)m->page_flags);
    free((void *)m->code_gen);
    m->rights = NULL;
    m->page_flags = NULL;
    m->code_gen = NULL;
    m->nregions = 0;
}

uint8_t *guest_mem_access(struct guest_mem *m, uint64_t gpa, enum mem_right want, int *err)
{
    uint8_t *host = guest_mem_host(m, gpa);
    if (!host) return NULL;
    uint64_t page = gpa >> GUEST_PAGE_SHIFT;
    if (atomic_load_explicit(&m->rights[page], memory_order_acquire) >= want) return host;
    /* No re-check after a successful fault: the right may already be on its way
     * out again, but its revocation waits for this thread (see guest_mem.h). */
    int e = m->fault ? m->fault(m->fault_ctx, gpa & GUEST_PAGE_MASK, want) : -EACCES;
    if (e < 0) {
        *err = e;
        return NULL;
    }
    return host;
}

static __thread struct guest_mem_thread_hooks thread_hooks;

void guest_mem_set_thread_hooks(const struct guest_mem_thread_hooks *h)
{
    if (h)
        thread_hooks = *h;
    else
        thread_hooks = (struct guest_mem_thread_hooks){0};
}

uint64_t guest_mem_thread_guest_pc(void)
{
    return thread_hooks.guest_pc ? thread_hooks.guest_pc(thread_hooks.ctx) : 0;
}

void guest_mem_thread_leave(void)
{
    if (thread_hooks.leave) thread_hooks.leave(thread_hooks.ctx);
}

void guest_mem_thread_enter(void)
{
    if (thread_hooks.enter) thread_hooks.enter(thread_hooks.ctx);
}

static void lock_tcaches(struct guest_mem *m)
{
    while (atomic_flag_test_and_set_explicit(&m->tcache_lock, memory_order_acquire))
        __builtin_ia32_pause();
}

static void unlock_tcaches(struct guest_mem *m)
{
    atomic_flag_clear_explicit(&m->tcache_lock, memory_order_release);
}

void guest_mem_revoke(struct guest_mem *m, uint64_t gpa, enum mem_right to)
{
    uint64_t page = gpa >> GUEST_PAGE_SHIFT;
    if (page >= m->npages) return;
    atomic_store_explicit(&m->rights[page], to, memory_order_seq_cst);
    /* Decoded code of the page is stale once the page may change elsewhere. */
    atomic_fetch_add_explicit(&m->code_gen[page], 1, memory_order_seq_cst);
    lock_tcaches(m);
    for (struct mem_tcache *tc = m->tcaches; tc; tc = tc->next)
        tc->ticket = tc->shootdown(tc, gpa & GUEST_PAGE_MASK);
    for (struct mem_tcache *tc = m->tcaches; tc; tc = tc->next)
        if (tc->wait) tc->wait(tc, tc->ticket);
    unlock_tcaches(m);
}

void guest_mem_grant(struct guest_mem *m, uint64_t gpa, enum mem_right to)
{
    uint64_t page = gpa >> GUEST_PAGE_SHIFT;
    if (page < m->npages) atomic_store_explicit(&m->rights[page], to, memory_order_release);
}

void guest_mem_register_tcache(struct guest_mem *m, struct mem_tcache *tc)
{
    lock_tcaches(m);
    tc->next = m->tcaches;
    m->tcaches = tc;
    unlock_tcaches(m);
}

void guest_mem_unregister_tcache(struct guest_mem *m, struct mem_tcache *tc)
{
    lock_tcaches(m);
    for (struct mem_tcache **pp = &m->tcaches; *pp; pp = &(*pp)->next)
        if (*pp == tc) {
            *pp = tc->next;
            break;
        }
    unlock_tcaches(m);
}

static int copy_guest(struct guest_mem *m, uint64_t gpa, void *buf, size_t len, bool write)
{
    while (len) {
        size_t chunk = GUEST_PAGE_SIZE - (gpa & ~GUEST_PAGE_MASK);
        if (chunk > len) chunk = len;
        int err = 0;
        uint8_t *h = guest_mem_access(m, gpa, write ? MEM_WRITE : MEM_READ, &err);
        if (!h) return err ? err : -EFAULT;
        if (write) {
            memcpy(h, buf, chunk);
            guest_mem_note_write(m, gpa, chunk);
        } else {
            memcpy(buf, h, chunk);
        }
        gpa += chunk;
        buf = (uint8_t *)buf + chunk;
        len -= chunk;
    }
    return 0;
}

int guest_mem_read(struct guest_mem *m, uint64_t gpa, void *buf, size_t len)
{
    if (gpa + len < gpa) return -EFAULT;
    return copy_guest(m, gpa, buf, len, false);
}

int guest_mem_write(struct guest_mem *m, uint64_t gpa, const void *buf, size_t len)
{
    if (gpa + len < gpa) return -EFAULT;
    return copy_guest(m, gpa, (void *)buf, len, true);
}
