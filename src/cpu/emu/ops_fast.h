/* ops_fast.h — specialised handlers for the hottest integer forms (see
 * ops_fast.c) and the list of those the run loop dispatches by threaded code.
 * Included by ops_fast.c (selectors) and exec.c (threaded dispatch) only. */
#ifndef UNUM_CPU_EMU_OPS_FAST_H
#define UNUM_CPU_EMU_OPS_FAST_H

#include <emmintrin.h>

#include "cpu/emu/emu.h"

/* Handlers are static inline so the threaded dispatch in exec.c can inline them;
 * ops_fast.c takes their addresses for the decoder. */
#define H(name)                                                                                    \
    static inline __attribute__((unused, always_inline)) void name(struct emu_cpu *c,             \
                                                                   const struct insn *in)

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

/* ---- ROL/ROR by an immediate (C1 /0 /1) on registers: CF and OF change, the
 * other arithmetic flags are kept (materialised from the lazy state) ---- */
#define ROT_SIZE(OP, SZ)                                                                           \
    H(rot##OP##_ri##SZ)                                                                            \
    {                                                                                              \
        const int bits = SZ * 8;                                                                   \
        uint64_t a = reg_read(c, in->rm, SZ, 1), m = szmask(SZ), msb = 1ull << (bits - 1);         \
        unsigned cnt = (unsigned)in->imm & (SZ == 8 ? 63 : 31);                                    \
        if (cnt) {                                                                                 \
            unsigned n = cnt % bits;                                                               \
            uint64_t r, cf, of;                                                                    \
            if (OP == 0) {                                                                         \
                r = n ? ((a << n) | (a >> (bits - n))) & m : a;                                   \
                cf = r & 1;                                                                        \
                of = ((r & msb) != 0) ^ cf;                                                        \
            } else {                                                                               \
                r = n ? ((a >> n) | (a << (bits - n))) & m : a;                                   \
                cf = (r & msb) != 0;                                                               \
                of = ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1;                                  \
            }                                                                                      \
            emu_flags_sync(c);                                                                     \
            c->s.rflags = (c->s.rflags & ~(uint64_t)(FL_CF | FL_OF)) | (cf ? FL_CF : 0) |          \
                          (of ? FL_OF : 0);                                                        \
            a = r;                                                                                 \
        }                                                                                          \
        reg_write(c, in->rm, SZ, 1, a);                                                            \
    }
ROT_SIZE(0, 4)
ROT_SIZE(0, 8)
ROT_SIZE(1, 4)
ROT_SIZE(1, 8)

/* ---- CMP r/m8, r8 with a register destination (38 /r, mod 3) ---- */
H(alu7_mr_rb)
{
    bool rex = in->pfx & PFX_REX;
    emu_alu(c, 7, 1, reg_read(c, in->rm, 1, rex), reg_read(c, in->reg, 1, rex));
}

/* ---- SSE2 scalar double and register moves (register operands) ----
 * The fast forms assume what the common case gives: SSE enabled (CR0.EM/TS
 * clear, CR4.OSFXSR set) and every MXCSR exception masked, so the host
 * instruction runs as is under the lazily loaded guest MXCSR (sse_internal.h).
 * Otherwise the table's handler for the opcode (ops_sse*.c) runs instead.
 * NAME_fast is the bare operation (the run loop checks sse_fast_ok itself and
 * falls back to the generic path); NAME, for the decoder, checks first. */
void emu_sse_slow(struct emu_cpu *c, const struct insn *in);
static inline __attribute__((always_inline)) bool sse_fast_ok(const struct emu_cpu *c)
{
    return !(c->s.cr0 & (CR0_EM | CR0_TS)) && (c->s.cr4 & CR4_OSFXSR) &&
           (c->s.fpu.mxcsr & 0x1f80u) == 0x1f80u;
}
#define SSE_FAST(name)                                                                             \
    static inline __attribute__((unused, always_inline)) void name##_fast(struct emu_cpu *c,       \
                                                                          const struct insn *in); \
    H(name)                                                                                        \
    {                                                                                              \
        if (unlikely(!sse_fast_ok(c)))                                                             \
            emu_sse_slow(c, in);                                                                   \
        else                                                                                       \
            name##_fast(c, in);                                                                    \
    }                                                                                              \
    static inline __attribute__((unused, always_inline)) void name##_fast(struct emu_cpu *c,       \
                                                                          const struct insn *in)
