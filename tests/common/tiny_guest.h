/* tiny_guest.h — a bare guest for tests and fuzzers: RAM, descriptor tables and
 * identity page tables built in guest memory, every exception vector pointing at
 * a HLT stub, and one emulator vCPU placed in real, 32-bit protected or 64-bit
 * long mode. */
#ifndef UNUM_TESTS_TINY_GUEST_H
#define UNUM_TESTS_TINY_GUEST_H

#include <stdint.h>

#include "cpu/cpu.h"

#define TG_MEM_SIZE  (16u << 20)
#define TG_STUBS     0x7000 /* exception vector v halts at TG_STUBS + v */
#define TG_CODE      0x10000
#define TG_STACK_TOP 0x80000

enum tg_mode { TG_REAL, TG_PROT32, TG_LONG64 };

struct tiny_guest {
    struct guest_mem mem;
    uint8_t *ram;
    struct vcpu *vcpu;
};

/* io may be NULL: reads then return all ones */
int tiny_guest_init(struct tiny_guest *g, void (*io)(void *, struct cpu_io *));
/* The same with the platform's poll hook (cpu_exit_ops.poll; ctx = g). */
int tiny_guest_init_poll(struct tiny_guest *g, void (*io)(void *, struct cpu_io *),
                         void (*poll)(void *), uint32_t poll_insns);
/* cpu_exit_ops.poll_wanted of the vCPU (after tiny_guest_init_poll) */
void tiny_guest_set_poll_wanted(struct tiny_guest *g, bool (*wanted)(void *));
void tiny_guest_destroy(struct tiny_guest *g);
/* Rebuilds the tables, copies code to TG_CODE and resets the vCPU into mode. */
void tiny_guest_load(struct tiny_guest *g, enum tg_mode mode, const uint8_t *code, size_t len);
/* Runs at most max_insns more instructions. */
enum vcpu_exit_reason tiny_guest_run(struct tiny_guest *g, uint64_t max_insns);

#endif
