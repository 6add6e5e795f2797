/* dataset.h — the dataset file that amtl-prep writes and every other tool reads.
 *
 * On disk (kind "dataset", see amtl-dataset(5)), column-wise per split s in
 * {train, val, test}:
 *   <s>.sparse.<field>  i32 [rows]   ids in [0, vocab_f); 0 is the
 *                                    out-of-vocabulary / padding id, real
 *                                    values are encoded 1..n as the reference does
 *   <s>.dense.<field>   f32 [rows]
 *   <s>.label.<label>   f32 [rows]   0 or 1
 *   vocab_sizes         i32 [N]      vocab_f = max id + 1
 *   vocab.<field>       u8  [bytes]  the raw tokens, '\n'-terminated, token of id i
 *                                    on line i (line 0 is the empty OOV token)
 * meta: "sparse_fields", "dense_fields", "labels" (names joined by '\n'),
 * "rows.train|val|test", "source", "content_hash", "vocab_mode",
 * "min_id_count", "dense_transform" (and "dense_stats" unless "none"), and
 * for synthetic data "synthetic.*" keys describing the hidden structure.
 *
 * In memory a split is a table of columns, each field's values contiguous:
 * read from a file, the columns are the file's own tensors, views of its
 * mapping (amtl_file_map) where they are aligned, so a dataset is never held
 * twice and only the pages touched are resident.  Batches are gathered
 * row-major for the model.
 */
#ifndef AMTL_DATASET_H
#define AMTL_DATASET_H

#include <stdint.h>

#include "base/error.h"
#include "format/io.h"

enum { AMTL_SPLIT_TRAIN = 0, AMTL_SPLIT_VAL = 1, AMTL_SPLIT_TEST = 2, AMTL_N_SPLITS = 3 };

typedef struct {
    int64_t rows;
    int32_t **sparse;  /* [N] columns of [rows] ids */
    float **dense;     /* [D] columns of [rows] values */
    float **labels;    /* [T] columns of [rows] 0/1 labels */
    void *tables;      /* the three tables, one allocation */
    void *store;       /* the columns' storage when the split owns it, or NULL */
} amtl_split;

/* The column tables of a split of rows rows; with own, the columns too, one
 * zeroed block (field after field).  Without, the caller points them. */
int amtl_split_init(amtl_split *sp, int N, int D, int T, int64_t rows, int own,
                    amtl_status *st);
void amtl_split_free(amtl_split *sp);  /* safe on a zeroed struct */
/* Column c of a split's N + D + T columns, sparse fields, dense fields, then
 * labels: its entry in the split's tables. */
static inline void **amtl_split_column(const amtl_split *sp, int N, int D, int c)
{
    return c < N       ? (void **)&sp->sparse[c]
           : c < N + D ? (void **)&sp->dense[c - N]
                       : (void **)&sp->labels[c - N - D];
}

typedef struct {
    int N, D, T;
    char **sparse_names;  /* [N] */
    char **dense_names;   /* [D] */
    char **label_names;   /* [T] */
    int32_t *vocab;       /* [N] vocab sizes */
    amtl_split split[AMTL_N_SPLITS];
    amtl_file file;       /* the file as read: meta, vocab tokens */
    /* A share of the train split (data-parallel training, lib/dist/comm.h):
     * with shard_size > 1, split[AMTL_SPLIT_TRAIN] holds the train rows i
     * with i % shard_size == shard_rank, row i at local index i / shard_size;
     * train_rows_all counts the whole split's rows.  Unsharded: 0 of 1. */
    int shard_rank, shard_size;
    int64_t train_rows_all;
} amtl_dataset;

/* A batch, row-major, as the model consumes it. */
typedef struct {
    int B;
    int32_t *ids;    /* [B, N] */
    float *dense;    /* [B, D] */
    float *labels;   /* [B, T] */
} amtl_batch;

const char *amtl_split_name(int split);  /* "train", "val", "test" */
/* Returns the split index for a name, or -1. */
int amtl_split_parse(const char *name);

/* Reads and validates a dataset file: every tensor present with the right
 * dtype and length, ids within their vocab, labels 0/1, dense finite. */
int amtl_dataset_read(amtl_dataset *ds, const char *path, amtl_status *st);
/* The same, keeping of the train split only share `rank` of `size` (see
 * shard_rank); val and test are read whole.  Every row is still checked, so
 * every rank refuses a bad file alike. */
int amtl_dataset_read_shard(amtl_dataset *ds, const char *path, int rank, int size,
                            amtl_status *st);
/* Builds the in-memory view from an already decoded file (takes ownership
 * of *f on success). */
int amtl_dataset_from_file(amtl_dataset *ds, amtl_file *f, const char *what,
                           amtl_status *st);
void amtl_dataset_free(amtl_dataset *ds);
/* Rows of the whole train split: every rank's share when it is sharded. */
int64_t amtl_dataset_train_rows(const amtl_dataset *ds);

/* Gathers rows[0..B) of a split into b (whose arrays hold at least B rows). */
void amtl_dataset_gather(const amtl_dataset *ds, int split, const int32_t *rows,
                         int B, amtl_batch *b);

/* FNV-1a 64 over every tensor's name, a NUL byte and its data bytes, in
 * file order: the meta "content_hash" (16 lower-case hex digits), the
 * data's identity, which amtl_dataset_read checks when present in a file
 * without a verified checksum (format version 1).  A streamed tensor's
 * bytes are made for it (envelope.h); -1 with st when that fails. */
int amtl_dataset_content_hash(const amtl_file *f, uint64_t *hash, amtl_status *st);

/* names [n] joined by '\n' (a meta list; n = 0: ""), malloc'd; NULL when
 * out of memory. */
char *amtl_dataset_join_names(char *const *names, int n);
/* The names a meta key lists ('\n'-joined: "sparse_fields", "dense_fields",
 * "labels"), each non-empty and distinct, into a malloc'd array; free with
 * amtl_dataset_free_names. */
int amtl_dataset_parse_names(const amtl_file *f, const char *what, const char *key,
                             char ***out, int *n_out, amtl_status *st);
void amtl_dataset_free_names(char **names, int n);

/* Index of a field / label by name, or -1. */
int amtl_dataset_sparse_index(const amtl_dataset *ds, const char *name);
int amtl_dataset_label_index(const amtl_dataset *ds, const char *name);

#endif
