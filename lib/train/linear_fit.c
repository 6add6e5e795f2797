/* linear_fit.c — see linear_fit.h. */
#include "train/linear_fit.h"

#include <lbfgs.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/train_cmd.h"
#include "train/metrics.h"
#include "base/pool.h"
#include "dist/comm.h"
#include "base/progress.h"
#include "base/tensor.h"
#include "model/wide.h"

/* ---- data ----------------------------------------------------------------- */

void amtl_lr_offsets(const amtl_dataset *ds, int64_t *off)
{
    off[0] = 0;
    for (int f = 0; f < ds->N; f++)
        off[f + 1] = off[f] + ds->vocab[f];
}

void amtl_lr_data_split(amtl_lr_data *d, const amtl_dataset *ds, int split, int t, int cond,
                        const int64_t *off)
{
    const amtl_split *sp = &ds->split[split];
    memset(d, 0, sizeof *d);
    d->rows = sp->rows;
    d->N = ds->N;
    d->D = ds->D;
    d->ids = sp->sparse;
    d->off = off;
    d->dense = sp->dense;
    d->y = sp->labels[t];
    d->mask = cond >= 0 ? sp->labels[cond] : NULL;
    d->counted = sp->rows;
    if (d->mask) {
        d->counted = 0;
        for (int64_t i = 0; i < sp->rows; i++)
            d->counted += d->mask[i] != 0.0f;
    }
}

int64_t amtl_lr_nvars(const amtl_lr_data *d)
{
    return d->off[d->N] + d->D + 1;
}

size_t amtl_lr_scratch_len(const amtl_lr_data *d)
{
    return (size_t)d->rows + (size_t)d->N + (size_t)d->D + 1;
}

/* ---- the objective -------------------------------------------------------- */

/* Fixed row pieces: the sums do not depend on the thread count. */
#define LR_PIECES 16
#define LR_MIN_PIECE 4096

