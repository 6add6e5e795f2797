/* prep.h — amtl-prep as a library: CSV files (processed, plain with column
 * lists, or a raw data set's recipe) or the embedded synthetic generator into
 * a dataset file (dataset.h, amtl-dataset(5)).
 *
 * Every input is first gathered into an amtl_prep_table: per sparse field a
 * hash map from the raw token to a provisional index, and per row the
 * provisional indices, dense values and labels.  amtl_prep_table_to_file then
 * assigns the splits, transforms the dense columns by the train rows'
 * statistics (dense_transform), label-encodes each field to 1..n in order of
 * first appearance in the output (train rows, then val, then test; with
 * vocab "train" only train rows add to the vocabulary and anything else
 * becomes 0; with min_id_count > 1 values rarer than that in the train rows
 * become 0 too) and lays the columns out as dataset.h describes.
 */
#ifndef AMTL_PREP_H
#define AMTL_PREP_H

#include <stdint.h>
#include <stdio.h>

#include "format/config.h"
#include "base/error.h"
#include "format/io.h"

/* ---- string -> index hash map (open addressing, linear probing) ---------- */

typedef struct {
    int32_t *slots;      /* [cap] key index + 1; 0 = empty */
    size_t cap;          /* power of two */
    uint64_t *hash;      /* [n] */
    size_t *off;         /* [n] start of key i in pool */
    uint32_t *len;       /* [n] */
    int32_t n, n_cap;
    char *pool;          /* keys, back to back */
    size_t pool_len, pool_cap;
} amtl_strmap;

int amtl_strmap_init(amtl_strmap *m, amtl_status *st);
void amtl_strmap_free(amtl_strmap *m);  /* safe on a zeroed struct */
/* Index of key (keys are numbered 0, 1, ... in insertion order), or -1. */
int32_t amtl_strmap_find(const amtl_strmap *m, const void *key, size_t len);
/* Index of key, inserting it when absent; -1 with st set when out of memory
 * or past INT32_MAX - 1 keys. */
int32_t amtl_strmap_put(amtl_strmap *m, const void *key, size_t len,
                        amtl_status *st);
/* Key i (not NUL-terminated). */
const char *amtl_strmap_key(const amtl_strmap *m, int32_t i, size_t *len);

uint64_t amtl_hash_bytes(const void *p, size_t n, uint64_t h);
#define AMTL_HASH_SEED 0xcbf29ce484222325ULL  /* FNV-1a 64 offset basis */

/* ---- the table every input is gathered into ------------------------------ */

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
 * config dump.  f is initialised here; on failure it is left empty. */
int amtl_prep_table_to_file(amtl_prep_table *t, const amtl_config *cfg,
                            amtl_file *f, amtl_status *st);

/* ---- readers: each initialises t ---------------------------------------- */

/* A label of a plain CSV (an item of the config key labels): "column", a
 * column of 0/1 values, or "[task=]column==value[|value...]", 1 where the
 * column's value is one of the values (compared exactly) and 0 elsewhere;
 * the task is named column when "task=" is left out. */
typedef struct {
    char *task;      /* the label's name */
    char *column;    /* the column it is read from */
    char **values;   /* [n_values]; n_values == 0: a 0/1 column */
    int n_values;
} amtl_prep_label;

int amtl_prep_label_parse(amtl_prep_label *l, const char *item, amtl_status *st);
void amtl_prep_label_free(amtl_prep_label *l);  /* safe on a zeroed struct */

/* Processed CSV (typed header) or, with format "csv", a plain CSV whose
 * columns the config lists.  One file (split by the seeded permutation), two
 * (train, split into train and val; test) or three (train, val, test). */
int amtl_prep_read_csv(amtl_prep_table *t, const amtl_config *cfg,
                       const char *const *inputs, int n_inputs, amtl_status *st);

/* Raw recipes (DESIGN.md section 9; inputs in the order amtl-prep(1) gives). */
int amtl_prep_userbehavior(amtl_prep_table *t, const amtl_config *cfg,
                           const char *const *inputs, int n_inputs,
                           amtl_status *st);
int amtl_prep_ijcai15(amtl_prep_table *t, const amtl_config *cfg,
                      const char *const *inputs, int n_inputs, amtl_status *st);
int amtl_prep_kuairand(amtl_prep_table *t, const amtl_config *cfg,
                       const char *const *inputs, int n_inputs, amtl_status *st);
int amtl_prep_qbvideo(amtl_prep_table *t, const amtl_config *cfg,
                      const char *const *inputs, int n_inputs, amtl_status *st);

/* The embedded synthetic data with a known hidden structure (amtl-prep(1),
 * SYNTHETIC DATA).  rows > 0, 1 <= tasks <= AMTL_SYNTH_MAX_TASKS. */
#define AMTL_SYNTH_MAX_TASKS 8
int amtl_prep_synthetic(amtl_prep_table *t, int64_t rows, int tasks,
                        uint64_t seed, amtl_status *st);
/* Kind "zipf": long-tailed ids whose per-id effects carry most of the
 * signal, so that a logistic regression is strong (amtl-prep(1)). */
int amtl_prep_synthetic_zipf(amtl_prep_table *t, int64_t rows, int tasks,
                             uint64_t seed, amtl_status *st);

/* ---- helpers the readers share ------------------------------------------ */

/* The part of a path after the last '/'. */
const char *amtl_prep_basename(const char *path);
/* The config's delimiter as one byte ("tab" and "\t" for a tab). */
int amtl_prep_delimiter(const amtl_config *cfg, char *out, amtl_status *st);
/* Sets t->source to "<format> <base name>...". */
int amtl_prep_set_source(amtl_prep_table *t, const char *format,
                         const char *const *inputs, int n, amtl_status *st);

/* ---- the tool ----------------------------------------------------------- */

typedef struct {
    const char *output;          /* -o; "-" = stdout */
    const char *const *inputs;
    int n_inputs;
    int synthetic;
    int64_t rows;                /* --rows, synthetic only */
    int tasks;                   /* --tasks, synthetic only */
    int synthetic_kind;          /* --synthetic-kind: AMTL_SYNTH_* */
} amtl_prep_args;

/* Kinds of the synthetic generator (amtl-prep --synthetic-kind). */
enum { AMTL_SYNTH_LATENT = 0, AMTL_SYNTH_ZIPF = 1 };

/* Reads the inputs the config's format names (or generates), writes the
 * dataset atomically.  Nothing is written when anything fails. */
int amtl_prep_run(const amtl_prep_args *a, const amtl_config *cfg,
                  amtl_status *st);

/* amtl_prep_run for --synthetic of any kind (a->synthetic_kind; the
 * latent kind is amtl_prep_run's own). */
int amtl_prep_synthetic_run(const amtl_prep_args *a, const amtl_config *cfg,
                            amtl_status *st);

/* amtl-prep --info: rows per split, fields with kind and vocab size, and
 * each label's positive rate per split, as an aligned table. */
int amtl_prep_info(const char *path, FILE *out, amtl_status *st);

#endif
