/* SSE/SSE2/MMX unit tests: short instruction sequences run in a flat 32-bit
 * protected-mode guest (no paging) that ends with HLT. Exceptions go through a
 * small IDT whose handler for vector v does `mov eax, v; hlt`, so a test sees
 * which exception was raised in EAX and the faulting EIP on the stack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <xmmintrin.h>

#include "cpu/cpu.h"

#define MEM_SIZE  (1u << 20)
#define GDT_BASE  0x500u
#define IDT_BASE  0x600u
#define CODE_BASE 0x1000u
#define DATA_BASE 0x2000u /* memory operands */
#define FX_BASE   0x4000u /* FXSAVE area */
#define EXC_BASE  0x5000u /* exception stubs, 16 bytes per vector */
#define STACK_TOP 0x8000u
#define PT_BASE   0x9000u /* long-mode page tables: PML4, PDPT, PD (2 MiB identity map) */
#define NO_EXC    0xdeadbeefu

static struct guest_mem mem;
static struct vcpu *cpu;

/* Device callbacks record the host MXCSR they run under and do some inexact
 * host floating point, which must not show in the guest's MXCSR flags. */
static uint32_t io_csr;
static int io_calls;
static volatile double io_fp = 1.0;

static void io_nop(void *ctx, struct cpu_io *io)
{
    io_csr = _mm_getcsr();
    io_calls++;
    io_fp = io_fp / 3.0;
    if (!io->write) io->data = ~0ull;
}

static uint32_t irq_csr;
static int irq_calls;
static int irq_none(void *ctx)
{
    irq_csr = _mm_getcsr();
    irq_calls++;
    io_fp = io_fp / 3.0;
    atomic_fetch_and(&cpu->requests, ~VCPU_REQ_IRQ); /* the line goes down */
    return -1;
}
static const struct cpu_exit_ops ops = {.io = io_nop, .irq_ack = irq_none};

static uint8_t *ram(uint32_t gpa)
{
    return guest_mem_host(&mem, gpa);
}

static void put64(uint32_t gpa, uint64_t v)
{
    memcpy(ram(gpa), &v, 8);
}

static int setup(void **st)
{
    assert_int_equal(guest_mem_init(&mem, MEM_SIZE, 0, MEM_WRITE), 0);
    cpu = emu_cpu_impl.create(&mem, 0, &ops, NULL);
    assert_non_null(cpu);
    /* GDT: null, flat 32-bit code (0x08), flat data (0x10) */
    put64(GDT_BASE, 0);
    put64(GDT_BASE + 8, 0x00cf9a000000ffffull);
    put64(GDT_BASE + 16, 0x00cf92000000ffffull);
    for (uint32_t v = 0; v < 32; v++) {
        uint32_t stub = EXC_BASE + 16 * v;
        uint8_t code[6] = {0xb8, (uint8_t)v, 0, 0, 0, 0xf4}; /* mov eax, v; hlt */
        memcpy(ram(stub), code, sizeof(code));
        uint64_t gate =
            (stub & 0xffff) | (0x08ull << 16) | (0x8e00ull << 32) | ((uint64_t)(stub >> 16) << 48);
        put64(IDT_BASE + 8 * v, gate);
    }
    return 0;
}

static int teardown(void **st)
{
    emu_cpu_impl.destroy(cpu);
    guest_mem_destroy(&mem);
    return 0;
}

/* Initial state: flat 32-bit, SSE enabled, EAX = NO_EXC */
static void base_state(struct x86_state *s)
{
    x86_state_flat32(s, CODE_BASE);
    s->cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    s->cr0 |= CR0_NE;
    s->gdtr = (struct x86_dtable){GDT_BASE, 23};
    s->idtr = (struct x86_dtable){IDT_BASE, 32 * 8 - 1};
    s->gpr[RSP] = STACK_TOP;
    s->gpr[RAX] = NO_EXC;
}

/* 64-bit long mode with the first 2 MiB identity-mapped (no IDT: no exceptions) */
static void long_state(struct x86_state *s)
{
    base_state(s);
    put64(PT_BASE, (PT_BASE + 0x1000) | 3);
    put64(PT_BASE + 0x1000, (PT_BASE + 0x2000) | 3);
    put64(PT_BASE + 0x2000, 0x83); /* 2 MiB page at 0 */
    s->cr3 = PT_BASE;
    s->cr4 |= CR4_PAE;
    s->cr0 |= CR0_PG;
    s->msr.efer = EFER_LME | EFER_LMA;
    s->seg[SEG_CS].attr = 0xa09b; /* L=1 */
}

