/* forms_seq.c — short instruction sequences built from the other forms.
 *
 * A single-instruction case starts from architectural flags. In a sequence the
 * last instruction consumes flags the emulator may still hold lazily (derived
 * from the previous instruction's operands), INC/DEC/RCL/CMC keep or combine
 * flags across instructions, and x87 pairs exercise state carried between
 * instructions of one decoded block.
 *
 * Integer: "seq/... ; <consumer>" runs one or two random register-only integer
 * forms, then the consumer (SETcc, CMOVcc, ADC/SBB, INC/DEC, RCL/RCR, CMC, LAHF,
 * SAHF, PUSHFQ). A flag is taken as defined after the producers only if every
 * producer defines it (an unaffected flag counts as defined), and the consumer
 * is only paired with producers that define every flag it reads.
 *
 * x87: "seq/x87 <first>; any" runs the named x87 form and then a random one. */
#include "difftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t cc_reads[16] = {FL_OF,
                                      FL_OF,
                                      FL_CF,
                                      FL_CF,
                                      FL_ZF,
                                      FL_ZF,
                                      FL_CF | FL_ZF,
                                      FL_CF | FL_ZF,
                                      FL_SF,
                                      FL_SF,
                                      FL_PF,
                                      FL_PF,
                                      FL_SF | FL_OF,
                                      FL_SF | FL_OF,
                                      FL_ZF | FL_SF | FL_OF,
                                      FL_ZF | FL_SF | FL_OF};

struct consumer {
    const char *form; /* name of the registered form */
    uint32_t reads;   /* flags whose value the result depends on */
    uint32_t writes;  /* flags it sets (all defined) */
    int idx;          /* resolved form index */
};

static struct consumer cons[64];
static int ncons;
static int *producers, nproducers;
static int *plain, nplain; /* producers without a setup callback */
static int *x87_members, nx87;

static int find_form(const char *name)
{
    for (int i = 0; i < dt_nforms; i++)
        if (!strcmp(dt_forms[i].name, name)) return i;
    return -1;
}

static void add_cons(const char *form, uint32_t reads, uint32_t writes)
{
    cons[ncons++] = (struct consumer){form, reads, writes, -1};
}

/* Flags an integer form reads, from its mnemonic: a producer that reads a flag
 * an earlier producer left undefined would give an undefined result. */
static uint32_t flag_reads(const char *name)
{
    const char *mn = name + 4; /* after "int/" */
    static const char *const cf_readers[] = {"adc ", "sbb ", "rcl ", "rcr ", "cmc "};
    for (size_t i = 0; i < sizeof(cf_readers) / sizeof(cf_readers[0]); i++)
        if (!strncmp(mn, cf_readers[i], strlen(cf_readers[i]))) return FL_CF;
    if (!strncmp(mn, "lahf", 4)) return FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF;
    if (!strncmp(mn, "pushf", 5)) return FLG_ALL;
    static const char *const ccn[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a",
                                        "s", "ns", "p", "np", "l", "ge", "le", "g"};
    for (int cc = 0; cc < 16; cc++)
        for (int k = 0; k < 2; k++) {
            char pfx[16];
            snprintf(pfx, sizeof(pfx), "%s%s ", k ? "set" : "cmov", ccn[cc]);
            if (!strncmp(mn, pfx, strlen(pfx))) return cc_reads[cc];
        }
    return 0;
}

static uint32_t *reads_of; /* per form index */

/* producers: register-only integer forms of the generic encoder that do not
 * fault by construction */
static void collect(void)
{
    producers = calloc((size_t)dt_nforms, sizeof(int));
    plain = calloc((size_t)dt_nforms, sizeof(int));
    reads_of = calloc((size_t)dt_nforms, sizeof(uint32_t));
    for (int i = 0; i < dt_nforms; i++)
        if (dt_forms[i].cat == CAT_INT) reads_of[i] = flag_reads(dt_forms[i].name);
    x87_members = calloc((size_t)dt_nforms, sizeof(int));
    for (int i = 0; i < dt_nforms; i++) {
        const struct dt_form *f = &dt_forms[i];
        if (f->cat == CAT_INT && !f->mem && !f->encode && !(f->fl & (F_LAST | F_LOCK)) &&
            !strchr(f->name, '#')) {
            producers[nproducers++] = i;
            if (!f->setup) plain[nplain++] = i;
        }
        if (f->cat == CAT_X87 && !strstr(f->name, "fnstsw")) x87_members[nx87++] = i;
    }
}

