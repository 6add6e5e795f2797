/* synthetic.c — the embedded synthetic data sets with a known hidden structure
 * (amtl-prep --synthetic; amtl-prep(1), SYNTHETIC DATA): kind "latent" (the
 * default, below) and kind "zipf" (per-id effects over long-tailed ids, at
 * the end of the file).
 *
 * Kind latent.  Rows are user-item interactions with Zipf-like popularity.  Labels come
 * from a hidden logistic model over per-field latent vectors and biases:
 *   group A (tasks 0, 1, 4, 5): <U_user, I_item> + category bias + dense_0,
 *                               plus a task-specific mix of user/item bias;
 *   group B (tasks 2, 3, 6, 7): <C_city, V_device> + dense_1,
 *                               plus a task-specific mix of city/device bias.
 * The two groups share no field and no factor, so their tasks are unrelated;
 * noise_1..3 and dense_2 feed no task.  The dot products are second-order
 * interactions that a linear model cannot express; item vectors lean on
 * their category's and user vectors on a hidden segment's, so the
 * interaction can be learnt from a few rows per user.  Each task's signal is
 * standardised, scaled, and its intercept found by bisection so that the
 * expected positive rate equals the target.
 *
 * Everything is drawn from forks of one seeded generator in a fixed order,
 * so a seed gives the same bytes.
 */
#include "data/synthetic.h"
#include "data/synthetic_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

/* Sizes chosen so that at the default 100000 rows a second-order model
 * (a factorisation machine) beats a logistic regression on every task by a
 * few AUC points, and neither comes near the true logits' AUC. */
#define LATENT 4        /* dimension of the hidden vectors */
#define SEGMENTS 64     /* hidden user segments */
#define OWN_SHARE 0.3   /* weight of a user's / item's own vector part */

enum { F_USER, F_ITEM, F_CATEGORY, F_CITY, F_DEVICE, F_NOISE1, F_NOISE2, F_NOISE3,
       N_SPARSE };
enum { N_DENSE = 3 };

static const char *const sparse_names[N_SPARSE] = {
    "user_id", "item_id", "category", "city", "device", "noise_1", "noise_2", "noise_3"};
static const char *const dense_names[N_DENSE] = {"dense_0", "dense_1", "dense_2"};

/* cardinality and Zipf exponent (0 = uniform) of each sparse field */
static const struct {
    int n;
    double s;
} card[N_SPARSE] = {
    [F_USER] = {40000, 1.2}, [F_ITEM] = {10000, 1.1}, [F_CATEGORY] = {200, 1.0},
    [F_CITY] = {50, 0.8},    [F_DEVICE] = {10, 1.0},  [F_NOISE1] = {1000, 1.0},
    [F_NOISE2] = {30, 0.0},  [F_NOISE3] = {5000, 0.0},
};

static const double target_rate[AMTL_SYNTH_MAX_TASKS] = {0.60, 0.10, 0.05, 0.05,
                                                          0.30, 0.20, 0.10, 0.02};
/* logit = intercept + SCALE * standardised signal; sets how learnable a task is */
#define SCALE 2.0

static int is_group_a(int task) { return task % 4 < 2; }

/* cumulative Zipf-like weights 1/(rank+1)^s, normalised */
double *amtl_synth_zipf_cdf(int n, double s)
{
    double *c = malloc(sizeof *c * (size_t)n);
    if (!c)
        return NULL;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        sum += s > 0 ? pow((double)(i + 1), -s) : 1.0;
        c[i] = sum;
    }
    for (int i = 0; i < n; i++)
        c[i] /= sum;
    return c;
}

int amtl_synth_draw(amtl_rng *r, const double *cdf, int n)
{
    double u = amtl_rng_uniform_double(r);
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double dot(const float *a, const float *b)
{
    double s = 0;
    for (int j = 0; j < LATENT; j++)
        s += (double)a[j] * b[j];
    return s / sqrt((double)LATENT);
}

/* Intercept b with mean(sigmoid(b + z_i)) = rate, by bisection. */
static double calibrate(const double *z, int64_t n, double rate)
{
    double lo = -40, hi = 40;
    for (int it = 0; it < 100; it++) {
        double mid = 0.5 * (lo + hi), m = 0;
        for (int64_t i = 0; i < n; i++)
            m += sigmoid(mid + z[i]);
        if (m / (double)n < rate)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const amtl_synth_scored *)a)->score, y = ((const amtl_synth_scored *)b)->score;
    return (x > y) - (x < y);
}

