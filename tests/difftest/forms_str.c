/* forms_str.c — string instructions MOVS, STOS, LODS, SCAS, CMPS in all operand
 * sizes, without and with REP/REPE/REPNE, 64- and 32-bit address size, both
 * directions (DF is random in every case). Counts are small so the touched range
 * stays in the data page; source and destination often overlap, which exposes
 * memmove-style shortcuts (hardware copies element by element). */
#include "difftest.h"

enum { S_MOVS, S_STOS, S_LODS, S_SCAS, S_CMPS };
static const char *const smn[5] = {"movs", "stos", "lods", "scas", "cmps"};
static const uint8_t sop[5] = {0xa4, 0xaa, 0xac, 0xae, 0xa6};

static int str_size(const struct dt_form *f)
{
    if (!(f->op[0] & 1)) return 1;
    if (f->rexw) return 8;
    for (int i = 0; i < f->npfx; i++)
        if (f->pfx[i] == 0x66) return 2;
    return 4;
}

static bool has_pfx(const struct dt_form *f, uint8_t p)
{
    for (int i = 0; i < f->npfx; i++)
        if (f->pfx[i] == p) return true;
    return false;
}

static void str_setup(struct dt_case *c)
{
    const struct dt_form *f = c->form;
    int size = str_size(f), kind = 0;
    for (int k = 0; k < 5; k++)
        if ((f->op[0] & ~1) == sop[k]) kind = k;
    bool rep = has_pfx(f, 0xf3) || has_pfx(f, 0xf2), repne = has_pfx(f, 0xf2);
    bool a32 = has_pfx(f, 0x67);
    int dir = (c->in.rflags & FL_DF) ? -1 : 1;

    uint64_t n = 1;
    if (rep) {
        unsigned u = (unsigned)dt_below(c, 10);
        n = u == 0 ? 0 : u == 1 ? 1 : dt_below(c, 17);
        uint64_t hi = a32 || dt_chance(c, 20) ? dt_rand(c) << 32 : 0;
        /* with a 64-bit address size a nonzero upper half would be a huge count */
        c->in.gpr[RCX] = a32 ? hi | n : n;
    }
    uint64_t span = 17 * 8;
    uint64_t si = DT_DATA_BASE + DT_MEM_LO + span + dt_below(c, DT_MEM_HI - DT_MEM_LO - 2 * span);
    uint64_t di = dt_chance(c, 30) ? si + (uint64_t)((int64_t)dt_below(c, 33) - 16)
                                   : DT_DATA_BASE + DT_MEM_LO + span +
                                         dt_below(c, DT_MEM_HI - DT_MEM_LO - 2 * span);
    if (dt_chance(c, 60)) {
        si &= ~(uint64_t)(size - 1);
        di &= ~(uint64_t)(size - 1);
    }
    c->in.gpr[RSI] = a32 ? si | dt_rand(c) << 32 : si;
    c->in.gpr[RDI] = a32 ? di | dt_rand(c) << 32 : di;

    /* shape the data so REPE/REPNE stop at interesting places */
    uint64_t acc = dt_get_gpr(c, RAX, size);
    for (uint64_t i = 0; i < n + 1; i++) {
        int64_t step = (int64_t)i * dir * size;
        uint64_t s = si + (uint64_t)step, d = di + (uint64_t)step;
        if (kind == S_SCAS && dt_chance(c, repne ? 10 : 85)) dt_mem_set(c, d, size, acc);
        if (kind == S_CMPS && dt_chance(c, repne ? 10 : 85))
            dt_mem_set(c, d, size, dt_mem_get(c, s, size));
    }
}

static void add_str(int kind, int size, int rep, bool a32)
{
    struct dt_form f = {.cat = CAT_STR, .ext = -1, .flags = FLG_ALL};
    if (a32) f.pfx[f.npfx++] = 0x67;
    if (size == 2) f.pfx[f.npfx++] = 0x66;
    if (rep) f.pfx[f.npfx++] = rep == 2 ? 0xf2 : 0xf3;
    f.rexw = size == 8;
    f.nop = 1;
    f.op[0] = (uint8_t)(sop[kind] + (size != 1));
    f.implicit = (1u << RSI) | (1u << RDI) | (1u << RCX) | (1u << RAX);
    f.setup = str_setup;
    static const char sfx[9] = {[1] = 'b', [2] = 'w', [4] = 'd', [8] = 'q'};
    const char *rp = rep == 0 ? "" : rep == 2 ? "repne " : (kind >= S_SCAS ? "repe " : "rep ");
    f.name = dt_strdup_printf("str/%s%s%c%s", rp, smn[kind], sfx[size], a32 ? " a32" : "");
    dt_add(&f);
}

void dt_forms_str(void)
{
    static const int sizes[4] = {1, 2, 4, 8};
    for (int kind = 0; kind < 5; kind++)
        for (int si = 0; si < 4; si++)
            for (int a32 = 0; a32 < 2; a32++) {
                add_str(kind, sizes[si], 0, a32);
                add_str(kind, sizes[si], 1, a32);
                if (kind >= S_SCAS) add_str(kind, sizes[si], 2, a32);
            }
}
