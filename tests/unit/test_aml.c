/* AML builder tests: byte-exact encodings against hand-assembled AML (the
 * composite block was also cross-checked against iasl 20200925's output),
 * PkgLength forms at their boundaries, name paths, automatic package element
 * counting, and the sticky error handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/aml.h"

static void dump(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s (%zu):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02X", p[i]);
    fprintf(stderr, "\n");
}

#define EXPECT_AML(a, ...)                                                                         \
    do {                                                                                           \
        static const uint8_t exp_[] = {__VA_ARGS__};                                               \
        assert_int_equal(aml_finish(a), 0);                                                        \
        if ((a)->len != sizeof(exp_) || memcmp((a)->data, exp_, sizeof(exp_))) {                   \
            dump("expected", exp_, sizeof(exp_));                                                  \
            dump("got     ", (a)->data, (a)->len);                                                 \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static void test_name_hid_eisaid(void **state)
{
    struct aml a;
    aml_init(&a);
    aml_name_eisaid(&a, "_HID", "PNP0A03");
    EXPECT_AML(&a, 0x08, 0x5F, 0x48, 0x49, 0x44, 0x0C, 0x41, 0xD0, 0x0A, 0x03);
    aml_free(&a);

    aml_init(&a);
    aml_eisaid(&a, "PNP0501");
    EXPECT_AML(&a, 0x0C, 0x41, 0xD0, 0x05, 0x01);
    aml_free(&a);

    aml_init(&a);
    aml_eisaid(&a, "PNP0B00");
    EXPECT_AML(&a, 0x0C, 0x41, 0xD0, 0x0B, 0x00);
    aml_free(&a);

    static const char *bad[] = {"pnp0A03", "PNP0A0", "PNP0A033", "PNP0G03", "P1P0A03"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aml_init(&a);
        aml_eisaid(&a, bad[i]);
        assert_int_equal(aml_error(&a), -EINVAL);
        aml_free(&a);
    }
}

static void test_integers(void **state)
{
    struct aml a;
#define INT_CASE(v, ...)                                                                           \
    aml_init(&a);                                                                                  \
    aml_int(&a, (v));                                                                              \
    EXPECT_AML(&a, __VA_ARGS__);                                                                   \
    aml_free(&a)
    INT_CASE(0, 0x00);
    INT_CASE(1, 0x01);
    INT_CASE(2, 0x0A, 0x02);
    INT_CASE(0xFF, 0x0A, 0xFF);
    INT_CASE(0x100, 0x0B, 0x00, 0x01);
    INT_CASE(0xFFFF, 0x0B, 0xFF, 0xFF);
    INT_CASE(0x10000, 0x0C, 0x00, 0x00, 0x01, 0x00);
    INT_CASE(0xFFFFFFFFull, 0x0C, 0xFF, 0xFF, 0xFF, 0xFF);
    INT_CASE(0x100000000ull, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
    INT_CASE(0x0123456789ABCDEFull, 0x0E, 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01);
    INT_CASE(UINT64_MAX - 1, 0x0E, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    INT_CASE(UINT64_MAX, 0xFF);
#undef INT_CASE
}

static void test_strings(void **state)
{
    struct aml a;
    aml_init(&a);
    aml_name_str(&a, "_HID", "ACPI0007");
    EXPECT_AML(&a, 0x08, 0x5F, 0x48, 0x49, 0x44, 0x0D, 'A', 'C', 'P', 'I', '0', '0', '0', '7',
               0x00);
    aml_free(&a);

    aml_init(&a);
    aml_string(&a, "");
    EXPECT_AML(&a, 0x0D, 0x00);
    aml_free(&a);

    aml_init(&a);
    aml_string(&a, "\xC3\xA9");
    assert_int_equal(aml_error(&a), -EINVAL);
    aml_free(&a);
}

static void test_name_paths(void **state)
{
    struct aml a;
#define PATH_CASE(p, ...)                                                                          \
    aml_init(&a);                                                                                  \
    aml_namestring(&a, (p));                                                                       \
    EXPECT_AML(&a, __VA_ARGS__);                                                                   \
    aml_free(&a)
    PATH_CASE("", 0x00);
    PATH_CASE("\\", 0x5C, 0x00);
    PATH_CASE("_SB", '_', 'S', 'B', '_');
    PATH_CASE("_SB_", '_', 'S', 'B', '_');
    PATH_CASE("A", 'A', '_', '_', '_');
    PATH_CASE("\\_SB", 0x5C, '_', 'S', 'B', '_');
    PATH_CASE("\\_S5", 0x5C, '_', 'S', '5', '_');
    PATH_CASE("\\_SB.PCI0", 0x5C, 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
    PATH_CASE("PCI0.ISA", 0x2E, 'P', 'C', 'I', '0', 'I', 'S', 'A', '_');
    PATH_CASE("\\_SB.PCI0.ISA", 0x5C, 0x2F, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S',
              'A', '_');
    PATH_CASE("\\_SB.CPUS.C001.CSTA", 0x5C, 0x2F, 0x04, '_', 'S', 'B', '_', 'C', 'P', 'U', 'S', 'C',
              '0', '0', '1', 'C', 'S', 'T', 'A');
    PATH_CASE("^PCI0", 0x5E, 'P', 'C', 'I', '0');
    PATH_CASE("^^X.Y", 0x5E, 0x5E, 0x2E, 'X', '_', '_', '_', 'Y', '_', '_', '_');
    PATH_CASE("^", 0x5E, 0x00);
#undef PATH_CASE

    static const char *bad[] = {"abc", "TOOLONG", "1ABC", "A..B", ".", "A.",
                                ".A",  "\\\\A",   "A-B",  "\\^A", "A^"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aml_init(&a);
        aml_namestring(&a, bad[i]);
        if (aml_error(&a) != -EINVAL) fail_msg("path \"%s\" accepted", bad[i]);
        aml_free(&a);
    }
}

static void test_pkglength_encoding(void **state)
{
    uint8_t out[4];
    /* rest = bytes following the PkgLength; the encoded value includes the
     * PkgLength's own bytes. One byte holds values up to 63. */
    assert_int_equal(aml_pkglength(out, 0), 1);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(aml_pkglength(out, 62), 1); /* value 63: the largest 1-byte form */
    assert_int_equal(out[0], 0x3F);
    /* rest 63: value 64 does not fit one byte, so two bytes encode 65. */
    assert_int_equal(aml_pkglength(out, 63), 2);
    assert_int_equal(out[0], 0x41);
    assert_int_equal(out[1], 0x04);
    /* Two bytes hold values up to 4095 (12 bits). */
    assert_int_equal(aml_pkglength(out, 4093), 2);
    assert_int_equal(out[0], 0x4F);
    assert_int_equal(out[1], 0xFF);
    /* rest 4094: 4096 does not fit two bytes; three encode 4097. */
    assert_int_equal(aml_pkglength(out, 4094), 3);
    assert_int_equal(out[0], 0x81);
    assert_int_equal(out[1], 0x00);
    assert_int_equal(out[2], 0x01);
    /* Three bytes up to 2^20 - 1, four up to 2^28 - 1. */
    assert_int_equal(aml_pkglength(out, 0xFFFFF - 3), 3);
    assert_int_equal(out[0], 0x8F);
    assert_int_equal(out[1], 0xFF);
    assert_int_equal(out[2], 0xFF);
    assert_int_equal(aml_pkglength(out, 0xFFFFF - 2), 4);
    assert_int_equal(out[0], 0xC1);
    assert_int_equal(out[1], 0x00);
    assert_int_equal(out[2], 0x00);
    assert_int_equal(out[3], 0x01);
    assert_int_equal(aml_pkglength(out, 0x0FFFFFFF - 4), 4);
    assert_int_equal(out[0], 0xCF);
    assert_int_equal(out[3], 0xFF);
    assert_int_equal(aml_pkglength(out, 0x0FFFFFFF - 3), 0); /* too long */
}

