/* emu.h — internals of the x86-64 interpreter (the "emu" CPU implementer).
 *
 * Owns: the emulated vCPU (struct emu_cpu), the decoded-instruction format
 * (struct insn), the opcode tables instruction modules register into, lazy
 * flags, the soft-MMU TLB fast paths and exception raising. Instruction modules
 * (ops_*.c) include this header and nothing device-related. */
#ifndef UNUM_CPU_EMU_EMU_H
#define UNUM_CPU_EMU_EMU_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct emu_cpu;
struct insn;
typedef void (*emu_handler)(struct emu_cpu *c, const struct insn *in);

/* Prefix bits in insn.pfx */
#define PFX_LOCK  0x01
#define PFX_REP   0x02 /* F3 */
#define PFX_REPNE 0x04 /* F2 */
#define PFX_OPSZ  0x08 /* 66 */
#define PFX_ADSZ  0x10 /* 67 */
#define PFX_REX   0x20 /* any REX prefix present (selects SPL/BPL/SIL/DIL) */
#define PFX_SEG   0x40 /* explicit segment override */

enum emu_map { MAP_1B = 0, MAP_0F, MAP_0F38, MAP_0F3A, MAP_COUNT };
/* Mandatory-prefix slot for SSE opcodes */
enum { MP_NONE = 0, MP_66 = 1, MP_F3 = 2, MP_F2 = 3 };

/* One decoded instruction. Register numbers include REX extension bits. */
struct insn {
    emu_handler fn;
    uint64_t imm;  /* first immediate (sign-extended to 64 per the encoding) */
    int64_t disp;  /* displacement (moffs: the full 64-bit address) */
    uint32_t imm2; /* second immediate (ENTER level, far pointer selector) */
    uint8_t len;
    uint8_t opc; /* last opcode byte */
    uint8_t map;
    uint8_t pfx;
    uint8_t mp;  /* mandatory prefix slot, MP_* */
    uint8_t osz; /* operand size in bytes: 2, 4 or 8 (byte forms use 1 in handlers) */
    uint8_t asz; /* address size in bytes: 2, 4 or 8 */
    uint8_t modrm;
    uint8_t mod;   /* 0..3 (3 = register operand) */
    uint8_t reg;   /* ModRM.reg | REX.R<<3 */
    uint8_t rm;    /* ModRM.rm | REX.B<<3 (register number when mod == 3) */
    uint8_t base;  /* address base register, or EA_NONE / EA_RIP */
    uint8_t index; /* address index register or EA_NONE */
    uint8_t scale; /* shift count 0..3 */
    uint8_t seg;   /* effective segment for the memory operand */
    uint8_t rex;   /* raw REX byte or 0 */
    uint8_t has_modrm;
    uint8_t sext_imm; /* immediate was sign-extended from 8 bits */
    uint8_t ea_kind;  /* EA_GENERAL, or a 64-bit DS-relative address: EA_BASE, EA_BASE_INDEX */
    uint8_t idx;      /* index in its block (run loop: instructions retired) */
    uint16_t off;     /* offset of the instruction from its block's first byte */
    uint16_t fop;     /* threaded-dispatch slot (ops_fast.h FOP_*), 0 = call fn */
};
enum { EA_GENERAL = 0, EA_BASE, EA_BASE_INDEX, EA_RIPREL };
#define EA_NONE 0xff
#define EA_RIP  0xfe
/* 16-bit addressing: base/index use these pairs (BX, BP, SI, DI are 3, 5, 6, 7) */

/* Decode-table flags, one entry per opcode of a map */
#define OPF_MODRM  0x0001
#define OPF_IMM8   0x0002
#define OPF_IMMZ   0x0004 /* 16 or 32 bits (32 sign-extended to 64) */
#define OPF_IMMV   0x0008 /* 16, 32 or 64 bits (MOV r, imm) */
#define OPF_IMM16  0x0010
#define OPF_MOFFS  0x0020 /* address-sized absolute offset */
#define OPF_BRANCH 0x0040 /* ends a decoded block */
#define OPF_D64    0x0080 /* operand size defaults to 64 in long mode */
#define OPF_F64    0x0100 /* operand size forced to 64 in long mode */
#define OPF_SSE    0x0200 /* handler chosen by mandatory prefix (66/F3/F2) */
#define OPF_GRP3   0x0400 /* F6/F7: immediate only for /0 and /1 */
#define OPF_FAR    0x0800 /* ptr16:16/32 (invalid in 64-bit mode) */
#define OPF_ENTER  0x1000 /* imm16 + imm8 */
#define OPF_NOLOCK 0      /* documentation only */

