/* ops_fast.c — specialised handlers for the hottest integer forms. The generic
 * handlers in ops_int.c stay the reference; these are the same operations with
 * operand size, ALU operation, condition and register-vs-memory operand fixed at
 * decode time (through selectors), so they compile to straight-line code. Byte
 * forms, LOCK prefixes and non-64-bit address sizes keep the generic handlers. */
#include "cpu/emu/ops_fast.h"

/* ---- decode-time selection of the specialised handlers ---- */

static const emu_handler acc_tab[8][2] = {
    {alu0_acc4, alu0_acc8}, {alu1_acc4, alu1_acc8}, {alu2_acc4, alu2_acc8}, {alu3_acc4, alu3_acc8},
    {alu4_acc4, alu4_acc8}, {alu5_acc4, alu5_acc8}, {alu6_acc4, alu6_acc8}, {alu7_acc4, alu7_acc8},
};

static emu_handler sel_acc(const struct insn *in)
{
    return in->osz == 2 ? NULL : acc_tab[in->opc >> 3][in->osz == 8];
}

static const emu_handler byte_mi_tab[8] = {alu0_mi_byte, alu1_mi_byte, alu2_mi_byte, alu3_mi_byte,
                                           alu4_mi_byte, alu5_mi_byte, alu6_mi_byte, alu7_mi_byte};

static emu_handler sel_shift(const struct insn *in)
{
    if (in->mod != 3 || in->osz == 2) return NULL;
    bool q = in->osz == 8;
    switch (in->reg & 7) {
    case 0: return q ? rot0_ri8 : rot0_ri4;
    case 1: return q ? rot1_ri8 : rot1_ri4;
    case 4:
    case 6: return q ? shift4_ri8 : shift4_ri4;
    case 5: return q ? shift5_ri8 : shift5_ri4;
    case 7: return q ? shift7_ri8 : shift7_ri4;
    }
    return NULL;
}

static emu_handler sel_imul(const struct insn *in)
{
    if (in->osz == 2) return NULL;
    if (in->osz == 8) return in->mod == 3 ? imul_reg8 : imul_mem8;
    return in->mod == 3 ? imul_reg4 : imul_mem4;
}

static emu_handler sel_mov_byte(const struct insn *in)
{
    if (in->mod == 3) return NULL;
    bool low = (in->pfx & PFX_REX) || in->reg < 4;
    if (in->opc == 0x88) return low ? mov_st_mem_lowbyte : mov_st_mem_byte;
    return low ? mov_ld_mem_lowbyte : mov_ld_mem_byte;
}

enum { F_MR_REG, F_MR_MEM, F_RM_MEM, F_RI_REG, F_RI_MEM, F_RR_REV, F_COUNT };

#define ALU_ROW(OP, SZ)                                                                            \
    {                                                                                              \
        alu##OP##_mr_reg##SZ, alu##OP##_mr_mem##SZ, alu##OP##_rm_mem##SZ, alu##OP##_ri_reg##SZ,    \
            alu##OP##_ri_mem##SZ, alu##OP##_rr_rev##SZ                                             \
    }

#define ALU_SIZES(OP)                                                                              \
    {                                                                                              \
        ALU_ROW(OP, 2), ALU_ROW(OP, 4), ALU_ROW(OP, 8)                                             \
    }

static const emu_handler alu_tab[8][3][F_COUNT] = {
    ALU_SIZES(0), ALU_SIZES(1), ALU_SIZES(2), ALU_SIZES(3),
    ALU_SIZES(4), ALU_SIZES(5), ALU_SIZES(6), ALU_SIZES(7),
};

static int size_slot(int osz)
{
    return osz == 2 ? 0 : osz == 4 ? 1 : 2;
}

static emu_handler sel_alu(const struct insn *in)
{
    int op, form;
    if (in->map != MAP_1B) return NULL;
    if (in->opc < 0x40) {
        if (in->opc == 0x38 && in->mod == 3) return alu7_mr_rb;
        if (!(in->opc & 1)) return NULL; /* byte forms */
        op = in->opc >> 3;
        if ((in->opc & 7) == 1)
            form = in->mod == 3 ? F_MR_REG : F_MR_MEM;
        else
            form = in->mod == 3 ? F_RR_REV : F_RM_MEM;
    } else {
        if (in->opc == 0x80) return in->mod == 3 ? NULL : byte_mi_tab[in->reg & 7];
        op = in->reg & 7;
        form = in->mod == 3 ? F_RI_REG : F_RI_MEM;
    }
    return alu_tab[op][size_slot(in->osz)][form];
}

