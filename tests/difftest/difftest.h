/* difftest.h — differential tester: instruction forms run on the host CPU and in
 * the emulator from the same input state, outputs compared.
 *
 * A *form* is one instruction encoding shape (opcode, operand size, register or
 * memory operand, immediate size) plus what is architecturally defined about its
 * result on both x86 vendors. A *case* is one instance of a form: concrete
 * registers, addressing mode, immediates and input values drawn from the
 * edge-biased generators in gen.c. The same code bytes run natively (native.c) at
 * fixed addresses and in an emu vCPU (guest.c) at the same guest addresses. */
#ifndef UNUM_TESTS_DIFFTEST_H
#define UNUM_TESTS_DIFFTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cpu/x86_state.h"

/* ---- fixed addresses (same linear address natively and in the guest) ---- */
#define DT_CB_BASE   0x10000000ull /* native control block (host only, see native.c) */
#define DT_CODE_BASE 0x20000000ull /* instruction bytes, two pages */
#define DT_CODE_SIZE 0x2000u
#define DT_DATA_BASE 0x30000000ull /* memory operands (page 0) and stack (page 1) */
#define DT_DATA_SIZE 0x2000u
#define DT_STACK_LO  (DT_DATA_BASE + 0x1600) /* range for the input RSP */
#define DT_STACK_HI  (DT_DATA_BASE + 0x1e00)
#define DT_MEM_LO    0x100u /* window of page 0 where memory operands are placed */
#define DT_MEM_HI    0xf00u
#define DT_DATA_REG  R15 /* holds DT_DATA_BASE in every case, never an operand */

/* Exception pseudo-vectors besides the architectural 0..31 */
#define DT_EXC_NONE     (-1)
#define DT_EXC_SHUTDOWN (-3) /* emulator: triple fault or other abnormal exit */
#define DT_EXC_STRAY    (-4) /* emulator: halted at an unexpected address */

/* FXSAVE64 image: the canonical form of x87/SSE state on both sides. */
struct dt_fx {
    uint16_t fcw, fsw;
    uint8_t ftw; /* abridged: bit i set = physical register i not empty */
    uint8_t rsvd1;
    uint16_t fop;
    uint64_t fip, fdp;
    uint32_t mxcsr, mxcsr_mask;
    uint8_t st[8][16]; /* ST(0)..ST(7) in stack order, 80-bit values in the low 10 bytes */
    x86_xmm xmm[16];
    uint8_t rsvd2[96];
} __attribute__((aligned(16)));
_Static_assert(sizeof(struct dt_fx) == 512, "FXSAVE image is 512 bytes");

/* Register state compared between the two runs. */
struct dt_regs {
    uint64_t gpr[16];
    uint64_t rflags;
    struct dt_fx fx;
};

/* ---- form description ---- */
enum dt_cat { CAT_INT, CAT_STR, CAT_CTL, CAT_SSE, CAT_MMX, CAT_X87, CAT_SEQ, CAT_COUNT };
extern const char *const dt_cat_name[CAT_COUNT];

/* Operand kinds of the ModRM.reg field, the ModRM.rm register and opcode+reg forms */
enum dt_opk {
    K_NONE = 0,
    K_G8,
    K_G16,
    K_G32,
    K_G64, /* general registers */
    K_XMM,
    K_MM,
    K_ST, /* XMM, MMX and x87 stack registers */
};

/* Lane types: how random vector/memory values are biased (L_AUTO: integer lanes
 * of the memory operand's size, 64-bit lanes in vector registers) */
enum dt_lane { L_AUTO, L_I8, L_I16, L_I32, L_I64, L_F32, L_F64, L_F80 };

/* State classes randomised per case (others keep a fixed baseline image; all
 * state is compared regardless, so a form that clobbers unrelated state fails). */
#define U_XMM 0x01 /* XMM registers and MXCSR */
#define U_X87 0x02 /* x87 registers, FCW/FSW/tags */

/* Form flags (dt_form.fl) */
#define F_LOCK    0x0001 /* emit F0 */
#define F_NOADDR  0x0004 /* memory operand is not accessed (LEA): any address, any base */
#define F_ALIGN   0x0010 /* memory operand must be aligned to its size (#GP otherwise) */
#define F_IMMEDGE 0x0040 /* immediate is a count: bias toward 0..bits+1 */
#define F_LAST    0x0080 /* run after all other forms (the faulting encodings) */