#define SSE_SD_RR(name, text)                                                                      \
    SSE_FAST(name)                                                                                 \
    {                                                                                              \
        __m128i a = _mm_load_si128((const __m128i *)&c->s.fpu.xmm[in->reg]);                       \
        __asm__ volatile(text " %[b], %[a]"                                                        \
                         : [a] "+x"(a)                                                             \
                         : [b] "x"(_mm_load_si128((const __m128i *)&c->s.fpu.xmm[in->rm])));      \
        _mm_store_si128((__m128i *)&c->s.fpu.xmm[in->reg], a);                                     \
    }
SSE_SD_RR(sse_addsd_rr, "addsd")
SSE_SD_RR(sse_subsd_rr, "subsd")
SSE_SD_RR(sse_mulsd_rr, "mulsd")
SSE_SD_RR(sse_divsd_rr, "divsd")
/* MOVAPS/MOVAPD xmm, xmm (0F 28) */
SSE_FAST(sse_movap_rr)
{
    _mm_store_si128((__m128i *)&c->s.fpu.xmm[in->reg],
                    _mm_load_si128((const __m128i *)&c->s.fpu.xmm[in->rm]));
}
/* COMISD/UCOMISD xmm, xmm: ZF, PF, CF from the compare, OF, SF, AF cleared: all
 * the arithmetic flags are written, so nothing lazy needs materialising */
#define SSE_COMI_RR(name, text)                                                                    \
    SSE_FAST(name)                                                                                 \
    {                                                                                              \
        bool zf, pf, cf;                                                                           \
        __asm__ volatile(text " %[b], %[a]"                                                        \
                         : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf)                                   \
                         : [a] "x"(_mm_load_si128((const __m128i *)&c->s.fpu.xmm[in->reg])),      \
                           [b] "x"(_mm_load_si128((const __m128i *)&c->s.fpu.xmm[in->rm])));      \
        c->lf_op = LF_NONE;                                                                        \
        c->s.rflags = (c->s.rflags & ~(uint64_t)FL_ARITH) | (zf ? FL_ZF : 0) | (pf ? FL_PF : 0) |  \
                      (cf ? FL_CF : 0);                                                            \
    }
SSE_COMI_RR(sse_comisd_rr, "comisd")
SSE_COMI_RR(sse_ucomisd_rr, "ucomisd")

/* The handlers the run loop inlines, each behind its own indirect jump (threaded
 * dispatch); everything else goes through a call. X(name, kind), kind:
 *   P  pure: registers and lazy flags only, cannot fault, does not read RIP (the
 *      run loop then does not keep s.rip/next_rip up to date for it)
 *   R  may fault or reads next_rip: s.rip/next_rip set before it
 *   W  also writes memory (may set exit_block): checked after it
 *   B  ends the block: rip from next_rip after it
 *   S  SSE, pure when sse_fast_ok (then NAME_fast runs), else the generic path
 * The order defines FOP_*; jcc0..jcc15 must stay consecutive. */
