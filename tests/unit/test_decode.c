/* Decoder unit tests: instruction lengths and operand fields of tricky encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpu/emu/emu.h"

struct len_case {
    const char *what;
    enum emu_mode mode;
    int len; /* expected result of emu_decode: length, 0 (truncated) or -1 (invalid) */
    int nbytes;
    uint8_t b[20];
};

#define L64 MODE_LONG64
#define P32 MODE_PROT32
#define R16 MODE_REAL

static const struct len_case cases[] = {
    {"mov rax,[abs32] (SIB no base)", L64, 8, 8, {0x48, 0x8b, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12}},
    {"mov eax,[esp] addr32", L64, 4, 4, {0x67, 0x8b, 0x04, 0x24}},
    {"movdqa xmm0,[rip+0]", L64, 8, 8, {0x66, 0x0f, 0x6f, 0x05, 0, 0, 0, 0}},
    {"rep movsq", L64, 3, 3, {0xf3, 0x48, 0xa5}},
    {"mov rax,imm64", L64, 10, 10, {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8}},
    {"mov r8d,imm32 (REX.B, no W)", L64, 6, 6, {0x41, 0xb8, 1, 2, 3, 4}},
    {"mov eax,[moffs64]", L64, 9, 9, {0xa1, 1, 2, 3, 4, 5, 6, 7, 8}},
    {"mov eax,[moffs32] addr32", L64, 6, 6, {0x67, 0xa1, 1, 2, 3, 4}},
    {"mov eax,[moffs32] 32-bit mode", P32, 5, 5, {0xa1, 1, 2, 3, 4}},
    {"mov word [rax],imm16", L64, 5, 5, {0x66, 0xc7, 0x00, 0x34, 0x12}},
    {"mov qword [rax],imm32", L64, 7, 7, {0x48, 0xc7, 0x00, 1, 2, 3, 4}},
    {"enter 16,1", L64, 4, 4, {0xc8, 0x10, 0x00, 0x01}},
    {"ret imm16", L64, 3, 3, {0xc2, 0x08, 0x00}},
    {"test al,imm8 (F6 /0)", L64, 3, 3, {0xf6, 0xc0, 0x01}},
    {"test eax,imm32 (F7 /0)", L64, 6, 6, {0xf7, 0xc0, 1, 2, 3, 4}},
    {"test ax,imm16 (66 F7 /0)", L64, 5, 5, {0x66, 0xf7, 0xc0, 1, 2}},
    {"not al (F6 /2, no imm)", L64, 2, 2, {0xf6, 0xd0}},
    {"neg dword [rax+disp8] (F7 /3)", L64, 3, 3, {0xf7, 0x58, 0x10}},
    {"mov rax,cr0 (mod ignored)", L64, 3, 3, {0x0f, 0x20, 0x00}},
    {"movzx eax,byte [r12+8]", L64, 6, 6, {0x41, 0x0f, 0xb6, 0x44, 0x24, 0x08}},
    {"call rel32", L64, 5, 5, {0xe8, 1, 2, 3, 4}},
    {"66 call rel32 (64-bit ignores 66)", L64, 6, 6, {0x66, 0xe8, 1, 2, 3, 4}},
    {"call rel16 (16-bit mode)", R16, 3, 3, {0xe8, 1, 2}},
    {"66 call rel32 (16-bit mode)", R16, 6, 6, {0x66, 0xe8, 1, 2, 3, 4}},
    {"jcc rel32", L64, 6, 6, {0x0f, 0x84, 1, 2, 3, 4}},
    {"jcc rel8", L64, 2, 2, {0x74, 0xfe}},
    {"lea eax,[rax*4+disp32]", L64, 7, 7, {0x8d, 0x04, 0x85, 0, 0, 0, 0}},
    {"mov eax,[rbp+0]", L64, 3, 3, {0x8b, 0x45, 0x00}},
    {"mov eax,[r13+0] (REX.B rbp form)", L64, 4, 4, {0x41, 0x8b, 0x45, 0x00}},
    {"mov eax,[rsp+disp32]", L64, 7, 7, {0x8b, 0x84, 0x24, 0, 1, 0, 0}},
    {"palignr (0F 3A, imm8)", L64, 6, 6, {0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08}},
    {"pshufb (0F 38)", L64, 5, 5, {0x66, 0x0f, 0x38, 0x00, 0xc1}},
    {"pshufd imm8", L64, 5, 5, {0x66, 0x0f, 0x70, 0xc1, 0x1b}},
    {"psrldq imm8 (0F 73 /3)", L64, 5, 5, {0x66, 0x0f, 0x73, 0xd8, 0x04}},
    {"16-bit addressing [bp+disp8]", P32, 4, 4, {0x67, 0x8b, 0x46, 0x02}},
    {"16-bit addressing [disp16]", P32, 5, 5, {0x67, 0x8b, 0x06, 0x34, 0x12}},
    {"32-bit addressing in real mode", R16, 9, 9, {0x67, 0x66, 0x8b, 0x84, 0x24, 0, 1, 0, 0}},
    {"  ... one byte short", R16, 0, 8, {0x67, 0x66, 0x8b, 0x84, 0x24, 0, 1, 0}},
    {"REX then legacy prefix: REX ignored", L64, 3, 3, {0x48, 0x66, 0x90}},
    {"two REX prefixes: last one wins", L64, 4, 4, {0x40, 0x48, 0x89, 0xc0}},
    {"15 bytes: 14 prefixes + nop",
     L64,
     15,
     15,
     {0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90}},
    {"16 bytes: too long",
     L64,
     -1,
     16,
     {0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
      0x90}},
    {"truncated imm64", L64, 0, 4, {0x48, 0xb8, 1, 2}},
    {"truncated SIB", L64, 0, 2, {0x8b, 0x04}},
    {"jmp far ptr16:32 (32-bit mode)", P32, 7, 7, {0xea, 1, 2, 3, 4, 0x08, 0x00}},
    {"jmp far ptr16:16 (16-bit mode)", R16, 5, 5, {0xea, 1, 2, 0x08, 0x00}},
    {"shld eax,ebx,imm8", L64, 4, 4, {0x0f, 0xa4, 0xd8, 0x03}},
    {"bt dword [rax],imm8 (0F BA /4)", L64, 4, 4, {0x0f, 0xba, 0x20, 0x03}},
    {"x87 fld qword [rax+disp32]", L64, 6, 6, {0xdd, 0x80, 1, 2, 3, 4}},
    {"fs: mov rax,[fs:0x28]", L64, 9, 9, {0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0}},
    {"cmpxchg16b [rdi]", L64, 4, 4, {0x48, 0x0f, 0xc7, 0x0f}},
    {"push imm8", L64, 2, 2, {0x6a, 0xff}},
    {"push imm32", L64, 5, 5, {0x68, 1, 2, 3, 4}},
    {"imul eax,ecx,imm8", L64, 3, 3, {0x6b, 0xc1, 0x05}},
    {"imul eax,ecx,imm32", L64, 6, 6, {0x69, 0xc1, 1, 2, 3, 4}},
    {"in al,imm8", L64, 2, 2, {0xe4, 0x60}},
    {"int imm8", L64, 2, 2, {0xcd, 0x80}},
    {"nop dword [rax+rax+0] (0F 1F /0)", L64, 5, 5, {0x0f, 0x1f, 0x44, 0x00, 0x00}},
};

