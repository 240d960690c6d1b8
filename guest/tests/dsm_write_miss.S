/* dsm_write_miss.S — DSM write-miss latency probe (bench/cluster.sh): the last
 * vCPU writes one word in every page of [4 MiB, RAM/2) (see dsm_miss.h).
 * # cpus: 1
 * # expect: PASS: dsm_write_miss
 */
#define PROBE_ACCESS movl %ebx, (%ebx)
#define PROBE_MSG    "PASS: dsm_write_miss\n"
#include "dsm_miss.h"
