/* predict.h — amtl-eval --predict: a model scores raw CSV rows.
 *
 * The input is CSV with a header line naming the columns.  Every sparse and
 * dense field of the model must have a column, named as the field or, as in
 * a processed CSV, "field:token" / "field:float"; other columns (labels,
 * ids, notes) are ignored.  A sparse value is mapped to its id through the
 * vocabulary stored in the model (vocab.<field>, written by amtl-prep); a
 * value never seen in training, and an empty one, maps to id 0, whose
 * embedding row is the out-of-vocabulary / padding row.  Dense values must
 * be finite numbers.
 *
 * Output: per input row one line of probabilities (the sigmoid of each
 * logit) as %.6f separated by tabs, one per trained task in label order.
 * Rows are read and scored in batches of at most 4096 rows (the model's
 * batch_size when smaller), and each batch is written and flushed before the
 * next is read, so memory grows with neither the input nor the model's
 * batch_size, and the tool works inside a pipeline.  On a bad row the
 * batches before it have already been written.
 */
#ifndef AMTL_PREDICT_H
#define AMTL_PREDICT_H

#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "data/strmap.h"

/* token -> id of one sparse field, from its vocab blob. */
typedef struct {
    amtl_strmap map;    /* key k = k-th distinct token */
    int32_t *id;        /* [map.n] the id of key k */
    int32_t vocab;      /* ids are in [0, vocab) */
} amtl_vocab_map;

/* Builds the map from a blob of '\n'-terminated tokens, token of id i on
 * line i (line 0 is the empty OOV token), which must hold exactly vocab
 * lines.  `what` names the blob in messages. */
int amtl_vocab_map_init(amtl_vocab_map *v, const uint8_t *blob, size_t len, int32_t vocab,
                        const char *what, amtl_status *st);
void amtl_vocab_map_free(amtl_vocab_map *v);  /* safe on a zeroed struct */
/* The id of a raw token; 0 when unseen or empty.  Line breaks in tok count
 * as spaces, as amtl-prep stores them.  -1 only when out of memory. */
int32_t amtl_vocab_map_id(const amtl_vocab_map *v, const char *tok, size_t len);

typedef struct {
    const char *model;   /* model file written by amtl-train */
    const char *input;   /* CSV file, "-" = stdin */
    char delim;          /* field delimiter, usually ',' */
    int header;          /* first write a line with the task names */
} amtl_predict_opts;

/* Scores every row of o->input with the model and writes the lines to out. */
int amtl_predict_run(const amtl_predict_opts *o, FILE *out, amtl_status *st);

/* A task's probability from its logit, in double: what --predict and
 * amtl-eval --scores print. */
double amtl_probability(float logit);

#endif
