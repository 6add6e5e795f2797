/* test_checkpoint.c — checkpoints that resume exactly, also from the middle
 * of an epoch, and never hold a non-finite value. */
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include "data/prep_table.h"
#include "data/synthetic.h"
#include "test.h"
#include "train/train.h"

static int make_dataset(amtl_dataset *ds, int64_t rows, amtl_status *st)
{
    amtl_prep_table t;
    amtl_config cfg;
    amtl_file f;
    memset(&cfg, 0, sizeof cfg);
    memset(ds, 0, sizeof *ds);
    int rc = -1;
    if (amtl_config_defaults(&cfg, st))
        goto out;
    if (amtl_prep_synthetic(&t, rows, 2, 5, st))
        goto out;
    rc = amtl_prep_table_to_file(&t, &cfg, &f, st);
    amtl_prep_table_free(&t);
    if (rc == 0 && amtl_dataset_from_file(ds, &f, "synthetic", st)) {
        amtl_file_free(&f);
        rc = -1;
    }
out:
    amtl_config_free(&cfg);
    return rc;
}

static int small_config(amtl_config *c, int batch, amtl_status *st)
{
    static const char *kv[] = {"embedding_dim=4", "n_experts=2", "expert_width=8",
                               "tower_layers=[8]", "ops=[Identity,MLP-8,MLP-16]",
                               "discretize_ops=2", "threads=1"};
    memset(c, 0, sizeof *c);
    if (amtl_config_defaults(c, st))
        return -1;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (amtl_config_set_kv(c, kv[i], st))
            return -1;
    char b[32];
    snprintf(b, sizeof b, "%d", batch);
    return amtl_config_set(c, "batch_size", b, st);
}

static char *path_in_tmp(const char *name)
{
    static char p[4][512];
    static int k;
    char *s = p[k++ % 4];
    snprintf(s, 512, "%s/%s", test_tmpdir(), name);
    return s;
}

