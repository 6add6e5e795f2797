/* test_linear_fit.c — the linear floor: its objective against a plain
 * per-row version and its gradient against finite differences, L-BFGS
 * reaching the optimum, the choice of the L2 strength on validation, the
 * fitted weights written into the linear baseline's network reproducing the
 * regression's logits, and amtl-train's body honouring task conditions and
 * zero task weights. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/arch.h"
#include "format/config.h"
#include "data/dataset.h"
#include "train/linear_fit.h"
#include "base/pool.h"
#include "base/rng.h"
#include "model/supernet.h"
#include "test.h"
#include "train/train.h"

enum { LN = 3, LD = 2, LT = 3 };

static char *fnames[LN] = {"user", "item", "cat"};
static char *dnames[LD] = {"d0", "d1"};
static char *lnames[LT] = {"click", "buy", "like"};
static int32_t vocab[LN] = {9, 6, 4};

/* Labels from a hidden logistic model: click and like follow the ids and d0
 * with large weights (nearly separable), buy comes only with a click (the
 * condition of task_conditions [buy=click]).  Every split holds both
 * classes of every label. */
static int make_dataset(amtl_dataset *ds, const int64_t *rows, uint64_t seed)
{
    memset(ds, 0, sizeof *ds);
    ds->N = LN;
    ds->D = LD;
    ds->T = LT;
    ds->sparse_names = fnames;
    ds->dense_names = dnames;
    ds->label_names = lnames;
    ds->vocab = vocab;
    amtl_rng r;
    amtl_rng_seed(&r, seed);
    double hw[LT][9 + 6 + 4];
    for (int t = 0; t < LT; t++)
        for (int k = 0; k < 9 + 6 + 4; k++)
            hw[t][k] = amtl_rng_normal(&r, 0, 2.0);
    for (int s = 0; s < AMTL_N_SPLITS; s++) {
        amtl_split *sp = &ds->split[s];
        int64_t n = rows[s];
        amtl_status st;
        if (amtl_split_init(sp, LN, LD, LT, n, 1, &st))
            return -1;
        for (int64_t i = 0; i < n; i++) {
            double z[LT] = {0};
            int o = 0;
            for (int f = 0; f < LN; f++) {
                int32_t id = (int32_t)amtl_rng_below(&r, (uint64_t)vocab[f]);
                sp->sparse[f][i] = id;
                for (int t = 0; t < LT; t++)
                    z[t] += hw[t][o + id];
                o += vocab[f];
            }
            for (int d = 0; d < LD; d++)
                sp->dense[d][i] = amtl_rng_uniform_range(&r, -1, 1);
            int lab[LT];
            for (int t = 0; t < LT; t++) {
                z[t] += 1.5 * sp->dense[0][i] - 0.5 * sp->dense[1][i];
                lab[t] = amtl_rng_uniform_double(&r) < 1 / (1 + exp(-z[t]));
            }
            lab[1] = lab[0] && lab[1];
            if (i < 4) {  /* both classes, whatever the draws */
                lab[0] = i != 1;
                lab[1] = i == 0;
                lab[2] = i == 2 || i == 3;
            }
            for (int t = 0; t < LT; t++)
                sp->labels[t][i] = (float)lab[t];
        }
    }
    amtl_file_init(&ds->file, "dataset");
    return 0;
}

static void free_dataset(amtl_dataset *ds)
{
    for (int s = 0; s < AMTL_N_SPLITS; s++)
        amtl_split_free(&ds->split[s]);
    amtl_file_free(&ds->file);
}

/* f(x) row by row, the obviously-correct version. */
static double ref_objective(const amtl_lr_data *d, const double *x, double lambda)
{
    int64_t P = d->off[d->N];
    double loss = 0, pen = 0;
    for (int64_t i = 0; i < d->rows; i++) {
        if (d->mask && d->mask[i] == 0.0f)
            continue;
        double z = x[P + d->D];
        for (int f = 0; f < d->N; f++)
            z += x[d->off[f] + d->ids[f][i]];
        for (int k = 0; k < d->D; k++)
            z += x[P + k] * d->dense[k][i];
        loss += log(1 + exp(z)) - d->y[i] * z;
    }
    for (int64_t k = 0; k < P + d->D; k++)
        pen += x[k] * x[k];
    return loss / (double)d->counted + 0.5 * lambda * pen;
}

