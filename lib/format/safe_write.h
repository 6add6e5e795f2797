/* safe_write.h — replacing a file so that a reader sees the old bytes or the
 * new ones, never a mix.
 *
 * The bytes go to a temp file ".<name>.tmp.<pid>.<6 random characters>"
 * (made by mkstemp(3)) in the target's directory, which is synced and
 * renamed over the target; then the directory is synced.  A failed write removes its temp file and leaves the old target
 * intact.  A writer killed outright cannot: its temp file stays, and the next
 * write to the same target removes it once the writer is gone (no process of
 * that pid, and the lock the writer holds on the file while it writes is
 * free).  Temp files of other targets and of running writers stay.
 */
#ifndef AMTL_SAFE_WRITE_H
#define AMTL_SAFE_WRITE_H

#include <stddef.h>

#include "base/error.h"

/* Atomically replaces path with len bytes (temp + fsync + rename). "-" writes
 * to stdout. */
int amtl_io_write_atomic(const char *path, const void *buf, size_t len,
                         amtl_status *st);

/* The same with the bytes written by fill(ctx, fd, st) to the open temp file
 * (or stdout): it returns 0, or -1 with st set (the target is then left as it
 * was).  What streams a large file without holding it in memory. */
typedef int (*amtl_io_fill)(void *ctx, int fd, amtl_status *st);
int amtl_io_write_atomic_fill(const char *path, amtl_io_fill fill, void *ctx,
                              amtl_status *st);

/* Writes all of buf to fd, retrying short writes and EINTR: 0, or -1 with
 * st saying why (ENOSPC, EFBIG under RLIMIT_FSIZE, EIO, ...): what a fill
 * calls for each piece it writes. */
int amtl_io_write_fd(int fd, const void *buf, size_t len, amtl_status *st);

#endif
