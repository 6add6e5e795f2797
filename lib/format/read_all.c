/* read_all.c — a whole file or pipe into one buffer, bounded by a limit the
 * caller sets (see read_all.h).
 */
#include "format/read_all.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int amtl_io_read_all(const char *path, size_t max_bytes, void **buf, size_t *len,
                     amtl_status *st)
{
    *buf = NULL;
    *len = 0;
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return amtl_error(st, AMTL_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) {
        int e = errno;
        if (!is_stdin)
            close(fd);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", name, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        if (!is_stdin)
            close(fd);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", name, strerror(EISDIR));
    }
    /* A regular file is read into one buffer of its size; a pipe or device
     * (or a file claiming size 0, as some pseudo-files do) into a buffer that
     * doubles. */
    int regular = S_ISREG(sb.st_mode) && sb.st_size > 0;
    if (regular && (uint64_t)sb.st_size > max_bytes) {
        if (!is_stdin)
            close(fd);
        return amtl_error(st, AMTL_EDATA,
                          "%s: file is %lld bytes, more than the limit of %zu", name,
                          (long long)sb.st_size, max_bytes);
    }
    size_t cap = regular ? (size_t)sb.st_size : (size_t)1 << 16;
    size_t n = 0;
    char *p = malloc(cap ? cap : 1);
    int err = 0, too_big = 0;
    if (!p)
        err = ENOMEM;
    while (!err) {
        if (n == cap) {
            if (regular)
                break; /* the size fstat reported has been read */
            if (cap > max_bytes) {
                too_big = 1;
                break;
            }
            size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if (ncap > max_bytes)
                ncap = max_bytes + (max_bytes < SIZE_MAX);
            char *q = realloc(p, ncap);
            if (!q) {
                err = ENOMEM;
                break;
            }
            p = q;
            cap = ncap;
        }
        size_t want = cap - n;
        if (want > ((size_t)1 << 30))
            want = (size_t)1 << 30;
        ssize_t r = read(fd, p + n, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (!is_stdin)
        close(fd);
    if (!err && !too_big && n > max_bytes)
        too_big = 1;
    if (err || too_big) {
        free(p);
        if (too_big)
            return amtl_error(st, AMTL_EDATA,
                              "%s: input is more than the limit of %zu bytes", name,
                              max_bytes);
        if (err == ENOMEM)
            return amtl_error(st, AMTL_ENOMEM, "cannot read '%s': out of memory", name);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", name, strerror(err));
    }
    *buf = p;
    *len = n;
    return 0;
}