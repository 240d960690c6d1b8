/* cpuid.c — the CPU model the guest sees: CPUID leaves (conservative: nothing
 * advertised that the emulator does not implement), MSRs, and the invariant TSC
 * derived from the host's. */
#include "cpu/emu/emu.h"

#include <stdatomic.h>
#include <cpuid.h>
#include <pthread.h>
#include <time.h>
#include <x86intrin.h>

#define MSR_TSC             0x10
#define MSR_PLATFORM_ID     0x17
#define MSR_APIC_BASE       0x1b
#define MSR_FEATURE_CONTROL 0x3a
#define MSR_UCODE_REV       0x8b
#define MSR_MTRRCAP         0xfe
#define MSR_SYSENTER_CS     0x174
#define MSR_SYSENTER_ESP    0x175
#define MSR_SYSENTER_EIP    0x176
#define MSR_MISC_ENABLE     0x1a0
#define MSR_MTRR_PHYS_BASE0 0x200
#define MSR_MTRR_FIX64K     0x250
#define MSR_MTRR_FIX16K_80  0x258
#define MSR_MTRR_FIX16K_A0  0x259
#define MSR_MTRR_FIX4K_C0   0x268
#define MSR_PAT             0x277
#define MSR_MTRR_DEF_TYPE   0x2ff
#define MSR_EFER            0xc0000080
#define MSR_STAR            0xc0000081
#define MSR_LSTAR           0xc0000082
#define MSR_CSTAR           0xc0000083
#define MSR_SFMASK          0xc0000084
#define MSR_FS_BASE         0xc0000100
#define MSR_GS_BASE         0xc0000101
#define MSR_KERNEL_GS_BASE  0xc0000102
#define MSR_TSC_AUX         0xc0000103

/* ---- TSC ---- */

static uint64_t tsc_hz;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

