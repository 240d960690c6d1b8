/* ops_sse.c — SSE/SSE2 (and MMX) instructions, MXCSR, FXSAVE/FXRSTOR. */
#include "cpu/emu/emu.h"

void emu_sse_check(struct emu_cpu *c)
{
    if ((c->s.cr0 & CR0_EM) || !(c->s.cr4 & CR4_OSFXSR))
        emu_ud(c);
    if (c->s.cr0 & CR0_TS)
        emu_raise(c, EXC_NM, 0, false);
}

void emu_fxsave(struct emu_cpu *c, uint64_t lin) { emu_ud(c); }
void emu_fxrstor(struct emu_cpu *c, uint64_t lin) { emu_ud(c); }
void emu_ldmxcsr(struct emu_cpu *c, uint32_t v)
{
    if (v & ~0xffffu)
        emu_gp(c, 0);
    c->s.fpu.mxcsr = v;
}

void emu_ops_sse_init(void) {}
