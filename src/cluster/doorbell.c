/* doorbell.c — see doorbell.h. */
#include "cluster/doorbell.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "cluster/config.h"

/* each bell on its own cache line: a ring of one node's bell does not take the
 * line of another's from the core that reads it */
struct bell {
    _Alignas(64) _Atomic uint64_t rings;
};

static struct bell *bells;
static int n_bells;

int doorbell_create(int nnodes)
{
    if (nnodes < 1 || nnodes > CLUSTER_MAX_NODES) return -EINVAL;
    void *p = mmap(NULL, sizeof(struct bell) * (size_t)nnodes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -errno;
    bells = p;
    n_bells = nnodes;
    return 0;
}

bool doorbell_available(void)
{
    return bells != NULL;
}

void doorbell_ring(int node)
{
    if (bells && node >= 0 && node < n_bells)
        atomic_fetch_add_explicit(&bells[node].rings, 1, memory_order_release);
}

uint64_t doorbell_read(int node)
{
    if (!bells || node < 0 || node >= n_bells) return 0;
    return atomic_load_explicit(&bells[node].rings, memory_order_acquire);
}
