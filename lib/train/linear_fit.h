/* linear_fit.h — the linear floor (DESIGN.md sections 7 and 11) fitted as
 * what it claims to be: for each task on its own, an L2-regularised logistic
 * regression on the one-hot sparse ids (every field, every id, the
 * out-of-vocabulary row 0 included) and the dense values, with an
 * unpenalised intercept, minimised to convergence by L-BFGS (liblbfgs):
 *
 *     f(x) = (1/n) Σ_i [log(1 + e^{z_i}) − y_i z_i] + (λ/2)(‖w‖² + ‖v‖²)
 *     z_i  = Σ_f w[off_f + id_f(i)] + Σ_d v_d dense_d(i) + b
 *
 * over the n train rows the task counts (all of them, or those where its
 * condition label is 1).  x holds the variables as [w (P = Σ_f vocab_f,
 * field after field) | v (D) | b].  In scikit-learn's terms λ = 1 / (C · n).
 *
 * λ is chosen per task on the validation split by AUC: the strengths are
 * tried from the largest down, each fit starting from the previous one's
 * solution, and the path stops once two strengths in a row score below the
 * best.  The weights are then written into the supernet of the linear
 * baseline (amtl_arch_baseline "linear": E = T, one Identity expert of width
 * H = input_dim, no hidden tower layer), whose forward is then exactly
 * logit_t = Linear(H, 1)(concat(emb_f(id_f), FM, dense)): emb_f[id][t] =
 * w_t[off_f + id], task t's tower weight 1 at position f·T + t, v_t at the
 * dense positions, 0 elsewhere, bias b_t.  The model file is then an
 * ordinary one that amtl-eval scores.
 */
#ifndef AMTL_LINEAR_FIT_H
#define AMTL_LINEAR_FIT_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "data/dataset.h"
#include "base/error.h"
#include "format/io.h"
#include "model/supernet.h"
#include "train/train.h"

/* One task's rows of one split, column-wise as the dataset holds them. */
typedef struct {
    int64_t rows;          /* rows of the split */
    int N, D;
    int32_t *const *ids;   /* [N] columns of [rows] ids (amtl_split.sparse) */
    const int64_t *off;    /* [N + 1] first variable of each field's ids; off[N] = P */
    float *const *dense;   /* [D] columns of [rows] values */
    const float *y;        /* [rows] 0/1 labels of the task */
    const float *mask;     /* [rows] rows with mask 0 do not count; NULL = all count */
    int64_t counted;       /* rows that count (with comm: on every rank together) */
    /* with several ranks (lib/dist/comm.h): these rows are this rank's
     * share, and the objective, its gradient and the class counts are
     * summed over the ranks, so every rank fits the same weights */
    const struct amtl_comm *comm;
    /* the threads the objective runs on (borrowed; NULL: one) */
    struct amtl_pool *pool;
} amtl_lr_data;

/* off[0..N] of a dataset's fields; off[N] = P. */
void amtl_lr_offsets(const amtl_dataset *ds, int64_t *off);
/* Task t of a split; cond is the label index of t's condition, or -1. */
void amtl_lr_data_split(amtl_lr_data *d, const amtl_dataset *ds, int split, int t, int cond,
                        const int64_t *off);
/* Variables of the problem: P + D + 1. */
int64_t amtl_lr_nvars(const amtl_lr_data *d);

/* z[rows] = X·w + dense·v + b for every row (counted or not). */
void amtl_lr_logits(const amtl_lr_data *d, const double *x, double *z);

/* f(x) as above; with g != NULL also its gradient g[nvars] (written).
 * scratch holds amtl_lr_scratch_len(d) doubles.  Work is cut into fixed
 * pieces, so the value does not depend on the thread count. */
size_t amtl_lr_scratch_len(const amtl_lr_data *d);
double amtl_lr_objective(const amtl_lr_data *d, const double *x, double lambda, double *g,
                         double *scratch);

typedef struct {
    int iterations;        /* L-BFGS iterations */
    int evaluations;       /* objective evaluations */
    int status;            /* liblbfgs's return value */
    int converged;         /* status says the gradient test (or no progress left) ended it */
    double objective;      /* f at the solution */
    double loss;           /* its mean logloss part */
    double gnorm;          /* ‖∇f‖ there */
} amtl_lr_fit_info;