/* ROC AUC of scores against labels, ties at their average rank; -1 with a
 * single class. */
double amtl_synth_auc(amtl_synth_scored *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_scored);
    double pos = 0, rank_sum = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && v[j].score == v[i].score)
            j++;
        double avg = 0.5 * (double)(i + 1 + j); /* mean of ranks i+1 .. j */
        for (int64_t k = i; k < j; k++)
            if (v[k].y) {
                pos++;
                rank_sum += avg;
            }
        i = j;
    }
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0)
        return -1;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

/* Standardises each task's signal z[k][rows] and scales it by `scale`,
 * finds the intercept that gives rate[k], draws the labels into y[k][rows];
 * measured and oracle get each task's positive rate and the true logits'
 * AUC (sc NULL: no AUC, oracle -1). */
void amtl_synth_draw_labels(uint8_t *y, double *z, int64_t rows, int tasks, double scale,
                            const double *rate, amtl_rng *r, amtl_synth_scored *sc,
                            double *measured, double *oracle)
{
    for (int k = 0; k < tasks; k++) {
        double *zk = z + (size_t)k * (size_t)rows, mean = 0, var = 0;
        for (int64_t i = 0; i < rows; i++)
            mean += zk[i];
        mean /= (double)rows;
        for (int64_t i = 0; i < rows; i++)
            var += (zk[i] - mean) * (zk[i] - mean);
        double sd = sqrt(var / (double)rows);
        for (int64_t i = 0; i < rows; i++)
            zk[i] = scale * (sd > 0 ? (zk[i] - mean) / sd : 0.0);
        double b0 = calibrate(zk, rows, rate[k]);
        double pos = 0;
        for (int64_t i = 0; i < rows; i++) {
            int yi = amtl_rng_bernoulli(r, sigmoid(b0 + zk[i]));
            y[(size_t)k * (size_t)rows + (size_t)i] = (uint8_t)yi;
            pos += yi;
            if (sc) {
                sc[i].score = zk[i];
                sc[i].y = (uint8_t)yi;
            }
        }
        measured[k] = pos / (double)rows;
        oracle[k] = sc ? amtl_synth_auc(sc, rows) : -1;
    }
}

int amtl_synth_put_labels(amtl_prep_table *t, const uint8_t *y, int tasks, amtl_status *st)
{
    for (int k = 0; k < tasks; k++)
        if (amtl_prep_table_put_labels(t, k, y + (size_t)k * (size_t)t->rows, st))
            return -1;
    return 0;
}

/* The meta synthetic.positive_rates and synthetic.oracle_auc (buf: 4096). */
int amtl_synth_rates_meta(amtl_prep_table *t, int tasks, const double *target,
                          const double *measured, const double *oracle, char *buf,
                          amtl_status *st)
{
    size_t p = 0;
    for (int k = 0; k < tasks; k++)
        p += (size_t)snprintf(buf + p, 4096 - p, "%s %.4f %.4f\n", t->label_names[k],
                              target[k], measured[k]);
    buf[p - 1] = '\0';
    if (amtl_prep_table_set_meta(t, "synthetic.positive_rates", buf, st))
        return -1;
    p = 0;
    for (int k = 0; k < tasks; k++)
        p += oracle[k] < 0
                 ? (size_t)snprintf(buf + p, 4096 - p, "%s -\n", t->label_names[k])
                 : (size_t)snprintf(buf + p, 4096 - p, "%s %.4f\n", t->label_names[k],
                                    oracle[k]);
    buf[p - 1] = '\0';
    return amtl_prep_table_set_meta(t, "synthetic.oracle_auc", buf, st);
}

typedef struct {
    float *U, *I, *C, *V;          /* latent vectors [n, LATENT] */
    float *ubias, *ibias, *cbias;  /* user, item, category */
    float *citybias, *devbias;
    int32_t *cat_of_item;
    double mix[AMTL_SYNTH_MAX_TASKS][2];
} hidden;

static void hidden_free(hidden *h)
{
    free(h->U);
    free(h->I);
    free(h->C);
    free(h->V);
    free(h->ubias);
    free(h->ibias);
    free(h->cbias);
    free(h->citybias);
    free(h->devbias);
    free(h->cat_of_item);
}

