/* prep_table.h — the table every amtl-prep input is gathered into, and its
 * conversion to a dataset file (dataset.h, amtl-dataset(5)).
 *
 * Per sparse field a hash map from the raw token to a provisional index,
 * and per row the provisional indices, dense values and labels.
 * amtl_prep_table_to_file then assigns the splits, transforms the dense
 * columns by the train rows' statistics (dense_transform), label-encodes
 * each field to 1..n in order of first appearance in the output (train
 * rows, then val, then test; with vocab "train" only train rows add to the
 * vocabulary and anything else becomes 0; with min_id_count > 1 values
 * rarer than that in the train rows become 0 too) and lays the columns out
 * as dataset.h describes.  So the provisional indices never reach the
 * output: only which token each row holds does.
 */
#ifndef AMTL_PREP_TABLE_H
#define AMTL_PREP_TABLE_H

#include <stdint.h>

#include "base/error.h"
#include "data/strmap.h"
#include "format/config.h"
#include "format/io.h"

/* Split of a row: a fixed split (AMTL_SPLIT_*), or drawn at the end by the
 * seeded permutation over all three splits / over train and val only (the
 * rows of a train file when a separate test file is given). */
enum { AMTL_PREP_AUTO = 3, AMTL_PREP_AUTO_TRAINVAL = 4 };

typedef struct {
    int N, D, T;
    char **sparse_names;  /* [N] */
    char **dense_names;   /* [D] */
    char **label_names;   /* [T] */
    amtl_strmap *maps;    /* [N] raw token -> provisional index */
    int32_t **raw;        /* [N][rows] provisional index + 1; 0 = empty token */
    float **dense;        /* [D][rows] */
    uint8_t **labels;     /* [T][rows] 0 or 1 */
    uint8_t *split;       /* [rows] AMTL_SPLIT_* or AMTL_PREP_AUTO* */
    int64_t rows, cap;
    char *source;         /* meta "source" */
    amtl_meta_kv *extra;  /* further meta (synthetic.*) */
    int n_extra;
} amtl_prep_table;

/* Names are copied.  Field names must be unique across kinds, non-empty, at
 * most AMTL_PREP_MAX_NAME bytes and free of line breaks. */
#define AMTL_PREP_MAX_NAME 255
int amtl_prep_table_init(amtl_prep_table *t, int N, const char *const *sparse,
                         int D, const char *const *dense, int T,
                         const char *const *labels, amtl_status *st);
void amtl_prep_table_free(amtl_prep_table *t);  /* safe on a zeroed struct */
/* Appends a zeroed row with the given split; returns its index or -1. */
int64_t amtl_prep_table_add_row(amtl_prep_table *t, int split, amtl_status *st);
/* The provisional value of a token of field f: 0 for the empty token (a
 * missing value, encoded as id 0), else map index + 1; -1 on error. */
int32_t amtl_prep_table_intern(amtl_prep_table *t, int f, const char *tok,
                               size_t len, amtl_status *st);
int amtl_prep_table_set_meta(amtl_prep_table *t, const char *key,
                             const char *value, amtl_status *st);
/* Keeps the rows whose keep[r] is non-zero, in order. */
void amtl_prep_table_compact(amtl_prep_table *t, const uint8_t *keep);

/* Splits, encodes and lays the table out as a dataset file (kind "dataset"),
 * with the meta dataset.h lists.  cfg gives seed, split, vocab and the
 * config dump.  f is initialised here; on failure it is left empty.  The
 * table is consumed: each of its columns (and token maps) is freed as soon
 * as it is laid out, so that the table and the file together hold the data
 * once; afterwards the table is only good for amtl_prep_table_free. */
int amtl_prep_table_to_file(amtl_prep_table *t, const amtl_config *cfg,
                            amtl_file *f, amtl_status *st);

/* ---- helpers the readers share ------------------------------------------ */

/* The part of a path after the last '/'. */
const char *amtl_prep_basename(const char *path);
/* The config's delimiter as one byte ("tab" and "\t" for a tab). */
int amtl_prep_delimiter(const amtl_config *cfg, char *out, amtl_status *st);
/* Sets t->source to "<format> <base name>...", so that the dataset does not
 * depend on where the inputs happened to lie. */
int amtl_prep_set_source(amtl_prep_table *t, const char *format,
                         const char *const *inputs, int n, amtl_status *st);

#endif
