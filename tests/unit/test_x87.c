/* x87 unit tests. Most of them are differential: the same instruction bytes run
 * natively on this host and in an emu vCPU (32-bit protected mode, flat), with
 * code and data at the same addresses on both sides, and the resulting memory
 * (an FNSAVE image of the whole FPU state, stored operands, EFLAGS via LAHF/SETO,
 * AX) must match byte for byte. The code only addresses memory as [ebx+disp32],
 * which encodes the same in 32- and 64-bit mode. The rest checks what the host
 * cannot show from user mode: #MF, #NM and #UD delivery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/tiny_guest.h"
#include "cpu/cpu.h"
#include "memory/guest_mem.h"

#define CODE_ADDR 0x100000u
#define DATA_ADDR 0x200000u
#define DATA_SIZE 0x1000u
#define GUEST_RAM (4u << 20)
#define HOST_CS   0x33 /* user code selector of x86-64 Linux */
#define GUEST_CS  0x30

/* data layout (offsets from DATA_ADDR) */
#define D_CW    0x000 /* FCW loaded by FLDCW */
#define D_OPS   0x010 /* 8 slots of 16 bytes: 80-bit values pushed before the op */
#define D_MEM   0x100 /* memory operand of the instruction under test */
#define D_SAVE  0x200 /* FNSAVE image after the instruction */
#define D_FLAGS 0x300 /* +0 LAHF, +1 SETO, +2 AH loaded by SAHF, +4 AX */
#define D_ENV   0x400 /* input image for FRSTOR/FLDENV tests */
#define D_OUT   0x500 /* extra stores */
#define D_INIT  0x700 /* FRSTOR image the prologue starts from */

/* guest IDT/GDT for the exception tests */
#define GDT_ADDR 0x1000u
#define IDT_ADDR 0x2000u
#define HND_ADDR 0x3000u /* handler for vector v at HND_ADDR + 8v: mov eax,v; hlt */

static struct guest_mem mem;
static struct vcpu *vcpu;
static uint8_t *host_code, *host_data;
static uint64_t rng_state = 0x5eed1234abcdull;
static int ncases = 400;

static void io_nop(void *ctx, struct cpu_io *io)
{
    if (!io->write) io->data = ~0ull;
}
static int irq_none(void *ctx)
{
    return -1;
}
static const struct cpu_exit_ops exit_ops = {.io = io_nop, .irq_ack = irq_none};

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static unsigned rndn(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* ---- code builder ---- */

struct code {
    uint8_t b[256];
    int n;
};

static void emit(struct code *c, const uint8_t *b, int n)
{
    memcpy(c->b + c->n, b, n);
    c->n += n;
}
static void emit2(struct code *c, uint8_t a, uint8_t b)
{
    emit(c, (uint8_t[]){a, b}, 2);
}
/* opcode bytes, then ModRM [ebx+disp32] with /digit */
static void emit_m(struct code *c, const uint8_t *op, int nop, int digit, uint32_t off)
{
    emit(c, op, nop);
    uint8_t m[5] = {(uint8_t)(0x83 | digit << 3)};
    memcpy(m + 1, &off, 4);
    emit(c, m, 5);
}
static void emit_m1(struct code *c, uint8_t op, int digit, uint32_t off)
{
    emit_m(c, &op, 1, digit, off);
}

/* EFLAGS from the data image: both sides start from the same CF PF ZF (FCMOVcc) */
static void emit_flags_in(struct code *c)
{
    emit_m1(c, 0x8a, 4, D_FLAGS + 2); /* mov ah, [flags+2] */
    emit(c, (uint8_t[]){0x9e}, 1);    /* sahf */
}

/* Starts from FRSTOR of D_INIT (see with_stack) rather than FNINIT + FLDs: FNINIT
 * leaves the old register contents, which FNSAVE shows for empty registers and
 * which differ between the host (where the emulator runs too) and the guest; and
 * FLD would clear C1, which the instruction under test may have to keep. */
static void emit_prologue(struct code *c)
{
    emit_m1(c, 0xdd, 4, D_INIT); /* frstor */
    emit_m1(c, 0xd9, 5, D_CW);   /* fldcw */
    emit_flags_in(c);
}

/* FNSAVE (no-wait: a pending unmasked exception is fine), then the flags and AX */
static void emit_epilogue(struct code *c)
{
    emit_m1(c, 0xdd, 6, D_SAVE);                           /* fnsave */
    emit(c, (uint8_t[]){0x9f}, 1);                         /* lahf */
    emit_m1(c, 0x88, 4, D_FLAGS);                          /* mov [flags], ah */
    emit_m(c, (uint8_t[]){0x0f, 0x90}, 2, 0, D_FLAGS + 1); /* seto */
    emit_m(c, (uint8_t[]){0x66, 0x89}, 2, 0, D_FLAGS + 4); /* mov [flags+4], ax */
}

/* ---- the two runs ---- */

static void run_native(const struct code *c)
{
    memcpy(host_code, c->b, c->n);
    host_code[c->n] = 0xc3;
    uint64_t a = (uint64_t)(uintptr_t)host_code, d = (uint64_t)(uintptr_t)host_data;
    /* skip the red zone: the call pushes below rsp */
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "push %%rbx\n\t"
                     "mov %%rdx, %%rbx\n\t"
                     "call *%%rax\n\t"
                     "pop %%rbx\n\t"
                     "add $128, %%rsp"
                     : "+a"(a), "+d"(d)
                     :
                     : "memory", "cc");
}

