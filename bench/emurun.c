/* emurun.c — runs a static x86-64 Linux ELF program (non-PIE) on the emulator at
 * CPL 3 with a minimal system-call layer (write, exit, exit_group, brk), and
 * reports instructions retired, wall time and MIPS. Used by the CPU benchmark so
 * the very same binary runs natively and emulated. */
#include <elf.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "cpu/emu/emu_api.h"

#define GUEST_MEM  (1ull << 30)
#define PT_BASE    0x3ff00000ull /* page tables, GDT, IDT, trap stubs */
#define GDT_ADDR   (PT_BASE + 0x4000)
#define IDT_ADDR   (PT_BASE + 0x5000)
#define STUB_ADDR  (PT_BASE + 0x6000) /* HLT stubs: +0..255 exceptions, +0x100 syscall */
#define KSTACK_TOP (PT_BASE + 0x9000)
#define TSS_ADDR   (PT_BASE + 0x9000)
#define USTACK_TOP 0x3fe00000ull

static struct guest_mem mem;
void x86_state_dump(FILE *f, const struct x86_state *s);

static void io(void *ctx, struct cpu_io *io)
{
    if (!io->write) io->data = ~0ull;
}
static int irq_ack(void *ctx)
{
    return -1;
}
static const struct cpu_exit_ops ops = {.io = io, .irq_ack = irq_ack};

static void *gpa(uint64_t a)
{
    return guest_mem_host(&mem, a);
}

static void put64(uint64_t a, uint64_t v)
{
    memcpy(gpa(a), &v, 8);
}