/* log(1 + e^z) and σ(z), stable for either sign, from one exp */
static void softplus_sigmoid(double z, double *sp, double *sg)
{
    double e = exp(-fabs(z));
    *sp = (z > 0 ? z : 0) + log1p(e);
    *sg = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

typedef struct {
    const amtl_lr_data *d;
    const double *x;
    double lambda, inv_n;
    double *g;             /* NULL: logits only */
    double *z;             /* [rows] logits; with g, then residuals */
    double *pen;           /* [N + D] squared norms of each item's weights */
    int npieces;
    double loss[LR_PIECES];
} lr_job;

static void piece_rows(const lr_job *j, int p, int64_t *r0, int64_t *r1)
{
    int64_t R = j->d->rows;
    *r0 = R * p / j->npieces;
    *r1 = R * (p + 1) / j->npieces;
}

/* Rows of the pieces of thread t: logits, then loss and residuals σ(z) − y
 * (0 on rows that do not count). */
static void rows_task(void *arg, int t, int n)
{
    lr_job *j = arg;
    const amtl_lr_data *d = j->d;
    const double *x = j->x;
    const double *v = x + d->off[d->N], b = x[d->off[d->N] + d->D];
    int p0, p1;
    amtl_pool_range(j->npieces, t, n, &p0, &p1);
    for (int p = p0; p < p1; p++) {
        int64_t r0, r1;
        piece_rows(j, p, &r0, &r1);
        double *z = j->z;
        for (int64_t i = r0; i < r1; i++)
            z[i] = b;
        for (int f = 0; f < d->N; f++) {
            const int32_t *id = d->ids[f];
            const double *w = x + d->off[f];
            for (int64_t i = r0; i < r1; i++)
                z[i] += w[id[i]];
        }
        for (int k = 0; k < d->D; k++) {
            const float *col = d->dense[k];
            for (int64_t i = r0; i < r1; i++)
                z[i] += v[k] * (double)col[i];
        }
        if (!j->g)
            continue;
        double l = 0;
        for (int64_t i = r0; i < r1; i++) {
            if (d->mask && d->mask[i] == 0.0f) {
                z[i] = 0;
                continue;
            }
            double y = d->y[i], sp, sg;
            softplus_sigmoid(z[i], &sp, &sg);
            l += sp - y * z[i];
            z[i] = sg - y;
        }
        j->loss[p] = l;
    }
}

/* Items of thread t (every n-th of the N fields, D dense values and the
 * intercept): each writes a disjoint part of g, in row order. */
static void grad_task(void *arg, int t, int n)
{
    lr_job *j = arg;
    const amtl_lr_data *d = j->d;
    const double *x = j->x, *r = j->z;
    double *g = j->g, lam = j->lambda, s = j->inv_n;
    int64_t P = d->off[d->N];
    for (int k = t; k < d->N + d->D + 1; k += n) {
        if (k < d->N) {
            const int32_t *id = d->ids[k];
            const double *w = x + d->off[k];
            double *gk = g + d->off[k], sq = 0;
            for (int64_t a = 0; a < d->off[k + 1] - d->off[k]; a++) {
                gk[a] = lam * w[a];
                sq += w[a] * w[a];
            }
            for (int64_t i = 0; i < d->rows; i++)
                gk[id[i]] += r[i] * s;
            j->pen[k] = sq;
        } else if (k < d->N + d->D) {
            int c = k - d->N;
            const float *col = d->dense[c];
            double acc = 0, vc = x[P + c];
            for (int64_t i = 0; i < d->rows; i++)
                acc += r[i] * (double)col[i];
            g[P + c] = lam * vc + acc * s;
            j->pen[k] = vc * vc;
        } else {
            double acc = 0;
            for (int64_t i = 0; i < d->rows; i++)
                acc += r[i];
            g[P + d->D] = acc * s;
        }
    }
}

static void job_init(lr_job *j, const amtl_lr_data *d, const double *x, double lambda,
                     double *g, double *scratch)
{
    memset(j, 0, sizeof *j);
    j->d = d;
    j->x = x;
    j->lambda = lambda;
    j->inv_n = d->counted > 0 ? 1.0 / (double)d->counted : 0.0;
    j->g = g;
    j->z = scratch;
    j->pen = scratch + d->rows;
    int64_t np = d->rows / LR_MIN_PIECE;
    j->npieces = np < 1 ? 1 : np > LR_PIECES ? LR_PIECES : (int)np;
}

void amtl_lr_logits(const amtl_lr_data *d, const double *x, double *z)
{
    lr_job j;
    job_init(&j, d, x, 0, NULL, z);
    amtl_pool_run(d->pool, amtl_pool_size(d->pool), rows_task, &j);
}

double amtl_lr_objective(const amtl_lr_data *d, const double *x, double lambda, double *g,
                         double *scratch)
{
    lr_job j;
    double *tmp = NULL;
    if (!g) {
        /* the loss needs the residual pass, whose gradient is then dropped */
        tmp = malloc((size_t)amtl_lr_nvars(d) * sizeof *tmp);
        if (!tmp)
            return NAN;
        g = tmp;
    }
    /* several ranks: the penalty's gradient is added by rank 0 alone, the
     * rest summed */
    int par = amtl_comm_parallel(d->comm);
    job_init(&j, d, x, par && d->comm->rank > 0 ? 0.0 : lambda, g, scratch);
    int n = amtl_pool_size(d->pool);
    amtl_pool_run(d->pool, n, rows_task, &j);
    amtl_pool_run(d->pool, n, grad_task, &j);
    double loss = 0, pen = 0;
    for (int p = 0; p < j.npieces; p++)
        loss += j.loss[p];
    for (int k = 0; k < d->N + d->D; k++)
        pen += j.pen[k];
    if (par && (amtl_comm_sum_f64(d->comm, g, (size_t)amtl_lr_nvars(d), NULL) ||
                amtl_comm_sum_f64(d->comm, &loss, 1, NULL)))
        loss = NAN;
    free(tmp);
    return loss * j.inv_n + 0.5 * lambda * pen;
}

/* ‖w‖² + ‖v‖²: f minus the mean logloss, over λ/2. */
static double penalty(const amtl_lr_data *d, const double *x)
{
    int64_t m = d->off[d->N] + d->D;
    double s = 0;
    for (int64_t i = 0; i < m; i++)
        s += x[i] * x[i];
    return s;
}

/* ---- L-BFGS --------------------------------------------------------------- */

const char *amtl_lr_status_str(int status)
{
    switch (status) {
    case LBFGS_SUCCESS: return "converged";
    case LBFGS_STOP: return "no further decrease";
    case LBFGS_ALREADY_MINIMIZED: return "already at the minimum";
    case LBFGSERR_ROUNDING_ERROR: return "line search at rounding precision";
    case LBFGSERR_MAXIMUMITERATION: return "iteration limit";
    case LBFGSERR_MAXIMUMLINESEARCH: return "line search evaluation limit";
    case LBFGSERR_MINIMUMSTEP: return "line search step below its minimum";
    case LBFGSERR_MAXIMUMSTEP: return "line search step above its maximum";
    case LBFGSERR_WIDTHTOOSMALL: return "line search interval too small";
    case LBFGSERR_CANCELED: return "canceled";
    case LBFGSERR_OUTOFMEMORY: return "out of memory";
    case LBFGSERR_INCREASEGRADIENT: return "search direction uphill";
    default: return "line search failure";
    }
}

/* Convergence: ‖g‖ < LR_EPS · max(1, ‖x‖) (liblbfgs's test), else the
 * objective's relative decrease over LR_PAST iterations below LR_DELTA.
 * Measured on a synthetic set of 40000 train rows (4 tasks): tighter
 * settings (1e-8 and 1e-14; 1e-9 without the decrease test) move no test
 * AUC by more than 1e-5 and take 1.4x-2x the time; looser ones (1e-6 and
 * 1e-10) move them by up to 6e-5. */
#define LR_EPS 1e-7
#define LR_PAST 10
#define LR_DELTA 1e-12
#define LR_MAX_ITER 2000
#define LR_M 10

typedef struct {
    const amtl_lr_data *d;
    double lambda;
    double *scratch;
    int evals, iters;
    volatile sig_atomic_t *stop;
} fit_ctx;

static lbfgsfloatval_t evaluate(void *inst, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                                const int n, const lbfgsfloatval_t step)
{
    (void)step;
    fit_ctx *c = inst;
    int64_t nv = amtl_lr_nvars(c->d);
    c->evals++;
    for (int64_t i = nv; i < n; i++)
        g[i] = 0;
    return amtl_lr_objective(c->d, x, c->lambda, g, c->scratch);
}

static int progress(void *inst, const lbfgsfloatval_t *x, const lbfgsfloatval_t *g,
                    const lbfgsfloatval_t fx, const lbfgsfloatval_t xnorm,
                    const lbfgsfloatval_t gnorm, const lbfgsfloatval_t step, int n, int k,
                    int ls)
{
    (void)x, (void)g, (void)fx, (void)xnorm, (void)gnorm, (void)step, (void)n, (void)ls;
    fit_ctx *c = inst;
    c->iters = k;
    return c->stop && *c->stop;
}

int amtl_lr_fit(const amtl_lr_data *d, double lambda, double *x, amtl_lr_fit_info *info,
                volatile sig_atomic_t *stop, amtl_status *st)
{
    memset(info, 0, sizeof *info);
    int64_t nv = amtl_lr_nvars(d);
    /* liblbfgs counts in int; a build with SSE wants multiples of 16 */
    int64_t npad = (nv + 15) / 16 * 16;
    if (npad > INT_MAX)
        return amtl_error(st, AMTL_EUSAGE,
                          "the linear floor has %lld weights, more than L-BFGS takes (%d)",
                          (long long)nv, INT_MAX);
    lbfgsfloatval_t *xv = lbfgs_malloc((int)npad);
    double *scratch = malloc(amtl_lr_scratch_len(d) * sizeof *scratch);
    double *g = malloc((size_t)nv * sizeof *g);
    if (!xv || !scratch || !g) {
        lbfgs_free(xv);
        free(scratch);
        free(g);
        return amtl_error(st, AMTL_ENOMEM, "out of memory fitting the linear floor (%lld weights)",
                          (long long)nv);
    }
    memcpy(xv, x, (size_t)nv * sizeof *x);
    for (int64_t i = nv; i < npad; i++)
        xv[i] = 0;
    lbfgs_parameter_t par;
    lbfgs_parameter_init(&par);
    par.m = LR_M;
    par.epsilon = LR_EPS;
    par.past = LR_PAST;
    par.delta = LR_DELTA;
    par.max_iterations = LR_MAX_ITER;
    fit_ctx c = {.d = d, .lambda = lambda, .scratch = scratch, .stop = stop};
    lbfgsfloatval_t fx = 0;
    int ret = lbfgs((int)npad, xv, &fx, evaluate, progress, &c, &par);
    int rc = 0;
    if (ret == LBFGSERR_CANCELED) {
        rc = amtl_error(st, AMTL_EINTR, "interrupted");
    } else if (ret == LBFGSERR_OUTOFMEMORY) {
        rc = amtl_error(st, AMTL_ENOMEM, "out of memory fitting the linear floor (%lld weights)",
                        (long long)nv);
    } else {
        /* every other ending leaves the best point found in xv (liblbfgs
         * reverts a failed line search): at worst a less tight optimum */
        memcpy(x, xv, (size_t)nv * sizeof *x);
        info->status = ret;
        info->converged = ret >= 0 || ret == LBFGSERR_ROUNDING_ERROR;
        info->iterations = c.iters;
        info->objective = amtl_lr_objective(d, x, lambda, g, scratch);
        c.evals++;
        info->evaluations = c.evals;
        info->loss = info->objective - 0.5 * lambda * penalty(d, x);
        double s = 0;
        for (int64_t i = 0; i < nv; i++)
            s += g[i] * g[i];
        info->gnorm = sqrt(s);
        if (!isfinite(info->objective))
            rc = amtl_error(st, AMTL_ENUM, "the linear floor's loss is not finite (L-BFGS: %s)",
                            amtl_lr_status_str(ret));
    }
    lbfgs_free(xv);
    free(scratch);
    free(g);
    return rc;
}

/* ---- the λ path ----------------------------------------------------------- */

int amtl_lr_default_grid(double *grid, int cap)
{
    int n = 0;
    for (int k = 2; k <= 14 && n < cap; k++)
        grid[n++] = pow(10.0, -0.5 * k);
    return n;
}

static int by_decreasing(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Val AUC and logloss of x; z is [val rows]. */
static int score_val(const amtl_lr_data *val, const double *x, double *z, float *zf,
                     amtl_lr_try *tr, amtl_status *st)
{
    amtl_lr_logits(val, x, z);
    for (int64_t i = 0; i < val->rows; i++)
        zf[i] = (float)z[i];
    tr->val_auc = NAN;
    int r = val->counted > 0 ? amtl_auc(zf, val->y, val->mask, val->rows, &tr->val_auc, st) : 1;
    if (r < 0)
        return -1;
    tr->val_logloss = amtl_logloss_logits(zf, val->y, val->mask, val->rows);
    return 0;
}

/* 1 when a scores better than b: AUC, or logloss where either has none. */
static int better(const amtl_lr_try *a, const amtl_lr_try *b)
{
    if (!isnan(a->val_auc) && !isnan(b->val_auc))
        return a->val_auc > b->val_auc;
    if (!isnan(a->val_auc) != !isnan(b->val_auc))
        return !isnan(a->val_auc);
    return a->val_logloss < b->val_logloss;
}

int amtl_lr_path(const amtl_lr_data *train, const amtl_lr_data *val, const double *grid,
                 int n, double *x, amtl_lr_try *tries, int *n_tried, int *best,
                 volatile sig_atomic_t *stop, amtl_status *st)
{
    *n_tried = 0;
    *best = -1;
    int64_t nv = amtl_lr_nvars(train);
    memset(x, 0, (size_t)nv * sizeof *x);
    double pos = 0;
    for (int64_t i = 0; i < train->rows; i++)
        if (!train->mask || train->mask[i] != 0.0f)
            pos += train->y[i];
    if (amtl_comm_sum_f64(train->comm, &pos, 1, st))
        return -1;
    double neg = (double)train->counted - pos;
    x[nv - 1] = log((pos + 0.5) / (neg + 0.5));
    if (pos == 0 || neg == 0)
        return 0;
    if (n < 1)
        return amtl_error(st, AMTL_EUSAGE, "linear_l2: no strength to try");
    double *lam = malloc((size_t)n * sizeof *lam);
    double *cur = malloc((size_t)nv * sizeof *cur);
    double *z = malloc(((size_t)val->rows + 1) * sizeof *z);
    float *zf = malloc(((size_t)val->rows + 1) * sizeof *zf);
    int rc = -1;
    if (!lam || !cur || !z || !zf) {
        amtl_error(st, AMTL_ENOMEM, "out of memory fitting the linear floor");
        goto out;
    }
    memcpy(lam, grid, (size_t)n * sizeof *lam);
    qsort(lam, (size_t)n, sizeof *lam, by_decreasing);
    memcpy(cur, x, (size_t)nv * sizeof *x);
    int worse = 0;
    for (int k = 0; k < n && worse < 2; k++) {
        amtl_lr_try *tr = &tries[k];
        memset(tr, 0, sizeof *tr);
        tr->lambda = lam[k];
        if (amtl_lr_fit(train, lam[k], cur, &tr->fit, stop, st) ||
            score_val(val, cur, z, zf, tr, st))
            goto out;
        *n_tried = k + 1;
        if (*best < 0 || better(tr, &tries[*best])) {
            *best = k;
            worse = 0;
            memcpy(x, cur, (size_t)nv * sizeof *x);
        } else {
            worse++;
        }
    }
    rc = 0;
out:
    free(lam);
    free(cur);
    free(z);
    free(zf);
    return rc;
}

/* ---- the linear baseline's supernet ---------------------------------------- */

int amtl_linear_is_baseline(const amtl_file *arch)
{
    const char *b = amtl_file_meta(arch, "baseline");
    return b && !strcmp(b, "linear");
}

int amtl_linear_check_net(const amtl_supernet *net, amtl_status *st)
{
    int T = net->T, N = net->N, ok = net->E == T && net->K == 1 && net->L == 1 &&
                                    net->NL == 1 && net->n_tower == 0 &&
                                    net->H == net->input_dim && net->selections_fixed;
    if (ok) {
        const amtl_mixed_op *m = &net->mops[0];
        ok = m->chosen >= 0 && net->ops[m->chosen].kind == AMTL_OP_IDENTITY &&
             m->in == m->out;
        for (int f = 0; ok && f < N; f++)
            ok = net->fix_single[f] == 1.0f && net->fix_inter[f] == 0.0f;
        for (int t = 0; ok && t < T; t++)
            ok = net->fix_expert[t] == 1.0f;
    }
    if (!ok)
        return amtl_error(st, AMTL_EUSAGE,
                          "the architecture says baseline linear but its network is not the "
                          "linear floor's (embedding_dim = tasks, one Identity expert as wide "
                          "as its input, tower_layers [], every field selected, no "
                          "interaction): make it again with amtl-discretize --baseline linear");
    return 0;
}

void amtl_linear_clear(amtl_supernet *net)
{
    memset(net->w, 0, net->n_w * sizeof *net->w);
}

void amtl_linear_write(amtl_supernet *net, int t, const double *x)
{
    int T = net->T, N = net->N, D = net->D;
    int64_t o = amtl_id_columns_write(net->w, net->emb, net->vocab, N, T, t, x);
    const amtl_tower_layer *tl = &net->tower[t];
    float *W = net->w + tl->w;  /* [1, H] over [embs (N·T) | FM (T) | dense (D)] */
    memset(W, 0, (size_t)tl->in * sizeof *W);
    for (int f = 0; f < N; f++)
        W[f * T + t] = 1.0f;
    for (int d = 0; d < D; d++)
        W[N * T + T + d] = (float)x[o + d];
    net->w[tl->b] = (float)x[o + D];
}

/* ---- amtl-train ----------------------------------------------------------- */

#define LR_GRID_MAX 256

int amtl_linear_fit_tasks(amtl_trainer *tr, const amtl_dataset *ds, const char *who,
                          amtl_linear_writer write, double *loss, amtl_status *st)
{
    amtl_supernet *net = &tr->net;
    int T = net->T;
    double grid[LR_GRID_MAX];
    int ng;
    if (tr->cfg.linear_l2.n > 0) {
        ng = tr->cfg.linear_l2.n < LR_GRID_MAX ? tr->cfg.linear_l2.n : LR_GRID_MAX;
        for (int k = 0; k < ng; k++) {
            grid[k] = tr->cfg.linear_l2.items[k];
            if (!(grid[k] >= 0) || !isfinite(grid[k]))
                return amtl_error(st, AMTL_EUSAGE,
                                  "linear_l2: %g is not a strength (at least 0)", grid[k]);
        }
    } else {
        ng = amtl_lr_default_grid(grid, LR_GRID_MAX);
    }
    int64_t *off = malloc(((size_t)ds->N + 1) * sizeof *off);
    amtl_lr_try *tries = malloc((size_t)ng * sizeof *tries);
    double *x = NULL;
    int rc = -1;
    if (!off || !tries) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    amtl_pool *pool = amtl_trainer_pool(tr, st);
    if (!pool)
        goto out;
    amtl_lr_offsets(ds, off);
    amtl_lr_data probe;
    amtl_lr_data_split(&probe, ds, AMTL_SPLIT_TRAIN, 0, -1, off);
    if (!(x = malloc((size_t)amtl_lr_nvars(&probe) * sizeof *x))) {
        amtl_error(st, AMTL_ENOMEM, "out of memory fitting the logistic regression");
        goto out;
    }
    double loss_sum = 0;
    int fitted = 0;  /* tasks with a fit (not intercept-only) */
    for (int t = 0; t < T; t++) {
        if (tr->task_w[t] == 0.0f)
            continue;
        double ts = amtl_now();
        amtl_lr_data trn, val;
        amtl_lr_data_split(&trn, ds, AMTL_SPLIT_TRAIN, t, tr->task_cond[t], off);
        amtl_lr_data_split(&val, ds, AMTL_SPLIT_VAL, t, tr->task_cond[t], off);
        trn.pool = val.pool = pool;
        if (ds->shard_size > 1) {
            double c = (double)trn.counted;
            trn.comm = tr->comm;
            if (!amtl_comm_parallel(tr->comm)) {
                amtl_error(st, AMTL_EUSAGE, "%s: the train split is a share, but no job "
                           "shares it", who);
                goto out;
            }
            if (amtl_comm_sum_f64(tr->comm, &c, 1, st))
                goto out;
            trn.counted = (int64_t)c;
        }
        if (trn.counted == 0) {
            amtl_error(st, AMTL_EDATA, "%s, task '%s': no train row counts (its "
                       "condition '%s' is never 1)", who, net->label_names[t],
                       net->label_names[tr->task_cond[t]]);
            goto out;
        }
        int n_tried, best;
        if (amtl_lr_path(&trn, &val, grid, ng, x, tries, &n_tried, &best, tr->stop, st)) {
            amtl_error_context(st, "%s, task '%s'", who, net->label_names[t]);
            goto out;
        }
        write(net, t, x);
        if (n_tried == 0) {
            if (!tr->quiet)
                fprintf(stderr, "%s: %s: one class in the train rows, intercept only\n", who,
                        net->label_names[t]);
            continue;
        }
        const amtl_lr_try *b = &tries[best];
        loss_sum += b->fit.loss;
        fitted++;
        if (!tr->quiet) {
            fprintf(stderr, "%s: %s: l2 %g (best of %d tried), %d iterations%s, "
                    "train loss %.6f, |grad| %.2e, val AUC %.6f, %.2f s\n",
                    who, net->label_names[t], b->lambda, n_tried, b->fit.iterations,
                    b->fit.converged ? "" : " (not converged)", b->fit.loss, b->fit.gnorm,
                    b->val_auc, amtl_now() - ts);
            if (!b->fit.converged)
                fprintf(stderr, "%s: %s: L-BFGS stopped: %s\n", who, net->label_names[t],
                        amtl_lr_status_str(b->fit.status));
        }
    }
    *loss = fitted ? loss_sum / fitted : NAN;
    rc = 0;
out:
    free(off);
    free(tries);
    free(x);
    return rc;
}

int amtl_linear_train(amtl_trainer *tr, const amtl_dataset *ds, void *metrics,
                      amtl_status *st)
{
    if (amtl_linear_check_net(&tr->net, st))
        return -1;
    amtl_linear_clear(&tr->net);
    double t0 = amtl_now(), loss;
    if (amtl_linear_fit_tasks(tr, ds, "linear", amtl_linear_write, &loss, st))
        return -1;
    double secs = amtl_now() - t0;
    amtl_metrics val;
    if (amtl_trainer_evaluate(tr, ds, AMTL_SPLIT_VAL, &val, st))
        return -1;
    amtl_metrics_drop_untrained(tr, &val);
    tr->epoch = 1;
    if (amtl_trainer_record(tr, AMTL_PHASE_FINETUNE, loss, &val, secs, st))
        return -1;
    amtl_metrics_print(tr, &val, 0, "linear", loss, secs, 1, metrics);
    return 0;
}

int amtl_wide_fit(amtl_trainer *tr, const amtl_dataset *ds, amtl_status *st)
{
    if (!tr->net.wide || strcmp(tr->cfg.wide_init, "linear"))
        return 0;
    double loss;
    return amtl_linear_fit_tasks(tr, ds, "wide_init", amtl_wide_write, &loss, st);
}