static uint8_t *gptr(uint64_t gpa)
{
    return guest_mem_host(&mem, gpa);
}

static void guest_state(struct x86_state *s, uint64_t rip)
{
    x86_state_flat32(s, rip);
    s->cr0 |= CR0_NE;
    s->gpr[RBX] = DATA_ADDR;
    s->gpr[RSP] = 0x8000;
    s->gdtr.base = GDT_ADDR;
    s->gdtr.limit = 0x17;
    s->idtr.base = IDT_ADDR;
    s->idtr.limit = 32 * 8 - 1;
    /* the host's DS selector, so FDS in the FNSAVE images agrees; CS must keep RPL 0
     * (CPL 0 for HLT), differential() maps the host's 0x33 to GUEST_CS */
    s->seg[SEG_CS].sel = GUEST_CS;
    s->seg[SEG_DS].sel = 0;
}

static void put_code(const struct code *c, uint8_t end)
{
    memcpy(gptr(CODE_ADDR), c->b, c->n);
    gptr(CODE_ADDR)[c->n] = end;
    guest_mem_note_write(&mem, CODE_ADDR, c->n + 1);
}

/* Runs until HLT; returns the state. The code page is rewritten for every case and
 * superseded decoded blocks stay on their hash chain until the block arena fills,
 * so a fresh vCPU every few hundred runs keeps the lookups short. */
static void run_guest_state(const struct x86_state *in, struct x86_state *out)
{
    static unsigned runs;
    if (++runs % 256 == 0) {
        emu_cpu_impl.destroy(vcpu);
        vcpu = emu_cpu_impl.create(&mem, 0, &exit_ops, NULL);
        assert_non_null(vcpu);
    }
    vcpu->impl->set_state(vcpu, in);
    assert_int_equal(vcpu_run(vcpu), VCPU_EXIT_HLT);
    vcpu->impl->get_state(vcpu, out);
}

static void run_guest(const struct code *c, struct x86_state *out)
{
    struct x86_state s;
    put_code(c, 0xf4);
    guest_state(&s, CODE_ADDR);
    run_guest_state(&s, out);
}

