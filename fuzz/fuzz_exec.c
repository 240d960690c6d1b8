/* libFuzzer target: the input's first byte picks the processor mode, the rest is
 * guest code executed for at most 5000 instructions. Any host crash, sanitizer
 * report or hang is a bug: guest code must never harm the host. */
#include <stddef.h>
#include <stdint.h>

#include "common/tiny_guest.h"

static struct tiny_guest g;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        if (tiny_guest_init(&g, NULL) < 0) return 0;
        ready = 1;
    }
    if (size < 2) return 0;
    tiny_guest_load(&g, (enum tg_mode)(data[0] % 3), data + 1, size - 1);
    tiny_guest_run(&g, 5000);
    return 0;
}