/* Runs code (HLT appended) from state s; returns the final state in s. */
static void run(struct x86_state *s, const uint8_t *code, size_t n)
{
    memcpy(ram(CODE_BASE), code, n);
    ram(CODE_BASE)[n] = 0xf4;
    guest_mem_note_write(&mem, CODE_BASE, n + 1); /* drop decoded blocks of earlier tests */
    emu_cpu_impl.set_state(cpu, s);
    assert_int_equal(vcpu_run(cpu), VCPU_EXIT_HLT);
    emu_cpu_impl.get_state(cpu, s);
}
#define RUN(s, ...)                                                                                \
    do {                                                                                           \
        static const uint8_t code_[] = {__VA_ARGS__};                                              \
        run(s, code_, sizeof(code_));                                                              \
    } while (0)

/* The exception stub left the vector in EAX and the faulting EIP on the stack */
static void assert_exception(const struct x86_state *s, uint32_t vec, uint32_t eip)
{
    assert_int_equal((uint32_t)s->gpr[RAX], vec);
    uint32_t frame_eip; /* pushed below EFLAGS and CS (and above an error code) */
    memcpy(&frame_eip, ram(STACK_TOP - 12), 4);
    assert_int_equal(frame_eip, eip);
}

static void test_movdqu_pcmpeqb_pmovmskb(void **st)
{
    struct x86_state s;
    base_state(&s);
    for (int i = 0; i < 32; i++)
        ram(DATA_BASE)[i] = (uint8_t)(i * 7);
    ram(DATA_BASE + 1 + 5)[0] = 0xff; /* second copy differs at byte 5 */
    memcpy(ram(DATA_BASE + 0x201), ram(DATA_BASE + 1), 16);
    ram(DATA_BASE + 0x201 + 5)[0] = 0x00;
    RUN(&s, 0xf3, 0x0f, 0x6f, 0x05, 0x01, 0x20, 0x00, 0x00, /* movdqu xmm0,[0x2001] */
        0xf3, 0x0f, 0x6f, 0x0d, 0x01, 0x22, 0x00, 0x00,     /* movdqu xmm1,[0x2201] */
        0xf3, 0x0f, 0x7f, 0x05, 0x03, 0x21, 0x00, 0x00,     /* movdqu [0x2103],xmm0 */
        0x66, 0x0f, 0x74, 0xc1,                             /* pcmpeqb xmm0,xmm1 */
        0x66, 0x0f, 0xd7, 0xd8);                            /* pmovmskb ebx,xmm0 */
    assert_int_equal(s.gpr[RBX], 0xffffu & ~(1u << 5));
    assert_memory_equal(ram(DATA_BASE + 0x103), ram(DATA_BASE + 1), 16);
    assert_int_equal(s.fpu.xmm[0].b[5], 0);
    assert_int_equal(s.fpu.xmm[0].b[6], 0xff);
    assert_int_equal(s.fpu.xmm[1].b[5], 0);
}

static void test_movaps_misaligned_gp(void **st)
{
    struct x86_state s;
    base_state(&s);
    s.fpu.xmm[2].q[0] = 0x1111;
    RUN(&s, 0x0f, 0x28, 0x15, 0x08, 0x20, 0x00, 0x00); /* movaps xmm2,[0x2008] */
    assert_exception(&s, 13, CODE_BASE);
    assert_int_equal(s.fpu.xmm[2].q[0], 0x1111);
}

/* ADDSD 1.0 + 2^-60 under the four rounding modes */
static void test_addsd_rounding(void **st)
{
    static const uint32_t rc[4] = {0x0000, 0x2000, 0x4000, 0x6000}; /* RN, RD, RU, RZ */
    double one = 1.0, tiny = 0x1p-60;
    for (int m = 0; m < 4; m++) {
        struct x86_state s;
        base_state(&s);
        s.fpu.mxcsr = 0x1f80 | rc[m];
        memcpy(&s.fpu.xmm[0].q[0], &one, 8);
        memcpy(&s.fpu.xmm[1].q[0], &tiny, 8);
        s.fpu.xmm[0].q[1] = 0x0123456789abcdefull;
        RUN(&s, 0xf2, 0x0f, 0x58, 0xc1); /* addsd xmm0,xmm1 */
        double r;
        memcpy(&r, &s.fpu.xmm[0].q[0], 8);
        double want = rc[m] == 0x4000 ? 1.0 + 0x1p-52 : 1.0;
        assert_true(r == want);
        assert_int_equal(s.fpu.mxcsr, 0x1f80 | rc[m] | 0x20); /* PE */
        assert_int_equal(s.fpu.xmm[0].q[1], 0x0123456789abcdefull);
    }
}

static void test_cvttsd2si_indefinite(void **st)
{
    struct x86_state s;
    base_state(&s);
    double big = 1e30, neg = -2.75;
    memcpy(&s.fpu.xmm[3].q[0], &big, 8);
    memcpy(&s.fpu.xmm[4].q[0], &neg, 8);
    RUN(&s, 0xf2, 0x0f, 0x2c, 0xcb, /* cvttsd2si ecx,xmm3 */
        0xf2, 0x0f, 0x2c, 0xd4,     /* cvttsd2si edx,xmm4 */
        0xf2, 0x0f, 0x2d, 0xf4);    /* cvtsd2si esi,xmm4 (round to nearest) */
    assert_int_equal(s.gpr[RCX], 0x80000000u);
    assert_int_equal(s.gpr[RDX], (uint32_t)-2);
    assert_int_equal(s.gpr[RSI], (uint32_t)-3);
    assert_int_equal(s.fpu.mxcsr, 0x1f80 | 0x01 | 0x20); /* IE, PE */
}