/* What liblbfgs's status means, in words. */
const char *amtl_lr_status_str(int status);

/* Minimises f from x (in: the start; out: the solution, nvars doubles).
 * Stops early with AMTL_EINTR when *stop is raised (stop may be NULL). */
int amtl_lr_fit(const amtl_lr_data *d, double lambda, double *x, amtl_lr_fit_info *info,
                volatile sig_atomic_t *stop, amtl_status *st);

/* One strength of a task's path. */
typedef struct {
    double lambda;
    amtl_lr_fit_info fit;
    double val_auc;        /* NaN when the counted val rows hold one class */
    double val_logloss;
} amtl_lr_try;

/* The built-in strengths: 1e-1 down to 1e-7 by factors of √10. */
int amtl_lr_default_grid(double *grid, int cap);

/* The path of one task: fits every strength of grid[n] (any order; tried
 * from the largest down, stopping after two in a row below the best val AUC
 * — val logloss when no AUC exists), tries[] receiving each (n of them at
 * most), and leaves the best one's solution in x (nvars doubles; its
 * content on entry is ignored).  *best indexes tries[].  When the counted
 * train rows hold one class no fit is made: x is the intercept alone (the
 * smoothed log-odds) and *n_tried is 0. */
int amtl_lr_path(const amtl_lr_data *train, const amtl_lr_data *val, const double *grid,
                 int n, double *x, amtl_lr_try *tries, int *n_tried, int *best,
                 volatile sig_atomic_t *stop, amtl_status *st);

/* ---- the linear baseline's supernet ---------------------------------------- */

/* 1 when an architecture file is the linear baseline ("baseline: linear"). */
int amtl_linear_is_baseline(const amtl_file *arch);

/* Checks that net has the linear baseline's shape (see the top), so that
 * amtl_linear_write makes its forward the regression's logits. */
int amtl_linear_check_net(const amtl_supernet *net, amtl_status *st);

/* Zeroes every weight of net (the expert gate's softmax over one expert is
 * then exactly 1), for amtl_linear_write to fill task after task. */
void amtl_linear_clear(amtl_supernet *net);
/* Writes task t's solution x (layout of amtl_lr_data with the net's fields,
 * P + D + 1 doubles) into the embeddings' column t and task t's tower. */
void amtl_linear_write(amtl_supernet *net, int t, const double *x);

/* Where a task's solution goes: amtl_linear_write (the floor's network) or
 * amtl_wide_write (the wide part of any network). */
typedef void (*amtl_linear_writer)(amtl_supernet *net, int t, const double *x);

/* Fits the logistic regression of every trained task (loss weight != 0;
 * conditioned tasks on their condition's rows) on the train split with the
 * config's linear_l2 strengths, the val-best kept, and hands each task's
 * solution to write.  Prints one line per task on stderr (unless tr->quiet),
 * prefixed by who; *loss is the mean train logloss of the fitted tasks. */
int amtl_linear_fit_tasks(amtl_trainer *tr, const amtl_dataset *ds, const char *who,
                          amtl_linear_writer write, double *loss, amtl_status *st);

/* The wide part's start (config wide_init: linear): each trained task's
 * logistic regression, fitted as the floor is, written into the wide tables
 * and the task's last tower bias (amtl_wide_write).  Nothing to do unless
 * the net has the wide part and wide_init is linear. */
int amtl_wide_fit(amtl_trainer *tr, const amtl_dataset *ds, amtl_status *st);

/* amtl-train on the linear baseline: fits every trained task (loss weight
 * != 0; conditioned tasks on their condition's rows) with the config's
 * linear_l2 strengths, writes the weights into tr->net, prints per task the
 * chosen strength, iterations, train loss and val AUC on stderr (unless
 * tr->quiet), evaluates the model on val and appends one metrics line
 * (amtl_metrics_print, phase "linear") to `metrics` (a FILE *). */
int amtl_linear_train(amtl_trainer *tr, const amtl_dataset *ds, void *metrics,
                      amtl_status *st);

#endif
