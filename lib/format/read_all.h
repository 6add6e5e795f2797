/* read_all.h — a whole file, or all of a pipe, into memory. */
#ifndef AMTL_READ_ALL_H
#define AMTL_READ_ALL_H

#include <stddef.h>

#include "base/error.h"

/* Reads a whole file ("-" = stdin) into a malloc'd buffer, refusing files
 * larger than max_bytes. */
int amtl_io_read_all(const char *path, size_t max_bytes, void **buf, size_t *len,
                     amtl_status *st);

#endif
