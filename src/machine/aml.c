/* aml.c — AML byte-code builder (see aml.h). */
#include "machine/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* AML opcodes used here (ACPI 6.x, 20.2). */
enum {
    OP_ZERO = 0x00,
    OP_ONE = 0x01,
    OP_NAME = 0x08,
    OP_BYTE = 0x0A,
    OP_WORD = 0x0B,
    OP_DWORD = 0x0C,
    OP_STRING = 0x0D,
    OP_QWORD = 0x0E,
    OP_SCOPE = 0x10,
    OP_BUFFER = 0x11,
    OP_PACKAGE = 0x12,
    OP_METHOD = 0x14,
    OP_DUAL_NAME = 0x2E,
    OP_MULTI_NAME = 0x2F,
    OP_EXT = 0x5B,
    OP_ROOT = 0x5C,
    OP_PARENT = 0x5E,
    OP_LOCAL0 = 0x60,
    OP_ARG0 = 0x68,
    OP_RETURN = 0xA4,
    OP_ONES = 0xFF,
    EXTOP_DEVICE = 0x82,
};

static void set_err(struct aml *a, int err)
{
    if (!a->err) a->err = err;
}

static int reserve(struct aml *a, size_t n)
{
    if (a->err) return -1;
    if (a->len + n <= a->cap) return 0;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + n)
        cap *= 2;
    uint8_t *p = realloc(a->data, cap);
    if (!p) {
        set_err(a, -ENOMEM);
        return -1;
    }
    a->data = p;
    a->cap = cap;
    return 0;
}

/* Inserts n bytes at offset `at`, moving what follows. */
static void insert(struct aml *a, size_t at, const uint8_t *p, size_t n)
{
    if (reserve(a, n)) return;
    memmove(a->data + at + n, a->data + at, a->len - at);
    memcpy(a->data + at, p, n);
    a->len += n;
}

void aml_init(struct aml *a)
{
    memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
    free(a->data);
    memset(a, 0, sizeof(*a));
}

int aml_error(const struct aml *a)
{
    return a->err;
}