static void random_x(double *x, int64_t n, amtl_rng *r, double scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = amtl_rng_normal(r, 0, scale);
}

static const int64_t small_rows[AMTL_N_SPLITS] = {60, 30, 30};

static void test_objective_and_gradient(void)
{
    amtl_dataset ds;
    CHECK(make_dataset(&ds, small_rows, 1) == 0);
    int64_t off[LN + 1];
    amtl_lr_offsets(&ds, off);
    CHECK(off[LN] == 9 + 6 + 4);
    amtl_rng r;
    amtl_rng_seed(&r, 2);
    for (int cond = -1; cond <= 0; cond++) {  /* every row, then buy's rows under click */
        amtl_lr_data d;
        amtl_lr_data_split(&d, &ds, AMTL_SPLIT_TRAIN, cond < 0 ? 0 : 1, cond, off);
        int64_t nv = amtl_lr_nvars(&d);
        CHECK(nv == off[LN] + LD + 1);
        CHECK(cond < 0 ? d.counted == 60 : d.counted > 4 && d.counted < 60);
        double *x = malloc(nv * sizeof *x), *g = malloc(nv * sizeof *g);
        double *scr = malloc(amtl_lr_scratch_len(&d) * sizeof *scr);
        CHECK(x && g && scr);
        random_x(x, nv, &r, 0.7);
        for (int64_t i = 0; i < nv; i++)
            g[i] = NAN;  /* poisoned: every element must be written */
        double lambda = 0.03;
        double f = amtl_lr_objective(&d, x, lambda, g, scr);
        CHECK_CLOSE(f, ref_objective(&d, x, lambda), 1e-12);
        CHECK_CLOSE(amtl_lr_objective(&d, x, lambda, NULL, scr), f, 0);
        /* central differences of the reference: the objective is smooth,
         * its third derivative small, so h = 1e-5 leaves ~1e-10 of error */
        int bad = 0;
        for (int64_t i = 0; i < nv; i++) {
            double x0 = x[i], h = 1e-5;
            x[i] = x0 + h;
            double fp = ref_objective(&d, x, lambda);
            x[i] = x0 - h;
            double fm = ref_objective(&d, x, lambda);
            x[i] = x0;
            double fd = (fp - fm) / (2 * h);
            if (!(fabs(fd - g[i]) <= 1e-8 * fmax(1, fabs(fd)))) {
                printf("# cond %d: d/dx[%lld]: gradient %.12g, fd %.12g\n", cond,
                       (long long)i, g[i], fd);
                bad++;
            }
        }
        free(x);
        free(g);
        free(scr);
        CHECK(bad == 0);
    }
    free_dataset(&ds);
}

/* The same objective value, bit for bit, whatever the thread count. */
static void test_threads_same_value(void)
{
    static const int64_t rows[AMTL_N_SPLITS] = {20000, 10, 10};
    amtl_dataset ds;
    CHECK(make_dataset(&ds, rows, 3) == 0);
    int64_t off[LN + 1];
    amtl_lr_offsets(&ds, off);
    amtl_lr_data d;
    amtl_lr_data_split(&d, &ds, AMTL_SPLIT_TRAIN, 0, -1, off);
    int64_t nv = amtl_lr_nvars(&d);
    double x[64], g1[64], g2[64];
    amtl_rng r;
    amtl_rng_seed(&r, 4);
    random_x(x, nv, &r, 0.5);
    double *scr = malloc(amtl_lr_scratch_len(&d) * sizeof *scr);
    CHECK(scr);
    double f1 = amtl_lr_objective(&d, x, 0.01, g1, scr);
    d.pool = amtl_pool_new(3);
    CHECK(amtl_pool_size(d.pool) == 3);
    double f2 = amtl_lr_objective(&d, x, 0.01, g2, scr);
    amtl_pool_free(d.pool);
    free(scr);
    free_dataset(&ds);
    CHECK(f1 == f2);
    CHECK(!memcmp(g1, g2, (size_t)nv * sizeof *g1));
}

