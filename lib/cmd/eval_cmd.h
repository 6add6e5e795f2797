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

/* amtl-eval --data: prints per-task AUC and logloss of a model on a split to
 * stdout, as a table or one JSON object (json != 0), computed on `device`
 * (config key device's values; NULL = cpu, whatever the model's config says).
 * With `against` (a second model file; NULL = none), also the paired
 * comparison on the same rows (amtl_trainer_compare): the other model's
 * mean AUC, the difference and its standard error. */
int amtl_eval_run(const char *model, const char *data, const char *split, int json,
                  const char *device, const char *against, amtl_status *st);

#endif
