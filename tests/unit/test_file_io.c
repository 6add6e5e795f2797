/* test_file_io.c — amtl files to and from disk and pipes: reads of files,
 * pipes and stdin, writes to stdout, atomic replacement, failed writes, and
 * the temp files of killed writers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format/io.h"
#include "iotest.h"

/* Counts entries in dir whose name starts with prefix. */
static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* Makes the directory test_tmpdir()/name, its path in dir[600], and the
 * path of file in it in path[700]; 0 or -1. */
static int subdir(char *dir, char *path, const char *name, const char *file)
{
    snprintf(dir, 600, "%s/%s", test_tmpdir(), name);
    snprintf(path, 700, "%s/%s", dir, file);
    return mkdir(dir, 0755);
}

/* ---- reading --------------------------------------------------------- */

static void test_read_errors(void)
{
    amtl_file f;
    amtl_status st = {0};
    const char *missing = path_in_tmp("no-such.amtl");
    CHECK(amtl_file_read(&f, missing, NULL, &st) == -1);
    char want[600];
    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", missing);
    CHECKF(st.code == AMTL_EIO && strcmp(st.msg, want) == 0, "%s", st.msg);
    CHECK(file_is_empty(&f));

    CHECK(amtl_file_read(&f, test_tmpdir(), NULL, &st) == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, "Is a directory"), "%s", st.msg);

    const char *small = path_in_tmp("hundred.bin");
    char bytes[100];
    memset(bytes, 'x', sizeof bytes);
    CHECK(write_bytes(small, bytes, sizeof bytes) == 0);
    void *buf = NULL;
    size_t len = 0;
    CHECK(amtl_io_read_all(small, 10, &buf, &len, &st) == -1);
    CHECKF(strstr(st.msg, "more than the limit of 10"), "%s", st.msg);
    CHECK(buf == NULL);
    CHECK_OK(amtl_io_read_all(small, 100, &buf, &len, &st), &st);
    CHECK(len == 100 && memcmp(buf, bytes, 100) == 0);
    free(buf);
}

/* A child writes a file bigger than a pipe's buffer into stdin. */
static void test_read_stdin_pipe(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 21);
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "dataset");
    int64_t s[1] = {100000};
    void *d = random_data(&r, AMTL_F32, 100000);
    amtl_tensor *t = amtl_file_add(&f, "train.dense.x", AMTL_F32, 1, s, d, &st);
    free(d);
    CHECKF(t, "%s", st.msg);
    void *buf;
    size_t len;
    CHECK_OK(amtl_file_encode(&f, &buf, &len, &st), &st);

    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        const char *p = buf;
        size_t left = len;
        while (left) {
            ssize_t n = write(fds[1], p, left);
            if (n <= 0)
                _exit(1);
            p += n;
            left -= (size_t)n;
        }
        _exit(0);
    }
    close(fds[1]);
    int saved = dup(STDIN_FILENO);
    dup2(fds[0], STDIN_FILENO);
    close(fds[0]);
    amtl_file g;
    int rc = amtl_file_read(&g, "-", "dataset", &st);
    dup2(saved, STDIN_FILENO);
    close(saved);
    int status = 0;
    waitpid(pid, &status, 0);
    free(buf);
    char why[256] = "";
    int eq = rc == 0 && files_equal(&f, &g, why, sizeof why);
    amtl_file_free(&f);
    amtl_file_free(&g);
    CHECKF(rc == 0, "%s", st.msg);
    CHECKF(eq, "%s", why);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_stdin_messages_name_stdin(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(write(fds[1], "a,b\n", 4) == 4);
    close(fds[1]);
    int saved = dup(STDIN_FILENO);
    dup2(fds[0], STDIN_FILENO);
    close(fds[0]);
    amtl_file f;
    amtl_status st = {0};
    int rc = amtl_file_read(&f, "-", NULL, &st);
    dup2(saved, STDIN_FILENO);
    close(saved);
    CHECK(rc == -1);
    CHECKF(strcmp(st.msg,
                  "<stdin>: not an amtl file (it does not start with a msgpack map)") ==
               0,
           "%s", st.msg);
}

/* ---- writing --------------------------------------------------------- */

static void test_write_stdout(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 4);
    amtl_status st = {0};
    amtl_file f;
    CHECK_OK(make_sample(&f, &r, &st), &st);
    const char *out = path_in_tmp("stdout.amtl");
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = amtl_file_write(&f, "-", &st);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK_OK(rc, &st);
    amtl_file g;
    CHECK_OK(amtl_file_read(&g, out, "model", &st), &st);
    char why[256];
    int eq = files_equal(&f, &g, why, sizeof why);
    amtl_file_free(&f);
    amtl_file_free(&g);
    CHECKF(eq, "%s", why);
}

static void test_write_missing_directory(void)
{
    amtl_status st = {0};
    const char *path = path_in_tmp("no-such-dir/out.amtl");
    CHECK(amtl_io_write_atomic(path, "abc", 3, &st) == -1);
    CHECK(st.code == AMTL_EIO);
    CHECKF(strstr(st.msg, path) && strstr(st.msg, "No such file or directory"), "%s",
           st.msg);
    struct stat sb;
    CHECK(stat(path, &sb) == -1);
}

