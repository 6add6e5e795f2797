/* finetune.h — what amtl-train and amtl-eval run: train a discrete
 * architecture with early stopping on validation AUC (DESIGN.md section 4,
 * steps 5 and 6), and score a model on a split.
 *
 * A task whose loss weight is 0 (the other tasks of a single-task:<label>
 * baseline) is "not trained": it takes no part in early stopping or in the
 * mean AUC, its validation AUC is logged as null, and amtl-eval lists it
 * apart instead of scoring it.  A conditioned task (config key
 * task_conditions "task=cond") is scored on the rows where cond is 1, as its
 * loss counts; amtl-eval adds its AUC over all rows.
 */
#ifndef AMTL_FINETUNE_H
#define AMTL_FINETUNE_H

#include <signal.h>
#include <stdint.h>

#include "cli.h"
#include "error.h"
#include "train.h"

typedef struct {
    const char *data, *arch, *init, *out, *metrics;
    int epochs;            /* -1: config key epochs */
    int patience;          /* -1: config key patience */
    int quiet;
    volatile sig_atomic_t *stop;
} amtl_finetune_opts;

int amtl_finetune_run(const amtl_finetune_opts *o, amtl_cli *cli, amtl_status *st);

/* ---- early stopping ------------------------------------------------------- */

/* The stopping decision on its own: fed one epoch's per-task validation AUCs
 * at a time (NaN = no AUC, or a task left out), it keeps the best AUCs and
 * counts epochs without improvement.  Improvement is amtl_improved's rule
 * (mean over tasks of (new - best) / new > 0); the first epoch after a reset
 * is always the best so far. */
typedef struct {
    int T;
    double best[64];
    int have_best, best_epoch, bad_epochs;
} amtl_stopper;

void amtl_stopper_reset(amtl_stopper *s, int T);
/* Returns 1 when epoch's AUCs are the new best, 0 otherwise. */
int amtl_stopper_update(amtl_stopper *s, int epoch, const double *auc);

/* A whole run of n epochs with AUCs auc[e*T + t]: returns the epoch after
 * which training stops (patience epochs without improvement, or the last
 * epoch n-1) and sets *best_epoch; -1 when n < 1. */
int amtl_early_stop_scan(const double *auc, int n, int T, int patience, int *best_epoch);

/* Sets the AUC of every task with loss weight 0 to NaN and recomputes the
 * mean over the rest. */
void amtl_metrics_drop_untrained(const amtl_trainer *tr, amtl_metrics *m);

/* ---- evaluation ----------------------------------------------------------- */

typedef struct {
    int T;
    int64_t rows;            /* rows of the split */
    double mean_auc;         /* over trained tasks with an AUC; NaN if none */
    double auc[64];          /* over the rows where the task counts; NaN: one class */
    double logloss[64];      /* same rows; NaN when none */
    int64_t counted[64];     /* those rows */
    double auc_all[64];      /* conditioned tasks: over every row */
    int cond[64];            /* label index of the condition, or -1 */
    int trained[64];         /* loss weight != 0 */
} amtl_eval_result;

/* Scores tr on a split of ds (eval mode), from amtl_trainer_predict's logits. */
int amtl_eval_metrics(amtl_trainer *tr, const amtl_dataset *ds, int split,
                      amtl_eval_result *r, amtl_status *st);

/* Checks that a model file was trained on ds's fields: the same sparse and
 * dense fields and labels in the same order, the same vocabulary sizes and,
 * where both hold them, the same tokens. */
int amtl_eval_check_match(const amtl_file *model, const char *model_path,
                          const amtl_dataset *ds, const char *data_path, amtl_status *st);

/* amtl-eval --data: prints per-task AUC and logloss of a model on a split to
 * stdout, as a table or one JSON object (json != 0), computed on `device`
 * (config key device's values; NULL = cpu, whatever the model's config says). */
int amtl_eval_run(const char *model, const char *data, const char *split, int json,
                  const char *device, amtl_status *st);

#endif