struct dt_case;

struct dt_form {
    const char *name; /* "<cat>/<mnemonic operands>", unique */
    enum dt_cat cat;
    uint8_t npfx, pfx[3]; /* prefixes emitted before REX (66, F2, F3 ...) */
    uint8_t rexw;         /* 1: REX.W */
    uint8_t nop, op[3];   /* opcode bytes */
    int8_t ext;           /* ModRM.reg /digit, or -1: reg operand of kind `reg` */
    uint8_t reg, rm;      /* operand kinds (rm: register kind for the mod=3 form) */
    uint8_t opreg;        /* kind of a register encoded in the opcode's low 3 bits */
    uint16_t mem;         /* memory operand size in bytes; 0 = register form */
    uint8_t imm;          /* immediate bytes (0, 1, 2, 4, 8) */
    uint8_t lane;         /* dt_lane for vector registers and the memory operand */
    uint8_t use;          /* U_* */
    uint16_t fl;          /* F_* */
    uint16_t implicit;    /* GPRs used implicitly: never base/index of the address */
    uint32_t flags;       /* RFLAGS bits defined after the instruction (compared) */
    uint16_t fsw_mask;    /* x87 FSW bits the manuals define (0 → all); see --arch-fsw */
    uint8_t x87_need;     /* valid x87 registers the form reads (biases stack depth) */
    uint8_t weight;       /* share of the case budget (0 = 1) */
    void (*setup)(struct dt_case *c);  /* constrain inputs / set per-case masks */
    void (*encode)(struct dt_case *c); /* replaces the generic encoder */
};

/* ---- one case ---- */
#define DT_MAX_CONT 4
#define DT_MAX_IGN  4
struct dt_case {
    const struct dt_form *form;
    uint64_t seed; /* per-case RNG seed (reproduces the case) */
    uint64_t rng[4];

    /* code: bytes placed at DT_CODE_BASE + entry; execution ends at one of the
     * continuation offsets (relative to DT_CODE_BASE) */
    uint8_t code[64];
    int len, entry, ncont, cont[DT_MAX_CONT];
    int org; /* custom encoders: offset chosen for their layout (entry/cont include it) */

    /* chosen operands (filled by the encoder, used by setup callbacks) */
    int reg, rm, opreg;     /* register numbers or -1 */
    bool rex;               /* a REX prefix is present (8-bit register naming) */
    bool a32;               /* 67 prefix */
    uint8_t segpfx;         /* ignored segment override prefix, or 0 */
    uint64_t addr;          /* linear address of the memory operand (if form->mem) */
    bool faulting;          /* addr was chosen to fault (unmapped or non-canonical) */
    uint16_t reserved;      /* sequences: GPRs earlier instructions address through */
    uint64_t imm;           /* immediate value (zero-extended to its size) */
    int base, index, scale; /* addressing: -1 none, 16 = RIP */
    int64_t disp;
    int disp_size; /* 0, 1, 4 */
    int disp_pos;  /* offset of the displacement in code[] (RIP-relative patch) */
    bool rip_rel, abs_addr;

    struct dt_regs in;
    uint8_t mem[DT_DATA_SIZE]; /* input image of the data region */

    /* what is compared (setup may narrow it) */
    uint32_t flags_mask;
    uint16_t gpr_ignore; /* bit per GPR whose output is undefined */
    uint16_t fsw_mask;
    uint32_t ign_off[DT_MAX_IGN], ign_len[DT_MAX_IGN]; /* data-region bytes not compared */
    int nign;
};

/* Output of one run, normalised. */
struct dt_result {
    int exc;      /* DT_EXC_NONE or a vector / pseudo-vector */
    int path;     /* continuation index reached (exc == DT_EXC_NONE) */
    uint64_t rip; /* DT_CODE_BASE + cont + 1 on completion, faulting RIP on exception */
    struct dt_regs out;
    bool have_ftw; /* emulator: full tag word available */
    uint16_t ftw;
    const uint8_t *mem; /* live data region after the run */
};

/* ---- registry (forms.c) ---- */
void dt_add(const struct dt_form *f); /* copies *f; name is not copied */
const char *dt_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dt_forms_int(void);
void dt_forms_str(void);
void dt_forms_ctl(void);
void dt_forms_sse(void);
void dt_forms_x87(void);
void dt_forms_seq(void); /* after the others: sequences are built from their forms */
extern struct dt_form *dt_forms;
extern int dt_nforms;