static void tsc_calibrate(void)
{
    unsigned a, b, c, d;
    /* a hypervisor below us may publish the TSC frequency (leaf 0x40000010, kHz) */
    __cpuid(1, a, b, c, d);
    if (c & (1u << 31)) {
        __cpuid(0x40000000, a, b, c, d);
        if (a >= 0x40000010) {
            __cpuid(0x40000010, a, b, c, d);
            if (a) {
                tsc_hz = (uint64_t)a * 1000;
                return;
            }
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t c0 = __rdtsc();
    struct timespec sl = {0, 20 * 1000 * 1000};
    nanosleep(&sl, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t c1 = __rdtsc();
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    tsc_hz = (uint64_t)((c1 - c0) * 1e9 / ns);
    tsc_hz = (tsc_hz + 500000) / 1000000 * 1000000; /* round to MHz */
}

uint64_t emu_tsc_hz(void)
{
    pthread_once(&tsc_once, tsc_calibrate);
    return tsc_hz;
}

static _Atomic int64_t clock_offset;

void emu_set_clock_offset(int64_t cycles)
{
    atomic_store(&clock_offset, cycles);
}

uint64_t emu_host_clock(void)
{
    return __rdtsc() + (uint64_t)atomic_load_explicit(&clock_offset, memory_order_relaxed);
}

/* The guest TSC runs at the host TSC's (invariant) rate, shifted per node (so
 * that every node of a cluster agrees) and per vCPU (the guest's own writes). */
uint64_t emu_rdtsc(struct emu_cpu *c)
{
    return emu_host_clock() + (uint64_t)c->s.msr.tsc_offset;
}

/* ---- CPUID ---- */

#define F1_EDX                                                                                     \
    ((1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 9) |           \
     (1u << 12) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 19) | (1u << 23) | (1u << 24) |    \
     (1u << 25) | (1u << 26))
/* FPU PSE TSC MSR PAE CX8 APIC MTRR PGE CMOV PAT CLFSH MMX FXSR SSE SSE2 */
#define F1_ECX ((1u << 13) | (1u << 31)) /* CX16, hypervisor */
#define X1_EDX ((1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29))
/* SYSCALL NX PDPE1GB RDTSCP LM */
#define X1_ECX (1u << 0) /* LAHF/SAHF in 64-bit mode */

static void put_str(uint32_t out[4], int i0, const char *s12)
{
    memcpy(&out[i0], s12, 4);
    memcpy(&out[i0 == 1 ? 3 : i0 + 1], s12 + 4, 4);
    memcpy(&out[i0 == 1 ? 2 : i0 + 2], s12 + 8, 4);
}

void emu_cpuid(struct emu_cpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    memset(out, 0, 16);
    uint64_t hz = emu_tsc_hz();
    switch (leaf) {
    case 0:
        out[0] = 0x16;
        put_str(out, 1, "GenuineIntel"); /* EBX, EDX, ECX order */
        break;
    case 1:
        out[0] = 0x000106ca; /* family 6, model 0x1c (an in-order core), stepping 10: Linux
                              * drops PSE on steppings up to 2 (an Atom erratum) */
        out[1] = (8u << 8) | ((uint32_t)c->v.id << 24);
        out[2] = F1_ECX | ((c->v.features & VCPU_FEAT_TSC_DEADLINE) ? 1u << 24 : 0);
        out[3] = F1_EDX;
        break;
    case 6: out[0] = 1u << 2; break; /* ARAT: the APIC timer keeps running in idle */
    case 0xb: /* x2APIC topology: one thread per core, all cores in one package */
        if (sub == 0) {
            out[0] = 0, out[1] = 1, out[2] = 0x100;
        } else if (sub == 1) {
            out[0] = 8, out[1] = 1, out[2] = 0x201;
        } else {
            out[2] = sub & 0xff;
        }
        out[3] = (uint32_t)c->v.id;
        break;
    case 0x15: /* TSC = crystal * EBX / EAX; crystal given in ECX */
        out[0] = 1;
        out[1] = 1;
        out[2] = (uint32_t)hz;
        break;
    case 0x16:
        out[0] = out[1] = (uint32_t)(hz / 1000000);
        out[2] = 1000; /* bus MHz */
        break;
    case 0x40000000:
        out[0] = 0x40000010;
        put_str(out, 1, "unumunumunum");
        out[3] = out[2]; /* signature in EBX, ECX, EDX */
        memcpy(&out[1], "unum", 4);
        memcpy(&out[2], "unum", 4);
        memcpy(&out[3], "unum", 4);
        break;
    case 0x40000010:
        out[0] = (uint32_t)(hz / 1000); /* TSC kHz */
        out[1] = 1000000;               /* APIC timer kHz (1 GHz) */
        break;
    case 0x80000000: out[0] = 0x80000008; break;
    case 0x80000001:
        out[2] = X1_ECX;
        out[3] = X1_EDX;
        break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
        static const char brand[49] = "unum virtual CPU (x86-64 emulator)              ";
        memcpy(out, brand + (leaf - 0x80000002) * 16, 16);
        break;
    }
    case 0x80000007: out[3] = 1u << 8; break; /* invariant TSC */
    case 0x80000008: out[0] = 0x3028; break;  /* 40 physical, 48 virtual address bits */
    default: break;
    }
}

/* ---- MSRs ---- */

static uint64_t *mtrr_slot(struct emu_cpu *c, uint32_t idx)
{
    if (idx >= MSR_MTRR_PHYS_BASE0 && idx < MSR_MTRR_PHYS_BASE0 + 16)
        return &c->s.msr.mtrr_var[idx - MSR_MTRR_PHYS_BASE0];
    if (idx == MSR_MTRR_FIX64K) return &c->s.msr.mtrr_fixed[0];
    if (idx == MSR_MTRR_FIX16K_80 || idx == MSR_MTRR_FIX16K_A0)
        return &c->s.msr.mtrr_fixed[1 + idx - MSR_MTRR_FIX16K_80];
    if (idx >= MSR_MTRR_FIX4K_C0 && idx < MSR_MTRR_FIX4K_C0 + 8)
        return &c->s.msr.mtrr_fixed[3 + idx - MSR_MTRR_FIX4K_C0];
    if (idx == MSR_MTRR_DEF_TYPE) return &c->s.msr.mtrr_def_type;
    return NULL;
}

/* MSRs that belong to the platform (the local APIC) are offered to it first. */
static bool platform_msr(uint32_t idx)
{
    return idx == MSR_APIC_BASE || idx == 0x6e0 || (idx >= 0x800 && idx <= 0x8ff);
}

static int ask_platform(struct emu_cpu *c, uint32_t idx, bool write, uint64_t *v)
{
    if (!c->v.ops->msr || !platform_msr(idx)) return 1;
    return c->v.ops->msr(c->v.ctx, idx, write, v);
}

int emu_rdmsr(struct emu_cpu *c, uint32_t idx, uint64_t *v)
{
    struct x86_msrs *m = &c->s.msr;
    int r = ask_platform(c, idx, false, v);
    if (r <= 0 && idx != MSR_APIC_BASE) return r;
    uint64_t *slot = mtrr_slot(c, idx);
    if (slot) {
        *v = *slot;
        return 0;
    }
    switch (idx) {
    case MSR_TSC: *v = emu_rdtsc(c); return 0;
    case MSR_PLATFORM_ID: *v = 0; return 0;
    case MSR_APIC_BASE: *v = m->apic_base; return 0;
    case MSR_FEATURE_CONTROL: *v = 1; return 0; /* locked, VMX off */
    case MSR_UCODE_REV: *v = 0; return 0;
    case MSR_MTRRCAP: *v = (1u << 10) | (1u << 8) | 8; return 0; /* WC, fixed, 8 variable */
    case MSR_SYSENTER_CS: *v = m->sysenter_cs; return 0;
    case MSR_SYSENTER_ESP: *v = m->sysenter_esp; return 0;
    case MSR_SYSENTER_EIP: *v = m->sysenter_eip; return 0;
    case MSR_MISC_ENABLE: *v = m->misc_enable | 1; return 0; /* fast strings */
    case MSR_PAT: *v = m->pat; return 0;
    case MSR_EFER: *v = m->efer; return 0;
    case MSR_STAR: *v = m->star; return 0;
    case MSR_LSTAR: *v = m->lstar; return 0;
    case MSR_CSTAR: *v = m->cstar; return 0;
    case MSR_SFMASK: *v = m->sfmask; return 0;
    case MSR_FS_BASE: *v = c->s.seg[SEG_FS].base; return 0;
    case MSR_GS_BASE: *v = c->s.seg[SEG_GS].base; return 0;
    case MSR_KERNEL_GS_BASE: *v = m->kernel_gs_base; return 0;
    case MSR_TSC_AUX: *v = m->tsc_aux; return 0;
    default: return -1;
    }
}

static bool pat_valid(uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        unsigned t = (v >> (8 * i)) & 0xff;
        if (t == 2 || t == 3 || t > 7) return false;
    }
    return true;
}

