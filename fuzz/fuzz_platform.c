/* libFuzzer target: hostile port and MMIO access sequences against the whole PC
 * platform (PIC, PIT, RTC, UART, ACPI PM, PCI, I/O APIC, local APICs). A crash,
 * sanitizer report or hang is a bug. */
#include <stddef.h>
#include <stdint.h>

#include "common/platform_poke.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    platform_poke(platform_poke_machine(), data, size);
    return 0;
}
