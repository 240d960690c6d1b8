/* platform_poke.h — replays a byte string as a sequence of hostile port and MMIO
 * accesses against a whole PC machine (every device model, the I/O APIC and the
 * local APICs), for the platform fuzzer and its deterministic test. */
#ifndef UNUM_TESTS_PLATFORM_POKE_H
#define UNUM_TESTS_PLATFORM_POKE_H

#include <stddef.h>
#include <stdint.h>

struct pc;

/* A 2-vCPU machine with 64 MiB, created once per process. */
struct pc *platform_poke_machine(void);
/* Interprets data as 12-byte access records; returns the number performed. */
size_t platform_poke(struct pc *pc, const uint8_t *data, size_t size);

#endif
