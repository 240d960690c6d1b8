/* ACPI table tests: build the tables for 1, 2, 8 and 260 vCPUs and for two NUMA
 * nodes, walk them back the way an OS does (RSDP -> XSDT/RSDT -> tables), check
 * signatures, lengths, checksums and the fields Linux relies on, then hand them
 * to ACPICA's own tools (Debian package acpica-tools): iasl disassembles and
 * recompiles every table without errors or warnings, and acpiexec loads the
 * whole set and evaluates \_S5, processor _UIDs and the PCI routing table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "machine/acpi.h"

/* The platform devices that the tables describe; checked against the defaults
 * when they are part of the tree. */
#if __has_include("devices/acpi_pm.h")
#include "devices/acpi_pm.h"
#define HAVE_ACPI_PM 1
#endif
#if __has_include("devices/rtc.h")
#include "devices/rtc.h"
#define HAVE_RTC 1
#endif
#if __has_include("devices/ioapic.h")
#include "devices/ioapic.h"
#define HAVE_IOAPIC 1
#endif

#define BASE 0xE0000ull /* where the blob goes: the BIOS area Linux scans */

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* --- a configuration like the one the machine builds ------------------------------ */

struct setup {
    struct acpi_config cfg;
    struct acpi_cpu cpus[512];
    struct acpi_mem_range mem[4];
    uint8_t dist[4];
};

static void setup_init(struct setup *s, uint32_t ncpus, bool numa)
{
    memset(s, 0, sizeof(*s));
    acpi_config_defaults(&s->cfg);
    for (uint32_t i = 0; i < ncpus; i++)
        s->cpus[i] = (struct acpi_cpu){.apic_id = i, .node = numa ? i % 2 : 0, .present = true};
    s->cfg.cpus = s->cpus;
    s->cfg.ncpus = ncpus;
    s->cfg.mem = s->mem;
    if (!numa) {
        s->mem[0] = (struct acpi_mem_range){.base = 0, .size = 1ull << 30, .node = 0};
        s->cfg.nmem = 1;
        return;
    }
    /* 3 GiB + 1 GiB above the hole: node 0 gets 0-2G, node 1 2G-3G and 4G-5G. */
    s->mem[0] = (struct acpi_mem_range){.base = 0, .size = 2ull << 30, .node = 0};
    s->mem[1] = (struct acpi_mem_range){.base = 2ull << 30, .size = 1ull << 30, .node = 1};
    s->mem[2] = (struct acpi_mem_range){
        .base = 4ull << 30, .size = 1ull << 30, .node = 1, .hotpluggable = true};
    s->cfg.nmem = 3;
    s->cfg.numa_nodes = 2;
    s->dist[0] = 10, s->dist[1] = 21, s->dist[2] = 21, s->dist[3] = 10;
    s->cfg.numa_distance = s->dist;
    /* Exercise the optional parts too. */
    s->cfg.pci_ecam_base = 0xB0000000u;
    s->cfg.pci_mem32_base = 0xC0000000u;
    s->cfg.pci_mem64_base = 0x8000000000ull;
    s->cfg.pci_mem64_size = 0x4000000000ull;
    s->cfg.has_i8042 = true;
    s->cfg.i8042_aux = true;
    s->cfg.pm_tmr_32bit = true;
    s->cfg.gpe0_port = 0xAFE0;
    s->cfg.gpe0_len = 4;
    s->cfg.isa_bridge = true;
    s->cfg.isa_bridge_adr = 0x00010000;
    s->cfg.s5_slp_typ = 7;
    s->cfg.power_button = false;
    s->cfg.serial[1] = (struct acpi_serial){.port = 0x2F8, .irq = 3};
    s->cfg.nserial = 2;
    s->cfg.pci_node = 1;
}

/* --- walking the tables as an OS does -------------------------------------------- */

struct tables {
    const uint8_t *rsdp, *xsdt, *rsdt, *fadt, *facs, *dsdt, *madt, *srat, *slit, *mcfg;
    int nxsdt;
};

static const uint8_t *at(const uint8_t *buf, size_t size, uint64_t gpa, size_t len)
{
    assert_true(gpa >= BASE);
    assert_true(gpa - BASE + len <= size);
    return buf + (gpa - BASE);
}

/* A standard table: signature, sane length, checksum, our OEM fields. */
static const uint8_t *table_at(const uint8_t *buf, size_t size, uint64_t gpa, const char *sig)
{
    const uint8_t *t = at(buf, size, gpa, 36);
    uint32_t len = (uint32_t)rd(t + 4, 4);
    if (sig && memcmp(t, sig, 4) != 0)
        fail_msg("expected %s at 0x%llx, found %.4s", sig, (unsigned long long)gpa,
                 (const char *)t);
    assert_true(len >= 36);
    at(buf, size, gpa, len);
    assert_int_equal(acpi_checksum(t, len), 0);
    assert_memory_equal(t + 10, "UNUM  ", 6);
    assert_memory_equal(t + 16, "UNUMVM  ", 8);
    assert_int_not_equal(rd(t + 24, 4), 0); /* OEM revision */
    assert_memory_equal(t + 28, "UNUM", 4); /* creator ID */
    assert_int_not_equal(rd(t + 32, 4), 0); /* creator revision */
    assert_int_equal(gpa % 8, 0);
    return t;
}

