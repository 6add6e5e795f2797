/* test_regressions.c — every input in tests/fuzz/regressions/ once found a
 * bug in a reader; each is fed again through the same fuzz target
 * (tests/fuzz/targets.c), named by the file's prefix: "csv-...",
 * "checkpoint-...".  Under `make check-asan` a memory error fails the run. */
#include <dirent.h>
#include <limits.h>
#include <unistd.h>

#include "../fuzz/targets.c"
#include "test.h"

/* The directory from the repository root (tests/run, make) or from next to
 * the program (build/tests/). */
static const char *regressions_dir(void)
{
    static char dir[PATH_MAX + 64];
    const char *env = getenv("AMTL_REGRESSIONS");
    if (env)
        return env;
    if (access("tests/fuzz/regressions", R_OK) == 0)
        return "tests/fuzz/regressions";
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(dir, sizeof dir, "%s/../../tests/fuzz/regressions", exe);
            if (access(dir, R_OK) == 0)
                return dir;
        }
    }
    return NULL;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int n_inputs;

static void test_every_regression_input(void)
{
    const char *dir = regressions_dir();
    CHECKF(dir != NULL, "tests/fuzz/regressions not found (set AMTL_REGRESSIONS)");
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, by_name);
    CHECKF(n >= 0, "cannot list %s", dir);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char target[32], *path = NULL;
        const char *dash = strchr(name, '-');
        if (name[0] == '.' || !dash || dash - name >= (int)sizeof target) {
            free(ents[i]);
            continue;
        }
        snprintf(target, sizeof target, "%.*s", (int)(dash - name), name);
        if (asprintf(&path, "%s/%s", dir, name) < 0) {
            free(ents[i]);
            failed = 1;
            continue;
        }
        amtl_fuzz_fn fn = amtl_fuzz_target(target);
        void *buf = NULL;
        size_t len = 0;
        amtl_status st;
        if (!fn) {
            printf("# %s: no fuzz target '%s'\n", name, target);
            failed = 1;
        } else if (amtl_io_read_all(path, (size_t)1 << 26, &buf, &len, &st)) {
            printf("# %s\n", st.msg);
            failed = 1;
        } else if (fn(buf, len)) {
            printf("# %s: the %s target's check failed\n", name, target);
            failed = 1;
        }
        n_inputs++;
        free(path);
        free(buf);
        free(ents[i]);
    }
    free(ents);
    CHECK(!failed);
}

int main(void)
{
    RUN(test_every_regression_input);
    printf("# %d regression inputs\n", n_inputs);
    TEST_MAIN_END();
}
