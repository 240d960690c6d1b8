/* forms_ctl.c — control transfer: Jcc (rel8 forward and backward, rel32), JMP,
 * LOOP/LOOPE/LOOPNE/JRCXZ (also with the 67 prefix, counting in ECX), CALL and
 * RET. The outcome is visible as the continuation point reached: every possible
 * target is a continuation (a HLT in the guest, a jump to an exit stub natively),
 * and the bytes in between are HLT fill, so a wrong target is a stray halt. */
#include "difftest.h"

#define GAP 14 /* a native exit trailer is 14 bytes: continuations are this far apart */

static const char *const ccn[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a",
                                    "s", "ns", "p", "np", "l", "ge", "le", "g"};

/* Two-way branch: bytes op..., rel to a target GAP bytes past the fall-through
 * (forward) or to a continuation before the instruction (backward). */
static void branch2(struct dt_case *c, const uint8_t *op, int nop, int relsz, bool backward)
{
    int len = nop + relsz;
    int at = c->org + (backward ? GAP + 2 : 0);
    int target = backward ? c->org : at + len + GAP;
    int64_t rel = target - (at + len);
    c->entry = at;
    dt_emit(c, op, nop);
    dt_emit_imm(c, (uint64_t)rel, relsz);
    c->cont[0] = at + len; /* not taken */
    c->cont[1] = target;   /* taken */
    c->ncont = 2;
}

static void jcc8_encode(struct dt_case *c)
{
    uint8_t op = c->form->op[0];
    branch2(c, &op, 1, 1, c->form->op[1]);
}

static void jcc32_encode(struct dt_case *c)
{
    uint8_t op[2] = {0x0f, c->form->op[0]};
    branch2(c, op, 2, 4, false);
}

static void loop_encode(struct dt_case *c)
{
    uint8_t op[2] = {0x67, c->form->op[0]};
    bool a32 = c->form->op[1];
    branch2(c, a32 ? op : op + 1, a32 ? 2 : 1, 1, false);
}

/* RCX: often 0 or 1 (the boundary of the decrement and of JRCXZ); with a 67
 * prefix the upper half must be ignored. */
static void loop_setup(struct dt_case *c)
{
    unsigned u = (unsigned)dt_below(c, 10);
    uint64_t v = u < 3 ? 1 : u < 5 ? 0 : dt_gpr_value(c);
    if (c->form->op[1]) v = (uint32_t)v | (dt_chance(c, 50) ? dt_rand(c) << 32 : 0);
    c->in.gpr[RCX] = v;
}

/* LOOPcc to itself: runs up to RCX times in place. */
static void loop_self_setup(struct dt_case *c)
{
    c->in.gpr[RCX] = 1 + dt_below(c, 64);
}

static void loop_self_encode(struct dt_case *c)
{
    c->entry = c->org;
    dt_emit8(c, c->form->op[0]);
    dt_emit8(c, 0xfe);
    c->cont[0] = c->org + 2;
    c->ncont = 1;
}

static void jmp_encode(struct dt_case *c)
{
    bool rel8 = c->form->op[0] == 0xeb;
    int len = rel8 ? 2 : 5;
    c->entry = c->org;
    dt_emit8(c, c->form->op[0]);
    dt_emit_imm(c, GAP, rel8 ? 1 : 4);
    c->cont[0] = c->org + len + GAP; /* the fall-through is HLT fill: a stray halt */
    c->ncont = 1;
}

static void call_rel_encode(struct dt_case *c)
{
    c->entry = c->org;
    dt_emit8(c, 0xe8);
    dt_emit_imm(c, GAP, 4);
    c->cont[0] = c->org + 5 + GAP;
    c->ncont = 1;
}

