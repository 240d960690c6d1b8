/* ops_sse.c — SSE/SSE2 (and MMX) support shared by the instruction modules:
 * the #UD/#NM/#MF checks, 16-byte memory slow paths, MXCSR loading and
 * FXSAVE/FXRSTOR. The instructions themselves live in ops_sse_mov.c (data
 * movement, shuffles, logic), ops_sse_int.c (packed integer, MMX and SSE2) and
 * ops_sse_fp.c (floating point, run on the host's own SSE unit). */
#include "cpu/emu/sse_internal.h"

void emu_sse_check(struct emu_cpu *c)
{
    if ((c->s.cr0 & CR0_EM) || !(c->s.cr4 & CR4_OSFXSR)) emu_ud(c);
    if (c->s.cr0 & CR0_TS) emu_raise(c, EXC_NM, 0, false);
}

_Noreturn void sse_check_fail(struct emu_cpu *c, const struct insn *in)
{
    emu_sse_check(c);
    /* unreachable: sse_enter only calls here when one of the checks fails */
    emu_ud(c);
}

void mmx_check_slow(struct emu_cpu *c, const struct insn *in)
{
    if (c->s.cr0 & CR0_EM) emu_ud(c);
    if (c->s.cr0 & CR0_TS) emu_raise(c, EXC_NM, 0, false);
    if ((c->s.fpu.fsw & FSW_ES) && (c->s.cr0 & CR0_NE)) emu_raise(c, EXC_MF, 0, false);
}

/* ---- MMX tags ---- */

/* Full tag of a non-empty register from its contents: 0 valid, 1 zero, 2 special */
static unsigned fx_tag(const uint8_t *r)
{
    uint64_t m;
    memcpy(&m, r, 8);
    unsigned e = (r[8] | r[9] << 8) & 0x7fff;
    if (e == 0x7fff) return 2;
    if (e == 0) return m ? 2 : 1;
    return (m >> 63) ? 0 : 2;
}

void mmx_tags_fill(struct emu_cpu *c)
{
    uint16_t t = c->s.fpu.ftw;
    for (int i = 0; i < 8; i++)
        if (((t >> (2 * i)) & 3) == 3)
            t = (uint16_t)((t & ~(3u << (2 * i))) | (fx_tag(c->s.fpu.st[i]) << (2 * i)));
    c->s.fpu.ftw = t;
}

/* ---- 16-byte and block memory access (slow paths) ---- */

void mem_read128_slow(struct emu_cpu *c, uint64_t ea, void *dst)
{
    /* reads have no side effect before a fault: two halves (each may split) */
    uint64_t q[2];
    q[0] = vm_read(c, ea, 8);
    q[1] = vm_read(c, ea + 8, 8);
    memcpy(dst, q, 16);
}

/* Before a write of n bytes that crosses into the next page: checks that page
 * by its first byte, so a fault there reports that address in CR2 as hardware
 * does, and leaves memory untouched. */
static void probe_split_write(struct emu_cpu *c, uint64_t lin, int n)
{
    uint64_t next = (lin | 0xfff) + 1;
    if (c->mode != MODE_LONG64) next = (uint32_t)next;
    if ((lin & 0xfff) + (uint64_t)n > 4096) {
        emu_translate(c, lin, ACC_W, c->cpl == 3);
        emu_translate(c, next, ACC_W, c->cpl == 3);
    }
}

void mem_write128_slow(struct emu_cpu *c, uint64_t ea, const void *src)
{
    if ((ea & 0xfff) <= 0xff0) {
        /* one page: if the first half is writable so is the second */
        uint64_t q[2];
        memcpy(q, src, 16);
        vm_write(c, ea, 8, q[0]);
        vm_write(c, ea + 8, 8, q[1]);
    } else {
        probe_split_write(c, ea, 16);
        emu_write_bytes(c, ea, src, 16);
    }
}

/* Whole-block copies for FXSAVE/FXRSTOR: one memcpy when the block sits in one
 * page already in the TLB, else byte-wise through the MMU (which also fills it). */
static void block_read(struct emu_cpu *c, uint64_t lin, void *dst, int n)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (e->tag_r == (lin & ~0xfffull) && (lin & 0xfff) + (uint64_t)n <= 4096) {
        memcpy(dst, (const void *)(uintptr_t)(lin + e->addend), (size_t)n);
        return;
    }
    emu_read_bytes(c, lin, dst, n, ACC_R);
}

static void block_write(struct emu_cpu *c, uint64_t lin, const void *src, int n)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (e->tag_w == (lin & ~0xfffull) && (lin & 0xfff) + (uint64_t)n <= 4096 &&
        !(atomic_load_explicit(&c->v.mem->page_flags[e->gpa >> 12], memory_order_relaxed) &
          MEM_PF_CODE)) {
        memcpy((void *)(uintptr_t)(lin + e->addend), src, (size_t)n);
        return;
    }
    emu_write_bytes(c, lin, src, n);
}

