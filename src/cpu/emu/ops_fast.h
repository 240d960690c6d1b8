/* ops_fast.h — specialised handlers for the hottest integer forms (see
 * ops_fast.c) and the list of those the run loop dispatches by threaded code.
 * Included by ops_fast.c (selectors) and exec.c (threaded dispatch) only. */
#ifndef UNUM_CPU_EMU_OPS_FAST_H
#define UNUM_CPU_EMU_OPS_FAST_H

#include "cpu/emu/emu.h"

/* Handlers are static inline so the threaded dispatch in exec.c can inline them;
 * ops_fast.c takes their addresses for the decoder. */
#define H(name)                                                                                    \
    static inline __attribute__((unused)) void name(struct emu_cpu *c, const struct insn *in)

/* ---- ALU: op x form x size (2, 4, 8) ---- */

#define ALU_SIZE(OP, SZ)                                                                           \
    H(alu##OP##_mr_reg##SZ) /* op r/m, r with a register destination */                            \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, in->rm, SZ, 1), reg_read(c, in->reg, SZ, 1));  \
        if (OP != 7) reg_write(c, in->rm, SZ, 1, r);                                               \
    }                                                                                              \
    H(alu##OP##_mr_mem##SZ) /* op m, r */                                                          \
    {                                                                                              \
        uint64_t ea = emu_ea(c, in), b = reg_read(c, in->reg, SZ, 1);                              \
        void *p = OP != 7 ? vm_ptr_rmw_fast(c, ea, SZ) : NULL;                                     \
        if (p) {                                                                                   \
            store_host(p, SZ, emu_alu(c, OP, SZ, load_host(p, SZ), b));                            \
        } else {                                                                                   \
            uint64_t r = emu_alu(c, OP, SZ, vm_read(c, ea, SZ), b);                                \
            if (OP != 7) vm_write(c, ea, SZ, r);                                                   \
        }                                                                                          \
    }                                                                                              \
    H(alu##OP##_rm_mem##SZ) /* op r, m */                                                          \
    {                                                                                              \
        uint64_t r =                                                                               \
            emu_alu(c, OP, SZ, reg_read(c, in->reg, SZ, 1), vm_read(c, emu_ea(c, in), SZ));        \
        if (OP != 7) reg_write(c, in->reg, SZ, 1, r);                                              \
    }                                                                                              \
    H(alu##OP##_ri_reg##SZ) /* op r, imm */                                                        \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, in->rm, SZ, 1), in->imm);                      \
        if (OP != 7) reg_write(c, in->rm, SZ, 1, r);                                               \
    }                                                                                              \
    H(alu##OP##_ri_mem##SZ) /* op m, imm */                                                        \
    {                                                                                              \
        uint64_t ea = emu_ea(c, in);                                                               \
        void *p = OP != 7 ? vm_ptr_rmw_fast(c, ea, SZ) : NULL;                                     \
        if (p) {                                                                                   \
            store_host(p, SZ, emu_alu(c, OP, SZ, load_host(p, SZ), in->imm));                      \
        } else {                                                                                   \
            uint64_t r = emu_alu(c, OP, SZ, vm_read(c, ea, SZ), in->imm);                          \
            if (OP != 7) vm_write(c, ea, SZ, r);                                                   \
        }                                                                                          \
    }                                                                                              \
    H(alu##OP##_rr_rev##SZ) /* op r, r/m with a register source (03, 2B, ...) */                   \
    {                                                                                              \
        uint64_t r = emu_alu(c, OP, SZ, reg_read(c, in->reg, SZ, 1), reg_read(c, in->rm, SZ, 1));  \
        if (OP != 7) reg_write(c, in->reg, SZ, 1, r);                                              \
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
        if (OP != 7) reg_write(c, RAX, SZ, 1, r);                                                  \
    }
#define ACC_OP(OP) ACC_SIZE(OP, 4) ACC_SIZE(OP, 8)
ACC_OP(0)
ACC_OP(1) ACC_OP(2) ACC_OP(3) ACC_OP(4) ACC_OP(5) ACC_OP(6) ACC_OP(7)

/* ---- byte ALU with a memory destination and an immediate (80 /op) ---- */
#define BYTE_MI(OP)                                                                                \
    H(alu##OP##_mi_byte)                                                                           \
    {                                                                                              \
        uint64_t ea = emu_ea(c, in);                                                               \
        uint64_t r = emu_alu(c, OP, 1, vm_read(c, ea, 1), in->imm);                                \
        if (OP != 7) vm_write(c, ea, 1, r);                                                        \
    }
    BYTE_MI(0) BYTE_MI(1) BYTE_MI(2) BYTE_MI(3) BYTE_MI(4) BYTE_MI(5) BYTE_MI(6) BYTE_MI(7)

/* ---- shifts by an immediate (C1 /4 /5 /7) on registers ---- */
#define SHIFT_SIZE(OP, SZ)                                                                         \
    H(shift##OP##_ri##SZ)                                                                          \
    {                                                                                              \
        reg_write(c, in->rm, SZ, 1,                                                                \
                  emu_shift(c, OP, SZ, reg_read(c, in->rm, SZ, 1), (unsigned)in->imm));            \
    }
        SHIFT_SIZE(4, 4) SHIFT_SIZE(4, 8) SHIFT_SIZE(5, 4) SHIFT_SIZE(5, 8) SHIFT_SIZE(7, 4)
            SHIFT_SIZE(7, 8)

/* ---- IMUL r, r/m ---- */
#define IMUL_SIZE(SZ)                                                                              \
    H(imul_reg##SZ)                                                                                \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1,                                                               \
                  emu_imul2(c, SZ, reg_read(c, in->reg, SZ, 1), reg_read(c, in->rm, SZ, 1)));      \
    }                                                                                              \
    H(imul_mem##SZ)                                                                                \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1,                                                               \
                  emu_imul2(c, SZ, reg_read(c, in->reg, SZ, 1), vm_read(c, emu_ea(c, in), SZ)));   \
    }
                IMUL_SIZE(4) IMUL_SIZE(8)

    /* ---- byte loads and stores with a memory operand (88, 8A) ---- */
    H(mov_st_mem_byte)
{
    vm_write(c, emu_ea(c, in), 1, reg_read(c, in->reg, 1, in->pfx & PFX_REX));
}
H(mov_ld_mem_byte)
{
    reg_write(c, in->reg, 1, in->pfx & PFX_REX, vm_read(c, emu_ea(c, in), 1));
}
/* low-byte registers (AL..BL, or any register with a REX prefix): no AH..BH case */
H(mov_st_mem_lowbyte)
{
    vm_write(c, emu_ea(c, in), 1, c->s.gpr[in->reg]);
}
H(mov_ld_mem_lowbyte)
{
    uint64_t v = vm_read(c, emu_ea(c, in), 1);
    c->s.gpr[in->reg] = (c->s.gpr[in->reg] & ~0xffull) | v;
}

/* ---- TEST ---- */
#define TEST_SIZE(SZ)                                                                              \
    H(test_reg##SZ)                                                                                \
    {                                                                                              \
        emu_alu(c, 4, SZ, reg_read(c, in->rm, SZ, 1), reg_read(c, in->reg, SZ, 1));                \
    }                                                                                              \
    H(test_mem##SZ)                                                                                \
    {                                                                                              \
        emu_alu(c, 4, SZ, vm_read(c, emu_ea(c, in), SZ), reg_read(c, in->reg, SZ, 1));             \
    }
TEST_SIZE(2)
TEST_SIZE(4)
TEST_SIZE(8)

/* ---- MOV ---- */
#define MOV_SIZE(SZ)                                                                               \
    H(mov_st_reg##SZ)                                                                              \
    {                                                                                              \
        reg_write(c, in->rm, SZ, 1, reg_read(c, in->reg, SZ, 1));                                  \
    }                                                                                              \
    H(mov_st_mem##SZ)                                                                              \
    {                                                                                              \
        vm_write(c, emu_ea(c, in), SZ, c->s.gpr[in->reg]);                                         \
    }                                                                                              \
    H(mov_ld_mem##SZ)                                                                              \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1, vm_read(c, emu_ea(c, in), SZ));                               \
    }                                                                                              \
    H(mov_imm_reg##SZ)                                                                             \
    {                                                                                              \
        reg_write(c, in->rm, SZ, 1, in->imm);                                                      \
    }                                                                                              \
    H(mov_imm_mem##SZ)                                                                             \
    {                                                                                              \
        vm_write(c, emu_ea(c, in), SZ, in->imm);                                                   \
    }
MOV_SIZE(2)
MOV_SIZE(4)
MOV_SIZE(8)

/* ---- MOVZX/MOVSX from memory ---- */
#define MOVX(SZ)                                                                                   \
    H(movzx8_mem##SZ)                                                                              \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1, vm_read(c, emu_ea(c, in), 1));                                \
    }                                                                                              \
    H(movzx16_mem##SZ)                                                                             \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1, vm_read(c, emu_ea(c, in), 2));                                \
    }                                                                                              \
    H(movsx8_mem##SZ)                                                                              \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1, sext(vm_read(c, emu_ea(c, in), 1), 1));                       \
    }                                                                                              \
    H(movsx16_mem##SZ)                                                                             \
    {                                                                                              \
        reg_write(c, in->reg, SZ, 1, sext(vm_read(c, emu_ea(c, in), 2), 2));                       \
    }
MOVX(4)
MOVX(8)

/* ---- Jcc / SETcc / CMOVcc with a constant condition (64-bit mode) ---- */
#define CC_FORMS(CC)                                                                               \
    H(jcc##CC)                                                                                     \
    {                                                                                              \
        if (emu_cond_inline(c, CC)) c->next_rip = branch_target(c, in, c->next_rip + in->imm);     \
    }                                                                                              \
    H(cmov##CC##_reg8)                                                                             \
    {                                                                                              \
        if (emu_cond_inline(c, CC)) c->s.gpr[in->reg] = c->s.gpr[in->rm];                          \
    }                                                                                              \
    H(cmov##CC##_reg4)                                                                             \
    {                                                                                              \
        c->s.gpr[in->reg] =                                                                        \
            (uint32_t)(emu_cond_inline(c, CC) ? c->s.gpr[in->rm] : c->s.gpr[in->reg]);             \
    }                                                                                              \
    H(setcc##CC##_reg)                                                                             \
    {                                                                                              \
        reg_write(c, in->rm, 1, in->pfx &PFX_REX, emu_cond_inline(c, CC));                         \
    }
CC_FORMS(0)
CC_FORMS(1) CC_FORMS(2) CC_FORMS(3) CC_FORMS(4) CC_FORMS(5) CC_FORMS(6) CC_FORMS(7) CC_FORMS(8)
    CC_FORMS(9) CC_FORMS(10) CC_FORMS(11) CC_FORMS(12) CC_FORMS(13) CC_FORMS(14) CC_FORMS(15)

    /* ---- 64-bit stack operations (SS base is zero in 64-bit mode) ---- */
    static inline void push64(struct emu_cpu *c, uint64_t v)
{
    uint64_t rsp = c->s.gpr[RSP] - 8;
    if (unlikely(!canonical(rsp))) emu_raise(c, EXC_SS, 0, true);
    vm_write(c, rsp, 8, v);
    c->s.gpr[RSP] = rsp;
}
static inline uint64_t pop64(struct emu_cpu *c)
{
    if (unlikely(!canonical(c->s.gpr[RSP]))) emu_raise(c, EXC_SS, 0, true);
    uint64_t v = vm_read(c, c->s.gpr[RSP], 8);
    c->s.gpr[RSP] += 8;
    return v;
}
H(push_r64)
{
    push64(c, c->s.gpr[(in->opc & 7) | ((in->rex & 1) << 3)]);
}
H(pop_r64)
{
    uint64_t v = pop64(c);
    c->s.gpr[(in->opc & 7) | ((in->rex & 1) << 3)] = v;
}
H(call_rel64)
{
    uint64_t t = branch_target(c, in, c->next_rip + in->imm);
    push64(c, c->next_rip);
    c->next_rip = t;
}
H(ret64)
{
    if (unlikely(!canonical(c->s.gpr[RSP]))) emu_raise(c, EXC_SS, 0, true);
    c->next_rip = branch_target(c, in, vm_read(c, c->s.gpr[RSP], 8));
    c->s.gpr[RSP] += 8;
}

/* ---- LEA with 64/32-bit addresses ---- */
H(lea64)
{
    c->s.gpr[in->reg] = emu_ea_off(c, in);
}
H(lea32)
{
    c->s.gpr[in->reg] = (uint32_t)emu_ea_off(c, in);
}

/* The handlers the run loop inlines, each behind its own indirect jump (threaded
 * dispatch); everything else goes through a call. Order defines insn.fop - 1. */
/* clang-format off */
#define EMU_THREADED_OPS(X)                                                                        \
    X(mov_ld_mem8) X(mov_ld_mem4) X(mov_st_mem8) X(mov_st_mem4) X(mov_st_reg8) X(mov_st_reg4)      \
    X(mov_imm_reg4) X(mov_imm_reg8) X(movzx8_mem4) X(movzx8_mem8) X(movzx16_mem4)                 \
    X(mov_st_mem_lowbyte) X(mov_ld_mem_lowbyte)                                                    \
    X(alu0_ri_reg8) X(alu0_ri_reg4) X(alu5_ri_reg8) X(alu5_ri_reg4) X(alu7_ri_reg8)               \
    X(alu7_ri_reg4) X(alu4_ri_reg4) X(alu4_ri_reg8)                                                \
    X(alu7_mr_reg8) X(alu7_mr_reg4) X(alu0_mr_reg8) X(alu0_mr_reg4) X(alu5_mr_reg8)               \
    X(alu5_mr_reg4) X(alu6_mr_reg4) X(alu6_mr_reg8) X(alu1_mr_reg8) X(alu4_mr_reg8)               \
    X(alu4_mr_reg4) X(alu1_mr_reg4)                                                                \
    X(alu0_rm_mem8) X(alu0_rm_mem4) X(alu7_rm_mem8) X(alu7_rm_mem4) X(alu7_mi_byte)               \
    X(alu7_ri_mem8) X(alu7_ri_mem4) X(test_reg4) X(test_reg8)                                      \
    X(jcc0) X(jcc1) X(jcc2) X(jcc3) X(jcc4) X(jcc5) X(jcc6) X(jcc7)                                \
    X(jcc8) X(jcc9) X(jcc10) X(jcc11) X(jcc12) X(jcc13) X(jcc14) X(jcc15)                          \
    X(lea64) X(lea32) X(imul_reg8) X(imul_reg4)                                                    \
    X(shift4_ri8) X(shift5_ri8) X(shift4_ri4) X(shift5_ri4) X(shift7_ri8)                          \
    X(push_r64) X(pop_r64) X(call_rel64) X(ret64)                                                  \
    X(alu0_acc8) X(alu7_acc8) X(alu7_acc4) X(alu4_acc4)
/* clang-format on */

/* insn.fop for a handler (0: not threaded); filled in by block decoding */
uint8_t emu_threaded_op(emu_handler fn);

#endif
