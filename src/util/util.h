/* util.h — small helpers shared by all layers: fatal errors before the VM
 * starts, size parsing. */
#ifndef UNUM_UTIL_UTIL_H
#define UNUM_UTIL_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Prints "unum: <message>" and exits with status 2 (bad user input). */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes all of buf to fd (retrying short writes and EINTR); gives up on error. */
void write_all(int fd, const void *buf, size_t len);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clock_ns(void);

/* Parses "256M", "1G", "4096", "64K": 0 on success, -1 if malformed or overflowing. */
int parse_size(const char *s, uint64_t *out);
/* Parses a decimal integer in [min, max]: 0 on success, -1 otherwise. */
int parse_int(const char *s, long min, long max, long *out);

#endif
