/* decode.c — x86 instruction decoder: prefixes, REX, opcode maps, ModRM/SIB,
 * displacement and immediates. Produces a struct insn whose handler comes from
 * the opcode tables that instruction modules fill in. */
#include "cpu/emu/emu.h"

#include <pthread.h>
#include <stdio.h>

struct emu_opcode emu_optab[MAP_COUNT][256];

#define M  OPF_MODRM
#define I8 OPF_IMM8
#define IZ OPF_IMMZ
#define BR OPF_BRANCH

/* Static length/shape flags of the one-byte map. */
/* clang-format off */
static const uint16_t flags_1b[256] = {
    /* 00 */ M, M, M, M, I8, IZ, 0, 0, M, M, M, M, I8, IZ, 0, 0,
    /* 10 */ M, M, M, M, I8, IZ, 0, 0, M, M, M, M, I8, IZ, 0, 0,
    /* 20 */ M, M, M, M, I8, IZ, 0, 0, M, M, M, M, I8, IZ, 0, 0,
    /* 30 */ M, M, M, M, I8, IZ, 0, 0, M, M, M, M, I8, IZ, 0, 0,
    /* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 50 */ OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64,
    /* 58 */ OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64, OPF_D64,
    /* 60 */ 0, 0, M, M, 0, 0, 0, 0, IZ | OPF_D64, M | IZ, I8 | OPF_D64, M | I8, 0, 0, 0, 0,
    /* 70 */ I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64,
    /* 74 */ I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64,
    /* 78 */ I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64,
    /* 7C */ I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64,
    /* 80 */ M | I8, M | IZ, M | I8, M | I8, M, M, M, M, M, M, M, M, M, M, M, M | OPF_D64,
    /* 90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, OPF_FAR | BR, 0, OPF_D64, OPF_D64 | BR, 0, 0,
    /* A0 */ OPF_MOFFS, OPF_MOFFS, OPF_MOFFS, OPF_MOFFS, 0, 0, 0, 0, I8, IZ, 0, 0, 0, 0, 0, 0,
    /* B0 */ I8, I8, I8, I8, I8, I8, I8, I8, OPF_IMMV, OPF_IMMV, OPF_IMMV, OPF_IMMV,
    /* BC */ OPF_IMMV, OPF_IMMV, OPF_IMMV, OPF_IMMV,
    /* C0 */ M | I8, M | I8, OPF_IMM16 | BR | OPF_F64, BR | OPF_F64, M, M, M | I8, M | IZ,
    /* C8 */ OPF_ENTER | OPF_D64, OPF_D64, OPF_IMM16 | BR, BR, BR, I8 | BR, BR, BR,
    /* D0 */ M, M, M, M, I8, I8, 0, 0, M, M, M, M, M, M, M, M,
    /* E0 */ I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64, I8 | BR | OPF_F64,
    /* E4 */ I8, I8, I8, I8, IZ | BR | OPF_F64, IZ | BR | OPF_F64, OPF_FAR | BR, I8 | BR | OPF_F64,
    /* EC */ 0, 0, 0, 0,
    /* F0 */ 0, BR, 0, 0, BR, 0, M | OPF_GRP3, M | OPF_GRP3, 0, 0, 0, BR, 0, 0, M, M | BR,
};
/* clang-format on */

static uint16_t flags_0f(int op)
{
    if (op >= 0x80 && op <= 0x8f) return IZ | BR | OPF_F64;
    switch (op) {
    case 0x05:
    case 0x07:
    case 0x34:
    case 0x35: return BR;
    case 0x01: return M | BR; /* some forms (e.g. SWAPGS, LGDT) change state */
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23: return M | BR;
    case 0x30: return BR; /* WRMSR may change mode-relevant state */
    case 0x06:
    case 0x08:
    case 0x09:
    case 0x0b:
    case 0x0e:
    case 0x31:
    case 0x32:
    case 0x33:
    case 0x37:
    case 0x77:
    case 0xa2:
    case 0xaa: return 0;
    case 0xa0:
    case 0xa8: return OPF_D64;
    case 0xa1:
    case 0xa9: return OPF_D64 | BR;
    case 0x70:
    case 0x71:
    case 0x72:
    case 0x73:
    case 0xa4:
    case 0xac:
    case 0xba:
    case 0xc2:
    case 0xc4:
    case 0xc5:
    case 0xc6: return M | I8;
    case 0xc8:
    case 0xc9:
    case 0xca:
    case 0xcb:
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: return 0;
    case 0x38:
    case 0x3a: return 0; /* escapes, handled by the decoder */
    default: return M;
    }
}

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void)
{
    for (int op = 0; op < 256; op++) {
        emu_optab[MAP_1B][op].flags = flags_1b[op];
        emu_optab[MAP_0F][op].flags = flags_0f(op);
        emu_optab[MAP_0F38][op].flags = M;
        emu_optab[MAP_0F3A][op].flags = M | I8;
    }
    emu_ops_int_init();
    emu_ops_fast_init();
    emu_ops_string_init();
    emu_ops_sys_init();
    emu_ops_sse_init();
    emu_ops_x87_init();
}

