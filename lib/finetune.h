/* finetune.h — what amtl-train and amtl-eval run: train a discrete
 * architecture with early stopping on validation AUC (DESIGN.md section 4,
 * steps 5 and 6), and score a model on a split. */
#ifndef AMTL_FINETUNE_H
#define AMTL_FINETUNE_H

#include <signal.h>

#include "cli.h"
#include "error.h"

typedef struct {
    const char *data, *arch, *init, *out, *metrics;
    int epochs;            /* -1: config key epochs */
    int patience;          /* -1: config key patience */
    int quiet;
    volatile sig_atomic_t *stop;
} amtl_finetune_opts;

int amtl_finetune_run(const amtl_finetune_opts *o, amtl_cli *cli, amtl_status *st);

/* Prints per-task AUC and logloss of a model on a split: a table, or one JSON
 * object when json != 0. */
int amtl_eval_run(const char *model, const char *data, const char *split, int json,
                  amtl_status *st);

#endif
