/* safe_write.c — replacing a file atomically: a temp file in the target's
 * directory, fsync, rename, fsync of the directory (see safe_write.h).
 */
#include "format/safe_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes all of buf, retrying short writes and EINTR.  Returns 0, or -1 with
 * errno set (ENOSPC, EFBIG under RLIMIT_FSIZE, EIO, ...). */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        size_t chunk = len > ((size_t)1 << 30) ? (size_t)1 << 30 : len;
        ssize_t n = write(fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = ENOSPC; /* a regular file that accepts nothing is full */
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* Some file systems cannot sync a directory; the rename still stands. */
    if (rc && (errno == EINVAL || errno == ENOTSUP))
        rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int amtl_io_write_atomic(const char *path, const void *buf, size_t len, amtl_status *st)
{
    if (strcmp(path, "-") == 0) {
        if (write_all(STDOUT_FILENO, buf, len))
            return amtl_error(st, AMTL_EIO, "cannot write to standard output: %s",
                              strerror(errno));
        return 0;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return amtl_error(st, AMTL_EIO, "cannot write '%s': not a file name", path);
    size_t dir_len = slash ? (size_t)(slash - path) : 1;
    char *dir = slash ? strndup(path, dir_len ? dir_len : 1) : strdup(".");
    size_t tl = (dir ? strlen(dir) : 0) + strlen(base) + 16;
    char *tmp = dir ? malloc(tl) : NULL;
    if (!tmp) {
        free(dir);
        free(tmp);
        return amtl_error(st, AMTL_ENOMEM, "cannot write '%s': out of memory", path);
    }
    snprintf(tmp, tl, "%s%s.%s.tmpXXXXXX", dir, strcmp(dir, "/") ? "/" : "", base);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        amtl_error(st, AMTL_EIO,
                   "cannot write '%s': cannot create a temp file in '%s': %s", path, dir,
                   strerror(e));
        free(dir);
        free(tmp);
        return -1;
    }
    /* mkstemp creates mode 0600; give the file the mode a plain create would.
     * Reading the umask means setting it, so it is put straight back. */
    mode_t mask = umask(0);
    umask(mask);
    const char *step = "cannot write";
    int e = 0;
    if (fchmod(fd, 0666 & ~mask) || write_all(fd, buf, len)) {
        e = errno;
    } else if (fsync(fd)) {
        e = errno;
        step = "cannot sync";
    }
    if (close(fd) && !e) {
        e = errno;
        step = "cannot write";
    }
    if (!e && rename(tmp, path)) {
        e = errno;
        step = "cannot replace";
    }
    if (e) {
        unlink(tmp);
        amtl_error(st, AMTL_EIO, "%s '%s': %s", step, path, strerror(e));
        free(dir);
        free(tmp);
        return -1;
    }
    int rc = 0;
    if (fsync_dir(dir))
        rc = amtl_error(st, AMTL_EIO, "cannot sync directory '%s' after writing '%s': %s",
                        dir, path, strerror(errno));
    free(dir);
    free(tmp);
    return rc;
}