static void walk(const uint8_t *buf, size_t size, const struct acpi_layout *l, struct tables *t)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(l->rsdp, BASE);
    const uint8_t *r = at(buf, size, l->rsdp, 36);
    t->rsdp = r;
    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(acpi_checksum(r, 20), 0);
    assert_int_equal(r[15], 2); /* ACPI 2.0+ */
    assert_int_equal(rd(r + 20, 4), 36);
    assert_int_equal(acpi_checksum(r, 36), 0);
    assert_memory_equal(r + 9, "UNUM  ", 6);

    uint64_t xsdt = rd(r + 24, 8), rsdt = rd(r + 16, 4);
    t->xsdt = table_at(buf, size, xsdt, "XSDT");
    t->rsdt = table_at(buf, size, rsdt, "RSDT");
    uint32_t xlen = (uint32_t)rd(t->xsdt + 4, 4), rlen = (uint32_t)rd(t->rsdt + 4, 4);
    assert_int_equal((xlen - 36) % 8, 0);
    t->nxsdt = (int)((xlen - 36) / 8);
    assert_int_equal(rlen, 36 + 4 * t->nxsdt);
    for (int i = 0; i < t->nxsdt; i++) {
        uint64_t gpa = rd(t->xsdt + 36 + 8 * i, 8);
        assert_int_equal(gpa, rd(t->rsdt + 36 + 4 * i, 4)); /* RSDT lists the same tables */
        const uint8_t *tab = table_at(buf, size, gpa, NULL);
        const uint8_t **slot = !memcmp(tab, "FACP", 4)   ? &t->fadt
                               : !memcmp(tab, "APIC", 4) ? &t->madt
                               : !memcmp(tab, "SRAT", 4) ? &t->srat
                               : !memcmp(tab, "SLIT", 4) ? &t->slit
                               : !memcmp(tab, "MCFG", 4) ? &t->mcfg
                                                         : NULL;
        if (!slot) fail_msg("unexpected table %.4s in the XSDT", (const char *)tab);
        assert_null(*slot); /* no duplicates */
        *slot = tab;
    }
    assert_non_null(t->fadt);
    assert_non_null(t->madt);
    assert_ptr_equal(t->xsdt + 0, buf + (l->xsdt - BASE));

    /* FADT -> DSDT, FACS. */
    const uint8_t *f = t->fadt;
    assert_int_equal(rd(f + 4, 4), 276);
    assert_int_equal(f[8], 6);
    uint64_t dsdt = rd(f + 140, 8);
    assert_int_equal(dsdt, rd(f + 40, 4)); /* DSDT == X_DSDT */
    assert_int_equal(dsdt, l->dsdt);
    t->dsdt = table_at(buf, size, dsdt, "DSDT");
    assert_int_equal(rd(t->dsdt + 4, 4), l->dsdt_len);
    assert_int_equal(t->dsdt[8], 2);
    uint64_t facs = rd(f + 36, 4);
    assert_int_equal(rd(f + 132, 8), 0); /* only one of FIRMWARE_CTRL / X_FIRMWARE_CTRL */
    assert_int_equal(facs % 64, 0);
    t->facs = at(buf, size, facs, 64);
    assert_memory_equal(t->facs, "FACS", 4);
    assert_int_equal(rd(t->facs + 4, 4), 64);
    assert_int_equal(l->facs, facs);
}

/* --- FADT and MADT contents ------------------------------------------------------- */

static void check_gas_io(const uint8_t *g, uint16_t port, int bits)
{
    assert_int_equal(g[0], 1); /* system I/O */
    assert_int_equal(g[1], bits);
    assert_int_equal(g[2], 0);
    assert_in_range(g[3], 1, 4);
    assert_int_equal(rd(g + 4, 8), port);
}

static void check_fadt(const uint8_t *f, const struct acpi_config *c)
{
    assert_int_equal(rd(f + 46, 2), c->sci_irq);
    assert_int_equal(rd(f + 48, 4), c->smi_cmd_port);
    assert_int_equal(f[52], c->acpi_enable);
    assert_int_equal(f[53], c->acpi_disable);
    assert_int_equal(rd(f + 56, 4), c->pm1a_evt_port);
    assert_int_equal(rd(f + 64, 4), c->pm1a_cnt_port);
    assert_int_equal(rd(f + 76, 4), c->pm_tmr_port);
    assert_int_equal(rd(f + 80, 4), c->gpe0_port);
    assert_int_equal(f[88], 4); /* PM1_EVT_LEN */
    assert_int_equal(f[89], 2); /* PM1_CNT_LEN */
    assert_int_equal(f[91], 4); /* PM_TMR_LEN */
    assert_int_equal(f[92], c->gpe0_len);
    /* X_ blocks mirror the legacy ones exactly (ACPICA warns on any mismatch). */
    check_gas_io(f + 148, c->pm1a_evt_port, 32);
    check_gas_io(f + 172, c->pm1a_cnt_port, 16);
    check_gas_io(f + 208, c->pm_tmr_port, 32);
    if (c->gpe0_len)
        check_gas_io(f + 220, c->gpe0_port, c->gpe0_len * 8);
    else
        assert_int_equal(rd(f + 220 + 4, 8), 0);
    for (int off = 160; off < 208; off += 12) /* PM1b EVT/CNT, PM2: none */
        if (off != 172) assert_int_equal(rd(f + off + 4, 8), 0);
    uint32_t flags = (uint32_t)rd(f + 112, 4);
    assert_true(flags & (1u << 0));                            /* WBINVD */
    assert_true(flags & (1u << 2));                            /* PROC_C1 */
    assert_true(flags & (1u << 5));                            /* no fixed sleep button */
    assert_int_equal(!!(flags & (1u << 4)), !c->power_button); /* PWR_BUTTON */
    assert_int_equal(!!(flags & (1u << 8)), c->pm_tmr_32bit);  /* TMR_VAL_EXT */
    assert_true(flags & (1u << 10));                           /* RESET_REG_SUP */
    assert_false(flags & (1u << 20));                          /* not HW_REDUCED */
    check_gas_io(f + 116, 0xCF9, 8);                           /* RESET_REG */
    assert_int_equal(f[119], 1);                               /* byte access */
    assert_int_equal(f[128], 0x06);                            /* RESET_VALUE */
    uint16_t boot = (uint16_t)rd(f + 109, 2);
    assert_true(boot & 1);                        /* LEGACY_DEVICES */
    assert_int_equal(!!(boot & 2), c->has_i8042); /* 8042 */
    assert_int_equal(!!(boot & 4), !c->has_vga);
    assert_int_equal(!!(boot & 32), !c->has_rtc);
    assert_int_equal(f[108], c->rtc_century);
}

