/* train.h — the training loop shared by amtl-supernet and amtl-train:
 * epochs in a phase (DESIGN.md section 4), validation, the loss with task
 * weights and conditions, early stopping, and checkpoints that resume
 * exactly (weights, running statistics, arch params, both optimizers, the
 * RNG, the epoch, the discretisation state and the metrics history).
 */
#ifndef AMTL_TRAIN_H
#define AMTL_TRAIN_H

#include <signal.h>

#include "format/config.h"
#include "data/dataset.h"
#include "base/error.h"
#include "format/io.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/stopper.h"
#include "base/rng.h"
#include "model/supernet.h"

typedef enum {
    AMTL_PHASE_WARMUP = 0,   /* weights only, gates all ones */
    AMTL_PHASE_SEARCH = 1,   /* weights and arch params on the same batch */
    AMTL_PHASE_FINETUNE = 2  /* weights only */
} amtl_phase;

const char *amtl_phase_name(amtl_phase p);
int amtl_phase_parse(const char *s, amtl_phase *p);

/* Columns of one history row: epoch, phase, train loss, mean val AUC,
 * seconds, then per task val AUC and val logloss. */
#define AMTL_HIST_FIXED 5

/* A model's metrics on a split, per task.  A task counts on the rows where
 * its condition (config task_conditions) is 1, all rows when it has none. */
typedef struct {
    int T;
    int64_t rows;        /* rows of the split */
    double mean_auc;     /* over the trained tasks with an AUC; NaN if none */
    double auc[64];      /* over the rows where the task counts; NaN: one class */
    double logloss[64];  /* same rows; NaN when none */
    int64_t counted[64]; /* those rows */
    int64_t positives[64]; /* of those, the rows labelled 1 */
    double auc_se[64];   /* standard error of auc[t] (amtl_auc_se); NaN with auc */
    double mean_auc_se;  /* of mean_auc: √(Σ se²) / (tasks in the mean); NaN if none */
    double auc_all[64];  /* conditioned tasks: over every row (NaN otherwise) */
    int cond[64];        /* label index of the condition, or -1 */
    int trained[64];     /* loss weight != 0 */
} amtl_metrics;

typedef struct {
    amtl_config cfg;
    amtl_supernet net;
    amtl_adam opt_w, opt_a;
    amtl_rng rng;
    int epoch;             /* epochs completed */
    double *hist;          /* [n_hist, hist_cols] */
    int n_hist, cap_hist, hist_cols;
    float *task_w;         /* [T] loss weights */
    int *task_cond;        /* [T] label index of the condition, or -1 */
    int B;
    /* early stopping (fine-tuning): the stopper's best and the weights,
     * running statistics and counters of its best epoch */
    amtl_stopper stopper;
    float *best_w, *best_state;
    int64_t *best_nbt;
    volatile sig_atomic_t *stop;    /* set by a signal handler: stop at the next batch */
    int quiet;             /* no progress line */
    /* The epoch in progress when a stop came at a batch boundary.  A
     * checkpoint saves it, and the next amtl_trainer_epoch continues it from
     * next_batch, so a stopped-and-resumed run equals an uninterrupted one. */
    struct {
        int active;            /* epoch `epoch` is part-done */
        amtl_phase phase;      /* the phase it was trained in */
        int64_t next_batch;    /* first batch not yet trained */
        int64_t counted;       /* rows in loss_sum */
        double loss_sum;       /* sum of batch loss x rows so far */
        int64_t B, rows;       /* batch size and train rows it was cut with */
        int64_t perm_rng[4];   /* RNG state the epoch's permutation came from */
    } part;
    /* Epoch count at which the run that trains this trainer began; a
     * checkpoint keeps it so that a resumed run knows its target. */
    int run_start;
    /* The device step over the backend cfg.device selects, made at the
     * first epoch or evaluation.  The host net and opt_w are in sync with it
     * between epochs and evaluations (on the CPU backend it works in them). */
    struct amtl_dev *dev;
    struct amtl_backend *be;   /* dev's backend instance, owned (amtl_backend_free) */
    /* The trainer's threads (cfg.threads; 0: one a core it may use), owned,
     * made when the step or the linear fit first needs them
     * (amtl_trainer_pool): the CPU backend and the fit run on them */
    struct amtl_pool *pool;
    int dev_resolved;      /* be and dev were made (at the first epoch or prediction) */
    int dev_split;         /* the split whose data the device holds, or -1 */
    /* The data-parallel job this trainer is one rank of (lib/dist/comm.h),
     * or NULL: one process.  With several ranks, ds's train split must be
     * read as the rank's share (amtl_dataset_read_shard). */
    const struct amtl_comm *comm;
} amtl_trainer;

/* A new instance of the backend that config value `device` selects (the
 * caller frees it with amtl_backend_free): the CPU backend, whose MixedOp is
 * the fused kernel, for cpu and cpu-backend (its other name) and auto
 * without a usable GPU; the plain CPU backend, each MixedOp composed of the
 * primitives (the oracle), for cpu-plain; CUDA for cuda and auto; AMTL_EDEVICE when
 * cuda is asked for and none can run, AMTL_ENOMEM when the instance cannot
 * be made. */
struct amtl_backend;
int amtl_device_backend(const char *device, struct amtl_pool *pool, struct amtl_backend **be,
                        amtl_status *st);

/* A fresh trainer: the net initialised from cfg->seed. */
int amtl_trainer_init(amtl_trainer *tr, const amtl_config *cfg, const amtl_dataset *ds,
                      amtl_status *st);
