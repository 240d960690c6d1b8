/* Memory layer tests: regions and the PCI hole, bounds-checked DMA, per-page
 * rights with the fault hook, code-page generations, and revocation with
 * shoot-down acknowledged by a running emulator vCPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "memory/guest_mem.h"

static void test_regions_and_hole(void **state)
{
    struct guest_mem m;
    assert_int_equal(guest_mem_init(&m, 3ull << 30, 2ull << 30, MEM_WRITE), 0);
    assert_non_null(guest_mem_host(&m, 0));
    assert_non_null(guest_mem_host(&m, (2ull << 30) - 1));
    assert_null(guest_mem_host(&m, 2ull << 30)); /* the hole */
    assert_null(guest_mem_host(&m, (4ull << 30) - 1));
    assert_non_null(guest_mem_host(&m, 4ull << 30)); /* relocated RAM */
    assert_non_null(guest_mem_host(&m, (5ull << 30) - 1));
    assert_null(guest_mem_host(&m, 5ull << 30));
    guest_mem_destroy(&m);
    assert_int_equal(guest_mem_init(&m, 12345, 0, MEM_WRITE), -EINVAL); /* not page sized */
}

/* VmFlags of the mapping that holds `addr` contain "hg" (MADV_HUGEPAGE). */
static bool huge_page_hinted(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    bool in = false, hinted = false, found = false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
            found |= in;
        } else if (in && !strncmp(line, "VmFlags:", 8)) {
            hinted = strstr(line, " hg") != NULL;
        }
    }
    fclose(f);
    assert_true(found);
    return hinted;
}

/* RAM is 2 MiB aligned, and with UNUM_THP=1 offered to the host's transparent
 * huge pages (a remote page then lands in memory the host already has: no
 * host page fault per 4 KiB); by default it is not. */
static void test_huge_page_backing(void **state)
{
    struct guest_mem m;
    setenv("UNUM_THP", "1", 1);
    assert_int_equal(guest_mem_init(&m, 6ull << 20, 0, MEM_WRITE), 0);
    uint8_t *h = guest_mem_host(&m, 0);
    assert_true(((uintptr_t)h & ((2u << 20) - 1)) == 0);
    assert_true(huge_page_hinted(h));
    assert_true(huge_page_hinted(h + (6u << 20) - 1));
    guest_mem_destroy(&m);
    unsetenv("UNUM_THP");
    assert_int_equal(guest_mem_init(&m, 6ull << 20, 0, MEM_WRITE), 0);
    h = guest_mem_host(&m, 0);
    assert_true(((uintptr_t)h & ((2u << 20) - 1)) == 0);
    assert_false(huge_page_hinted(h));
    guest_mem_destroy(&m);
}

static void test_dma_bounds(void **state)
{
    struct guest_mem m;
    assert_int_equal(guest_mem_init(&m, 1 << 20, 0, MEM_WRITE), 0);
    uint8_t buf[64] = {1, 2, 3};
    assert_int_equal(guest_mem_write(&m, 4090, buf, 16), 0); /* crosses a page: fine */
    uint8_t back[16];
    assert_int_equal(guest_mem_read(&m, 4090, back, 16), 0);
    assert_memory_equal(buf, back, 16);
    assert_int_equal(guest_mem_read(&m, (1 << 20) - 8, back, 16), -EFAULT); /* past the end */
    assert_int_equal(guest_mem_read(&m, ~0ull - 4, back, 16), -EFAULT);     /* wraps */
    assert_int_equal(guest_mem_write(&m, 1ull << 40, buf, 1), -EFAULT);
    guest_mem_destroy(&m);
}

struct fault_log {
    _Atomic int calls;
    uint64_t last_gpa;
    enum mem_right last_want;
    int fail;
    struct guest_mem *m;
};

static int fault_hook(void *ctx, uint64_t gpa, enum mem_right want)
{
    struct fault_log *l = ctx;
    l->last_gpa = gpa;
    l->last_want = want;
    if (l->fail) {
        l->calls++;
        return -EIO;
    }
    guest_mem_grant(l->m, gpa, want);
    /* counted once granted: a test that sees the count and then revokes must not
     * have its revocation undone by this grant (a vCPU reading on undisturbed) */
    l->calls++;
    return 0;
}