/* CALL/JMP through a register or memory: [REX] FF /2 or /4 */
static void indirect_encode(struct dt_case *c)
{
    int ext = c->form->op[0];
    bool mem = c->form->op[1];
    uint64_t target_off = (uint64_t)c->org + 32;
    uint64_t target = DT_CODE_BASE + target_off;
    c->entry = c->org;
    if (mem) {
        uint32_t disp = DT_MEM_LO + (uint32_t)dt_below(c, DT_MEM_HI - DT_MEM_LO - 8);
        dt_mem_set(c, DT_DATA_BASE + disp, 8, target);
        c->addr = DT_DATA_BASE + disp;
        uint8_t b[3] = {0x41, 0xff, (uint8_t)(0x80 | ext << 3 | 7)}; /* [r15 + disp32] */
        dt_emit(c, b, 3);
        dt_emit_imm(c, disp, 4);
    } else {
        int r;
        do
            r = (int)dt_below(c, 15);
        while (r == RSP);
        c->in.gpr[r] = target;
        if (r >= 8) dt_emit8(c, 0x41);
        dt_emit8(c, 0xff);
        dt_emit8(c, (uint8_t)(0xc0 | ext << 3 | (r & 7)));
    }
    c->cont[0] = (int)target_off;
    c->ncont = 1;
}

static void ret_encode(struct dt_case *c)
{
    uint64_t target_off = (uint64_t)c->org + 32;
    dt_mem_set(c, c->in.gpr[RSP], 8, DT_CODE_BASE + target_off);
    c->entry = c->org;
    if (c->form->op[0] == 0xc2) {
        dt_emit8(c, 0xc2);
        dt_emit_imm(c, dt_chance(c, 30) ? 0 : dt_below(c, 0x100), 2);
    } else {
        dt_emit8(c, 0xc3);
    }
    c->cont[0] = (int)target_off;
    c->ncont = 1;
}

static void add(const char *name, uint8_t op0, uint8_t op1, void (*enc)(struct dt_case *),
                void (*setup)(struct dt_case *))
{
    struct dt_form f = {.cat = CAT_CTL, .ext = -1, .flags = FLG_ALL, .nop = 2};
    f.name = name;
    f.op[0] = op0, f.op[1] = op1;
    f.encode = enc;
    f.setup = setup;
    dt_add(&f);
}

void dt_forms_ctl(void)
{
    for (int cc = 0; cc < 16; cc++) {
        add(dt_strdup_printf("ctl/j%s rel8 [%02x]", ccn[cc], 0x70 + cc), (uint8_t)(0x70 + cc), 0,
            jcc8_encode, NULL);
        add(dt_strdup_printf("ctl/j%s rel8 backward [%02x]", ccn[cc], 0x70 + cc),
            (uint8_t)(0x70 + cc), 1, jcc8_encode, NULL);
        add(dt_strdup_printf("ctl/j%s rel32 [0f %02x]", ccn[cc], 0x80 + cc), (uint8_t)(0x80 + cc),
            0, jcc32_encode, NULL);
    }
    static const char *const lmn[4] = {"loopne", "loope", "loop", "jrcxz"};
    for (int i = 0; i < 4; i++)
        for (int a32 = 0; a32 < 2; a32++)
            add(dt_strdup_printf("ctl/%s rel8%s [%s%02x]", a32 && i == 3 ? "jecxz" : lmn[i],
                                 a32 ? " a32" : "", a32 ? "67 " : "", 0xe0 + i),
                (uint8_t)(0xe0 + i), (uint8_t)a32, loop_encode, loop_setup);
    for (int i = 0; i < 3; i++)
        add(dt_strdup_printf("ctl/%s to itself [%02x fe]", lmn[i], 0xe0 + i), (uint8_t)(0xe0 + i),
            0, loop_self_encode, loop_self_setup);
    add("ctl/jmp rel8 [eb]", 0xeb, 0, jmp_encode, NULL);
    add("ctl/jmp rel32 [e9]", 0xe9, 0, jmp_encode, NULL);
    add("ctl/call rel32 [e8]", 0xe8, 0, call_rel_encode, NULL);
    add("ctl/call r64 [ff /2]", 2, 0, indirect_encode, NULL);
    add("ctl/call m64 [ff /2]", 2, 1, indirect_encode, NULL);
    add("ctl/jmp r64 [ff /4]", 4, 0, indirect_encode, NULL);
    add("ctl/jmp m64 [ff /4]", 4, 1, indirect_encode, NULL);
    add("ctl/ret [c3]", 0xc3, 0, ret_encode, NULL);
    add("ctl/ret imm16 [c2]", 0xc2, 0, ret_encode, NULL);
}
