/* ops_x87_host.c — runs one guest x87 instruction on the host's x87 unit.
 *
 * Why the host: the guest must see exactly what this x86-64 host computes
 * (rounding under every FCW.PC/RC, denormals, unnormals and pseudo-NaNs, the
 * transcendental approximations, stack faults, C0..C3, the bias-adjusted results
 * of unmasked overflow/underflow). Re-deriving all of that in C would only
 * approximate the silicon; replaying the instruction on it is exact.
 *
 * How: the guest state is turned into an FNSAVE image with the exception flags
 * cleared (so FRSTOR leaves nothing pending and nothing traps), FRSTOR loads it,
 * a stub holding the guest's own two opcode bytes runs, FNSAVE stores the result
 * (and re-initialises the host FPU). The guest's FCW is used unchanged: x87
 * exceptions are only reported by the next waiting instruction, and FNSAVE does
 * not wait, so an unmasked exception only leaves ES set in the saved image.
 * Memory forms use ModRM [rdx] and operate on a host buffer the caller fills from,
 * or copies to, guest memory.
 *
 * FRSTOR+FNSAVE cost about 200 cycles, so common instructions take a fast path
 * (unum_x87_fast, chosen by ops_x87_fast.c): load only the registers read, run
 * with all exceptions masked, store back what is left on the stack.
 *
 * The host's own x87 state is left as the ABI wants it: empty stack, FCW restored
 * (exception flags may stay set; they are masked and nothing reads them). */
#include "cpu/emu/x87_internal.h"

#include <stddef.h>

#if !defined(__x86_64__)
#error "the x87 unit replays instructions on the host FPU: x86-64 hosts only"
#endif

/* unum_x87_exec(img, stub, mem, cf) -> host RFLAGS after the stub.
 * FCMOVcc runs as FCMOVB with CF = the guest's condition (decided in C), which
 * spares the slow POPF of the guest's flags. Each stub is the instruction, then
 * PUSHF/POP RAX for FCOMI and friends, then RET, padded to 8 bytes. */
__asm__(".pushsection .text\n"
        ".p2align 4\n"
        ".globl unum_x87_exec\n"
        ".hidden unum_x87_exec\n"
        ".type unum_x87_exec, @function\n"
        "unum_x87_exec:\n"
        "    push %rbx\n"
        "    sub $16, %rsp\n"
        "    fnstcw (%rsp)\n"
        "    mov %rdi, %rbx\n"
        "    frstor (%rbx)\n"
        "    bt $0, %ecx\n"
        "    call *%rsi\n"
        "    fnsave (%rbx)\n"
        "    fldcw (%rsp)\n"
        "    add $16, %rsp\n"
        "    pop %rbx\n"
        "    ret\n"
        ".size unum_x87_exec, .-unum_x87_exec\n"
        /* unum_x87_fast(io): the fast path (see struct x87_fast_io). Runs with
         * every exception masked, so nothing here can trap. FLDCW and FNCLEX are
         * slow: the FCW is only loaded when it differs (the usual 0x37f does not),
         * the host flags only cleared when set. */
        ".p2align 4\n"
        ".globl unum_x87_fast\n"
        ".hidden unum_x87_fast\n"
        ".type unum_x87_fast, @function\n"
        "unum_x87_fast:\n"
        "    push %rbx\n"
        "    mov %rdi, %rbx\n"
        "    fnstcw 2(%rbx)\n"
        "    movzwl 2(%rbx), %eax\n"
        "    cmp 0(%rbx), %ax\n"
        "    je 0f\n"
        "    fldcw 0(%rbx)\n"
        "0:  fnstsw %ax\n"
        "    test $0x7f, %al\n"
        "    jz 1f\n"
        "    fnclex\n"
        "1:  mov 8(%rbx), %ecx\n"
        "2:  sub $1, %ecx\n"
        "    jb 3f\n"
        "    lea (%rcx,%rcx,4), %rax\n"
        "    fldt 48(%rbx,%rax,2)\n"
        "    jmp 2b\n"
        "3:  mov 24(%rbx), %rdx\n"
        "    mov 32(%rbx), %ecx\n"
        "    bt $0, %ecx\n"
        "    call *16(%rbx)\n"
        "    mov %rax, 40(%rbx)\n"
        "    fnstsw 4(%rbx)\n"
        "    xor %ecx, %ecx\n"
        "4:  cmp 12(%rbx), %ecx\n"
        "    jae 5f\n"
        "    lea (%rcx,%rcx,4), %rax\n"
        "    fstpt 48(%rbx,%rax,2)\n"
        "    add $1, %ecx\n"
        "    jmp 4b\n"
        "5:  movzwl 2(%rbx), %eax\n"
        "    cmp 0(%rbx), %ax\n"
        "    je 6f\n"
        "    fldcw 2(%rbx)\n"
        "6:  pop %rbx\n"
        "    ret\n"
        ".size unum_x87_fast, .-unum_x87_fast\n"
        /* 512 register-form stubs: D8+esc, modrm C0..FF */
        ".p2align 4\n"
        ".globl unum_x87_reg_stubs\n"
        ".hidden unum_x87_reg_stubs\n"
        "unum_x87_reg_stubs:\n"
        ".set .Lx87_op, 0xd8\n"
        ".rept 8\n"
        ".set .Lx87_m, 0xc0\n"
        ".rept 64\n"
        ".byte .Lx87_op, .Lx87_m, 0x9c, 0x58, 0xc3, 0xcc, 0xcc, 0xcc\n"
        ".set .Lx87_m, .Lx87_m + 1\n"
        ".endr\n"
        ".set .Lx87_op, .Lx87_op + 1\n"
        ".endr\n"
        /* 64 memory-form stubs: D8+esc, modrm 00 /digit 010 = [rdx] */
        ".globl unum_x87_mem_stubs\n"
        ".hidden unum_x87_mem_stubs\n"
        "unum_x87_mem_stubs:\n"
        ".set .Lx87_op, 0xd8\n"
        ".rept 8\n"
        ".set .Lx87_m, 0x02\n"
        ".rept 8\n"
        ".byte .Lx87_op, .Lx87_m, 0x9c, 0x58, 0xc3, 0xcc, 0xcc, 0xcc\n"
        ".set .Lx87_m, .Lx87_m + 8\n"
        ".endr\n"
        ".set .Lx87_op, .Lx87_op + 1\n"
        ".endr\n"
        ".popsection\n");