static void test_lengths(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct insn in;
        int n = emu_decode(cases[i].b, cases[i].nbytes, cases[i].mode, &in);
        if (n != cases[i].len) {
            print_error("%s: decoded length %d, expected %d\n", cases[i].what, n, cases[i].len);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_fields(void **state)
{
    struct insn in;
    /* mov r9, [r12 + r13*8 + 0x10] : 4f 8b 4c ec 10 */
    const uint8_t b1[] = {0x4f, 0x8b, 0x4c, 0xec, 0x10};
    assert_int_equal(emu_decode(b1, sizeof(b1), MODE_LONG64, &in), 5);
    assert_int_equal(in.reg, R9);
    assert_int_equal(in.base, R12);
    assert_int_equal(in.index, R13);
    assert_int_equal(in.scale, 3);
    assert_int_equal(in.disp, 0x10);
    assert_int_equal(in.osz, 8);
    assert_int_equal(in.seg, SEG_DS); /* r12/r13 bases do not select SS */

    /* mov eax, [rbp-8] defaults to SS */
    const uint8_t b2[] = {0x8b, 0x45, 0xf8};
    assert_int_equal(emu_decode(b2, sizeof(b2), MODE_PROT32, &in), 3);
    assert_int_equal(in.seg, SEG_SS);
    assert_int_equal(in.disp, -8);

    /* RIP-relative only in 64-bit mode; in 32-bit mode it is an absolute disp32 */
    const uint8_t b3[] = {0x8b, 0x05, 0x10, 0, 0, 0};
    assert_int_equal(emu_decode(b3, sizeof(b3), MODE_LONG64, &in), 6);
    assert_int_equal(in.base, EA_RIP);
    assert_int_equal(emu_decode(b3, sizeof(b3), MODE_PROT32, &in), 6);
    assert_int_equal(in.base, EA_NONE);

    /* push in 64-bit mode defaults to 64 bits; 66 makes it 16 */
    const uint8_t b4[] = {0x66, 0x50};
    assert_int_equal(emu_decode(b4 + 1, 1, MODE_LONG64, &in), 1);
    assert_int_equal(in.osz, 8);
    assert_int_equal(emu_decode(b4, 2, MODE_LONG64, &in), 2);
    assert_int_equal(in.osz, 2);

    /* sign-extended imm8 of group 1 */
    const uint8_t b5[] = {0x48, 0x83, 0xc0, 0xff};
    assert_int_equal(emu_decode(b5, sizeof(b5), MODE_LONG64, &in), 4);
    assert_int_equal(in.imm, ~0ull);

    /* mandatory prefix: F3 wins over 66 for the SSE slot */
    const uint8_t b6[] = {0x66, 0xf3, 0x0f, 0x10, 0xc1};
    assert_int_equal(emu_decode(b6, sizeof(b6), MODE_LONG64, &in), 5);
    assert_int_equal(in.mp, MP_F3);
}

static void test_invalid_in_64(void **state)
{
    /* opcodes removed in 64-bit mode decode (with a length) to a #UD handler */
    struct insn a, b;
    const uint8_t push_es[] = {0x06};
    assert_int_equal(emu_decode(push_es, 1, MODE_LONG64, &a), 1);
    assert_int_equal(emu_decode(push_es, 1, MODE_PROT32, &b), 1);
    assert_ptr_not_equal(a.fn, b.fn);
    /* LOCK on a register destination is #UD */
    const uint8_t lock_add[] = {0xf0, 0x01, 0xc0};
    const uint8_t lock_add_mem[] = {0xf0, 0x01, 0x00};
    assert_int_equal(emu_decode(lock_add, 3, MODE_LONG64, &a), 3);
    assert_int_equal(emu_decode(lock_add_mem, 3, MODE_LONG64, &b), 3);
    assert_ptr_not_equal(a.fn, b.fn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_invalid_in_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
