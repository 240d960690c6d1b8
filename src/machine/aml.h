/* aml.h — a small builder for ACPI Machine Language (AML) byte code.
 *
 * The builder appends to a growable buffer. Objects that carry a PkgLength
 * (Scope, Device, Method, Package, Buffer, ResourceTemplate) are opened with a
 * *_begin call and closed with the matching *_end call; the end call inserts the
 * PkgLength (1 to 4 bytes, the shortest that fits) and, for packages and
 * buffers, the element count / byte size, so callers never count bytes.
 * Elements of a Package are counted automatically: every data object emitted
 * while a package is the innermost open object counts as one element.
 *
 * Errors (bad name, unbalanced end, out of memory, too deep) are sticky: the
 * first one is remembered, later calls become no-ops, and aml_error() reports
 * it, so building code can run straight through and check once at the end.
 *
 * Names are given as ASL-style paths: "\\" (root), "\\_SB.PCI0", "^PCI0",
 * "_HID", "ISA" (segments shorter than four characters are padded with '_').
 *
 * Reference: ACPI 6.x specification, chapter 20 (AML grammar) and 6.4
 * (resource data types). */
#ifndef UNUM_MACHINE_AML_H
#define UNUM_MACHINE_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 32

enum aml_kind { AML_K_SCOPE, AML_K_DEVICE, AML_K_METHOD, AML_K_PACKAGE, AML_K_BUFFER, AML_K_RT };

struct aml_frame {
    size_t start;   /* offset of the (future) PkgLength */
    uint32_t count; /* package elements seen so far */
    uint8_t kind;   /* enum aml_kind */
};

struct aml {
    uint8_t *data;
    size_t len, cap;
    struct aml_frame stack[AML_MAX_DEPTH];
    int depth;
    int err; /* 0, or the first -errno */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* 0, -EINVAL (malformed input or unbalanced begin/end), -ENOMEM, -E2BIG. */
int aml_error(const struct aml *a);
/* 0 when every opened object was closed and no error occurred. */
int aml_finish(struct aml *a);

/* Encodes a PkgLength for `rest` bytes following it into out[]; returns its
 * size (1..4), or 0 if it does not fit (more than 2^28 - 1 bytes). The encoded
 * value is rest + size. */
int aml_pkglength(uint8_t out[4], size_t rest);

/* --- raw bytes and terms ------------------------------------------------- */
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);
/* Integer with the shortest encoding: ZeroOp, OneOp, OnesOp, Byte/Word/DWord/QWordPrefix. */
void aml_int(struct aml *a, uint64_t v);
/* String (ASCII, no NUL inside). */
void aml_string(struct aml *a, const char *s);
/* EISA ID "AAA####" compressed to a DWord integer (DWordPrefix always). */
void aml_eisaid(struct aml *a, const char *id);
/* A NameString used as a term (a reference to a named object). */
void aml_name_ref(struct aml *a, const char *path);
void aml_arg(struct aml *a, int n);   /* Arg0..Arg6 */
void aml_local(struct aml *a, int n); /* Local0..Local7 */

/* Encodes just the NameString (no counting, usable inside other constructs). */
void aml_namestring(struct aml *a, const char *path);

/* --- named objects --------------------------------------------------------- */
/* Name(path, <object>): emits NameOp and the name; the caller emits exactly one
 * data object next (an integer, string, package, buffer...). */
void aml_name_decl(struct aml *a, const char *path);
void aml_name_int(struct aml *a, const char *path, uint64_t v);
void aml_name_str(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

void aml_scope_begin(struct aml *a, const char *path);
void aml_scope_end(struct aml *a);
void aml_device_begin(struct aml *a, const char *path);
void aml_device_end(struct aml *a);
/* nargs 0..7; serialized methods take sync level 0. */
void aml_method_begin(struct aml *a, const char *path, int nargs, bool serialized);
void aml_method_end(struct aml *a);
/* Return(<term>): emits ReturnOp; the caller emits one term next. */
void aml_return(struct aml *a);

/* Package(){...}: at most 255 elements. */
void aml_package_begin(struct aml *a);
void aml_package_end(struct aml *a);
/* Buffer(){...}: raw bytes between begin and end (use aml_byte/aml_bytes). */
void aml_buffer_begin(struct aml *a);
void aml_buffer_end(struct aml *a);

/* --- resource templates (a Buffer of resource descriptors + EndTag) --------- */
void aml_rt_begin(struct aml *a);
void aml_rt_end(struct aml *a); /* appends EndTag (checksum 0) and closes the buffer */

/* Address space descriptors for bridges: ResourceProducer, MinFixed, MaxFixed,
 * PosDecode, granularity 0, translation 0, length max - min + 1. */
void aml_rd_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_rd_word_io(struct aml *a, uint16_t min, uint16_t max); /* EntireRange */
/* Memory: ReadWrite; cacheable selects Cacheable vs NonCacheable. */
void aml_rd_dword_mem(struct aml *a, uint32_t min, uint32_t max, bool cacheable);
void aml_rd_qword_mem(struct aml *a, uint64_t min, uint64_t max, bool cacheable);
/* IO (Decode16, min, max, align, len). */
void aml_rd_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* Memory32Fixed (ReadWrite or ReadOnly, base, len). */
void aml_rd_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool rw);
/* IRQNoFlags(){irqs in mask}: edge, active-high, exclusive ISA interrupts. */
void aml_rd_irq_noflags(struct aml *a, uint16_t mask);
/* Interrupt (ResourceConsumer, Level/Edge, ActiveLow/High, Shared/Exclusive){gsi}. */
void aml_rd_ext_irq(struct aml *a, bool level, bool active_low, bool shared, uint32_t gsi);

#endif