void amtl_trainer_free(amtl_trainer *tr);
/* The trainer's thread pool, made at the first call (a tool that only reads
 * a checkpoint starts no thread); NULL when out of memory (st says so). */
struct amtl_pool *amtl_trainer_pool(amtl_trainer *tr, amtl_status *st);

/* The weights the optimiser steps are w[0, n) for the n returned: n_w, or
 * the wide part's start when it is frozen (config wide_train). */
size_t amtl_trainer_trained_weights(const amtl_trainer *tr);
/* Re-registers the optimizer segments' active flags from liveness (and a
 * frozen wide part: never active). */
void amtl_trainer_sync_liveness(amtl_trainer *tr);

/* One training epoch in a phase; *loss = mean training loss.  In the search
 * phase, ends with `discretize` PD-DARTS steps (the lowest-entropy MixedOps
 * fixed to their argmax).  A part-done epoch (tr->part) is continued from its
 * next batch; it must be of the same phase, batch size and train rows.
 * Returns -1 with AMTL_EINTR when *stop was raised: the trainer then holds
 * the part-done epoch in tr->part, which amtl_trainer_save writes into a
 * checkpoint.  Returns -1 with AMTL_ENUM, naming the epoch and batch, when
 * a loss or gradient is not finite; no update of that batch is applied. */
int amtl_trainer_epoch(amtl_trainer *tr, const amtl_dataset *ds, amtl_phase phase,
                       int discretize, double *loss, amtl_status *st);

/* Metrics of a split (eval mode), from amtl_trainer_predict's logits: the
 * one evaluation of the project (validation during training, amtl-eval). */
int amtl_trainer_evaluate(amtl_trainer *tr, const amtl_dataset *ds, int split,
                          amtl_metrics *m, amtl_status *st);
/* Two models scored on the same split: a's metrics into *m (as
 * amtl_trainer_evaluate, from the same one prediction), and, paired
 * (amtl_auc_paired), the difference of their mean AUCs (a − b) over the tasks
 * in a's mean and its standard error.  The models must train the same tasks
 * under the same conditions (AMTL_EDATA otherwise); out->tasks 0 and NaN
 * when no task has both classes. */
int amtl_trainer_compare(amtl_trainer *a, amtl_trainer *b, const amtl_dataset *ds,
                         int split, amtl_metrics *m, amtl_auc_pair *out, amtl_status *st);
/* Sets the AUC and logloss of every task with loss weight 0 to NaN (they
 * are logged as null) and recomputes the mean over the rest. */
void amtl_metrics_drop_untrained(const amtl_trainer *tr, amtl_metrics *m);
/* Logits [T, rows] of a split into a malloc'd array. */
int amtl_trainer_predict(amtl_trainer *tr, const amtl_dataset *ds, int split,
                         float **logits, amtl_status *st);

/* Appends a history row. */
int amtl_trainer_record(amtl_trainer *tr, amtl_phase phase, double loss,
                        const amtl_metrics *val, double seconds, amtl_status *st);

/* Early stopping (DESIGN.md section 4 step 5) by tr->stopper (stopper.h):
 * reset_best starts it afresh with the config's rule (early_stop),
 * patience and min_epochs; track_best feeds it the epoch's validation
 * metrics and keeps the weights when the epoch is the new best (returns 1,
 * 0 when not, -1 with st when the copy cannot be allocated); restore_best
 * puts the kept weights back.  amtl_stopper_done(&tr->stopper) says when to
 * stop. */
void amtl_trainer_reset_best(amtl_trainer *tr, int patience);
int amtl_trainer_track_best(amtl_trainer *tr, int epoch, const amtl_metrics *val,
                            amtl_status *st);
void amtl_trainer_restore_best(amtl_trainer *tr);

/* Checkpoints (kind "checkpoint", or "model" for a trained discrete net).
 * Refuses (AMTL_ENUM, nothing written) when a parameter, running statistic,
 * optimizer moment or kept-best weight is not finite. */
int amtl_trainer_save(const amtl_trainer *tr, const amtl_dataset *ds, const char *path,
                      const char *kind, amtl_status *st);
/* Loads a checkpoint or model written by amtl_trainer_save into a trainer
 * built for ds with config cfg (the saved config with any overrides). */
int amtl_trainer_load(amtl_trainer *tr, const char *path, const amtl_dataset *ds,
                      const amtl_config *cfg, amtl_status *st);
/* The same from a file already decoded; `what` names it in messages. */
int amtl_trainer_load_file(amtl_trainer *tr, const amtl_file *f, const char *what,
                           const amtl_dataset *ds, const amtl_config *cfg,
                           amtl_status *st);
/* Copies weights, running stats and counters by name from a checkpoint file
 * into tr->net (for fine-tuning an architecture from the supernet). */
int amtl_trainer_inherit(amtl_trainer *tr, const amtl_file *ckpt, const char *what,
                         amtl_status *st);

/* The config YAML stored in a checkpoint, model or architecture file
 * (malloc'd; *yaml NULL when the file has none). */
int amtl_file_config_yaml(const amtl_file *f, char **yaml, amtl_status *st);

/* The fields, labels and vocab sizes of the data a checkpoint or model was
 * trained on (no rows): enough to rebuild its network without the dataset. */
int amtl_dataset_shape(amtl_dataset *ds, const amtl_file *f, const char *what, amtl_status *st);
void amtl_dataset_shape_free(amtl_dataset *ds);

/* Prints the metrics as a TSV/JSON line (json != 0) to a FILE*. */
void amtl_metrics_print(const amtl_trainer *tr, const amtl_metrics *m, int epoch,
                        const char *phase, double loss, double secs, int json, void *file);

#endif