static void dump(const char *what, const uint8_t *p, int n)
{
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* Native run from the data image `init`. The host's FCS (0x33) is mapped to the
 * guest's when the guest recorded GUEST_CS there. */
static void native_from(const struct code *c, const uint8_t *init, const uint8_t *g)
{
    memcpy(host_data, init, DATA_SIZE);
    run_native(c);
    uint16_t hcs, gcs;
    memcpy(&hcs, host_data + D_SAVE + 16, 2);
    memcpy(&gcs, g + D_SAVE + 16, 2);
    if (hcs == HOST_CS && gcs == GUEST_CS) memcpy(host_data + D_SAVE + 16, &gcs, 2);
}

/* Runs c on both sides from the data image `init`; returns true when they agree. */
static bool differential(const struct code *c, const uint8_t *init, const char *name)
{
    memcpy(gptr(DATA_ADDR), init, DATA_SIZE);
    struct x86_state out;
    run_guest(c, &out);
    const uint8_t *g = gptr(DATA_ADDR);
    native_from(c, init, g);
    /* once more natively if they differ: a preemption between two instructions can
     * clear the host's FIP/FDP/FOP (AMD saves them only while an exception is
     * pending; seen here a few times per million runs) */
    if (memcmp(g, host_data, DATA_SIZE)) native_from(c, init, g);
    if (!memcmp(g, host_data, DATA_SIZE) && out.rip == CODE_ADDR + c->n + 1) return true;
    fprintf(stderr, "x87 mismatch: %s (rip %#llx, end %#x)\n", name, (unsigned long long)out.rip,
            CODE_ADDR + c->n + 1);
    dump("code", c->b, c->n);
    dump("cw", init + D_CW, 2);
    for (int k = 0; k < 3; k++)
        dump("op", init + D_OPS + 16 * k, 10);
    dump("mem in", init + D_MEM, 10);
    for (unsigned off = 0; off < DATA_SIZE; off += 16) {
        if (memcmp(g + off, host_data + off, 16)) {
            fprintf(stderr, "  at +%#x\n", off);
            dump("host ", host_data + off, 16);
            dump("guest", g + off, 16);
        }
    }
    return false;
}

/* ---- random operands, biased to the edges ---- */

static void put_f80(uint8_t *p, int sign, int exp, uint64_t m)
{
    uint16_t se = (uint16_t)((sign << 15) | (exp & 0x7fff));
    memcpy(p, &m, 8);
    memcpy(p + 8, &se, 2);
}

static void rand_f80(uint8_t *p)
{
    int s = (int)rndn(2);
    uint64_t m = rnd() | (1ull << 63);
    switch (rndn(14)) {
    case 0: put_f80(p, s, 0, 0); break;                            /* zero */
    case 1: put_f80(p, s, 0x7fff, 1ull << 63); break;              /* infinity */
    case 2: put_f80(p, s, 0x7fff, m | (1ull << 62)); break;        /* QNaN */
    case 3: put_f80(p, s, 0x7fff, (m & ~(1ull << 62)) | 1); break; /* SNaN */
    case 4: put_f80(p, s, 0, m >> (1 + rndn(63))); break;          /* denormal */
    case 5: put_f80(p, s, 0, m); break;                            /* pseudo-denormal */
    case 6: put_f80(p, s, 1 + (int)rndn(0x7ffe), m >> 1); break;   /* unnormal */
    case 7: put_f80(p, s, 0x7fff, m >> 1); break;                  /* pseudo-NaN/inf */
    case 8: put_f80(p, s, (int)rndn(40) + (rndn(2) ? 1 : 0x7ffe - 39), m); break; /* extremes */
    case 9: put_f80(p, s, 0x3fff + (int)rndn(64), m & ~0ull << rndn(64)); break;  /* integers */
    case 10: put_f80(p, s, 0x3fff, 1ull << 63); break;                            /* 1.0 */
    case 11: put_f80(p, (int)rndn(2), (int)rndn(0x8000), rnd()); break;           /* any bits */
    default: put_f80(p, s, 0x3fff - 70 + (int)rndn(140), m); break;               /* ordinary */
    }
}

static void rand_int(uint8_t *p, int size)
{
    static const int64_t edges[] = {0,         1,         -1,        2,         3,
                                    10,        100,       INT16_MAX, INT16_MIN, INT32_MAX,
                                    INT32_MIN, INT64_MAX, INT64_MIN, 0x12345678};
    int64_t v = rndn(3) ? edges[rndn(sizeof(edges) / sizeof(edges[0]))] : (int64_t)rnd();
    memcpy(p, &v, size);
}

static void rand_real(uint8_t *p, int size)
{
    uint64_t v = rnd();
    int expbits = size == 4 ? 8 : 11, mbits = size * 8 - 1 - expbits;
    uint64_t emax = (1ull << expbits) - 1;
    uint64_t e;
    switch (rndn(6)) {
    case 0: e = 0; break;
    case 1: e = emax; break;
    case 2:
        e = 0;
        v &= (1ull << mbits) - 1;
        v >>= rndn(mbits);
        break;
    default: e = (emax >> 1) - 30 + rndn(60); break;
    }
    v = (v & ((1ull << mbits) - 1)) | e << mbits | (rnd() & 1ull) << (size * 8 - 1);
    memcpy(p, &v, size);
}

static void rand_bcd(uint8_t *p)
{
    for (int i = 0; i < 9; i++) /* mostly valid digits */
        p[i] = rndn(8) ? (uint8_t)(rndn(10) << 4 | rndn(10)) : (uint8_t)rnd();
    p[9] = rndn(2) ? 0x80 : 0;
}

/* D8/D9/DC/DD address reals, DA/DB/DE/DF integers, except the 80-bit forms. */
static void rand_mem(uint8_t *p, int esc, int size)
{
    memset(p, 0, 16);
    if (size == 10 && esc == 7)
        rand_bcd(p);
    else if (size == 10)
        rand_f80(p);
    else if (esc == 0 || esc == 1 || esc == 4 || esc == 5)
        rand_real(p, size);
    else
        rand_int(p, size);
}

static uint16_t rand_cw(void)
{
    if (rndn(8) == 0) return (uint16_t)rnd(); /* reserved bits too */
    uint16_t cw = (uint16_t)(rndn(4) << 8 | rndn(4) << 10 | 0x40);
    cw |= rndn(3) ? 0x3f : (uint16_t)rndn(64);
    return cw;
}

static void rand_inputs(uint8_t *d)
{
    memset(d, 0, DATA_SIZE);
    uint16_t cw = rand_cw();
    memcpy(d + D_CW, &cw, 2);
    for (int k = 0; k < 8; k++)
        rand_f80(d + D_OPS + 16 * k);
    d[D_FLAGS + 2] = (uint8_t)rnd(); /* CF PF ZF for FCMOVcc */
    uint8_t *img = d + D_INIT;
    img[0] = 0x7f, img[1] = 0x03;     /* FCW */
    img[5] = (uint8_t)(rnd() & 0x47); /* FSW: random C0..C3, TOP 0 */
    img[8] = img[9] = 0xff;           /* FTW: all empty */
    for (int r = 0; r < 8; r++)
        rand_f80(img + 28 + 10 * r);
}

/* The D_INIT image starts with `depth` registers on the stack: ST(k) = slot k. */
static void with_stack(uint8_t *d, int depth)
{
    uint8_t *img = d + D_INIT;
    uint16_t sw, tw = 0;
    memcpy(&sw, img + 4, 2);
    int top = (8 - depth) & 7;
    sw = (uint16_t)((sw & ~0x3800) | top << 11);
    for (int k = 0; k < 8; k++)
        tw |= (uint16_t)((k < depth ? 0 : 3) << (2 * ((top + k) & 7)));
    memcpy(img + 4, &sw, 2);
    memcpy(img + 8, &tw, 2);
    for (int k = 0; k < depth; k++)
        memcpy(img + 28 + 10 * k, d + D_OPS + 16 * k, 10);
}

static int rand_depth(void)
{
    static const int depth[] = {0, 1, 2, 2, 2, 3, 3, 4, 7, 8, 8};
    return depth[rndn(sizeof(depth) / sizeof(depth[0]))];
}

/* ---- differential tests ---- */

/* Mirrors the table in ops_x87.c: register forms that are numeric (not #UD, not
 * control). The host is the judge of validity (test_invalid checks #UD). */
static bool numeric_reg_form(int esc, int m)
{
    int row = (m >> 3) & 7, i = m & 7;
    switch (esc) {
    case 1:
        if (row == 2) return i == 0;
        if (row == 4) return i == 0 || i == 1 || i == 4 || i == 5;
        return row != 5 || i != 7;
    case 2: return row < 4 || m == 0xe9;
    case 3: return row < 4 || row == 5 || row == 6;
    case 5: return row < 6;
    case 6: return row != 3 || i == 1;
    case 7: return row < 4 || row == 5 || row == 6;
    default: return true;
    }
}

static void test_reg_forms(void **state)
{
    uint8_t *init = malloc(DATA_SIZE);
    int bad = 0;
    for (int esc = 0; esc < 8; esc++) {
        for (int m = 0xc0; m <= 0xff; m++) {
            if (!numeric_reg_form(esc, m)) continue;
            for (int k = 0; k < ncases && bad < 5; k++) {
                struct code c = {.n = 0};
                rand_inputs(init);
                with_stack(init, rand_depth());
                emit_prologue(&c);
                emit2(&c, (uint8_t)(0xd8 + esc), (uint8_t)m);
                emit_epilogue(&c);
                char name[64];
                snprintf(name, sizeof(name), "%02x %02x case %d", 0xd8 + esc, m, k);
                bad += !differential(&c, init, name);
            }
        }
    }
    free(init);
    assert_int_equal(bad, 0);
}

static int mem_size(int esc, int digit)
{
    static const uint8_t sz[8][8] = {
        {4, 4, 4, 4, 4, 4, 4, 4},   {4, 0, 4, 4, 0, 0, 0, 0},   {4, 4, 4, 4, 4, 4, 4, 4},
        {4, 0, 4, 4, 0, 10, 0, 10}, {8, 8, 8, 8, 8, 8, 8, 8},   {8, 0, 8, 8, 0, 0, 0, 0},
        {2, 2, 2, 2, 2, 2, 2, 2},   {2, 0, 2, 2, 10, 8, 10, 8},
    };
    return sz[esc][digit];
}

static void test_mem_forms(void **state)
{
    uint8_t *init = malloc(DATA_SIZE);
    int bad = 0;
    for (int esc = 0; esc < 8; esc++) {
        for (int digit = 0; digit < 8; digit++) {
            int size = mem_size(esc, digit);
            if (!size) continue;
            for (int k = 0; k < ncases * 4 && bad < 5; k++) {
                struct code c = {.n = 0};
                rand_inputs(init);
                rand_mem(init + D_MEM, esc, size);
                memset(init + D_MEM + size, 0xa5, 16 - size); /* catches over-long stores */
                with_stack(init, rand_depth());
                emit_prologue(&c);
                emit_m1(&c, (uint8_t)(0xd8 + esc), digit, D_MEM);
                emit_epilogue(&c);
                char name[64];
                snprintf(name, sizeof(name), "%02x /%d case %d", 0xd8 + esc, digit, k);
                bad += !differential(&c, init, name);
            }
        }
    }
    free(init);
    assert_int_equal(bad, 0);
}

/* Random FRSTOR images (any tags, pending exceptions, pointers), then the
 * environment instructions in both operand sizes. All of them are no-wait, so a
 * pending exception does not trap natively. */
static void test_env_images(void **state)
{
    uint8_t *init = malloc(DATA_SIZE);
    int bad = 0;
    for (int k = 0; k < ncases * 8 && bad < 5; k++) {
        memset(init, 0, DATA_SIZE);
        for (int i = 0; i < 108; i++)
            init[D_ENV + i] = (uint8_t)rnd();
        uint16_t cw = rand_cw(), sw = (uint16_t)rnd();
        memcpy(init + D_ENV, &cw, 2);
        memcpy(init + D_ENV + 4, &sw, 2);
        for (int r = 0; r < 8; r++)
            rand_f80(init + D_ENV + 28 + 10 * r);
        bool o16 = rndn(2);
        struct code c = {.n = 0};
        const uint8_t p66 = 0x66;
        emit_flags_in(&c);
        if (o16) /* a 16-bit image from the random one, then load it back */
            emit_m1(&c, 0xdd, 4, D_ENV);
        emit_m(&c, o16 ? (uint8_t[]){p66, 0xdd} : (uint8_t[]){0xdd}, o16 + 1, o16 ? 6 : 4,
               o16 ? D_OUT + 0x100 : D_ENV);                              /* 66 fnsave or frstor */
        if (o16) emit_m(&c, (uint8_t[]){p66, 0xdd}, 2, 4, D_OUT + 0x100); /* 66 frstor */
        emit_m(&c, o16 ? (uint8_t[]){p66, 0xd9} : (uint8_t[]){0xd9}, o16 + 1, 6,
               D_OUT);                      /* fnstenv */
        emit_m1(&c, 0xd9, 7, D_OUT + 0x40); /* fnstcw */
        emit_m1(&c, 0xdd, 7, D_OUT + 0x42); /* fnstsw */
        emit_m(&c, o16 ? (uint8_t[]){p66, 0xd9} : (uint8_t[]){0xd9}, o16 + 1, 4,
               D_OUT);                      /* fldenv */
        if (rndn(2)) emit2(&c, 0xdb, 0xe2); /* fnclex */
        emit_m1(&c, 0xdd, 7, D_OUT + 0x44);
        emit_epilogue(&c);
        char name[64];
        snprintf(name, sizeof(name), "env case %d", k);
        bad += !differential(&c, init, name);
    }
    free(init);
    assert_int_equal(bad, 0);
}

/* FNSTSW AX after FCOM; FLDCW with reserved bits, possibly unmasking a flag the
 * FCOM set (which leaves it pending: only no-wait instructions follow). */
static void test_control(void **state)
{
    uint8_t *init = malloc(DATA_SIZE);
    int bad = 0;
    for (int k = 0; k < ncases * 4 && bad < 5; k++) {
        rand_inputs(init);
        init[D_CW] |= 0x3f;
        uint16_t cw2 = rndn(2) ? (uint16_t)rnd() : rand_cw();
        memcpy(init + D_OUT + 0x10, &cw2, 2);
        struct code c = {.n = 0};
        with_stack(init, 1 + (int)rndn(3));
        emit_prologue(&c);
        emit2(&c, 0xd8, (uint8_t)(0xd0 + rndn(4))); /* fcom st(i) */
        emit2(&c, 0xdf, 0xe0);                      /* fnstsw ax */
        emit_m(&c, (uint8_t[]){0x66, 0x89}, 2, 0, D_OUT + 0x20);
        emit_m1(&c, 0xdd, 7, D_OUT + 0x22); /* fnstsw m16 */
        emit_m1(&c, 0xd9, 5, D_OUT + 0x10); /* fldcw */
        emit_m1(&c, 0xd9, 7, D_OUT + 0x24); /* fnstcw */
        emit_m1(&c, 0xdd, 7, D_OUT + 0x26);
        emit_epilogue(&c);
        char name[64];
        snprintf(name, sizeof(name), "control case %d", k);
        bad += !differential(&c, init, name);
    }
    free(init);
    assert_int_equal(bad, 0);
}

/* Sequences a libc would run: long double arithmetic chains, FPREM loops,
 * conversions, with a fixed FCW per run. */
static void test_sequences(void **state)
{
    static const uint8_t seq[][2] = {
        {0xd8, 0xc1}, {0xdc, 0xc9}, {0xde, 0xf9}, {0xd9, 0xf8}, {0xd9, 0xfc}, {0xd9, 0xfd},
        {0xd9, 0xc9}, {0xd9, 0xe0}, {0xd9, 0xfa}, {0xde, 0xc1}, {0xd9, 0xc1}, {0xdd, 0xd9},
        {0xd9, 0xf4}, {0xd9, 0xe5}, {0xdb, 0xe9}, {0xd9, 0xf5}, {0xd9, 0xf1}, {0xd9, 0xfe},
    };
    uint8_t *init = malloc(DATA_SIZE);
    int bad = 0;
    for (int k = 0; k < ncases * 4 && bad < 5; k++) {
        rand_inputs(init);
        uint16_t cw = (uint16_t)(0x3f | 0x40 | rndn(4) << 8 | rndn(4) << 10);
        memcpy(init + D_CW, &cw, 2); /* all masked: nothing traps mid-sequence */
        struct code c = {.n = 0};
        with_stack(init, 2 + (int)rndn(5));
        emit_prologue(&c);
        int n = 1 + (int)rndn(12);
        for (int i = 0; i < n; i++) {
            const uint8_t *s = seq[rndn(sizeof(seq) / sizeof(seq[0]))];
            emit2(&c, s[0], s[1]);
        }
        emit_m1(&c, 0xdb, 7, D_OUT);      /* fstp tbyte */
        emit_m1(&c, 0xdd, 2, D_OUT + 16); /* fst qword */
        emit_m1(&c, 0xdf, 7, D_OUT + 32); /* fistp qword */
        emit_epilogue(&c);
        char name[64];
        snprintf(name, sizeof(name), "sequence case %d", k);
        bad += !differential(&c, init, name);
    }
    free(init);
    assert_int_equal(bad, 0);
}

/* 1/3 in long double under every precision and rounding control, against host C. */
static void test_third(void **state)
{
    for (int pc = 0; pc < 4; pc++) {
        for (int rc = 0; rc < 4; rc++) {
            uint16_t cw = (uint16_t)(0x7f | pc << 8 | rc << 10);
            long double host;
            uint16_t old;
            __asm__ volatile("fnstcw %1\n\t"
                             "fldcw %2\n\t"
                             "fld1\n\t"
                             "fildl %3\n\t"
                             ".byte 0xde, 0xf9\n\t" /* fdivp st(1): 1 / 3 */
                             "fldcw %1"
                             : "=t"(host), "=m"(old)
                             : "m"(cw), "m"((int){3}));
            struct code c = {.n = 0};
            uint8_t *d = gptr(DATA_ADDR);
            memset(d, 0, DATA_SIZE);
            memcpy(d + D_CW, &cw, 2);
            d[D_MEM] = 3;
            emit2(&c, 0xdb, 0xe3);
            emit_m1(&c, 0xd9, 5, D_CW);
            emit2(&c, 0xd9, 0xe8);       /* fld1 */
            emit_m1(&c, 0xda, 7, D_MEM); /* fidivr dword: 3 / 1 ... */
            emit2(&c, 0xd9, 0xe8);       /* fld1 */
            emit2(&c, 0xde, 0xf1);       /* fdivrp: 1 / 3 */
            emit_m1(&c, 0xdb, 7, D_OUT);
            struct x86_state out;
            run_guest(&c, &out);
            assert_memory_equal(d + D_OUT, &host, 10);
        }
    }
}

/* ---- exceptions in the guest ---- */

static void setup_idt(void)
{
    uint64_t gdt[3] = {0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull};
    memcpy(gptr(GDT_ADDR), gdt, sizeof(gdt));
    for (uint32_t v = 0; v < 32; v++) {
        uint32_t off = HND_ADDR + 8 * v;
        uint32_t gate[2] = {(0x08u << 16) | (off & 0xffff), (off & 0xffff0000u) | 0x8e00};
        memcpy(gptr(IDT_ADDR + 8 * v), gate, 8);
        uint8_t h[6] = {0xb8, (uint8_t)v, 0, 0, 0, 0xf4};
        memcpy(gptr(off), h, 6);
    }
}

/* Runs code in the guest with CR0 bits; returns the vector taken (or -1) and the
 * faulting EIP through *eip. */
static int guest_exception(const struct code *c, uint64_t cr0_set, uint64_t cr0_clear,
                           uint32_t *eip)
{
    struct x86_state s, out;
    setup_idt();
    put_code(c, 0xf4);
    guest_state(&s, CODE_ADDR);
    s.seg[SEG_CS].sel = 0x08;
    s.seg[SEG_DS].sel = 0x10;
    s.gpr[RAX] = ~0ull;
    s.cr0 = (s.cr0 | cr0_set) & ~cr0_clear;
    run_guest_state(&s, &out);
    if (out.rip == CODE_ADDR + c->n + 1) return -1;
    assert_int_equal(out.rip, HND_ADDR + 8 * (out.gpr[RAX] & 31) + 6);
    memcpy(eip, gptr(out.gpr[RSP]), 4);
    return (int)out.gpr[RAX];
}

static void pending_zero_divide(struct code *c)
{
    uint16_t cw = 0x37b; /* ZE unmasked */
    memcpy(gptr(DATA_ADDR + D_CW), &cw, 2);
    emit2(c, 0xdb, 0xe3);
    emit_m1(c, 0xd9, 5, D_CW);
    emit2(c, 0xd9, 0xe8); /* fld1 */
    emit2(c, 0xd9, 0xee); /* fldz */
    emit2(c, 0xde, 0xf9); /* fdivp: 1/0 */
}

static void test_mf(void **state)
{
    /* the no-wait instructions go through; the next numeric one faults */
    struct code c = {.n = 0};
    uint32_t eip;
    pending_zero_divide(&c);
    emit_m1(&c, 0xdd, 7, D_OUT);     /* fnstsw */
    emit_m1(&c, 0xd9, 7, D_OUT + 2); /* fnstcw */
    emit2(&c, 0xdf, 0xe0);           /* fnstsw ax */
    int at = c.n;
    emit2(&c, 0xd9, 0xe8); /* fld1: #MF */
    assert_int_equal(guest_exception(&c, 0, 0, &eip), EXC_MF);
    assert_int_equal(eip, CODE_ADDR + at);
    uint16_t sw;
    memcpy(&sw, gptr(DATA_ADDR + D_OUT), 2);
    assert_int_equal(sw & 0x80ff, 0x8084); /* B ES ZE */

    /* FWAIT reports it as well; FNCLEX withdraws it */
    c.n = 0;
    pending_zero_divide(&c);
    at = c.n;
    emit(&c, (uint8_t[]){0x9b}, 1);
    assert_int_equal(guest_exception(&c, 0, 0, &eip), EXC_MF);
    assert_int_equal(eip, CODE_ADDR + at);
    c.n = 0;
    pending_zero_divide(&c);
    emit2(&c, 0xdb, 0xe2);
    emit(&c, (uint8_t[]){0x9b}, 1);
    emit2(&c, 0xd9, 0xe8);
    assert_int_equal(guest_exception(&c, 0, 0, &eip), -1);

    /* FLDCW, FLDENV and FRSTOR wait too; FNSTENV and FNSAVE do not */
    static const uint8_t waiting[3] = {5, 4, 4}, esc[3] = {0xd9, 0xd9, 0xdd};
    for (int i = 0; i < 3; i++) {
        c.n = 0;
        pending_zero_divide(&c);
        at = c.n;
        emit_m1(&c, esc[i], waiting[i], D_CW);
        assert_int_equal(guest_exception(&c, 0, 0, &eip), EXC_MF);
        assert_int_equal(eip, CODE_ADDR + at);
    }
    c.n = 0;
    pending_zero_divide(&c);
    emit_m1(&c, 0xd9, 6, D_OUT);
    emit_m1(&c, 0xdd, 6, D_OUT + 0x40);
    assert_int_equal(guest_exception(&c, 0, 0, &eip), -1);
}

static void test_nm_ud(void **state)
{
    struct code c = {.n = 0};
    uint32_t eip;
    emit2(&c, 0xd9, 0xe8);
    assert_int_equal(guest_exception(&c, CR0_TS, 0, &eip), EXC_NM);
    assert_int_equal(guest_exception(&c, CR0_EM, 0, &eip), EXC_NM);
    c.n = 0;
    emit(&c, (uint8_t[]){0x9b}, 1); /* WAIT: #NM only with TS and MP */
    assert_int_equal(guest_exception(&c, CR0_TS, CR0_MP, &eip), -1);
    assert_int_equal(guest_exception(&c, CR0_TS | CR0_MP, 0, &eip), EXC_NM);
    assert_int_equal(guest_exception(&c, CR0_EM, 0, &eip), -1);

    static const uint8_t inval[][2] = {
        {0xd9, 0xd1}, {0xd9, 0xe2}, {0xd9, 0xef}, {0xda, 0xe8}, {0xdb, 0xe5}, {0xdb, 0xf8},
        {0xdd, 0xf0}, {0xde, 0xd8}, {0xdf, 0xe1}, {0xdf, 0xf8}, {0xd9, 0x08}, {0xdb, 0x20},
        {0xdb, 0x30}, {0xdd, 0x28}, {0xdb, 0x08}, {0xdd, 0x08}, {0xdf, 0x08}};
    for (size_t i = 0; i < sizeof(inval) / sizeof(inval[0]); i++) {
        c.n = 0;
        emit2(&c, inval[i][0], inval[i][1]);
        assert_int_equal(guest_exception(&c, 0, 0, &eip), EXC_UD);
    }
}

/* Masked stack overflow: IE, SF and C1 set, the QNaN indefinite pushed. */
static void test_overflow(void **state)
{
    struct code c = {.n = 0};
    uint8_t *d = gptr(DATA_ADDR);
    emit2(&c, 0xdb, 0xe3);
    for (int i = 0; i < 9; i++)
        emit2(&c, 0xd9, 0xe8);
    emit_m1(&c, 0xdd, 7, D_OUT);
    emit_m1(&c, 0xdb, 7, D_OUT + 16);
    struct x86_state out;
    run_guest(&c, &out);
    uint16_t sw;
    memcpy(&sw, d + D_OUT, 2);
    assert_int_equal(sw & 0x3fff, 0x0241 | 7 << 11);
    static const uint8_t indefinite[10] = {0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff};
    assert_memory_equal(d + D_OUT + 16, indefinite, 10);
}

/* FXAM classes */
static void test_fxam(void **state)
{
    static const struct {
        int sign, exp;
        uint64_t m;
        uint16_t c3210;
    } cls[] = {
        {0, 0x3fff, 1ull << 63, 0x0400}, /* normal */
        {1, 0x3fff, 1ull << 63, 0x0600}, /* negative normal: C1 */
        {0, 0, 0, 0x4000},               /* zero */
        {0, 0x7fff, 1ull << 63, 0x0500}, /* infinity */
        {0, 0x7fff, 3ull << 62, 0x0100}, /* NaN */
        {0, 0, 1, 0x4400},               /* denormal */
        {0, 0x1234, 1, 0x0000},          /* unnormal: unsupported */
    };
    for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
        uint8_t *d = gptr(DATA_ADDR);
        put_f80(d + D_OPS, cls[i].sign, cls[i].exp, cls[i].m);
        struct code c = {.n = 0};
        emit2(&c, 0xdb, 0xe3);
        emit_m1(&c, 0xdb, 5, D_OPS);
        emit2(&c, 0xd9, 0xe5);
        emit_m1(&c, 0xdd, 7, D_OUT);
        struct x86_state out;
        run_guest(&c, &out);
        uint16_t sw;
        memcpy(&sw, d + D_OUT, 2);
        assert_int_equal(sw & 0x4700, cls[i].c3210);
    }
    /* empty register: C3 and C0 */
    struct code c = {.n = 0};
    emit2(&c, 0xdb, 0xe3);
    emit2(&c, 0xd9, 0xe5);
    emit_m1(&c, 0xdd, 7, D_OUT);
    struct x86_state out;
    run_guest(&c, &out);
    uint16_t sw;
    memcpy(&sw, gptr(DATA_ADDR + D_OUT), 2);
    assert_int_equal(sw & 0x4500, 0x4100);
}

