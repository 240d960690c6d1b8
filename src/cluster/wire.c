/* wire.c — framing, per-message authentication, replay window and handshake
 * proofs of the node-to-node protocol (docs/ARCHITECTURE.md, "The wire protocol").
 *
 * The tag is exactly what crypto_aead_chacha20poly1305_ietf_encrypt_detached
 * computes for an empty message with the header (mac zeroed) followed by the
 * payload as additional data, key = session key, nonce = src (2 bytes LE) |
 * dst (2 bytes LE) | seq (8 bytes LE). It is computed here with the streaming
 * Poly1305 interface (one-time key = the first 32 bytes of the ChaCha20 block
 * for counter 0, as RFC 8439 does) so that the header and the payload need not
 * be contiguous; tests/unit/test_wire.c checks both give the same tag.
 *
 * Poly1305 itself comes from OpenSSL's libcrypto when it has it: its vector
 * code tags a 4 KiB page in ~0.46 µs where libsodium's takes ~1.15 µs on this
 * project's hosts, and a page goes through a tag twice per remote miss
 * (sender, receiver). libsodium's is the fallback; both compute the same
 * function. */
#include "cluster/wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the wire format is little-endian and so is every field access here"
#endif

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static EVP_MAC *ossl_poly1305;    /* NULL: OpenSSL has none, libsodium's is used */
static pthread_key_t mac_ctx_key; /* this thread's EVP_MAC_CTX, freed when it exits */
static _Atomic bool portable_only;

static void free_mac_ctx(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}

static void sodium_init_once(void)
{
    if (sodium_init() < 0) abort();
    if (pthread_key_create(&mac_ctx_key, free_mac_ctx) == 0)
        ossl_poly1305 = EVP_MAC_fetch(NULL, "POLY1305", NULL);
}

static inline void wire_crypto_init(void)
{
    pthread_once(&sodium_once, sodium_init_once);
}

static const char *const type_names[WIRE_TYPE_MAX + 1] = {
    [WIRE_HELLO] = "HELLO",
    [WIRE_CHALLENGE] = "CHALLENGE",
    [WIRE_AUTH] = "AUTH",
    [WIRE_WELCOME] = "WELCOME",
    [WIRE_REFUSED] = "REFUSED",
    [WIRE_HEARTBEAT] = "HEARTBEAT",
    [WIRE_DSM_REQ] = "DSM_REQ",
    [WIRE_DSM_GRANT] = "DSM_GRANT",
    [WIRE_DSM_FETCH] = "DSM_FETCH",
    [WIRE_DSM_FETCH_REPLY] = "DSM_FETCH_REPLY",
    [WIRE_DSM_INV] = "DSM_INV",
    [WIRE_DSM_INV_ACK] = "DSM_INV_ACK",
    [WIRE_DSM_DONE] = "DSM_DONE",
    [WIRE_IO_REQ] = "IO_REQ",
    [WIRE_IO_REPLY] = "IO_REPLY",
    [WIRE_APIC_MSG] = "APIC_MSG",
    [WIRE_APIC_EOI] = "APIC_EOI",
    [WIRE_APIC_LOGICAL] = "APIC_LOGICAL",
    [WIRE_TIME_PING] = "TIME_PING",
    [WIRE_TIME_PONG] = "TIME_PONG",
    [WIRE_START] = "START",
    [WIRE_STOP] = "STOP",
    [WIRE_ABORT] = "ABORT",
    [WIRE_STATS_REQ] = "STATS_REQ",
    [WIRE_STATS_REPLY] = "STATS_REPLY",
};

const char *wire_type_name(int type)
{
    if (type < 0 || type > WIRE_TYPE_MAX || !type_names[type]) return "UNKNOWN";
    return type_names[type];
}

int wire_hello_parse(const void *payload, size_t len, struct wire_hello *out)
{
    if (len != sizeof(struct wire_hello)) return -EPROTO;
    struct wire_hello h;
    memcpy(&h, payload, sizeof(h));
    size_t n = strnlen(h.unum_version, sizeof(h.unum_version));
    if (n == 0 || n == sizeof(h.unum_version)) return -EPROTO;
    for (size_t i = 0; i < n; i++)
        if (h.unum_version[i] < 0x20 || h.unum_version[i] > 0x7e) return -EPROTO;
    memset(h.unum_version + n, 0, sizeof(h.unum_version) - n);
    *out = h;
    return 0;
}

