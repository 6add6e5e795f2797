/* safe_write.h — replacing a file so that a reader sees the old bytes or the
 * new ones, never a mix.
 *
 * The bytes go to a temp file in the target's directory, which is synced and
 * renamed over the target; then the directory is synced.  A failed write
 * removes its temp file and leaves the old target intact.
 */
#ifndef AMTL_SAFE_WRITE_H
#define AMTL_SAFE_WRITE_H

#include <stddef.h>

#include "base/error.h"

/* Atomically replaces path with len bytes (temp + fsync + rename). "-" writes
 * to stdout. */
int amtl_io_write_atomic(const char *path, const void *buf, size_t len,
                         amtl_status *st);

#endif
