/* native.c — runs a case on the host CPU.
 *
 * The code bytes go to a buffer mapped at DT_CODE_BASE and the data image to
 * DT_DATA_BASE, the same linear addresses the guest uses, so RIP-relative and
 * absolute operands agree. An assembly trampoline loads the whole input state
 * (all 16 GPRs including the test's RSP, RFLAGS, x87/SSE via FXRSTOR) from a
 * control block at the fixed address DT_CB_BASE, jumps to the code, and each
 * continuation point jumps back into an exit stub that stores the output state.
 * Because every register belongs to the test while it runs, the stubs address
 * the control block with absolute 32-bit displacements instead of a register.
 *
 * Faults arrive as signals; the handler (on an alternate stack, since RSP points
 * into the data region) records REG_TRAPNO — the hardware vector — and the
 * register state at the fault, then resumes at a stub that restores the host
 * stack, FPU control state and flags. No sigsetjmp, so no syscalls per case. */
#define _GNU_SOURCE
#include "difftest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

/* Control block: everything the trampoline touches. Offsets are hard-coded in
 * the assembly below and checked here. */
struct dt_cb {
    uint64_t host_rsp;  /* 0x00 */
    uint64_t entry;     /* 0x08 */
    uint64_t in_rflags; /* 0x10 */
    uint32_t path;      /* 0x18 */
    int32_t exc;        /* 0x1c */
    uint64_t fault_rip; /* 0x20 */
    uint8_t pad0[0x18];
    uint64_t in_gpr[16];  /* 0x40 */
    uint64_t out_gpr[16]; /* 0xc0 */
    uint64_t out_rflags;  /* 0x140 */
    uint8_t pad1[0xb8];
    struct dt_fx in_fx;   /* 0x200 */
    struct dt_fx out_fx;  /* 0x400 */
    struct dt_fx host_fx; /* 0x600 */
};
_Static_assert(offsetof(struct dt_cb, in_gpr) == 0x40, "cb layout");
_Static_assert(offsetof(struct dt_cb, out_gpr) == 0xc0, "cb layout");
_Static_assert(offsetof(struct dt_cb, out_rflags) == 0x140, "cb layout");
_Static_assert(offsetof(struct dt_cb, in_fx) == 0x200, "cb layout");
_Static_assert(offsetof(struct dt_cb, out_fx) == 0x400, "cb layout");
_Static_assert(offsetof(struct dt_cb, host_fx) == 0x600, "cb layout");
_Static_assert(DT_CB_BASE == 0x10000000ull, "asm below hard-codes the control block");

#define CB ((struct dt_cb *)(uintptr_t)DT_CB_BASE)

void dt_native_enter(void);
void dt_native_return(void);
void dt_native_exit0(void);
void dt_native_exit1(void);
void dt_native_exit2(void);
void dt_native_exit3(void);

#define SAVE_GPRS                                                                                  \
    "mov %rax, CB+0xc0\n mov %rcx, CB+0xc8\n mov %rdx, CB+0xd0\n mov %rbx, CB+0xd8\n"              \
    "mov %rsp, CB+0xe0\n mov %rbp, CB+0xe8\n mov %rsi, CB+0xf0\n mov %rdi, CB+0xf8\n"              \
    "mov %r8, CB+0x100\n mov %r9, CB+0x108\n mov %r10, CB+0x110\n mov %r11, CB+0x118\n"            \
    "mov %r12, CB+0x120\n mov %r13, CB+0x128\n mov %r14, CB+0x130\n mov %r15, CB+0x138\n"

/* clang-format off */
asm(".set CB, 0x10000000\n"
    ".text\n"
    ".globl dt_native_enter\n"
    ".type dt_native_enter, @function\n"
    "dt_native_enter:\n"
    "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "  mov %rsp, CB+0x00\n"
    "  fxsave64 CB+0x600\n"
    "  fxrstor64 CB+0x200\n"
    "  mov $CB+0x10, %rsp\n"
    "  popfq\n" /* RFLAGS from in_rflags; mov below leaves flags alone */
    "  mov CB+0x40, %rax\n mov CB+0x48, %rcx\n mov CB+0x50, %rdx\n mov CB+0x58, %rbx\n"
    "  mov CB+0x68, %rbp\n mov CB+0x70, %rsi\n mov CB+0x78, %rdi\n"
    "  mov CB+0x80, %r8\n mov CB+0x88, %r9\n mov CB+0x90, %r10\n mov CB+0x98, %r11\n"
    "  mov CB+0xa0, %r12\n mov CB+0xa8, %r13\n mov CB+0xb0, %r14\n mov CB+0xb8, %r15\n"
    "  mov CB+0x60, %rsp\n"
    "  jmp *CB+0x08\n"
    ".size dt_native_enter, .-dt_native_enter\n"
    /* continuation exits: record which one, then save everything */
    ".globl dt_native_exit0, dt_native_exit1, dt_native_exit2, dt_native_exit3\n"
    "dt_native_exit0: movl $0, CB+0x18\n jmp dt_native_save\n"
    "dt_native_exit1: movl $1, CB+0x18\n jmp dt_native_save\n"
    "dt_native_exit2: movl $2, CB+0x18\n jmp dt_native_save\n"
    "dt_native_exit3: movl $3, CB+0x18\n jmp dt_native_save\n"
    "dt_native_save:\n"
    SAVE_GPRS
    "  mov $CB+0x148, %rsp\n"
    "  pushfq\n" /* lands at out_rflags */
    "  fxsave64 CB+0x400\n"
    /* also the resume point after a fault signal */
    ".globl dt_native_return\n"
    "dt_native_return:\n"
    "  mov CB+0x00, %rsp\n"
    "  pushq $0x202\n popfq\n" /* DF, AC, TF as the C code expects */
    "  fxrstor64 CB+0x600\n"   /* host MXCSR and FCW */
    "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
    "  ret\n");
