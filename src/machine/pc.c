#define _GNU_SOURCE /* pthread_setname_np */
/* pc.c — the PC machine (see pc.h): builds memory, devices, ACPI tables and vCPU
 * threads from a struct pc_config, boots Linux through the 64-bit boot protocol
 * and runs until the guest powers off, resets or triple-faults. */
#include "machine/pc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cluster/config.h"
#include "cluster/node.h"
#include "cpu/cpu.h"
#include "cpu/emu/emu_api.h"
#include "devices/acpi_pm.h"
#include "devices/ioapic.h"
#include "devices/irq.h"
#include "devices/lapic.h"
#include "devices/pci.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "devices/rtc.h"
#include "devices/timer.h"
#include "devices/uart.h"
#include "machine/acpi.h"
#include "machine/loader.h"
#include "machine/pc_internal.h"
#include "machine/router.h"
#include "util/util.h"

#define PCI_HOLE_START 0xc0000000ull
#define ACPI_AREA_GPA  0xe0000ull
#define ACPI_AREA_SIZE 0x20000ull
#define EXIT_RUNNING   (-1)

struct pc;

struct pc_vcpu {
    struct pc *pc;
    int id;              /* global vCPU index = APIC ID */
    int node;            /* the node running it */
    struct vcpu *v;      /* NULL for a vCPU on another node */
    struct lapic *lapic; /* NULL for a vCPU on another node */
    uint32_t ldr, dfr;   /* another node's vCPU: its logical destination */
    pthread_t thread;
    uint32_t timer_looks, node_looks; /* vcpu_poll_wanted calls since the last look */
    bool node_poll;                   /* vcpu_poll_wanted: this poll is the node's */
};

struct console {
    char line[4096];
    size_t len;
    bool ready;     /* the guest printed unum-guest-ready */
    int status;     /* from unum-exit-status, -1 until seen */
    bool show_boot; /* print what comes before the ready marker */
    uint64_t ready_ns;
};

struct pc {
    struct pc_config cfg;
    struct guest_mem mem;
    struct router router;
    struct timer_service timers;
    struct pc_vcpu *cpus;
    int ncpus;
    struct apic_bus apic_bus;
    struct ioapic *ioapic;
    struct pic *pic;
    struct uart *uart;
    struct pit *pit;
    struct rtc *rtc;
    struct acpi_pm *pm;
    struct pci_bus *pci;
    struct console con;
    pthread_mutex_t con_lock;
    _Atomic int exit_status;
    uint64_t start_ns;
    /* cluster */
    struct node *node;            /* NULL on a single node */
    struct cpu_exit_ops exit_ops; /* of every vCPU here (poll: LAPIC timer, network) */
    uint32_t timer_look_polls;    /* poll hook calls per look at the LAPIC timer */
    uint32_t node_look_polls;     /* ... and at the network (0: running vCPUs do not serve) */
    int self, platform;           /* node ids (0, 0 on a single node) */
    bool is_platform;             /* this node has the platform devices */
};

static bool vcpu_local(const struct pc *pc, int i)
{
    return pc->cpus[i].v != NULL;
}

/* ---- stopping ---- */

static void pc_stop_local(struct pc *pc, int status)
{
    int expected = EXIT_RUNNING;
    atomic_compare_exchange_strong(&pc->exit_status, &expected, status);
    for (int i = 0; i < pc->ncpus; i++)
        if (vcpu_local(pc, i)) vcpu_request_stop(pc->cpus[i].v);
}

/* Stops the VM: this node's vCPUs and, on a cluster, every other node's. */
static void pc_stop(struct pc *pc, int status)
{
    pc_stop_local(pc, status);
    if (pc->node) node_stop_all(pc->node, atomic_load(&pc->exit_status));
}

static void guest_power_off(void *opaque)
{
    struct pc *pc = opaque;
    pthread_mutex_lock(&pc->con_lock);
    int status = pc->con.status >= 0 ? pc->con.status : 125;
    pthread_mutex_unlock(&pc->con_lock);
    pc_stop(pc, status);
}

static void guest_reset(void *opaque)
{
    struct pc *pc = opaque;
    /* a reset ends the VM (as QEMU's -no-reboot): Linux resets on panic=-1 */
    pthread_mutex_lock(&pc->con_lock);
    int status = pc->con.status >= 0 ? pc->con.status : 125;
    pthread_mutex_unlock(&pc->con_lock);
    if (status == 125 && atomic_load(&pc->exit_status) == EXIT_RUNNING)
        fprintf(stderr, "unum: the guest reset the machine\n");
    pc_stop(pc, status);
}

/* ---- console: markers from the guest's /init are consumed, not shown ---- */

#define MARK_READY  "unum-guest-ready"
#define MARK_STATUS "unum-exit-status: "