/* A selector may pick a specialised handler (by operand size, register vs memory
 * operand, ...) for a decoded instruction; NULL keeps the generic handler. */
typedef emu_handler (*emu_selector)(const struct insn *in);

struct emu_opcode {
    uint16_t flags;
    emu_handler fn[4]; /* [MP_*] for OPF_SSE entries, else only fn[0] */
    emu_selector sel;
};
extern struct emu_opcode emu_optab[MAP_COUNT][256];

/* Instruction modules register their handlers from these init functions. */
void emu_register(enum emu_map map, uint8_t opc, int mp, emu_handler fn);
void emu_register_selector(enum emu_map map, uint8_t opc, emu_selector sel);
void emu_ops_int_init(void);
void emu_ops_fast_init(void);
void emu_ops_string_init(void);
void emu_ops_sys_init(void);
void emu_ops_sse_init(void);
void emu_ops_x87_init(void);
void emu_tables_init(void); /* idempotent; calls all of the above */

/* Execution modes */
enum emu_mode { MODE_REAL, MODE_PROT16, MODE_PROT32, MODE_LONG64, MODE_COMPAT32, MODE_COMPAT16 };

/* Decodes one instruction at `bytes` (at most `avail` bytes readable) in mode. Returns
 * the length (1..15), or 0 when the bytes run out before the instruction ends, or
 * -1 when the encoding is invalid in this mode or longer than 15 bytes (#UD/#GP). */
int emu_decode(const uint8_t *bytes, int avail, enum emu_mode mode, struct insn *in);

/* Soft-MMU TLB */
#define TLB_BITS 8
#define TLB_SIZE (1u << TLB_BITS)
/* The entry of a linear address: direct-mapped, the page number plus 9 times the
 * bits above the index (one LEA), so that pages a power-of-two number of pages
 * apart (the buckets of a radix sort over a 2^n-key array, stacks, per-CPU areas,
 * two arrays 1 MiB apart) land away from each other and from each other's
 * neighbours: 2^k pages on (TLB_BITS <= k < TLB_BITS + 8, 1-128 MiB) move the
 * index by 9 * 2^(k - 8) mod 256, at least 9 entries. XOR-folding the same bits
 * moved a page 1 MiB on by one entry, onto the neighbour of the page a loop reads
 * beside it (a stencil's next-grid row beside its current one: 4x slower sweeps). */
#define TLB_INDEX(lin)                                                                             \
    ((unsigned)(((lin) >> 12) + ((lin) >> (12 + TLB_BITS)) * 9u) & (TLB_SIZE - 1))
/* never equal to a tag a lookup compares: page-aligned, or with only the low
 * alignment bits 0-2 set (vm_read/vm_write fold alignment into the compare) */
#define TLB_INVALID 0x800ull
struct tlb_entry {
    uint64_t tag_r, tag_w, tag_x; /* linear page, or TLB_INVALID */
    uintptr_t addend;             /* host address = linear + addend */
    uint64_t gpa;                 /* guest-physical page */
    uint8_t global;
};

/* Lazy flags: the arithmetic flags are computed from the last flag-setting
 * operation on demand. lf_op = LF_xxx * 4 + size index (0:8,1:16,2:32,3:64). */
enum {
    LF_NONE = 0, /* rflags holds the arithmetic flags */
    LF_ADD,
    LF_ADC,
    LF_SUB,
    LF_SBB,
    LF_LOGIC,
    LF_INC,
    LF_DEC,
    LF_SHL,
    LF_SHR,
    LF_SAR,
    LF_MUL,
    LF_COUNT
};

