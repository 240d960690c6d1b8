/* testvm.h — a minimal machine for freestanding test guests: RAM, a flat binary
 * loaded at 1 MiB and entered in 32-bit protected mode on every vCPU, a debug
 * console port and an exit port. The full PC platform comes with `unum run`. */
#ifndef UNUM_MACHINE_TESTVM_H
#define UNUM_MACHINE_TESTVM_H

#include <stdbool.h>
#include <stdint.h>

#define TESTVM_LOAD_ADDR    0x100000u
#define TESTVM_PORT_CONSOLE 0xe9 /* OUT byte: character to stdout */
#define TESTVM_PORT_EXIT    0xf4 /* OUT dword: stop the VM with this status */

struct cluster_config;

struct testvm_config {
    const char *image;
    int cpus;        /* the whole VM's */
    uint64_t memory; /* the whole VM's */
    /* A cluster: this process is node `node_id` (NULL: one node). The platform
     * node loads the image and owns the console and exit ports; every other
     * node's accesses to them are forwarded there. */
    const struct cluster_config *cluster;
    int node_id;
    bool stats;
};

/* Runs the guest; returns its exit status (0..255), 125 on a triple fault or
 * when every vCPU halted without reporting. */
int testvm_run(const struct testvm_config *cfg);

#endif
