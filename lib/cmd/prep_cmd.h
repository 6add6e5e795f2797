/* prep_cmd.h — what amtl-prep runs: CSV files (processed, plain with column
 * lists, or a raw data set's recipe) or the embedded synthetic generator into
 * a dataset file (dataset.h, amtl-dataset(5)), and --info.
 *
 * The readers (prep_csv.h, recipes.h, synthetic.h) each gather their input
 * into an amtl_prep_table (prep_table.h), which is then written as a file.
 */
#ifndef AMTL_PREP_CMD_H
#define AMTL_PREP_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "format/config.h"

typedef struct {
    const char *output;          /* -o; "-" = stdout */
    const char *const *inputs;
    int n_inputs;
    int synthetic;
    int64_t rows;                /* --rows, synthetic only */
    int tasks;                   /* --tasks, synthetic only */
    int synthetic_kind;          /* --synthetic-kind: AMTL_SYNTH_* (synthetic.h) */
} amtl_prep_args;

/* Reads the inputs the config's format names (or generates), writes the
 * dataset atomically.  Nothing is written when anything fails. */
int amtl_prep_run(const amtl_prep_args *a, const amtl_config *cfg,
                  amtl_status *st);

/* amtl-prep --info: rows per split, fields with kind and vocab size, and
 * each label's positive rate per split, as an aligned table. */
int amtl_prep_info(const char *path, FILE *out, amtl_status *st);

#endif