static void build_tables(void)
{
    /* identity map of the first GiB with user-accessible 2 MiB pages */
    put64(PT_BASE, (PT_BASE + 0x1000) | 7);
    put64(PT_BASE + 0x1000, (PT_BASE + 0x2000) | 7);
    for (uint64_t i = 0; i < 512; i++)
        put64(PT_BASE + 0x2000 + i * 8, (i << 21) | 0x87);
    /* GDT: null, kcode64, kdata, udata, ucode64, TSS (16 bytes) */
    put64(GDT_ADDR + 0x08, 0x00209b0000000000ull);
    put64(GDT_ADDR + 0x10, 0x00cf93000000ffffull);
    put64(GDT_ADDR + 0x18, 0x00cff3000000ffffull);
    put64(GDT_ADDR + 0x20, 0x0020fb0000000000ull);
    uint64_t tss = TSS_ADDR;
    put64(GDT_ADDR + 0x28, 0x67 | ((tss & 0xffffff) << 16) | (0x89ull << 40) | ((tss >> 24) << 56));
    put64(GDT_ADDR + 0x30, tss >> 32);
    put64(TSS_ADDR + 4, KSTACK_TOP - 0x100); /* RSP0 */
    /* IDT: vector v -> HLT stub at STUB_ADDR + v, kernel code, interrupt gate */
    for (int v = 0; v < 256; v++) {
        uint64_t off = STUB_ADDR + v;
        uint64_t lo =
            (off & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((off >> 16) & 0xffff) << 48;
        put64(IDT_ADDR + v * 16, lo);
        put64(IDT_ADDR + v * 16 + 8, off >> 32);
    }
    memset(gpa(STUB_ADDR), 0xf4, 0x101);
}

static uint64_t load_elf(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "emurun: cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    Elf64_Ehdr eh;
    if (fread(&eh, sizeof(eh), 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
        fprintf(stderr, "emurun: %s is not a static x86-64 executable\n", path);
        exit(2);
    }
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        fseek(f, (long)(eh.e_phoff + i * eh.e_phentsize), SEEK_SET);
        if (fread(&ph, sizeof(ph), 1, f) != 1) exit(2);
        if (ph.p_type != PT_LOAD) continue;
        if (ph.p_vaddr + ph.p_memsz > USTACK_TOP - (16 << 20) || ph.p_filesz > ph.p_memsz) {
            fprintf(stderr, "emurun: segment out of range\n");
            exit(2);
        }
        fseek(f, (long)ph.p_offset, SEEK_SET);
        if (fread(gpa(ph.p_vaddr), 1, ph.p_filesz, f) != ph.p_filesz) exit(2);
    }
    fclose(f);
    return eh.e_entry;
}

static void user_state(struct x86_state *s)
{
    s->seg[SEG_CS] =
        (struct x86_seg){.sel = 0x23, .limit = 0xffffffff, .attr = 0xfb | SEGA_L | SEGA_G};
    struct x86_seg ud = {.sel = 0x1b, .limit = 0xffffffff, .attr = 0xf3 | SEGA_DB | SEGA_G};
    s->seg[SEG_SS] = s->seg[SEG_DS] = s->seg[SEG_ES] = ud;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: emurun STATIC-ELF\n");
        return 2;
    }
    if (guest_mem_init(&mem, GUEST_MEM, 0, MEM_WRITE) < 0) return 2;
    build_tables();
    uint64_t entry = load_elf(argv[1]);
    struct vcpu *v = emu_cpu_impl.create(&mem, 0, &ops, NULL);
    struct x86_state s;
    emu_cpu_impl.get_state(v, &s);
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s.cr3 = PT_BASE;
    s.cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s.msr.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    s.msr.star = (0x10ull << 48) | (0x08ull << 32);
    s.msr.lstar = STUB_ADDR + 0x100;
    s.msr.sfmask = FL_IF | FL_TF | FL_DF;
    s.gdtr = (struct x86_dtable){.base = GDT_ADDR, .limit = 0x37};
    s.idtr = (struct x86_dtable){.base = IDT_ADDR, .limit = 0xfff};
    s.tr = (struct x86_seg){.sel = 0x28, .base = TSS_ADDR, .limit = 0x67, .attr = 0x8b};
    user_state(&s);
    s.rip = entry;
    /* initial stack: argc = 1, argv = {"prog", NULL}, envp = {NULL}, auxv = {AT_NULL} */
    uint64_t sp = USTACK_TOP - 64;
    put64(sp, 1);
    put64(sp + 8, USTACK_TOP - 16);
    put64(sp + 16, 0);
    put64(sp + 24, 0);
    put64(sp + 32, 0);
    memcpy(gpa(USTACK_TOP - 16), "prog", 5);
    s.gpr[RSP] = sp;
    s.rflags = FL_1 | FL_IF;
    emu_cpu_impl.set_state(v, &s);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = -1;
    while (status < 0) {
        enum vcpu_exit_reason r = vcpu_run(v);
        emu_cpu_impl.get_state(v, &s);
        if (r != VCPU_EXIT_HLT) {
            fprintf(stderr, "emurun: unexpected exit %d\n", r);
            x86_state_dump(stderr, &s);
            return 3;
        }
        uint64_t stub = s.rip - 1 - STUB_ADDR;
        if (stub < 256) {
            /* the frame on the kernel stack: [error code,] RIP, CS, RFLAGS, RSP, SS */
            bool has_err = stub == 8 || (stub >= 10 && stub <= 14) || stub == 17;
            uint64_t frame[2] = {0, 0};
            if (s.gpr[RSP] + 16 <= GUEST_MEM) memcpy(frame, gpa(s.gpr[RSP]), sizeof(frame));
            fprintf(stderr, "emurun: guest exception %llu at rip %#llx (error %#llx, cr2 %#llx)\n",
                    (unsigned long long)stub, (unsigned long long)frame[has_err],
                    (unsigned long long)(has_err ? frame[0] : 0), (unsigned long long)s.cr2);
            fprintf(stderr, "emurun: %llu instructions retired\n",
                    (unsigned long long)emu_icount(v));
            return 3;
        }
        long ret = -ENOSYS;
        switch (s.gpr[RAX]) {
        case 1: { /* write */
            uint64_t buf = s.gpr[RSI], len = s.gpr[RDX];
            if (buf + len > GUEST_MEM || (s.gpr[RDI] != 1 && s.gpr[RDI] != 2)) {
                ret = -EFAULT;
                break;
            }
            ret = write((int)s.gpr[RDI], gpa(buf), len);
            break;
        }
        case 60:
        case 231: status = (int)(s.gpr[RDI] & 0xff); break;
        case 12: ret = -ENOMEM; break;
        }
        s.gpr[RAX] = (uint64_t)ret;
        s.rip = s.gpr[RCX];
        s.rflags = (s.gpr[R11] & 0x3c7fd7) | FL_1;
        user_state(&s);
        emu_cpu_impl.set_state(v, &s);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t n = emu_icount(v);
    fprintf(stderr, "emurun: %llu instructions in %.3f s = %.1f MIPS\n", (unsigned long long)n,
            secs, n / secs / 1e6);
    emu_cpu_impl.destroy(v);
    guest_mem_destroy(&mem);
    return status;
}