/* Decoded-block cache (per vCPU, keyed by guest-physical address and mode).
 * insn[ninsn] is a sentinel (fop FOP_END, off = the block's length) that ends
 * the threaded dispatch. */
#define BLOCK_MAX_INSNS 48
struct emu_block {
    struct emu_block *next;    /* hash chain */
    uint64_t gpa;              /* physical address of the first instruction */
    uint32_t code_gen;         /* guest_mem.code_gen of the page at decode time */
    _Atomic uint32_t *gen_ptr; /* &guest_mem.code_gen[page], checked before each run */
    uint16_t key;              /* mode key */
    uint16_t ninsn;
    /* direct chaining to the blocks that followed this one (valid while the
     * recorded chain epoch matches the vCPU's) */
    struct emu_block *succ[2];
    uint64_t succ_rip[2];
    uint32_t succ_epoch[2];
    struct insn insn[];
};
#define BLOCK_HASH_SIZE 4096
/* Direct-mapped cache from linear RIP to block, valid until the next TLB flush. */
#define JC_SIZE 1024
struct emu_jc_entry {
    uint64_t rip;
    struct emu_block *b;
    uint32_t key;
};
#define BLOCK_ARENA_SIZE (8u << 20)

struct emu_cpu {
    struct vcpu v; /* common part, must be first */
    struct x86_state s;

    /* lazy flags */
    uint64_t lf_res, lf_src1, lf_src2;
    uint32_t lf_aux;
    uint32_t lf_op;

    uint64_t next_rip; /* rip after the current instruction (handlers may change it) */
    enum emu_mode mode;
    int cpl;
    bool exit_block; /* leave the current block after this instruction */
    bool irq_shadow; /* STI / MOV SS: no interrupt before the next instruction */
    bool halted;
    bool wait_sipi;
    bool nmi_blocked;
    bool stop_run; /* return from run() with stop_reason */
    enum vcpu_exit_reason stop_reason;

    /* exceptions */
    jmp_buf exc_jmp;
    int exc_depth; /* nesting for #DF / triple fault */
    int exc_vector;
    uint32_t exc_err;
    bool exc_has_err;
    uint32_t n_delivered; /* events delivered through the IDT/IVT so far */
    bool delivering;      /* inside emu_deliver of an exception */
    int delivering_vec;

    struct tlb_entry *tlb_cur; /* tlb[cpl == 3] */
    struct tlb_entry tlb[2][TLB_SIZE];
    /* What a fill evicted from tlb[u][i], looked at before a page walk: a second way
     * behind each entry (tlb_fill), so that two pages a loop uses together and that
     * share an index (arrays 1 MiB apart) take turns without a walk each time. */
    struct tlb_entry tlb_victim[2][TLB_SIZE];

    struct emu_block *blk_hash[BLOCK_HASH_SIZE];
    struct emu_jc_entry jc[JC_SIZE];
    uint32_t chain_epoch; /* bumped whenever translations or blocks may have changed */
    uint8_t *blk_arena;
    size_t blk_used;

    uint64_t icount;       /* instructions retired */
    uint64_t icount_limit; /* stop (VCPU_EXIT_STOP) once icount reaches it; 0 = none */
    uint64_t icount_stop;  /* min(icount_limit, poll_at); one compare per block */
    uint64_t poll_at;      /* icount at which to call ops->poll (UINT64_MAX: never) */
    bool poll_wanted;      /* run_blocks asked ops->poll_wanted: yes (poll_outside polls) */
    uint64_t tsc_base;
    bool debug_ud; /* log unknown opcodes once */
};

static inline struct emu_cpu *emu_of(struct vcpu *v)
{
    return (struct emu_cpu *)v;
}

