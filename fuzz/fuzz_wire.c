/* libFuzzer target: hostile bytes as node-to-node messages. Each input is
 * checked and opened as a message (wire_check, wire_open with a fixed key), its
 * payload parsed as the handshake would (HELLO, REFUSED), its sequence numbers
 * fed to a replay window; then the input's bytes are sealed as a payload and
 * must open, and must stop opening after a flip of one input-chosen bit. A
 * crash, sanitizer report or abort is a bug. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"

static const uint8_t key[WIRE_KEY_BYTES] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                            12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                            23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void parse_as_received(const uint8_t *data, size_t size)
{
    /* As a receive buffer would hold it (a private copy: UCX's are writable). */
    uint8_t *msg = malloc(size ? size : 1);
    if (!msg) return;
    memcpy(msg, data, size);
    const struct wire_hdr *h = (const struct wire_hdr *)msg;
    int c = wire_check(h, size);
    int o = wire_open(h, size, key);
    if (c != 0 && c != -EPROTO) abort();
    if (c != 0 && o != c) abort(); /* structure is checked first */
    if (c == 0 && o != 0 && o != -EBADMSG) abort();
    if (c == 0) {
        struct wire_hdr hd;
        memcpy(&hd, msg, sizeof(hd));
        const uint8_t *pl = msg + sizeof(hd);
        if (hd.len != size - sizeof(hd)) abort();
        struct wire_hello hello;
        if (wire_hello_parse(pl, hd.len, &hello) == 0) {
            size_t n = strlen(hello.unum_version);
            if (n == 0 || n >= sizeof(hello.unum_version)) abort();
        }
        char why[257];
        wire_reason_text(pl, hd.len, why, sizeof(why));
        if (strlen(why) > 256) abort();
        (void)wire_type_name(hd.type);
    }
    free(msg);
}

static void replay_sequence(const uint8_t *data, size_t size)
{
    struct wire_replay r = {0};
    uint64_t seen[128];
    int nseen = 0;
    for (size_t i = 0; i + 2 <= size && nseen < 128; i += 2) {
        uint64_t seq = (uint64_t)data[i] << 8 | data[i + 1];
        bool dup = false;
        for (int k = 0; k < nseen; k++)
            dup |= seen[k] == seq;
        bool ok = wire_replay_accept(&r, seq);
        if (ok && dup) abort(); /* never the same number twice */
        if (ok && seq == 0) abort();
        if (ok) seen[nseen++] = seq;
    }
}

static void seal_round_trip(const uint8_t *data, size_t size)
{
    static uint8_t buf[sizeof(struct wire_hdr) + WIRE_MAX_PAYLOAD];
    uint32_t len = size > WIRE_MAX_PAYLOAD ? WIRE_MAX_PAYLOAD : (uint32_t)size;
    struct wire_hdr h;
    uint64_t arg[3] = {len, size, 7};
    int type = size ? 1 + data[0] % WIRE_TYPE_MAX : WIRE_DSM_REQ;
    wire_init(&h, type, size > 1 ? data[1] % 16 : 0, 3, 1 + size, arg, len);
    wire_seal(&h, data, key);
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), data, len);
    size_t total = sizeof(h) + len;
    if (wire_open((struct wire_hdr *)buf, total, key) != 0) abort();
    size_t bit = size > 3 ? ((size_t)data[2] << 8 | data[3]) % (total * 8) : 0;
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    if (wire_open((struct wire_hdr *)buf, total, key) == 0) abort();
}

/* The handshake payload parsers on the raw input too (reached without a valid
 * header first). */
static void parse_payloads(const uint8_t *data, size_t size)
{
    struct wire_hello hello;
    if (wire_hello_parse(data, size, &hello) == 0) {
        if (size != sizeof(hello)) abort();
        size_t n = strlen(hello.unum_version);
        if (n == 0 || n >= sizeof(hello.unum_version)) abort();
        for (size_t i = 0; i < n; i++)
            if (hello.unum_version[i] < 0x20 || hello.unum_version[i] > 0x7e) abort();
    }
    char why[64];
    wire_reason_text(data, size, why, sizeof(why));
    if (strlen(why) != (size < sizeof(why) ? size : sizeof(why) - 1)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_payloads(data, size);
    parse_as_received(data, size);
    replay_sequence(data, size);
    seal_round_trip(data, size);
    return 0;
}