/* clang-format off */
#define EMU_THREADED_OPS(X)                                                                        \
    X(mov_ld_mem8, R) X(mov_ld_mem4, R) X(mov_st_mem8, W) X(mov_st_mem4, W) X(mov_st_reg8, P)      \
    X(mov_st_reg4, P) X(mov_imm_reg4, P) X(mov_imm_reg8, P) X(movzx8_mem4, R) X(movzx8_mem8, R)    \
    X(movzx16_mem4, R) X(mov_st_mem_lowbyte, W) X(mov_ld_mem_lowbyte, R)                           \
    X(alu0_ri_reg8, P) X(alu0_ri_reg4, P) X(alu5_ri_reg8, P) X(alu5_ri_reg4, P) X(alu7_ri_reg8, P)  \
    X(alu7_ri_reg4, P) X(alu4_ri_reg4, P) X(alu4_ri_reg8, P) X(alu1_ri_reg8, P) X(alu6_ri_reg8, P)  \
    X(alu7_mr_reg8, P) X(alu7_mr_reg4, P) X(alu0_mr_reg8, P) X(alu0_mr_reg4, P) X(alu5_mr_reg8, P)  \
    X(alu5_mr_reg4, P) X(alu6_mr_reg4, P) X(alu6_mr_reg8, P) X(alu1_mr_reg8, P) X(alu4_mr_reg8, P)  \
    X(alu4_mr_reg4, P) X(alu1_mr_reg4, P) X(alu7_rr_rev8, P) X(alu7_rr_rev4, P) X(alu7_mr_rb, P)   \
    X(alu0_rm_mem8, R) X(alu0_rm_mem4, R) X(alu7_rm_mem8, R) X(alu7_rm_mem4, R) X(alu7_mi_byte, R)  \
    X(alu7_ri_mem8, R) X(alu7_ri_mem4, R) X(test_reg4, P) X(test_reg8, P)                          \
    X(jcc0, J) X(jcc1, J) X(jcc2, J) X(jcc3, J) X(jcc4, J) X(jcc5, J) X(jcc6, J) X(jcc7, J)        \
    X(jcc8, J) X(jcc9, J) X(jcc10, J) X(jcc11, J) X(jcc12, J) X(jcc13, J) X(jcc14, J) X(jcc15, J)  \
    X(lea64, R) X(lea32, R) X(imul_reg8, P) X(imul_reg4, P)                                        \
    X(shift4_ri8, P) X(shift5_ri8, P) X(shift4_ri4, P) X(shift5_ri4, P) X(shift7_ri8, P)           \
    X(rot0_ri8, P) X(rot0_ri4, P) X(rot1_ri8, P) X(rot1_ri4, P)                                    \
    X(push_r64, W) X(pop_r64, R) X(call_rel64, B) X(ret64, B)                                      \
    X(alu0_acc8, P) X(alu7_acc8, P) X(alu7_acc4, P) X(alu4_acc4, P)                                \
    X(sse_addsd_rr, S) X(sse_subsd_rr, S) X(sse_mulsd_rr, S) X(sse_divsd_rr, S)                    \
    X(sse_movap_rr, S) X(sse_comisd_rr, S) X(sse_ucomisd_rr, S)

/* Compare-and-branch fusion: a flag producer (pure, above) directly followed by
 * a threaded Jcc in the same block runs as one step, the condition computed
 * from the producer's operands (its lazy flags are still recorded). */
#define EMU_FUSE_PRODUCERS(X, A)                                                                   \
    X(A, alu7_mr_reg8) X(A, alu7_mr_reg4) X(A, alu7_ri_reg8) X(A, alu7_ri_reg4)                    \
    X(A, alu7_rr_rev8) X(A, alu7_rr_rev4) X(A, alu7_acc8) X(A, alu7_acc4) X(A, alu7_mr_rb)         \
    X(A, test_reg8) X(A, test_reg4) X(A, alu0_ri_reg8) X(A, alu5_ri_reg8) X(A, alu4_ri_reg4)
#define EMU_FUSE_CCS(X, P)                                                                         \
    X(P, 2) X(P, 3) X(P, 4) X(P, 5) X(P, 6) X(P, 7) X(P, 12) X(P, 13) X(P, 14) X(P, 15)
#define EMU_FUSE_ROW(X, P) EMU_FUSE_CCS(X, P)
#define EMU_FUSED_OPS(X) EMU_FUSE_PRODUCERS(EMU_FUSE_ROW, X)
/* clang-format on */

enum {
    FOP_GENERIC = 0, /* call in->fn */
    FOP_END,         /* block sentinel */
#define FOP_ENUM(name, kind) FOP_##name,
    EMU_THREADED_OPS(FOP_ENUM)
#define FOP_FENUM(prod, cc) FOP_F_##prod##_##cc,
        EMU_FUSED_OPS(FOP_FENUM) FOP_COUNT
#undef FOP_ENUM
#undef FOP_FENUM
};

/* insn.fop for a handler (FOP_GENERIC: not threaded); filled in by block decoding */
uint16_t emu_threaded_op(emu_handler fn);
/* the fused slot for producer slot `prod` followed by a threaded Jcc `cc`, or 0 */
uint16_t emu_fused_op(uint16_t prod, int cc);

#endif