__attribute__((visibility("hidden"))) uint64_t unum_x87_exec(uint8_t *img, const void *stub,
                                                             void *mem, uint64_t cf);
__attribute__((visibility("hidden"))) void unum_x87_fast(struct x87_fast_io *io);
__attribute__((visibility("hidden"))) extern const uint8_t unum_x87_reg_stubs[];
__attribute__((visibility("hidden"))) extern const uint8_t unum_x87_mem_stubs[];

const void *x87_reg_stub(int esc, int modrm)
{
    return unum_x87_reg_stubs + ((esc << 6) | (modrm & 0x3f)) * 8;
}

const void *x87_mem_stub(int esc, int digit)
{
    return unum_x87_mem_stubs + (esc * 8 + digit) * 8;
}

static inline void put16(uint8_t *p, uint16_t v)
{
    store_host(p, 2, v);
}
static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)load_host(p, 2);
}

/* FNSAVE image of f; the registers are stored in stack order ST(0)..ST(7). */
static void image_build(const struct x86_fpu *f, uint8_t *img)
{
    memset(img, 0, 28);
    put16(img + 0, f->fcw);
    put16(img + 4, f->fsw & ~(FSW_EXC | FSW_SF | FSW_ES | FSW_B));
    put16(img + 8, f->ftw);
    int top = x87_top(f);
    for (int i = 0; i < 8; i++)
        memcpy(img + 28 + 10 * i, f->st[(top + i) & 7], 10);
}

/* The flags the guest had stay set (they are sticky); the host adds the new ones. */
static void image_result(const struct x86_fpu *f, const uint8_t *img, struct x87_result *res)
{
    uint16_t sw = get16(img + 4);
    res->fsw = x87_fsw_sync_es(sw | (f->fsw & (FSW_EXC | FSW_SF)), f->fcw);
    res->ftw = get16(img + 8);
    int top = (sw >> 11) & 7;
    for (int i = 0; i < 8; i++)
        memcpy(res->st[(top + i) & 7], img + 28 + 10 * i, 10);
}

uint64_t x87_host_run(const struct x86_fpu *f, struct x87_result *res, const void *stub, void *mem,
                      bool cf)
{
    uint8_t img[X87_IMG_SIZE] __attribute__((aligned(16)));
    image_build(f, img);
    uint64_t fl = unum_x87_exec(img, stub, mem, cf);
    image_result(f, img, res);
    return fl;
}

/* Offsets used by unum_x87_fast */
_Static_assert(offsetof(struct x87_fast_io, fcw) == 0, "io layout");
_Static_assert(offsetof(struct x87_fast_io, host_fcw) == 2, "io layout");
_Static_assert(offsetof(struct x87_fast_io, fsw) == 4, "io layout");
_Static_assert(offsetof(struct x87_fast_io, nin) == 8, "io layout");
_Static_assert(offsetof(struct x87_fast_io, nout) == 12, "io layout");
_Static_assert(offsetof(struct x87_fast_io, stub) == 16, "io layout");
_Static_assert(offsetof(struct x87_fast_io, mem) == 24, "io layout");
_Static_assert(offsetof(struct x87_fast_io, cf) == 32, "io layout");
_Static_assert(offsetof(struct x87_fast_io, rflags) == 40, "io layout");
_Static_assert(offsetof(struct x87_fast_io, st) == 48, "io layout");

void x87_fast_exec(struct x87_fast_io *io)
{
    unum_x87_fast(io);
}
