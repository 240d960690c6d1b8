/* ops_fast.c — specialised handlers for the hottest integer forms. The generic
 * handlers in ops_int.c stay the reference; these are the same operations with
 * operand size, ALU operation, condition and register-vs-memory operand fixed at
 * decode time (through selectors), so they compile to straight-line code. Byte
 * forms, LOCK prefixes and non-64-bit address sizes keep the generic handlers. */
#include "cpu/emu/emu.h"

#define H(name) static void name(struct emu_cpu *c, const struct insn *in)

/* ---- ALU: op x form x size (2, 4, 8) ---- */

#define ALU_SIZE(OP, SZ)                                                                           \
    H(alu##OP##_mr_reg##SZ) /* op r/m, r with a register destination */                          \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, in->rm, SZ, 1), reg_read(c, in->reg, SZ, 1)); \
        if (OP != 7)                                                                               \
            reg_write(c, in->rm, SZ, 1, r);                                                        \
    }                                                                                              \
    H(alu##OP##_mr_mem##SZ) /* op m, r */                                                        \
    {                                                                                              \
        uint64_t ea = emu_ea(c, in), b = reg_read(c, in->reg, SZ, 1);                              \
        void *p = OP != 7 ? vm_ptr_rmw_fast(c, ea, SZ) : NULL;                                     \
        if (p) {                                                                                   \
            store_host(p, SZ, emu_alu(c, OP, SZ, load_host(p, SZ), b));                            \
        } else {                                                                                   \
            uint64_t r = emu_alu(c, OP, SZ, vm_read(c, ea, SZ), b);                                \
            if (OP != 7)                                                                           \
                vm_write(c, ea, SZ, r);                                                            \
        }                                                                                          \
    }                                                                                              \
    H(alu##OP##_rm_mem##SZ) /* op r, m */                                                        \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, in->reg, SZ, 1), vm_read(c, emu_ea(c, in), SZ)); \
        if (OP != 7)                                                                               \
            reg_write(c, in->reg, SZ, 1, r);                                                       \
    }                                                                                              \
    H(alu##OP##_ri_reg##SZ) /* op r, imm */                                                      \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, in->rm, SZ, 1), in->imm);                      \
        if (OP != 7)                                                                               \
            reg_write(c, in->rm, SZ, 1, r);                                                        \
    }                                                                                              \
    H(alu##OP##_ri_mem##SZ) /* op m, imm */                                                      \
    {                                                                                              \
        uint64_t ea = emu_ea(c, in);                                                               \
        void *p = OP != 7 ? vm_ptr_rmw_fast(c, ea, SZ) : NULL;                                     \
        if (p) {                                                                                   \
            store_host(p, SZ, emu_alu(c, OP, SZ, load_host(p, SZ), in->imm));                      \
        } else {                                                                                   \
            uint64_t r = emu_alu(c, OP, SZ, vm_read(c, ea, SZ), in->imm);                          \
            if (OP != 7)                                                                           \
                vm_write(c, ea, SZ, r);                                                            \
        }                                                                                          \
    }                                                                                              \
    H(alu##OP##_rr_rev##SZ) /* op r, r/m with a register source (03, 2B, ...) */                 \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, in->reg, SZ, 1), reg_read(c, in->rm, SZ, 1)); \
        if (OP != 7)                                                                               \
            reg_write(c, in->reg, SZ, 1, r);                                                       \
    }

#define ALU_OP(OP) ALU_SIZE(OP, 2) ALU_SIZE(OP, 4) ALU_SIZE(OP, 8)
ALU_OP(0)
ALU_OP(1)
ALU_OP(2)
ALU_OP(3)
ALU_OP(4)
ALU_OP(5)
ALU_OP(6)
ALU_OP(7)

/* ---- op eAX/rAX, imm (05, 0D, ... 3D) ---- */
#define ACC_SIZE(OP, SZ)                                                                           \
    H(alu##OP##_acc##SZ)                                                                           \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, RAX, SZ, 1), in->imm);                         \
        if (OP != 7)                                                                               \
            reg_write(c, RAX, SZ, 1, r);                                                           \
    }
#define ACC_OP(OP) ACC_SIZE(OP, 4) ACC_SIZE(OP, 8)
ACC_OP(0) ACC_OP(1) ACC_OP(2) ACC_OP(3) ACC_OP(4) ACC_OP(5) ACC_OP(6) ACC_OP(7)
static const emu_handler acc_tab[8][2] = {
    {alu0_acc4, alu0_acc8}, {alu1_acc4, alu1_acc8}, {alu2_acc4, alu2_acc8}, {alu3_acc4, alu3_acc8},
    {alu4_acc4, alu4_acc8}, {alu5_acc4, alu5_acc8}, {alu6_acc4, alu6_acc8}, {alu7_acc4, alu7_acc8},
};
static emu_handler sel_acc(const struct insn *in)
{
    return in->osz == 2 ? NULL : acc_tab[in->opc >> 3][in->osz == 8];
}

/* ---- byte ALU with a memory destination and an immediate (80 /op) ---- */
#define BYTE_MI(OP)                                                                                \
    H(alu##OP##_mi_byte)                                                                           \
    {                                                                                              \
        uint64_t ea = emu_ea(c, in);                                                               \
        uint64_t r = emu_alu(c, OP, 1, vm_read(c, ea, 1), in->imm);                                \
        if (OP != 7)                                                                               \
            vm_write(c, ea, 1, r);                                                                 \
    }
BYTE_MI(0) BYTE_MI(1) BYTE_MI(2) BYTE_MI(3) BYTE_MI(4) BYTE_MI(5) BYTE_MI(6) BYTE_MI(7)
static const emu_handler byte_mi_tab[8] = {alu0_mi_byte, alu1_mi_byte, alu2_mi_byte, alu3_mi_byte,
                                           alu4_mi_byte, alu5_mi_byte, alu6_mi_byte, alu7_mi_byte};

/* ---- shifts by an immediate (C1 /4 /5 /7) on registers ---- */
#define SHIFT_SIZE(OP, SZ)                                                                         \
    H(shift##OP##_ri##SZ)                                                                          \
    {                                                                                              \
        reg_write(c, in->rm, SZ, 1, emu_shift(c, OP, SZ, reg_read(c, in->rm, SZ, 1), (unsigned)in->imm)); \
    }
SHIFT_SIZE(4, 4) SHIFT_SIZE(4, 8) SHIFT_SIZE(5, 4) SHIFT_SIZE(5, 8) SHIFT_SIZE(7, 4) SHIFT_SIZE(7, 8)
static emu_handler sel_shift(const struct insn *in)
{
    if (in->mod != 3 || in->osz == 2)
        return NULL;
    bool q = in->osz == 8;
    switch (in->reg & 7) {
    case 4: case 6: return q ? shift4_ri8 : shift4_ri4;
    case 5: return q ? shift5_ri8 : shift5_ri4;
    case 7: return q ? shift7_ri8 : shift7_ri4;
    }
    return NULL;
}

/* ---- IMUL r, r/m ---- */
#define IMUL_SIZE(SZ)                                                                              \
    H(imul_reg##SZ)                                                                                \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1, emu_imul2(c, SZ, reg_read(c, in->reg, SZ, 1), reg_read(c, in->rm, SZ, 1))); \
    }                                                                                              \
    H(imul_mem##SZ)                                                                                \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1, emu_imul2(c, SZ, reg_read(c, in->reg, SZ, 1), vm_read(c, emu_ea(c, in), SZ))); \
    }
IMUL_SIZE(4)
IMUL_SIZE(8)
static emu_handler sel_imul(const struct insn *in)
{
    if (in->osz == 2)
        return NULL;
    if (in->osz == 8)
        return in->mod == 3 ? imul_reg8 : imul_mem8;
    return in->mod == 3 ? imul_reg4 : imul_mem4;
}

/* ---- byte loads and stores with a memory operand (88, 8A) ---- */
H(mov_st_mem_byte) { vm_write(c, emu_ea(c, in), 1, reg_read(c, in->reg, 1, in->pfx & PFX_REX)); }
H(mov_ld_mem_byte) { reg_write(c, in->reg, 1, in->pfx & PFX_REX, vm_read(c, emu_ea(c, in), 1)); }
/* low-byte registers (AL..BL, or any register with a REX prefix): no AH..BH case */
H(mov_st_mem_lowbyte) { vm_write(c, emu_ea(c, in), 1, c->s.gpr[in->reg]); }
H(mov_ld_mem_lowbyte)
{
    uint64_t v = vm_read(c, emu_ea(c, in), 1);
    c->s.gpr[in->reg] = (c->s.gpr[in->reg] & ~0xffull) | v;
}
static emu_handler sel_mov_byte(const struct insn *in)
{
    if (in->mod == 3)
        return NULL;
    bool low = (in->pfx & PFX_REX) || in->reg < 4;
    if (in->opc == 0x88)
        return low ? mov_st_mem_lowbyte : mov_st_mem_byte;
    return low ? mov_ld_mem_lowbyte : mov_ld_mem_byte;
}

enum { F_MR_REG, F_MR_MEM, F_RM_MEM, F_RI_REG, F_RI_MEM, F_RR_REV, F_COUNT };
#define ALU_ROW(OP, SZ)                                                                            \
    {alu##OP##_mr_reg##SZ, alu##OP##_mr_mem##SZ, alu##OP##_rm_mem##SZ, alu##OP##_ri_reg##SZ,      \
     alu##OP##_ri_mem##SZ, alu##OP##_rr_rev##SZ}
#define ALU_SIZES(OP) {ALU_ROW(OP, 2), ALU_ROW(OP, 4), ALU_ROW(OP, 8)}
static const emu_handler alu_tab[8][3][F_COUNT] = {
    ALU_SIZES(0), ALU_SIZES(1), ALU_SIZES(2), ALU_SIZES(3),
    ALU_SIZES(4), ALU_SIZES(5), ALU_SIZES(6), ALU_SIZES(7),
};

static int size_slot(int osz) { return osz == 2 ? 0 : osz == 4 ? 1 : 2; }

static emu_handler sel_alu(const struct insn *in)
{
    int op, form;
    if (in->map != MAP_1B)
        return NULL;
    if (in->opc < 0x40) {
        if (!(in->opc & 1))
            return NULL; /* byte forms */
        op = in->opc >> 3;
        if ((in->opc & 7) == 1)
            form = in->mod == 3 ? F_MR_REG : F_MR_MEM;
        else
            form = in->mod == 3 ? F_RR_REV : F_RM_MEM;
    } else {
        if (in->opc == 0x80)
            return in->mod == 3 ? NULL : byte_mi_tab[in->reg & 7];
        op = in->reg & 7;
        form = in->mod == 3 ? F_RI_REG : F_RI_MEM;
    }
    return alu_tab[op][size_slot(in->osz)][form];
}

/* ---- TEST ---- */
#define TEST_SIZE(SZ)                                                                              \
    H(test_reg##SZ) { emu_alu(c, 4, SZ, reg_read(c, in->rm, SZ, 1), reg_read(c, in->reg, SZ, 1)); } \
    H(test_mem##SZ) { emu_alu(c, 4, SZ, vm_read(c, emu_ea(c, in), SZ), reg_read(c, in->reg, SZ, 1)); }
TEST_SIZE(2)
TEST_SIZE(4)
TEST_SIZE(8)
static const emu_handler test_tab[3][2] = {
    {test_mem2, test_reg2}, {test_mem4, test_reg4}, {test_mem8, test_reg8}};
static emu_handler sel_test(const struct insn *in)
{
    return test_tab[size_slot(in->osz)][in->mod == 3];
}

/* ---- MOV ---- */
#define MOV_SIZE(SZ)                                                                               \
    H(mov_st_reg##SZ) { reg_write(c, in->rm, SZ, 1, reg_read(c, in->reg, SZ, 1)); }                \
    H(mov_st_mem##SZ) { vm_write(c, emu_ea(c, in), SZ, c->s.gpr[in->reg]); }                        \
    H(mov_ld_mem##SZ) { reg_write(c, in->reg, SZ, 1, vm_read(c, emu_ea(c, in), SZ)); }              \
    H(mov_imm_reg##SZ) { reg_write(c, in->rm, SZ, 1, in->imm); }                                   \
    H(mov_imm_mem##SZ) { vm_write(c, emu_ea(c, in), SZ, in->imm); }
MOV_SIZE(2)
MOV_SIZE(4)
MOV_SIZE(8)
#define MOV_ROW(SZ) {mov_st_reg##SZ, mov_st_mem##SZ, mov_ld_mem##SZ, mov_imm_reg##SZ, mov_imm_mem##SZ}
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

/* ---- MOVZX/MOVSX from memory ---- */
#define MOVX(SZ)                                                                                   \
    H(movzx8_mem##SZ) { reg_write(c, in->reg, SZ, 1, vm_read(c, emu_ea(c, in), 1)); }               \
    H(movzx16_mem##SZ) { reg_write(c, in->reg, SZ, 1, vm_read(c, emu_ea(c, in), 2)); }              \
    H(movsx8_mem##SZ) { reg_write(c, in->reg, SZ, 1, sext(vm_read(c, emu_ea(c, in), 1), 1)); }      \
    H(movsx16_mem##SZ) { reg_write(c, in->reg, SZ, 1, sext(vm_read(c, emu_ea(c, in), 2), 2)); }
MOVX(4)
MOVX(8)
static emu_handler sel_movx(const struct insn *in)
{
    if (in->mod == 3 || in->osz == 2)
        return NULL;
    bool q = in->osz == 8;
    switch (in->opc) {
    case 0xb6: return q ? movzx8_mem8 : movzx8_mem4;
    case 0xb7: return q ? movzx16_mem8 : movzx16_mem4;
    case 0xbe: return q ? movsx8_mem8 : movsx8_mem4;
    default: return q ? movsx16_mem8 : movsx16_mem4;
    }
}

/* ---- Jcc / SETcc / CMOVcc with a constant condition (64-bit mode) ---- */
#define CC_FORMS(CC)                                                                               \
    H(jcc##CC)                                                                                     \
    {                                                                                              \
        if (emu_cond_inline(c, CC))                                                                \
            c->next_rip = branch_target(c, in, c->next_rip + in->imm);                             \
    }                                                                                              \
    H(cmov##CC##_reg8)                                                                             \
    {                                                                                              \
        if (emu_cond_inline(c, CC))                                                                \
            c->s.gpr[in->reg] = c->s.gpr[in->rm];                                                  \
    }                                                                                              \
    H(cmov##CC##_reg4)                                                                             \
    {                                                                                              \
        c->s.gpr[in->reg] = (uint32_t)(emu_cond_inline(c, CC) ? c->s.gpr[in->rm] : c->s.gpr[in->reg]); \
    }                                                                                              \
    H(setcc##CC##_reg) { reg_write(c, in->rm, 1, in->pfx & PFX_REX, emu_cond_inline(c, CC)); }
CC_FORMS(0) CC_FORMS(1) CC_FORMS(2) CC_FORMS(3) CC_FORMS(4) CC_FORMS(5) CC_FORMS(6) CC_FORMS(7)
CC_FORMS(8) CC_FORMS(9) CC_FORMS(10) CC_FORMS(11) CC_FORMS(12) CC_FORMS(13) CC_FORMS(14) CC_FORMS(15)
#define CC_ROW(N) N##0, N##1, N##2, N##3, N##4, N##5, N##6, N##7, N##8, N##9, N##10, N##11, N##12, N##13, N##14, N##15
static const emu_handler jcc_tab[16] = {CC_ROW(jcc)};
#define CMOV_ROW(S) {cmov0##S, cmov1##S, cmov2##S, cmov3##S, cmov4##S, cmov5##S, cmov6##S, cmov7##S, cmov8##S, cmov9##S, cmov10##S, cmov11##S, cmov12##S, cmov13##S, cmov14##S, cmov15##S}
static const emu_handler cmov_tab[2][16] = {CMOV_ROW(_reg4), CMOV_ROW(_reg8)};
#define SET_ROW {setcc0_reg, setcc1_reg, setcc2_reg, setcc3_reg, setcc4_reg, setcc5_reg, setcc6_reg, setcc7_reg, setcc8_reg, setcc9_reg, setcc10_reg, setcc11_reg, setcc12_reg, setcc13_reg, setcc14_reg, setcc15_reg}
static const emu_handler setcc_tab[16] = SET_ROW;

static emu_handler sel_jcc(const struct insn *in)
{
    return in->osz == 8 ? jcc_tab[in->opc & 15] : NULL; /* 64-bit mode: no truncation */
}
static emu_handler sel_cmov(const struct insn *in)
{
    if (in->mod != 3 || in->osz == 2)
        return NULL;
    return cmov_tab[in->osz == 8][in->opc & 15];
}
static emu_handler sel_setcc(const struct insn *in)
{
    return in->mod == 3 ? setcc_tab[in->opc & 15] : NULL;
}

/* ---- 64-bit stack operations (SS base is zero in 64-bit mode) ---- */
static inline void push64(struct emu_cpu *c, uint64_t v)
{
    uint64_t rsp = c->s.gpr[RSP] - 8;
    if (unlikely(!canonical(rsp)))
        emu_raise(c, EXC_SS, 0, true);
    vm_write(c, rsp, 8, v);
    c->s.gpr[RSP] = rsp;
}
static inline uint64_t pop64(struct emu_cpu *c)
{
    if (unlikely(!canonical(c->s.gpr[RSP])))
        emu_raise(c, EXC_SS, 0, true);
    uint64_t v = vm_read(c, c->s.gpr[RSP], 8);
    c->s.gpr[RSP] += 8;
    return v;
}
H(push_r64) { push64(c, c->s.gpr[(in->opc & 7) | ((in->rex & 1) << 3)]); }
H(pop_r64) { uint64_t v = pop64(c); c->s.gpr[(in->opc & 7) | ((in->rex & 1) << 3)] = v; }
H(call_rel64)
{
    uint64_t t = branch_target(c, in, c->next_rip + in->imm);
    push64(c, c->next_rip);
    c->next_rip = t;
}
H(ret64)
{
    if (unlikely(!canonical(c->s.gpr[RSP])))
        emu_raise(c, EXC_SS, 0, true);
    c->next_rip = branch_target(c, in, vm_read(c, c->s.gpr[RSP], 8));
    c->s.gpr[RSP] += 8;
}

static emu_handler sel_stack(const struct insn *in)
{
    if (in->osz != 8 || in->asz != 8)
        return NULL;
    switch (in->opc) {
    case 0xe8: return call_rel64;
    case 0xc3: return ret64;
    }
    return in->opc < 0x58 ? push_r64 : pop_r64;
}

/* ---- LEA with 64/32-bit addresses ---- */
H(lea64) { c->s.gpr[in->reg] = emu_ea_off(c, in); }
H(lea32) { c->s.gpr[in->reg] = (uint32_t)emu_ea_off(c, in); }
static emu_handler sel_lea(const struct insn *in)
{
    if (in->mod == 3 || in->asz != 8)
        return NULL;
    return in->osz == 8 ? lea64 : in->osz == 4 ? lea32 : NULL;
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
}
