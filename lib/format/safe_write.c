/* safe_write.c — replacing a file atomically: a temp file in the target's
 * directory, fsync, rename, fsync of the directory; and removing the temp
 * files that killed writers left behind (see safe_write.h).
 */
#include "format/safe_write.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The temp file of a write to <base> is ".<base>.tmp.<pid>.<6 random
 * characters>", so that a later write to the same target can tell what a
 * killed writer left behind and whether that writer is gone.  The random
 * part is mkstemp(3)'s: its template must end in TEMP_RANDOM 'X's
 * (MKSTEMP_SUFFIX), which it replaces. */
#define TEMP_TAG ".tmp."
#define TEMP_RANDOM 6
#define MKSTEMP_SUFFIX "XXXXXX"
_Static_assert(sizeof MKSTEMP_SUFFIX - 1 == TEMP_RANDOM, "mkstemp's suffix is TEMP_RANDOM long");

static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The writer's pid when name is a temp file of a write to base, else 0. */
static pid_t temp_owner(const char *name, const char *base)
{
    size_t bl = strlen(base), tl = strlen(TEMP_TAG);
    if (name[0] != '.' || strncmp(name + 1, base, bl) || strncmp(name + 1 + bl, TEMP_TAG, tl))
        return 0;
    const char *p = name + 1 + bl + tl, *digits = p;
    long pid = 0;
    while (*p >= '0' && *p <= '9' && pid <= INT_MAX / 10)
        pid = pid * 10 + (*p++ - '0');
    if (p == digits || *digits == '0' || pid > INT_MAX || *p++ != '.')
        return 0;
    for (int i = 0; i < TEMP_RANDOM; i++)
        if (!is_alnum(p[i]))
            return 0;
    return p[TEMP_RANDOM] == '\0' ? (pid_t)pid : 0;
}

/* Removes name (in the directory dfd) when its writer is gone: no process of
 * that pid runs here, and nobody holds the lock a writer keeps on its temp
 * file while it writes (a writer in another pid namespace, or on another host
 * of a network file system, holds its lock even where its pid means nothing).
 * A pid reused since then keeps the file: it stays, it is never lost. */
static void remove_if_stale(int dfd, const char *name, pid_t pid)
{
    if (pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
        return;
    int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == EACCES)
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    /* a file system without locks answers something other than EWOULDBLOCK;
     * the pid alone decides there */
    struct stat a, b;
    if (!(flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK) && !fstat(fd, &a) &&
        S_ISREG(a.st_mode) && !fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        unlinkat(dfd, name, 0);
    close(fd);
}

/* Best effort: a directory that cannot be listed keeps its stale files, and
 * the write goes on. */
static void remove_stale_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t pid = temp_owner(e->d_name, base);
        if (pid > 0)
            remove_if_stale(dirfd(d), e->d_name, pid);
    }
    closedir(d);
}

/* Writes all of buf, retrying short writes and EINTR.  Returns 0, or -1 with
 * errno set. */
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

int amtl_io_write_fd(int fd, const void *buf, size_t len, amtl_status *st)
{
    if (write_all(fd, buf, len))
        return amtl_error(st, AMTL_EIO, "%s", strerror(errno));
    return 0;
}

/* The fill of a buffer in memory. */
typedef struct {
    const void *buf;
    size_t len;
} mem_fill;

static int fill_mem(void *ctx, int fd, amtl_status *st)
{
    const mem_fill *m = ctx;
    return amtl_io_write_fd(fd, m->buf, m->len, st);
}

int amtl_io_write_atomic(const char *path, const void *buf, size_t len, amtl_status *st)
{
    mem_fill m = {buf, len};
    return amtl_io_write_atomic_fill(path, fill_mem, &m, st);
}

int amtl_io_write_atomic_fill(const char *path, amtl_io_fill fill, void *ctx,
                              amtl_status *st)
{
    if (strcmp(path, "-") == 0) {
        if (fill(ctx, STDOUT_FILENO, st))
            return amtl_error_context(st, "cannot write to standard output");
        return 0;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return amtl_error(st, AMTL_EIO, "cannot write '%s': not a file name", path);
    size_t dir_len = slash ? (size_t)(slash - path) : 1;
    char *dir = slash ? strndup(path, dir_len ? dir_len : 1) : strdup(".");
    size_t tl = (dir ? strlen(dir) : 0) + strlen(base) + 40;
    char *tmp = dir ? malloc(tl) : NULL;
    if (!tmp) {
        free(dir);
        free(tmp);
        return amtl_error(st, AMTL_ENOMEM, "cannot write '%s': out of memory", path);
    }
    snprintf(tmp, tl, "%s%s.%s" TEMP_TAG "%ld." MKSTEMP_SUFFIX, dir, strcmp(dir, "/") ? "/" : "",
             base, (long)getpid());
    remove_stale_temps(dir, base);

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
    /* held until close: while it is, no other process takes this file for a
     * killed writer's (remove_if_stale) */
    (void)flock(fd, LOCK_EX | LOCK_NB);
    /* mkstemp creates mode 0600; give the file the mode a plain create would.
     * Reading the umask means setting it, so it is put straight back. */
    mode_t mask = umask(0);
    umask(mask);
    const char *step = "cannot write";
    int e = 0; /* an errno, or -1: the fill failed and st says why */
    if (fchmod(fd, 0666 & ~mask)) {
        e = errno;
    } else if (fill(ctx, fd, st)) {
        e = -1;
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
        if (e == -1)
            amtl_error_context(st, "cannot write '%s'", path);
        else
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
