/* transport_rtt — round-trip time through the cluster transport between two
 * node processes on 127.0.0.1: node 0 sends a message, node 1's handler sends
 * it back, node 0's waiting thread sees the reply. Prints p50/p99 in µs for a
 * header-only (64-byte) message and for a 4 KiB payload, for each UCX_TLS
 * choice on the command line ("default" = UCX's own choice):
 *
 *   build/bench/transport_rtt [-n ITERS] [sm|tcp|default|posix|...]...
 *
 * "waiting thread": node 0's main thread sends and waits for the reply, polling
 * with sched_yield for up to 50 µs, then sleeping on a futex (as a vCPU thread
 * waiting for a page would). "handler chain": node 0's receive handler sends
 * the next request itself (the transport alone, no thread hand-off). Set UNUM_TRANSPORT_SPIN_US to
 * change how long the progress threads spin before they sleep. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/transport.h"
#include "util/util.h"

static int iters = 20000;

static int64_t now_ns(void)
{
    return (int64_t)clock_ns();
}

struct node {
    struct transport *t;
    _Atomic uint32_t replies; /* futex word */
    _Atomic int waiting;
    _Atomic int stop;
    /* handler chain: the reply handler sends the next request itself */
    int chain_left, chain_i;
    uint32_t chain_len;
    int64_t chain_t0;
    int64_t *lat;
};

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void recv_echo(void *ctx, const struct wire_hdr *h, const void *payload)
{
    struct node *n = ctx;
    if (h->type == WIRE_STOP) {
        atomic_store(&n->stop, 1);
        futex_wake((_Atomic uint32_t *)&n->stop);
        return;
    }
    transport_send(n->t, h->src, WIRE_IO_REPLY, h->arg, payload, h->len);
}

static uint8_t page[4096];

static void recv_reply(void *ctx, const struct wire_hdr *h, const void *payload)
{
    struct node *n = ctx;
    if (n->chain_left > 0) {
        int64_t now = now_ns();
        if (n->chain_i >= 0) n->lat[n->chain_i] = now - n->chain_t0;
        n->chain_i++;
        if (--n->chain_left > 0) {
            n->chain_t0 = now_ns();
            transport_send(n->t, 1, WIRE_IO_REQ, NULL, page, n->chain_len);
            return;
        }
    }
    atomic_fetch_add(&n->replies, 1);
    if (atomic_load(&n->waiting)) futex_wake(&n->replies);
}

static void lost(void *ctx, int node, const char *why)
{
    fprintf(stderr, "transport_rtt: node %d lost: %s\n", node, why);
}

static void wait_reply(struct node *n, uint32_t want)
{
    int64_t until = now_ns() + 50000;
    while (atomic_load(&n->replies) < want) {
        if (now_ns() < until) {
            sched_yield();
            continue;
        }
        atomic_store(&n->waiting, 1);
        uint32_t v = atomic_load(&n->replies);
        if (v < want) syscall(SYS_futex, &n->replies, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
        atomic_store(&n->waiting, 0);
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_node(const struct cluster_config *cfg, int self, const char *label)
{
    struct node n = {0};
    struct transport_handlers h = {
        .recv = self ? recv_echo : recv_reply, .peer_lost = lost, .ctx = &n};
    char err[256];
    if (transport_start(&n.t, cfg, self, &h, err, sizeof(err)) != 0) {
        fprintf(stderr, "transport_rtt: node %d: %s\n", self, err);
        return 2;
    }
    if (self == 1) {
        while (!atomic_load(&n.stop))
            syscall(SYS_futex, &n.stop, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        transport_stop(n.t);
        return 0;
    }
    for (size_t i = 0; i < sizeof(page); i++)
        page[i] = (uint8_t)i;
    int64_t *lat = calloc(iters, sizeof(*lat));
    n.lat = lat;
    uint32_t sizes[2] = {0, 4096};
    printf("%-8s %s\n  waiting thread: ", label, transport_describe(n.t, 1));
    for (int s = 0; s < 2; s++) {
        uint32_t got = atomic_load(&n.replies);
        for (int i = -iters / 10; i < iters; i++) {
            uint64_t arg[3] = {(uint64_t)i, 0, 0};
            int64_t t0 = now_ns();
            int r = transport_send(n.t, 1, WIRE_IO_REQ, arg, page, sizes[s]);
            if (r) {
                fprintf(stderr, "transport_rtt: send: %s\n", strerror(-r));
                return 1;
            }
            wait_reply(&n, ++got);
            if (i >= 0) lat[i] = now_ns() - t0;
        }
        qsort(lat, iters, sizeof(*lat), cmp64);
        printf("  %s p50 %6.1f µs p99 %6.1f µs", s ? "4 KiB:" : "64 B: ", lat[iters / 2] / 1e3,
               lat[iters * 99 / 100] / 1e3);
    }
    printf("\n  handler chain:  ");
    for (int s = 0; s < 2; s++) {
        uint32_t got = atomic_load(&n.replies);
        n.chain_len = sizes[s];
        n.chain_i = -iters / 10;
        n.chain_left = iters + iters / 10 + 1;
        n.chain_t0 = now_ns();
        transport_send(n.t, 1, WIRE_IO_REQ, NULL, page, n.chain_len);
        wait_reply(&n, got + 1);
        qsort(lat, iters, sizeof(*lat), cmp64);
        printf("  %s p50 %6.1f µs p99 %6.1f µs", s ? "4 KiB:" : "64 B: ", lat[iters / 2] / 1e3,
               lat[iters * 99 / 100] / 1e3);
    }
    printf("\n");
    fflush(stdout);
    transport_send(n.t, 1, WIRE_STOP, NULL, NULL, 0);
    usleep(20000);
    transport_stop(n.t);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "-n")) {
        iters = atoi(argv[2]);
        first = 3;
    }
    if (iters < 100) iters = 100;
    const char *defaults[] = {"default", "sm", "tcp"};
    const char **tls = (const char **)argv + first;
    int ntls = argc - first;
    if (ntls == 0) {
        tls = defaults;
        ntls = 3;
    }
    printf("transport_rtt: %d round trips per size, node 0 <-> node 1 on 127.0.0.1\n", iters);
    int status = 0;
    for (int i = 0; i < ntls; i++) {
        struct cluster_config cfg = {.nnodes = 2,
                                     .connect_timeout_ms = 10000,
                                     .heartbeat_timeout_ms = 2000,
                                     .secret_len = 32};
        uint16_t ports[2];
        char err[128];
        if (cluster_pick_ports(2, ports, err, sizeof(err))) {
            fprintf(stderr, "transport_rtt: %s\n", err);
            return 1;
        }
        for (int k = 0; k < 2; k++) {
            snprintf(cfg.node[k].host, sizeof(cfg.node[k].host), "127.0.0.1");
            cfg.node[k].port = ports[k];
            cfg.node[k].cpus = 1;
        }
        for (int b = 0; b < 32; b++)
            cfg.secret[b] = (uint8_t)(b * 7 + 1);
        if (strcmp(tls[i], "default")) snprintf(cfg.transport, sizeof(cfg.transport), "%s", tls[i]);
        fflush(stdout);
        pid_t pid[2];
        for (int k = 0; k < 2; k++) {
            pid[k] = fork();
            if (pid[k] == 0) _exit(run_node(&cfg, k, tls[i]));
        }
        for (int k = 0; k < 2; k++) {
            int st;
            waitpid(pid[k], &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st)) status = 1;
        }
    }
    return status;
}