static void test_divss_zero_masked(void **st)
{
    struct x86_state s;
    base_state(&s);
    float one = 1.0f, zero = 0.0f;
    memcpy(&s.fpu.xmm[0].d[0], &one, 4);
    memcpy(&s.fpu.xmm[1].d[0], &zero, 4);
    RUN(&s, 0xf3, 0x0f, 0x5e, 0xc1); /* divss xmm0,xmm1 */
    assert_int_equal(s.fpu.xmm[0].d[0], 0x7f800000u);
    assert_int_equal(s.fpu.mxcsr, 0x1f80 | 0x04);
    assert_int_equal((uint32_t)s.gpr[RAX], NO_EXC);
}

static void test_divss_zero_unmasked(void **st)
{
    for (int osxmm = 0; osxmm < 2; osxmm++) {
        struct x86_state s;
        base_state(&s);
        if (!osxmm) s.cr4 &= ~CR4_OSXMMEXCPT;
        s.fpu.mxcsr = 0x1f80 & ~0x200; /* ZM clear */
        float one = 1.0f, zero = 0.0f;
        memcpy(&s.fpu.xmm[0].d[0], &one, 4);
        memcpy(&s.fpu.xmm[1].d[0], &zero, 4);
        RUN(&s, 0x90, 0xf3, 0x0f, 0x5e, 0xc1); /* nop; divss xmm0,xmm1 */
        assert_exception(&s, osxmm ? 19 : 6, CODE_BASE + 1);
        assert_int_equal(s.fpu.xmm[0].d[0], 0x3f800000u); /* destination unchanged */
        assert_int_equal(s.fpu.mxcsr, (0x1f80 & ~0x200) | 0x04);
    }
}

static void test_ts_nm(void **st)
{
    struct x86_state s;
    base_state(&s);
    s.cr0 |= CR0_TS;
    RUN(&s, 0x66, 0x0f, 0xef, 0xc0); /* pxor xmm0,xmm0 */
    assert_exception(&s, 7, CODE_BASE);
}

static void test_comisd_flags(void **st)
{
    struct x86_state s;
    base_state(&s);
    double a = 1.5, b = 2.5;
    memcpy(&s.fpu.xmm[0].q[0], &a, 8);
    memcpy(&s.fpu.xmm[1].q[0], &b, 8);
    s.fpu.xmm[2].q[0] = 0x7ff8000000000000ull; /* QNaN */
    RUN(&s, 0x66, 0x0f, 0x2f, 0xc1,            /* comisd xmm0,xmm1: less -> CF */
        0x9c, 0x5b,                            /* pushf; pop ebx */
        0x66, 0x0f, 0x2e, 0xc2,                /* ucomisd xmm0,xmm2: unordered */
        0x9c, 0x59);                           /* pushf; pop ecx */
    assert_int_equal(s.gpr[RBX] & FL_ARITH, FL_CF);
    assert_int_equal(s.gpr[RCX] & FL_ARITH, FL_ZF | FL_PF | FL_CF);
    assert_int_equal(s.fpu.mxcsr, 0x1f80); /* QNaN: no IE for UCOMISD */
}

static void test_shuffles_and_shifts(void **st)
{
    struct x86_state s;
    base_state(&s);
    for (int i = 0; i < 4; i++)
        s.fpu.xmm[1].d[i] = 0x11111111u * (uint32_t)(i + 1);
    s.fpu.xmm[3].q[0] = 0x8000000100020003ull;
    s.fpu.xmm[3].q[1] = 0xfedcba9876543210ull;
    RUN(&s, 0x66, 0x0f, 0x70, 0xc1, 0x1b, /* pshufd xmm0,xmm1,0x1b (reverse) */
        0x66, 0x0f, 0x6f, 0xd3,           /* movdqa xmm2,xmm3 */
        0x66, 0x0f, 0x73, 0xdb, 0x03,     /* psrldq xmm3,3 */
        0x66, 0x0f, 0x71, 0xe2, 0x04);    /* psraw xmm2,4 */
    assert_int_equal(s.fpu.xmm[0].d[0], 0x44444444u);
    assert_int_equal(s.fpu.xmm[0].d[3], 0x11111111u);
    assert_int_equal(s.fpu.xmm[3].q[0], 0x5432108000000100ull);
    assert_int_equal(s.fpu.xmm[3].q[1], 0x000000fedcba9876ull);
    assert_int_equal(s.fpu.xmm[2].w[3], 0xf800);
    assert_int_equal(s.fpu.xmm[2].w[0], 0x0000);
}

