/* pc_internal.h — shared between the PC machine's source files. */
#ifndef UNUM_MACHINE_PC_INTERNAL_H
#define UNUM_MACHINE_PC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file or dies with a one-line error naming `what`. */
uint8_t *pc_read_file(const char *what, const char *path, size_t *size);

#endif