static void console_emit(const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void console_line(struct pc *pc, bool complete)
{
    struct console *c = &pc->con;
    c->line[c->len] = 0;
    char *st = strstr(c->line, MARK_STATUS);
    if (complete && st) {
        c->status = atoi(st + strlen(MARK_STATUS)) & 0xff;
        if (c->ready)
            console_emit(c->line, (size_t)(st - c->line)); /* output without a final newline */
    } else if (complete && strstr(c->line, MARK_READY) && !c->ready) {
        c->ready = true;
        c->ready_ns = clock_ns();
        if (pc->cfg.verbose || getenv("UNUM_TIMING"))
            fprintf(stderr, "unum: guest ready after %.3f s\n", (c->ready_ns - pc->start_ns) / 1e9);
    } else if ((c->ready && c->status < 0) || c->show_boot) {
        /* after the status marker only the kernel's power-off chatter follows */
        console_emit(c->line, c->len);
    }
    c->len = 0;
}

static void console_tx(void *opaque, const uint8_t *buf, size_t n)
{
    struct pc *pc = opaque;
    struct console *c = &pc->con;
    pthread_mutex_lock(&pc->con_lock);
    for (size_t i = 0; i < n; i++) {
        /* the serial console ends lines with CR LF; a command's output, like
         * `docker run` without -t, ends them with LF alone */
        if (buf[i] == '\r' && pc->cfg.command) continue;
        c->line[c->len++] = (char)buf[i];
        if (buf[i] == '\n')
            console_line(pc, true);
        else if (c->len == sizeof(c->line) - 1)
            console_line(pc, false);
    }
    /* an interactive prompt has no newline: show it unless it may be a marker */
    if (c->len && (c->ready || c->show_boot) && !pc->cfg.command &&
        strncmp(c->line, MARK_STATUS, c->len < strlen(MARK_STATUS) ? c->len : strlen(MARK_STATUS)))
        console_line(pc, false);
    pthread_mutex_unlock(&pc->con_lock);
}

/* ---- interactive terminal ---- */

static struct termios saved_tio;
static bool tio_saved;

static void restore_terminal(void)
{
    if (tio_saved) tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static void on_fatal_signal(int sig)
{
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void raw_terminal(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0) return;
    tio_saved = true;
    atexit(restore_terminal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    struct termios raw = saved_tio;
    cfmakeraw(&raw); /* the guest's console already sends CR LF */
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
}

/* stdin -> COM1; Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A (as QEMU) */
static void *input_thread(void *arg)
{
    struct pc *pc = arg;
    bool escape = false;
    uint8_t buf[256];
    while (atomic_load(&pc->exit_status) == EXIT_RUNNING) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) {
            uint8_t ch = buf[i];
            if (escape) {
                escape = false;
                if (ch == 'x') {
                    pc_stop(pc, 0);
                    return NULL;
                }
                if (ch != 1) continue;
            } else if (ch == 1) {
                escape = true;
                continue;
            }
            while (uart_receive(pc->uart, &ch, 1) == 0 &&
                   atomic_load(&pc->exit_status) == EXIT_RUNNING)
                usleep(1000); /* the guest's FIFO is full: wait for it to read */
        }
    }
    return NULL;
}

/* ---- interrupt wiring ---- */

/* ISA IRQ n reaches 8259 input n and I/O APIC pin n (IRQ0 -> pin 2, the MADT
 * interrupt source override). */
static void isa_irq(void *opaque, int irq, int level)
{
    struct pc *pc = opaque;
    pic_set_irq(pc->pic, irq, level);
    ioapic_set_irq(pc->ioapic, irq == 0 ? 2 : irq, level);
}

static struct irq_line isa_line(struct pc *pc, int irq)
{
    return (struct irq_line){.set = isa_irq, .opaque = pc, .pin = irq};
}

/* Does a message address another node's vCPU? (lapic_match's rules, with the
 * logical destination that vCPU's node published.) */
static bool remote_match(const struct pc_vcpu *pv, const struct apic_msg *m)
{
    switch (m->shorthand) {
    case APIC_SH_SELF: return m->src == pv->id;
    case APIC_SH_ALL: return true;
    case APIC_SH_OTHERS: return m->src != pv->id;
    default: break;
    }
    unsigned dest = m->dest & 0xff;
    if (dest == 0xff) return true;
    if (!m->logical) return dest == (unsigned)pv->id;
    return apic_logical_match(pv->ldr, pv->dfr, dest);
}

static void bus_deliver(void *opaque, const struct apic_msg *m)
{
    struct pc *pc = opaque;
    bool lowest = m->delivery == APIC_DM_LOWEST && m->shorthand == APIC_SH_NONE;
    uint64_t remote[CLUSTER_MAX_NODES] = {0};
    struct lapic *best = NULL;
    int best_prio = 1 << 30, first_remote = -1;
    for (int i = 0; i < pc->ncpus; i++) {
        struct pc_vcpu *pv = &pc->cpus[i];
        if (!vcpu_local(pc, i)) {
            if (remote_match(pv, m)) {
                if (first_remote < 0) first_remote = i;
                if (!lowest) remote[pv->node] |= 1ull << i;
            }
            continue;
        }
        if (!lapic_match(pv->lapic, m)) continue;
        if (!lowest) {
            lapic_accept(pv->lapic, m);
            continue;
        }
        int p = lapic_priority(pv->lapic);
        if (p < best_prio) {
            best = pv->lapic;
            best_prio = p;
        }
    }
    /* lowest priority: a local winner avoids a network hop; otherwise the first
     * matching vCPU elsewhere (remote priorities are not known here) */
    if (lowest && best) lapic_accept(best, m);
    if (lowest && !best && first_remote >= 0)
        remote[pc->cpus[first_remote].node] |= 1ull << first_remote;
    for (int k = 0; pc->node && k < CLUSTER_MAX_NODES; k++)
        if (remote[k]) node_send_apic(pc->node, k, m, remote[k]);
}

/* An APIC message from another node for vCPUs of this one. */
static void node_apic_in(void *ctx, const struct apic_msg *m, uint64_t mask)
{
    struct pc *pc = ctx;
    for (int i = 0; i < pc->ncpus && i < 64; i++)
        if ((mask >> i) & 1 && vcpu_local(pc, i)) lapic_accept(pc->cpus[i].lapic, m);
}

static void node_apic_logical(void *ctx, int vcpu, uint32_t ldr, uint32_t dfr)
{
    struct pc *pc = ctx;
    if (vcpu < pc->ncpus && !vcpu_local(pc, vcpu)) {
        pc->cpus[vcpu].ldr = ldr;
        pc->cpus[vcpu].dfr = dfr;
    }
}

static void lapic_logical_changed(void *ctx, int vcpu, uint32_t ldr, uint32_t dfr)
{
    struct pc *pc = ctx;
    if (pc->node) node_send_apic_logical(pc->node, vcpu, ldr, dfr);
}

static void bus_eoi(void *opaque, uint8_t vector)
{
    struct pc *pc = opaque;
    if (pc->is_platform)
        ioapic_eoi(pc->ioapic, vector);
    else if (pc->node)
        node_send_eoi(pc->node, vector);
}

static void node_eoi_in(void *ctx, uint8_t vector)
{
    struct pc *pc = ctx;
    if (pc->ioapic) ioapic_eoi(pc->ioapic, vector);
}

static void pic_intr(void *opaque, int level)
{
    struct pc *pc = opaque;
    /* the PIC starts masked; vCPUs come after the devices. vCPU 0 (whose LINT0
     * the 8259 drives) runs on the platform node, as the PIC does. */
    if (pc->cpus && pc->cpus[0].lapic) lapic_set_lint(pc->cpus[0].lapic, 0, level);
}

/* ---- vCPU exits ---- */

static void vcpu_io(void *ctx, struct cpu_io *io)
{
    struct pc_vcpu *pv = ctx;
    if (io->kind == CPU_IO_MMIO) {
        uint64_t base = lapic_base(pv->lapic);
        if ((base & LAPIC_BASE_ENABLE) && io->addr - (base & ~0xfffull) < 0x1000) {
            uint64_t off = io->addr & 0xfff;
            if (io->write)
                lapic_mmio_write(pv->lapic, off, io->size, io->data);
            else
                io->data = lapic_mmio_read(pv->lapic, off, io->size);
            return;
        }
    }
    router_dispatch(&pv->pc->router, io);
}

static int vcpu_irq_ack(void *ctx)
{
    struct pc_vcpu *pv = ctx;
    return lapic_ack(pv->lapic);
}

static int vcpu_msr(void *ctx, uint32_t index, bool write, uint64_t *value)
{
    struct pc_vcpu *pv = ctx;
    return lapic_msr(pv->lapic, index, write, value);
}

/* Between blocks a running vCPU fires its own LAPIC timer (so a tick does not
 * wake the timer thread, which would preempt a vCPU on a busy host) and, on a
 * cluster, serves its node's network. The timer is looked at every
 * TIMER_LOOK_INSNS instructions or so (a few microseconds of guest time). */
#define TIMER_LOOK_INSNS 4096

static void vcpu_poll(void *ctx)
{
    struct pc_vcpu *pv = ctx;
    lapic_timer_poll(pv->lapic);
    if (pv->node_poll) node_vcpu_poll(pv->pc->node);
}

static bool vcpu_poll_wanted(void *ctx)
{
    struct pc_vcpu *pv = ctx;
    struct pc *pc = pv->pc;
    pv->node_poll = false;
    if (pc->node_look_polls && pc->node && ++pv->node_looks >= pc->node_look_polls) {
        pv->node_looks = 0;
        pv->node_poll = node_vcpu_poll_wanted(pc->node);
        if (pv->node_poll) return true;
    }
    if (++pv->timer_looks < pc->timer_look_polls) return false;
    pv->timer_looks = 0;
    return lapic_timer_due(pv->lapic);
}

void x86_state_dump(FILE *f, const struct x86_state *s);

static void *vcpu_thread(void *arg)
{
    struct pc_vcpu *pv = arg;
    struct pc *pc = pv->pc;
    for (;;) {
        lapic_timer_owner_runs(pv->lapic, true);
        enum vcpu_exit_reason r = vcpu_run(pv->v);
        lapic_timer_owner_runs(pv->lapic, false); /* asleep: the timer thread wakes it */
        if (r == VCPU_EXIT_HLT || r == VCPU_EXIT_WAIT_SIPI) {
            if (pc->node)
                node_vcpu_halted(pc->node, pv->v);
            else
                vcpu_halt_wait(pv->v, 0);
            continue;
        }
        if (r == VCPU_EXIT_SHUTDOWN) {
            struct x86_state s;
            pv->v->impl->get_state(pv->v, &s);
            restore_terminal();
            fprintf(stderr, "\nunum: vcpu %d: triple fault, VM stopped\n", pv->id);
            x86_state_dump(stderr, &s);
            pc_stop(pc, 125);
        }
        if (atomic_load(&pc->exit_status) != EXIT_RUNNING) break;
    }
    return NULL;
}

static uint64_t host_tsc(void *opaque)
{
    return __builtin_ia32_rdtsc();
}

/* UNUM_PROFILE=FILE: every millisecond, record each vCPU's RIP ("idle" when it
 * sleeps in HLT) with a timestamp — a sampling profile of the guest. */
static void *profile_thread(void *arg)
{
    struct pc *pc = arg;
    FILE *f = fopen(getenv("UNUM_PROFILE"), "w");
    if (!f) return NULL;
    while (atomic_load(&pc->exit_status) == EXIT_RUNNING) {
        uint64_t t = clock_ns() - pc->start_ns;
        for (int i = 0; i < pc->ncpus; i++) {
            struct vcpu *v = pc->cpus[i].v;
            if (!v) continue;
            if (atomic_load(&v->sleeping))
                fprintf(f, "%llu %d idle\n", (unsigned long long)t, i);
            else
                fprintf(f, "%llu %d %llx\n", (unsigned long long)t, i,
                        (unsigned long long)emu_sample_rip(v));
        }
        usleep(1000);
    }
    fclose(f);
    return NULL;
}

/* ---- building the machine ---- */

static char *base64(const char *s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)(uint8_t)s[i + 1] << 8;
        if (i + 2 < n) v |= (uint8_t)s[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
    return out;
}

/* Over several nodes every write to a page another node uses costs a page
 * round trip, so two periodic sources of such writes are turned off unless the
 * user's --append sets them: automatic NUMA balancing (it unmaps pages to sample
 * accesses, and every hinting fault takes the process-wide mmap lock) and, on
 * every vCPU but 0, the periodic tick while one task runs (nohz_full: each tick
 * reads jiffies and the timekeeper, which vCPU 0 writes every tick). The
 * initramfs is unpacked before the init calls instead of beside them
 * (initramfs_async=0): asynchronously it ran on an idle vCPU, often on another
 * node, and both sides of every shared lock and list of the boot moved between
 * nodes (2-node boot ~0.3 s faster). With unum's own initrd the kernel boots on
 * vCPU 0 alone (maxcpus=1; noreplace-smp keeps the LOCK prefixes, which it would
 * otherwise patch out and back in) and /init brings the others online before the
 * command starts: the init calls, device probing and kernel threads of the boot
 * then run on one node instead of wherever the scheduler spread them, which moved
 * pages for every shared lock, list and IPI queue (2-node boot 4.6-5.3 -> 3.7-4.2 s,
 * 4-node 7.5-11.3 -> 4.2-4.5 s, in paired runs). The kernel is not randomized
 * (nokaslr, unless --append names kaslr): its decompressor placed it anywhere in
 * RAM, in practice mostly in another node's memory, and vCPU 0 then pulled its
 * ~55 MB from there (0.2-0.3 s of every such boot). */
static void cluster_cmdline(const struct pc_config *cfg, char *out, size_t len)
{
    out[0] = 0;
    if (!cfg->cluster || cfg->cluster->nnodes < 2) return;
    size_t o = 0;
    if (!strstr(cfg->append, "numa_balancing="))
        o += (size_t)snprintf(out + o, len - o, " numa_balancing=disable");
    if (!strstr(cfg->append, "initramfs_async=") && o < len)
        o += (size_t)snprintf(out + o, len - o, " initramfs_async=0");
    if (!strstr(cfg->append, "kaslr") && o < len)
        o += (size_t)snprintf(out + o, len - o, " nokaslr");
    if (cfg->cpus > 1 && cfg->own_initrd && !strstr(cfg->append, "maxcpus=") && o < len)
        o += (size_t)snprintf(out + o, len - o, " maxcpus=1 noreplace-smp unum.late_cpus=1");
    if (cfg->cpus > 1 && !strstr(cfg->append, "nohz_full=") && o < len)
        snprintf(out + o, len - o, cfg->cpus == 2 ? " nohz_full=1" : " nohz_full=1-%d",
                 cfg->cpus - 1);
}

static char *kernel_cmdline(const struct pc_config *cfg)
{
    /* quiet boot on the serial console; tsc=reliable because the TSC is the host's
     * invariant TSC, identical on every vCPU, while the clocksource watchdog would
     * compare it against the PM timer across host preemptions of oversubscribed vCPU
     * threads (8 vCPUs on 2 cores trip it), the reason Linux trusts the TSC under
     * VMware and KVM's stable kvmclock too; panic=-1 turns a
     * panic into a reset, which ends the VM; cryptomgr.notests skips the boot-time
     * self-tests of every crypto algorithm (seconds of RSA arithmetic) */
    const char *base = "console=ttyS0 panic=-1 tsc=reliable no_timer_check cryptomgr.notests=1";
    const char *level = cfg->verbose ? "loglevel=7" : "quiet loglevel=3";
    char cluster[256]; /* cluster_cmdline: under 160 bytes with nohz_full=1-63 */
    cluster_cmdline(cfg, cluster, sizeof cluster);
    char *b64 = cfg->command ? base64(cfg->command) : NULL;
    size_t len = strlen(base) + strlen(level) + strlen(cluster) + strlen(cfg->append) +
                 (b64 ? strlen(b64) : 0) + 32;
    char *s = malloc(len);
    snprintf(s, len, "%s %s%s %s%s%s", base, level, cluster, cfg->append, b64 ? " unum.cmd=" : "",
             b64 ? b64 : "");
    free(b64);
    return s;
}

/* The I/O APIC's ID follows the local APICs' (0..n-1) in its 4-bit register, as on
 * real boards; MADT and device must agree. */
static int pc_ioapic_id(const struct pc *pc)
{
    return pc->ncpus & 0xf;
}

static void build_e820(const struct pc *pc, struct boot_layout *l)
{
    uint64_t mem = pc->cfg.memory;
    uint64_t low = mem < PCI_HOLE_START ? mem : PCI_HOLE_START;
    l->ne820 = 0;
    l->e820[l->ne820++] = (struct e820_entry){0, 0x9fc00, E820_RAM};
    l->e820[l->ne820++] = (struct e820_entry){0x9fc00, 0x400, E820_RESERVED};
    l->e820[l->ne820++] = (struct e820_entry){ACPI_AREA_GPA, ACPI_AREA_SIZE, E820_RESERVED};
    l->e820[l->ne820++] = (struct e820_entry){0x100000, low - 0x100000, E820_RAM};
    if (mem > low) l->e820[l->ne820++] = (struct e820_entry){1ull << 32, mem - low, E820_RAM};
}

/* ---- cluster layout: RAM is laid out node after node in "RAM offsets"; RAM
 * above the PCI hole sits at 4 GiB and up ---- */

static uint64_t ram_offset(uint64_t gpa)
{
    return gpa < PCI_HOLE_START ? gpa : gpa - ((1ull << 32) - PCI_HOLE_START);
}

static uint64_t ram_gpa(uint64_t off)
{
    return off < PCI_HOLE_START ? off : off + ((1ull << 32) - PCI_HOLE_START);
}

static int pc_home(void *ctx, uint64_t gpa)
{
    struct pc *pc = ctx;
    int k = cluster_node_of_ram(pc->cfg.cluster, ram_offset(gpa));
    return k < 0 ? pc->platform : k;
}

/* The guest's NUMA node of a cluster node: its place in the layout. */
static uint32_t numa_domain(const struct cluster_config *c, int node)
{
    uint32_t d = 0;
    for (int i = 0; i < c->nnodes; i++)
        if (c->node[i].first_cpu < c->node[node].first_cpu) d++;
    return d;
}

static void build_acpi(struct pc *pc, struct boot_layout *l)
{
    const struct cluster_config *cl = pc->cfg.cluster;
    bool numa = cl && cl->numa && cl->nnodes > 1;
    struct acpi_config ac;
    acpi_config_defaults(&ac);
    ac.ioapic_id = (uint8_t)pc_ioapic_id(pc);
    struct acpi_cpu *cpus = calloc((size_t)pc->ncpus, sizeof(*cpus));
    for (int i = 0; i < pc->ncpus; i++)
        cpus[i] = (struct acpi_cpu){.apic_id = (uint32_t)i,
                                    .node = numa ? numa_domain(cl, pc->cpus[i].node) : 0,
                                    .present = true};
    ac.cpus = cpus;
    ac.ncpus = (uint32_t)pc->ncpus;
    struct acpi_mem_range mem[2 * CLUSTER_MAX_NODES];
    uint32_t nmem = 0;
    if (numa) {
        /* each node's home range, split around the PCI hole */
        for (int k = 0; k < cl->nnodes; k++) {
            uint64_t lo = cl->node[k].first_byte, hi = lo + cl->node[k].memory;
            uint32_t dom = numa_domain(cl, k);
            if (lo < PCI_HOLE_START)
                mem[nmem++] = (struct acpi_mem_range){
                    lo, (hi < PCI_HOLE_START ? hi : PCI_HOLE_START) - lo, dom, false};
            if (hi > PCI_HOLE_START) {
                uint64_t a = ram_gpa(lo > PCI_HOLE_START ? lo : PCI_HOLE_START);
                mem[nmem++] = (struct acpi_mem_range){a, ram_gpa(hi - 1) + 1 - a, dom, false};
            }
        }
        ac.numa_nodes = (uint32_t)cl->nnodes;
    } else {
        for (int i = 0; i < l->ne820; i++)
            if (l->e820[i].type == E820_RAM && nmem < 2 && l->e820[i].addr >= 0x100000)
                mem[nmem++] = (struct acpi_mem_range){l->e820[i].addr, l->e820[i].size, 0, false};
    }
    ac.mem = mem;
    ac.nmem = nmem;
    struct acpi_layout lay;
    uint8_t *area = calloc(1, ACPI_AREA_SIZE);
    int err = area ? acpi_build(&ac, area, ACPI_AREA_SIZE, ACPI_AREA_GPA, &lay) : -ENOMEM;
    if (err < 0)
        die("cannot build ACPI tables (%s, %zu bytes needed)", strerror(-err), lay.total_size);
    /* through the memory layer: on a cluster the page may be homed elsewhere */
    if (guest_mem_write(&pc->mem, ACPI_AREA_GPA, area, ACPI_AREA_SIZE) < 0)
        die("cannot write the ACPI tables into guest memory");
    l->rsdp_gpa = lay.rsdp;
    free(area);
    free(cpus);
}

static void create_devices(struct pc *pc)
{
    pc->ioapic = ioapic_create(pc_ioapic_id(pc), &pc->apic_bus);
    pc->pic = pic_create(pic_intr, pc);
    if (!pc->ioapic || !pc->pic) die("cannot create the interrupt controllers");
    pic_register(pc->pic, &pc->router);
    router_add(&pc->router, ROUTE_MMIO, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE, &ioapic_mmio_ops,
               pc->ioapic, "ioapic");

    struct irq_line l;
    pc->uart = calloc(1, sizeof(*pc->uart));
    l = isa_line(pc, UART_COM1_IRQ);
    uart_init(pc->uart, &pc->timers, &l, console_tx, pc);
    uart_register(pc->uart, &pc->router, UART_COM1_BASE, "com1");

    pc->pit = calloc(1, sizeof(*pc->pit));
    l = isa_line(pc, PIT_IRQ);
    pit_init(pc->pit, &pc->timers, &l);
    pit_register(pc->pit, &pc->router);

    pc->rtc = calloc(1, sizeof(*pc->rtc));
    l = isa_line(pc, RTC_IRQ);
    rtc_init(pc->rtc, &pc->timers, &l);
    rtc_register(pc->rtc, &pc->router);
    uint64_t mem = pc->cfg.memory;
    rtc_set_memory(pc->rtc, mem < PCI_HOLE_START ? mem : PCI_HOLE_START,
                   mem > PCI_HOLE_START ? mem - PCI_HOLE_START : 0);

    pc->pm = calloc(1, sizeof(*pc->pm));
    l = isa_line(pc, ACPI_SCI_IRQ);
    acpi_pm_init(pc->pm, &pc->timers, &l, guest_power_off, guest_reset, pc);
    acpi_pm_register(pc->pm, &pc->router);

    pc->pci = calloc(1, sizeof(*pc->pci));
    pci_bus_init(pc->pci);
    pci_bus_set_rcr(pc->pci, &acpi_pm_rcr_ops, pc->pm);
    pci_bus_register(pc->pci, &pc->router);
}

static uint64_t host_tsc_node(void *opaque)
{
    return emu_host_clock();
}

static void create_vcpus(struct pc *pc)
{
    pc->exit_ops = (struct cpu_exit_ops){.io = vcpu_io, .irq_ack = vcpu_irq_ack, .msr = vcpu_msr};
    pc->exit_ops.poll = vcpu_poll;
    pc->exit_ops.poll_wanted = vcpu_poll_wanted;
    /* the hook runs at the shorter of the two intervals (the network's may be
     * longer, or 0: never, UNUM_VCPU_POLL_INSNS) and counts calls for the other */
    uint32_t net = pc->cfg.cluster ? node_vcpu_poll_insns() : 0;
    uint32_t every = net && net < TIMER_LOOK_INSNS ? net : TIMER_LOOK_INSNS;
    pc->exit_ops.poll_insns = every;
    pc->timer_look_polls = (TIMER_LOOK_INSNS + every - 1) / every;
    pc->node_look_polls = net ? (uint32_t)(((uint64_t)net + every - 1) / every) : 0;
    pc->cpus = calloc((size_t)pc->ncpus, sizeof(*pc->cpus));
    uint64_t hz = emu_tsc_hz();
    for (int i = 0; i < pc->ncpus; i++) {
        struct pc_vcpu *pv = &pc->cpus[i];
        pv->pc = pc;
        pv->id = i;
        pv->node = pc->cfg.cluster ? cluster_node_of_cpu(pc->cfg.cluster, i) : 0;
        pv->dfr = 0xffffffffu;
        if (pv->node != pc->self) continue;
        pv->v = emu_cpu_impl.create(&pc->mem, i, &pc->exit_ops, pv);
        if (!pv->v) die("cannot create vcpu %d", i);
        pv->v->features = VCPU_FEAT_TSC_DEADLINE;
        pv->lapic = lapic_create(i, pv->v, &pc->apic_bus, &pc->timers,
                                 pc->cfg.cluster ? host_tsc_node : host_tsc, NULL, hz);
        if (!pv->lapic) die("cannot create the local APIC of vcpu %d", i);
        if (pc->cfg.cluster) lapic_set_logical_hook(pv->lapic, lapic_logical_changed, pc);
    }
    if (pc->pic && pc->cpus[0].lapic) lapic_set_extint_ack(pc->cpus[0].lapic, pic_ack_cb, pc->pic);
}

static void load_guest(struct pc *pc, struct boot_layout *layout)
{
    size_t ksize, isize;
    uint8_t *k = pc_read_file("kernel", pc->cfg.kernel, &ksize);
    uint8_t *ird = pc_read_file("initrd", pc->cfg.initrd, &isize);
    struct linux_image img;
    const char *why;
    if (linux_image_parse(k, ksize, &img, &why) < 0) die("kernel %s: %s", pc->cfg.kernel, why);
    char *cmdline = kernel_cmdline(&pc->cfg);
    struct x86_state s;
    emu_cpu_impl.get_state(pc->cpus[0].v, &s);
    if (pc->cfg.cluster) {
        /* The initrd in the platform node's own memory: the loader (here)
         * writes it without a page round trip each, vCPU 0 (here too) unpacks
         * it locally, and once freed its pages are this node's to reuse
         * rather than pages another node must take back first. */
        const struct cluster_node *p = &pc->cfg.cluster->node[pc->platform];
        uint64_t end = p->first_byte + p->memory;
        layout->initrd_end = end < PCI_HOLE_START ? end : PCI_HOLE_START;
    }
    if (linux_load(&pc->mem, &img, ird, isize, cmdline, layout, &s, &why) < 0)
        die("cannot load the kernel: %s", why);
    emu_cpu_impl.set_state(pc->cpus[0].v, &s);
    /* application processors wait for the guest's INIT/SIPI/SIPI */
    for (int i = 1; i < pc->ncpus; i++)
        if (vcpu_local(pc, i)) vcpu_post(pc->cpus[i].v, VCPU_REQ_INIT);
    free(cmdline);
    free(k);
    free(ird);
}

/* The vCPU threads are joined (or were never started) before this. */
void pc_destroy(struct pc *pc)
{
    timer_service_stop(&pc->timers);
    for (int i = 0; i < pc->ncpus; i++) {
        if (!vcpu_local(pc, i)) continue;
        lapic_destroy(pc->cpus[i].lapic);
        emu_cpu_impl.destroy(pc->cpus[i].v);
    }
    free(pc->cpus);
    if (pc->uart) uart_destroy(pc->uart);
    if (pc->pit) pit_destroy(pc->pit);
    if (pc->rtc) rtc_destroy(pc->rtc);
    if (pc->pm) acpi_pm_destroy(pc->pm);
    if (pc->pci) pci_bus_destroy(pc->pci);
    free(pc->uart);
    free(pc->pit);
    free(pc->rtc);
    free(pc->pm);
    free(pc->pci);
    if (pc->pic) pic_destroy(pc->pic);
    if (pc->ioapic) ioapic_destroy(pc->ioapic);
    guest_mem_destroy(&pc->mem);
    pthread_mutex_destroy(&pc->con_lock);
    free(pc);
}

/* ---- the cluster side of the machine ---- */

/* A forwarded exit, on the platform node: its own devices answer. */
static void node_io_in(void *ctx, int from, struct cpu_io *io)
{
    struct pc *pc = ctx;
    router_dispatch(&pc->router, io);
}

static void node_stop_in(void *ctx, int status)
{
    pc_stop_local(ctx, status);
}

/* The routing table travels with the platform's start message. */
struct wire_route {
    uint8_t space, node;
    uint8_t pad[6];
    uint64_t base, len;
    char name[24];
};

static char route_names[ROUTER_MAX_ROUTES][24];

static void node_start_in(void *ctx, const void *info, uint32_t len)
{
    struct pc *pc = ctx;
    const struct wire_route *r = info;
    for (uint32_t i = 0; i < len / sizeof(*r) && i < ROUTER_MAX_ROUTES; i++) {
        memcpy(route_names[i], r[i].name, sizeof(route_names[i]));
        route_names[i][sizeof(route_names[i]) - 1] = 0;
        if (r[i].node != pc->self)
            router_add_remote(&pc->router, r[i].space ? ROUTE_MMIO : ROUTE_PIO, r[i].base, r[i].len,
                              route_names[i], r[i].node);
    }
}

static void start_cluster(struct pc *pc)
{
    struct wire_route r[ROUTER_MAX_ROUTES];
    memset(r, 0, sizeof(r));
    int n = pc->router.n;
    for (int i = 0; i < n; i++) {
        const struct route *e = &pc->router.routes[i];
        r[i].space = e->space == ROUTE_MMIO;
        r[i].node = (uint8_t)e->node;
        r[i].base = e->base;
        r[i].len = e->len;
        snprintf(r[i].name, sizeof(r[i].name), "%s", e->name ? e->name : "?");
    }
    node_start_all(pc->node, r, (uint32_t)(n * sizeof(r[0])));
}

static void join_cluster(struct pc *pc)
{
    struct node_machine m = {.io = node_io_in,
                             .apic = node_apic_in,
                             .eoi = node_eoi_in,
                             .apic_logical = node_apic_logical,
                             .start = node_start_in,
                             .stop = node_stop_in,
                             .ctx = pc};
    char err[256];
    pc->node = node_create(pc->cfg.cluster, pc->self, &pc->mem, pc_home, pc, &m, err, sizeof(err));
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "node %d: ", pc->self);
    if (!pc->node)
        die("node %d: %s", pc->self,
            strncmp(err, prefix, strlen(prefix)) ? err : err + strlen(prefix));
    router_set_cluster(&pc->router, pc->self, pc->platform, node_forward_io, pc->node);
}