static void test_write_directory_is_a_file(void)
{
    amtl_status st = {0};
    const char *file = path_in_tmp("plain-file");
    CHECK(write_bytes(file, "x", 1) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/out.amtl", file);
    CHECK(amtl_io_write_atomic(path, "abc", 3, &st) == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, path) &&
               strstr(st.msg, "Not a directory"),
           "%s", st.msg);
}

static void test_write_over_a_directory_fails_cleanly(void)
{
    amtl_status st = {0};
    char dir[600], target[700];
    CHECK(subdir(dir, target, "over", "target") == 0);
    CHECK(mkdir(target, 0755) == 0);
    CHECK(amtl_io_write_atomic(target, "abc", 3, &st) == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, "cannot replace") &&
               strstr(st.msg, target),
           "%s", st.msg);
    CHECK(count_entries(dir, ".target.tmp") == 0);
}

static void test_rewrite_replaces_content(void)
{
    amtl_status st = {0};
    char dir[600], path[700];
    CHECK(subdir(dir, path, "rewrite", "out.bin") == 0);
    CHECK_OK(amtl_io_write_atomic(path, "first version", 13, &st), &st);
    CHECK_OK(amtl_io_write_atomic(path, "second", 6, &st), &st);
    size_t len;
    unsigned char *p = slurp(path, &len);
    CHECK(p);
    int same = len == 6 && memcmp(p, "second", 6) == 0;
    free(p);
    CHECK(same);
    CHECK(count_entries(dir, ".out.bin.tmp") == 0);
    CHECK(count_entries(dir, "") == 3); /* ".", "..", out.bin */
    /* the mode a plain create would give, not mkstemp's 0600 */
    mode_t mask = umask(0);
    umask(mask);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    CHECKF((sb.st_mode & 0777) == (0666 & ~mask), "mode %o",
           (unsigned)(sb.st_mode & 0777));
    /* an empty write is a valid empty file */
    CHECK_OK(amtl_io_write_atomic(path, "", 0, &st), &st);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 0);
    /* a relative path (no directory part) */
    char cwd[600];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    int rc = amtl_io_write_atomic("rel.bin", "r", 1, &st);
    CHECK(chdir(cwd) == 0);
    CHECK_OK(rc, &st);
    snprintf(path, sizeof path, "%s/rel.bin", dir);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 1);
}

/* amtl_file_write streams the file (headers, then each tensor's data from
 * the tensor itself): the bytes are those amtl_file_encode gives in memory,
 * with empty, odd-sized and large tensors, and the file reads back. */
static void test_streamed_write_equals_encode(void)
{
    amtl_status st = {0};
    char dir[600], path[700];
    CHECK(subdir(dir, path, "stream", "f.amtl") == 0);
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    amtl_file f;
    amtl_file_init(&f, "checkpoint");
    CHECK_OK(amtl_file_set_meta(&f, "config", "a: 1\n", &st), &st);
    int64_t sizes[4] = {0, 3, 70001, 1};
    amtl_dtype types[4] = {AMTL_F32, AMTL_U8, AMTL_F32, AMTL_I64};
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        void *d = random_data(&r, types[i], (size_t)sizes[i]);
        CHECKF(amtl_file_add(&f, name, types[i], 1, &sizes[i], d, &st), "%s", st.msg);
        free(d);
    }
    void *buf;
    size_t len, flen;
    CHECK_OK(amtl_file_encode(&f, &buf, &len, &st), &st);
    CHECK_OK(amtl_file_write(&f, path, &st), &st);
    unsigned char *p = slurp(path, &flen);
    CHECK(p && flen == len && memcmp(p, buf, len) == 0);
    free(p);
    free(buf);
    amtl_file g;
    CHECK_OK(amtl_file_read(&g, path, "checkpoint", &st), &st);
    CHECK(g.n_tensors == 4 && !strcmp(amtl_file_checksum_text(&g), "verified"));
    amtl_file_free(&g);
    amtl_file_free(&f);
    CHECK(count_entries(dir, ".f.amtl.tmp") == 0);
}

/* A write that hits RLIMIT_FSIZE (EFBIG, with SIGXFSZ ignored as the tools do)
 * leaves the previous file intact and no temp file behind. */
static void test_failed_write_keeps_old_file(void)
{
    amtl_status st = {0};
    char dir[600], path[700];
    CHECK(subdir(dir, path, "efbig", "out.bin") == 0);
    amtl_rng r;
    amtl_rng_seed(&r, 77);
    unsigned char *old = random_data(&r, AMTL_U8, 1000);
    unsigned char *big = random_data(&r, AMTL_U8, 200000);
    CHECK_OK(amtl_io_write_atomic(path, old, 1000, &st), &st);

    struct rlimit saved, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    lim = saved;
    lim.rlim_cur = 65536;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = amtl_io_write_atomic(path, big, 200000, &st);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);
    free(big);

    size_t len = 0;
    unsigned char *now = slurp(path, &len);
    int intact = now && len == 1000 && memcmp(now, old, 1000) == 0;
    free(now);
    free(old);
    CHECK(rc == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, path) &&
               strstr(st.msg, "File too large"),
           "%s", st.msg);
    CHECK(intact);
    CHECK(count_entries(dir, ".out.bin.tmp") == 0);
}