static void test_mmx_aliasing(void **st)
{
    struct x86_state s;
    base_state(&s);
    s.fpu.fsw = 5u << 11; /* TOP = 5 */
    put64(DATA_BASE, 0x0102030405060708ull);
    RUN(&s, 0x0f, 0x6f, 0x0d, 0x00, 0x20, 0x00, 0x00, /* movq mm1,[0x2000] */
        0x0f, 0xfc, 0xc9,                             /* paddb mm1,mm1 */
        0x0f, 0x7e, 0xc8,                             /* movd eax,mm1 */
        0x0f, 0x63, 0xc9);                            /* packsswb mm1,mm1 */
    assert_int_equal((uint32_t)s.gpr[RAX], 0x0a0c0e10u);
    uint64_t mm1;
    memcpy(&mm1, s.fpu.st[1], 8);
    assert_int_equal(mm1, 0x7f7f7f7f7f7f7f7full); /* every word saturates */
    assert_int_equal(s.fpu.st[1][8], 0xff);
    assert_int_equal(s.fpu.st[1][9], 0xff);
    assert_int_equal(s.fpu.fsw & 0x3800, 0);
    /* all non-empty: MM1 is special (exponent all ones), the other (zero) registers zero */
    assert_int_equal(s.fpu.ftw, 0x5559);

    base_state(&s);
    RUN(&s, 0x0f, 0xef, 0xc0, 0x0f, 0x77); /* pxor mm0,mm0; emms */
    assert_int_equal(s.fpu.ftw, 0xffff);
}

static void test_fxsave_fxrstor(void **st)
{
    struct x86_state s;
    base_state(&s);
    s.fpu.mxcsr = 0x1f80 | 0x6000 | 0x40; /* RZ, DAZ */
    for (int i = 0; i < 8; i++)
        s.fpu.xmm[i].q[0] = s.fpu.xmm[i].q[1] = 0x0101010101010101ull * (uint64_t)(i + 1);
    memset(ram(FX_BASE), 0xaa, 512);
    RUN(&s, 0x0f, 0xae, 0x05, 0x00, 0x40, 0x00, 0x00, /* fxsave [0x4000] */
        0x66, 0x0f, 0xef, 0xc0,                       /* pxor xmm0,xmm0 */
        0x0f, 0xae, 0x0d, 0x00, 0x40, 0x00, 0x00);    /* fxrstor [0x4000] */
    uint32_t mx, mask;
    memcpy(&mx, ram(FX_BASE + 24), 4);
    memcpy(&mask, ram(FX_BASE + 28), 4);
    assert_int_equal(mx, 0x1f80 | 0x6000 | 0x40);
    assert_int_equal(mask, 0xffff);
    assert_int_equal(ram(FX_BASE)[4], 0); /* abridged tags: all empty */
    assert_memory_equal(ram(FX_BASE + 160), &s.fpu.xmm[0], 16);
    assert_int_equal(s.fpu.xmm[0].q[0], 0x0101010101010101ull);
    assert_int_equal(ram(FX_BASE + 300)[0], 0xaa); /* XMM8+ not written outside 64-bit */
    assert_int_equal(ram(FX_BASE + 500)[0], 0xaa);

    /* a reserved MXCSR bit in the image: #GP, nothing restored */
    base_state(&s);
    uint32_t bad = 0x10000 | 0x1f80;
    memcpy(ram(FX_BASE + 24), &bad, 4);
    RUN(&s, 0x0f, 0xae, 0x0d, 0x00, 0x40, 0x00, 0x00);
    assert_exception(&s, 13, CODE_BASE);
    assert_int_equal(s.fpu.xmm[0].q[0], 0);
}

/* 16-byte accesses across a page boundary: split reads and writes, and a store
 * whose second page is not present must fault without writing the first page */