/* ---- exceptions (excp.c) ---- */
_Noreturn void emu_raise(struct emu_cpu *c, int vector, uint32_t error_code, bool has_error);
_Noreturn static inline void emu_ud(struct emu_cpu *c)
{
    emu_raise(c, EXC_UD, 0, false);
}
_Noreturn static inline void emu_gp(struct emu_cpu *c, uint32_t err)
{
    emu_raise(c, EXC_GP, err, true);
}
_Noreturn void emu_page_fault(struct emu_cpu *c, uint64_t lin, uint32_t err);
/* Delivers an interrupt/exception through the IDT (from the run loop, not a handler). */
void emu_deliver(struct emu_cpu *c, int vector, uint32_t err, bool has_err, int kind);
enum { EV_EXC, EV_INTR, EV_SOFT, EV_NMI }; /* kind */

void emu_handle_flush(struct emu_cpu *c); /* acknowledge a translation shoot-down */

/* ---- flags (flags.c) ---- */
uint64_t emu_flags_arith(const struct emu_cpu *c); /* CF..OF of the lazy state */
static inline uint64_t emu_rflags(const struct emu_cpu *c)
{
    if (c->lf_op == LF_NONE) return c->s.rflags;
    return (c->s.rflags & ~(uint64_t)FL_ARITH) | emu_flags_arith(c);
}
/* Materialise lazy flags into s.rflags. */
static inline void emu_flags_sync(struct emu_cpu *c)
{
    if (c->lf_op != LF_NONE) {
        c->s.rflags = emu_rflags(c);
        c->lf_op = LF_NONE;
    }
}
static inline void emu_set_lazy(struct emu_cpu *c, int op, int szi, uint64_t res, uint64_t s1,
                                uint64_t s2)
{
    c->lf_op = (uint32_t)(op * 4 + szi);
    c->lf_res = res;
    c->lf_src1 = s1;
    c->lf_src2 = s2;
}
bool emu_cond(struct emu_cpu *c, int cc); /* cc 0..15 as in Jcc */
bool emu_get_cf(const struct emu_cpu *c);
static inline bool canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}
static inline int szidx(int size)
{
    return size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
}
static inline uint64_t szmask(int size)
{
    return size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
}
static inline uint64_t sext(uint64_t v, int size)
{
    switch (size) {
    case 1: return (uint64_t)(int64_t)(int8_t)v;
    case 2: return (uint64_t)(int64_t)(int16_t)v;
    case 4: return (uint64_t)(int64_t)(int32_t)v;
    default: return v;
    }
}

#define EMU_INLINE static inline __attribute__((always_inline))

/* The eight classic ALU operations (ADD OR ADC SBB AND SUB XOR CMP) with lazy
 * flags; a and b are already truncated to size. Always inlined so handlers with a
 * constant op and size compile to straight-line code. */
EMU_INLINE uint64_t emu_alu(struct emu_cpu *c, int op, int size, uint64_t a, uint64_t b)
{
    uint64_t m = szmask(size), r, cf;
    int si = szidx(size);
    b &= m;
    switch (op) {
    case 0:
        r = (a + b) & m;
        emu_set_lazy(c, LF_ADD, si, r, a, b);
        break;
    case 1:
        r = a | b;
        emu_set_lazy(c, LF_LOGIC, si, r, 0, 0);
        break;
    case 2:
        cf = emu_get_cf(c);
        r = (a + b + cf) & m;
        emu_set_lazy(c, LF_ADC, si, r, a, b);
        c->lf_aux = (uint32_t)cf;
        break;
    case 3:
        cf = emu_get_cf(c);
        r = (a - b - cf) & m;
        emu_set_lazy(c, LF_SBB, si, r, a, b);
        c->lf_aux = (uint32_t)cf;
        break;
    case 4:
        r = a & b;
        emu_set_lazy(c, LF_LOGIC, si, r, 0, 0);
        break;
    case 5:
    case 7:
        r = (a - b) & m;
        emu_set_lazy(c, LF_SUB, si, r, a, b);
        break;
    default:
        r = a ^ b;
        emu_set_lazy(c, LF_LOGIC, si, r, 0, 0);
        break;
    }
    return r;
}