/* A pid that no process has now: a child's, after it is reaped. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static int touch_in(const char *dir, const char *name)
{
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return write_bytes(path, "part", 4);
}

static int exists_in(const char *dir, const char *name)
{
    char path[900];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &sb) == 0;
}

/* What a killed writer left (a temp file named for the target and a pid that
 * is gone) goes at the next write to that target; a live writer's, another
 * target's, a locked one and anything not named like a temp file stay. */
static void test_stale_temps_removed(void)
{
    amtl_status st = {0};
    char dir[600], path[700];
    CHECK(subdir(dir, path, "stale", "t.bin") == 0);
    long dead = (long)dead_pid();
    char stale[100], live[100], self[100], other[100], short_[100], link[100], held[100];
    snprintf(stale, sizeof stale, ".t.bin.tmp.%ld.Ab3xZ9", dead);
    snprintf(live, sizeof live, ".t.bin.tmp.1.Ab3xZ9");
    snprintf(self, sizeof self, ".t.bin.tmp.%ld.Ab3xZ9", (long)getpid());
    snprintf(other, sizeof other, ".u.bin.tmp.%ld.Ab3xZ9", dead);
    snprintf(short_, sizeof short_, ".t.bin.tmp.%ld.Ab3xZ", dead);
    snprintf(link, sizeof link, ".t.bin.tmp.%ld.LinkXX", dead);
    snprintf(held, sizeof held, ".t.bin.tmp.%ld.HeldXX", dead);
    CHECK(touch_in(dir, stale) == 0 && touch_in(dir, live) == 0 &&
          touch_in(dir, self) == 0 && touch_in(dir, other) == 0 &&
          touch_in(dir, short_) == 0 && touch_in(dir, held) == 0);
    char target[900], lpath[900];
    snprintf(target, sizeof target, "%s/%s", dir, other);
    snprintf(lpath, sizeof lpath, "%s/%s", dir, link);
    CHECK(symlink(target, lpath) == 0);

    /* a writer this process cannot see as a pid (another pid namespace or
     * host) still holds the lock on its temp file */
    int go[2], ready[2];
    CHECK(pipe(go) == 0 && pipe(ready) == 0);
    pid_t holder = fork();
    if (holder == 0) {
        /* with the parent's end of `go` closed here, a parent that stops early
         * ends this child too */
        close(go[1]);
        char hp[900], c;
        snprintf(hp, sizeof hp, "%s/%s", dir, held);
        int fd = open(hp, O_RDWR);
        int ok = fd >= 0 && flock(fd, LOCK_EX) == 0;
        if (write(ready[1], ok ? "y" : "n", 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
    CHECK_OK(amtl_io_write_atomic(path, "new", 3, &st), &st);
    CHECK(!exists_in(dir, stale));
    CHECK(exists_in(dir, live) && exists_in(dir, self) && exists_in(dir, other) &&
          exists_in(dir, short_) && exists_in(dir, link) && exists_in(dir, held));
    CHECK(exists_in(dir, "t.bin"));
    /* the lock goes with its process, and the file with the next write */
    CHECK(write(go[1], "x", 1) == 1);
    waitpid(holder, NULL, 0);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
    CHECK_OK(amtl_io_write_atomic(path, "newer", 5, &st), &st);
    CHECK(!exists_in(dir, held));
    CHECK(exists_in(dir, live) && exists_in(dir, link));
    /* the only temp-like names left are the ones that must stay */
    CHECK(count_entries(dir, ".t.bin.tmp.") == 4);
}

static void test_write_encode_error_names_path(void)
{
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, NULL);
    const char *path = path_in_tmp("kindless.amtl");
    CHECK(amtl_file_write(&f, path, &st) == -1);
    char want[700];
    snprintf(want, sizeof want, "cannot write '%s': cannot encode a file without a kind",
             path);
    CHECKF(strcmp(st.msg, want) == 0, "%s", st.msg);
    struct stat sb;
    CHECK(stat(path, &sb) == -1);
    amtl_file_free(&f);
}

int main(void)
{
    if (iotest_begin())
        return 1;
    RUN(test_read_errors);
    RUN(test_read_stdin_pipe);
    RUN(test_stdin_messages_name_stdin);
    RUN(test_write_stdout);
    RUN(test_write_missing_directory);
    RUN(test_write_directory_is_a_file);
    RUN(test_write_over_a_directory_fails_cleanly);
    RUN(test_rewrite_replaces_content);
    RUN(test_streamed_write_equals_encode);
    RUN(test_failed_write_keeps_old_file);
    RUN(test_stale_temps_removed);
    RUN(test_write_encode_error_names_path);
    iotest_end();
    TEST_MAIN_END();
}