static void test_page_split(void **st)
{
    struct x86_state s;
    base_state(&s);
    /* 32-bit paging: identity-map the first 4 MiB with 4 KiB pages, 0xd000 absent */
    put64(PT_BASE, 0); /* clear the PDE slot pair */
    uint32_t pde = (PT_BASE + 0x1000) | 3;
    memcpy(ram(PT_BASE), &pde, 4);
    for (uint32_t i = 0; i < 1024; i++) {
        uint32_t pte = i == 0xd ? 0 : (i << 12) | 3;
        memcpy(ram(PT_BASE + 0x1000 + 4 * i), &pte, 4);
    }
    s.cr3 = PT_BASE;
    s.cr0 |= CR0_PG;
    for (int i = 0; i < 16; i++)
        ram(0x2ff8)[i] = (uint8_t)(0x40 + i);
    memset(ram(0xcff8), 0x11, 8);
    s.fpu.xmm[2].q[0] = 0x2222222222222222ull;
    s.fpu.xmm[2].q[1] = 0x3333333333333333ull;
    RUN(&s, 0xf3, 0x0f, 0x6f, 0x05, 0xf8, 0x2f, 0x00, 0x00, /* movdqu xmm0,[0x2ff8] */
        0x0f, 0x11, 0x05, 0xfc, 0x3f, 0x00, 0x00,           /* movups [0x3ffc],xmm0 */
        0x0f, 0x11, 0x15, 0xf8, 0xcf, 0x00, 0x00);          /* movups [0xcff8],xmm2: #PF */
    assert_int_equal(s.fpu.xmm[0].q[0], 0x4746454443424140ull);
    assert_int_equal(s.fpu.xmm[0].q[1], 0x4f4e4d4c4b4a4948ull);
    assert_memory_equal(ram(0x3ffc), ram(0x2ff8), 16);
    assert_exception(&s, 14, CODE_BASE + 15);
    assert_int_equal(s.cr2, 0xd000);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ram(0xcff8)[i], 0x11);
}

static void test_long_mode_rex(void **st)
{
    struct x86_state s;
    long_state(&s);
    s.gpr[RAX] = 0xfedcba9876543210ull;
    s.gpr[R9] = (uint64_t)-5;
    double big = 1e300;
    memcpy(&s.fpu.xmm[12].q[0], &big, 8);
    s.fpu.xmm[9].q[1] = 0x5555;
    s.fpu.fip = 0x123456789abcull;
    RUN(&s, 0x66, 0x4c, 0x0f, 0x6e, 0xc8,                     /* movq xmm9,rax */
        0xf2, 0x49, 0x0f, 0x2a, 0xd1,                         /* cvtsi2sd xmm2,r9 */
        0xf2, 0x49, 0x0f, 0x2c, 0xcc,                         /* cvttsd2si rcx,xmm12 */
        0xf2, 0x41, 0x0f, 0x2c, 0xd4,                         /* cvttsd2si edx,xmm12 */
        0x66, 0x4c, 0x0f, 0x7e, 0xce,                         /* movq rsi,xmm9 */
        0x48, 0x0f, 0xae, 0x04, 0x25, 0x00, 0x40, 0x00, 0x00, /* fxsave64 [0x4000] */
        0x0f, 0xae, 0x04, 0x25, 0x00, 0x42, 0x00, 0x00);      /* fxsave [0x4200] */
    assert_int_equal(s.fpu.xmm[9].q[0], 0xfedcba9876543210ull);
    assert_int_equal(s.fpu.xmm[9].q[1], 0);
    double r;
    memcpy(&r, &s.fpu.xmm[2].q[0], 8);
    assert_true(r == -5.0);
    assert_int_equal(s.gpr[RCX], 0x8000000000000000ull);
    assert_int_equal(s.gpr[RDX], 0x80000000u);
    assert_int_equal(s.gpr[RSI], 0xfedcba9876543210ull);
    uint64_t fip64, xmm9;
    memcpy(&fip64, ram(FX_BASE + 8), 8);
    memcpy(&xmm9, ram(FX_BASE + 160 + 9 * 16), 8);
    assert_int_equal(fip64, 0x123456789abcull);
    assert_int_equal(xmm9, 0xfedcba9876543210ull);
    uint32_t fip32;
    memcpy(&fip32, ram(FX_BASE + 0x200 + 8), 4);
    assert_int_equal(fip32, 0x56789abcu);
    assert_int_equal(ram(FX_BASE + 0x200 + 12)[0], 0); /* FCS */
}

/* ---- the lazy host MXCSR: the guest's MXCSR lives in the host's while guest
 * code runs (with every exception masked); these check the switch points ---- */

static const double D_ONE = 1.0, D_THREE = 3.0, D_TINY = 0x1p-60;
static void set_d(struct x86_state *s, int r, double v)
{
    memcpy(&s->fpu.xmm[r].q[0], &v, 8);
}
static double get_d(const struct x86_state *s, int r)
{
    double v;
    memcpy(&v, &s->fpu.xmm[r].q[0], 8);
    return v;
}
static uint32_t ram32(uint32_t gpa)
{
    uint32_t v;
    memcpy(&v, ram(gpa), 4);
    return v;
}
static void put32(uint32_t gpa, uint32_t v)
{
    memcpy(ram(gpa), &v, 4);
}

/* CPUID's one-time TSC calibration computes with doubles on the vCPU thread: it
 * must not raise flags in the guest's MXCSR (first CPUID of the process) */
static void test_mxcsr_cpuid(void **st)
{
    struct x86_state s;
    base_state(&s);
    s.fpu.mxcsr = 0x1f80 | 0x2000;                 /* RD */
    RUN(&s, 0x31, 0xc0,                            /* xor eax,eax */
        0x0f, 0xa2,                                /* cpuid */
        0x0f, 0xae, 0x1d, 0x00, 0x20, 0x00, 0x00); /* stmxcsr [0x2000] */
    assert_int_equal(ram32(DATA_BASE), 0x3f80);
    assert_int_equal(s.fpu.mxcsr, 0x3f80);
}