static double norm2(const double *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

static const int64_t mid_rows[AMTL_N_SPLITS] = {3000, 1500, 1500};

static void test_fit_reaches_optimum(void)
{
    amtl_dataset ds;
    amtl_status st = {0};
    CHECK(make_dataset(&ds, mid_rows, 5) == 0);
    int64_t off[LN + 1];
    amtl_lr_offsets(&ds, off);
    amtl_lr_data d;
    amtl_lr_data_split(&d, &ds, AMTL_SPLIT_TRAIN, 0, -1, off);
    int64_t nv = amtl_lr_nvars(&d);
    double x[64] = {0}, g[64];
    double *scr = malloc(amtl_lr_scratch_len(&d) * sizeof *scr);
    CHECK(scr);
    const double lams[] = {1e-2, 1e-4, 1e-6};
    for (int k = 0; k < 3; k++) {
        amtl_lr_fit_info info;
        memset(x, 0, sizeof x);
        CHECK_OK(amtl_lr_fit(&d, lams[k], x, &info, NULL, &st), &st);
        double f = amtl_lr_objective(&d, x, lams[k], g, scr);
        double gn = norm2(g, nv);
        printf("# lambda %g: %d iterations, %d evaluations, %s, f %.12f, |g| %.3g, |x| %.3g\n",
               lams[k], info.iterations, info.evaluations, amtl_lr_status_str(info.status), f,
               gn, norm2(x, nv));
        CHECK(info.converged);
        CHECK(info.objective == f && info.gnorm == gn);
        CHECK_CLOSE(info.loss, f - 0.5 * lams[k] * (norm2(x, nv - 1) * norm2(x, nv - 1)), 1e-12);
        /* the optimum: the gradient vanishes to far below its size at the
         * start (|g| ~ 0.3), so no direction lowers f by more than rounding */
        CHECKF(gn < 1e-6, "|g| = %g", gn);
        for (int64_t i = 0; i < nv; i++) {
            double x0 = x[i];
            x[i] = x0 + 1e-3;
            double fp = amtl_lr_objective(&d, x, lams[k], NULL, scr);
            x[i] = x0 - 1e-3;
            double fm = amtl_lr_objective(&d, x, lams[k], NULL, scr);
            x[i] = x0;
            CHECK(fp > f - 1e-12 && fm > f - 1e-12);
        }
    }
    free(scr);
    free_dataset(&ds);
}

static void test_lambda_choice(void)
{
    amtl_dataset ds;
    amtl_status st = {0};
    CHECK(make_dataset(&ds, mid_rows, 7) == 0);
    int64_t off[LN + 1];
    amtl_lr_offsets(&ds, off);
    amtl_lr_data trn, val;
    amtl_lr_data_split(&trn, &ds, AMTL_SPLIT_TRAIN, 2, -1, off);
    amtl_lr_data_split(&val, &ds, AMTL_SPLIT_VAL, 2, -1, off);
    int64_t nv = amtl_lr_nvars(&trn);
    /* any order: tried from the largest down */
    const double grid[] = {1e-3, 3, 1e-5, 1e-1, 1e-7, 1e-2, 1};
    int n = 7;
    amtl_lr_try tries[7];
    int n_tried, best;
    double x[64], xc[64];
    CHECK_OK(amtl_lr_path(&trn, &val, grid, n, x, tries, &n_tried, &best, NULL, &st), &st);
    CHECK(n_tried >= 1 && n_tried <= n && best >= 0 && best < n_tried);
    for (int k = 0; k < n_tried; k++) {
        printf("# lambda %g: val AUC %.6f, %d iterations\n", tries[k].lambda, tries[k].val_auc,
               tries[k].fit.iterations);
        CHECK(k == 0 || tries[k].lambda < tries[k - 1].lambda);
        CHECK(tries[k].val_auc <= tries[best].val_auc);
        CHECK(k >= best || tries[k].val_auc < tries[best].val_auc);  /* ties: the larger */
    }
    /* the path stops after two strengths in a row below the best */
    CHECK(n_tried == n || (n_tried == best + 3));
    CHECK(best > 0);  /* 3 is far too strong for these weights */
    /* the solution returned is the best strength's: refitted from zero it
     * predicts the same.  (Not the same weights to many digits: each
     * field's one-hot columns sum to the intercept's, so adding c to a
     * field's ids and taking it from the intercept is a direction only λ
     * curves, as flat as the gradient test is loose at λ = 1e-7.) */
    amtl_lr_fit_info info;
    memset(xc, 0, sizeof xc);
    CHECK_OK(amtl_lr_fit(&trn, tries[best].lambda, xc, &info, NULL, &st), &st);
    double *z = malloc(val.rows * sizeof *z), *zc = malloc(val.rows * sizeof *zc), dmax = 0;
    CHECK(z && zc);
    amtl_lr_logits(&val, x, z);
    amtl_lr_logits(&val, xc, zc);
    for (int64_t i = 0; i < val.rows; i++)
        dmax = fmax(dmax, fabs(z[i] - zc[i]));
    free(z);
    free(zc);
    printf("# best lambda %g: val logits of the path and of a cold fit differ by %.3g\n",
           tries[best].lambda, dmax);
    CHECK(dmax < 1e-3);

    /* labels of one class in the counted train rows: the intercept alone */
    amtl_lr_data one = trn;
    float *mask = calloc((size_t)trn.rows, sizeof *mask);
    CHECK(mask);
    int64_t c = 0;
    for (int64_t i = 0; i < trn.rows; i++)
        if (trn.y[i] == 1.0f) {
            mask[i] = 1;
            c++;
        }
    one.mask = mask;
    one.counted = c;
    CHECK_OK(amtl_lr_path(&one, &val, grid, n, x, tries, &n_tried, &best, NULL, &st), &st);
    free(mask);
    CHECK(n_tried == 0);
    for (int64_t i = 0; i < nv - 1; i++)
        CHECK(x[i] == 0);
    CHECK_CLOSE(x[nv - 1], log((c + 0.5) / 0.5), 1e-12);
    free_dataset(&ds);
}

/* The linear baseline's trainer for ds, with extra config keys. */
static int linear_trainer(amtl_trainer *tr, amtl_file *arch, const amtl_dataset *ds,
                          const char *const (*kv)[2], int nkv, amtl_status *st)
{
    amtl_config base = {0}, cfg = {0};
    int rc = -1;
    memset(arch, 0, sizeof *arch);
    if (amtl_config_defaults(&base, st) || amtl_config_set(&base, "batch_size", "64", st) ||
        amtl_config_set(&base, "threads", "1", st) ||
        amtl_arch_baseline(arch, "linear", NULL, ds, &base, st))
        goto out;
    if (amtl_config_defaults(&cfg, st) || amtl_config_set(&cfg, "batch_size", "64", st) ||
        amtl_arch_config(arch, &cfg, "linear.arch", st))
        goto out;
    for (int k = 0; k < nkv; k++)
        if (amtl_config_set(&cfg, kv[k][0], kv[k][1], st))
            goto out;
    if (amtl_config_validate(&cfg, st) || amtl_trainer_init(tr, &cfg, ds, st))
        goto out;
    if (amtl_arch_apply(&tr->net, arch, "linear.arch", st)) {
        amtl_trainer_free(tr);
        goto out;
    }
    amtl_trainer_sync_liveness(tr);
    rc = 0;
out:
    amtl_config_free(&base);
    amtl_config_free(&cfg);
    return rc;
}

static void test_model_logits(void)
{
    amtl_dataset ds;
    amtl_status st = {0};
    amtl_trainer tr;
    amtl_file arch;
    CHECK(make_dataset(&ds, small_rows, 9) == 0);
    CHECK_OK(linear_trainer(&tr, &arch, &ds, NULL, 0, &st), &st);
    CHECK(amtl_linear_is_baseline(&arch));
    CHECK_OK(amtl_linear_check_net(&tr.net, &st), &st);
    int64_t off[LN + 1];
    amtl_lr_offsets(&ds, off);
    amtl_lr_data d;
    amtl_lr_data_split(&d, &ds, AMTL_SPLIT_TEST, 0, -1, off);
    int64_t nv = amtl_lr_nvars(&d), n = d.rows;
    double x[LT][64];
    amtl_rng r;
    amtl_rng_seed(&r, 10);
    amtl_linear_clear(&tr.net);
    /* the expert gate is a softmax over one expert: exactly 1 whatever its
     * weights, so random ones must not move a logit */
    amtl_supernet *net = &tr.net;
    for (int c = 0; c < net->n_consumers; c++)
        for (int k = 0; k < net->K * net->input_dim; k++)
            net->w[net->me_gate[c] + k] = (float)amtl_rng_normal(&r, 0, 1);
    for (int t = 0; t < LT; t++) {
        random_x(x[t], nv, &r, 1.0);
        amtl_linear_write(net, t, x[t]);
        for (int64_t i = 0; i < nv; i++)  /* what the model holds */
            x[t][i] = (float)x[t][i];
    }
    float *lg;
    CHECK_OK(amtl_trainer_predict(&tr, &ds, AMTL_SPLIT_TEST, &lg, &st), &st);
    double *z = malloc(n * sizeof *z);
    CHECK(z);
    int bad = 0;
    for (int t = 0; t < LT; t++) {
        amtl_lr_logits(&d, x[t], z);
        for (int64_t i = 0; i < n; i++) {
            /* a float sum of N + D + 1 terms against the double one */
            double scale = fabs(x[t][nv - 1]);
            for (int f = 0; f < LN; f++)
                scale += fabs(x[t][off[f] + d.ids[f][i]]);
            for (int k = 0; k < LD; k++)
                scale += fabs(x[t][off[LN] + k] * d.dense[k][i]);
            double tol = (LN + LD + 2) * FLT_EPSILON * scale;
            if (!(fabs(lg[t * n + i] - z[i]) <= tol) && bad++ < 5)
                printf("# task %d row %lld: model %.9g, regression %.9g\n", t, (long long)i,
                       lg[t * n + i], z[i]);
        }
    }
    free(z);
    amtl_free(lg);
    amtl_trainer_free(&tr);
    amtl_file_free(&arch);
    free_dataset(&ds);
    CHECK(bad == 0);
}

/* amtl-train's body: the conditioned task fitted on its condition's rows,
 * the task of weight 0 left at zero, one metrics line. */
static void test_train_tasks(void)
{
    amtl_dataset ds;
    amtl_status st = {0};
    amtl_trainer tr;
    amtl_file arch;
    CHECK(make_dataset(&ds, mid_rows, 11) == 0);
    const char *const kv[][2] = {{"task_conditions", "[buy=click]"},
                                 {"task_weights", "[1, 1, 0]"},
                                 {"linear_l2", "[1e-2, 1e-4, 1e-6]"}};
    CHECK_OK(linear_trainer(&tr, &arch, &ds, kv, 3, &st), &st);
    tr.quiet = 1;
    FILE *mf = tmpfile();
    CHECK(mf);
    CHECK_OK(amtl_linear_train(&tr, &ds, mf, &st), &st);
    char line[4096] = "";
    rewind(mf);
    CHECK(fgets(line, sizeof line, mf));
    CHECK(fgetc(mf) == EOF);
    fclose(mf);
    CHECKF(strstr(line, "\"epoch\":0,\"phase\":\"linear\"") && strstr(line, "\"val_auc.like\":null"),
           "%s", line);

    /* buy: the path on the rows where click is 1 gives the same weights */
    int64_t off[LN + 1];
    amtl_lr_offsets(&ds, off);
    amtl_lr_data trn, val;
    amtl_lr_data_split(&trn, &ds, AMTL_SPLIT_TRAIN, 1, 0, off);
    amtl_lr_data_split(&val, &ds, AMTL_SPLIT_VAL, 1, 0, off);
    const double grid[] = {(double)1e-2f, (double)1e-4f, (double)1e-6f};  /* the config holds floats */
    amtl_lr_try tries[3];
    int n_tried, best;
    double x[64];
    CHECK_OK(amtl_lr_path(&trn, &val, grid, 3, x, tries, &n_tried, &best, NULL, &st), &st);
    CHECK(n_tried > 0 && trn.counted < trn.rows);
    const amtl_supernet *net = &tr.net;
    int T = net->T, H = net->H;
    for (int f = 0; f < LN; f++)
        for (int id = 0; id < vocab[f]; id++) {
            CHECK(net->w[net->emb[f] + id * T + 1] == (float)x[off[f] + id]);
            CHECK(net->w[net->emb[f] + id * T + 2] == 0.0f);
        }
    const float *W1 = net->w + net->tower[1].w, *W2 = net->w + net->tower[2].w;
    for (int d = 0; d < LD; d++)
        CHECK(W1[LN * T + T + d] == (float)x[off[LN] + d]);
    CHECK(net->w[net->tower[1].b] == (float)x[off[LN] + LD]);
    for (int k = 0; k < H; k++)
        CHECK(W2[k] == 0.0f);
    CHECK(net->w[net->tower[2].b] == 0.0f);
    CHECK(tr.n_hist == 1 && tr.epoch == 1);
    amtl_trainer_free(&tr);
    amtl_file_free(&arch);
    free_dataset(&ds);
}

/* A quiet trainer of the built-in defaults with the n settings kv. */
static void settings_trainer(amtl_trainer *tr, amtl_config *cfg, const amtl_dataset *ds,
                             const char *const (*kv)[2], size_t n)
{
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(cfg, &st), &st);
    for (size_t k = 0; k < n; k++)
        CHECK_OK(amtl_config_set(cfg, kv[k][0], kv[k][1], &st), &st);
    CHECK_OK(amtl_trainer_init(tr, cfg, ds, &st), &st);
    tr->quiet = 1;
}