/* ---- MXCSR ---- */

/* the lazy host MXCSR (sse_internal.h) */
__thread struct emu_cpu *mxcsr_owner;
__thread uint32_t mxcsr_saved;

void emu_ldmxcsr(struct emu_cpu *c, uint32_t v)
{
    if (v & ~MXCSR_VALID) emu_gp(c, 0);
    c->s.fpu.mxcsr = v;
    mxcsr_reload(c);
}

/* ---- FXSAVE / FXRSTOR ---- */

#define FX_SIZE   512
#define FX_USED64 416 /* through XMM15; bytes 416..511 are never written */
#define FX_USED32 288 /* through XMM7 outside 64-bit mode */

static void fx_check(struct emu_cpu *c, uint64_t lin)
{
    if (c->s.cr0 & (CR0_EM | CR0_TS)) emu_raise(c, EXC_NM, 0, false);
    if (lin & 15) emu_gp(c, 0);
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void fx_build(struct emu_cpu *c, uint8_t *b, bool rexw, int nxmm)
{
    const struct x86_fpu *f = &c->s.fpu;
    uint8_t abridged = 0;
    for (int i = 0; i < 8; i++)
        if (((f->ftw >> (2 * i)) & 3) != 3) abridged |= (uint8_t)(1u << i);
    put16(b + 0, f->fcw);
    put16(b + 2, f->fsw);
    b[4] = abridged;
    put16(b + 6, f->fop & 0x7ff);
    if (rexw) {
        put64(b + 8, f->fip);
        put64(b + 16, f->fdp);
    } else {
        put32(b + 8, (uint32_t)f->fip);
        put16(b + 12, f->fcs);
        put32(b + 16, (uint32_t)f->fdp);
        put16(b + 20, f->fds);
    }
    put32(b + 24, f->mxcsr);
    put32(b + 28, MXCSR_VALID);
    int top = (f->fsw >> 11) & 7;
    for (int i = 0; i < 8; i++)
        memcpy(b + 32 + 16 * i, f->st[(top + i) & 7], 10);
    memcpy(b + 160, f->xmm, 16 * (size_t)nxmm);
}

void emu_fxsave(struct emu_cpu *c, uint64_t lin, bool rexw)
{
    fx_check(c, lin);
    bool long64 = c->mode == MODE_LONG64;
    int used = long64 ? FX_USED64 : FX_USED32;
    uint8_t buf[FX_SIZE] __attribute__((aligned(16))) = {0};
    mxcsr_sync(c);
    fx_build(c, buf, rexw && long64, long64 ? 16 : 8);
    /* the operand is all 512 bytes (only `used` are written): fault first */
    probe_split_write(c, lin, FX_SIZE);
    block_write(c, lin, buf, used);
}

void emu_fxrstor(struct emu_cpu *c, uint64_t lin, bool rexw)
{
    fx_check(c, lin);
    uint8_t b[FX_SIZE] __attribute__((aligned(16)));
    block_read(c, lin, b, FX_SIZE);
    uint32_t mxcsr = get32(b + 24);
    if (mxcsr & ~MXCSR_VALID) emu_gp(c, 0);

    struct x86_fpu *f = &c->s.fpu;
    bool long64 = c->mode == MODE_LONG64;
    /* as FLDCW/FLDENV do: reserved FCW bits read back fixed, and ES/B are
     * recomputed from the exception flags and masks */
    f->fcw = (get16(b + 0) & 0x1f3f) | 0x40;
    uint16_t fsw = get16(b + 2);
    if (fsw & ~f->fcw & 0x3f)
        f->fsw = fsw | FSW_ES | FSW_B;
    else
        f->fsw = fsw & (uint16_t) ~(FSW_ES | FSW_B);
    f->fop = get16(b + 6) & 0x7ff;
    if (rexw && long64) {
        f->fip = get64(b + 8);
        f->fdp = get64(b + 16);
    } else {
        f->fip = get32(b + 8);
        f->fcs = get16(b + 12);
        f->fdp = get32(b + 16);
        f->fds = get16(b + 20);
    }
    f->mxcsr = mxcsr;
    mxcsr_reload(c);
    int top = (f->fsw >> 11) & 7;
    for (int i = 0; i < 8; i++) {
        uint8_t *r = f->st[(top + i) & 7];
        memcpy(r, b + 32 + 16 * i, 10);
        memset(r + 10, 0, 6);
    }
    uint16_t ftw = 0;
    for (int i = 0; i < 8; i++) {
        unsigned tag = (b[4] >> i) & 1 ? fx_tag(f->st[i]) : 3;
        ftw |= (uint16_t)(tag << (2 * i));
    }
    f->ftw = ftw;
    memcpy(f->xmm, b + 160, 16 * (size_t)(long64 ? 16 : 8));
}

void emu_ops_sse_init(void)
{
    sse_mov_init();
    sse_int_init();
    sse_fp_init();
}