/* Flags raised by guest instructions reach STMXCSR; LDMXCSR changes rounding
 * for the next instruction and clears flags for good */
static void test_mxcsr_ld_st(void **st)
{
    struct x86_state s;
    base_state(&s);
    set_d(&s, 0, D_ONE);
    set_d(&s, 1, D_THREE);
    set_d(&s, 2, D_ONE);
    set_d(&s, 3, D_TINY);
    set_d(&s, 4, D_ONE);
    put32(DATA_BASE + 4, 0x5f80);                  /* RU, no flags */
    RUN(&s, 0xf2, 0x0f, 0x5e, 0xc1,                /* divsd xmm0,xmm1: PE */
        0x0f, 0xae, 0x1d, 0x00, 0x20, 0x00, 0x00,  /* stmxcsr [0x2000] */
        0x0f, 0xae, 0x15, 0x04, 0x20, 0x00, 0x00,  /* ldmxcsr [0x2004] */
        0xf2, 0x0f, 0x58, 0xd3,                    /* addsd xmm2,xmm3: rounds up, PE */
        0x0f, 0xae, 0x1d, 0x08, 0x20, 0x00, 0x00,  /* stmxcsr [0x2008] */
        0x0f, 0xae, 0x15, 0x04, 0x20, 0x00, 0x00,  /* ldmxcsr [0x2004] */
        0xf2, 0x0f, 0x58, 0xe4,                    /* addsd xmm4,xmm4: exact */
        0x0f, 0xae, 0x1d, 0x0c, 0x20, 0x00, 0x00); /* stmxcsr [0x200c] */
    assert_int_equal(ram32(DATA_BASE), 0x1fa0);
    assert_true(get_d(&s, 2) == 1.0 + 0x1p-52);
    assert_int_equal(ram32(DATA_BASE + 8), 0x5fa0);
    assert_int_equal(ram32(DATA_BASE + 12), 0x5f80);
    assert_int_equal(s.fpu.mxcsr, 0x5f80);
    assert_true(get_d(&s, 4) == 2.0);
}

/* Flags reach get_state when emu_run returns; set_state's MXCSR (rounding and
 * cleared flags) is the one the next run uses; the host's own MXCSR is the same
 * before and after a run */
static void test_mxcsr_run_boundaries(void **st)
{
    uint32_t host = _mm_getcsr();
    _mm_setcsr(0x7f80); /* host: RZ, no flags */
    struct x86_state s;
    base_state(&s);
    set_d(&s, 0, D_ONE);
    set_d(&s, 1, D_THREE);
    RUN(&s, 0xf2, 0x0f, 0x5e, 0xc1); /* divsd xmm0,xmm1 (RN) */
    uint32_t after1 = _mm_getcsr();
    double q = get_d(&s, 0);
    uint32_t m1 = s.fpu.mxcsr;

    base_state(&s);
    s.fpu.mxcsr = 0x3f80; /* RD */
    set_d(&s, 0, D_ONE);
    set_d(&s, 1, D_TINY);
    RUN(&s, 0xf2, 0x0f, 0x5c, 0xc1); /* subsd xmm0,xmm1: 1 - 2^-53 */
    double d = get_d(&s, 0);
    uint32_t m2 = s.fpu.mxcsr;

    base_state(&s);
    set_d(&s, 0, D_ONE);
    RUN(&s, 0xf2, 0x0f, 0x58, 0xc0); /* addsd xmm0,xmm0: exact */
    uint32_t m3 = s.fpu.mxcsr;
    uint32_t after3 = _mm_getcsr();
    _mm_setcsr(host);

    assert_int_equal(after1, 0x7f80);
    assert_true(q == 1.0 / 3.0); /* RN although the host ran RZ */
    assert_int_equal(m1, 0x1fa0);
    assert_true(d == 1.0 - 0x1p-53);
    assert_int_equal(m2, 0x3fa0);
    assert_int_equal(m3, 0x1f80);
    assert_int_equal(after3, 0x7f80);
}

/* Port and MMIO callbacks run under the host's MXCSR; their floating point
 * leaves the guest's flags alone, and the guest's rounding is back after them */