void wire_reason_text(const void *payload, size_t len, char *out, size_t outlen)
{
    if (!outlen) return;
    const uint8_t *p = payload;
    size_t n = len < outlen - 1 ? len : outlen - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] <= 0x7e ? (char)p[i] : '?';
    out[n] = 0;
}

void wire_init(struct wire_hdr *h, int type, int src, int dst, uint64_t seq, const uint64_t arg[3],
               uint32_t len)
{
    memset(h, 0, sizeof(*h));
    h->magic = WIRE_MAGIC;
    h->version = WIRE_VERSION;
    h->type = (uint8_t)type;
    h->src = (uint16_t)src;
    h->dst = (uint16_t)dst;
    h->len = len;
    h->seq = seq;
    if (arg) memcpy(h->arg, arg, sizeof(h->arg));
}

/* This thread's OpenSSL Poly1305 context, or NULL to use libsodium's. */
static EVP_MAC_CTX *ossl_mac_ctx(void)
{
    if (!ossl_poly1305 || atomic_load_explicit(&portable_only, memory_order_relaxed)) return NULL;
    EVP_MAC_CTX *ctx = pthread_getspecific(mac_ctx_key);
    if (ctx) return ctx;
    ctx = EVP_MAC_CTX_new(ossl_poly1305);
    if (ctx && pthread_setspecific(mac_ctx_key, ctx) != 0) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

void wire_mac_portable(bool on)
{
    wire_crypto_init();
    atomic_store(&portable_only, on);
}

const char *wire_mac_impl(void)
{
    wire_crypto_init();
    return ossl_mac_ctx() ? "OpenSSL" : "libsodium";
}

/* Poly1305 over a sequence of parts, with either implementation. */
struct poly {
    EVP_MAC_CTX *ossl;
    crypto_onetimeauth_poly1305_state st;
    bool failed;
};

static void poly_init(struct poly *p, const uint8_t otk[32])
{
    p->failed = false;
    p->ossl = ossl_mac_ctx();
    if (p->ossl && !EVP_MAC_init(p->ossl, otk, 32, NULL)) p->ossl = NULL;
    if (!p->ossl) crypto_onetimeauth_poly1305_init(&p->st, otk);
}

static void poly_update(struct poly *p, const void *data, size_t len)
{
    if (!p->ossl)
        crypto_onetimeauth_poly1305_update(&p->st, data, len);
    else if (!EVP_MAC_update(p->ossl, data, len))
        p->failed = true;
}

/* false if OpenSSL failed (the tag is then unusable) */
static bool poly_final(struct poly *p, uint8_t tag[16])
{
    if (!p->ossl) {
        crypto_onetimeauth_poly1305_final(&p->st, tag);
        sodium_memzero(&p->st, sizeof(p->st));
        return true;
    }
    size_t n = 0;
    return EVP_MAC_final(p->ossl, tag, &n, 16) && n == 16 && !p->failed;
}

/* The tag over `hdr` (its mac field already zeroed) and `len` payload bytes. */
static bool compute_tag(uint8_t tag[WIRE_MAC_BYTES], const struct wire_hdr *hdr,
                        const void *payload, uint32_t len, const uint8_t key[WIRE_KEY_BYTES])
{
    static const uint8_t zeros[16];
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES]; /* 12 */
    memcpy(nonce, &hdr->src, 2);
    memcpy(nonce + 2, &hdr->dst, 2);
    memcpy(nonce + 4, &hdr->seq, 8);

    uint8_t otk[crypto_onetimeauth_poly1305_KEYBYTES];
    crypto_stream_chacha20_ietf(otk, sizeof(otk), nonce, key);

    struct poly st;
    poly_init(&st, otk);
    sodium_memzero(otk, sizeof(otk));
    poly_update(&st, hdr, sizeof(*hdr));
    uint64_t adlen = sizeof(*hdr) + (uint64_t)len;
    if (len) poly_update(&st, payload, len);
    if (adlen % 16) poly_update(&st, zeros, 16 - adlen % 16);
    uint64_t lens[2] = {adlen, 0}; /* additional data, message (empty) */
    poly_update(&st, lens, sizeof(lens));
    return poly_final(&st, tag);
}