static const emu_handler test_tab[3][2] = {
    {test_mem2, test_reg2}, {test_mem4, test_reg4}, {test_mem8, test_reg8}};

static emu_handler sel_test(const struct insn *in)
{
    return test_tab[size_slot(in->osz)][in->mod == 3];
}

#define MOV_ROW(SZ)                                                                                \
    {                                                                                              \
        mov_st_reg##SZ, mov_st_mem##SZ, mov_ld_mem##SZ, mov_imm_reg##SZ, mov_imm_mem##SZ           \
    }

static const emu_handler mov_tab[3][5] = {MOV_ROW(2), MOV_ROW(4), MOV_ROW(8)};

static emu_handler sel_mov(const struct insn *in)
{
    const emu_handler *row = mov_tab[size_slot(in->osz)];
    switch (in->opc) {
    case 0x89: return in->mod == 3 ? row[0] : row[1];
    case 0x8b: return in->mod == 3 ? NULL : row[2]; /* reg-reg 8B: same as 89 reversed */
    case 0xc7: return (in->reg & 7) ? NULL : in->mod == 3 ? row[3] : row[4];
    }
    return NULL;
}

static emu_handler sel_movx(const struct insn *in)
{
    if (in->mod == 3 || in->osz == 2) return NULL;
    bool q = in->osz == 8;
    switch (in->opc) {
    case 0xb6: return q ? movzx8_mem8 : movzx8_mem4;
    case 0xb7: return q ? movzx16_mem8 : movzx16_mem4;
    case 0xbe: return q ? movsx8_mem8 : movsx8_mem4;
    default: return q ? movsx16_mem8 : movsx16_mem4;
    }
}

#define CC_ROW(N)                                                                                  \
    N##0, N##1, N##2, N##3, N##4, N##5, N##6, N##7, N##8, N##9, N##10, N##11, N##12, N##13, N##14, \
        N##15

static const emu_handler jcc_tab[16] = {CC_ROW(jcc)};

#define CMOV_ROW(S)                                                                                \
    {                                                                                              \
        cmov0##S, cmov1##S, cmov2##S, cmov3##S, cmov4##S, cmov5##S, cmov6##S, cmov7##S, cmov8##S,  \
            cmov9##S, cmov10##S, cmov11##S, cmov12##S, cmov13##S, cmov14##S, cmov15##S             \
    }

static const emu_handler cmov_tab[2][16] = {CMOV_ROW(_reg4), CMOV_ROW(_reg8)};

#define SET_ROW                                                                                    \
    {                                                                                              \
        setcc0_reg, setcc1_reg, setcc2_reg, setcc3_reg, setcc4_reg, setcc5_reg, setcc6_reg,        \
            setcc7_reg, setcc8_reg, setcc9_reg, setcc10_reg, setcc11_reg, setcc12_reg,             \
            setcc13_reg, setcc14_reg, setcc15_reg                                                  \
    }

static const emu_handler setcc_tab[16] = SET_ROW;

static emu_handler sel_jcc(const struct insn *in)
{
    return in->osz == 8 ? jcc_tab[in->opc & 15] : NULL; /* 64-bit mode: no truncation */
}

static emu_handler sel_cmov(const struct insn *in)
{
    if (in->mod != 3 || in->osz == 2) return NULL;
    return cmov_tab[in->osz == 8][in->opc & 15];
}

static emu_handler sel_setcc(const struct insn *in)
{
    return in->mod == 3 ? setcc_tab[in->opc & 15] : NULL;
}

static emu_handler sel_stack(const struct insn *in)
{
    if (in->osz != 8 || in->asz != 8) return NULL;
    switch (in->opc) {
    case 0xe8: return call_rel64;
    case 0xc3: return ret64;
    }
    return in->opc < 0x58 ? push_r64 : pop_r64;
}

static emu_handler sel_lea(const struct insn *in)
{
    if (in->mod == 3 || in->asz != 8) return NULL;
    return in->osz == 8 ? lea64 : in->osz == 4 ? lea32 : NULL;
}

