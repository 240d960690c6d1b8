/* ops_x87.c — x87 floating point. */
#include "cpu/emu/emu.h"

void emu_x87_check(struct emu_cpu *c)
{
    if (c->s.cr0 & (CR0_EM | CR0_TS))
        emu_raise(c, EXC_NM, 0, false);
}

void emu_fpu_reset(struct emu_cpu *c)
{
    c->s.fpu.fcw = 0x37f;
    c->s.fpu.fsw = 0;
    c->s.fpu.ftw = 0xffff;
    c->s.fpu.fop = 0;
    c->s.fpu.fip = c->s.fpu.fdp = 0;
    c->s.fpu.mxcsr = 0x1f80;
}

void emu_ops_x87_init(void) {}
