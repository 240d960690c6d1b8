/* emu_api.h — emulator-specific queries for the machine, tests and benchmarks. */
#ifndef UNUM_CPU_EMU_EMU_API_H
#define UNUM_CPU_EMU_EMU_API_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;
uint64_t emu_icount(struct vcpu *v); /* instructions retired */
bool emu_halted(struct vcpu *v);

#endif