/* wide_init: linear: a deep network's wide part starts at each task's fitted
 * regression (the weights amtl_lr_path finds), the intercept in the task's
 * last tower bias; wide_init zero leaves the tables at zero. */
static void test_wide_init(void)
{
    amtl_dataset ds;
    amtl_status st = {0};
    CHECK(make_dataset(&ds, mid_rows, 12) == 0);
    for (int zero = 0; zero < 2; zero++) {
        amtl_config cfg = {0};
        amtl_trainer tr;
        const char *const kv[][2] = {{"batch_size", "64"}, {"threads", "1"}, {"n_experts", "2"},
                                     {"expert_width", "8"}, {"tower_layers", "[4]"},
                                     {"ops", "[MLP-8]"}, {"wide", "true"},
                                     {"wide_init", zero ? "zero" : "linear"},
                                     {"wide_train", zero ? "joint" : "frozen"},
                                     {"linear_l2", "[1e-2, 1e-4]"}};
        settings_trainer(&tr, &cfg, &ds, kv, sizeof kv / sizeof kv[0]);
        const amtl_supernet *net = &tr.net;
        const amtl_tower_layer *last = &net->tower[2 * (net->n_tower + 1) + net->n_tower];
        float bias0 = net->w[last->b];
        CHECK_OK(amtl_wide_fit(&tr, &ds, &st), &st);
        int64_t off[LN + 1];
        amtl_lr_offsets(&ds, off);
        amtl_lr_data trn, val;
        amtl_lr_data_split(&trn, &ds, AMTL_SPLIT_TRAIN, 2, -1, off);
        amtl_lr_data_split(&val, &ds, AMTL_SPLIT_VAL, 2, -1, off);
        const double grid[] = {(double)1e-2f, (double)1e-4f};
        amtl_lr_try tries[2];
        int n_tried, best, bad = 0;
        double x[64];
        CHECK_OK(amtl_lr_path(&trn, &val, grid, 2, x, tries, &n_tried, &best, NULL, &st), &st);
        int T = net->T;
        for (int f = 0; f < LN; f++)
            for (int id = 0; id < vocab[f]; id++)
                bad += net->w[net->wide_emb[f] + id * T + 2] != (zero ? 0.0f : (float)x[off[f] + id]);
        for (int d = 0; d < LD; d++)
            bad += net->w[net->wide_dense + 2 * LD + d] != (zero ? 0.0f : (float)x[off[LN] + d]);
        bad += net->w[last->b] != (zero ? bias0 : (float)x[off[LN] + LD]);
        CHECKF(bad == 0, "wide_init %s: %d weights differ", zero ? "zero" : "linear", bad);
        amtl_trainer_free(&tr);
        amtl_config_free(&cfg);
    }
    free_dataset(&ds);
}

