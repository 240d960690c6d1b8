/* launch.c — see launch.h. */
#include "cluster/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/doorbell.h"

#define CHILD_EXIT_WAIT_MS 3000

int launch_local(const struct cluster_config *cfg,
                 int (*node_main)(const struct cluster_config *cfg, int node, void *arg), void *arg)
{
    pid_t pids[CLUSTER_MAX_NODES] = {0};
    pid_t parent = getpid();
    /* without bells (no shared mapping) running vCPUs poll the transport instead:
     * slower answers, same results */
    (void)doorbell_create(cfg->nnodes);
    fflush(NULL);
    for (int k = 0; k < cfg->nnodes; k++) {
        if (k == cfg->platform) continue;
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "unum: cannot start node %d: %s\n", k, strerror(errno));
            for (int j = 0; j < k; j++)
                if (pids[j] > 0) kill(pids[j], SIGKILL);
            return 2;
        }
        if (pid == 0) {
            /* a node does not outlive the launcher, and only the platform node
             * reads the terminal */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(125);
            int null = open("/dev/null", O_RDONLY);
            if (null >= 0) {
                dup2(null, STDIN_FILENO);
                close(null);
            }
            int status = node_main(cfg, k, arg);
            fflush(NULL);
            _exit(status);
        }
        pids[k] = pid;
    }
    int status = node_main(cfg, cfg->platform, arg);
    /* the other nodes stop with the VM; give them a moment, then make sure */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int alive = 0;
        for (int k = 0; k < cfg->nnodes; k++) {
            if (pids[k] <= 0) continue;
            if (waitpid(pids[k], NULL, WNOHANG) == pids[k])
                pids[k] = 0;
            else
                alive++;
        }
        if (!alive) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > CHILD_EXIT_WAIT_MS) {
            for (int k = 0; k < cfg->nnodes; k++)
                if (pids[k] > 0) {
                    kill(pids[k], SIGKILL);
                    waitpid(pids[k], NULL, 0);
                }
            break;
        }
        usleep(10000);
    }
    return status;
}
