/* stopper.h — early stopping (DESIGN.md section 4, step 5): the one rule
 * that decides which epoch is the best and when a run stops, used by the
 * trainer (amtl_trainer_track_best) and on its own by tests and tools that
 * scan a run's history. */
#ifndef AMTL_STOPPER_H
#define AMTL_STOPPER_H

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

/* The improvement rule of the auc rule (the reference's): the mean over the
 * tasks with a value in both of (cur - best) / cur is > 0. */
int amtl_improved(const double *best, const double *cur, int T);

/* Mean of the finite values of x[T]; NaN when none. */
double amtl_finite_mean(const double *x, int T);

#endif