int aml_finish(struct aml *a)
{
    if (!a->err && a->depth != 0) set_err(a, -EINVAL);
    return a->err;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
    if (reserve(a, n)) return;
    memcpy(a->data + a->len, p, n);
    a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

static void put_le(struct aml *a, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    aml_bytes(a, b, (size_t)n);
}

/* A data object was emitted: count it if the innermost open object is a package. */
static void note_elem(struct aml *a)
{
    if (a->depth > 0 && a->stack[a->depth - 1].kind == AML_K_PACKAGE)
        a->stack[a->depth - 1].count++;
}

int aml_pkglength(uint8_t out[4], size_t rest)
{
    if (rest + 1 <= 0x3F) {
        out[0] = (uint8_t)(rest + 1);
        return 1;
    }
    for (int n = 2; n <= 4; n++) {
        uint64_t v = (uint64_t)rest + (uint64_t)n;
        if (v < (1ull << (4 + 8 * (n - 1)))) {
            out[0] = (uint8_t)(((n - 1) << 6) | (v & 0x0F));
            for (int i = 1; i < n; i++)
                out[i] = (uint8_t)(v >> (4 + 8 * (i - 1)));
            return n;
        }
    }
    return 0;
}

/* --- names ------------------------------------------------------------------ */

static bool seg_char_ok(char c, bool first)
{
    if ((c >= 'A' && c <= 'Z') || c == '_') return true;
    return !first && c >= '0' && c <= '9';
}

void aml_namestring(struct aml *a, const char *path)
{
    if (a->err) return;
    const char *p = path;
    if (*p == '\\') {
        aml_byte(a, OP_ROOT);
        p++;
    } else {
        while (*p == '^') {
            aml_byte(a, OP_PARENT);
            p++;
        }
    }
    if (*p == '\0') {
        aml_byte(a, OP_ZERO); /* NullName */
        return;
    }
    /* Split into segments, validating as we go. */
    char segs[255][4];
    int nseg = 0;
    while (1) {
        if (nseg == 255) {
            set_err(a, -EINVAL);
            return;
        }
        int n = 0;
        while (p[n] && p[n] != '.') {
            if (n == 4 || !seg_char_ok(p[n], n == 0)) {
                set_err(a, -EINVAL);
                return;
            }
            n++;
        }
        if (n == 0) {
            set_err(a, -EINVAL);
            return;
        }
        memcpy(segs[nseg], p, (size_t)n);
        memset(segs[nseg] + n, '_', (size_t)(4 - n));
        nseg++;
        p += n;
        if (*p == '\0') break;
        p++; /* '.' */
    }
    if (nseg == 2) {
        aml_byte(a, OP_DUAL_NAME);
    } else if (nseg > 2) {
        aml_byte(a, OP_MULTI_NAME);
        aml_byte(a, (uint8_t)nseg);
    }
    aml_bytes(a, segs, (size_t)nseg * 4);
}

void aml_name_ref(struct aml *a, const char *path)
{
    note_elem(a);
    aml_namestring(a, path);
}

/* --- data objects --------------------------------------------------------------- */

void aml_int(struct aml *a, uint64_t v)
{
    note_elem(a);
    if (v == 0) {
        aml_byte(a, OP_ZERO);
    } else if (v == 1) {
        aml_byte(a, OP_ONE);
    } else if (v == UINT64_MAX) {
        aml_byte(a, OP_ONES);
    } else if (v <= 0xFF) {
        aml_byte(a, OP_BYTE);
        put_le(a, v, 1);
    } else if (v <= 0xFFFF) {
        aml_byte(a, OP_WORD);
        put_le(a, v, 2);
    } else if (v <= 0xFFFFFFFFu) {
        aml_byte(a, OP_DWORD);
        put_le(a, v, 4);
    } else {
        aml_byte(a, OP_QWORD);
        put_le(a, v, 8);
    }
}

void aml_string(struct aml *a, const char *s)
{
    note_elem(a);
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p > 0x7F) {
            set_err(a, -EINVAL);
            return;
        }
    }
    aml_byte(a, OP_STRING);
    aml_bytes(a, s, strlen(s) + 1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
    note_elem(a);
    if (strlen(id) != 7) {
        set_err(a, -EINVAL);
        return;
    }
    uint8_t b[4];
    unsigned v = 0;
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z') {
            set_err(a, -EINVAL);
            return;
        }
        v = (v << 5) | (unsigned)(id[i] - '@');
    }
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
    for (int i = 0; i < 2; i++) {
        int hi = hexval(id[3 + 2 * i]), lo = hexval(id[4 + 2 * i]);
        if (hi < 0 || lo < 0) {
            set_err(a, -EINVAL);
            return;
        }
        b[2 + i] = (uint8_t)(hi << 4 | lo);
    }
    aml_byte(a, OP_DWORD);
    aml_bytes(a, b, 4);
}

void aml_arg(struct aml *a, int n)
{
    if (n < 0 || n > 6) {
        set_err(a, -EINVAL);
        return;
    }
    note_elem(a);
    aml_byte(a, (uint8_t)(OP_ARG0 + n));
}

void aml_local(struct aml *a, int n)
{
    if (n < 0 || n > 7) {
        set_err(a, -EINVAL);
        return;
    }
    note_elem(a);
    aml_byte(a, (uint8_t)(OP_LOCAL0 + n));
}

void aml_name_decl(struct aml *a, const char *path)
{
    aml_byte(a, OP_NAME);
    aml_namestring(a, path);
}

void aml_name_int(struct aml *a, const char *path, uint64_t v)
{
    aml_name_decl(a, path);
    aml_int(a, v);
}

void aml_name_str(struct aml *a, const char *path, const char *s)
{
    aml_name_decl(a, path);
    aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
    aml_name_decl(a, path);
    aml_eisaid(a, id);
}

void aml_return(struct aml *a)
{
    aml_byte(a, OP_RETURN);
}

