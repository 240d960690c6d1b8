/* pc.h — the PC machine on one node: RAM with the PCI hole, the Linux loader,
 * ACPI tables, the platform devices (UART, PIT, RTC, PIC, I/O APIC, local APICs,
 * ACPI PM, PCI host bridge) and one thread per vCPU. `unum run` builds one from a
 * struct pc_config and runs it until the guest powers off. */
#ifndef UNUM_MACHINE_PC_H
#define UNUM_MACHINE_PC_H

#include <stdbool.h>
#include <stdint.h>

struct cluster_config;

struct pc_config {
    int cpus;        /* the whole VM's */
    uint64_t memory; /* the whole VM's */
    const char *kernel;
    const char *initrd;
    bool own_initrd;     /* initrd is unum's: its /init brings CPUs held back at boot online */
    const char *append;  /* extra kernel command line */
    const char *command; /* NULL: interactive shell on the console */
    bool verbose;        /* show the kernel's console output (boot log) */
    /* A cluster: this process is node `node_id` of `cluster` (NULL: one node). */
    const struct cluster_config *cluster;
    int node_id;
    bool show_routes; /* print the routing table once the cluster is assembled */
    bool stats;       /* print DSM, transport and routing statistics at the end */
};

/* Checks everything that can be checked before the guest starts (files, sizes);
 * on a problem prints one line and exits with status 2. */
void pc_validate(const struct pc_config *cfg);

/* Runs the VM (or this node's part of it); returns the guest command's exit
 * status (0..255), or 125 when the VM stopped without one (triple fault,
 * power-off without a status, a node of the cluster lost, ...). Bad cluster
 * start-up (unreachable peer, refused secret) exits with status 2. */
int pc_run(const struct pc_config *cfg);

/* The machine without a guest loaded or vCPUs running, for tests and fuzzers:
 * pc_access performs a port/MMIO access as vCPU `cpu` would. */
struct pc;
struct boot_layout;
struct cpu_io;
struct pc *pc_create(const struct pc_config *cfg, struct boot_layout *layout);
void pc_access(struct pc *pc, int cpu, struct cpu_io *io);
void pc_destroy(struct pc *pc);

#endif