void wire_seal(struct wire_hdr *h, const void *payload, const uint8_t key[WIRE_KEY_BYTES])
{
    wire_crypto_init();
    memset(h->mac, 0, sizeof(h->mac));
    uint8_t tag[WIRE_MAC_BYTES];
    /* a tag OpenSSL failed to compute is zero: the receiver drops the message */
    if (!compute_tag(tag, h, payload, h->len, key)) memset(tag, 0, sizeof(tag));
    memcpy(h->mac, tag, sizeof(tag));
}

int wire_check(const struct wire_hdr *h, size_t total_len)
{
    if (total_len < sizeof(struct wire_hdr)) return -EPROTO;
    struct wire_hdr c;
    memcpy(&c, h, sizeof(c)); /* h may be unaligned in a receive buffer */
    if (c.magic != WIRE_MAGIC || c.version != WIRE_VERSION) return -EPROTO;
    if (c.type == 0 || c.type > WIRE_TYPE_MAX) return -EPROTO;
    if (c.len > WIRE_MAX_PAYLOAD || c.len != total_len - sizeof(struct wire_hdr)) return -EPROTO;
    return 0;
}

int wire_open(const struct wire_hdr *h, size_t total_len, const uint8_t key[WIRE_KEY_BYTES])
{
    int r = wire_check(h, total_len);
    if (r) return r;
    wire_crypto_init();
    struct wire_hdr c;
    memcpy(&c, h, sizeof(c));
    memset(c.mac, 0, sizeof(c.mac));
    uint8_t tag[WIRE_MAC_BYTES];
    if (!compute_tag(tag, &c, (const uint8_t *)h + sizeof(c), c.len, key)) return -EBADMSG;
    uint8_t got[WIRE_MAC_BYTES];
    memcpy(got, (const uint8_t *)h + offsetof(struct wire_hdr, mac), sizeof(got));
    return crypto_verify_16(tag, got) == 0 ? 0 : -EBADMSG;
}

/* `top` is the highest sequence number accepted so far; bit i of `window` says
 * whether top - i was accepted. Sequence number 0 is never accepted (handshake
 * messages carry 0; data messages count from 1). */
bool wire_replay_accept(struct wire_replay *r, uint64_t seq)
{
    if (seq == 0) return false;
    if (seq > r->top) {
        uint64_t shift = seq - r->top;
        r->window = shift >= 64 ? 0 : r->window << shift;
        r->window |= 1;
        r->top = seq;
        return true;
    }
    uint64_t off = r->top - seq;
    if (off >= 64) return false;
    uint64_t bit = 1ull << off;
    if (r->window & bit) return false;
    r->window |= bit;
    return true;
}

void wire_proof(uint8_t out[32], const uint8_t *secret, size_t secret_len, const char *label,
                const uint8_t nonce_c[32], const uint8_t nonce_s[32], uint32_t client,
                uint32_t server)
{
    wire_crypto_init();
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, secret, secret_len);
    /* The label with its terminating NUL, so no label is a prefix of another's input. */
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)label, strlen(label) + 1);
    crypto_auth_hmacsha512256_update(&st, nonce_c, 32);
    crypto_auth_hmacsha512256_update(&st, nonce_s, 32);
    uint32_t ids[2] = {client, server}; /* little-endian */
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)ids, sizeof(ids));
    crypto_auth_hmacsha512256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

void wire_session_key(uint8_t key[WIRE_KEY_BYTES], const uint8_t *secret, size_t secret_len,
                      const uint8_t nonce_c[32], const uint8_t nonce_s[32], uint32_t client,
                      uint32_t server)
{
    _Static_assert(WIRE_KEY_BYTES == 32, "session key is one HMAC-SHA-512/256 output");
    wire_proof(key, secret, secret_len, "unum session key v1", nonce_c, nonce_s, client, server);
}