/* ---- other modes (tiny_guest): FIP/FDP/FOP and the environment formats ---- */

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 64-bit mode: RIP-relative FLD, then FNSTENV with REX.W (still the 28-byte
 * format) and with 66 (14 bytes). */
static void test_long_mode(void **state)
{
    static const uint8_t code[] = {
        0xdb, 0xe3,                                     /* fninit */
        0xdd, 0x05, 0x18, 0x00, 0x00, 0x00,             /* fld qword [rip+0x18]: 0x10020 */
        0x48, 0xd9, 0x34, 0x25, 0x00, 0x10, 0x01, 0x00, /* fnstenv [0x11000] (REX.W) */
        0x66, 0xd9, 0x34, 0x25, 0x40, 0x10, 0x01, 0x00, /* fnstenv [0x11040] (66) */
        0xdd, 0x1c, 0x25, 0x80, 0x10, 0x01, 0x00,       /* fstp qword [0x11080] */
        0xf4,                                           /* hlt */
        0,    0,    0,    0,    0,    0,    0xf8, 0x3f, /* 0x10020: 1.5 */
    };
    struct tiny_guest g;
    assert_int_equal(tiny_guest_init(&g, NULL), 0);
    tiny_guest_load(&g, TG_LONG64, code, sizeof(code));
    assert_int_equal(tiny_guest_run(&g, 100), VCPU_EXIT_HLT);
    const uint8_t *e = g.ram + 0x11000;
    assert_int_equal(get32(e + 12), TG_CODE + 2);         /* FIP */
    assert_int_equal(get32(e + 16), 0x08 | 0x505u << 16); /* FCS, FOP DD 05 */
    assert_int_equal(get32(e + 20), TG_CODE + 0x20);      /* FDP */
    assert_int_equal(get32(e + 24), 0xffff0010u);         /* FDS */
    e = g.ram + 0x11040;
    assert_int_equal(get16(e + 6), (TG_CODE + 2) & 0xffff); /* 16-bit offsets */
    assert_int_equal(get16(e + 8), 0x08);
    assert_int_equal(get16(e + 10), (TG_CODE + 0x20) & 0xffff);
    double d;
    memcpy(&d, g.ram + 0x11080, 8);
    assert_true(d == 1.5);
    tiny_guest_destroy(&g);
}

