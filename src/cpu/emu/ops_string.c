/* ops_string.c — string instructions (MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS)
 * with REP/REPE/REPNE, DF and address-size-selected index registers. Long REP
 * runs yield every few thousand iterations so interrupts and shoot-downs are
 * served; fast paths copy/fill whole in-page runs on host memory. */
#include "cpu/emu/emu.h"

#define REP_CHUNK 4096 /* iterations before yielding to the run loop */

static inline uint64_t idx_get(struct emu_cpu *c, int r, int asz)
{
    return c->s.gpr[r] & szmask(asz);
}

static inline void idx_set(struct emu_cpu *c, int r, int asz, uint64_t v)
{
    reg_write(c, r, asz, false, v);
}

static inline int64_t step(struct emu_cpu *c, int size)
{
    return (emu_rflags(c) & FL_DF) ? -size : size;
}

static inline int opsize(const struct insn *in)
{
    return (in->opc & 1) ? in->osz : 1;
}

/* Host pointer for n bytes at lin for a plain RAM access, or NULL (MMIO or split). */
static uint8_t *run_ptr(struct emu_cpu *c, uint64_t lin, uint64_t n, bool write)
{
    if ((lin & 0xfff) + n > 4096) return NULL;
    return write ? emu_ptr_rmw(c, lin, (int)n) : emu_ptr_read(c, lin);
}

/* Elements that fit before either page boundary (forward direction only). */
static uint64_t run_len(uint64_t lin, int size, uint64_t max)
{
    uint64_t n = (4096 - (lin & 0xfff)) / size;
    return n < max ? n : max;
}

/* Ends a REP iteration batch: re-execute this instruction if work remains. */
static void rep_continue(struct emu_cpu *c, uint64_t remaining, bool stop)
{
    if (remaining && !stop) {
        c->next_rip = c->s.rip;
        c->exit_block = true;
    }
}

static bool fast_movs(struct emu_cpu *c, const struct insn *in, int size, uint64_t *cnt)
{
    int asz = in->asz;
    uint64_t si = idx_get(c, RSI, asz), di = idx_get(c, RDI, asz);
    uint64_t src = emu_lin(c, in->seg, si), dst = emu_lin(c, SEG_ES, di);
    if ((src & (size - 1)) || (dst & (size - 1))) return false;
    uint64_t n = run_len(src, size, *cnt);
    n = run_len(dst, size, n);
    if (n < 2) return false;
    uint8_t *s = run_ptr(c, src, n * size, false);
    if (!s) return false;
    uint8_t *d = run_ptr(c, dst, n * size, true);
    if (!d) return false;
    /* overlapping forward copies replicate bytes element by element: slow path */
    if (d < s + n * size && s < d + n * size) return false;
    memcpy(d, s, n * size);
    idx_set(c, RSI, asz, si + n * size);
    idx_set(c, RDI, asz, di + n * size);
    *cnt -= n;
    return true;
}

static bool fast_stos(struct emu_cpu *c, const struct insn *in, int size, uint64_t *cnt)
{
    int asz = in->asz;
    uint64_t di = idx_get(c, RDI, asz), dst = emu_lin(c, SEG_ES, di);
    if (dst & (size - 1)) return false;
    uint64_t n = run_len(dst, size, *cnt);
    if (n < 2) return false;
    uint8_t *d = run_ptr(c, dst, n * size, true);
    if (!d) return false;
    uint64_t v = c->s.gpr[RAX];
    if (size == 1)
        memset(d, (int)(v & 0xff), n);
    else
        for (uint64_t i = 0; i < n; i++)
            store_host(d + i * size, size, v);
    idx_set(c, RDI, asz, di + n * size);
    *cnt -= n;
    return true;
}

static void op_movs(struct emu_cpu *c, const struct insn *in)
{
    int size = opsize(in), asz = in->asz;
    bool rep = in->pfx & (PFX_REP | PFX_REPNE);
    uint64_t cnt = rep ? idx_get(c, RCX, asz) : 1;
    int64_t d = step(c, size);
    for (int i = 0; cnt && i < REP_CHUNK; i++) {
        if (rep && d > 0 && cnt > 1 && fast_movs(c, in, size, &cnt)) {
            idx_set(c, RCX, asz, cnt);
            continue;
        }
        uint64_t si = idx_get(c, RSI, asz), di = idx_get(c, RDI, asz);
        uint64_t v = vm_read(c, emu_lin(c, in->seg, si), size);
        vm_write(c, emu_lin(c, SEG_ES, di), size, v);
        idx_set(c, RSI, asz, si + d);
        idx_set(c, RDI, asz, di + d);
        cnt--;
        if (rep) idx_set(c, RCX, asz, cnt);
    }
    if (rep) rep_continue(c, cnt, false);
}

static void op_stos(struct emu_cpu *c, const struct insn *in)
{
    int size = opsize(in), asz = in->asz;
    bool rep = in->pfx & (PFX_REP | PFX_REPNE);
    uint64_t cnt = rep ? idx_get(c, RCX, asz) : 1;
    int64_t d = step(c, size);
    for (int i = 0; cnt && i < REP_CHUNK; i++) {
        if (rep && d > 0 && cnt > 1 && fast_stos(c, in, size, &cnt)) {
            idx_set(c, RCX, asz, cnt);
            continue;
        }
        uint64_t di = idx_get(c, RDI, asz);
        vm_write(c, emu_lin(c, SEG_ES, di), size, c->s.gpr[RAX]);
        idx_set(c, RDI, asz, di + d);
        cnt--;
        if (rep) idx_set(c, RCX, asz, cnt);
    }
    if (rep) rep_continue(c, cnt, false);
}

