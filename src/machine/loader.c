/* loader.c — see loader.h. Field offsets follow Documentation/x86/boot.rst and
 * zero-page.rst of the Linux kernel. */
#include "machine/loader.h"

#include "cpu/cpu.h"

#include <errno.h>
#include <string.h>

/* setup header offsets inside the image / boot_params */
#define HDR_SETUP_SECTS     0x1f1
#define HDR_BOOT_FLAG       0x1fe
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_LOADER     0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMG     0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END        0x224
#define HDR_CMDLINE_PTR     0x228
#define HDR_INITRD_MAX      0x22c
#define HDR_KALIGN          0x230
#define HDR_RELOCATABLE     0x234
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_PREF_ADDRESS    0x258
#define HDR_INIT_SIZE       0x260
#define HDR_END             0x280 /* end of the setup header copied into boot_params */
#define BP_ACPI_RSDP        0x070
#define BP_EXT_RAMDISK_IMG  0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMDLINE      0x0c8
#define BP_E820_ENTRIES     0x1e8
#define BP_E820_TABLE       0x2d0

#define XLF_KERNEL_64 (1u << 0)
#define LOADED_HIGH   (1u << 0)
#define CAN_USE_HEAP  (1u << 7)

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}
static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

int linux_image_parse(const uint8_t *d, size_t size, struct linux_image *img, const char **why)
{
    memset(img, 0, sizeof(*img));
    if (size < HDR_END + 0x200 || rd16(d + HDR_BOOT_FLAG) != 0xaa55 ||
        memcmp(d + HDR_MAGIC, "HdrS", 4)) {
        *why = "not a Linux bzImage (no boot sector signature or HdrS header)";
        return -EINVAL;
    }
    img->version = rd16(d + HDR_VERSION);
    if (img->version < 0x20c) {
        *why = "kernel too old: boot protocol 2.12 or later (64-bit entry) is required";
        return -ENOTSUP;
    }
    img->xloadflags = rd16(d + HDR_XLOADFLAGS);
    if (!(img->xloadflags & XLF_KERNEL_64)) {
        *why = "kernel has no 64-bit entry point (XLF_KERNEL_64 not set)";
        return -ENOTSUP;
    }
    unsigned sects = d[HDR_SETUP_SECTS] ? d[HDR_SETUP_SECTS] : 4;
    img->setup_size = (size_t)(sects + 1) * 512;
    if (img->setup_size >= size) {
        *why = "corrupt bzImage: setup size exceeds the file";
        return -EINVAL;
    }
    img->data = d;
    img->size = size;
    img->pref_address = rd64(d + HDR_PREF_ADDRESS);
    img->init_size = rd32(d + HDR_INIT_SIZE);
    img->kernel_alignment = rd32(d + HDR_KALIGN);
    img->initrd_addr_max = rd32(d + HDR_INITRD_MAX);
    img->cmdline_size = rd32(d + HDR_CMDLINE_SIZE);
    if (img->init_size < size - img->setup_size) {
        *why = "corrupt bzImage: init_size smaller than the kernel";
        return -EINVAL;
    }
    return 0;
}

static uint64_t kernel_addr(const struct linux_image *img)
{
    uint64_t a = BOOT_KERNEL_GPA;
    if (img->pref_address > a && img->pref_address < (1ull << 32)) a = img->pref_address;
    uint64_t al = img->kernel_alignment ? img->kernel_alignment : 0x200000;
    return (a + al - 1) & ~(al - 1);
}

uint64_t linux_min_memory(const struct linux_image *img, size_t initrd_size)
{
    /* kernel at its load address with init_size bytes, then the initrd, plus
     * 64 MiB for the kernel to live in at all */
    return kernel_addr(img) + img->init_size + ((initrd_size + 0xfffff) & ~0xfffffull) +
           (64ull << 20);
}

static uint64_t low_ram_end(const struct boot_layout *l)
{
    uint64_t end = 0;
    for (int i = 0; i < l->ne820; i++) {
        const struct e820_entry *e = &l->e820[i];
        if (e->type == E820_RAM && e->addr < (1ull << 32) && e->addr + e->size > end)
            end = e->addr + e->size;
    }
    return end > (1ull << 32) ? (1ull << 32) : end;
}

/* Identity map of the first 4 GiB with 2 MiB pages: enough for the kernel's early
 * code, which builds its own page tables at once. */
static void build_page_tables(uint8_t *ram)
{
    memset(ram + BOOT_PML4_GPA, 0, 6 * 4096);
    wr64(ram + BOOT_PML4_GPA, (BOOT_PML4_GPA + 0x1000) | 3);
    for (uint64_t g = 0; g < 4; g++) {
        uint64_t pd = BOOT_PML4_GPA + 0x2000 + g * 0x1000;
        wr64(ram + BOOT_PML4_GPA + 0x1000 + g * 8, pd | 3);
        for (uint64_t i = 0; i < 512; i++)
            wr64(ram + pd + i * 8, ((g << 30) + (i << 21)) | 0x83);
    }
}

static void build_gdt(uint8_t *ram)
{
    /* 0x10: __BOOT_CS (64-bit code), 0x18: __BOOT_DS, as the boot protocol expects */
    memset(ram + BOOT_GDT_GPA, 0, 0x20);
    wr64(ram + BOOT_GDT_GPA + 0x10, 0x00af9b000000ffffull);
    wr64(ram + BOOT_GDT_GPA + 0x18, 0x00cf93000000ffffull);
}