struct madt_counts {
    int lapic, x2apic, ioapic, iso, nmi, x2nmi;
};

static struct madt_counts check_madt(const uint8_t *m, const struct acpi_config *c)
{
    struct madt_counts n = {0};
    uint32_t len = (uint32_t)rd(m + 4, 4);
    assert_int_equal(m[8], 4);
    assert_int_equal(rd(m + 36, 4), 0xFEE00000u);
    assert_int_equal(rd(m + 40, 4), c->has_pic ? 1 : 0);
    bool seen_uid[ACPI_MAX_CPUS] = {false};
    bool iso0 = false, iso_sci = false;
    uint32_t off = 44;
    while (off < len) {
        const uint8_t *e = m + off;
        assert_true(off + 2 <= len);
        assert_true(e[1] >= 2 && off + e[1] <= len);
        switch (e[0]) {
        case 0: /* Processor Local APIC */
            assert_int_equal(e[1], 8);
            assert_true(e[2] < c->ncpus && !seen_uid[e[2]]);
            seen_uid[e[2]] = true;
            assert_int_equal(e[3], c->cpus[e[2]].apic_id);
            assert_int_equal(rd(e + 4, 4), c->cpus[e[2]].present ? 1 : 0);
            n.lapic++;
            break;
        case 9: { /* Processor Local x2APIC */
            assert_int_equal(e[1], 16);
            uint32_t uid = (uint32_t)rd(e + 12, 4);
            assert_true(uid < c->ncpus && !seen_uid[uid]);
            seen_uid[uid] = true;
            assert_int_equal(rd(e + 4, 4), c->cpus[uid].apic_id);
            assert_int_equal(rd(e + 8, 4), c->cpus[uid].present ? 1 : 0);
            n.x2apic++;
            break;
        }
        case 1:
            assert_int_equal(e[1], 12);
            assert_int_equal(e[2], c->ioapic_id);
            assert_int_equal(rd(e + 4, 4), 0xFEC00000u);
            assert_int_equal(rd(e + 8, 4), 0);
            n.ioapic++;
            break;
        case 2:
            assert_int_equal(e[1], 10);
            assert_int_equal(e[2], 0); /* ISA */
            if (e[3] == 0) {
                assert_int_equal(rd(e + 4, 4), 2);
                assert_int_equal(rd(e + 8, 2), 0);
                iso0 = true;
            } else if (e[3] == c->sci_irq) {
                assert_int_equal(rd(e + 4, 4), c->sci_irq);
                assert_int_equal(rd(e + 8, 2), 0x000D); /* level, active high */
                iso_sci = true;
            } else {
                assert_int_equal(rd(e + 8, 2), 0x000F); /* PCI: level, active low */
            }
            n.iso++;
            break;
        case 4:
            assert_int_equal(e[1], 6);
            assert_int_equal(e[2], 0xFF);
            assert_int_equal(e[5], 1); /* LINT1 */
            n.nmi++;
            break;
        case 0x0A:
            assert_int_equal(e[1], 12);
            assert_int_equal(rd(e + 4, 4), 0xFFFFFFFFu);
            assert_int_equal(e[8], 1);
            n.x2nmi++;
            break;
        default: fail_msg("unexpected MADT entry type %u", e[0]);
        }
        off += e[1];
    }
    assert_int_equal(off, len);
    assert_int_equal(n.lapic + n.x2apic, (int)c->ncpus);
    assert_int_equal(n.ioapic, 1);
    assert_true(iso0 && iso_sci);
    assert_int_equal(n.nmi, 1);
    return n;
}

/* --- ACPICA tools ---------------------------------------------------------------- */

