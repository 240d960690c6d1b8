/* wire.h — the node-to-node wire protocol, independent of the transport that
 * carries it (UCX today). Every message is one fixed 64-byte header followed by
 * `len` payload bytes (at most WIRE_MAX_PAYLOAD). All fields are little-endian.
 *
 * Authentication: nodes prove knowledge of the cluster secret in a handshake
 * (HELLO / CHALLENGE / AUTH / WELCOME, see transport.c) which also yields a
 * per-connection session key; from then on every message carries a 16-byte
 * Poly1305 tag over its header and payload, keyed per message from the session
 * key and the message's sequence number (ChaCha20-Poly1305 with an empty
 * plaintext). Messages with a bad tag, a replayed sequence number, a wrong magic
 * or version, or an impossible length are dropped and counted. */
#ifndef UNUM_CLUSTER_WIRE_H
#define UNUM_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC       0x4d554e55u /* "UNUM" */
#define WIRE_VERSION     1
#define WIRE_MAX_PAYLOAD 8192
#define WIRE_KEY_BYTES   32
#define WIRE_MAC_BYTES   16

enum wire_type {
    /* handshake (transport internal) */
    WIRE_HELLO = 1, /* payload: struct wire_hello */
    WIRE_CHALLENGE, /* payload: 32-byte server nonce */
    WIRE_AUTH,      /* payload: 32-byte proof */
    WIRE_WELCOME,   /* payload: 32-byte proof (mutual) */
    WIRE_REFUSED,   /* payload: reason text */
    WIRE_HEARTBEAT,
    /* distributed shared memory (arg0 = gpa, arg1 = right / flags, arg2 = request id) */
    WIRE_DSM_REQ = 16,
    WIRE_DSM_GRANT,       /* payload: the page, or empty when the requester holds it */
    WIRE_DSM_FETCH,       /* home -> owner: give the page back, keep arg1 */
    WIRE_DSM_FETCH_REPLY, /* owner -> home, payload: the page */
    WIRE_DSM_INV,         /* home -> copy holder: drop the page */
    WIRE_DSM_INV_ACK,
    WIRE_DSM_DONE,   /* requester -> home: grant installed, next request may go */
    WIRE_DSM_RESUME, /* loopback only: held revocations of a page may run */
    /* event routing: arg0 = packed cpu_io, arg1 = data, arg2 = request id */
    WIRE_IO_REQ = 32,
    WIRE_IO_REPLY,
    /* interrupts: arg0 = packed apic_msg, arg1 = destination vCPU mask */
    WIRE_APIC_MSG = 40,
    WIRE_APIC_EOI,     /* arg0 = vector */
    WIRE_APIC_LOGICAL, /* arg0 = vCPU, arg1 = LDR, arg2 = DFR */
    /* time and life cycle */
    WIRE_TIME_PING = 48, /* arg0 = sender's clock at send */
    WIRE_TIME_PONG,      /* arg0 = echoed, arg1 = responder's clock */
    WIRE_START,          /* platform -> all: memory is loaded, run the vCPUs */
    WIRE_STOP,           /* arg0 = guest exit status */
    WIRE_ABORT,          /* arg0 = failed node, payload: reason text */
    WIRE_STATS_REQ,
    WIRE_STATS_REPLY, /* payload: text */
    WIRE_TYPE_MAX = 63,
};

struct wire_hdr {
    uint32_t magic;
    uint8_t version;
    uint8_t type;
    uint16_t src; /* sending node */
    uint16_t dst; /* receiving node */
    uint16_t flags;
    uint32_t len; /* payload bytes */
    uint64_t seq; /* per-connection, strictly increasing; the MAC nonce */
    uint64_t arg[3];
    uint8_t mac[WIRE_MAC_BYTES];
};
_Static_assert(sizeof(struct wire_hdr) == 64, "wire header is 64 bytes");

struct wire_hello {
    uint32_t node; /* claimed node id */
    uint32_t wire_version;
    char unum_version[24]; /* NUL-terminated */
    uint8_t nonce[32];
};

const char *wire_type_name(int type);

/* Handshake payload parsing (the peer is not trusted yet). A HELLO payload is
 * exactly one struct wire_hello whose unum_version is NUL-terminated printable
 * ASCII: 0 and *out filled, or -EPROTO. */
int wire_hello_parse(const void *payload, size_t len, struct wire_hello *out);
/* A REFUSED payload as printable text (other bytes become '?'), truncated to
 * fit outlen - 1 characters. */
void wire_reason_text(const void *payload, size_t len, char *out, size_t outlen);

/* Fills magic/version/src/dst/type/len/seq/args (mac zeroed). */
void wire_init(struct wire_hdr *h, int type, int src, int dst, uint64_t seq, const uint64_t arg[3],
               uint32_t len);
/* Computes and stores h->mac over header + payload with `key`. */
void wire_seal(struct wire_hdr *h, const void *payload, const uint8_t key[WIRE_KEY_BYTES]);
/* Structural checks (magic, version, type range, len <= max and == avail - 64)
 * then the tag. 0 if valid, negative errno (-EPROTO structure, -EBADMSG tag). */
int wire_open(const struct wire_hdr *h, size_t total_len, const uint8_t key[WIRE_KEY_BYTES]);
/* Which Poly1305 computes the tags ("OpenSSL" or "libsodium"); tests force
 * the portable one (libsodium) to check both give the same tags. */
const char *wire_mac_impl(void);
void wire_mac_portable(bool on);
/* Structure only (used for handshake messages before a key exists). */
int wire_check(const struct wire_hdr *h, size_t total_len);

/* Replay window: accepts each sequence number at most once, tolerating
 * reordering within 64 messages. */
struct wire_replay {
    uint64_t top;
    uint64_t window;
};
bool wire_replay_accept(struct wire_replay *r, uint64_t seq);

/* Keyed proofs for the handshake (HMAC-SHA-512/256 of the secret over the
 * transcript) and the session key derivation. */
void wire_proof(uint8_t out[32], const uint8_t *secret, size_t secret_len, const char *label,
                const uint8_t nonce_c[32], const uint8_t nonce_s[32], uint32_t client,
                uint32_t server);
void wire_session_key(uint8_t key[WIRE_KEY_BYTES], const uint8_t *secret, size_t secret_len,
                      const uint8_t nonce_c[32], const uint8_t nonce_s[32], uint32_t client,
                      uint32_t server);

#endif