/* Real mode: the formats with 20-bit linear pointers (CS 0x1000, IP 0). */
static void test_real_mode(void **state)
{
    static const uint8_t code[] = {
        0xdb, 0xe3,                   /* fninit */
        0xd9, 0x06, 0x00, 0x02,       /* fld dword [0x200] (DS 0x1000) */
        0xd9, 0x36, 0x00, 0x01,       /* fnstenv [0x100]: 14 bytes */
        0x66, 0xd9, 0x36, 0x40, 0x01, /* fnstenv [0x140]: 28 bytes */
        0x66, 0xd9, 0x26, 0x40, 0x01, /* fldenv [0x140] */
        0xd9, 0x36, 0x80, 0x01,       /* fnstenv [0x180] */
        0xf4,
    };
    struct tiny_guest g;
    struct x86_state s;
    assert_int_equal(tiny_guest_init(&g, NULL), 0);
    tiny_guest_load(&g, TG_REAL, code, sizeof(code));
    g.vcpu->impl->get_state(g.vcpu, &s);
    s.seg[SEG_CS].sel = s.seg[SEG_DS].sel = 0x1000;
    s.seg[SEG_CS].base = s.seg[SEG_DS].base = 0x10000;
    s.rip = 0;
    g.vcpu->impl->set_state(g.vcpu, &s);
    float one = 1.0f;
    memcpy(g.ram + 0x10200, &one, 4);
    assert_int_equal(tiny_guest_run(&g, 100), VCPU_EXIT_HLT);
    const uint8_t *e = g.ram + 0x10100;
    assert_int_equal(get16(e + 6), 0x0002);         /* FIP 15..0 (linear 0x10002) */
    assert_int_equal(get16(e + 8), 0x1000 | 0x106); /* FIP 19..16, FOP D9 06 */
    assert_int_equal(get16(e + 10), 0x0200);        /* FDP 15..0 (linear 0x10200) */
    assert_int_equal(get16(e + 12), 0x1000);
    e = g.ram + 0x10140;
    assert_int_equal(get32(e + 12) & 0xffff, 0x0002);
    assert_int_equal(get32(e + 16), 0x1000 | 0x106); /* FIP 31..16 at bit 12, FOP */
    assert_int_equal(get32(e + 20) & 0xffff, 0x0200);
    assert_int_equal(get32(e + 24), 0x1000);
    /* FLDENV of the 32-bit image gives back the same pointers */
    assert_memory_equal(g.ram + 0x10180, g.ram + 0x10100, 14);
    tiny_guest_destroy(&g);
}

static int setup(void **state)
{
    const char *s = getenv("UNUM_X87_CASES");
    if (s) ncases = atoi(s);
    s = getenv("UNUM_X87_SEED");
    if (s) rng_state = strtoull(s, NULL, 0);
    if (guest_mem_init(&mem, GUEST_RAM, 0, MEM_WRITE)) return -1;
    vcpu = emu_cpu_impl.create(&mem, 0, &exit_ops, NULL);
    host_code = mmap((void *)(uintptr_t)CODE_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    host_data = mmap((void *)(uintptr_t)DATA_ADDR, DATA_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (!vcpu || host_code != (void *)(uintptr_t)CODE_ADDR ||
        host_data != (void *)(uintptr_t)DATA_ADDR)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    emu_cpu_impl.destroy(vcpu);
    guest_mem_destroy(&mem);
    munmap(host_code, 4096);
    munmap(host_data, DATA_SIZE);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_third),     cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_fxam),      cmocka_unit_test(test_mf),
        cmocka_unit_test(test_nm_ud),     cmocka_unit_test(test_reg_forms),
        cmocka_unit_test(test_mem_forms), cmocka_unit_test(test_env_images),
        cmocka_unit_test(test_control),   cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_long_mode), cmocka_unit_test(test_real_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
