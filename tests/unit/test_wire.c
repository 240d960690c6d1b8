/* Wire protocol tests: framing checks, the per-message tag (equal to libsodium's
 * ChaCha20-Poly1305 AEAD over header and payload, and broken by any single bit
 * flip or a wrong key), the replay window, and the handshake proofs and session
 * key (deterministic, sensitive to every input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "cluster/wire.h"

static uint8_t key[WIRE_KEY_BYTES], key2[WIRE_KEY_BYTES];

static int setup(void **state)
{
    if (sodium_init() < 0) return -1;
    for (int i = 0; i < WIRE_KEY_BYTES; i++) {
        key[i] = (uint8_t)(i * 13 + 5);
        key2[i] = key[i];
    }
    key2[7] ^= 0x10;
    return 0;
}

/* A sealed message in buf: header then `len` payload bytes. */
static size_t make_msg(uint8_t *buf, int type, uint32_t len, uint64_t seq)
{
    struct wire_hdr h;
    uint64_t arg[3] = {0x1122334455667788ull, 42, ~0ull};
    wire_init(&h, type, 3, 5, seq, arg, len);
    for (uint32_t i = 0; i < len; i++)
        buf[sizeof(h) + i] = (uint8_t)(i * 31 + 7);
    wire_seal(&h, buf + sizeof(h), key);
    memcpy(buf, &h, sizeof(h));
    return sizeof(h) + len;
}

static void test_init_fields(void **state)
{
    struct wire_hdr h;
    uint64_t arg[3] = {1, 2, 3};
    memset(&h, 0xaa, sizeof(h));
    wire_init(&h, WIRE_DSM_REQ, 1, 2, 99, arg, 4096);
    assert_int_equal(h.magic, WIRE_MAGIC);
    assert_int_equal(h.version, WIRE_VERSION);
    assert_int_equal(h.type, WIRE_DSM_REQ);
    assert_int_equal(h.src, 1);
    assert_int_equal(h.dst, 2);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.len, 4096);
    assert_int_equal(h.seq, 99);
    assert_int_equal(h.arg[0], 1);
    assert_int_equal(h.arg[2], 3);
    uint8_t zero[WIRE_MAC_BYTES] = {0};
    assert_memory_equal(h.mac, zero, sizeof(zero));
    wire_init(&h, WIRE_HEARTBEAT, 0, 1, 1, NULL, 0);
    assert_int_equal(h.arg[0], 0);
    assert_int_equal(h.arg[1], 0);
    /* Little-endian layout: magic "UNUM" at offset 0, len at 12, seq at 16. */
    uint8_t raw[64];
    wire_init(&h, 1, 0x0102, 0x0304, 0x0a0b0c0d0e0f1011ull, NULL, 0x55);
    memcpy(raw, &h, 64);
    assert_memory_equal(raw, "UNUM", 4);
    assert_int_equal(raw[6], 0x02);
    assert_int_equal(raw[12], 0x55);
    assert_int_equal(raw[16], 0x11);
    assert_int_equal(offsetof(struct wire_hdr, mac), 48);
}

static void test_round_trip_sizes(void **state)
{
    static uint8_t buf[sizeof(struct wire_hdr) + WIRE_MAX_PAYLOAD];
    uint32_t sizes[] = {0, 1, 15, 16, 17, 63, 64, 100, 4096, 8191, WIRE_MAX_PAYLOAD};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = make_msg(buf, WIRE_DSM_GRANT, sizes[i], 7 + i);
        assert_int_equal(wire_check((struct wire_hdr *)buf, n), 0);
        assert_int_equal(wire_open((struct wire_hdr *)buf, n, key), 0);
        assert_int_equal(wire_open((struct wire_hdr *)buf, n, key2), -EBADMSG);
    }
}

/* The tag is the AEAD's: empty message, header (mac zeroed) + payload as AD,
 * nonce = src | dst | seq — with either Poly1305 (OpenSSL's, libsodium's). */
static void check_matches_aead(uint32_t len, uint64_t seq)
{
    static uint8_t buf[sizeof(struct wire_hdr) + 4096], ad[sizeof(buf)];
    size_t n = make_msg(buf, WIRE_IO_REQ, len, seq);
    struct wire_hdr h;
    memcpy(&h, buf, sizeof(h));
    memcpy(ad, buf, n);
    memset(ad + offsetof(struct wire_hdr, mac), 0, WIRE_MAC_BYTES);
    uint8_t nonce[12];
    memcpy(nonce, &h.src, 2);
    memcpy(nonce + 2, &h.dst, 2);
    memcpy(nonce + 4, &h.seq, 8);
    uint8_t mac[16], dummy[1];
    unsigned long long maclen;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(dummy, mac, &maclen, NULL, 0, ad, n, NULL,
                                                       nonce, key);
    assert_int_equal(maclen, 16);
    assert_memory_equal(mac, h.mac, 16);
}