static void seq_int_encode(struct dt_case *c)
{
    const struct consumer *k = &cons[c->form->op[0]];
    uint32_t defined = FLG_ALL;
    bool accepted = false;
    for (int tries = 0; tries < 100 && !accepted; tries++) {
        c->len = 0;
        c->gpr_ignore = 0;
        defined = FLG_ALL;
        int n = 1 + (int)dt_below(c, 2);
        bool ok = true;
        for (int i = 0; i < n; i++) {
            /* a setup callback judges definedness from the input registers; an
             * earlier instruction may have changed them, so only the first
             * producer may have one */
            int p = i ? plain[dt_below(c, (uint64_t)nplain)]
                      : producers[dt_below(c, (uint64_t)nproducers)];
            ok = ok && (reads_of[p] & ~defined) == 0;
            defined &= dt_emit_subform(c, &dt_forms[p]);
        }
        /* an undefined register or flag read later would make the result
         * undefined: draw again */
        accepted = ok && !c->gpr_ignore && (k->reads & ~defined) == 0;
    }
    if (!accepted) {
        /* no suitable producer found: the consumer alone (never expected) */
        c->len = 0;
        c->gpr_ignore = 0;
        defined = FLG_ALL;
    }
    dt_emit_subform(c, &dt_forms[k->idx]);
    c->flags_mask = (defined & ~k->writes) | k->writes;
    c->entry = c->org;
    c->cont[0] = c->org + c->len;
    c->ncont = 1;
}

static void seq_x87_encode(struct dt_case *c)
{
    const struct dt_form *first = &dt_forms[x87_members[c->form->op[0] | c->form->op[1] << 8]];
    const struct dt_form *second = &dt_forms[x87_members[dt_below(c, (uint64_t)nx87)]];
    c->len = 0;
    dt_emit_subform(c, first);
    dt_emit_subform(c, second);
    uint16_t m1 = first->fsw_mask ? first->fsw_mask : 0xffff;
    uint16_t m2 = second->fsw_mask ? second->fsw_mask : 0xffff;
    c->fsw_mask = dt_arch_fsw ? m1 & m2 : 0xffff;
    c->entry = c->org;
    c->cont[0] = c->org + c->len;
    c->ncont = 1;
}

static const char *const ccn[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a",
                                    "s", "ns", "p", "np", "l", "ge", "le", "g"};

void dt_forms_seq(void)
{
    collect();
    for (int cc = 0; cc < 16; cc++) {
        add_cons(dt_strdup_printf("int/set%s r8 [0f %02x]", ccn[cc], 0x90 + cc), cc_reads[cc], 0);
        add_cons(dt_strdup_printf("int/cmov%s r32,r32 [0f %02x]", ccn[cc], 0x40 + cc), cc_reads[cc],
                 0);
    }
    add_cons("int/adc r8,r8 [10]", FL_CF, FLG_ALL);
    add_cons("int/adc r32,r32 [11]", FL_CF, FLG_ALL);
    add_cons("int/adc r64,r64 [13]", FL_CF, FLG_ALL);
    add_cons("int/adc r16,imm8 [83 /2]", FL_CF, FLG_ALL);
    add_cons("int/sbb r8,r8 [18]", FL_CF, FLG_ALL);
    add_cons("int/sbb r32,r32 [19]", FL_CF, FLG_ALL);
    add_cons("int/sbb r64,r64 [1b]", FL_CF, FLG_ALL);
    add_cons("int/sbb r16,imm8 [83 /3]", FL_CF, FLG_ALL);
    add_cons("int/inc r8 [fe /0]", 0, FLG_ALL & ~FL_CF);
    add_cons("int/inc r64 [ff /0]", 0, FLG_ALL & ~FL_CF);
    add_cons("int/dec r16 [ff /1]", 0, FLG_ALL & ~FL_CF);
    add_cons("int/dec r32 [ff /1]", 0, FLG_ALL & ~FL_CF);
    add_cons("int/rcl r32,1 [d1 /2]", FL_CF, FL_CF | FL_OF);
    add_cons("int/rcr r8,1 [d0 /3]", FL_CF, FL_CF | FL_OF);
    add_cons("int/rcl r64,1 [d1 /2]", FL_CF, FL_CF | FL_OF);
    add_cons("int/rcr r16,1 [d1 /3]", FL_CF, FL_CF | FL_OF);
    add_cons("int/cmc [f5]", FL_CF, FL_CF);
    add_cons("int/lahf [9f]", FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF, 0);
    add_cons("int/sahf [9e]", 0, FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF);
    add_cons("int/pushfq [9c]", FLG_ALL, 0);
    for (int i = 0; i < ncons; i++) {
        cons[i].idx = find_form(cons[i].form);
        if (cons[i].idx < 0) {
            fprintf(stderr, "difftest: sequence consumer '%s' is not a form\n", cons[i].form);
            exit(2);
        }
        struct dt_form f = {.cat = CAT_SEQ, .ext = -1, .flags = FLG_ALL};
        f.name = dt_strdup_printf("seq/1-2 int; %s", cons[i].form + 4);
        f.op[0] = (uint8_t)i;
        f.encode = seq_int_encode;
        f.weight = 2;
        dt_add(&f);
    }
    for (int i = 0; i < nx87; i++) {
        struct dt_form f = {.cat = CAT_SEQ, .ext = -1, .flags = FLG_ALL, .use = U_X87};
        f.name = dt_strdup_printf("seq/x87 %s; any", dt_forms[x87_members[i]].name + 4);
        f.op[0] = (uint8_t)i, f.op[1] = (uint8_t)(i >> 8);
        f.x87_need = 2;
        f.encode = seq_x87_encode;
        dt_add(&f);
    }
}