/* Scope(ABCD) { <n filler bytes> } and check the PkgLength form and the total. */
static void scope_with_body(size_t filler, const uint8_t *exp_pkg, size_t exp_n)
{
    struct aml a;
    aml_init(&a);
    aml_scope_begin(&a, "ABCD");
    for (size_t i = 0; i < filler; i++)
        aml_byte(&a, 0xA3); /* Noop */
    aml_scope_end(&a);
    assert_int_equal(aml_finish(&a), 0);
    assert_int_equal(a.len, 1 + exp_n + 4 + filler);
    assert_int_equal(a.data[0], 0x10);
    assert_memory_equal(a.data + 1, exp_pkg, exp_n);
    assert_memory_equal(a.data + 1 + exp_n, "ABCD", 4);
    aml_free(&a);
}

static void test_pkglength_in_objects(void **state)
{
    /* Body (name + filler) of 62, 63, 4093 and 4094 bytes: PkgLength values 63
     * (1 byte), 65 (2 bytes), 4095 (2 bytes), 4097 (3 bytes). */
    scope_with_body(58, (const uint8_t[]){0x3F}, 1);
    scope_with_body(59, (const uint8_t[]){0x41, 0x04}, 2);
    scope_with_body(4089, (const uint8_t[]){0x4F, 0xFF}, 2);
    scope_with_body(4090, (const uint8_t[]){0x81, 0x00, 0x01}, 3);
    scope_with_body(0x100000, (const uint8_t[]){0xC8, 0x00, 0x00, 0x01}, 4); /* 0x100008 */
}

