/* testvm.c — runs freestanding test guests (see testvm.h). */
#include "machine/testvm.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/emu/emu_api.h"
#include "util/util.h"

struct testvm {
    struct guest_mem mem;
    struct vcpu **vcpus;
    int ncpus;
    _Atomic int exit_status; /* -1 while running */
};

struct vcpu_ctx {
    struct testvm *vm;
    int id;
};

static void stop_all(struct testvm *vm, int status)
{
    int expected = -1;
    atomic_compare_exchange_strong(&vm->exit_status, &expected, status);
    for (int i = 0; i < vm->ncpus; i++)
        vcpu_request_stop(vm->vcpus[i]);
}

static void testvm_io(void *opaque, struct cpu_io *io)
{
    struct vcpu_ctx *ctx = opaque;
    if (io->kind == CPU_IO_PIO && io->write && io->addr == TESTVM_PORT_CONSOLE) {
        putchar((int)(io->data & 0xff));
        if ((io->data & 0xff) == '\n') fflush(stdout);
        return;
    }
    if (io->kind == CPU_IO_PIO && io->write && io->addr == TESTVM_PORT_EXIT) {
        fflush(stdout);
        stop_all(ctx->vm, (int)(io->data & 0xff));
        return;
    }
    if (!io->write) io->data = ~0ull; /* nothing there */
}

static int testvm_irq_ack(void *opaque)
{
    return -1;
}

static const struct cpu_exit_ops testvm_ops = {.io = testvm_io, .irq_ack = testvm_irq_ack};

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
        /* HLT: nothing in this machine raises interrupts, so the vCPU is done */
        break;
    }
    return NULL;
}

static int load_image(struct testvm *vm, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open test guest image %s: %s", path, strerror(errno));
    uint8_t *dst = guest_mem_host(&vm->mem, TESTVM_LOAD_ADDR);
    size_t room = vm->mem.region[0].size - TESTVM_LOAD_ADDR;
    size_t n = fread(dst, 1, room, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (n == 0) die("test guest image %s is empty", path);
    if (more) die("test guest image %s does not fit in guest memory", path);
    guest_mem_note_write(&vm->mem, TESTVM_LOAD_ADDR, n);
    return 0;
}

int testvm_run(const struct testvm_config *cfg)
{
    struct testvm vm = {.ncpus = cfg->cpus};
    atomic_init(&vm.exit_status, -1);
    if (cfg->memory < 4u << 20) die("test guest memory must be at least 4M");
    if (guest_mem_init(&vm.mem, cfg->memory, 0xc0000000ull, MEM_WRITE) < 0)
        die("cannot allocate %llu bytes of guest memory", (unsigned long long)cfg->memory);
    load_image(&vm, cfg->image);
    vm.vcpus = calloc(cfg->cpus, sizeof(*vm.vcpus));
    struct vcpu_ctx *ctx = calloc(cfg->cpus, sizeof(*ctx));
    pthread_t *th = calloc(cfg->cpus, sizeof(*th));
    for (int i = 0; i < cfg->cpus; i++) {
        ctx[i] = (struct vcpu_ctx){.vm = &vm, .id = i};
        vm.vcpus[i] = emu_cpu_impl.create(&vm.mem, i, &testvm_ops, &ctx[i]);
        if (!vm.vcpus[i]) die("cannot create vcpu %d", i);
        struct x86_state s;
        emu_cpu_impl.get_state(vm.vcpus[i], &s);
        x86_state_flat32(&s, TESTVM_LOAD_ADDR);
        s.gpr[RDI] = (uint64_t)i;         /* vCPU index */
        s.gpr[RSI] = (uint64_t)cfg->cpus; /* vCPU count */
        s.gpr[RDX] = cfg->memory;
        emu_cpu_impl.set_state(vm.vcpus[i], &s);
    }
    for (int i = 0; i < cfg->cpus; i++)
        pthread_create(&th[i], NULL, vcpu_thread, &ctx[i]);
    for (int i = 0; i < cfg->cpus; i++)
        pthread_join(th[i], NULL);
    fflush(stdout);
    int status = atomic_load(&vm.exit_status);
    for (int i = 0; i < cfg->cpus; i++)
        emu_cpu_impl.destroy(vm.vcpus[i]);
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