static int same_floats(const float *a, const float *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

/* Everything a later epoch depends on, bit for bit. */
static int same_trainer(const amtl_trainer *a, const amtl_trainer *b)
{
    const amtl_supernet *x = &a->net, *y = &b->net;
    int64_t ra[4], rb[4];
    amtl_rng_get_state(&a->rng, ra);
    amtl_rng_get_state(&b->rng, rb);
    return a->epoch == b->epoch && same_floats(x->w, y->w, x->n_w) &&
           same_floats(x->arch, y->arch, x->n_arch) &&
           same_floats(x->state, y->state, x->n_state) &&
           same_floats(a->opt_w.m, b->opt_w.m, a->opt_w.total) &&
           same_floats(a->opt_w.v, b->opt_w.v, a->opt_w.total) &&
           same_floats(a->opt_a.m, b->opt_a.m, a->opt_a.total) &&
           a->opt_w.step == b->opt_w.step && a->opt_a.step == b->opt_a.step &&
           memcmp(ra, rb, sizeof ra) == 0;
}

static int read_bytes(const char *path, void **buf, size_t *len)
{
    amtl_status st;
    return amtl_io_read_all(path, (size_t)1 << 30, buf, len, &st);
}

static void test_non_finite_weights_are_not_saved(void)
{
    amtl_status st = {0};
    amtl_dataset ds;
    amtl_config cfg;
    amtl_trainer tr;
    CHECK_OK(make_dataset(&ds, 400, &st), &st);
    CHECK_OK(small_config(&cfg, 64, &st), &st);
    CHECK_OK(amtl_trainer_init(&tr, &cfg, &ds, &st), &st);
    const char *path = path_in_tmp("nan.ckpt");
    CHECK_OK(amtl_trainer_save(&tr, &ds, path, "checkpoint", &st), &st);
    void *before, *after;
    size_t n_before, n_after;
    CHECK(read_bytes(path, &before, &n_before) == 0);

    tr.net.w[tr.net.n_w / 2] = NAN;
    CHECK(amtl_trainer_save(&tr, &ds, path, "checkpoint", &st) == -1);
    CHECK(st.code == AMTL_ENUM);
    CHECKF(strstr(st.msg, "holds a non-finite value") && strstr(st.msg, path), "%s", st.msg);
    CHECK(amtl_trainer_save(&tr, &ds, path_in_tmp("nan.model"), "model", &st) == -1);
    CHECK(access(path_in_tmp("nan.model"), F_OK) != 0);
    tr.net.w[tr.net.n_w / 2] = 0;

    tr.opt_w.m[0] = INFINITY;
    CHECK(amtl_trainer_save(&tr, &ds, path, "checkpoint", &st) == -1);
    CHECKF(strstr(st.msg, "'optim.weights.m'"), "%s", st.msg);
    tr.opt_w.m[0] = 0;

    tr.net.state[0] = NAN;
    CHECK(amtl_trainer_save(&tr, &ds, path, "checkpoint", &st) == -1);
    tr.net.state[0] = 1;

    CHECK(read_bytes(path, &after, &n_after) == 0);
    CHECK(n_before == n_after && memcmp(before, after, n_before) == 0);
    free(before);
    free(after);
    amtl_trainer_free(&tr);
    amtl_config_free(&cfg);
    amtl_dataset_free(&ds);
}

static volatile sig_atomic_t alarm_stop;
static void on_alarm(int sig)
{
    (void)sig;
    alarm_stop = 1;
}

/* Trains `epochs` epochs of the search phase in one go (ref) and with a stop
 * (raised before training when timer_us is 0, else by a timer), a save, a
 * load and the rest; both must agree bit for bit.  arch_data is the config
 * key ("train" or "val", the bi-level step). */
static void stop_and_resume(int64_t rows, int batch, long timer_us, const char *arch_data)
{
    amtl_status st = {0};
    amtl_dataset ds;
    amtl_config cfg;
    amtl_trainer ref, tr, re;
    const int epochs = 2;
    double ref_loss[2], loss[2] = {0, 0};
    CHECK_OK(make_dataset(&ds, rows, &st), &st);
    CHECK_OK(small_config(&cfg, batch, &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "arch_data", arch_data, &st), &st);
    CHECK_OK(amtl_trainer_init(&ref, &cfg, &ds, &st), &st);
    ref.quiet = 1;
    for (int e = 0; e < epochs; e++)
        CHECK_OK(amtl_trainer_epoch(&ref, &ds, AMTL_PHASE_SEARCH, 2, &ref_loss[e], &st), &st);

    CHECK_OK(amtl_trainer_init(&tr, &cfg, &ds, &st), &st);
    tr.quiet = 1;
    tr.stop = &alarm_stop;
    alarm_stop = timer_us == 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    if (timer_us) {
        struct itimerval it = {{0, 0}, {timer_us / 1000000, timer_us % 1000000}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
    int rc = 0;
    while (tr.epoch < epochs &&
           (rc = amtl_trainer_epoch(&tr, &ds, AMTL_PHASE_SEARCH, 2, &loss[tr.epoch], &st)) == 0)
        ;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    CHECKF(rc == -1 && st.code == AMTL_EINTR, "the stop did not come (rc %d: %s)", rc, st.msg);
    CHECK(strstr(st.msg, "stopped in epoch ") != NULL);
    CHECK(tr.part.active);
    printf("# stopped in epoch %d before batch %lld\n", tr.epoch,
           (long long)tr.part.next_batch);
    const char *path = path_in_tmp("stop.ckpt");
    CHECK_OK(amtl_trainer_save(&tr, &ds, path, "checkpoint", &st), &st);
    amtl_trainer_free(&tr);

    CHECK_OK(amtl_trainer_load(&re, path, &ds, &cfg, &st), &st);
    re.quiet = 1;
    CHECK(re.part.active);
    /* a part-done search epoch cannot go on as another phase */
    double x;
    CHECK(amtl_trainer_epoch(&re, &ds, AMTL_PHASE_WARMUP, 0, &x, &st) == -1);
    CHECKF(st.code == AMTL_EUSAGE && strstr(st.msg, "stopped part-way in the search phase"),
           "%s", st.msg);
    CHECK(re.part.active);
    while (re.epoch < epochs) {
        int e = re.epoch;
        CHECK_OK(amtl_trainer_epoch(&re, &ds, AMTL_PHASE_SEARCH, 2, &loss[e], &st), &st);
    }
    CHECK(!re.part.active);
    CHECK(same_trainer(&ref, &re));
    CHECKF(loss[epochs - 1] == ref_loss[epochs - 1], "%.17g vs %.17g", loss[epochs - 1],
           ref_loss[epochs - 1]);
    for (int i = 0; i < re.net.n_mops; i++)
        CHECK(re.net.mops[i].chosen == ref.net.mops[i].chosen);
    amtl_trainer_free(&re);
    amtl_trainer_free(&ref);
    amtl_config_free(&cfg);
    amtl_dataset_free(&ds);
}

static void test_stop_before_the_first_batch(void) { stop_and_resume(600, 32, 0, "train"); }
static void test_stop_mid_epoch_by_timer(void) { stop_and_resume(800, 4, 10000, "train"); }
/* the bi-level arch step draws validation batches: they must line up too */
static void test_stop_mid_epoch_bilevel(void) { stop_and_resume(800, 4, 10000, "val"); }

/* Re-encodes a saved checkpoint with one tensor replaced. */
static int with_tensor(const char *path, const char *name, amtl_dtype dt, int64_t n,
                       const void *data, amtl_file *out, amtl_status *st)
{
    amtl_file f;
    if (amtl_file_read(&f, path, NULL, st))
        return -1;
    amtl_file_init(out, f.kind);
    int rc = 0;
    for (int i = 0; i < f.n_meta && !rc; i++)
        rc = amtl_file_set_meta(out, f.meta[i].key, f.meta[i].value, st);
    for (int i = 0; i < f.n_tensors && !rc; i++) {
        const amtl_named_tensor *t = &f.tensors[i];
        if (!strcmp(t->name, name))
            continue;
        rc = amtl_file_add(out, t->name, t->t.dtype, t->t.ndim, t->t.shape, t->t.data, st)
                 ? 0 : -1;
    }
    int64_t shape[1] = {n};
    if (!rc && !amtl_file_add(out, name, dt, 1, shape, data, st))
        rc = -1;
    amtl_file_free(&f);
    return rc;
}

static void test_corrupt_progress_is_refused(void)
{
    amtl_status st = {0};
    amtl_dataset ds;
    amtl_config cfg;
    amtl_trainer tr;
    CHECK_OK(make_dataset(&ds, 400, &st), &st);
    CHECK_OK(small_config(&cfg, 64, &st), &st);
    CHECK_OK(amtl_trainer_init(&tr, &cfg, &ds, &st), &st);
    const char *path = path_in_tmp("prog.ckpt");
    CHECK_OK(amtl_trainer_save(&tr, &ds, path, "checkpoint", &st), &st);
    amtl_trainer_free(&tr);

    struct {
        const char *name;
        amtl_dtype dt;
        int64_t n;
        int64_t v[9];
        const char *msg;
    } cases[] = {
        {"rng.state", AMTL_I64, 4, {0, 0, 0, 0}, "rng.state is all zero"},
        {"train.epoch", AMTL_I32, 1, {0}, NULL}, /* filled below: a negative epoch */
        {"train.partial", AMTL_I64, 9, {1, 99, 0, 64, 320, 1, 2, 3, 4},
         "train.partial does not describe a part-done epoch"},
        {"train.partial", AMTL_I64, 9, {7, 0, 0, 64, 320, 1, 2, 3, 4},
         "train.partial does not describe a part-done epoch"},
        {"train.partial", AMTL_I64, 9, {1, 1, 0, 64, 320, 0, 0, 0, 0},
         "train.partial does not describe a part-done epoch"},
        {"optim.weights.step", AMTL_I64, 1, {-5}, "is not a step count"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        amtl_file f;
        int32_t neg = -3;
        const void *data = cases[i].v;
        const char *want = cases[i].msg;
        if (!strcmp(cases[i].name, "train.epoch")) {
            data = &neg;
            want = "train.epoch = -3 is not an epoch count";
        }
        CHECK_OK(with_tensor(path, cases[i].name, cases[i].dt, cases[i].n, data, &f, &st), &st);
        if (!strcmp(cases[i].name, "train.partial")) {
            double sum = 0;
            int64_t one[1] = {1};
            CHECK(amtl_file_add(&f, "train.partial_loss", AMTL_F64, 1, one, &sum, &st));
        }
        int rc = amtl_trainer_load_file(&tr, &f, "x.ckpt", &ds, &cfg, &st);
        amtl_file_free(&f);
        if (rc == 0)
            amtl_trainer_free(&tr);
        CHECKF(rc == -1 && st.code == AMTL_EDATA && strstr(st.msg, want),
               "case %zu: rc %d: %s", i, rc, st.msg);
    }
    amtl_config_free(&cfg);
    amtl_dataset_free(&ds);
}

int main(void)
{
    RUN(test_non_finite_weights_are_not_saved);
    RUN(test_stop_before_the_first_batch);
    RUN(test_stop_mid_epoch_by_timer);
    RUN(test_stop_mid_epoch_bilevel);
    RUN(test_corrupt_progress_is_refused);
    TEST_MAIN_END();
}