static void test_rights_and_faults(void **state)
{
    struct guest_mem m;
    struct fault_log log = {.m = &m};
    assert_int_equal(guest_mem_init(&m, 1 << 20, 0, MEM_ABSENT), 0);
    m.fault = fault_hook;
    m.fault_ctx = &log;
    uint8_t b = 0;
    assert_int_equal(guest_mem_read(&m, 0x3010, &b, 1), 0);
    assert_int_equal(log.calls, 1);
    assert_int_equal(log.last_gpa, 0x3000);
    assert_int_equal(log.last_want, MEM_READ);
    assert_int_equal(guest_mem_read(&m, 0x3020, &b, 1), 0); /* now readable: no fault */
    assert_int_equal(log.calls, 1);
    assert_int_equal(guest_mem_write(&m, 0x3020, &b, 1), 0); /* upgrade */
    assert_int_equal(log.calls, 2);
    assert_int_equal(log.last_want, MEM_WRITE);
    log.fail = 1;
    assert_int_equal(guest_mem_read(&m, 0x8000, &b, 1), -EIO);
    guest_mem_destroy(&m);
}

static void test_code_generation(void **state)
{
    struct guest_mem m;
    assert_int_equal(guest_mem_init(&m, 1 << 20, 0, MEM_WRITE), 0);
    uint8_t b = 0x90;
    assert_int_equal(guest_mem_write(&m, 0x5000, &b, 1), 0);
    assert_int_equal(m.code_gen[5], 0); /* not a code page: no bump */
    m.page_flags[5] |= MEM_PF_CODE;
    assert_int_equal(guest_mem_write(&m, 0x5000, &b, 1), 0);
    assert_int_equal(m.code_gen[5], 1);
    /* its decoded code is stale now: the flag goes, and later writes (the page
     * reused for data) cost nothing until code is decoded from it again */
    assert_false(m.page_flags[5] & MEM_PF_CODE);
    assert_false(guest_mem_note_write(&m, 0x5010, 8));
    assert_int_equal(guest_mem_write(&m, 0x5000, &b, 1), 0);
    assert_int_equal(m.code_gen[5], 1);
    m.page_flags[5] |= MEM_PF_CODE; /* decoded again */
    assert_true(guest_mem_note_write(&m, 0x5ff8, 16)); /* into the next page too */
    assert_int_equal(m.code_gen[5], 2);
    assert_int_equal(m.code_gen[6], 0);
    guest_mem_destroy(&m);
}

/* ---- shoot-down with a running vCPU ---- */

static void nop_io(void *ctx, struct cpu_io *io)
{
    io->data = ~0ull;
}
static int no_irq(void *ctx)
{
    return -1;
}
static const struct cpu_exit_ops ops = {.io = nop_io, .irq_ack = no_irq};

static void *run_vcpu(void *arg)
{
    struct vcpu *v = arg;
    vcpu_run(v);
    return NULL;
}

static void test_shootdown_with_running_vcpu(void **state)
{
    struct guest_mem m;
    struct fault_log log = {.m = &m};
    assert_int_equal(guest_mem_init(&m, 4 << 20, 0, MEM_WRITE), 0);
    m.fault = fault_hook;
    m.fault_ctx = &log;
    /* 1: mov eax, [0x200000] ; jmp 1b   (32-bit flat, no paging) */
    static const uint8_t code[] = {0xa1, 0x00, 0x00, 0x20, 0x00, 0xeb, 0xf9};
    memcpy(guest_mem_host(&m, 0x100000), code, sizeof(code));
    struct vcpu *v = emu_cpu_impl.create(&m, 0, &ops, NULL);
    assert_non_null(v);
    struct x86_state s;
    emu_cpu_impl.get_state(v, &s);
    x86_state_flat32(&s, 0x100000);
    emu_cpu_impl.set_state(v, &s);

    /* not running: a revoke returns at once and the vCPU flushes on entry */
    guest_mem_revoke(&m, 0x200000, MEM_ABSENT);
    assert_int_equal(atomic_load(&v->flush_seq), 1);

    pthread_t t;
    pthread_create(&t, NULL, run_vcpu, v);
    while (log.calls == 0) /* first read of the absent page faults into the hook */
        usleep(1000);
    for (int i = 0; i < 5; i++) {
        int before = log.calls;
        guest_mem_revoke(&m, 0x200000, MEM_ABSENT);
        /* returned: the running vCPU acknowledged (or was outside the guest) */
        assert_true(atomic_load(&v->flush_done) >= atomic_load(&v->flush_seq) ||
                    !atomic_load(&v->in_guest));
        while (log.calls == before) /* its next read must fault again */
            usleep(1000);
        assert_int_equal(log.last_gpa, 0x200000);
    }
    vcpu_request_stop(v);
    pthread_join(t, NULL);
    emu_cpu_impl.destroy(v);
    guest_mem_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regions_and_hole),
        cmocka_unit_test(test_dma_bounds),
        cmocka_unit_test(test_huge_page_backing),
        cmocka_unit_test(test_rights_and_faults),
        cmocka_unit_test(test_code_generation),
        cmocka_unit_test(test_shootdown_with_running_vcpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
