/* dsm_read_miss.S — DSM read-miss latency probe (bench/cluster.sh): the last
 * vCPU reads one word in every page of [4 MiB, RAM/2) (see dsm_miss.h).
 * # cpus: 1
 * # expect: PASS: dsm_read_miss
 */
#define PROBE_ACCESS mov (%ebx), %eax
#define PROBE_MSG    "PASS: dsm_read_miss\n"
#include "dsm_miss.h"