static void test_mxcsr_device_callbacks(void **st)
{
    uint32_t host = _mm_getcsr();
    _mm_setcsr(0x1f80);
    struct x86_state s;
    base_state(&s);
    set_d(&s, 2, D_ONE);
    set_d(&s, 3, D_TINY);
    put32(DATA_BASE, 0x5f80); /* RU */
    io_calls = 0;
    RUN(&s, 0x0f, 0xae, 0x15, 0x00, 0x20, 0x00, 0x00, /* ldmxcsr [0x2000] */
        0xe6, 0x80,                                   /* out 0x80,al */
        0x0f, 0xae, 0x1d, 0x04, 0x20, 0x00, 0x00,     /* stmxcsr [0x2004] */
        0x8b, 0x0d, 0x00, 0x00, 0x20, 0x00,           /* mov ecx,[0x200000]: MMIO */
        0x0f, 0xae, 0x1d, 0x08, 0x20, 0x00, 0x00,     /* stmxcsr [0x2008] */
        0xf2, 0x0f, 0x58, 0xd3);                      /* addsd xmm2,xmm3: rounds up */
    uint32_t seen = io_csr;
    uint32_t after = _mm_getcsr();
    _mm_setcsr(host);
    assert_int_equal(io_calls, 2);
    assert_int_equal(seen & ~0x3fu, 0x1f80); /* the host's RN, not the guest's RU */
    assert_int_equal(ram32(DATA_BASE + 4), 0x5f80);
    assert_int_equal(ram32(DATA_BASE + 8), 0x5f80);
    assert_int_equal((uint32_t)s.gpr[RCX], 0xffffffffu);
    assert_true(get_d(&s, 2) == 1.0 + 0x1p-52);
    assert_int_equal(s.fpu.mxcsr, 0x5fa0);
    assert_int_equal(after & ~0x3fu, 0x1f80);
}

/* The run loop's interrupt acknowledge (device code) runs under the host's MXCSR */
static void test_mxcsr_irq_ack(void **st)
{
    uint32_t host = _mm_getcsr();
    _mm_setcsr(0x1f80);
    struct x86_state s;
    base_state(&s);
    s.fpu.mxcsr = 0x5f80; /* RU */
    s.rflags |= FL_IF;
    irq_calls = 0;
    vcpu_post(cpu, VCPU_REQ_IRQ);
    RUN(&s, 0x0f, 0xae, 0x1d, 0x00, 0x20, 0x00, 0x00); /* stmxcsr [0x2000] */
    uint32_t seen = irq_csr;
    _mm_setcsr(host);
    assert_int_equal(irq_calls, 1);
    assert_int_equal(seen & ~0x3fu, 0x1f80);
    assert_int_equal(ram32(DATA_BASE), 0x5f80);
    assert_int_equal(s.fpu.mxcsr, 0x5f80);
}

/* An exception leaves an instruction by longjmp: flags raised before it stay */
static void test_mxcsr_exception_exit(void **st)
{
    struct x86_state s;
    base_state(&s);
    set_d(&s, 0, D_ONE);
    set_d(&s, 1, D_THREE);
    RUN(&s, 0xf2, 0x0f, 0x5e, 0xc1,               /* divsd xmm0,xmm1: PE */
        0x0f, 0x28, 0x15, 0x01, 0x20, 0x00, 0x00, /* movaps xmm2,[0x2001]: #GP */
        0xf2, 0x0f, 0x5e, 0xc1);
    assert_exception(&s, 13, CODE_BASE + 4);
    assert_int_equal(s.fpu.mxcsr, 0x1fa0);
}

/* An event delivered by the run loop (under the host's MXCSR) faults: the
 * longjmp back into emu_run must give the host MXCSR back to the guest. Here an
 * NMI finds its gate not present; the #NP handler does FP under the guest's RU. */
static void test_mxcsr_fault_in_delivery(void **st)
{
    const uint32_t np_stub = 0x6000;
    static const uint8_t code[] = {0xf2, 0x0f, 0x58, 0xd3,    /* addsd xmm2,xmm3 */
                                   0xb8, 0x0b, 0,    0,    0, /* mov eax,11 */
                                   0xf4};                     /* hlt */
    memcpy(ram(np_stub), code, sizeof(code));
    uint64_t gate2, gate11;
    memcpy(&gate2, ram(IDT_BASE + 8 * 2), 8);
    memcpy(&gate11, ram(IDT_BASE + 8 * 11), 8);
    put64(IDT_BASE + 8 * 2, gate2 & ~(0x80ull << 40)); /* P = 0 */
    put64(IDT_BASE + 8 * 11, (np_stub & 0xffff) | (0x08ull << 16) | (0x8e00ull << 32));

    struct x86_state s;
    base_state(&s);
    s.fpu.mxcsr = 0x5f80; /* RU */
    set_d(&s, 2, D_ONE);
    set_d(&s, 3, D_TINY);
    vcpu_post(cpu, VCPU_REQ_NMI);
    RUN(&s, 0x90);
    put64(IDT_BASE + 8 * 2, gate2);
    put64(IDT_BASE + 8 * 11, gate11);

    assert_int_equal((uint32_t)s.gpr[RAX], 11);
    assert_true(get_d(&s, 2) == 1.0 + 0x1p-52);
    assert_int_equal(s.fpu.mxcsr, 0x5fa0);
}

