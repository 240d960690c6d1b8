/* loader.h — the Linux x86 64-bit boot protocol: validates a bzImage, places the
 * protected-mode kernel, the initrd, the command line and boot_params (with the
 * e820 map and the ACPI RSDP address) in guest memory, and builds the CPU state
 * of the 64-bit entry (identity-mapped long mode, flat segments). No firmware. */
#ifndef UNUM_MACHINE_LOADER_H
#define UNUM_MACHINE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/x86_state.h"
#include "memory/guest_mem.h"

enum e820_type { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3 };

struct e820_entry {
    uint64_t addr, size;
    uint32_t type;
} __attribute__((packed));

#define E820_MAX 32

struct boot_layout {
    struct e820_entry e820[E820_MAX];
    int ne820;
    uint64_t rsdp_gpa;   /* 0 if none */
    uint64_t initrd_end; /* 0, or the initrd should end at or below this address
                          * (a cluster: the platform node's own memory) */
};

/* Guest-physical addresses the loader uses (all below 1 MiB except the kernel and
 * initrd). */
#define BOOT_GDT_GPA     0x500
#define BOOT_PARAMS_GPA  0x7000
#define BOOT_CMDLINE_GPA 0x20000
#define BOOT_CMDLINE_MAX 0x10000
#define BOOT_PML4_GPA    0x9000    /* 0x9000-0xDFFF: PML4, PDPT, 4 page directories */
#define BOOT_KERNEL_GPA  0x1000000 /* 16 MiB unless the kernel prefers otherwise */

struct linux_image {
    const uint8_t *data;
    size_t size;
    uint16_t version;  /* boot protocol version */
    size_t setup_size; /* real-mode part: (setup_sects + 1) * 512 */
    uint64_t pref_address;
    uint32_t init_size;
    uint32_t kernel_alignment;
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
    uint16_t xloadflags;
};

/* Validates a bzImage: 0 or a negative errno with *why set to a one-line reason. */
int linux_image_parse(const uint8_t *data, size_t size, struct linux_image *img, const char **why);

/* Loads kernel, initrd (may be NULL) and command line, writes boot_params, and
 * fills *s for the 64-bit entry of the boot vCPU. Returns 0 or -errno with *why. */
int linux_load(struct guest_mem *mem, const struct linux_image *img, const uint8_t *initrd,
               size_t initrd_size, const char *cmdline, const struct boot_layout *layout,
               struct x86_state *s, const char **why);

/* Memory the kernel needs at least (init_size + room for the initrd and tables). */
uint64_t linux_min_memory(const struct linux_image *img, size_t initrd_size);

#endif
