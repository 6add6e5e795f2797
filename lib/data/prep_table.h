/* prep_table.h — the table every amtl-prep input is gathered into, and its
 * conversion to a dataset file (dataset.h, amtl-dataset(5)).
 *
 * Per sparse field a hash map from the raw token to a provisional index,
 * and per row the provisional indices, dense values and labels.  The rows
 * are held a chunk at a time: a full chunk goes to an unlinked temp file in
 * $TMPDIR (or /tmp), so memory is the token maps and one chunk, whatever the
 * row count; an input that fits one chunk never touches the disk.
 *
 * amtl_prep_table_write (amtl_prep_table_to_file in memory) then assigns the
 * splits, transforms the dense columns by the train rows' statistics
 * (dense_transform), label-encodes each field to 1..n in order of first
 * appearance in the output (train rows, then val, then test; with vocab
 * "train" only train rows add to the vocabulary and anything else becomes
 * 0; with min_id_count > 1 values rarer than that in the train rows become 0
 * too) and writes the columns as dataset.h describes, each made from the
 * chunks as it is written.  So the provisional indices never reach the
 * output: only which token each row holds does.
 */
#ifndef AMTL_PREP_TABLE_H
#define AMTL_PREP_TABLE_H

#include <stdint.h>

#include "base/error.h"
#include "data/strmap.h"
#include "format/config.h"
#include "format/io.h"

/* Split of a row: a fixed split (AMTL_SPLIT_*), or drawn when the table is
 * written (amtl_prep_table_write) over all three splits / over train and
 * val only (the rows of a train file when a separate test file is given). */
enum { AMTL_PREP_AUTO = 3, AMTL_PREP_AUTO_TRAINVAL = 4 };

typedef struct {
    int N, D, T;
    char **sparse_names;  /* [N] */
    char **dense_names;   /* [D] */
    char **label_names;   /* [T] */
    amtl_strmap *maps;    /* [N] raw token -> provisional index */
    /* the current chunk: its rows' provisional index + 1 (0 = empty token),
     * dense values, labels (0 or 1) and split (AMTL_SPLIT_* or
     * AMTL_PREP_AUTO*) */
    int32_t **raw;        /* [N][chunk] */
    float **dense;        /* [D][chunk] */
    uint8_t **labels;     /* [T][chunk] */
    uint8_t *split;       /* [chunk] */
    int64_t rows;         /* all the rows added */
    int64_t marks[5];     /* rows added with each split: AMTL_SPLIT_*, AMTL_PREP_AUTO* */
    int64_t chunk;        /* rows a chunk holds */
    int64_t fill;         /* rows in the current chunk */
    int64_t spilled;      /* full chunks in the temp file before it */
    int spill_fd;         /* the temp file (has_spill) */
    int has_spill;
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
/* Appends a zeroed row with the given split (AMTL_SPLIT_* or AMTL_PREP_AUTO*,
 * counted in marks: a reader does not change it afterwards); returns its
 * index in the current chunk (raw[f][i], dense[d][i], labels[k][i]), or -1
 * (a chunk that could not be spilled, more than INT32_MAX rows).  Earlier
 * rows may be in the temp file already: a reader sets the row it just
 * added, no other. */
int64_t amtl_prep_table_add_row(amtl_prep_table *t, int split, amtl_status *st);
/* The provisional value of a token of field f: 0 for the empty token (a
 * missing value, encoded as id 0), else map index + 1; -1 on error. */
int32_t amtl_prep_table_intern(amtl_prep_table *t, int f, const char *tok,
                               size_t len, amtl_status *st);
int amtl_prep_table_set_meta(amtl_prep_table *t, const char *key,
                             const char *value, amtl_status *st);
/* Label k of every row, y[0..rows): for a generator that draws the labels
 * once all rows are in. */
int amtl_prep_table_put_labels(amtl_prep_table *t, int k, const uint8_t *y,
                               amtl_status *st);

/* ---- the chunks, for the passes that write the dataset --------------------
 * Column c of the table: sparse fields 0..N-1, dense N..N+D-1, labels, then
 * the split column at N+D+T.  Chunk i of amtl_prep_table_chunks(t) holds
 * amtl_prep_table_chunk_rows(t, i) rows. */
int64_t amtl_prep_table_chunks(const amtl_prep_table *t);
int64_t amtl_prep_table_chunk_rows(const amtl_prep_table *t, int64_t i);
/* Column c of chunk i: read into buf (room for a chunk of that column), or
 * the current chunk's own array; NULL with st on a read error. */
const void *amtl_prep_table_column(const amtl_prep_table *t, int64_t i, int c, void *buf,
                                   amtl_status *st);
/* Replaces the split column of chunk i. */
int amtl_prep_table_put_split(amtl_prep_table *t, int64_t i, const uint8_t *split,
                              amtl_status *st);

/* Splits, encodes and writes the table as a dataset file (kind "dataset")
 * at path ("-": stdout), with the meta dataset.h lists: each column made
 * from the chunks as it is written, so memory stays the vocabularies and a
 * chunk.  cfg gives seed, split, vocab and the config dump.  The table is
 * consumed (its token maps freed once encoded): afterwards it is only good
 * for amtl_prep_table_free.
 *
 * The split: of the rows marked AMTL_PREP_AUTO, m in all, round(m·fr0) go
 * to train, round(m·fr1) to val and the rest to test (fr the config's split
 * fractions, normalised), drawn in input order by sequential sampling: row
 * by row, each split with probability (rows it still takes) / (rows left),
 * one seeded draw a row — every assignment with those counts equally
 * likely, and nothing held per row.  The rows marked AMTL_PREP_AUTO_TRAINVAL
 * go to train and val the same way, in the ratio fr0 : fr1, from a stream
 * of their own. */
int amtl_prep_table_write(amtl_prep_table *t, const amtl_config *cfg, const char *path,
                          amtl_status *st);
/* The same into f, in memory (f initialised here; left empty on failure). */
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