static void test_matches_aead(void **state)
{
    /* libcrypto is a build dependency: the fast Poly1305 must be the one used */
    assert_string_equal(wire_mac_impl(), "OpenSSL");
    static const uint32_t sizes[] = {0, 1, 15, 16, 17, 333, 4095, 4096};
    for (int portable = 0; portable < 2; portable++) {
        wire_mac_portable(portable);
        assert_string_equal(wire_mac_impl(), portable ? "libsodium" : "OpenSSL");
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
            check_matches_aead(sizes[i], 0x123456789ull + i);
    }
    /* sealed by one, opened by the other */
    uint8_t buf[sizeof(struct wire_hdr) + 4096];
    size_t n = make_msg(buf, WIRE_DSM_GRANT, 4096, 99);
    wire_mac_portable(false);
    assert_int_equal(wire_open((struct wire_hdr *)buf, n, key), 0);
    buf[sizeof(struct wire_hdr) + 4000] ^= 1;
    assert_int_equal(wire_open((struct wire_hdr *)buf, n, key), -EBADMSG);
}

static void test_every_bit_flip_rejected(void **state)
{
    uint8_t buf[sizeof(struct wire_hdr) + 200];
    size_t n = make_msg(buf, WIRE_DSM_FETCH_REPLY, 200, 1234);
    assert_int_equal(wire_open((struct wire_hdr *)buf, n, key), 0);
    for (size_t byte = 0; byte < n; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[byte] ^= (uint8_t)(1u << bit);
            int r = wire_open((struct wire_hdr *)buf, n, key);
            if (r == 0) fail_msg("flip of byte %zu bit %d accepted", byte, bit);
            buf[byte] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(wire_open((struct wire_hdr *)buf, n, key), 0);
    /* Every key bit matters too. */
    for (int i = 0; i < WIRE_KEY_BYTES * 8; i++) {
        uint8_t k[WIRE_KEY_BYTES];
        memcpy(k, key, sizeof(k));
        k[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(wire_open((struct wire_hdr *)buf, n, k), -EBADMSG);
    }
}

static void test_structure_rejected(void **state)
{
    uint8_t buf[sizeof(struct wire_hdr) + 64];
    size_t n = make_msg(buf, WIRE_APIC_MSG, 64, 5);
    struct wire_hdr *h = (struct wire_hdr *)buf;
    assert_int_equal(wire_check(h, n), 0);
    /* Length must match what arrived exactly. */
    assert_int_equal(wire_check(h, n - 1), -EPROTO);
    assert_int_equal(wire_check(h, n + 1), -EPROTO);
    assert_int_equal(wire_open(h, n - 1, key), -EPROTO);
    assert_int_equal(wire_check(h, 63), -EPROTO);
    assert_int_equal(wire_check(h, 0), -EPROTO);

    uint8_t save[64];
    memcpy(save, buf, 64);
    h->magic ^= 1;
    assert_int_equal(wire_check(h, n), -EPROTO);
    memcpy(buf, save, 64);
    h->version = WIRE_VERSION + 1;
    assert_int_equal(wire_check(h, n), -EPROTO);
    memcpy(buf, save, 64);
    h->type = 0;
    assert_int_equal(wire_check(h, n), -EPROTO);
    h->type = WIRE_TYPE_MAX + 1;
    assert_int_equal(wire_check(h, n), -EPROTO);
    h->type = WIRE_TYPE_MAX;
    assert_int_equal(wire_check(h, n), 0);
    memcpy(buf, save, 64);
    h->len = WIRE_MAX_PAYLOAD + 1;
    assert_int_equal(wire_check(h, sizeof(*h) + WIRE_MAX_PAYLOAD + 1), -EPROTO);
    h->len = 0xffffffffu;
    assert_int_equal(wire_check(h, n), -EPROTO);
    assert_int_equal(wire_check(h, sizeof(*h) + 0xffffffffull), -EPROTO);
    memcpy(buf, save, 64);
    assert_int_equal(wire_open(h, n, key), 0);
}

static void test_unaligned(void **state)
{
    static uint8_t raw[1 + sizeof(struct wire_hdr) + 100];
    uint8_t tmp[sizeof(struct wire_hdr) + 100];
    size_t n = make_msg(tmp, WIRE_IO_REPLY, 100, 77);
    memcpy(raw + 1, tmp, n);
    assert_int_equal(wire_open((const struct wire_hdr *)(raw + 1), n, key), 0);
}

static void test_replay_window(void **state)
{
    struct wire_replay r = {0};
    assert_false(wire_replay_accept(&r, 0)); /* 0 is the handshake's */
    assert_true(wire_replay_accept(&r, 1));
    assert_false(wire_replay_accept(&r, 1));
    assert_true(wire_replay_accept(&r, 3));
    assert_true(wire_replay_accept(&r, 2)); /* reordered, within the window */
    assert_false(wire_replay_accept(&r, 2));
    assert_false(wire_replay_accept(&r, 3));
    assert_true(wire_replay_accept(&r, 100));
    assert_true(wire_replay_accept(&r, 37)); /* 100 - 63: the oldest still in the window */
    assert_false(wire_replay_accept(&r, 37));
    assert_false(wire_replay_accept(&r, 36)); /* 100 - 64: too old */
    assert_false(wire_replay_accept(&r, 4));
    assert_true(wire_replay_accept(&r, 99));
    assert_false(wire_replay_accept(&r, 100));
    /* A jump further than the window clears it. */
    assert_true(wire_replay_accept(&r, 1000));
    assert_false(wire_replay_accept(&r, 100));
    assert_true(wire_replay_accept(&r, 990));
    assert_true(wire_replay_accept(&r, 1001));
    assert_false(wire_replay_accept(&r, 990));
    assert_true(wire_replay_accept(&r, UINT64_MAX));
    assert_false(wire_replay_accept(&r, UINT64_MAX));

    /* Any permutation within 64 is accepted once, duplicates never. */
    struct wire_replay q = {0};
    for (uint64_t base = 1; base < 2000; base += 32) {
        for (uint64_t i = 0; i < 32; i++) {
            uint64_t s = base + (i * 17) % 32;
            assert_true(wire_replay_accept(&q, s));
            assert_false(wire_replay_accept(&q, s));
        }
    }
}

static void test_proof_and_session_key(void **state)
{
    const uint8_t secret[] = "0123456789abcdef-cluster-secret";
    uint8_t nc[32], ns[32];
    for (int i = 0; i < 32; i++) {
        nc[i] = (uint8_t)i;
        ns[i] = (uint8_t)(0xff - i);
    }
    uint8_t a[32], b[32], k1[32], k2[32];
    wire_proof(a, secret, sizeof(secret) - 1, "client", nc, ns, 1, 0);
    wire_proof(b, secret, sizeof(secret) - 1, "client", nc, ns, 1, 0);
    assert_memory_equal(a, b, 32); /* deterministic */

    /* HMAC-SHA-512/256 keyed by the secret over label\0 | nc | ns | le32 ids. */
    uint8_t msg[7 + 64 + 8];
    memcpy(msg, "client", 7);
    memcpy(msg + 7, nc, 32);
    memcpy(msg + 39, ns, 32);
    uint32_t ids[2] = {1, 0};
    memcpy(msg + 71, ids, 8);
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, secret, sizeof(secret) - 1);
    crypto_auth_hmacsha512256_update(&st, msg, sizeof(msg));
    crypto_auth_hmacsha512256_final(&st, b);
    assert_memory_equal(a, b, 32);

    /* Every input changes the proof. */
    wire_proof(b, secret, sizeof(secret) - 2, "client", nc, ns, 1, 0);
    assert_memory_not_equal(a, b, 32);
    wire_proof(b, secret, sizeof(secret) - 1, "server", nc, ns, 1, 0);
    assert_memory_not_equal(a, b, 32);
    wire_proof(b, secret, sizeof(secret) - 1, "client", ns, nc, 1, 0);
    assert_memory_not_equal(a, b, 32);
    wire_proof(b, secret, sizeof(secret) - 1, "client", nc, ns, 0, 1);
    assert_memory_not_equal(a, b, 32);
    wire_proof(b, secret, sizeof(secret) - 1, "client", nc, ns, 1, 2);
    assert_memory_not_equal(a, b, 32);
    uint8_t nc2[32];
    memcpy(nc2, nc, 32);
    nc2[31] ^= 1;
    wire_proof(b, secret, sizeof(secret) - 1, "client", nc2, ns, 1, 0);
    assert_memory_not_equal(a, b, 32);

    /* Session key: deterministic, distinct from the proofs, per direction. */
    wire_session_key(k1, secret, sizeof(secret) - 1, nc, ns, 1, 0);
    wire_session_key(k2, secret, sizeof(secret) - 1, nc, ns, 1, 0);
    assert_memory_equal(k1, k2, 32);
    assert_memory_not_equal(k1, a, 32);
    wire_session_key(k2, secret, sizeof(secret) - 1, nc, ns, 0, 1);
    assert_memory_not_equal(k1, k2, 32);
    wire_session_key(k2, secret, sizeof(secret) - 1, nc2, ns, 1, 0);
    assert_memory_not_equal(k1, k2, 32);
    const uint8_t other[] = "0123456789abcdef-cluster-secreT";
    wire_session_key(k2, other, sizeof(other) - 1, nc, ns, 1, 0);
    assert_memory_not_equal(k1, k2, 32);
}

static void test_type_names(void **state)
{
    assert_string_equal(wire_type_name(WIRE_HELLO), "HELLO");
    assert_string_equal(wire_type_name(WIRE_DSM_REQ), "DSM_REQ");
    assert_string_equal(wire_type_name(WIRE_STATS_REPLY), "STATS_REPLY");
    assert_string_equal(wire_type_name(0), "UNKNOWN");
    assert_string_equal(wire_type_name(-1), "UNKNOWN");
    assert_string_equal(wire_type_name(15), "UNKNOWN");
    assert_string_equal(wire_type_name(1000), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_fields),        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_matches_aead),       cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_structure_rejected), cmocka_unit_test(test_unaligned),
        cmocka_unit_test(test_replay_window),      cmocka_unit_test(test_proof_and_session_key),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
