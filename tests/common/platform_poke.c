/* platform_poke.c — see platform_poke.h. */
#include "platform_poke.h"

#include <string.h>

#include "cpu/cpu.h"
#include "machine/loader.h"
#include "machine/pc.h"

struct pc *platform_poke_machine(void)
{
    static struct pc *pc;
    if (!pc) {
        struct pc_config cfg = {.cpus = 2,
                                .memory = 64ull << 20,
                                .kernel = "",
                                .initrd = "",
                                .append = "",
                                .command = "true"};
        struct boot_layout layout = {0};
        pc = pc_create(&cfg, &layout);
    }
    return pc;
}

/* Addresses where the devices live, so random records hit them often. */
static uint64_t target(uint8_t sel, uint16_t off)
{
    static const uint16_t ports[] = {0x20,  0xa0,  0x4d0, 0x40, 0x61, 0x70, 0x3f8, 0x600,
                                     0x604, 0x608, 0xb2,  0x60, 0x64, 0x80, 0xcf8, 0xcfc};
    switch (sel & 3) {
    case 0: return ports[off % 16] + ((off >> 4) & 7);
    case 1: return off;                            /* any port */
    case 2: return 0xfec00000ull + (off & 0xfff);  /* I/O APIC */
    default: return 0xfee00000ull + (off & 0xfff); /* local APIC */
    }
}

size_t platform_poke(struct pc *pc, const uint8_t *d, size_t size)
{
    size_t n = 0;
    for (; size >= 12; d += 12, size -= 12, n++) {
        uint8_t op = d[0];
        uint16_t off;
        uint64_t val;
        memcpy(&off, d + 2, 2);
        memcpy(&val, d + 4, 8);
        struct cpu_io io = {.kind = (op & 2) ? CPU_IO_MMIO : CPU_IO_PIO,
                            .write = op & 1,
                            .size = (uint8_t)(1u << ((op >> 2) & 3)),
                            .addr = target((uint8_t)(d[1] | ((op & 2) ? 2 : 0)), off),
                            .data = val};
        if (io.kind == CPU_IO_PIO) {
            io.addr &= 0xffff;
            if (io.size == 8) io.size = 4;
        }
        pc_access(pc, (op >> 4) & 1, &io);
    }
    return n;
}
