/* compare.c — comparison of the native and emulated outcome of a case, and the
 * printing of cases and differences. */
#define _GNU_SOURCE
#include "difftest.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- comparison ---- */

static const char *exc_name(int v)
{
    static char buf[16];
    static const char *const names[32] = {
        [0] = "#DE",  [1] = "#DB",  [3] = "#BP",  [4] = "#OF",  [5] = "#BR",  [6] = "#UD",
        [7] = "#NM",  [8] = "#DF",  [10] = "#TS", [11] = "#NP", [12] = "#SS", [13] = "#GP",
        [14] = "#PF", [16] = "#MF", [17] = "#AC", [18] = "#MC", [19] = "#XM"};
    switch (v) {
    case DT_EXC_NONE: return "none";
    case DT_EXC_SHUTDOWN: return "triple-fault";
    case DT_EXC_STRAY: return "stray-halt";
    default: break;
    }
    if (v >= 0 && v < 32 && names[v]) return names[v];
    snprintf(buf, sizeof(buf), "vector %d", v);
    return buf;
}

static const char *const gpr_name[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                         "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

static void print_flags(FILE *o, uint64_t f)
{
    static const struct {
        uint32_t bit;
        const char *n;
    } fl[] = {{FL_CF, "CF"}, {FL_PF, "PF"}, {FL_AF, "AF"}, {FL_ZF, "ZF"},
              {FL_SF, "SF"}, {FL_DF, "DF"}, {FL_OF, "OF"}};
    fprintf(o, "%#" PRIx64 " [", f);
    const char *sep = "";
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
        if (f & fl[i].bit) {
            fprintf(o, "%s%s", sep, fl[i].n);
            sep = " ";
        }
    fprintf(o, "]");
}

static void print_f80(FILE *o, const uint8_t *v)
{
    uint64_t m;
    uint16_t se;
    memcpy(&m, v, 8);
    memcpy(&se, v + 8, 2);
    fprintf(o, "%04x:%016" PRIx64, se, m);
}

static bool mem_ignored(const struct dt_case *c, uint32_t off)
{
    for (int i = 0; i < c->nign; i++)
        if (off - c->ign_off[i] < c->ign_len[i]) return true;
    return false;
}

/* Compares the outputs; returns the number of differing items, printing each to
 * `o` when it is not NULL. */
int dt_compare(const struct dt_case *c, const struct dt_result *n, const struct dt_result *e,
               FILE *o)
{
    int d = 0;
#define DIFF(...)                                                                                  \
    do {                                                                                           \
        d++;                                                                                       \
        if (o) fprintf(o, "    " __VA_ARGS__);                                                     \
    } while (0)
    if (n->exc != e->exc)
        DIFF("exception: native %s, emulator %s\n", exc_name(n->exc), exc_name(e->exc));
    if (e->exc == DT_EXC_SHUTDOWN) return d ? d : 1;
    if (n->rip != e->rip) DIFF("rip: native %#" PRIx64 ", emulator %#" PRIx64 "\n", n->rip, e->rip);
    for (int i = 0; i < 16; i++)
        if (!(c->gpr_ignore >> i & 1) && n->out.gpr[i] != e->out.gpr[i])
            DIFF("%s: native %#" PRIx64 ", emulator %#" PRIx64 "\n", gpr_name[i], n->out.gpr[i],
                 e->out.gpr[i]);
    uint64_t fm = c->flags_mask | FL_DF;
    if ((n->out.rflags ^ e->out.rflags) & fm) {
        d++;
        if (o) {
            fprintf(o, "    rflags (compared ");
            print_flags(o, fm);
            fprintf(o, "): native ");
            print_flags(o, n->out.rflags & fm);
            fprintf(o, ", emulator ");
            print_flags(o, e->out.rflags & fm);
            fprintf(o, "\n");
        }
    }
    const struct dt_fx *nf = &n->out.fx, *ef = &e->out.fx;
    if (nf->fcw != ef->fcw) DIFF("fcw: native %#x, emulator %#x\n", nf->fcw, ef->fcw);
    if ((nf->fsw ^ ef->fsw) & c->fsw_mask)
        DIFF("fsw (mask %#x): native %#x, emulator %#x\n", c->fsw_mask, nf->fsw, ef->fsw);
    if (nf->ftw != ef->ftw)
        DIFF("x87 tags (abridged, physical): native %#x, emulator %#x\n", nf->ftw, ef->ftw);
    int top = (nf->fsw >> 11) & 7;
    for (int i = 0; i < 8; i++) {
        int phys = (top + i) & 7;
        if (!(nf->ftw >> phys & 1)) continue; /* empty: contents are not architectural */
        if (memcmp(nf->st[i], ef->st[i], 10)) {
            d++;
            if (o) {
                fprintf(o, "    st(%d): native ", i);
                print_f80(o, nf->st[i]);
                fprintf(o, ", emulator ");
                print_f80(o, ef->st[i]);
                fprintf(o, "\n");
            }
        }
    }
    if (e->have_ftw) {
        /* the emulator's full tag word must agree with the register contents */
        int etop = (ef->fsw >> 11) & 7;
        for (int phys = 0; phys < 8; phys++) {
            int tag = (e->ftw >> (2 * phys)) & 3;
            if (tag == 3) continue;
            int want = dt_f80_class(ef->st[(phys - etop) & 7]);
            if (tag != want)
                DIFF("emulator tag of R%d is %d but its content is class %d\n", phys, tag, want);
        }
    }
    if (nf->mxcsr != ef->mxcsr) DIFF("mxcsr: native %#x, emulator %#x\n", nf->mxcsr, ef->mxcsr);
    for (int i = 0; i < 16; i++)
        if (memcmp(&nf->xmm[i], &ef->xmm[i], 16))
            DIFF("xmm%d: native %016" PRIx64 "%016" PRIx64 ", emulator %016" PRIx64 "%016" PRIx64
                 "\n",
                 i, nf->xmm[i].q[1], nf->xmm[i].q[0], ef->xmm[i].q[1], ef->xmm[i].q[0]);
    if (memcmp(n->mem, e->mem, DT_DATA_SIZE)) {
        int shown = 0;
        for (uint32_t off = 0; off < DT_DATA_SIZE; off++) {
            if (n->mem[off] == e->mem[off] || mem_ignored(c, off)) continue;
            uint32_t end = off;
            while (end < DT_DATA_SIZE && end < off + 16 && n->mem[end] != e->mem[end])
                end++;
            d++;
            if (o && shown++ < 8) {
                fprintf(o, "    mem %#" PRIx64 ": native", (uint64_t)(DT_DATA_BASE + off));
                for (uint32_t k = off; k < end; k++)
                    fprintf(o, " %02x", n->mem[k]);
                fprintf(o, ", emulator");
                for (uint32_t k = off; k < end; k++)
                    fprintf(o, " %02x", e->mem[k]);
                fprintf(o, "\n");
            }
            off = end;
        }
    }
#undef DIFF
    return d;
}

void dt_print_input(FILE *o, const struct dt_case *c)
{
    const struct dt_form *f = c->form;
    fprintf(o, "  code @%#" PRIx64 ":", (uint64_t)(DT_CODE_BASE + (uint64_t)c->entry));
    for (int i = 0; i < c->len; i++)
        fprintf(o, " %02x", c->code[i]);
    fprintf(o, "\n  input:");
    for (int i = 0; i < 16; i++)
        fprintf(o, "%s%s=%#" PRIx64, i % 4 ? " " : "\n    ", gpr_name[i], c->in.gpr[i]);
    fprintf(o, "\n    rflags=");
    print_flags(o, c->in.rflags);
    fprintf(o, "\n");
    if (f->mem && !(f->fl & F_NOADDR)) {
        fprintf(o, "    memory operand @%#" PRIx64 ":", c->addr);
        for (unsigned i = 0; i < f->mem && i < 32; i++) {
            uint64_t off = c->addr - DT_DATA_BASE + i;
            if (off < DT_DATA_SIZE)
                fprintf(o, " %02x", c->mem[off]);
            else
                fprintf(o, " --"); /* outside the data region (a faulting address) */
        }
        fprintf(o, "\n");
    }
    if (f->use & U_XMM) {
        fprintf(o, "    mxcsr=%#x\n", c->in.fx.mxcsr);
        for (int i = 0; i < 16; i++)
            fprintf(o, "    xmm%-2d=%016" PRIx64 "%016" PRIx64 "\n", i, c->in.fx.xmm[i].q[1],
                    c->in.fx.xmm[i].q[0]);
    }
    if (f->use & U_X87) {
        const struct dt_fx *fx = &c->in.fx;
        fprintf(o, "    fcw=%#x fsw=%#x (top %d) tags(abridged)=%#x\n", fx->fcw, fx->fsw,
                (fx->fsw >> 11) & 7, fx->ftw);
        int top = (fx->fsw >> 11) & 7;
        for (int i = 0; i < 8; i++) {
            fprintf(o, "    st(%d)=", i);
            print_f80(o, fx->st[i]);
            fprintf(o, "%s\n", (fx->ftw >> ((top + i) & 7) & 1) ? "" : " (empty)");
        }
    }
}

void dt_print_result(FILE *o, const char *who, const struct dt_result *r)
{
    fprintf(o, "  %s: %s", who, exc_name(r->exc));
    if (r->exc == DT_EXC_NONE) fprintf(o, " (continuation %d)", r->path);
    fprintf(o, " rip=%#" PRIx64 "\n", r->rip);
}

/* --one: what the instruction changed natively (a sanity view of a case). */
void dt_print_changes(FILE *o, const struct dt_case *c, const struct dt_result *n)
{
    fprintf(o, "  native changes:\n");
    for (int i = 0; i < 16; i++)
        if (c->in.gpr[i] != n->out.gpr[i])
            fprintf(o, "    %s: %#" PRIx64 " -> %#" PRIx64 "\n", gpr_name[i], c->in.gpr[i],
                    n->out.gpr[i]);
    uint64_t fm = FLG_ALL | FL_DF;
    if ((c->in.rflags ^ n->out.rflags) & fm) {
        fprintf(o, "    rflags: ");
        print_flags(o, c->in.rflags & fm);
        fprintf(o, " -> ");
        print_flags(o, n->out.rflags & fm);
        fprintf(o, "\n");
    }
    const struct dt_fx *a = &c->in.fx, *b = &n->out.fx;
    if (a->fcw != b->fcw || a->fsw != b->fsw || a->ftw != b->ftw)
        fprintf(o, "    fcw %#x -> %#x, fsw %#x -> %#x, tags %#x -> %#x\n", a->fcw, b->fcw, a->fsw,
                b->fsw, a->ftw, b->ftw);
    for (int i = 0; i < 8; i++)
        if (memcmp(a->st[i], b->st[i], 10)) {
            fprintf(o, "    st(%d) slot: ", i);
            print_f80(o, a->st[i]);
            fprintf(o, " -> ");
            print_f80(o, b->st[i]);
            fprintf(o, "\n");
        }
    if (a->mxcsr != b->mxcsr) fprintf(o, "    mxcsr: %#x -> %#x\n", a->mxcsr, b->mxcsr);
    for (int i = 0; i < 16; i++)
        if (memcmp(&a->xmm[i], &b->xmm[i], 16))
            fprintf(o, "    xmm%d: %016" PRIx64 "%016" PRIx64 " -> %016" PRIx64 "%016" PRIx64 "\n",
                    i, a->xmm[i].q[1], a->xmm[i].q[0], b->xmm[i].q[1], b->xmm[i].q[0]);
    for (uint32_t off = 0; off < DT_DATA_SIZE; off++)
        if (c->mem[off] != n->mem[off])
            fprintf(o, "    mem %#" PRIx64 ": %02x -> %02x\n", (uint64_t)(DT_DATA_BASE + off),
                    c->mem[off], n->mem[off]);
}
