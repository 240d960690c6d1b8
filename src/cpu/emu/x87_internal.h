/* x87_internal.h — private interface between the x87 modules (ops_x87*.c).
 *
 * The numeric x87 instructions run on the host's own x87 unit (ops_x87_host.c):
 * the guest's whole FPU state is loaded into the host FPU, the very instruction
 * the guest executes runs once, and the state is read back. That makes results,
 * flags, tags, stack faults, precision/rounding control and the unmasked-exception
 * responses identical to the hardware by construction. Only the control
 * instructions (FNSTENV/FLDENV/FNSAVE/FRSTOR, FLDCW, FNSTSW, ...) and the
 * bookkeeping hardware does outside the arithmetic (exception reporting, FIP/FDP/
 * FOP) are emulated in C (ops_x87.c). */
#ifndef UNUM_CPU_EMU_X87_INTERNAL_H
#define UNUM_CPU_EMU_X87_INTERNAL_H

#include "cpu/emu/emu.h"

/* FSW bits */
#define FSW_IE  0x0001
#define FSW_DE  0x0002
#define FSW_ZE  0x0004
#define FSW_OE  0x0008
#define FSW_UE  0x0010
#define FSW_PE  0x0020
#define FSW_EXC 0x003f /* the six exception flags */
#define FSW_SF  0x0040
#define FSW_ES  0x0080
#define FSW_C0  0x0100
#define FSW_C1  0x0200
#define FSW_C2  0x0400
#define FSW_TOP 0x3800
#define FSW_C3  0x4000
#define FSW_B   0x8000

/* Tag values (2 bits per physical register) */
enum { TAG_VALID = 0, TAG_ZERO = 1, TAG_SPECIAL = 2, TAG_EMPTY = 3 };

/* Size of the FNSAVE image in the 32-bit protected-mode format the host uses. */
#define X87_IMG_SIZE 108

static inline int x87_top(const struct x86_fpu *f)
{
    return (f->fsw >> 11) & 7;
}

/* ES and B follow the flags: set exactly when an exception flag is unmasked (the
 * hardware recomputes them on FLDCW, FLDENV, FRSTOR and FNSTENV). */
static inline uint16_t x87_fsw_sync_es(uint16_t fsw, uint16_t fcw)
{
    if (fsw & ~fcw & FSW_EXC) return fsw | FSW_ES | FSW_B;
    return fsw & ~(FSW_ES | FSW_B);
}

/* Tag the hardware reports for a non-empty register holding the 80-bit value r. */
uint16_t x87_tag_of(const uint8_t *r);
/* Full tag word: empty where `ftw` says empty, else the tag of the contents. */
uint16_t x87_retag(const struct x86_fpu *f, uint16_t ftw);

/* ---- host execution (ops_x87_host.c) ---- */

/* Register form D8+esc /modrm (modrm 0xc0..0xff); memory form D8+esc /digit with
 * the operand at the address passed as `mem` to x87_host_run. */
const void *x87_reg_stub(int esc, int modrm);
const void *x87_mem_stub(int esc, int digit);

/* What one instruction leaves behind: status and tag words, physical registers. */
struct x87_result {
    uint16_t fsw, ftw;
    uint8_t st[8][10];
};

/* Runs one stub on the host FPU loaded with the guest state f. mem is the operand
 * buffer (at least 16 bytes) for memory stubs. cf is the host CF the stub starts
 * with (the condition of FCMOVcc, run as FCMOVB). Returns the host RFLAGS after
 * the instruction (FCOMI and friends). f is not
 * modified: the caller commits *res with x87_commit once nothing can fault any
 * more (a store to guest memory). */
uint64_t x87_host_run(const struct x86_fpu *f, struct x87_result *res, const void *stub, void *mem,
                      bool cf);

/* The fast path loads only the registers an instruction reads (FLD m80), runs it
 * with every exception masked and stores what is left on the stack (FSTP m80):
 * a few dozen cycles instead of the ~200 of FRSTOR+FNSAVE. It applies when the
 * outcome is certain to be the same: no stack fault possible, and no exception
 * raised that the guest has unmasked; otherwise the caller takes the full path. */
struct x87_fast_io {
    uint16_t fcw;      /* guest FCW with all exceptions masked */
    uint16_t host_fcw; /* scratch: the host's FCW */
    uint16_t fsw;      /* out: host FSW after the instruction */
    uint16_t pad;
    uint32_t nin;  /* in: ST(0)..ST(nin-1) in st[] */
    uint32_t nout; /* out count: ST(0)..ST(nout-1) stored to st[] */
    const void *stub;
    void *mem;
    uint64_t cf;     /* host CF for the stub (FCMOVcc) */
    uint64_t rflags; /* out: host RFLAGS after the instruction */
    uint8_t st[8][10];
};
void x87_fast_exec(struct x87_fast_io *io);

/* What the fast path needs to know of an instruction. */
struct x87_fastop {
    int8_t nin;     /* stack registers read (all must be non-empty); -1: no fast path */
    int8_t delta;   /* pushes (+1) or pops (-1, -2) */
    uint16_t cmask; /* FSW condition bits the instruction writes; the others keep */
};
struct x87_fastop x87_fast_reg(int esc, int modrm);
struct x87_fastop x87_fast_mem(int esc, int digit);
/* Runs stub by the fast path if it applies; false means "use x87_host_run". On
 * success x87_fast_commit applies the outcome (once guest memory was written). */
bool x87_fast_run(const struct x86_fpu *f, struct x87_fast_io *io, struct x87_fastop op,
                  const void *stub, void *mem, bool cf);
void x87_fast_commit(struct x86_fpu *f, const struct x87_fast_io *io, struct x87_fastop op);

static inline void x87_commit(struct x86_fpu *f, const struct x87_result *res)
{
    f->fsw = res->fsw;
    f->ftw = res->ftw;
    for (int i = 0; i < 8; i++)
        memcpy(f->st[i], res->st[i], 10);
}

#endif
