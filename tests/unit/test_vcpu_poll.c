/* test_vcpu_poll.c — the platform's poll hook (cpu_exit_ops.poll): called
 * between blocks every poll_insns instructions, with the vCPU out of the guest
 * (so that what the hook does — a node serving DSM requests — may revoke this
 * vCPU's own translations without waiting for it), never when poll_insns is 0;
 * with a poll_wanted hook, that is asked first, in the guest, and a false skips
 * the poll. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>

#include "common/tiny_guest.h"
#include "cpu/cpu.h"
#include "cpu/emu/emu_api.h"
#include "memory/guest_mem.h"

#define DATA_PAGE 0x20000

static struct {
    struct tiny_guest *g;
    int calls, in_guest_calls, revoked;
    int asked, asked_out_of_guest;
    uint64_t last_icount, min_gap, max_gap;
} hp;

static void poll_hook(void *ctx)
{
    struct tiny_guest *g = ctx;
    uint64_t now = emu_icount(g->vcpu);
    if (atomic_load(&g->vcpu->in_guest)) hp.in_guest_calls++;
    uint64_t gap = now - hp.last_icount;
    if (hp.calls == 0 || gap < hp.min_gap) hp.min_gap = gap;
    if (gap > hp.max_gap) hp.max_gap = gap;
    hp.last_icount = now;
    hp.calls++;
    /* what a DSM handler does on this thread: take a page the vCPU uses away
     * and give it back (a vCPU in the guest would have to acknowledge first,
     * which this thread could never do here) */
    if (hp.calls % 10 == 5) {
        guest_mem_revoke(&g->mem, DATA_PAGE, MEM_READ);
        guest_mem_grant(&g->mem, DATA_PAGE, MEM_WRITE);
        hp.revoked++;
    }
}

/* says yes every third time it is asked */
static bool poll_wanted_hook(void *ctx)
{
    struct tiny_guest *g = ctx;
    if (!atomic_load(&g->vcpu->in_guest)) hp.asked_out_of_guest++;
    return ++hp.asked % 3 == 0;
}

/* 1: inc %eax; mov %eax, (DATA_PAGE); jmp 1b */
static const uint8_t loop_code[] = {0x40, 0xa3, 0x00, 0x00, 0x02, 0x00, 0xeb, 0xf8};

static void run_loop(uint32_t poll_insns, uint64_t insns, bool ask)
{
    struct tiny_guest g;
    memset(&hp, 0, sizeof(hp));
    assert_int_equal(tiny_guest_init_poll(&g, NULL, poll_hook, poll_insns), 0);
    if (ask) tiny_guest_set_poll_wanted(&g, poll_wanted_hook);
    hp.g = &g;
    tiny_guest_load(&g, TG_PROT32, loop_code, sizeof(loop_code));
    enum vcpu_exit_reason r = tiny_guest_run(&g, insns);
    assert_int_equal(r, VCPU_EXIT_STOP);
    uint32_t stored;
    memcpy(&stored, g.ram + DATA_PAGE, 4);
    assert_true(stored > 0); /* the loop ran, and wrote its page after each revocation */
    tiny_guest_destroy(&g);
}

static void test_poll_every_n_insns(void **state)
{
    run_loop(1000, 100000, false);
    /* every 1000 instructions, at the end of a 3-instruction block */
    assert_true(hp.calls >= 98 && hp.calls <= 100);
    assert_true(hp.min_gap >= 1000);
    assert_true(hp.max_gap <= 1003);
    assert_int_equal(hp.in_guest_calls, 0);
    assert_true(hp.revoked >= 9);
}

static void test_no_poll_when_zero(void **state)
{
    run_loop(0, 100000, false);
    assert_int_equal(hp.calls, 0);
}

static void test_poll_wanted_gates_the_poll(void **state)
{
    run_loop(1000, 100000, true);
    assert_true(hp.asked >= 98 && hp.asked <= 100); /* asked where it used to poll */
    assert_int_equal(hp.asked_out_of_guest, 0);     /* without leaving the guest */
    assert_int_equal(hp.calls, hp.asked / 3);       /* polled only when it said yes */
    assert_int_equal(hp.in_guest_calls, 0);
    assert_true(hp.min_gap >= 3000 && hp.max_gap <= 3009); /* 3 looks, each up to a block late */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_every_n_insns),
        cmocka_unit_test(test_no_poll_when_zero),
        cmocka_unit_test(test_poll_wanted_gates_the_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
