/* state.c — conversion between the FXSAVE image (what the host gives us) and the
 * emulator's struct x86_fpu (physical registers, full tag word). */
#include "difftest.h"

#include <string.h>

/* Tag class of a non-empty register, as FSTENV reports it. */
int dt_f80_class(const uint8_t v[10])
{
    uint64_t mant;
    uint16_t se;
    memcpy(&mant, v, 8);
    memcpy(&se, v + 8, 2);
    unsigned exp = se & 0x7fff;
    if (exp == 0x7fff) return 2;
    if (exp == 0) return mant ? 2 : 1;
    return (mant >> 63) ? 0 : 2; /* unnormal */
}

void dt_fx_to_fpu(const struct dt_fx *fx, struct x86_fpu *f)
{
    int top = (fx->fsw >> 11) & 7;
    f->fcw = fx->fcw;
    f->fsw = fx->fsw;
    f->fop = fx->fop;
    f->fip = fx->fip;
    f->fdp = fx->fdp;
    f->fcs = f->fds = 0;
    f->mxcsr = fx->mxcsr;
    uint16_t ftw = 0;
    for (int phys = 0; phys < 8; phys++) {
        const uint8_t *src = fx->st[(phys - top) & 7];
        memset(f->st[phys], 0, 16);
        memcpy(f->st[phys], src, 10);
        int tag = (fx->ftw >> phys & 1) ? dt_f80_class(src) : 3;
        ftw |= (uint16_t)(tag << (2 * phys));
    }
    f->ftw = ftw;
    memcpy(f->xmm, fx->xmm, sizeof(f->xmm));
}

void dt_fpu_to_fx(const struct x86_fpu *f, struct dt_fx *fx)
{
    memset(fx, 0, sizeof(*fx));
    int top = (f->fsw >> 11) & 7;
    fx->fcw = f->fcw;
    fx->fsw = f->fsw;
    fx->fop = f->fop;
    fx->fip = f->fip;
    fx->fdp = f->fdp;
    fx->mxcsr = f->mxcsr;
    uint8_t abridged = 0;
    for (int phys = 0; phys < 8; phys++) {
        memcpy(fx->st[(phys - top) & 7], f->st[phys], 10);
        if (((f->ftw >> (2 * phys)) & 3) != 3) abridged |= (uint8_t)(1u << phys);
    }
    fx->ftw = abridged;
    memcpy(fx->xmm, f->xmm, sizeof(fx->xmm));
}