struct pc *pc_create(const struct pc_config *cfg, struct boot_layout *layout)
{
    struct pc *pc = calloc(1, sizeof(*pc));
    if (!pc) die("out of memory");
    pc->cfg = *cfg;
    pc->ncpus = cfg->cpus;
    pc->self = cfg->cluster ? cfg->node_id : 0;
    pc->platform = cfg->cluster ? cfg->cluster->platform : 0;
    pc->is_platform = pc->self == pc->platform;
    pc->con.status = -1;
    pc->con.show_boot = cfg->verbose;
    pthread_mutex_init(&pc->con_lock, NULL);
    atomic_init(&pc->exit_status, EXIT_RUNNING);
    pc->start_ns = clock_ns();
    if (guest_mem_init(&pc->mem, cfg->memory, PCI_HOLE_START, MEM_WRITE) < 0)
        die("cannot allocate %lluM of guest memory", (unsigned long long)(cfg->memory >> 20));
    router_init(&pc->router);
    if (timer_service_start(&pc->timers) < 0) die("cannot start the timer thread");
    pc->apic_bus = (struct apic_bus){.deliver = bus_deliver, .eoi = bus_eoi, .opaque = pc};
    if (pc->is_platform) create_devices(pc);
    create_vcpus(pc);
    if (cfg->cluster) join_cluster(pc);
    if (pc->is_platform) {
        build_e820(pc, layout);
        build_acpi(pc, layout);
    }
    return pc;
}