void emu_tables_init(void)
{
    pthread_once(&tables_once, tables_build);
}

void emu_register(enum emu_map map, uint8_t opc, int mp, emu_handler fn)
{
    struct emu_opcode *e = &emu_optab[map][opc];
    if (mp < 0) {
        e->fn[0] = fn;
        return;
    }
    if (map != MAP_1B) e->flags |= OPF_SSE;
    e->fn[mp] = fn;
}

void emu_register_selector(enum emu_map map, uint8_t opc, emu_selector sel)
{
    emu_optab[map][opc].sel = sel;
}

uint8_t *emu_fetch_ptr(struct emu_cpu *c, uint64_t lin, uint64_t *gpa, int *avail);

/* With UNUM_DEBUG_UD set, each undefined opcode is logged once with its bytes. */
static void log_ud_once(struct emu_cpu *c, const struct insn *in)
{
    static _Atomic uint8_t seen[MAP_COUNT][256];
    if (atomic_exchange(&seen[in->map][in->opc], 1)) return;
    uint64_t lin = c->mode == MODE_LONG64 ? c->s.rip : (uint32_t)(c->s.rip + c->s.seg[SEG_CS].base);
    uint64_t gpa;
    int avail;
    const uint8_t *h = emu_fetch_ptr(c, lin, &gpa, &avail);
    fprintf(stderr, "unum: vcpu %d: #UD at %#llx:", c->v.id, (unsigned long long)lin);
    for (int i = 0; h && i < in->len && i < avail; i++)
        fprintf(stderr, " %02x", h[i]);
    fprintf(stderr, "\n");
}

static void handler_ud(struct emu_cpu *c, const struct insn *in)
{
    if (unlikely(c->debug_ud)) log_ud_once(c, in);
    emu_ud(c);
}

/* LOCK is allowed only on read-modify-write instructions with a memory destination. */
static bool lockable(const struct insn *in)
{
    if (!in->has_modrm || in->mod == 3) return false;
    int r = in->reg & 7;
    if (in->map == MAP_1B) {
        if (in->opc < 0x40) return (in->opc & 7) < 2 && (in->opc >> 3) != 7;
        switch (in->opc) {
        case 0x80:
        case 0x81:
        case 0x83: return r != 7;
        case 0x86:
        case 0x87: return true;
        case 0xf6:
        case 0xf7: return r == 2 || r == 3;
        case 0xfe:
        case 0xff: return r < 2;
        }
        return false;
    }
    if (in->map == MAP_0F) {
        switch (in->opc) {
        case 0xab:
        case 0xb3:
        case 0xbb:
        case 0xb0:
        case 0xb1:
        case 0xc0:
        case 0xc1: return true;
        case 0xba: return r >= 5;
        case 0xc7: return r == 1;
        }
    }
    return false;
}

/* ModRM/SIB/displacement. Returns bytes consumed after the ModRM byte, or -1 if
 * the buffer ran out. */
