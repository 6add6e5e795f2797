/* train_cmd.h — what amtl-train and amtl-eval run: train a discrete
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
#ifndef AMTL_TRAIN_CMD_H
#define AMTL_TRAIN_CMD_H

#include <signal.h>
#include <stdint.h>

#include "cmd/cli.h"
#include "base/error.h"
#include "train/train.h"

typedef struct {
    const char *data, *arch, *init, *out, *metrics;
    int epochs;            /* -1: config key epochs */
    int patience;          /* -1: config key patience */
    int quiet;
    volatile sig_atomic_t *stop;
} amtl_finetune_opts;

int amtl_finetune_run(const amtl_finetune_opts *o, amtl_cli *cli, amtl_status *st);

/* ---- early stopping ------------------------------------------------------- */

/* The stopping decision on its own, fed one epoch's per-task validation AUC
 * and logloss at a time (NaN = no value, or a task left out).  It keeps the
 * best epoch and counts epochs without improvement.  Improvement:
 *   auc      amtl_improved's rule, the reference's: the mean over tasks of
 *            (new - best) / new is > 0;
 *   logloss  the mean validation logloss over the tasks with one falls below
 *            the best mean (no relative noise of rare-positive tasks' AUC).
 * The first epoch after a reset is always the best so far.  A run stops when
 * `patience` epochs in a row brought no improvement and at least
 * `min_epochs` epochs were trained (amtl_stopper_done). */
typedef struct {
    int T;
    int use_logloss;       /* 0: auc rule, 1: logloss rule */
    int patience, min_epochs;
    double best[64];       /* the best epoch's AUCs (auc rule) */
    double best_loss;      /* the best epoch's mean logloss (logloss rule) */
    int have_best, best_epoch, bad_epochs, epochs_seen;
} amtl_stopper;

/* rule: "auc" or "logloss" (the config key early_stop); NULL = auc. */
void amtl_stopper_reset(amtl_stopper *s, int T, const char *rule, int patience,
                        int min_epochs);
/* Returns 1 when the epoch is the new best, 0 otherwise. */
int amtl_stopper_update(amtl_stopper *s, int epoch, const double *auc,
                        const double *logloss);
/* 1 when training should stop after the epochs seen so far. */
int amtl_stopper_done(const amtl_stopper *s);

/* A whole run of n epochs with auc[e*T + t] and logloss[e*T + t] (logloss
 * may be NULL for the auc rule): returns the epoch after which training
 * stops (amtl_stopper_done, or the last epoch n-1) and sets *best_epoch; -1
 * when n < 1. */
int amtl_early_stop_scan(const double *auc, const double *logloss, int n, int T,
                         const char *rule, int patience, int min_epochs, int *best_epoch);

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
