/* util.h — small helpers shared by all layers: fatal errors before the VM
 * starts, size parsing. */
#ifndef UNUM_UTIL_UTIL_H
#define UNUM_UTIL_UTIL_H

#include <stdint.h>

/* Prints "unum: <message>" and exits with status 2 (bad user input). */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses "256M", "1G", "4096", "64K": 0 on success, -1 if malformed or overflowing. */
int parse_size(const char *s, uint64_t *out);
/* Parses a decimal integer in [min, max]: 0 on success, -1 otherwise. */
int parse_int(const char *s, long min, long max, long *out);

#endif