static void need_tool(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    if (system(cmd) != 0)
        fail_msg("%s not found: install Debian's acpica-tools package (apt-get install -y "
                 "acpica-tools; scripts/install-deps.sh does)",
                 tool);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Runs a shell command in dir, output to dir/log; returns the exit status and the output. */
static int run_in(const char *dir, const char *cmd, char **out)
{
    char full[1024], log[256];
    snprintf(log, sizeof(log), "%s/log", dir);
    snprintf(full, sizeof(full), "cd '%s' && %s >log 2>&1", dir, cmd);
    int st = system(full);
    *out = read_file(log);
    assert_non_null(*out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_in(const char *text, const char *what, const char *ctx)
{
    if (!strstr(text, what)) fail_msg("%s: \"%s\" not found in:\n%s", ctx, what, text);
}

static void expect_clean_compile(const char *log, const char *ctx)
{
    if (!strstr(log, "Compilation successful") || !strstr(log, "0 Errors, 0 Warnings"))
        fail_msg("%s: iasl did not compile cleanly:\n%s", ctx, log);
}

/* Scratch directories live under one per-run directory that the group teardown
 * removes, so a failing test (cmocka longjmps out of it) leaves nothing behind. */
static char g_tmp[64];

struct tmpdir {
    char path[128];
};

static void tmp_make(struct tmpdir *d)
{
    snprintf(d->path, sizeof(d->path), "%s/XXXXXX", g_tmp);
    assert_non_null(mkdtemp(d->path));
}

static void tmp_remove(struct tmpdir *d)
{
    char cmd[192];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
}

static int group_setup(void **state)
{
    strcpy(g_tmp, "/tmp/unum-acpi-XXXXXX");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* Disassembles the DSDT, recompiles the result, checks the objects are there. */
static char *iasl_dsdt(const char *dir, const uint8_t *dsdt)
{
    need_tool("iasl");
    write_file(dir, "dsdt.dat", dsdt, rd(dsdt + 4, 4));
    char *log;
    int rc = run_in(dir, "iasl -d dsdt.dat", &log);
    if (rc != 0 || strstr(log, "Error") || strstr(log, "Warning"))
        fail_msg("iasl -d dsdt.dat (rc %d):\n%s", rc, log);
    free(log);
    rc = run_in(dir, "iasl -p recompiled dsdt.dsl", &log);
    assert_int_equal(rc, 0);
    expect_clean_compile(log, "DSDT");
    free(log);
    char path[256];
    snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
    char *dsl = read_file(path);
    assert_non_null(dsl);
    return dsl;
}

static void check_dsdt_text(const char *dsl, const struct acpi_config *c)
{
    expect_in(dsl, "Name (\\_S5, Package (0x04)", "DSDT");
    expect_in(dsl, "Scope (\\_SB)", "DSDT");
    expect_in(dsl, "Device (PCI0)", "DSDT");
    expect_in(dsl, c->pci_ecam_base ? "EisaId (\"PNP0A08\")" : "EisaId (\"PNP0A03\")", "DSDT");
    expect_in(dsl, "Name (_PRT, Package (0x80)", "DSDT");
    expect_in(dsl, "WordBusNumber (ResourceProducer", "DSDT");
    expect_in(dsl, "0x0CF7,             // Range Maximum", "DSDT");
    expect_in(dsl, "0xFEBFFFFF,         // Range Maximum", "DSDT");
    expect_in(dsl, "Device (COM1)", "DSDT");
    expect_in(dsl, "EisaId (\"PNP0501\")", "DSDT");
    expect_in(dsl, "0x03F8,             // Range Minimum", "DSDT");
    expect_in(dsl, "Device (RTC)", "DSDT");
    expect_in(dsl, "EisaId (\"PNP0B00\")", "DSDT");
    expect_in(dsl, "Device (CPUS)", "DSDT");
    expect_in(dsl, "Name (_HID, \"ACPI0007\"", "DSDT");
    char name[32];
    for (uint32_t i = 0; i < c->ncpus; i++) {
        snprintf(name, sizeof(name), "Device (C%03X)", (unsigned)i);
        expect_in(dsl, name, "DSDT");
    }
    snprintf(name, sizeof(name), "Device (C%03X)", (unsigned)c->ncpus);
    assert_null(strstr(dsl, name));
    if (c->has_i8042)
        expect_in(dsl, "EisaId (\"PNP0303\")", "DSDT");
    else
        assert_null(strstr(dsl, "PNP0303"));
}

/* Loads FADT, FACS, DSDT, MADT (and SRAT/SLIT/MCFG) into acpiexec and evaluates
 * objects the way Linux's ACPI core does at boot. */
static void acpiexec_check(const char *dir, const struct tables *t, const struct acpi_config *c)
{
    need_tool("acpiexec");
    struct {
        const char *name;
        const uint8_t *p;
    } files[] = {{"facp.dat", t->fadt}, {"apic.dat", t->madt}, {"srat.dat", t->srat},
                 {"slit.dat", t->slit}, {"mcfg.dat", t->mcfg}, {"dsdt.dat", t->dsdt},
                 {"facs.dat", t->facs}};
    char list[256] = "";
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (!files[i].p) continue;
        write_file(dir, files[i].name, files[i].p, rd(files[i].p + 4, 4));
        strcat(list, " ");
        strcat(list, files[i].name);
    }
    char cmd[1024];
    uint32_t last = c->ncpus - 1;
    snprintf(cmd, sizeof(cmd),
             "timeout 60 acpiexec -b 'evaluate \\_S5; evaluate \\_SB.CPUS.C%03X._UID; "
             "evaluate \\_SB.PCI0._PRT; evaluate \\_SB.PCI0._CRS'%s",
             (unsigned)last, list);
    char *log;
    int rc = run_in(dir, cmd, &log);
    if (rc != 0) fail_msg("acpiexec exited with %d:\n%s", rc, log);
    /* ACPICA's own complaints; the "Unexpected ... (aetests-N)" lines come from
     * acpiexec's self-test of registers we do not have (PM2, GPE numbers). */
    static const char *bad[] = {"ACPI Error",   "ACPI Warning", "ACPI BIOS",
                                "Firmware Bug", "AE_AML",       "AE_NOT_FOUND"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strstr(log, bad[i])) fail_msg("acpiexec reported \"%s\":\n%s", bad[i], log);
    expect_in(log, "FACP", "acpiexec");
    char exp[256];
    snprintf(exp, sizeof(exp), "Evaluation of \\_S5 returned object");
    expect_in(log, exp, "acpiexec");
    snprintf(exp, sizeof(exp),
             "[Package] Contains 4 Elements:\n    [Integer] = %016X\n    [Integer] = %016X\n"
             "    [Integer] = 0000000000000000\n    [Integer] = 0000000000000000",
             c->s5_slp_typ, c->s5_slp_typ);
    expect_in(log, exp, "acpiexec \\_S5");
    snprintf(exp, sizeof(exp), "_UID returned object");
    expect_in(log, exp, "acpiexec _UID");
    snprintf(exp, sizeof(exp), "[Integer] = %016X", last);
    expect_in(log, exp, "acpiexec _UID");
    expect_in(log, "[Package] Contains 128 Elements:", "acpiexec _PRT");
    expect_in(log, "Evaluation of \\_SB.PCI0._CRS returned object", "acpiexec _CRS");
    free(log);
}

/* --- the tests ---------------------------------------------------------------------- */

static uint8_t blob[1 << 20];

static size_t build(const struct acpi_config *c, struct acpi_layout *l)
{
    memset(blob, 0xCC, sizeof(blob));
    assert_int_equal(acpi_build(c, blob, sizeof(blob), BASE, l), 0);
    assert_true(l->total_size > 0 && l->total_size <= sizeof(blob));
    return l->total_size;
}

static void full_check(uint32_t ncpus, bool numa)
{
    struct setup *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    setup_init(s, ncpus, numa);
    struct acpi_layout l;
    size_t size = build(&s->cfg, &l);
    struct tables t;
    walk(blob, size, &l, &t);
    assert_int_equal(t.nxsdt, numa ? 5 : 2);
    check_fadt(t.fadt, &s->cfg);
    struct madt_counts mc = check_madt(t.madt, &s->cfg);
    assert_int_equal(mc.lapic, (int)ncpus);
    assert_int_equal(mc.x2apic, 0);
    assert_int_equal(mc.iso, 2); /* IRQ0 -> GSI2, SCI; PCI INTx on GSIs >= 16 */
    if (numa) {
        assert_non_null(t.srat);
        assert_non_null(t.slit);
        assert_non_null(t.mcfg);
    } else {
        assert_null(t.srat);
        assert_null(t.slit);
        assert_null(t.mcfg);
    }

    struct tmpdir d;
    tmp_make(&d);
    char *dsl = iasl_dsdt(d.path, t.dsdt);
    check_dsdt_text(dsl, &s->cfg);
    if (numa) {
        expect_in(dsl, "Name (_PXM, One)", "DSDT");
        expect_in(dsl, "Device (ISA)", "DSDT");
        expect_in(dsl, "Name (_ADR, 0x00010000)", "DSDT");
        expect_in(dsl, "Device (PS2M)", "DSDT");
        expect_in(dsl, "Device (COM2)", "DSDT");
        expect_in(dsl, "EisaId (\"PNP0C02\")", "DSDT");
        expect_in(dsl, "Memory32Fixed (ReadOnly,", "DSDT");
        expect_in(dsl, "QWordMemory (ResourceProducer", "DSDT");
        expect_in(dsl, "0x0000008000000000, // Range Minimum", "DSDT");
    }
    free(dsl);
    acpiexec_check(d.path, &t, &s->cfg);
    tmp_remove(&d);
    free(s);
}

static void test_one_cpu(void **state)
{
    full_check(1, false);
}

static void test_two_cpus(void **state)
{
    full_check(2, false);
}

static void test_eight_cpus(void **state)
{
    full_check(8, false);
}

static void test_numa_two_nodes(void **state)
{
    full_check(8, true);

    struct setup *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    setup_init(s, 8, true);
    struct acpi_layout l;
    size_t size = build(&s->cfg, &l);
    struct tables t;
    walk(blob, size, &l, &t);
    assert_int_equal(l.srat, t.srat - blob + BASE);

    /* SRAT: one processor affinity per vCPU, one memory affinity per range. */
    const uint8_t *sr = t.srat;
    uint32_t len = (uint32_t)rd(sr + 4, 4);
    assert_int_equal(sr[8], 3);
    assert_int_equal(rd(sr + 36, 4), 1);
    int ncpu = 0, nmem = 0;
    for (uint32_t off = 48; off < len;) {
        const uint8_t *e = sr + off;
        if (e[0] == 0) {
            assert_int_equal(e[1], 16);
            uint32_t apic = e[3], node = e[2] | (uint32_t)rd(e + 9, 3) << 8;
            assert_int_equal(node, s->cpus[apic].node);
            assert_int_equal(rd(e + 4, 4), 1);
            ncpu++;
        } else if (e[0] == 1) {
            assert_int_equal(e[1], 40);
            const struct acpi_mem_range *m = &s->mem[nmem];
            assert_int_equal(rd(e + 2, 4), m->node);
            assert_int_equal(rd(e + 8, 8), m->base);
            assert_int_equal(rd(e + 16, 8), m->size);
            assert_int_equal(rd(e + 28, 4), m->hotpluggable ? 3 : 1);
            nmem++;
        } else {
            fail_msg("unexpected SRAT entry type %u", e[0]);
        }
        off += e[1];
        assert_true(off <= len);
    }
    assert_int_equal(ncpu, 8);
    assert_int_equal(nmem, 3);

    /* SLIT: the matrix as given. */
    const uint8_t *sl = t.slit;
    assert_int_equal(rd(sl + 4, 4), 36 + 8 + 4);
    assert_int_equal(rd(sl + 36, 8), 2);
    assert_memory_equal(sl + 44, s->dist, 4);

    /* MCFG: segment 0, buses 0..255 at the ECAM base. */
    const uint8_t *mc = t.mcfg;
    assert_int_equal(rd(mc + 4, 4), 60);
    assert_int_equal(rd(mc + 44, 8), 0xB0000000u);
    assert_int_equal(rd(mc + 52, 2), 0);
    assert_int_equal(mc[54], 0);
    assert_int_equal(mc[55], 0xFF);

    /* Without SLIT distances the default is 10 local, 20 remote. */
    s->cfg.numa_distance = NULL;
    size = build(&s->cfg, &l);
    walk(blob, size, &l, &t);
    static const uint8_t def[4] = {10, 20, 20, 10};
    assert_memory_equal(t.slit + 44, def, 4);
    free(s);
}

static void test_x2apic_and_many_cpus(void **state)
{
    struct setup *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    setup_init(s, 260, false);
    for (uint32_t i = 0; i < 260; i++)
        s->cpus[i].apic_id = i * 2; /* IDs up to 518 */
    s->cpus[259].present = false;   /* a hot-add slot */
    struct acpi_layout l;
    size_t size = build(&s->cfg, &l);
    struct tables t;
    walk(blob, size, &l, &t);
    struct madt_counts mc = check_madt(t.madt, &s->cfg);
    assert_int_equal(mc.lapic, 128); /* APIC IDs 0..254 */
    assert_int_equal(mc.x2apic, 132);
    assert_int_equal(mc.x2nmi, 1);

    struct tmpdir d;
    tmp_make(&d);
    char *dsl = iasl_dsdt(d.path, t.dsdt);
    expect_in(dsl, "Device (C103)", "DSDT");
    expect_in(dsl, "Name (_UID, 0x0103)", "DSDT");
    free(dsl);
    tmp_remove(&d);

    /* NUMA with x2APIC IDs uses x2APIC affinity entries. */
    s->cfg.numa_nodes = 2;
    for (uint32_t i = 0; i < 260; i++)
        s->cpus[i].node = i / 130;
    s->mem[1] = (struct acpi_mem_range){.base = 1ull << 30, .size = 1ull << 30, .node = 1};
    s->cfg.nmem = 2;
    size = build(&s->cfg, &l);
    walk(blob, size, &l, &t);
    const uint8_t *sr = t.srat;
    int n0 = 0, n2 = 0;
    for (uint32_t off = 48; off < rd(sr + 4, 4); off += sr[off + 1]) {
        if (sr[off] == 0) n0++;
        if (sr[off] == 2) {
            assert_int_equal(sr[off + 1], 24);
            uint32_t apic = (uint32_t)rd(sr + off + 8, 4);
            assert_true(apic >= 255);
            assert_int_equal(rd(sr + off + 4, 4), (apic / 2) / 130);
            n2++;
        }
    }
    assert_int_equal(n0, 128);
    assert_int_equal(n2, 132);
    free(s);
}

/* iasl disassembles each data table and compiles the result back: the same
 * bytes (except the creator fields and checksum) with no errors or warnings,
 * and the fields where ACPICA's table templates expect them. */
static void test_data_tables_roundtrip_iasl(void **state)
{
    need_tool("iasl");
    struct setup *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    setup_init(s, 4, true);
    struct acpi_layout l;
    size_t size = build(&s->cfg, &l);
    struct tables t;
    walk(blob, size, &l, &t);
    struct tmpdir d;
    tmp_make(&d);
    struct {
        const char *name;
        const uint8_t *p;
        const char *expect[8];
    } tabs[] = {
        {"facp",
         t.fadt,
         {"PM1A Event Block Address : 00000600", "PM1A Control Block Address : 00000604",
          "PM Timer Block Address : 00000608", "SMI Command Port : 000000B2",
          "ACPI Enable Value : F1", "SCI Interrupt : 0009", "Value to cause reset : 06",
          "32-bit PM Timer (V1) : 1"}},
        {"apic",
         t.madt,
         {"Local Apic Address : FEE00000", "PC-AT Compatibility : 1", "Address : FEC00000",
          "Subtable Type : 04 [Local APIC NMI]", "Interrupt Input LINT : 01", "Processor ID : 03",
          NULL}},
        {"srat", t.srat, {"Proximity Domain : 00000001", "Hot Pluggable : 1", NULL}},
        {"slit", t.slit, {"Localities : 0000000000000002", "Locality 0 : 0A 15", NULL}},
        {"mcfg", t.mcfg, {"Base Address : 00000000B0000000", "End Bus Number : FF", NULL}},
        {"xsdt", t.xsdt, {NULL}},
        {"rsdt", t.rsdt, {NULL}},
        {"facs", t.facs, {"Version : 02", NULL}},
    };
    for (size_t i = 0; i < sizeof(tabs) / sizeof(tabs[0]); i++) {
        char fn[160], cmd[256], *log;
        uint32_t len = (uint32_t)rd(tabs[i].p + 4, 4);
        snprintf(fn, sizeof(fn), "%s.dat", tabs[i].name);
        write_file(d.path, fn, tabs[i].p, len);
        snprintf(cmd, sizeof(cmd), "iasl -d %s", fn);
        int rc = run_in(d.path, cmd, &log);
        if (rc != 0 || strstr(log, "Error") || strstr(log, "Warning"))
            fail_msg("iasl -d %s (rc %d):\n%s", fn, rc, log);
        free(log);
        snprintf(fn, sizeof(fn), "%s/%s.dsl", d.path, tabs[i].name);
        char *dsl = read_file(fn);
        assert_non_null(dsl);
        if (strstr(dsl, "**** ") || strstr(dsl, "Invalid"))
            fail_msg("iasl flagged %s:\n%s", tabs[i].name, dsl);
        /* Collapse runs of spaces so the expectations need not match column widths. */
        char *w = dsl;
        for (char *r = dsl; *r; r++)
            if (!(*r == ' ' && r[1] == ' ')) *w++ = *r;
        *w = '\0';
        for (int k = 0; k < 8 && tabs[i].expect[k]; k++)
            expect_in(dsl, tabs[i].expect[k], tabs[i].name);
        free(dsl);
        snprintf(cmd, sizeof(cmd), "iasl -p rt_%s %s.dsl", tabs[i].name, tabs[i].name);
        rc = run_in(d.path, cmd, &log);
        assert_int_equal(rc, 0);
        expect_clean_compile(log, tabs[i].name);
        free(log);
        snprintf(fn, sizeof(fn), "%s/rt_%s.aml", d.path, tabs[i].name);
        FILE *f = fopen(fn, "rb");
        assert_non_null(f);
        uint8_t back[4096];
        size_t n = fread(back, 1, sizeof(back), f);
        fclose(f);
        assert_int_equal(n, len);
        if (strcmp(tabs[i].name, "facs") == 0) {
            assert_memory_equal(back, tabs[i].p, len);
        } else {
            assert_memory_equal(back, tabs[i].p, 9);            /* signature, length, rev */
            assert_memory_equal(back + 10, tabs[i].p + 10, 18); /* OEM fields */
            assert_memory_equal(back + 36, tabs[i].p + 36, len - 36);
        }
    }
    tmp_remove(&d);
    free(s);
}

static void test_layout(void **state)
{
    struct setup *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    setup_init(s, 8, true);
    struct acpi_layout l;

    /* Size query, then too small, then exact. */
    assert_int_equal(acpi_build(&s->cfg, NULL, 0, BASE, &l), -ENOSPC);
    size_t need = l.total_size;
    assert_true(need > 0 && need < 16384);
    assert_int_equal(acpi_build(&s->cfg, blob, need - 1, BASE, &l), -ENOSPC);
    assert_int_equal(l.total_size, need);
    assert_int_equal(acpi_build(&s->cfg, blob, need, BASE, &l), 0);
    assert_int_equal(l.total_size, need);

    /* Tables lie inside the blob, aligned, without overlapping. */
    uint64_t tabs[] = {l.facs, l.dsdt, l.fadt, l.madt, l.srat, l.slit, l.mcfg, l.xsdt, l.rsdt};
    uint64_t end = BASE + 36;
    for (size_t i = 0; i < sizeof(tabs) / sizeof(tabs[0]); i++) {
        assert_true(tabs[i] >= end);
        assert_int_equal(tabs[i] % (i == 0 ? 64 : 16), 0);
        end = tabs[i] + rd(blob + (tabs[i] - BASE) + 4, 4);
    }
    assert_int_equal(end, BASE + need);

    /* acpi_build_dsdt() gives the same DSDT on its own. */
    uint8_t *dsdt;
    size_t dlen;
    assert_int_equal(acpi_build_dsdt(&s->cfg, &dsdt, &dlen), 0);
    assert_int_equal(dlen, l.dsdt_len);
    assert_memory_equal(dsdt, blob + (l.dsdt - BASE), dlen);
    free(dsdt);

    /* Same input, same bytes: the build is deterministic. */
    uint8_t *copy = malloc(need);
    assert_non_null(copy);
    memcpy(copy, blob, need);
    assert_int_equal(acpi_build(&s->cfg, blob, need, BASE, &l), 0);
    assert_memory_equal(copy, blob, need);
    free(copy);

    /* Placement rules: 64-byte aligned, below 4 GiB. */
    assert_int_equal(acpi_build(&s->cfg, blob, sizeof(blob), BASE + 16, &l), -EINVAL);
    assert_int_equal(acpi_build(&s->cfg, blob, sizeof(blob), 0xFFFFFF00u, &l), -EINVAL);

    /* Sizes for the report: 1 vCPU and 256 vCPUs. */
    setup_init(s, 1, false);
    acpi_build(&s->cfg, NULL, 0, BASE, &l);
    size_t one = l.total_size;
    setup_init(s, 256, false);
    acpi_build(&s->cfg, NULL, 0, BASE, &l);
    print_message("blob size: %zu bytes for 1 vCPU, %zu for 256 vCPUs, %zu for 8 vCPUs/2 nodes\n",
                  one, l.total_size, need);
    assert_true(l.total_size < 32768);
    free(s);
}

static void test_config_errors(void **state)
{
    struct setup *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    struct acpi_layout l;
#define EXPECT_EINVAL(mutation)                                                                    \
    do {                                                                                           \
        setup_init(s, 4, true);                                                                    \
        assert_int_equal(acpi_config_check(&s->cfg), 0);                                           \
        mutation;                                                                                  \
        assert_int_equal(acpi_config_check(&s->cfg), -EINVAL);                                     \
        assert_int_equal(acpi_build(&s->cfg, blob, sizeof(blob), BASE, &l), -EINVAL);              \
    } while (0)
    EXPECT_EINVAL(s->cfg.ncpus = 0);
    EXPECT_EINVAL(s->cfg.cpus = NULL);
    EXPECT_EINVAL(s->cpus[0].present = false);
    EXPECT_EINVAL(s->cpus[3].apic_id = 1); /* duplicate APIC ID */
    EXPECT_EINVAL(s->cpus[3].node = 2);    /* no such node */
    EXPECT_EINVAL(s->mem[1].node = 5);
    EXPECT_EINVAL(s->dist[0] = 11); /* local distance must be 10 */
    EXPECT_EINVAL(s->dist[1] = 10); /* remote must exceed 10 */
    EXPECT_EINVAL(s->cfg.numa_nodes = ACPI_MAX_NODES + 1);
    EXPECT_EINVAL(s->cfg.pm1a_evt_port = 0);
    EXPECT_EINVAL(s->cfg.pm_tmr_port = 0);
    EXPECT_EINVAL(s->cfg.gpe0_len = 3);
    EXPECT_EINVAL(s->cfg.gpe0_port = 0);
    EXPECT_EINVAL(s->cfg.sci_irq = 2);
    EXPECT_EINVAL(s->cfg.sci_irq = 16);
    EXPECT_EINVAL(s->cfg.s5_slp_typ = 8);
    EXPECT_EINVAL(s->cfg.nserial = ACPI_MAX_SERIAL + 1);
    EXPECT_EINVAL(s->cfg.pci_mem32_size = 0);
    EXPECT_EINVAL(s->cfg.pci_mem32_size = 0x40000000u); /* runs over the I/O APIC */
    EXPECT_EINVAL(s->cfg.pci_ecam_base = 0xC0000000u);  /* inside the 32-bit window */
    EXPECT_EINVAL(s->cfg.pci_ecam_base = 0xB0000010u);  /* misaligned */
    EXPECT_EINVAL(s->cfg.pci_node = 2);
    EXPECT_EINVAL(s->cfg.pci_slots = 33);
    EXPECT_EINVAL(s->cfg.pci_intx_gsi_count = 0);
    EXPECT_EINVAL((s->cfg.pci_intx_gsi_base = 8, s->cfg.pci_intx_gsi_count = 4)); /* RTC, SCI */
#undef EXPECT_EINVAL

    /* PCI INTx on free ISA GSIs (10, 11) is allowed and gets level/low overrides. */
    setup_init(s, 2, false);
    s->cfg.pci_intx_gsi_base = 10;
    s->cfg.pci_intx_gsi_count = 2;
    size_t size = build(&s->cfg, &l);
    struct tables t;
    walk(blob, size, &l, &t);
    struct madt_counts mc = check_madt(t.madt, &s->cfg);
    assert_int_equal(mc.iso, 4);
    free(s);
}

/* acpi_config_defaults() describes the devices the tree implements. */
static void test_defaults_match_platform(void **state)
{
    struct acpi_config c;
    acpi_config_defaults(&c);
#ifdef HAVE_ACPI_PM
    assert_int_equal(c.pm1a_evt_port, ACPI_PM1A_EVT_BLK);
    assert_int_equal(c.pm1a_cnt_port, ACPI_PM1A_CNT_BLK);
    assert_int_equal(c.pm_tmr_port, ACPI_PM_TMR_BLK);
    assert_int_equal(ACPI_PM1_EVT_LEN, 4);
    assert_int_equal(ACPI_PM1_CNT_LEN, 2);
    assert_int_equal(ACPI_PM_TMR_LEN, 4);
    assert_int_equal(c.pm_tmr_32bit, ACPI_PM_TMR_VAL_EXT);
    assert_int_equal(c.smi_cmd_port, ACPI_SMI_CMD_PORT);
    assert_int_equal(c.acpi_enable, ACPI_ENABLE_VALUE);
    assert_int_equal(c.acpi_disable, ACPI_DISABLE_VALUE);
    assert_int_equal(c.sci_irq, ACPI_SCI_IRQ);
    assert_int_equal(c.s5_slp_typ, ACPI_SLP_TYP_S5);
    assert_int_equal(c.reset_port, ACPI_RESET_PORT);
    assert_int_equal(c.reset_value, ACPI_RESET_VALUE);
    assert_true(c.power_button); /* acpi_pm implements PWRBTN_STS/EN */
    assert_false(c.has_i8042);   /* its 8042 has nothing attached: not announced */
#else
    assert_int_equal(c.pm1a_evt_port, 0x600);
    assert_int_equal(c.s5_slp_typ, 5);
#endif
#ifdef HAVE_RTC
    assert_int_equal(c.rtc_century, RTC_CENTURY_INDEX);
#endif
#ifdef HAVE_IOAPIC
    /* PCI INTx uses GSIs 16..23: the I/O APIC must have the pins. */
    assert_true(c.pci_intx_gsi_base + c.pci_intx_gsi_count <= IOAPIC_PINS);
#endif
    assert_int_equal(c.ioapic_addr, 0xFEC00000u);
    assert_int_equal(c.lapic_addr, 0xFEE00000u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_cpu),
        cmocka_unit_test(test_two_cpus),
        cmocka_unit_test(test_eight_cpus),
        cmocka_unit_test(test_numa_two_nodes),
        cmocka_unit_test(test_x2apic_and_many_cpus),
        cmocka_unit_test(test_data_tables_roundtrip_iasl),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_defaults_match_platform),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