/* Two- and three-operand IMUL: truncated product, CF=OF on signed overflow. */
EMU_INLINE uint64_t emu_imul2(struct emu_cpu *c, int size, uint64_t a, uint64_t b)
{
    uint64_t lo;
    bool ovf;
    if (size == 8) {
        __int128 p = (__int128)(int64_t)a * (int64_t)b;
        lo = (uint64_t)p;
        ovf = p != (__int128)(int64_t)lo;
    } else {
        int64_t p = (int64_t)sext(a, size) * (int64_t)sext(b, size);
        lo = (uint64_t)p & szmask(size);
        ovf = p != (int64_t)sext(lo, size);
    }
    emu_set_lazy(c, LF_MUL, szidx(size), lo, 0, 0);
    c->lf_aux = ovf;
    return lo;
}

/* SHL/SAL (op 4 or 6), SHR (5), SAR (7) with lazy flags; a count of zero
 * changes nothing. */
EMU_INLINE uint64_t emu_shift(struct emu_cpu *c, int op, int size, uint64_t a, unsigned cnt)
{
    cnt &= size == 8 ? 63 : 31;
    if (!cnt) return a;
    uint64_t m = szmask(size), r;
    int si = szidx(size);
    switch (op) {
    case 4:
    case 6:
        r = cnt < 64 ? (a << cnt) & m : 0;
        emu_set_lazy(c, LF_SHL, si, r, a, cnt);
        break;
    case 5:
        r = a >> cnt;
        emu_set_lazy(c, LF_SHR, si, r, a, cnt);
        break;
    default:
        r = (uint64_t)((int64_t)sext(a, size) >> (cnt > 63 ? 63 : cnt)) & m;
        emu_set_lazy(c, LF_SAR, si, r, a, cnt);
        break;
    }
    return r;
}

/* Condition cc (0..15 as in Jcc) from materialised arithmetic flags f. */
static inline bool emu_cond_of_flags(uint64_t f, int cc)
{
    bool r;
    switch (cc >> 1) {
    case 0: r = f & FL_OF; break;
    case 1: r = f & FL_CF; break;
    case 2: r = f & FL_ZF; break;
    case 3: r = f & (FL_CF | FL_ZF); break;
    case 4: r = f & FL_SF; break;
    case 5: r = f & FL_PF; break;
    case 6: r = !(f & FL_SF) != !(f & FL_OF); break;
    default: r = (f & FL_ZF) || (!(f & FL_SF) != !(f & FL_OF)); break;
    }
    return (cc & 1) ? !r : r;
}

/* Jcc/SETcc/CMOVcc condition with the compare-and-branch cases inline. */
EMU_INLINE bool emu_cond_inline(struct emu_cpu *c, int cc)
{
    uint32_t op = c->lf_op >> 2;
    int bits = 8 << (c->lf_op & 3);
    bool r;
    if (op == LF_SUB) {
        uint64_t a = c->lf_src1, b = c->lf_src2;
        switch (cc >> 1) {
        case 1: r = a < b; break;
        case 2: r = c->lf_res == 0; break;
        case 3: r = a <= b; break;
        case 4: r = (c->lf_res >> (bits - 1)) & 1; break;
        case 6: r = (int64_t)(a << (64 - bits)) < (int64_t)(b << (64 - bits)); break;
        case 7: r = (int64_t)(a << (64 - bits)) <= (int64_t)(b << (64 - bits)); break;
        default: return emu_cond(c, cc);
        }
        return (cc & 1) ? !r : r;
    }
    if (op == LF_LOGIC) { /* AND/OR/XOR/TEST: CF = OF = 0 */
        bool zf = c->lf_res == 0, sf = (c->lf_res >> (bits - 1)) & 1;
        switch (cc >> 1) {
        case 0:
        case 1: r = false; break;        /* O, B */
        case 2: r = zf; break;           /* E */
        case 3: r = zf; break;           /* BE */
        case 4: r = sf; break;           /* S */
        case 6: r = sf; break;           /* L: SF != OF */
        case 7: r = zf || sf; break;     /* LE */
        default: return emu_cond(c, cc); /* P */
        }
        return (cc & 1) ? !r : r;
    }
    if (op == LF_NONE) return emu_cond_of_flags(c->s.rflags, cc); /* COMISD, POPF, ... */
    if ((cc >> 1) == 2 || (cc >> 1) == 4) {
        /* ZF and SF come straight from the (truncated) result of any operation */
        r = (cc >> 1) == 2 ? c->lf_res == 0 : (c->lf_res >> (bits - 1)) & 1;
        return (cc & 1) ? !r : r;
    }
    return emu_cond(c, cc);
}

