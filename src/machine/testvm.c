/* testvm.c — runs freestanding test guests (see testvm.h). */
#include "machine/testvm.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/config.h"
#include "cluster/node.h"
#include "cpu/cpu.h"
#include "cpu/emu/emu_api.h"
#include "util/util.h"

struct testvm {
    struct guest_mem mem;
    struct vcpu **vcpus; /* NULL for vCPUs of other nodes */
    int ncpus;
    _Atomic int exit_status; /* -1 while running */
    const struct cluster_config *cl;
    struct node *node;
    int self;
    bool platform;
    struct cpu_exit_ops exit_ops;
};

struct vcpu_ctx {
    struct testvm *vm;
    int id;
};

static void stop_local(struct testvm *vm, int status)
{
    int expected = -1;
    atomic_compare_exchange_strong(&vm->exit_status, &expected, status);
    for (int i = 0; i < vm->ncpus; i++)
        if (vm->vcpus[i]) vcpu_request_stop(vm->vcpus[i]);
}

static void stop_all(struct testvm *vm, int status)
{
    stop_local(vm, status);
    if (vm->node) node_stop_all(vm->node, atomic_load(&vm->exit_status));
}

/* The ports live on the platform node. */
static void platform_io(struct testvm *vm, struct cpu_io *io)
{
    if (io->kind == CPU_IO_PIO && io->write && io->addr == TESTVM_PORT_CONSOLE) {
        putchar((int)(io->data & 0xff));
        if ((io->data & 0xff) == '\n') fflush(stdout);
        return;
    }
    if (io->kind == CPU_IO_PIO && io->write && io->addr == TESTVM_PORT_EXIT) {
        fflush(stdout);
        stop_all(vm, (int)(io->data & 0xff));
        return;
    }
    if (!io->write) io->data = ~0ull; /* nothing there */
}

static void testvm_io(void *opaque, struct cpu_io *io)
{
    struct vcpu_ctx *ctx = opaque;
    struct testvm *vm = ctx->vm;
    if (vm->platform)
        platform_io(vm, io);
    else
        node_forward_io(vm->node, vm->cl->platform, io);
}

static void node_io_in(void *ctx, int from, struct cpu_io *io)
{
    platform_io(ctx, io);
}
static void node_stop_in(void *ctx, int status)
{
    stop_local(ctx, status);
}

static int testvm_home(void *ctx, uint64_t gpa)
{
    struct testvm *vm = ctx;
    uint64_t off = gpa < 0xc0000000ull ? gpa : gpa - 0x40000000ull;
    int k = cluster_node_of_ram(vm->cl, off);
    return k < 0 ? vm->cl->platform : k;
}

static int testvm_irq_ack(void *opaque)
{
    return -1;
}

static void testvm_poll(void *opaque)
{
    struct vcpu_ctx *ctx = opaque;
    if (ctx->vm->node) node_vcpu_poll(ctx->vm->node);
}

static bool testvm_poll_wanted(void *opaque)
{
    struct vcpu_ctx *ctx = opaque;
    return ctx->vm->node && node_vcpu_poll_wanted(ctx->vm->node);
}

void x86_state_dump(FILE *f, const struct x86_state *s);

static void *vcpu_thread(void *arg)
{
    struct vcpu_ctx *ctx = arg;
    struct testvm *vm = ctx->vm;
    struct vcpu *v = vm->vcpus[ctx->id];
    for (;;) {
        enum vcpu_exit_reason r = vcpu_run(v);
        if (r == VCPU_EXIT_STOP) break;
        if (r == VCPU_EXIT_SHUTDOWN) {
            struct x86_state s;
            v->impl->get_state(v, &s);
            fprintf(stderr, "unum: vcpu %d: triple fault, VM stopped\n", ctx->id);
            x86_state_dump(stderr, &s);
            stop_all(vm, 125);
            break;
        }
        /* HLT: nothing in this machine raises interrupts, so the vCPU is done —
         * but on a cluster it serves its node's network like any halted vCPU
         * until the VM stops */
        if (!vm->node) break;
        node_vcpu_halted(vm->node, v);
    }
    return NULL;
}

