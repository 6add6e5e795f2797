/* eval_cmd.h — what amtl-eval --data runs: a model's per-task AUC and
 * logloss on a split (amtl_trainer_evaluate), as a table or JSON.  A task
 * the model was not trained on (loss weight 0) is listed apart; a
 * conditioned task gets its AUC over all rows as well.  amtl-eval --predict
 * is predict.h. */
#ifndef AMTL_EVAL_CMD_H
#define AMTL_EVAL_CMD_H

#include "base/error.h"
#include "data/dataset.h"
#include "format/io.h"
#include "train/train.h"

/* Checks that a model file was trained on ds's fields: the same sparse and
 * dense fields and labels in the same order, the same vocabulary sizes and,
 * where both hold them, the same tokens. */
int amtl_eval_check_match(const amtl_file *model, const char *model_path,
                          const amtl_dataset *ds, const char *data_path, amtl_status *st);

/* What amtl-eval --data does (amtl_eval_run). */
typedef struct {
    const char *model, *data;
    const char *split;   /* train, val or test */
    int json;            /* one JSON object instead of the table */
    int scores;          /* each row's labels and probabilities instead of metrics */
    const char *device;  /* config key device's values; NULL = cpu, whatever the
                            model's config says */
    const char *against; /* a second model file to compare with; NULL = none */
} amtl_eval_opts;

/* amtl-eval --data: prints per-task AUC and logloss of a model on a split to
 * stdout, as a table or one JSON object.  With `against`, also the paired
 * comparison on the same rows (amtl_trainer_compare): the other model's mean
 * AUC, the difference and its standard error.  With `scores`, instead, one
 * tab-separated line per row of the split, in the split's order, under a
 * header: the row's index in the split, then for each trained task its label
 * (0 or 1; '-' where the task's condition is 0, a row its AUC leaves out)
 * and the model's probability with 6 decimals, the numbers amtl-eval
 * --predict writes for the same row. */
int amtl_eval_run(const amtl_eval_opts *o, amtl_status *st);

#endif