/* ---- random generation (gen.c) ---- */
uint64_t dt_rand(struct dt_case *c);
uint64_t dt_below(struct dt_case *c, uint64_t n); /* 0..n-1 */
bool dt_chance(struct dt_case *c, unsigned pct);
uint64_t dt_edge(struct dt_case *c, int bits); /* edge-biased value in the low `bits` */
uint64_t dt_gpr_value(struct dt_case *c);      /* edge-biased full 64-bit register value */
uint32_t dt_f32(struct dt_case *c);
uint64_t dt_f64(struct dt_case *c);
void dt_f80(struct dt_case *c, uint8_t out[10]);
void dt_fill_lane(struct dt_case *c, void *dst, int bytes, int lane);
uint64_t dt_count(struct dt_case *c, int bits); /* shift/rotate count biased to boundaries */
void dt_gen_init(uint64_t seed);
void dt_case_init(struct dt_case *c, const struct dt_form *f, uint64_t case_seed);
extern bool dt_arch_fsw; /* --arch-fsw: mask FSW bits the manuals leave undefined */

/* Operand access for setup callbacks (size in bytes) */
uint64_t dt_get_gpr(const struct dt_case *c, int r, int size); /* 8-bit: AH..BH without REX */
void dt_set_gpr(struct dt_case *c, int r, int size, uint64_t v);
uint64_t dt_get_rm(const struct dt_case *c, int size);
void dt_set_rm(struct dt_case *c, int size, uint64_t v);
uint64_t dt_get_reg(const struct dt_case *c, int size);
void dt_set_reg(struct dt_case *c, int size, uint64_t v);
uint64_t dt_mem_get(const struct dt_case *c, uint64_t addr, int size);
void dt_mem_set(struct dt_case *c, uint64_t addr, int size, uint64_t v);
void dt_ignore_mem(struct dt_case *c, uint64_t addr, uint32_t len);
int dt_opsize(const struct dt_case *c); /* size of the form's GPR operand (from reg/rm/opreg) */
void dt_set_imm(struct dt_case *c, uint64_t v);
/* x87: stack depth and values (ST(i) in stack order) */
void dt_x87_setup(struct dt_case *c, int depth);
int dt_x87_top(const struct dt_case *c);

/* ---- encoder (encode.c) ---- */
void dt_pick_operands(struct dt_case *c);  /* registers, memory operand, immediate */
void dt_encode_generic(struct dt_case *c); /* emits the instruction from the picks */
void dt_place(struct dt_case *c);          /* chooses the entry offset, patches RIP-relative */
uint32_t dt_emit_subform(struct dt_case *c, const struct dt_form *f); /* sequences */
void dt_emit(struct dt_case *c, const void *bytes, int n);
void dt_emit8(struct dt_case *c, uint8_t b);
void dt_emit_imm(struct dt_case *c, uint64_t v, int size);

/* ---- execution ---- */
int dt_native_init(void);
void dt_native_run(const struct dt_case *c, struct dt_result *r);
int dt_guest_init(void);
void dt_guest_run(const struct dt_case *c, struct dt_result *r);
void dt_set_phase(int phase); /* 0 idle, 1 native, 2 emulator: shown if a case hangs */

/* ---- comparison and printing (compare.c) ---- */
/* number of differing items; each is printed to `o` unless it is NULL */
int dt_compare(const struct dt_case *c, const struct dt_result *n, const struct dt_result *e,
               FILE *o);
void dt_print_input(FILE *o, const struct dt_case *c);
void dt_print_result(FILE *o, const char *who, const struct dt_result *r);
void dt_print_changes(FILE *o, const struct dt_case *c, const struct dt_result *n);

/* ---- x87 helpers (state.c) ---- */
int dt_f80_class(const uint8_t v[10]); /* full-tag class: 0 valid, 1 zero, 2 special */
void dt_fx_to_fpu(const struct dt_fx *fx, struct x86_fpu *f);
void dt_fpu_to_fx(const struct x86_fpu *f, struct dt_fx *fx);

/* ---- common flag masks ---- */
#define FLG_ALL   (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)
#define FLG_LOGIC (FL_CF | FL_PF | FL_ZF | FL_SF | FL_OF) /* AF undefined */
#define FLG_CFOF  (FL_CF | FL_OF)

#endif
