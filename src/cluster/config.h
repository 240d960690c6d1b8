/* config.h — the description of a cluster: which nodes exist, where they listen,
 * how many vCPUs and how much guest memory each contributes, which one is the
 * platform node, the cluster secret and the transport to use. Parsed from a
 * cluster file (`unum node --cluster FILE`, format in docs/CLUSTER.md) or built
 * for a local cluster (`unum run --nodes N`).
 *
 * Global numbering starts with the platform node, then the others in id order:
 * the platform node runs vCPUs 0..cpus-1 (vCPU 0 boots the guest) and is home to
 * the first `memory` bytes of RAM, the next node to the next ones, ... */
#ifndef UNUM_CLUSTER_CONFIG_H
#define UNUM_CLUSTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_MAX_NODES  16
#define CLUSTER_SECRET_MAX 64
#define CLUSTER_SECRET_MIN 16

struct cluster_node {
    char host[64];   /* IPv4 address or host name to listen on / connect to */
    uint16_t port;   /* TCP port of the node's listener */
    int cpus;        /* >= 1 */
    uint64_t memory; /* bytes, a multiple of 4 KiB, >= 4 MiB (Linux ignores smaller NUMA nodes) */
    int first_cpu;   /* derived: global index of its first vCPU */
    uint64_t first_byte; /* derived: offset of its home range in guest RAM */
};

struct cluster_config {
    int nnodes;
    int platform; /* index of the platform node */
    struct cluster_node node[CLUSTER_MAX_NODES];
    uint8_t secret[CLUSTER_SECRET_MAX];
    size_t secret_len;
    char transport[32];       /* UCX_TLS value ("" = UCX's choice, "tcp", "sm", ...) */
    int connect_timeout_ms;   /* start-up: how long to wait for every peer (default 10000) */
    int heartbeat_timeout_ms; /* running: silence after which a peer is lost (default 2000) */
    bool numa;                /* present nodes as NUMA nodes (default true) */
};

/* Parses a cluster file. On error returns -1 and writes a one-line message naming
 * the file, the line and the problem into err. Validates: at least one node, node
 * ids 0..n-1 each exactly once, unique host:port, cpus >= 1, memory a multiple of
 * 4 KiB and >= 4 MiB, platform node defined, secret present (secret-file readable,
 * not group/world-readable) and >= CLUSTER_SECRET_MIN bytes, total vCPUs <= 64. */
int cluster_config_parse(const char *path, struct cluster_config *cfg, char *err, size_t errlen);

/* Builds a local cluster of n nodes on 127.0.0.1 with free ports, a fresh random
 * secret, `cpus` vCPUs and `memory` bytes split as evenly as possible (memory in
 * 4 KiB pages; earlier nodes get the remainder). -1 with err on bad input
 * (cpus < n, memory < n * 4 MiB, ...). */
int cluster_config_local(int n, int cpus, uint64_t memory, struct cluster_config *cfg, char *err,
                         size_t errlen);

/* n (<= CLUSTER_MAX_NODES) distinct free TCP ports on 127.0.0.1, outside the
 * kernel's ephemeral range where it has room. Another program could still take
 * one before a node binds it; that shows as "port in use" at start-up. -1 with
 * err when no socket can be had. */
int cluster_pick_ports(int n, uint16_t *ports, char *err, size_t errlen);

/* Fills the derived fields (first_cpu, first_byte). Called by both constructors. */
void cluster_config_layout(struct cluster_config *cfg);

int cluster_total_cpus(const struct cluster_config *cfg);
uint64_t cluster_total_memory(const struct cluster_config *cfg);
/* Node running global vCPU `cpu` (-1 if none). */
int cluster_node_of_cpu(const struct cluster_config *cfg, int cpu);
/* Node that is home to RAM byte offset `off` (not a gpa: see machine layer). */
int cluster_node_of_ram(const struct cluster_config *cfg, uint64_t off);

/* Writes the configuration back in cluster-file syntax (the secret as secret-hex). */
int cluster_config_write(const struct cluster_config *cfg, const char *path);

#endif