/* ---- registers ---- */
static inline uint64_t reg_read(struct emu_cpu *c, int r, int size, bool rex)
{
    if (size == 1) {
        if (!rex && r >= 4 && r < 8) return (c->s.gpr[r - 4] >> 8) & 0xff;
        return c->s.gpr[r] & 0xff;
    }
    return c->s.gpr[r] & szmask(size);
}
static inline void reg_write(struct emu_cpu *c, int r, int size, bool rex, uint64_t v)
{
    switch (size) {
    case 1:
        if (!rex && r >= 4 && r < 8)
            c->s.gpr[r - 4] = (c->s.gpr[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
        else
            c->s.gpr[r] = (c->s.gpr[r] & ~0xffull) | (v & 0xff);
        break;
    case 2: c->s.gpr[r] = (c->s.gpr[r] & ~0xffffull) | (v & 0xffff); break;
    case 4: c->s.gpr[r] = (uint32_t)v; break;
    default: c->s.gpr[r] = v;
    }
}

/* ---- memory (mmu.c + inline fast paths) ---- */
enum { ACC_R = 0, ACC_W = 1, ACC_X = 2 };
uint64_t emu_read_slow(struct emu_cpu *c, uint64_t lin, int size, int acc);
void emu_write_slow(struct emu_cpu *c, uint64_t lin, int size, uint64_t val);
/* Host pointer for a locked RMW of `size` bytes at lin (write access); NULL when the
 * access splits pages or targets MMIO (caller then uses emu_locked_split). */
void *emu_ptr_rmw(struct emu_cpu *c, uint64_t lin, int size);
void *emu_ptr_read(struct emu_cpu *c, uint64_t lin); /* NULL for MMIO */
void emu_tlb_flush(struct emu_cpu *c, bool include_global);
void emu_jc_flush(struct emu_cpu *c);
void emu_tlb_flush_page(struct emu_cpu *c, uint64_t lin);
void emu_tlb_flush_gpa(struct emu_cpu *c, uint64_t gpa); /* entries translating to that page */
/* Translate a linear address (page walk, sets A/D, raises #PF). */
uint64_t emu_translate(struct emu_cpu *c, uint64_t lin, int acc, bool user);
void emu_read_bytes(struct emu_cpu *c, uint64_t lin, void *dst, int n, int acc);
/* Raises the fault a write of n bytes at lin would raise, writing nothing. */
void emu_probe_write(struct emu_cpu *c, uint64_t lin, int n);
void emu_write_bytes(struct emu_cpu *c, uint64_t lin, const void *src, int n);
/* Supervisor-privilege accesses (descriptor tables, TSS, interrupt stack) */
uint64_t emu_read_sys(struct emu_cpu *c, uint64_t lin, int size);
void emu_write_sys(struct emu_cpu *c, uint64_t lin, int size, uint64_t val);

/* A vCPU wrote guest RAM [gpa, gpa+len): drop decoded code there and, if there
 * was some, leave the current block so the next instruction is decoded afresh. */
static inline void emu_code_written(struct emu_cpu *c, uint64_t gpa, uint64_t len)
{
    if (guest_mem_note_write(c->v.mem, gpa, len)) c->exit_block = true;
}

static inline uint64_t load_host(const void *p, int size)
{
    switch (size) {
    case 1: return *(const uint8_t *)p;
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}
static inline void store_host(void *p, int size, uint64_t v)
{
    switch (size) {
    case 1: *(uint8_t *)p = (uint8_t)v; break;
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    default: memcpy(p, &v, 8);
    }
}

static inline __attribute__((always_inline)) uint64_t vm_read(struct emu_cpu *c, uint64_t lin,
                                                              int size)
{
    /* naturally aligned accesses never cross a page: one compare checks both the
     * tag and the alignment; misaligned ones take the (still TLB-backed) slow path */
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (likely(e->tag_r == (lin & (~0xfffull | (uint64_t)(size - 1)))))
        return load_host((const void *)(uintptr_t)(lin + e->addend), size);
    return emu_read_slow(c, lin, size, ACC_R);
}

static inline __attribute__((always_inline)) void vm_write(struct emu_cpu *c, uint64_t lin,
                                                           int size, uint64_t val)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (likely(e->tag_w == (lin & (~0xfffull | (uint64_t)(size - 1))))) {
        store_host((void *)(uintptr_t)(lin + e->addend), size, val);
        if (unlikely(
                atomic_load_explicit(&c->v.mem->page_flags[e->gpa >> 12], memory_order_relaxed) &
                MEM_PF_CODE))
            emu_code_written(c, e->gpa, 4096);
        return;
    }
    emu_write_slow(c, lin, size, val);
}

/* Host pointer for a read-modify-write of size bytes at lin when the TLB already
 * allows writes and the page holds no decoded code; NULL otherwise. */
static inline void *vm_ptr_rmw_fast(struct emu_cpu *c, uint64_t lin, int size)
{
    struct tlb_entry *e = &c->tlb_cur[TLB_INDEX(lin)];
    if (likely(e->tag_w == (lin & ~0xfffull) && (lin & 0xfff) <= 4096u - size) &&
        !(atomic_load_explicit(&c->v.mem->page_flags[e->gpa >> 12], memory_order_relaxed) &
          MEM_PF_CODE))
        return (void *)(uintptr_t)(lin + e->addend);
    return NULL;
}

/* ---- operands ---- */
static inline uint64_t seg_base(struct emu_cpu *c, int seg)
{
    return c->s.seg[seg].base;
}
/* Linear address of the ModRM memory operand: the common 64-bit shapes inline,
 * everything else (segments, 16/32-bit addressing, RIP-relative, #SS) out of line. */
uint64_t emu_ea_general(struct emu_cpu *c, const struct insn *in);
/* Linear address of a ModRM operand's offset (segment base, #SS checks). */
uint64_t emu_ea_linear(struct emu_cpu *c, const struct insn *in, uint64_t off);
static inline __attribute__((always_inline)) uint64_t emu_ea(struct emu_cpu *c,
                                                             const struct insn *in)
{
    if (likely(in->ea_kind == EA_BASE)) return c->s.gpr[in->base] + (uint64_t)in->disp;
    if (likely(in->ea_kind == EA_BASE_INDEX))
        return c->s.gpr[in->base] + (c->s.gpr[in->index] << in->scale) + (uint64_t)in->disp;
    if (in->ea_kind == EA_RIPREL) return c->next_rip + (uint64_t)in->disp;
    return emu_ea_general(c, in);
}
/* Address of [seg:off] for implicit operands (string ops, stack) */
static inline uint64_t emu_lin(struct emu_cpu *c, int seg, uint64_t off)
{
    if (c->mode == MODE_LONG64)
        return (seg == SEG_FS || seg == SEG_GS) ? off + c->s.seg[seg].base : off;
    return (uint32_t)(off + c->s.seg[seg].base);
}
static inline uint64_t rm_read(struct emu_cpu *c, const struct insn *in, int size)
{
    if (in->mod == 3) return reg_read(c, in->rm, size, in->pfx & PFX_REX);
    return vm_read(c, emu_ea(c, in), size);
}
static inline void rm_write(struct emu_cpu *c, const struct insn *in, int size, uint64_t v)
{
    if (in->mod == 3)
        reg_write(c, in->rm, size, in->pfx & PFX_REX, v);
    else
        vm_write(c, emu_ea(c, in), size, v);
}
static inline uint64_t greg_read(struct emu_cpu *c, const struct insn *in, int size)
{
    return reg_read(c, in->reg, size, in->pfx & PFX_REX);
}
static inline void greg_write(struct emu_cpu *c, const struct insn *in, int size, uint64_t v)
{
    reg_write(c, in->reg, size, in->pfx & PFX_REX, v);
}
/* Stack */
static inline int stack_size(struct emu_cpu *c)
{
    if (c->mode == MODE_LONG64) return 8;
    return (c->s.seg[SEG_SS].attr & SEGA_DB) ? 4 : 2;
}
void emu_push(struct emu_cpu *c, int size, uint64_t v);
uint64_t emu_pop(struct emu_cpu *c, int size);
uint64_t emu_stack_peek(struct emu_cpu *c, int size, int offset);
static inline void set_rsp_sized(struct emu_cpu *c, uint64_t v)
{
    int ss = stack_size(c);
    if (ss == 8)
        c->s.gpr[RSP] = v;
    else if (ss == 4)
        c->s.gpr[RSP] = (uint32_t)v;
    else
        c->s.gpr[RSP] = (c->s.gpr[RSP] & ~0xffffull) | (v & 0xffff);
}

/* ---- system state (ops_sys.c / excp.c) ---- */
void emu_update_mode(struct emu_cpu *c);                     /* after CR0/EFER/CS changes */
void emu_load_seg(struct emu_cpu *c, int seg, uint16_t sel); /* checks, may raise */
/* Far transfers: check a code selector (ret: RETF/IRET rules), then load it. */
uint64_t emu_check_code_desc(struct emu_cpu *c, uint16_t sel, int *new_cpl, bool ret);
void emu_load_cs(struct emu_cpu *c, uint16_t sel, uint64_t desc, int new_cpl);
void emu_clear_outer_segs(struct emu_cpu *c, int new_cpl);
/* Offset part (no segment base) of the ModRM memory operand, for LEA */
static inline uint64_t emu_ea_off(struct emu_cpu *c, const struct insn *in)
{
    uint64_t a = (uint64_t)in->disp;
    if (in->base < 16)
        a += c->s.gpr[in->base];
    else if (in->base == EA_RIP)
        a += c->next_rip;
    if (in->index < 16) a += c->s.gpr[in->index] << in->scale;
    return a & szmask(in->asz);
}
/* Branch target: truncated to the operand size outside 64-bit mode; a
 * non-canonical target faults on the branch itself (#GP(0)), before any push. */
static inline uint64_t branch_target(struct emu_cpu *c, const struct insn *in, uint64_t t)
{
    if (c->mode == MODE_LONG64) {
        if (unlikely(!canonical(t))) emu_gp(c, 0);
        return t;
    }
    return in->osz == 2 ? (t & 0xffff) : (uint32_t)t;
}
void emu_set_cr0(struct emu_cpu *c, uint64_t v);
void emu_set_cr3(struct emu_cpu *c, uint64_t v);
void emu_set_cr4(struct emu_cpu *c, uint64_t v);
int emu_rdmsr(struct emu_cpu *c, uint32_t idx, uint64_t *val); /* 0 or -1 (#GP) */
int emu_wrmsr(struct emu_cpu *c, uint32_t idx, uint64_t val);
void emu_cpuid(struct emu_cpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4]);
uint64_t emu_rdtsc(struct emu_cpu *c);
uint64_t emu_tsc_hz(void);
void emu_io(struct emu_cpu *c, bool is_write, uint16_t port, int size, uint64_t *val);
bool emu_io_allowed(struct emu_cpu *c, uint16_t port, int size);

/* FPU / SSE helpers (ops_sse.c, ops_x87.c) */
/* FXSAVE/FXRSTOR; rexw selects the 64-bit FIP/FDP format (FXSAVE64) */
void emu_fxsave(struct emu_cpu *c, uint64_t lin, bool rexw);
void emu_fxrstor(struct emu_cpu *c, uint64_t lin, bool rexw);
void emu_fpu_reset(struct emu_cpu *c);           /* FNINIT + MXCSR default */
void emu_ldmxcsr(struct emu_cpu *c, uint32_t v); /* #GP on reserved bits */
/* #NM / #UD checks common to SSE instructions */
void emu_sse_check(struct emu_cpu *c);
void emu_x87_check(struct emu_cpu *c);

#endif