/* clang-format on */

static void (*const exits[DT_MAX_CONT])(void) = {dt_native_exit0, dt_native_exit1, dt_native_exit2,
                                                 dt_native_exit3};

static uint8_t *code_buf, *data_buf;
static volatile sig_atomic_t in_native;
static int dirty_lo = DT_CODE_SIZE, dirty_hi = 0; /* code bytes to reset after a case */

#define TRAILER_LEN 14 /* jmp *0(%rip); .quad exit */

static void on_signal(int sig, siginfo_t *si, void *uctx)
{
    ucontext_t *uc = uctx;
    greg_t *g = uc->uc_mcontext.gregs;
    if (!in_native) {
        /* a crash of the tester itself: die with the default action */
        signal(sig, SIG_DFL);
        return;
    }
    in_native = 0;
    uint64_t rip = (uint64_t)g[REG_RIP];
    int vec = (int)g[REG_TRAPNO];
    /* A HLT of the code-page fill means execution went astray; the guest reports
     * the same situation as a halt at an unexpected address. */
    if (sig == SIGSEGV && vec == EXC_GP && rip - DT_CODE_BASE < DT_CODE_SIZE &&
        code_buf[rip - DT_CODE_BASE] == 0xf4) {
        vec = DT_EXC_STRAY;
        rip++;
    }
    CB->exc = vec;
    CB->fault_rip = rip;
    static const int map[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                REG_R12, REG_R13, REG_R14, REG_R15};
    for (int i = 0; i < 16; i++)
        CB->out_gpr[i] = (uint64_t)g[map[i]];
    CB->out_rflags = (uint64_t)g[REG_EFL];
    if (uc->uc_mcontext.fpregs) memcpy(&CB->out_fx, uc->uc_mcontext.fpregs, sizeof(CB->out_fx));
    g[REG_RIP] = (greg_t)(uintptr_t)dt_native_return;
    g[REG_RSP] = (greg_t)CB->host_rsp;
    g[REG_EFL] = 0x202;
    (void)si;
}

static void *map_fixed(uint64_t addr, size_t len, int prot)
{
    void *p = mmap((void *)(uintptr_t)addr, len, prot,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || (uint64_t)(uintptr_t)p != addr) {
        fprintf(stderr, "difftest: cannot map %zu bytes at %#llx\n", len, (unsigned long long)addr);
        return NULL;
    }
    return p;
}

int dt_native_init(void)
{
    if (!map_fixed(DT_CB_BASE, sizeof(struct dt_cb) + 4096, PROT_READ | PROT_WRITE)) return -1;
    code_buf = map_fixed(DT_CODE_BASE, DT_CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
    data_buf = map_fixed(DT_DATA_BASE, DT_DATA_SIZE, PROT_READ | PROT_WRITE);
    if (!code_buf || !data_buf) return -1;
    memset(code_buf, 0xf4, DT_CODE_SIZE);

    static uint8_t altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
    if (sigaltstack(&ss, NULL)) {
        perror("sigaltstack");
        return -1;
    }
    struct sigaction sa = {.sa_sigaction = on_signal,
                           .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGFPE, SIGSEGV, SIGBUS, SIGILL, SIGTRAP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL)) {
            perror("sigaction");
            return -1;
        }
    return 0;
}

static void put_trailer(int off, int k)
{
    uint8_t *p = code_buf + off;
    uint64_t target = (uint64_t)(uintptr_t)exits[k];
    p[0] = 0xff, p[1] = 0x25, p[2] = p[3] = p[4] = p[5] = 0;
    memcpy(p + 6, &target, 8);
}

void dt_native_run(const struct dt_case *c, struct dt_result *r)
{
    /* reset the previous case's bytes to the HLT fill */
    if (dirty_hi > dirty_lo) memset(code_buf + dirty_lo, 0xf4, (size_t)(dirty_hi - dirty_lo));
    dirty_lo = c->entry, dirty_hi = c->entry + c->len;
    for (int k = 0; k < c->ncont; k++) {
        put_trailer(c->cont[k], k);
        if (c->cont[k] < dirty_lo) dirty_lo = c->cont[k];
        if (c->cont[k] + TRAILER_LEN > dirty_hi) dirty_hi = c->cont[k] + TRAILER_LEN;
    }
    memcpy(code_buf + c->entry, c->code, (size_t)c->len);
    memcpy(data_buf, c->mem, DT_DATA_SIZE);

    memcpy(CB->in_gpr, c->in.gpr, sizeof(CB->in_gpr));
    CB->in_rflags = c->in.rflags;
    CB->in_fx = c->in.fx;
    CB->entry = DT_CODE_BASE + (uint64_t)c->entry;
    CB->exc = DT_EXC_NONE;
    CB->path = 0;

    dt_set_phase(1);
    in_native = 1;
    dt_native_enter();
    in_native = 0;
    dt_set_phase(0);

    r->exc = CB->exc;
    if (r->exc == DT_EXC_NONE) {
        r->path = (int)CB->path;
        r->rip = DT_CODE_BASE + (uint64_t)c->cont[r->path] + 1;
    } else {
        r->path = -1;
        r->rip = CB->fault_rip;
    }
    memcpy(r->out.gpr, CB->out_gpr, sizeof(r->out.gpr));
    r->out.rflags = CB->out_rflags;
    r->out.fx = CB->out_fx;
    r->have_ftw = false;
    r->mem = data_buf;
}