/* FXSAVE stores the accumulated flags; FXRSTOR's MXCSR takes effect at once */
static void test_mxcsr_fxsave_fxrstor(void **st)
{
    struct x86_state s;
    base_state(&s);
    set_d(&s, 0, D_ONE);
    set_d(&s, 1, D_THREE);
    RUN(&s, 0xf2, 0x0f, 0x5e, 0xc1,                /* divsd xmm0,xmm1: PE */
        0x0f, 0xae, 0x05, 0x00, 0x40, 0x00, 0x00); /* fxsave [0x4000] */
    assert_int_equal(ram32(FX_BASE + 24), 0x1fa0);

    base_state(&s);
    put32(FX_BASE + 24, 0x3f80);                      /* RD, no flags */
    memcpy(ram(FX_BASE + 160), &D_ONE, 8);            /* image: xmm0 = 1.0 */
    memcpy(ram(FX_BASE + 160 + 16), &D_TINY, 8);      /* xmm1 = 2^-60 */
    RUN(&s, 0x0f, 0xae, 0x0d, 0x00, 0x40, 0x00, 0x00, /* fxrstor [0x4000] */
        0x0f, 0xae, 0x1d, 0x00, 0x20, 0x00, 0x00,     /* stmxcsr [0x2000] */
        0xf2, 0x0f, 0x5c, 0xc1);                      /* subsd xmm0,xmm1: 1 - 2^-53 */
    assert_int_equal(ram32(DATA_BASE), 0x3f80);
    assert_true(get_d(&s, 0) == 1.0 - 0x1p-53);
    assert_int_equal(s.fpu.mxcsr, 0x3fa0);
}

/* Some exception unmasked: the precise path; its flags merge with those of
 * masked instructions */
static void test_mxcsr_unmasked_mix(void **st)
{
    struct x86_state s;
    base_state(&s);
    s.fpu.mxcsr = 0x1f80 & ~0x200; /* ZM clear */
    set_d(&s, 0, D_ONE);
    set_d(&s, 1, D_THREE);
    set_d(&s, 2, 0.0);
    RUN(&s, 0xf2, 0x0f, 0x5e, 0xc1, /* divsd xmm0,xmm1: PE, no trap */
        0xf2, 0x0f, 0x5e, 0xc2);    /* divsd xmm0,xmm2: #XM */
    assert_exception(&s, 19, CODE_BASE + 4);
    assert_int_equal(s.fpu.mxcsr, (0x1f80 & ~0x200) | 0x20 | 0x04);
    assert_true(get_d(&s, 0) == 1.0 / 3.0);

    /* LDMXCSR unmasks after masked instructions raised flags */
    base_state(&s);
    set_d(&s, 0, D_ONE);
    set_d(&s, 1, D_THREE);
    set_d(&s, 2, 0.0);
    put32(DATA_BASE, 0x1f80 & ~0x200);
    RUN(&s, 0xf2, 0x0f, 0x5e, 0xc1,               /* divsd xmm0,xmm1: PE */
        0x0f, 0xae, 0x15, 0x00, 0x20, 0x00, 0x00, /* ldmxcsr [0x2000]: flags cleared */
        0xf2, 0x0f, 0x59, 0xc1,                   /* mulsd xmm0,xmm1: PE */
        0xf2, 0x0f, 0x5e, 0xc2);                  /* divsd xmm0,xmm2: #XM */
    assert_exception(&s, 19, CODE_BASE + 15);
    assert_int_equal(s.fpu.mxcsr, (0x1f80 & ~0x200) | 0x20 | 0x04);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxcsr_cpuid), /* first: the first CPUID of the process */
        cmocka_unit_test(test_movdqu_pcmpeqb_pmovmskb),
        cmocka_unit_test(test_movaps_misaligned_gp),
        cmocka_unit_test(test_addsd_rounding),
        cmocka_unit_test(test_cvttsd2si_indefinite),
        cmocka_unit_test(test_divss_zero_masked),
        cmocka_unit_test(test_divss_zero_unmasked),
        cmocka_unit_test(test_ts_nm),
        cmocka_unit_test(test_comisd_flags),
        cmocka_unit_test(test_shuffles_and_shifts),
        cmocka_unit_test(test_mmx_aliasing),
        cmocka_unit_test(test_fxsave_fxrstor),
        cmocka_unit_test(test_page_split),
        cmocka_unit_test(test_long_mode_rex),
        cmocka_unit_test(test_mxcsr_ld_st),
        cmocka_unit_test(test_mxcsr_run_boundaries),
        cmocka_unit_test(test_mxcsr_device_callbacks),
        cmocka_unit_test(test_mxcsr_irq_ack),
        cmocka_unit_test(test_mxcsr_exception_exit),
        cmocka_unit_test(test_mxcsr_fault_in_delivery),
        cmocka_unit_test(test_mxcsr_fxsave_fxrstor),
        cmocka_unit_test(test_mxcsr_unmasked_mix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