static void test_nested_fixups(void **state)
{
    /* Scope(\_SB) { Device(PCI0) { Name(_HID, EisaId("PNP0A03")) } } */
    struct aml a;
    aml_init(&a);
    aml_scope_begin(&a, "\\_SB");
    aml_device_begin(&a, "PCI0");
    aml_name_eisaid(&a, "_HID", "PNP0A03");
    aml_device_end(&a);
    aml_scope_end(&a);
    EXPECT_AML(&a, 0x10, 0x17, 0x5C, '_', 'S', 'B', '_', 0x5B, 0x82, 0x0F, 'P', 'C', 'I', '0', 0x08,
               '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03);
    aml_free(&a);

    /* An inner object growing past 63 bytes makes both PkgLengths 2 bytes long. */
    aml_init(&a);
    aml_scope_begin(&a, "\\_SB");
    aml_device_begin(&a, "DEV0");
    for (int i = 0; i < 60; i++)
        aml_byte(&a, 0xA3);
    aml_device_end(&a);
    aml_scope_end(&a);
    assert_int_equal(aml_finish(&a), 0);
    /* device: 5B 82 <2> DEV0 <60> = 68 bytes, pkglength value 66 = 0x42 0x04 */
    /* scope: 10 <2> \_SB_ <68>: pkglength value 2 + 5 + 68 = 75 = 0x4B 0x04 */
    static const uint8_t head[] = {0x10, 0x4B, 0x04, 0x5C, '_', 'S', 'B', '_',
                                   0x5B, 0x82, 0x42, 0x04, 'D', 'E', 'V', '0'};
    assert_int_equal(a.len, 3 + 5 + 68);
    assert_memory_equal(a.data, head, sizeof(head));
    aml_free(&a);
}

static void test_packages(void **state)
{
    struct aml a;
    aml_init(&a);
    aml_name_decl(&a, "_S5");
    aml_package_begin(&a);
    aml_int(&a, 5);
    aml_int(&a, 5);
    aml_int(&a, 0);
    aml_int(&a, 0);
    aml_package_end(&a);
    EXPECT_AML(&a, 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00);
    aml_free(&a);

    /* Package { Package { 1, "x" }, \_SB.PCI0, Buffer {7} } counts 3 outer, 2 inner. */
    aml_init(&a);
    aml_package_begin(&a);
    aml_package_begin(&a);
    aml_int(&a, 1);
    aml_string(&a, "x");
    aml_package_end(&a);
    aml_name_ref(&a, "\\_SB.PCI0");
    aml_buffer_begin(&a);
    aml_byte(&a, 7);
    aml_buffer_end(&a);
    aml_package_end(&a);
    EXPECT_AML(&a, 0x12, 0x17, 0x03,                               /* outer: 3 elements */
               0x12, 0x06, 0x02, 0x01, 0x0D, 'x', 0x00,            /* inner */
               0x5C, 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', /* reference */
               0x11, 0x03, 0x01, 0x07);                            /* Buffer(One){7} */
    aml_free(&a);

    /* Empty package, and the 255-element limit. */
    aml_init(&a);
    aml_package_begin(&a);
    aml_package_end(&a);
    EXPECT_AML(&a, 0x12, 0x02, 0x00);
    aml_free(&a);

    aml_init(&a);
    aml_package_begin(&a);
    for (int i = 0; i < 255; i++)
        aml_int(&a, 0);
    aml_package_end(&a);
    assert_int_equal(aml_finish(&a), 0);
    assert_int_equal(a.data[3], 255); /* 12 <2-byte pkglength> 0xFF ... */
    aml_free(&a);

    aml_init(&a);
    aml_package_begin(&a);
    for (int i = 0; i < 256; i++)
        aml_int(&a, 0);
    aml_package_end(&a);
    assert_int_equal(aml_finish(&a), -E2BIG);
    aml_free(&a);
}

static void test_buffers_and_methods(void **state)
{
    struct aml a;
    aml_init(&a);
    aml_buffer_begin(&a);
    aml_bytes(&a, "\x01\x02\x03", 3);
    aml_buffer_end(&a);
    EXPECT_AML(&a, 0x11, 0x06, 0x0A, 0x03, 0x01, 0x02, 0x03);
    aml_free(&a);

    aml_init(&a);
    aml_buffer_begin(&a);
    aml_buffer_end(&a);
    EXPECT_AML(&a, 0x11, 0x02, 0x00);
    aml_free(&a);

    /* Method(_STA, 0, NotSerialized) { Return (0x0F) } */
    aml_init(&a);
    aml_method_begin(&a, "_STA", 0, false);
    aml_return(&a);
    aml_int(&a, 0x0F);
    aml_method_end(&a);
    EXPECT_AML(&a, 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F);
    aml_free(&a);

    /* Method(M2, 2, Serialized) { Return (Arg1) } ; Local7 */
    aml_init(&a);
    aml_method_begin(&a, "M2", 2, true);
    aml_return(&a);
    aml_arg(&a, 1);
    aml_method_end(&a);
    aml_local(&a, 7);
    EXPECT_AML(&a, 0x14, 0x08, 'M', '2', '_', '_', 0x0A, 0xA4, 0x69, 0x67);
    aml_free(&a);

    aml_init(&a);
    aml_method_begin(&a, "M8", 8, false);
    assert_int_equal(aml_error(&a), -EINVAL);
    aml_free(&a);
}

/* The same ASL compiled by iasl 20200925 (after the 36-byte table header):
 *   Name (_S5, Package () {5, 5, 0, 0})
 *   Scope (\_SB) { Device (PCI0) {
 *     Name (_HID, EisaId ("PNP0A03"))
 *     Name (_CRS, ResourceTemplate () {
 *       WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
 *       WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0, 0xCF7, 0,
 * 0xCF8) DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0,
 * 0xC0000000, 0xFEBFFFFF, 0, 0x3EC00000) QWordMemory (ResourceProducer, PosDecode, MinFixed,
 * MaxFixed, Cacheable, ReadWrite, 0, 0x10000000000, 0x1FFFFFFFFFF, 0, 0x10000000000) Memory32Fixed
 * (ReadOnly, 0xB0000000, 0x10000000) Interrupt (ResourceConsumer, Level, ActiveLow, Shared) {16}
 *       Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {5}
 *       IO (Decode16, 0x3F8, 0x3F8, 1, 8)
 *       IRQNoFlags () {4} })
 *     Method (_STA, 0, NotSerialized) { Return (0x0F) }
 *     Method (M2, 2, Serialized) { Return (Arg1) } } } */
static const uint8_t iasl_block[] = {
    0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00, 0x10, 0x48,
    0x0c, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x40, 0x0c, 0x50, 0x43, 0x49, 0x30, 0x08, 0x5f, 0x48,
    0x49, 0x44, 0x0c, 0x41, 0xd0, 0x0a, 0x03, 0x08, 0x5f, 0x43, 0x52, 0x53, 0x11, 0x47, 0x09, 0x0a,
    0x93, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x0c, 0x00, 0x00, 0xf8,
    0x0c, 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xff,
    0xff, 0xbf, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3e, 0x8a, 0x2b, 0x00, 0x00, 0x0c,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x86, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xb0, 0x00, 0x00, 0x00, 0x10, 0x89, 0x06, 0x00, 0x0d, 0x01, 0x10, 0x00, 0x00, 0x00, 0x89, 0x06,
    0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22,
    0x10, 0x00, 0x79, 0x00, 0x14, 0x09, 0x5f, 0x53, 0x54, 0x41, 0x00, 0xa4, 0x0a, 0x0f, 0x14, 0x08,
    0x4d, 0x32, 0x5f, 0x5f, 0x0a, 0xa4, 0x69,
};

static void test_resource_template_block(void **state)
{
    struct aml a;
    aml_init(&a);
    aml_name_decl(&a, "_S5");
    aml_package_begin(&a);
    aml_int(&a, 5);
    aml_int(&a, 5);
    aml_int(&a, 0);
    aml_int(&a, 0);
    aml_package_end(&a);
    aml_scope_begin(&a, "_SB"); /* iasl drops the '\\' of a root-level reference */
    aml_device_begin(&a, "PCI0");
    aml_name_eisaid(&a, "_HID", "PNP0A03");
    aml_name_decl(&a, "_CRS");
    aml_rt_begin(&a);
    aml_rd_word_bus(&a, 0, 0xFF);
    aml_rd_word_io(&a, 0, 0xCF7);
    aml_rd_dword_mem(&a, 0xC0000000u, 0xFEBFFFFFu, false);
    aml_rd_qword_mem(&a, 0x10000000000ull, 0x1FFFFFFFFFFull, true);
    aml_rd_mem32_fixed(&a, 0xB0000000u, 0x10000000u, false);
    aml_rd_ext_irq(&a, true, true, true, 16);
    aml_rd_ext_irq(&a, false, false, false, 5);
    aml_rd_io(&a, 0x3F8, 0x3F8, 1, 8);
    aml_rd_irq_noflags(&a, 1u << 4);
    aml_rt_end(&a);
    aml_method_begin(&a, "_STA", 0, false);
    aml_return(&a);
    aml_int(&a, 0x0F);
    aml_method_end(&a);
    aml_method_begin(&a, "M2", 2, true);
    aml_return(&a);
    aml_arg(&a, 1);
    aml_method_end(&a);
    aml_device_end(&a);
    aml_scope_end(&a);
    assert_int_equal(aml_finish(&a), 0);
    if (a.len != sizeof(iasl_block) || memcmp(a.data, iasl_block, a.len)) {
        dump("expected", iasl_block, sizeof(iasl_block));
        dump("got     ", a.data, a.len);
        fail();
    }
    aml_free(&a);
}

static void test_errors(void **state)
{
    struct aml a;
    /* Unbalanced: end without begin, wrong kind, open at finish. */
    aml_init(&a);
    aml_scope_end(&a);
    assert_int_equal(aml_finish(&a), -EINVAL);
    aml_free(&a);

    aml_init(&a);
    aml_device_begin(&a, "DEV0");
    aml_scope_end(&a);
    assert_int_equal(aml_error(&a), -EINVAL);
    aml_free(&a);

    aml_init(&a);
    aml_package_begin(&a);
    aml_rt_end(&a); /* not a resource template */
    assert_int_equal(aml_error(&a), -EINVAL);
    aml_free(&a);

    aml_init(&a);
    aml_scope_begin(&a, "\\_SB");
    assert_int_equal(aml_error(&a), 0);
    assert_int_equal(aml_finish(&a), -EINVAL);
    aml_free(&a);

    /* Errors are sticky: later calls do nothing. */
    aml_init(&a);
    aml_namestring(&a, "bad");
    size_t len = a.len;
    aml_int(&a, 0x1234);
    aml_scope_begin(&a, "GOOD");
    assert_int_equal(a.len, len);
    assert_int_equal(aml_finish(&a), -EINVAL);
    aml_free(&a);

    /* Nesting depth is bounded. */
    aml_init(&a);
    for (int i = 0; i <= AML_MAX_DEPTH; i++)
        aml_package_begin(&a);
    assert_int_equal(aml_error(&a), -E2BIG);
    aml_free(&a);

    /* Reversed ranges are rejected. */
    aml_init(&a);
    aml_rt_begin(&a);
    aml_rd_word_io(&a, 0x100, 0xFF);
    assert_int_equal(aml_error(&a), -EINVAL);
    aml_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_hid_eisaid),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_name_paths),
        cmocka_unit_test(test_pkglength_encoding),
        cmocka_unit_test(test_pkglength_in_objects),
        cmocka_unit_test(test_nested_fixups),
        cmocka_unit_test(test_packages),
        cmocka_unit_test(test_buffers_and_methods),
        cmocka_unit_test(test_resource_template_block),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