/* wide_train: frozen keeps every weight of the wide part at its start (the
 * fitted regression) through training epochs, with and without clipping and
 * lazy rows, while the deep part trains; joint trains both.  A frozen wide
 * part started at zero is refused, and so is an unknown value. */
static void test_wide_frozen(void)
{
    amtl_dataset ds;
    amtl_status st = {0};
    CHECK(make_dataset(&ds, mid_rows, 12) == 0);
    for (int mode = 0; mode < 4; mode++) {
        int frozen = mode > 0;
        amtl_config cfg = {0};
        amtl_trainer tr;
        const char *const kv[][2] = {{"batch_size", "64"}, {"threads", "1"}, {"n_experts", "2"},
                                     {"expert_width", "8"}, {"tower_layers", "[4, 3]"},
                                     {"ops", "[MLP-8, Identity]"}, {"wide", "true"},
                                     {"linear_l2", "[1e-2, 1e-4]"},
                                     {"wide_train", frozen ? "frozen" : "joint"},
                                     {"clip_grad_norm", mode == 2 ? "0.05" : "0"},
                                     {"sparse_embedding", mode == 3 ? "true" : "false"}};
        settings_trainer(&tr, &cfg, &ds, kv, sizeof kv / sizeof kv[0]);
        const amtl_supernet *net = &tr.net;
        CHECK_OK(amtl_wide_fit(&tr, &ds, &st), &st);
        size_t nw = net->n_w, w0 = net->wide_start;
        CHECK(w0 > 0 && w0 < nw && net->wide_emb[0] == w0);
        CHECK(amtl_trainer_trained_weights(&tr) == (frozen ? w0 : nw));
        float *start = malloc(nw * sizeof *start);
        CHECK(start != NULL);
        memcpy(start, net->w, nw * sizeof *start);
        double loss;
        for (int e = 0; e < 2; e++)
            CHECK_OK(amtl_trainer_epoch(&tr, &ds, AMTL_PHASE_FINETUNE, 0, &loss, &st), &st);
        CHECK(isfinite(loss));
        size_t moved_deep = 0, moved_wide = 0;
        for (size_t i = 0; i < nw; i++) {
            if (memcmp(&net->w[i], &start[i], sizeof(float)) == 0)
                continue;
            if (i < w0)
                moved_deep++;
            else
                moved_wide++;
        }
        CHECKF(moved_deep > w0 / 2, "mode %d: %zu of %zu deep weights moved", mode,
               moved_deep, w0);
        CHECKF(frozen ? moved_wide == 0 : moved_wide > (nw - w0) / 2,
               "mode %d: %zu of %zu wide weights moved", mode, moved_wide, nw - w0);
        if (mode == 2) {
            /* the last step's gradient (the CPU backend's is net->g): the
             * trained weights' part clipped to norm 0.05 exactly, the frozen
             * tail's left out of the norm and unclipped */
            double ss = 0, sw = 0;
            for (size_t i = 0; i < nw; i++)
                *(i < w0 ? &ss : &sw) += (double)net->g[i] * net->g[i];
            CHECKF(fabs(sqrt(ss) - 0.05) < 1e-4 && sw > 0, "deep norm %g, wide norm %g",
                   sqrt(ss), sqrt(sw));
        }
        free(start);
        amtl_trainer_free(&tr);
        amtl_config_free(&cfg);
    }
    free_dataset(&ds);

    amtl_config cfg = {0};
    CHECK_OK(amtl_config_defaults(&cfg, &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "wide_train", "frozen", &st), &st);
    CHECK_OK(amtl_config_validate(&cfg, &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "wide_init", "zero", &st), &st);
    CHECK(amtl_config_validate(&cfg, &st) == -1 && strstr(st.msg, "wide_train") &&
          strstr(st.msg, "wide_init zero"));
    CHECK_OK(amtl_config_set(&cfg, "wide", "false", &st), &st);
    CHECK_OK(amtl_config_validate(&cfg, &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "wide_train", "thawed", &st), &st);
    CHECK(amtl_config_validate(&cfg, &st) == -1 && strstr(st.msg, "wide_train"));
    amtl_config_free(&cfg);
}

int main(void)
{
    RUN(test_objective_and_gradient);
    RUN(test_threads_same_value);
    RUN(test_fit_reaches_optimum);
    RUN(test_lambda_choice);
    RUN(test_model_logits);
    RUN(test_train_tasks);
    RUN(test_wide_init);
    RUN(test_wide_frozen);
    TEST_MAIN_END();
}