static void entry_state(struct x86_state *s, uint64_t entry)
{
    uint64_t apic = s->msr.apic_base;
    x86_state_reset(s);
    s->msr.apic_base = apic;
    s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s->cr3 = BOOT_PML4_GPA;
    s->cr4 = CR4_PAE;
    s->msr.efer = EFER_LME | EFER_LMA;
    s->gdtr = (struct x86_dtable){.base = BOOT_GDT_GPA, .limit = 0x1f};
    s->idtr = (struct x86_dtable){.base = 0, .limit = 0};
    s->seg[SEG_CS] = (struct x86_seg){.sel = 0x10, .limit = 0xffffffff, .attr = 0xa09b};
    for (int i = 0; i < 6; i++)
        if (i != SEG_CS)
            s->seg[i] = (struct x86_seg){.sel = 0x18, .limit = 0xffffffff, .attr = 0xc093};
    s->tr = (struct x86_seg){.limit = 0x67, .attr = 0x8b};
    s->rip = entry;
    s->gpr[RSI] = BOOT_PARAMS_GPA;
    s->rflags = FL_1;
}

/* Takes write access to [gpa, gpa+len) before the loader writes it through host
 * pointers: on a cluster some of it is homed on other nodes. */
static int claim(struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    for (uint64_t p = gpa & GUEST_PAGE_MASK; p < gpa + len; p += GUEST_PAGE_SIZE) {
        int err = 0;
        if (!guest_mem_access(mem, p, MEM_WRITE, &err)) return err ? err : -EFAULT;
    }
    return 0;
}

int linux_load(struct guest_mem *mem, const struct linux_image *img, const uint8_t *initrd,
               size_t initrd_size, const char *cmdline, const struct boot_layout *layout,
               struct x86_state *s, const char **why)
{
    uint8_t *ram = guest_mem_host(mem, 0);
    uint64_t low_end = low_ram_end(layout);
    uint64_t kaddr = kernel_addr(img);
    size_t ksize = img->size - img->setup_size;
    if (kaddr + img->init_size > low_end) {
        *why = "guest memory too small for the kernel (init_size)";
        return -ENOMEM;
    }
    size_t clen = strlen(cmdline);
    uint32_t cmax = img->cmdline_size ? img->cmdline_size : 255;
    if (clen > cmax || clen >= BOOT_CMDLINE_MAX) {
        *why = "kernel command line too long";
        return -E2BIG;
    }
    if (claim(mem, 0, 0x100000) < 0 || claim(mem, kaddr, ksize) < 0) {
        *why = "cannot take hold of guest memory";
        return -EIO;
    }
    memcpy(ram + kaddr, img->data + img->setup_size, ksize);
    memcpy(ram + BOOT_CMDLINE_GPA, cmdline, clen + 1);

    uint8_t *bp = ram + BOOT_PARAMS_GPA;
    memset(bp, 0, 4096);
    memcpy(bp + HDR_SETUP_SECTS, img->data + HDR_SETUP_SECTS, HDR_END - HDR_SETUP_SECTS);
    bp[HDR_TYPE_LOADER] = 0xff;
    bp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
    wr32(bp + HDR_HEAP_END, 0xfe00);
    wr32(bp + HDR_CMDLINE_PTR, BOOT_CMDLINE_GPA);
    wr32(bp + BP_EXT_CMDLINE, 0);
    if (initrd && initrd_size) {
        uint64_t max = img->initrd_addr_max ? (uint64_t)img->initrd_addr_max + 1 : 0x38000000;
        if (max > low_end) max = low_end;
        /* where asked (and where it fits), below a lower end */
        uint64_t want = layout->initrd_end;
        if (want && want < max && want >= initrd_size &&
            ((want - initrd_size) & ~0xfffull) >= kaddr + img->init_size)
            max = want;
        uint64_t at = (max - initrd_size) & ~0xfffull;
        if (max < initrd_size || at < kaddr + img->init_size) {
            *why = "guest memory too small for kernel and initrd";
            return -ENOMEM;
        }
        if (claim(mem, at, initrd_size) < 0) {
            *why = "cannot take hold of guest memory";
            return -EIO;
        }
        memcpy(ram + at, initrd, initrd_size);
        wr32(bp + HDR_RAMDISK_IMG, (uint32_t)at);
        wr32(bp + HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
        wr32(bp + BP_EXT_RAMDISK_IMG, (uint32_t)(at >> 32));
        wr32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)initrd_size >> 32));
    }
    if (layout->rsdp_gpa) wr64(bp + BP_ACPI_RSDP, layout->rsdp_gpa);
    bp[BP_E820_ENTRIES] = (uint8_t)layout->ne820;
    memcpy(bp + BP_E820_TABLE, layout->e820, sizeof(struct e820_entry) * (size_t)layout->ne820);
    build_page_tables(ram);
    build_gdt(ram);
    guest_mem_note_write(mem, 0, low_end);
    entry_state(s, kaddr + 0x200); /* startup_64 sits 0x200 into the 64-bit image */
    return 0;
}