static int write_efer(struct emu_cpu *c, uint64_t v)
{
    uint64_t allowed = EFER_SCE | EFER_LME | EFER_NXE;
    if (v & ~(allowed | EFER_LMA)) return -1;
    /* LME cannot change while paging is on; LMA is read-only */
    if ((c->s.cr0 & CR0_PG) && ((v ^ c->s.msr.efer) & EFER_LME)) return -1;
    c->s.msr.efer = (v & allowed) | (c->s.msr.efer & EFER_LMA);
    emu_tlb_flush(c, true);
    return 0;
}

int emu_wrmsr(struct emu_cpu *c, uint32_t idx, uint64_t v)
{
    struct x86_msrs *m = &c->s.msr;
    int r = ask_platform(c, idx, true, &v);
    if (r < 0 || (r == 0 && idx != MSR_APIC_BASE)) return r;
    uint64_t *slot = mtrr_slot(c, idx);
    if (slot) {
        *slot = v;
        return 0;
    }
    switch (idx) {
    case MSR_TSC: m->tsc_offset = (int64_t)(v - __rdtsc()); return 0;
    case MSR_APIC_BASE:
        if (v & ~0xffffff000ull & ~((1ull << 8) | (1ull << 10) | (1ull << 11))) return -1;
        if (v & (1ull << 10)) return -1; /* x2APIC is not advertised */
        m->apic_base = (v & ~(1ull << 8)) | (m->apic_base & (1ull << 8));
        return 0;
    case MSR_UCODE_REV: return 0;
    case MSR_FEATURE_CONTROL: return -1; /* locked */
    case MSR_SYSENTER_CS: m->sysenter_cs = v & 0xffff; return 0;
    case MSR_SYSENTER_ESP:
        if (!canonical(v)) return -1;
        m->sysenter_esp = v;
        return 0;
    case MSR_SYSENTER_EIP:
        if (!canonical(v)) return -1;
        m->sysenter_eip = v;
        return 0;
    case MSR_MISC_ENABLE: m->misc_enable = v; return 0;
    case MSR_PAT:
        if (!pat_valid(v)) return -1;
        m->pat = v;
        return 0;
    case MSR_EFER: return write_efer(c, v);
    case MSR_STAR: m->star = v; return 0;
    case MSR_LSTAR:
        if (!canonical(v)) return -1;
        m->lstar = v;
        return 0;
    case MSR_CSTAR:
        if (!canonical(v)) return -1;
        m->cstar = v;
        return 0;
    case MSR_SFMASK: m->sfmask = v & 0xffffffff; return 0;
    case MSR_FS_BASE:
        if (!canonical(v)) return -1;
        c->s.seg[SEG_FS].base = v;
        return 0;
    case MSR_GS_BASE:
        if (!canonical(v)) return -1;
        c->s.seg[SEG_GS].base = v;
        return 0;
    case MSR_KERNEL_GS_BASE:
        if (!canonical(v)) return -1;
        m->kernel_gs_base = v;
        return 0;
    case MSR_TSC_AUX:
        if (v >> 32) return -1;
        m->tsc_aux = v;
        return 0;
    default: return -1;
    }
}