static float *normals(amtl_rng *r, size_t n)
{
    float *v = malloc(sizeof *v * n);
    if (v)
        for (size_t i = 0; i < n; i++)
            v[i] = (float)amtl_rng_normal(r, 0.0, 1.0);
    return v;
}

static int hidden_init(hidden *h, amtl_rng *r, int tasks, amtl_status *st)
{
    memset(h, 0, sizeof *h);
    h->U = normals(r, (size_t)card[F_USER].n * LATENT);
    h->I = normals(r, (size_t)card[F_ITEM].n * LATENT);
    h->C = normals(r, (size_t)card[F_CITY].n * LATENT);
    h->V = normals(r, (size_t)card[F_DEVICE].n * LATENT);
    h->ubias = normals(r, (size_t)card[F_USER].n);
    h->ibias = normals(r, (size_t)card[F_ITEM].n);
    h->cbias = normals(r, (size_t)card[F_CATEGORY].n);
    h->citybias = normals(r, (size_t)card[F_CITY].n);
    h->devbias = normals(r, (size_t)card[F_DEVICE].n);
    h->cat_of_item = malloc(sizeof *h->cat_of_item * (size_t)card[F_ITEM].n);
    double *cdf = amtl_synth_zipf_cdf(card[F_CATEGORY].n, card[F_CATEGORY].s);
    if (!h->U || !h->I || !h->C || !h->V || !h->ubias || !h->ibias || !h->cbias ||
        !h->citybias || !h->devbias || !h->cat_of_item || !cdf) {
        free(cdf);
        hidden_free(h);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    for (int i = 0; i < card[F_ITEM].n; i++)
        h->cat_of_item[i] = amtl_synth_draw(r, cdf, card[F_CATEGORY].n);
    free(cdf);
    /* Items of a category, and users of a hidden segment, have similar
     * vectors: the user x item interaction has a low-rank structure that
     * models can learn from few rows per user, as in real data. */
    float *cat_vec = normals(r, (size_t)card[F_CATEGORY].n * LATENT);
    float *seg_vec = normals(r, (size_t)SEGMENTS * LATENT);
    if (!cat_vec || !seg_vec) {
        free(cat_vec);
        free(seg_vec);
        hidden_free(h);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    const double own = OWN_SHARE, common = sqrt(1.0 - OWN_SHARE * OWN_SHARE);
    for (int i = 0; i < card[F_ITEM].n; i++)
        for (int j = 0; j < LATENT; j++)
            h->I[(size_t)i * LATENT + j] =
                (float)(common * cat_vec[(size_t)h->cat_of_item[i] * LATENT + j] +
                        own * h->I[(size_t)i * LATENT + j]);
    for (int u = 0; u < card[F_USER].n; u++) {
        int seg = (int)amtl_rng_below(r, SEGMENTS);
        for (int j = 0; j < LATENT; j++)
            h->U[(size_t)u * LATENT + j] =
                (float)(common * seg_vec[(size_t)seg * LATENT + j] +
                        own * h->U[(size_t)u * LATENT + j]);
    }
    free(cat_vec);
    free(seg_vec);
    /* tasks 0-3 each lean on one bias; later tasks on a random mix */
    for (int t = 0; t < tasks; t++) {
        if (t < 4) {
            h->mix[t][0] = t % 2 == 0 ? 1.0 : 0.0;
            h->mix[t][1] = t % 2 == 0 ? 0.0 : 1.0;
        } else {
            h->mix[t][0] = amtl_rng_uniform_double(r);
            h->mix[t][1] = 1.0 - h->mix[t][0];
        }
    }
    return 0;
}

static int set_meta(amtl_prep_table *t, int tasks, const double *measured,
                    const double *oracle, amtl_status *st)
{
    char buf[4096];
    size_t p = 0;
    for (int k = 0; k < tasks; k++)
        p += (size_t)snprintf(buf + p, sizeof buf - p, "%s %s\n", t->label_names[k],
                              is_group_a(k) ? "user_id item_id category dense_0"
                                            : "city device dense_1");
    buf[p - 1] = '\0';
    if (amtl_prep_table_set_meta(t, "synthetic.task_fields", buf, st) ||
        amtl_prep_table_set_meta(t, "synthetic.noise_fields",
                                 "noise_1\nnoise_2\nnoise_3\ndense_2", st))
        return -1;
    p = 0;
    for (int g = 0; g < 2; g++) {
        size_t start = p;
        for (int k = 0; k < tasks; k++)
            if (is_group_a(k) == (g == 0))
                p += (size_t)snprintf(buf + p, sizeof buf - p, "%s%s",
                                      p > start ? " " : "", t->label_names[k]);
        if (p > start)
            p += (size_t)snprintf(buf + p, sizeof buf - p, "\n");
    }
    buf[p - 1] = '\0';
    if (amtl_prep_table_set_meta(t, "synthetic.related_tasks", buf, st))
        return -1;
    return amtl_synth_rates_meta(t, tasks, target_rate, measured, oracle, buf, st);
}

/* The table of a synthetic kind: rows and tasks checked, labels task0..;
 * and its generators. */
int amtl_synth_table(amtl_prep_table *t, int64_t rows, int tasks, int N,
                     const char *const *sparse, int D, const char *const *dense,
                     uint64_t seed, amtl_synth_rngs *r, amtl_status *st)
{
    memset(t, 0, sizeof *t);
    amtl_rng root;
    amtl_rng_seed(&root, seed);
    amtl_rng_fork(&r->hidden, &root, 1);
    amtl_rng_fork(&r->rows, &root, 2);
    amtl_rng_fork(&r->labels, &root, 3);
    if (rows < 1 || rows > INT32_MAX)
        return amtl_error(st, AMTL_EUSAGE, "--rows must be between 1 and %d", INT32_MAX);
    if (tasks < 1 || tasks > AMTL_SYNTH_MAX_TASKS)
        return amtl_error(st, AMTL_EUSAGE, "--tasks must be between 1 and %d",
                          AMTL_SYNTH_MAX_TASKS);
    char label_buf[AMTL_SYNTH_MAX_TASKS][16];
    const char *labels[AMTL_SYNTH_MAX_TASKS];
    for (int k = 0; k < tasks; k++) {
        snprintf(label_buf[k], sizeof label_buf[k], "task%d", k);
        labels[k] = label_buf[k];
    }
    return amtl_prep_table_init(t, N, sparse, D, dense, tasks, labels, st);
}

/* The table's source line: what made it, and how. */
int amtl_synth_source(amtl_prep_table *t, const char *what, int64_t rows, int tasks,
                      uint64_t seed, amtl_status *st)
{
    char src[96];
    snprintf(src, sizeof src, "%s rows=%lld tasks=%d seed=%llu", what, (long long)rows, tasks,
             (unsigned long long)seed);
    if (!(t->source = strdup(src)))
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    return 0;
}

/* One row of a synthetic kind: the ids v[N] as decimal tokens, dense[D]. */
int amtl_synth_row(amtl_prep_table *t, const int *v, int N, const float *dense, int D,
                   amtl_status *st)
{
    int64_t row = amtl_prep_table_add_row(t, AMTL_PREP_AUTO, st);
    if (row < 0)
        return -1;
    for (int f = 0; f < N; f++) {
        char tok[16];
        int len = snprintf(tok, sizeof tok, "%d", v[f]);
        int32_t id = amtl_prep_table_intern(t, f, tok, (size_t)len, st);
        if (id < 0)
            return -1;
        t->raw[f][row] = id;
    }
    for (int d = 0; d < D; d++)
        t->dense[d][row] = dense[d];
    return 0;
}

int amtl_prep_synthetic(amtl_prep_table *t, int64_t rows, int tasks, uint64_t seed,
                        amtl_status *st)
{
    amtl_synth_rngs r;
    if (amtl_synth_table(t, rows, tasks, N_SPARSE, sparse_names, N_DENSE, dense_names, seed, &r,
                    st))
        return -1;

    hidden h;
    double *cdf[N_SPARSE] = {0};
    double *z = NULL;
    uint8_t *y = NULL;
    amtl_synth_scored *sc = NULL;
    int rc = -1;
    if (hidden_init(&h, &r.hidden, tasks, st))
        goto out_table;
    z = malloc(sizeof *z * (size_t)rows * (size_t)tasks);
    y = malloc((size_t)rows * (size_t)tasks);
    sc = malloc(sizeof *sc * (size_t)rows);
    if (!z || !y || !sc) {
        amtl_error(st, AMTL_ENOMEM, "out of memory for %lld synthetic rows",
                   (long long)rows);
        goto out;
    }
    for (int f = 0; f < N_SPARSE; f++)
        if (f != F_CATEGORY && !(cdf[f] = amtl_synth_zipf_cdf(card[f].n, card[f].s))) {
            amtl_error(st, AMTL_ENOMEM, "out of memory");
            goto out;
        }

    /* rows and each task's raw signal */
    for (int64_t i = 0; i < rows; i++) {
        int v[N_SPARSE];
        for (int f = 0; f < N_SPARSE; f++)
            v[f] = f == F_CATEGORY ? 0 : amtl_synth_draw(&r.rows, cdf[f], card[f].n);
        v[F_CATEGORY] = h.cat_of_item[v[F_ITEM]];
        float dense[N_DENSE];
        for (int d = 0; d < N_DENSE; d++)
            dense[d] = (float)amtl_rng_normal(&r.rows, 0.0, 1.0);
        if (amtl_synth_row(t, v, N_SPARSE, dense, N_DENSE, st))
            goto out;
        double a = dot(h.U + (size_t)v[F_USER] * LATENT, h.I + (size_t)v[F_ITEM] * LATENT) +
                   0.6 * h.cbias[v[F_CATEGORY]] + 0.5 * dense[0];
        double b = dot(h.C + (size_t)v[F_CITY] * LATENT, h.V + (size_t)v[F_DEVICE] * LATENT) +
                   0.5 * dense[1];
        for (int k = 0; k < tasks; k++)
            z[(size_t)k * (size_t)rows + (size_t)i] =
                is_group_a(k) ? a + 0.5 * (h.mix[k][0] * h.ubias[v[F_USER]] +
                                           h.mix[k][1] * h.ibias[v[F_ITEM]])
                              : b + 0.5 * (h.mix[k][0] * h.citybias[v[F_CITY]] +
                                           h.mix[k][1] * h.devbias[v[F_DEVICE]]);
    }

    double measured[AMTL_SYNTH_MAX_TASKS], oracle[AMTL_SYNTH_MAX_TASKS];
    amtl_synth_draw_labels(y, z, rows, tasks, SCALE, target_rate, &r.labels, sc, measured, oracle);
    if (amtl_synth_put_labels(t, y, tasks, st) || set_meta(t, tasks, measured, oracle, st))
        goto out;
    if (amtl_synth_source(t, "synthetic", rows, tasks, seed, st))
        goto out;
    rc = 0;
out:
    hidden_free(&h);
out_table:
    for (int f = 0; f < N_SPARSE; f++)
        free(cdf[f]);
    free(z);
    free(y);
    free(sc);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}

/* ---- kind "zipf": per-id effects over long-tailed ids --------------------
 *
 * The shape of small real recommendation data (the Tianchi sample, Ali-CCP):
 * a few id fields of thousands of values drawn with Zipf(1.1) frequencies,
 * so that most ids are seen once or twice, and each id with its own effect
 * on every task that carries most of the signal.  Each task's logit is a sum
 * of per-value effects (user, item, shop; smaller ones of age, category and
 * city), a small dense effect and a small age x category interaction: a
 * logistic regression over the one-hot ids is nearly the true model, and a
 * deep model must not let the tail's rarely trained embeddings add noise to
 * beat it.  An effect is RHO of a part shared by the tasks and the rest of
 * the task's own, so the tasks are related. */

enum { Z_USER, Z_ITEM, Z_SHOP, Z_AGE, Z_CATEGORY, Z_CITY, Z_NOISE, NZ_SPARSE };
enum { NZ_DENSE = 2, NZ_IDS = 3 /* the high-cardinality fields come first */ };

static const char *const zsparse_names[NZ_SPARSE] = {
    "user_id", "item_id", "shop_id", "age", "category", "city", "noise_id"};
static const char *const zdense_names[NZ_DENSE] = {"dense_0", "dense_1"};

/* cardinality, Zipf exponent (0 = uniform) and effect scale of each field */
static const struct {
    int n;
    double s, sd;
} zcard[NZ_SPARSE] = {
    [Z_USER] = {20000, 1.1, 1.0}, [Z_ITEM] = {50000, 1.1, 1.0}, [Z_SHOP] = {5000, 1.1, 0.6},
    [Z_AGE] = {8, 0.0, 0.25},     [Z_CATEGORY] = {30, 1.0, 0.25}, [Z_CITY] = {50, 0.8, 0.15},
    [Z_NOISE] = {10000, 1.1, 0.0},
};

static const double ztarget_rate[AMTL_SYNTH_MAX_TASKS] = {0.15, 0.08, 0.05, 0.12,
                                                           0.10, 0.06, 0.14, 0.07};
#define ZRHO 0.6          /* share of an effect's variance common to the tasks */
#define ZDENSE 0.2        /* effect of dense_0 */
#define ZINTER 0.3        /* scale of the age x category interaction */
#define ZSCALE 1.5        /* logit = intercept + ZSCALE * standardised signal */

float *amtl_synth_effects(amtl_rng *r, int n, int tasks, double sd, double rho)
{
    float *e = malloc(sizeof *e * (size_t)n * (size_t)tasks);
    if (!e)
        return NULL;
    const double common = sqrt(rho), own = sqrt(1.0 - rho);
    for (int i = 0; i < n; i++) {
        double c = amtl_rng_normal(r, 0.0, 1.0);
        for (int k = 0; k < tasks; k++)
            e[(size_t)i * (size_t)tasks + (size_t)k] =
                (float)(sd * (common * c + own * amtl_rng_normal(r, 0.0, 1.0)));
    }
    return e;
}

static float *zipf_effects(amtl_rng *r, int n, int tasks, double sd)
{
    return amtl_synth_effects(r, n, tasks, sd, ZRHO);
}

static int zipf_meta(amtl_prep_table *t, int tasks, const double *measured,
                     const double *oracle, const double *id_share, const int64_t *seen,
                     const int64_t *once, amtl_status *st)
{
    char buf[4096];
    size_t p = 0;
    for (int k = 0; k < tasks; k++)
        p += (size_t)snprintf(buf + p, sizeof buf - p,
                              "%s user_id item_id shop_id age category city dense_0\n",
                              t->label_names[k]);
    buf[p - 1] = '\0';
    if (amtl_prep_table_set_meta(t, "synthetic.kind", "zipf", st) ||
        amtl_prep_table_set_meta(t, "synthetic.task_fields", buf, st) ||
        amtl_prep_table_set_meta(t, "synthetic.noise_fields", "noise_id\ndense_1", st))
        return -1;
    p = 0;
    for (int k = 0; k < tasks; k++)
        p += (size_t)snprintf(buf + p, sizeof buf - p, "%s%s", k ? " " : "",
                              t->label_names[k]);
    if (amtl_prep_table_set_meta(t, "synthetic.related_tasks", buf, st))
        return -1;
    p = 0;
    for (int k = 0; k < tasks; k++)
        p += (size_t)snprintf(buf + p, sizeof buf - p, "%s %.4f\n", t->label_names[k],
                              id_share[k]);
    buf[p - 1] = '\0';
    if (amtl_prep_table_set_meta(t, "synthetic.id_signal_share", buf, st))
        return -1;
    p = 0;
    for (int f = 0; f < NZ_SPARSE; f++)
        if (zcard[f].n >= 1000)
            p += (size_t)snprintf(buf + p, sizeof buf - p, "%s %d %lld %lld\n",
                                  zsparse_names[f], zcard[f].n, (long long)seen[f],
                                  (long long)once[f]);
    buf[p - 1] = '\0';
    if (amtl_prep_table_set_meta(t, "synthetic.id_counts", buf, st))
        return -1;
    return amtl_synth_rates_meta(t, tasks, ztarget_rate, measured, oracle, buf, st);
}

int amtl_prep_synthetic_zipf(amtl_prep_table *t, int64_t rows, int tasks, uint64_t seed,
                             amtl_status *st)
{
    amtl_synth_rngs r;
    if (amtl_synth_table(t, rows, tasks, NZ_SPARSE, zsparse_names, NZ_DENSE, zdense_names, seed,
                    &r, st))
        return -1;

    float *eff[NZ_SPARSE] = {0}, *inter = NULL;
    double *cdf[NZ_SPARSE] = {0}, *z = NULL, *zid = NULL;
    uint8_t *y = NULL;
    int32_t *count[NZ_SPARSE] = {0};
    amtl_synth_scored *sc = NULL;
    int rc = -1;
    for (int f = 0; f < NZ_SPARSE; f++) {
        if (zcard[f].sd > 0 && !(eff[f] = zipf_effects(&r.hidden, zcard[f].n, tasks, zcard[f].sd)))
            goto oom;
        if (!(cdf[f] = amtl_synth_zipf_cdf(zcard[f].n, zcard[f].s)) ||
            !(count[f] = calloc((size_t)zcard[f].n, sizeof *count[f])))
            goto oom;
    }
    if (!(inter = zipf_effects(&r.hidden, zcard[Z_AGE].n * zcard[Z_CATEGORY].n, tasks, ZINTER)))
        goto oom;
    z = malloc(sizeof *z * (size_t)rows * (size_t)tasks);
    zid = malloc(sizeof *zid * (size_t)rows * (size_t)tasks);
    y = malloc((size_t)rows * (size_t)tasks);
    sc = malloc(sizeof *sc * (size_t)rows);
    if (!z || !zid || !y || !sc) {
        amtl_error(st, AMTL_ENOMEM, "out of memory for %lld synthetic rows", (long long)rows);
        goto out;
    }

    for (int64_t i = 0; i < rows; i++) {
        int v[NZ_SPARSE];
        for (int f = 0; f < NZ_SPARSE; f++) {
            v[f] = amtl_synth_draw(&r.rows, cdf[f], zcard[f].n);
            count[f][v[f]]++;
        }
        float dense[NZ_DENSE];
        for (int d = 0; d < NZ_DENSE; d++)
            dense[d] = (float)amtl_rng_normal(&r.rows, 0.0, 1.0);
        if (amtl_synth_row(t, v, NZ_SPARSE, dense, NZ_DENSE, st))
            goto out;
        size_t pair = (size_t)v[Z_AGE] * (size_t)zcard[Z_CATEGORY].n + (size_t)v[Z_CATEGORY];
        for (int k = 0; k < tasks; k++) {
            double ids = 0, rest = ZDENSE * dense[0] + inter[pair * (size_t)tasks + (size_t)k];
            for (int f = 0; f < NZ_SPARSE; f++)
                if (eff[f]) {
                    double e = eff[f][(size_t)v[f] * (size_t)tasks + (size_t)k];
                    if (f < NZ_IDS)
                        ids += e;
                    else
                        rest += e;
                }
            z[(size_t)k * (size_t)rows + (size_t)i] = ids + rest;
            zid[(size_t)k * (size_t)rows + (size_t)i] = ids;
        }
    }

    /* the share of each task's signal variance that the id effects carry */
    double id_share[AMTL_SYNTH_MAX_TASKS];
    for (int k = 0; k < tasks; k++) {
        const double *zk = z + (size_t)k * (size_t)rows, *ik = zid + (size_t)k * (size_t)rows;
        double mz = 0, mi = 0, vz = 0, vi = 0;
        for (int64_t i = 0; i < rows; i++) {
            mz += zk[i];
            mi += ik[i];
        }
        mz /= (double)rows;
        mi /= (double)rows;
        for (int64_t i = 0; i < rows; i++) {
            vz += (zk[i] - mz) * (zk[i] - mz);
            vi += (ik[i] - mi) * (ik[i] - mi);
        }
        id_share[k] = vz > 0 ? vi / vz : 0.0;
    }
    int64_t seen[NZ_SPARSE], once[NZ_SPARSE];
    for (int f = 0; f < NZ_SPARSE; f++) {
        seen[f] = once[f] = 0;
        for (int i = 0; i < zcard[f].n; i++) {
            seen[f] += count[f][i] > 0;
            once[f] += count[f][i] == 1;
        }
    }

    double measured[AMTL_SYNTH_MAX_TASKS], oracle[AMTL_SYNTH_MAX_TASKS];
    amtl_synth_draw_labels(y, z, rows, tasks, ZSCALE, ztarget_rate, &r.labels, sc, measured, oracle);
    if (amtl_synth_put_labels(t, y, tasks, st) ||
        zipf_meta(t, tasks, measured, oracle, id_share, seen, once, st))
        goto out;
    if (amtl_synth_source(t, "synthetic kind=zipf", rows, tasks, seed, st))
        goto out;
    rc = 0;
    goto out;
oom:
    amtl_error(st, AMTL_ENOMEM, "out of memory");
out:
    for (int f = 0; f < NZ_SPARSE; f++) {
        free(eff[f]);
        free(cdf[f]);
        free(count[f]);
    }
    free(inter);
    free(z);
    free(zid);
    free(y);
    free(sc);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}