/* SSE2 register forms (mandatory prefix F2: scalar double; 66: COMISD, MOVAPD) */
void emu_sse_slow(struct emu_cpu *c, const struct insn *in)
{
    emu_optab[in->map][in->opc].fn[in->mp](c, in);
}
static emu_handler sel_sse(const struct insn *in)
{
    if (in->mod != 3) return NULL;
    switch (in->opc) {
    case 0x28: return in->mp == MP_NONE || in->mp == MP_66 ? sse_movap_rr : NULL;
    case 0x2e: return in->mp == MP_66 ? sse_ucomisd_rr : NULL;
    case 0x2f: return in->mp == MP_66 ? sse_comisd_rr : NULL;
    }
    if (in->mp != MP_F2) return NULL;
    switch (in->opc) {
    case 0x58: return sse_addsd_rr;
    case 0x59: return sse_mulsd_rr;
    case 0x5c: return sse_subsd_rr;
    case 0x5e: return sse_divsd_rr;
    }
    return NULL;
}

#define FN_ENTRY(name, kind) name,
static const emu_handler threaded[] = {EMU_THREADED_OPS(FN_ENTRY)};

uint16_t emu_threaded_op(emu_handler fn)
{
    for (unsigned i = 0; i < sizeof(threaded) / sizeof(threaded[0]); i++)
        if (threaded[i] == fn) return (uint16_t)(FOP_END + 1 + i);
    return FOP_GENERIC;
}

uint16_t emu_fused_op(uint16_t prod, int cc)
{
#define FUSED_CASE(P, CC)                                                                          \
    if (prod == FOP_##P && cc == CC) return FOP_F_##P##_##CC;
    EMU_FUSED_OPS(FUSED_CASE)
#undef FUSED_CASE
    return 0;
}

void emu_ops_fast_init(void)
{
    for (int op = 0; op < 0x40; op += 8) {
        emu_register_selector(MAP_1B, op + 1, sel_alu);
        emu_register_selector(MAP_1B, op + 3, sel_alu);
    }
    for (int op = 0; op < 0x40; op += 8)
        emu_register_selector(MAP_1B, op + 5, sel_acc);
    emu_register_selector(MAP_1B, 0x80, sel_alu);
    emu_register_selector(MAP_1B, 0x38, sel_alu);
    emu_register_selector(MAP_1B, 0xc1, sel_shift);
    emu_register_selector(MAP_0F, 0xaf, sel_imul);
    emu_register_selector(MAP_1B, 0x88, sel_mov_byte);
    emu_register_selector(MAP_1B, 0x8a, sel_mov_byte);
    emu_register_selector(MAP_1B, 0x81, sel_alu);
    emu_register_selector(MAP_1B, 0x83, sel_alu);
    emu_register_selector(MAP_1B, 0x85, sel_test);
    emu_register_selector(MAP_1B, 0x89, sel_mov);
    emu_register_selector(MAP_1B, 0x8b, sel_mov);
    emu_register_selector(MAP_1B, 0xc7, sel_mov);
    emu_register_selector(MAP_1B, 0x8d, sel_lea);
    for (int op = 0x50; op < 0x60; op++)
        emu_register_selector(MAP_1B, op, sel_stack);
    emu_register_selector(MAP_1B, 0xe8, sel_stack);
    emu_register_selector(MAP_1B, 0xc3, sel_stack);
    for (int cc = 0; cc < 16; cc++) {
        emu_register_selector(MAP_1B, 0x70 + cc, sel_jcc);
        emu_register_selector(MAP_0F, 0x80 + cc, sel_jcc);
        emu_register_selector(MAP_0F, 0x40 + cc, sel_cmov);
        emu_register_selector(MAP_0F, 0x90 + cc, sel_setcc);
    }
    emu_register_selector(MAP_0F, 0xb6, sel_movx);
    emu_register_selector(MAP_0F, 0xb7, sel_movx);
    emu_register_selector(MAP_0F, 0xbe, sel_movx);
    emu_register_selector(MAP_0F, 0xbf, sel_movx);
    static const uint8_t sse_ops[] = {0x28, 0x2e, 0x2f, 0x58, 0x59, 0x5c, 0x5e};
    for (unsigned i = 0; i < sizeof(sse_ops); i++)
        emu_register_selector(MAP_0F, sse_ops[i], sel_sse);
}