static int decode_modrm(const uint8_t *p, int avail, int pos, enum emu_mode mode, struct insn *in)
{
    uint8_t modrm = p[pos++];
    uint8_t rexr = (in->rex & 4) << 1, rexx = (in->rex & 2) << 2, rexb = (in->rex & 1) << 3;
    in->modrm = modrm;
    in->mod = modrm >> 6;
    in->reg = ((modrm >> 3) & 7) | rexr;
    in->rm = (modrm & 7) | rexb;
    in->base = EA_NONE;
    in->index = EA_NONE;
    in->scale = 0;
    in->disp = 0;
    if (in->mod == 3) return pos;
    int def_ss = 0, dsize = 0;
    if (in->asz == 2) {
        static const uint8_t b16[8] = {RBX, RBX, RBP, RBP, RSI, RDI, RBP, RBX};
        static const uint8_t i16[8] = {RSI, RDI, RSI, RDI, EA_NONE, EA_NONE, EA_NONE, EA_NONE};
        int rm = modrm & 7;
        in->rm = rm;
        if (in->mod == 0 && rm == 6) {
            dsize = 2;
        } else {
            in->base = b16[rm];
            in->index = i16[rm];
            def_ss = (rm == 2 || rm == 3 || rm == 6);
            dsize = in->mod == 1 ? 1 : in->mod == 2 ? 2 : 0;
        }
    } else {
        int rm = modrm & 7;
        if (rm == 4) {
            if (pos >= avail) return -1;
            uint8_t sib = p[pos++];
            int base = (sib & 7) | rexb, index = ((sib >> 3) & 7) | rexx;
            in->scale = sib >> 6;
            in->index = index == RSP ? EA_NONE : index;
            if ((sib & 7) == 5 && in->mod == 0) {
                dsize = 4;
            } else {
                in->base = base;
                def_ss = (base == RSP || base == RBP);
            }
        } else if (rm == 5 && in->mod == 0) {
            dsize = 4;
            if (mode == MODE_LONG64) in->base = EA_RIP;
        } else {
            in->base = rm | rexb;
            def_ss = (in->base == RBP);
        }
        if (in->mod == 1)
            dsize = 1;
        else if (in->mod == 2)
            dsize = 4;
    }
    if (pos + dsize > avail) return -1;
    switch (dsize) {
    case 1: in->disp = (int8_t)p[pos]; break;
    case 2: in->disp = (int16_t)(p[pos] | p[pos + 1] << 8); break;
    case 4: {
        int32_t d;
        memcpy(&d, p + pos, 4);
        in->disp = d;
        break;
    }
    }
    pos += dsize;
    if (!(in->pfx & PFX_SEG)) in->seg = def_ss ? SEG_SS : SEG_DS;
    /* SS-relative operands keep the general path, which raises #SS when needed */
    if (mode == MODE_LONG64 && in->asz == 8 && in->seg == SEG_DS && in->base < 16)
        in->ea_kind = in->index < 16 ? EA_BASE_INDEX : EA_BASE;
    else if (mode == MODE_LONG64 && in->asz == 8 && in->seg == SEG_DS && in->base == EA_RIP)
        in->ea_kind = EA_RIPREL;
    return pos;
}