/* --- objects with a PkgLength ---------------------------------------------------- */

static void open_frame(struct aml *a, enum aml_kind kind)
{
    if (a->err) return;
    if (a->depth == AML_MAX_DEPTH) {
        set_err(a, -E2BIG);
        return;
    }
    a->stack[a->depth++] = (struct aml_frame){.start = a->len, .count = 0, .kind = (uint8_t)kind};
}

/* Closes the innermost frame, which must be of `kind`: inserts the PkgLength
 * (and the element count or buffer size) at the frame's start. */
static void close_frame(struct aml *a, enum aml_kind kind)
{
    if (a->err) return;
    if (a->depth == 0 || a->stack[a->depth - 1].kind != kind) {
        set_err(a, -EINVAL);
        return;
    }
    struct aml_frame f = a->stack[--a->depth];
    uint8_t extra[9];
    size_t nextra = 0;
    size_t body = a->len - f.start;
    if (kind == AML_K_PACKAGE) {
        if (f.count > 255) {
            set_err(a, -E2BIG);
            return;
        }
        extra[nextra++] = (uint8_t)f.count;
    } else if (kind == AML_K_BUFFER || kind == AML_K_RT) {
        /* BufferSize is a TermArg: an integer in its shortest encoding. */
        struct aml tmp;
        aml_init(&tmp);
        aml_int(&tmp, body);
        if (tmp.err || tmp.len > sizeof(extra)) {
            set_err(a, tmp.err ? tmp.err : -E2BIG);
            aml_free(&tmp);
            return;
        }
        memcpy(extra, tmp.data, tmp.len);
        nextra = tmp.len;
        aml_free(&tmp);
    }
    uint8_t hdr[4 + sizeof(extra)];
    int n = aml_pkglength(hdr, body + nextra);
    if (n == 0) {
        set_err(a, -E2BIG);
        return;
    }
    memcpy(hdr + n, extra, nextra);
    insert(a, f.start, hdr, (size_t)n + nextra);
}

/* Opcode, then a frame whose body starts with the name. */
static void begin_named(struct aml *a, const uint8_t *op, size_t nop, enum aml_kind kind,
                        const char *path)
{
    aml_bytes(a, op, nop);
    open_frame(a, kind);
    aml_namestring(a, path);
}

void aml_scope_begin(struct aml *a, const char *path)
{
    static const uint8_t op[] = {OP_SCOPE};
    begin_named(a, op, sizeof(op), AML_K_SCOPE, path);
}

void aml_scope_end(struct aml *a)
{
    close_frame(a, AML_K_SCOPE);
}

void aml_device_begin(struct aml *a, const char *path)
{
    static const uint8_t op[] = {OP_EXT, EXTOP_DEVICE};
    begin_named(a, op, sizeof(op), AML_K_DEVICE, path);
}

void aml_device_end(struct aml *a)
{
    close_frame(a, AML_K_DEVICE);
}

