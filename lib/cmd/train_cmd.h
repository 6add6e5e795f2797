/* train_cmd.h — what amtl-train runs: train a discrete architecture with
 * early stopping on validation metrics (DESIGN.md section 4, steps 5 and 6;
 * the rule is stopper.h).
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
    /* the data-parallel job this process is a rank of (amtl_comm_init); NULL
     * or one rank: a run of its own.  Every rank reads its share of the
     * train rows; rank 0 alone prints the metrics and writes the output */
    const struct amtl_comm *comm;
} amtl_finetune_opts;

int amtl_finetune_run(const amtl_finetune_opts *o, amtl_cli *cli, amtl_status *st);

#endif
