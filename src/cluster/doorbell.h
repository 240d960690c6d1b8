/* doorbell.h — one "messages were sent to you" counter per node, in memory the node
 * processes of a local cluster (`unum run --nodes N`) share. A sender rings the
 * destination's bell after handing a message to the transport; a running vCPU then
 * finds out whether its node has network work with one load, instead of a transport
 * poll, and can look every few hundred instructions. Nodes on different machines
 * have no bells (doorbell_available() is false): their vCPUs poll the transport. */
#ifndef UNUM_CLUSTER_DOORBELL_H
#define UNUM_CLUSTER_DOORBELL_H

#include <stdbool.h>
#include <stdint.h>

/* Maps the bells of `nnodes` nodes; called before the node processes are forked
 * (they inherit the mapping). Returns 0 or -errno. */
int doorbell_create(int nnodes);
bool doorbell_available(void);
void doorbell_ring(int node);     /* no-op without bells or for a bad node */
uint64_t doorbell_read(int node); /* 0 without bells */

#endif