void pc_access(struct pc *pc, int cpu, struct cpu_io *io)
{
    vcpu_io(&pc->cpus[cpu % pc->ncpus], io);
}

/* One write: the nodes of a local cluster share stderr. */
static void print_routes(struct pc *pc, bool counters)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    fprintf(f,
            "unum: routing table of node %d (the local APIC page 0xfee00000 is "
            "served by each vCPU's own node)\n",
            pc->self);
    router_print(&pc->router, f, counters);
    fclose(f);
    write_all(STDERR_FILENO, buf, len);
    free(buf);
}

int pc_run(const struct pc_config *cfg)
{
    struct boot_layout layout = {0};
    struct pc *pc = pc_create(cfg, &layout);
    if (pc->is_platform) {
        load_guest(pc, &layout);
    } else {
        /* every vCPU here is an application processor: it waits for the guest's
         * INIT/SIPI/SIPI */
        for (int i = 0; i < pc->ncpus; i++)
            if (vcpu_local(pc, i)) vcpu_post(pc->cpus[i].v, VCPU_REQ_INIT);
    }
    if (pc->node) {
        if (pc->is_platform) {
            if (cfg->show_routes) print_routes(pc, false);
            start_cluster(pc);
            if (cfg->verbose || getenv("UNUM_TIMING"))
                fprintf(stderr, "unum: cluster assembled after %.3f s\n",
                        (clock_ns() - pc->start_ns) / 1e9);
        } else if (!node_wait_start(pc->node)) {
            atomic_store(&pc->exit_status, atomic_load(&pc->exit_status) == EXIT_RUNNING
                                               ? NODE_EXIT_PEER_LOST
                                               : atomic_load(&pc->exit_status));
        }
    }

    pthread_t input;
    bool interactive = !cfg->command && pc->is_platform;
    if (interactive) {
        raw_terminal();
        pthread_create(&input, NULL, input_thread, pc);
    }
    bool running = atomic_load(&pc->exit_status) == EXIT_RUNNING;
    for (int i = 0; running && i < pc->ncpus; i++)
        if (vcpu_local(pc, i)) {
            pthread_create(&pc->cpus[i].thread, NULL, vcpu_thread, &pc->cpus[i]);
            char name[16];
            snprintf(name, sizeof name, "vcpu%d", i);
            pthread_setname_np(pc->cpus[i].thread, name);
        }
    pthread_t prof;
    bool profiling = getenv("UNUM_PROFILE") != NULL && running;
    if (profiling) pthread_create(&prof, NULL, profile_thread, pc);
    for (int i = 0; running && i < pc->ncpus; i++)
        if (vcpu_local(pc, i)) pthread_join(pc->cpus[i].thread, NULL);
    if (profiling) pthread_join(prof, NULL);
    if (pc->uart) {
        uart_flush(pc->uart);
        pthread_mutex_lock(&pc->con_lock);
        if (pc->con.len) console_line(pc, false);
        pthread_mutex_unlock(&pc->con_lock);
    }
    timer_service_stop(&pc->timers); /* no device callbacks from here on */
    if (interactive) {               /* it may sit in read(2), a cancellation point */
        pthread_cancel(input);
        pthread_join(input, NULL);
    }
    restore_terminal();
    int status = atomic_load(&pc->exit_status);
    if (pc->node) {
        if (cfg->stats) {
            node_print_stats(pc->node, stderr);
            print_routes(pc, true);
        }
        node_destroy(pc->node);
        pc->node = NULL;
    }
    pc_destroy(pc);
    return status < 0 ? 125 : status;
}