static int load_image(struct testvm *vm, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open test guest image %s: %s", path, strerror(errno));
    size_t room = vm->mem.region[0].size - TESTVM_LOAD_ADDR;
    uint8_t *buf = malloc(room);
    if (!buf) die("out of memory loading %s", path);
    size_t n = fread(buf, 1, room, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (n == 0) die("test guest image %s is empty", path);
    if (more) die("test guest image %s does not fit in guest memory", path);
    /* through the memory layer: on a cluster the pages may be homed elsewhere */
    if (guest_mem_write(&vm->mem, TESTVM_LOAD_ADDR, buf, n) < 0)
        die("cannot write the test guest image into guest memory");
    free(buf);
    return 0;
}

int testvm_run(const struct testvm_config *cfg)
{
    struct testvm vm = {.ncpus = cfg->cpus, .cl = cfg->cluster};
    vm.self = cfg->cluster ? cfg->node_id : 0;
    vm.platform = !cfg->cluster || vm.self == cfg->cluster->platform;
    atomic_init(&vm.exit_status, -1);
    if (cfg->memory < 4u << 20) die("test guest memory must be at least 4M");
    if (guest_mem_init(&vm.mem, cfg->memory, 0xc0000000ull, MEM_WRITE) < 0)
        die("cannot allocate %llu bytes of guest memory", (unsigned long long)cfg->memory);
    vm.vcpus = calloc(cfg->cpus, sizeof(*vm.vcpus));
    struct vcpu_ctx *ctx = calloc(cfg->cpus, sizeof(*ctx));
    pthread_t *th = calloc(cfg->cpus, sizeof(*th));
    vm.exit_ops = (struct cpu_exit_ops){.io = testvm_io, .irq_ack = testvm_irq_ack};
    if (cfg->cluster) { /* a running vCPU serves its node's network */
        vm.exit_ops.poll = testvm_poll;
        vm.exit_ops.poll_insns = node_vcpu_poll_insns();
        vm.exit_ops.poll_wanted = testvm_poll_wanted;
    }
    for (int i = 0; i < cfg->cpus; i++) {
        if (cfg->cluster && cluster_node_of_cpu(cfg->cluster, i) != vm.self) continue;
        ctx[i] = (struct vcpu_ctx){.vm = &vm, .id = i};
        vm.vcpus[i] = emu_cpu_impl.create(&vm.mem, i, &vm.exit_ops, &ctx[i]);
        if (!vm.vcpus[i]) die("cannot create vcpu %d", i);
        struct x86_state s;
        emu_cpu_impl.get_state(vm.vcpus[i], &s);
        x86_state_flat32(&s, TESTVM_LOAD_ADDR);
        s.gpr[RDI] = (uint64_t)i;         /* vCPU index */
        s.gpr[RSI] = (uint64_t)cfg->cpus; /* vCPU count */
        s.gpr[RDX] = cfg->memory;
        emu_cpu_impl.set_state(vm.vcpus[i], &s);
    }
    if (cfg->cluster) {
        struct node_machine m = {.io = node_io_in, .stop = node_stop_in, .ctx = &vm};
        char err[256];
        vm.node =
            node_create(cfg->cluster, vm.self, &vm.mem, testvm_home, &vm, &m, err, sizeof(err));
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "node %d: ", vm.self);
        if (!vm.node)
            die("node %d: %s", vm.self,
                strncmp(err, prefix, strlen(prefix)) ? err : err + strlen(prefix));
    }
    bool run = true;
    if (vm.platform) {
        load_image(&vm, cfg->image);
        if (vm.node) node_start_all(vm.node, NULL, 0);
    } else {
        run = node_wait_start(vm.node);
        if (!run) stop_local(&vm, NODE_EXIT_PEER_LOST);
    }
    for (int i = 0; run && i < cfg->cpus; i++)
        if (vm.vcpus[i]) pthread_create(&th[i], NULL, vcpu_thread, &ctx[i]);
    for (int i = 0; run && i < cfg->cpus; i++)
        if (vm.vcpus[i]) pthread_join(th[i], NULL);
    /* halted vCPUs of one node are not the end of the VM: the platform decides */
    if (vm.node) node_wait_stopped(vm.node);
    fflush(stdout);
    int status = atomic_load(&vm.exit_status);
    if (vm.node) {
        if (cfg->stats) node_print_stats(vm.node, stderr);
        node_destroy(vm.node);
    }
    for (int i = 0; i < cfg->cpus; i++)
        if (vm.vcpus[i]) emu_cpu_impl.destroy(vm.vcpus[i]);
    guest_mem_destroy(&vm.mem);
    free(vm.vcpus);
    free(ctx);
    free(th);
    if (status < 0) {
        fprintf(stderr, "unum: every vCPU halted without reporting an exit status\n");
        return 125;
    }
    return status;
}