static void op_lods(struct emu_cpu *c, const struct insn *in)
{
    int size = opsize(in), asz = in->asz;
    bool rep = in->pfx & (PFX_REP | PFX_REPNE);
    uint64_t cnt = rep ? idx_get(c, RCX, asz) : 1;
    int64_t d = step(c, size);
    for (int i = 0; cnt && i < REP_CHUNK; i++) {
        uint64_t si = idx_get(c, RSI, asz);
        reg_write(c, RAX, size, false, vm_read(c, emu_lin(c, in->seg, si), size));
        idx_set(c, RSI, asz, si + d);
        cnt--;
        if (rep) idx_set(c, RCX, asz, cnt);
    }
    if (rep) rep_continue(c, cnt, false);
}

/* CMPS and SCAS: REPE stops on ZF=0, REPNE on ZF=1. */
static void cmp_flags(struct emu_cpu *c, int size, uint64_t a, uint64_t b)
{
    uint64_t m = szmask(size);
    emu_set_lazy(c, LF_SUB, szidx(size), (a - b) & m, a & m, b & m);
}

static void op_cmps_scas(struct emu_cpu *c, const struct insn *in)
{
    int size = opsize(in), asz = in->asz;
    bool scas = in->opc >= 0xae;
    bool repe = in->pfx & PFX_REP, repne = in->pfx & PFX_REPNE;
    bool rep = repe || repne;
    uint64_t cnt = rep ? idx_get(c, RCX, asz) : 1;
    int64_t d = step(c, size);
    bool stop = false;
    for (int i = 0; cnt && i < REP_CHUNK && !stop; i++) {
        uint64_t di = idx_get(c, RDI, asz);
        uint64_t b = vm_read(c, emu_lin(c, SEG_ES, di), size), a;
        if (scas) {
            a = reg_read(c, RAX, size, false);
        } else {
            uint64_t si = idx_get(c, RSI, asz);
            a = vm_read(c, emu_lin(c, in->seg, si), size);
            idx_set(c, RSI, asz, si + d);
        }
        idx_set(c, RDI, asz, di + d);
        cmp_flags(c, size, a, b);
        cnt--;
        if (rep) {
            idx_set(c, RCX, asz, cnt);
            bool zf = ((a - b) & szmask(size)) == 0;
            stop = repe ? !zf : zf;
        }
    }
    if (rep) rep_continue(c, cnt, stop);
}

static void op_ins(struct emu_cpu *c, const struct insn *in)
{
    int size = opsize(in), asz = in->asz;
    uint16_t port = (uint16_t)c->s.gpr[RDX];
    if (!emu_io_allowed(c, port, size)) emu_gp(c, 0);
    bool rep = in->pfx & (PFX_REP | PFX_REPNE);
    uint64_t cnt = rep ? idx_get(c, RCX, asz) : 1;
    int64_t d = step(c, size);
    for (int i = 0; cnt && i < REP_CHUNK; i++) {
        uint64_t di = idx_get(c, RDI, asz), lin = emu_lin(c, SEG_ES, di), v = 0;
        vm_write(c, lin, size, vm_read(c, lin, size)); /* probe: fault before the port read */
        emu_io(c, false, port, size, &v);
        vm_write(c, lin, size, v);
        idx_set(c, RDI, asz, di + d);
        cnt--;
        if (rep) idx_set(c, RCX, asz, cnt);
    }
    if (rep) rep_continue(c, cnt, false);
}

static void op_outs(struct emu_cpu *c, const struct insn *in)
{
    int size = opsize(in), asz = in->asz;
    uint16_t port = (uint16_t)c->s.gpr[RDX];
    if (!emu_io_allowed(c, port, size)) emu_gp(c, 0);
    bool rep = in->pfx & (PFX_REP | PFX_REPNE);
    uint64_t cnt = rep ? idx_get(c, RCX, asz) : 1;
    int64_t d = step(c, size);
    for (int i = 0; cnt && i < REP_CHUNK; i++) {
        uint64_t si = idx_get(c, RSI, asz);
        uint64_t v = vm_read(c, emu_lin(c, in->seg, si), size);
        emu_io(c, true, port, size, &v);
        idx_set(c, RSI, asz, si + d);
        cnt--;
        if (rep) idx_set(c, RCX, asz, cnt);
    }
    if (rep) rep_continue(c, cnt, false);
}

void emu_ops_string_init(void)
{
    emu_register(MAP_1B, 0x6c, -1, op_ins);
    emu_register(MAP_1B, 0x6d, -1, op_ins);
    emu_register(MAP_1B, 0x6e, -1, op_outs);
    emu_register(MAP_1B, 0x6f, -1, op_outs);
    emu_register(MAP_1B, 0xa4, -1, op_movs);
    emu_register(MAP_1B, 0xa5, -1, op_movs);
    emu_register(MAP_1B, 0xa6, -1, op_cmps_scas);
    emu_register(MAP_1B, 0xa7, -1, op_cmps_scas);
    emu_register(MAP_1B, 0xaa, -1, op_stos);
    emu_register(MAP_1B, 0xab, -1, op_stos);
    emu_register(MAP_1B, 0xac, -1, op_lods);
    emu_register(MAP_1B, 0xad, -1, op_lods);
    emu_register(MAP_1B, 0xae, -1, op_cmps_scas);
    emu_register(MAP_1B, 0xaf, -1, op_cmps_scas);
}