static uint64_t read_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int emu_decode(const uint8_t *p, int avail, enum emu_mode mode, struct insn *in)
{
    emu_tables_init();
    memset(in, 0, sizeof(*in));
    if (avail > 15) avail = 15;
    bool long64 = mode == MODE_LONG64;
    bool def16 = mode == MODE_REAL || mode == MODE_PROT16 || mode == MODE_COMPAT16;
    int pos = 0, last_rep = 0;
    in->seg = SEG_DS;
    for (;;) {
        if (pos >= avail) return avail == 15 ? -1 : 0;
        uint8_t b = p[pos];
        switch (b) {
        case 0xf0: in->pfx |= PFX_LOCK; break;
        case 0xf2:
            in->pfx |= PFX_REPNE;
            last_rep = MP_F2;
            break;
        case 0xf3:
            in->pfx |= PFX_REP;
            last_rep = MP_F3;
            break;
        case 0x66: in->pfx |= PFX_OPSZ; break;
        case 0x67: in->pfx |= PFX_ADSZ; break;
        case 0x26:
        case 0x2e:
        case 0x36:
        case 0x3e:
            if (!long64) {
                in->seg = (b >> 3) & 3; /* 26:ES 2E:CS 36:SS 3E:DS */
                in->pfx |= PFX_SEG;
            }
            break;
        case 0x64:
        case 0x65:
            in->seg = b == 0x64 ? SEG_FS : SEG_GS;
            in->pfx |= PFX_SEG;
            break;
        default:
            /* REX counts only directly before the opcode; a legacy prefix after it
             * cancels it */
            if (long64 && (b & 0xf0) == 0x40) {
                in->rex = b;
                pos++;
                continue;
            }
            goto prefixes_done;
        }
        in->rex = 0;
        pos++;
    }
prefixes_done:
    if (in->rex) in->pfx |= PFX_REX;
    int map = MAP_1B;
    uint8_t op = p[pos++];
    if (op == 0x0f) {
        if (pos >= avail) return avail == 15 ? -1 : 0;
        op = p[pos++];
        map = MAP_0F;
        if (op == 0x38 || op == 0x3a) {
            if (pos >= avail) return avail == 15 ? -1 : 0;
            map = op == 0x38 ? MAP_0F38 : MAP_0F3A;
            op = p[pos++];
        }
    }
    in->map = map;
    in->opc = op;
    const struct emu_opcode *e = &emu_optab[map][op];
    uint16_t fl = e->flags;

    /* operand and address size */
    bool rexw = in->rex & 8;
    if (long64) {
        in->asz = (in->pfx & PFX_ADSZ) ? 4 : 8;
        if (map == MAP_1B && op == 0xff && (fl & OPF_MODRM) && pos < avail) {
            int r = (p[pos] >> 3) & 7;
            if (r == 2 || r == 4)
                fl |= OPF_F64;
            else if (r == 6)
                fl |= OPF_D64;
        }
        if (rexw || (fl & OPF_F64))
            in->osz = 8;
        else if (in->pfx & PFX_OPSZ)
            in->osz = 2;
        else
            in->osz = (fl & OPF_D64) ? 8 : 4;
    } else {
        in->asz = def16 ^ !!(in->pfx & PFX_ADSZ) ? 2 : 4;
        in->osz = def16 ^ !!(in->pfx & PFX_OPSZ) ? 2 : 4;
    }
    /* mandatory prefix: F2/F3 (last one wins), else 66 */
    in->mp = last_rep ? last_rep : (in->pfx & PFX_OPSZ) ? MP_66 : MP_NONE;

    if (fl & OPF_MODRM) {
        if (pos >= avail) return avail == 15 ? -1 : 0;
        in->has_modrm = 1;
        /* MOV to/from CR/DR ignore mod: always register operands */
        if (map == MAP_0F && op >= 0x20 && op <= 0x23) {
            uint8_t m = p[pos++];
            in->modrm = m;
            in->mod = 3;
            in->reg = ((m >> 3) & 7) | ((in->rex & 4) << 1);
            in->rm = (m & 7) | ((in->rex & 1) << 3);
        } else {
            int np = decode_modrm(p, avail, pos, mode, in);
            if (np < 0) return avail == 15 ? -1 : 0;
            pos = np;
        }
    }
    int isz = 0;
    if (fl & OPF_IMM8)
        isz = 1;
    else if (fl & OPF_IMMZ)
        isz = in->osz == 2 ? 2 : 4;
    else if (fl & OPF_IMMV)
        isz = in->osz;
    else if (fl & OPF_IMM16)
        isz = 2;
    else if (fl & OPF_ENTER)
        isz = 3;
    else if (fl & OPF_MOFFS)
        isz = in->asz;
    else if (fl & OPF_FAR)
        isz = (in->osz == 2 ? 2 : 4) + 2;
    else if ((fl & OPF_GRP3) && ((in->modrm >> 3) & 7) < 2)
        isz = op == 0xf6 ? 1 : (in->osz == 2 ? 2 : 4);
    /* branch displacements follow the operand size outside 64-bit mode */
    if (isz && pos + isz > avail) return avail == 15 ? -1 : 0;
    if (fl & OPF_ENTER) {
        in->imm = read_le(p + pos, 2);
        in->imm2 = p[pos + 2];
    } else if (fl & OPF_MOFFS) {
        in->disp = (int64_t)read_le(p + pos, isz);
    } else if (fl & OPF_FAR) {
        in->imm = read_le(p + pos, isz - 2);
        in->imm2 = (uint32_t)read_le(p + pos + isz - 2, 2);
    } else if (isz) {
        uint64_t v = read_le(p + pos, isz);
        if (isz == 1 && !(fl & OPF_GRP3)) {
            in->imm = (uint64_t)(int64_t)(int8_t)v;
            in->sext_imm = 1;
        } else if (isz == 2 && !(fl & (OPF_IMM16 | OPF_ENTER))) {
            in->imm = (uint64_t)(int64_t)(int16_t)v;
        } else if (isz == 4) {
            in->imm = (uint64_t)(int64_t)(int32_t)v;
        } else {
            in->imm = v;
        }
    }
    pos += isz;
    in->len = (uint8_t)pos;

    /* invalid in 64-bit mode */
    if (long64 && map == MAP_1B) {
        switch (op) {
        case 0x06:
        case 0x07:
        case 0x0e:
        case 0x16:
        case 0x17:
        case 0x1e:
        case 0x1f:
        case 0x27:
        case 0x2f:
        case 0x37:
        case 0x3f:
        case 0x60:
        case 0x61:
        case 0x62:
        case 0x82:
        case 0x9a:
        case 0xc4:
        case 0xc5:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xea: in->fn = handler_ud; return pos;
        }
    }
    if ((in->pfx & PFX_LOCK) && !lockable(in)) {
        in->fn = handler_ud;
        return pos;
    }
    emu_handler fn = (fl & OPF_SSE) ? e->fn[in->mp] : e->fn[0];
    if (e->sel && fn && !(in->pfx & PFX_LOCK)) {
        emu_handler f = e->sel(in);
        if (f) fn = f;
    }
    in->fn = fn ? fn : handler_ud;
    return pos;
}
