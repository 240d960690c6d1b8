/* emu_api.h — emulator-specific queries for the machine, tests and benchmarks. */
#ifndef UNUM_CPU_EMU_EMU_API_H
#define UNUM_CPU_EMU_EMU_API_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;
uint64_t emu_icount(struct vcpu *v); /* instructions retired */
/* Racy snapshot of the current RIP for sampling profilers (debug aid). */
uint64_t emu_sample_rip(struct vcpu *v);
/* The guest TSC frequency (the host's invariant TSC, calibrated once). */
uint64_t emu_tsc_hz(void);
/* The node's time base: host TSC + an offset agreed with the cluster's platform
 * node, so that guest time is one clock on every node (0 on a single node). */
void emu_set_clock_offset(int64_t cycles);
uint64_t emu_host_clock(void);
/* Makes vcpu_run return VCPU_EXIT_STOP at the first block boundary at or after
 * `n` retired instructions (0 removes the limit). For tests and fuzzing. */
void emu_set_insn_limit(struct vcpu *v, uint64_t n);

#endif
