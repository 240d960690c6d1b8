/* launch.h — a whole cluster on this machine (`unum run --nodes N`): one process
 * per node, the calling process being the platform node (it keeps the terminal),
 * the others forked from it before any thread exists. */
#ifndef UNUM_CLUSTER_LAUNCH_H
#define UNUM_CLUSTER_LAUNCH_H

#include "cluster/config.h"

/* Runs node_main(cfg, k, arg) in a child process for every node k except the
 * platform node, then in this process for the platform node, and returns its
 * result. Children that outlive the platform node by more than a few seconds
 * are killed; every child dies with the launching process. */
int launch_local(const struct cluster_config *cfg,
                 int (*node_main)(const struct cluster_config *cfg, int node, void *arg),
                 void *arg);

#endif