void aml_method_begin(struct aml *a, const char *path, int nargs, bool serialized)
{
    static const uint8_t op[] = {OP_METHOD};
    if (nargs < 0 || nargs > 7) {
        set_err(a, -EINVAL);
        return;
    }
    begin_named(a, op, sizeof(op), AML_K_METHOD, path);
    aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_method_end(struct aml *a)
{
    close_frame(a, AML_K_METHOD);
}

void aml_package_begin(struct aml *a)
{
    note_elem(a);
    aml_byte(a, OP_PACKAGE);
    open_frame(a, AML_K_PACKAGE);
}

void aml_package_end(struct aml *a)
{
    close_frame(a, AML_K_PACKAGE);
}

void aml_buffer_begin(struct aml *a)
{
    note_elem(a);
    aml_byte(a, OP_BUFFER);
    open_frame(a, AML_K_BUFFER);
}

void aml_buffer_end(struct aml *a)
{
    close_frame(a, AML_K_BUFFER);
}

/* --- resource descriptors (ACPI 6.x, 6.4) ---------------------------------------- */

void aml_rt_begin(struct aml *a)
{
    note_elem(a);
    aml_byte(a, OP_BUFFER);
    open_frame(a, AML_K_RT);
}

void aml_rt_end(struct aml *a)
{
    if (!a->err && (a->depth == 0 || a->stack[a->depth - 1].kind != AML_K_RT)) {
        set_err(a, -EINVAL);
        return;
    }
    static const uint8_t end_tag[] = {0x79, 0x00}; /* checksum 0: "treat as correct" */
    aml_bytes(a, end_tag, sizeof(end_tag));
    close_frame(a, AML_K_RT);
}

enum { RT_MEM = 0, RT_IO = 1, RT_BUS = 2 };
#define GFLAGS_PRODUCER_FIXED 0x0C /* _MAF | _MIF, positive decode, producer */

/* Word/DWord/QWord Address Space Descriptor with granularity and translation 0. */
static void addr_desc(struct aml *a, uint8_t tag, int width, uint8_t rtype, uint8_t tflags,
                      uint64_t min, uint64_t max)
{
    if (max < min) {
        set_err(a, -EINVAL);
        return;
    }
    uint16_t dlen = (uint16_t)(3 + 5 * width);
    uint8_t hdr[6] = {tag,   (uint8_t)dlen,         (uint8_t)(dlen >> 8),
                      rtype, GFLAGS_PRODUCER_FIXED, tflags};
    aml_bytes(a, hdr, sizeof(hdr));
    put_le(a, 0, width); /* granularity */
    put_le(a, min, width);
    put_le(a, max, width);
    put_le(a, 0, width); /* translation offset */
    put_le(a, max - min + 1, width);
}

void aml_rd_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
    addr_desc(a, 0x88, 2, RT_BUS, 0x00, min, max);
}

void aml_rd_word_io(struct aml *a, uint16_t min, uint16_t max)
{
    addr_desc(a, 0x88, 2, RT_IO, 0x03 /* EntireRange */, min, max);
}

static uint8_t mem_tflags(bool cacheable)
{
    return (uint8_t)(0x01 /* ReadWrite */ | (cacheable ? 0x02 : 0x00));
}

void aml_rd_dword_mem(struct aml *a, uint32_t min, uint32_t max, bool cacheable)
{
    addr_desc(a, 0x87, 4, RT_MEM, mem_tflags(cacheable), min, max);
}

void aml_rd_qword_mem(struct aml *a, uint64_t min, uint64_t max, bool cacheable)
{
    if (min == 0 && max == UINT64_MAX) { /* length would overflow */
        set_err(a, -EINVAL);
        return;
    }
    addr_desc(a, 0x8A, 8, RT_MEM, mem_tflags(cacheable), min, max);
}

void aml_rd_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
    uint8_t d[8] = {0x47,         0x01 /* Decode16 */, (uint8_t)min, (uint8_t)(min >> 8),
                    (uint8_t)max, (uint8_t)(max >> 8), align,        len};
    aml_bytes(a, d, sizeof(d));
}

void aml_rd_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool rw)
{
    uint8_t d[4] = {0x86, 0x09, 0x00, rw ? 0x01 : 0x00};
    aml_bytes(a, d, sizeof(d));
    put_le(a, base, 4);
    put_le(a, len, 4);
}

void aml_rd_irq_noflags(struct aml *a, uint16_t mask)
{
    uint8_t d[3] = {0x22, (uint8_t)mask, (uint8_t)(mask >> 8)};
    aml_bytes(a, d, sizeof(d));
}

void aml_rd_ext_irq(struct aml *a, bool level, bool active_low, bool shared, uint32_t gsi)
{
    uint8_t flags = (uint8_t)(0x01 /* consumer */ | (level ? 0 : 0x02) | (active_low ? 0x04 : 0) |
                              (shared ? 0x08 : 0));
    uint8_t d[5] = {0x89, 0x06, 0x00, flags, 0x01 /* one interrupt */};
    aml_bytes(a, d, sizeof(d));
    put_le(a, gsi, 4);
}
